/* The builtin strategies (extensions/strategies.c) and the host API of ABI version 2
 * (extensions/run.c): run on tests/fixtures/replay-strategies.csv with a host that answers
 * from the records by the replay rule (executor/workers/runners/replay.h: best test_accuracy
 * per pair, elapsed_time summed) — the engine's answers without its queue (the queue path is
 * tests/integration/test_strategies.sh). Also: the host relay to a C plugin in a child
 * process and to the Python example (examples/plugins/topk_finetune.py), a crash mid-call,
 * a bad call, bad parameters, and that a version 1 plugin sees no host.
 *
 * The fixture by hand (pair → best accuracy, summed seconds):
 *
 *   alpha:  m1 0.50 (100)  m2 0.70 (150+50 = 200)  m3 0.60 (50)  m4 0.80 (400)  m5 0.65 (30)
 *           best 0.80 (m4); fine-tune-all cost 780
 *   beta:   m1 0.60 (10)   m2 0.90 (20)   m3 0.40 (30)   m4 0.70 (40)      best 0.90 (m2)
 *   gamma:  m1 0.30 (5)    m2 0.50 (5)    m3 0.55 (5)    m4 0.45 (5)       best 0.55 (m3)
 *
 * meta on alpha (mean over beta and gamma): m1 0.45, m2 0.70, m3 0.475, m4 0.575, m5 none →
 *   order m2 m4 m3 m1 m5, err 1 − mean (m5: 1e6); top-1 m2 = 0.70: regret 0.10, cost 0.
 * hybrid(k=2) on alpha: fine-tunes m2 (0.70) and m4 (0.80) → m4 0.20, m2 0.30, then m3
 *   0.525, m1 0.55, m5 1e6; regret 0; cost 200 + 400 = 600 (600/780 of fine-tune-all).
 * sh(eta=2, k=1) on alpha: meta keeps ⌈5/2⌉ = 3 (m2 m4 m3), fine-tunes them → m4 0.20,
 *   m2 0.30, m3 0.40, then m1 0.55, m5 1e6; cost 200 + 400 + 50 = 650.
 * finetune_all on alpha: m4 0.20, m2 0.30, m5 0.35, m3 0.40, m1 0.50; cost 780.
 * meta on gamma (mean over alpha and beta): m1 0.55, m2 0.80, m3 0.50, m4 0.75 → m2 m4 m1 m3;
 *   hybrid(k=2): m2 0.50, m4 0.45 → m2 0.50, m4 0.55, m1 0.45, m3 0.50; regret 0.55 − 0.50 =
 *   0.05; cost 10 of 20.
 * hybrid(k=2) on beta with m5 a candidate (meta: m5 0.65 from alpha only, m4 0.625, m2 0.60,
 *   m3 0.575, m1 0.40): fine-tunes m5 (no run on beta: the call fails, m5 ranks last of the
 *   fine-tuned with 1e6) and m4 (0.70) → m4 0.30, m5 1e6, m2 0.40, m3 0.425, m1 0.60. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "executor/workers/runners/replay.h"
#include "extensions/extensions.h"

#define FIXTURE "tests/fixtures/replay-strategies.csv"

/* ---- a host answering from the records ------------------------------------------------ */

typedef struct rec_host {
    replay_records *r;
    const char *task;        /* the train dataset's name */
    json_t *models;          /* id → model_identifier via the request's models */
    double paid;             /* seconds of distinct fine-tunes */
    int finetunes, calls;
    char paid_pairs[64][64];
} rec_host;

static const char *ident_of(const rec_host *h, json_int_t id)
{
    for (size_t i = 0; i < json_array_size(h->models); i++) {
        json_t *m = json_array_get(h->models, i);
        if (json_integer_value(json_object_get(m, "id")) == id)
            return json_string_value(json_object_get(json_object_get(m, "spec"), "model_identifier"));
    }
    return NULL;
}

static json_t *rec_call(void *arg, const json_t *req)
{
    rec_host *h = arg;
    h->calls++;
    const char *call = json_string_value(json_object_get(req, "call"));
    const char *ident = ident_of(h, json_integer_value(json_object_get(req, "model_id")));
    if (!ident)
        return json_pack("{s:b, s:s}", "ok", 0, "error", "not a candidate");
    if (strcmp(call, "history") == 0) {
        json_t *hist = json_array();
        for (size_t i = 0; i < h->r->npairs; i++)
            if (strcmp(h->r->pairs[i].model, ident) == 0 && strcmp(h->r->pairs[i].dataset, h->task) != 0)
                json_array_append_new(hist, json_pack("{s:s, s:f}", "dataset", h->r->pairs[i].dataset,
                                                      "accuracy", h->r->pairs[i].test_accuracy));
        return json_pack("{s:b, s:o}", "ok", 1, "history", hist);
    }
    const replay_pair *p = replay_find(h->r, ident, h->task);
    if (!p)
        return json_pack("{s:b, s:s}", "ok", 0, "error", "no recorded run");
    if (strcmp(call, "finetune") == 0) {
        h->finetunes++;
        bool seen = false;
        for (int i = 0; i < h->finetunes - 1 && i < 64; i++)
            seen |= strcmp(h->paid_pairs[i], ident) == 0;
        if (!seen) {
            h->paid += p->elapsed_seconds;
            snprintf(h->paid_pairs[(h->finetunes - 1) % 64], 64, "%s", ident);
        }
        return json_pack("{s:b, s:f, s:f}", "ok", 1, "accuracy", p->test_accuracy, "seconds",
                         p->elapsed_seconds);
    }
    return json_pack("{s:b, s:f, s:f}", "ok", 1, "err", 1 - p->test_accuracy, "seconds",
                     p->elapsed_seconds);
}

/* Models m<ids> (ids 1..5 = org/m1..m5) and the task. */
static json_t *models_of(const char *ids)
{
    json_t *a = json_array();
    for (const char *c = ids; *c; c++) {
        char name[16], ident[16];
        snprintf(name, sizeof name, "r/m%c", *c);
        snprintf(ident, sizeof ident, "org/m%c", *c);
        json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:s, s:{s:s}}", "id", *c - '0',
                                           "name", name, "runner", "replay", "modality",
                                           "image", "spec", "model_identifier", ident));
    }
    return a;
}

static json_t *task_of(const char *name)
{
    return json_pack("{s:[{s:i, s:s, s:n, s:n}], s:[{s:i, s:s, s:n, s:n}]}", "train", "id", 10,
                     "name", name, "size", "num_classes", "test", "id", 10, "name", name,
                     "size", "num_classes");
}

/* Runs strategy name(params) on the task; returns "id:err id:err …" (err %.3g) and the
 * seconds paid. */
static char *run_on(const ext_registry *reg, const char *name, const char *params,
                    const char *task, const char *ids, double *paid, char **err_out)
{
    const ext_strategy *s = ext_find(reg, name);
    assert_non_null(s);
    replay_records *r = NULL;
    char *err = NULL;
    assert_int_equal(replay_records_load(FIXTURE, &r, &err), 0);
    json_t *models = models_of(ids), *datasets = task_of(task);
    rec_host h = {.r = r, .task = task, .models = models};
    ext_host_ops ops = {rec_call, &h};
    ext_run_opts opts = {.host = &ops};
    json_t *given = json_loads(params, 0, NULL);
    assert_non_null(given);
    json_t *canon = ext_params_canonical(s, given, &err);
    json_decref(given);
    char *text = NULL;
    if (!canon) {
        *err_out = err;
    } else {
        bool perm;
        json_t *rk = ext_run(s, canon, models, datasets, &opts, &err, &perm);
        if (!rk) {
            if (err_out)
                *err_out = err;
            else
                fail_msg("%s%s: %s", name, params, err);
        } else {
            strbuf sb = {0};
            for (size_t i = 0; i < json_array_size(rk); i++) {
                json_t *e = json_array_get(rk, i);
                strbuf_printf(&sb, "%s%lld:%.3g", i ? " " : "",
                              (long long)json_integer_value(json_object_get(e, "model_id")),
                              json_number_value(json_object_get(e, "err")));
            }
            text = strbuf_detach(&sb);
            json_decref(rk);
        }
        json_decref(canon);
    }
    if (paid)
        *paid = h.paid;
    json_decref(models);
    json_decref(datasets);
    replay_records_free(r);
    return text;
}

static void expect_ranking(const ext_registry *reg, const char *name, const char *params,
                           const char *task, const char *ids, const char *want,
                           double want_paid)
{
    double paid = -1;
    char *got = run_on(reg, name, params, task, ids, &paid, NULL);
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s%s on %s: expected %s, got %s", name, params, task, want, got ? got : "(null)");
    if (fabs(paid - want_paid) > 1e-9)
        fail_msg("%s%s on %s: expected %g s paid, got %g", name, params, task, want_paid, paid);
    free(got);
}

/* Regret of a ranking text: best in the pool − the best fine-tuned (err < 1 in the first
 * entries with err = 1 − accuracy) or the top-1's accuracy. */
static void test_builtin_strategies(void **state)
{
    (void)state;
    const ext_registry *reg = ext_default();
    expect_ranking(reg, "meta", "{}", "alpha", "12345", "2:0.3 4:0.425 3:0.525 1:0.55 5:1e+06", 0);
    expect_ranking(reg, "hybrid", "{\"k\": 2}", "alpha", "12345",
                   "4:0.2 2:0.3 3:0.525 1:0.55 5:1e+06", 600);
    expect_ranking(reg, "sh", "{\"eta\": 2}", "alpha", "12345",
                   "4:0.2 2:0.3 3:0.4 1:0.55 5:1e+06", 650);
    expect_ranking(reg, "finetune_all", "{}", "alpha", "12345", "4:0.2 2:0.3 5:0.35 3:0.4 1:0.5",
                   780);
    expect_ranking(reg, "hybrid", "{\"k\": 2}", "gamma", "1234", "2:0.5 4:0.55 1:0.45 3:0.5", 10);
    expect_ranking(reg, "hybrid", "{\"k\": 2}", "beta", "12345",
                   "4:0.3 5:1e+06 2:0.4 3:0.425 1:0.6", 40);
    /* proxy(name) on replay data is the recorded fine-tune (docs/runners.md "replay"). */
    expect_ranking(reg, "proxy", "{\"name\": \"logme\"}", "beta", "1234",
                   "2:0.1 4:0.3 1:0.4 3:0.6", 0);
}

static void test_bad_params(void **state)
{
    (void)state;
    const ext_registry *reg = ext_default();
    char *err = NULL;
    assert_null(run_on(reg, "hybrid", "{\"k\": 0}", "alpha", "12", NULL, &err));
    assert_non_null(strstr(err, "hybrid: parameter k: 0 is out of range (minimum 1)"));
    free(err);
    err = NULL;
    assert_null(run_on(reg, "hybrid", "{\"proxy\": \"magic\"}", "alpha", "12", NULL, &err));
    assert_non_null(strstr(err, "is not one of meta, nn"));
    free(err);
    err = NULL;
    assert_null(run_on(reg, "sh", "{\"tiers\": \"meta,oracle\"}", "alpha", "12", NULL, &err));
    assert_non_null(strstr(err, "unknown tier \"oracle\""));
    free(err);
    err = NULL;
    /* every fine-tune fails: nothing could be ranked */
    assert_null(run_on(reg, "finetune_all", "{}", "beta", "5", NULL, &err));
    assert_non_null(strstr(err, "no candidate could be evaluated (model 5: no recorded run)"));
    free(err);
}

static char *build_path(const char *rel)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    return xasprintf("%s/%s", self, rel);
}

/* The relay: a version 2 C plugin in its child process, and the Python example. */
static void test_host_relay(void **state)
{
    (void)state;
    char *so = build_path("extensions/host_plugin.so");
    char dir[] = "/tmp/rankql-strat-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *link = xasprintf("%s/hostc.so", dir), *abs = so ? realpath(so, NULL) : NULL;
    bool have_so = abs && symlink(abs, link) == 0;
    char *ex_json = xasprintf("%s/topk_finetune.json", dir), *ex_py = xasprintf("%s/topk_finetune.py", dir);
    char *src_json = realpath("examples/plugins/topk_finetune.json", NULL);
    char *src_py = realpath("examples/plugins/topk_finetune.py", NULL);
    assert_non_null(src_json);
    assert_int_equal(symlink(src_json, ex_json), 0);
    assert_int_equal(symlink(src_py, ex_py), 0);
    char *err = NULL;
    ext_registry *reg = ext_registry_load(dir, &err);
    assert_non_null(reg);
    for (size_t i = 0; i < reg->nwarnings; i++)
        printf("# warning: %s\n", reg->warnings[i]);
    /* The worked example: the same answer as hybrid(k=2) (see the top). */
    expect_ranking(reg, "topk_finetune", "{\"k\": 2}", "alpha", "12345",
                   "4:0.2 2:0.3 3:0.525 1:0.55 5:1e+06", 600);
    expect_ranking(reg, "topk_finetune", "{\"k\": 2}", "gamma", "1234",
                   "2:0.5 4:0.55 1:0.45 3:0.5", 10);
    if (!have_so) {
        printf("# skipped the C plugin: no %s\n", so ? so : "?");
    } else {
        expect_ranking(reg, "hostc", "{}", "alpha", "12345", "4:0.2 2:0.3 5:0.35 3:0.4 1:0.5", 780);
        /* history: m1..m4 have 2 other datasets, m5 none */
        expect_ranking(reg, "hostc", "{\"mode\": \"history\"}", "alpha", "15", "1:-2 5:0", 0);
        char *e = NULL;
        assert_null(run_on(reg, "hostc", "{\"mode\": \"badcall\"}", "alpha", "12", NULL, &e));
        assert_non_null(strstr(e, "hostc: host said: not a candidate"));
        free(e);
        e = NULL;
        double paid = 0;
        assert_null(run_on(reg, "hostc", "{\"mode\": \"crash\"}", "alpha", "12", &paid, &e));
        assert_non_null(strstr(e, "crashed: killed by signal 11"));
        assert_true(paid == 100); /* the one fine-tune before the crash was answered */
        free(e);
    }
    ext_registry_free(reg);
    unlink(link), unlink(ex_json), unlink(ex_py);
    rmdir(dir);
    free(link), free(abs), free(so), free(ex_json), free(ex_py), free(src_json), free(src_py);
}

/* A version 1 descriptor gets req->host == NULL. */
static int v1_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    if (req->host) {
        snprintf(err, errlen, "a version 1 plugin saw a host");
        return -1;
    }
    for (size_t i = 0; i < req->nmodels; i++)
        out[i] = (rqx_ranked){req->models[i].id, (double)i};
    return (int)req->nmodels;
}

static void test_v1_sees_no_host(void **state)
{
    (void)state;
    static const rankql_extension v1 = {.abi_version = 1, .name = "v1", .version = "1",
                                        .rank = v1_rank};
    ext_strategy s = {.name = "v1", .version = "1", .kind = EXT_BUILTIN, .ext = &v1};
    json_t *models = models_of("12"), *datasets = task_of("alpha"), *params = json_object();
    ext_host_ops ops = {rec_call, NULL};
    ext_run_opts opts = {.host = &ops};
    char *err = NULL;
    bool perm;
    json_t *rk = ext_run(&s, params, models, datasets, &opts, &err, &perm);
    if (!rk)
        fail_msg("%s", err);
    assert_int_equal(json_array_size(rk), 2);
    assert_int_equal(ext_abi_of(&s), 1);
    json_decref(rk);
    json_decref(models);
    json_decref(datasets);
    json_decref(params);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_strategies),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_host_relay),
        cmocka_unit_test(test_v1_sees_no_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
