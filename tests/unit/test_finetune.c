/* Fine-tune jobs without a database (executor/workers/finetune/, finetune_job.c): the replay
 * payload builder and replay runs answered from tests/fixtures/replay-records.csv (values
 * read by hand from the file: the best run of the pair, elapsed summed over its runs), and
 * knob resolution (defaults, typing, ranges, unknown names). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/jobs.h"
#include "queue/queue.h"

#define FIXTURE "tests/fixtures/replay-records.csv"

static json_t *model_obj(const char *ident, const char *records)
{
    json_t *spec = json_pack("{s:s}", "model_identifier", ident);
    if (records)
        json_object_set_new(spec, "records", json_string(records));
    return json_pack("{s:i, s:s, s:o, s:s}", "id", 7, "name", "m7", "spec", spec, "runner",
                     "replay");
}

static json_t *dataset_obj(const char *task)
{
    return json_pack("{s:i, s:s, s:{s:s, s:s}}", "id", 3, "name", "d3", "spec", "records",
                     FIXTURE, "train_dataset_name", task);
}

static int run_payload(const json_t *payload, json_t **result, char **err, bool *permanent)
{
    const job_runner *r = job_runner_find("finetune");
    assert_non_null(r);
    job_ctx ctx = {.data_dir = "/tmp", .job_id = 1, .hash = "x"};
    *permanent = false;
    return r->run(&ctx, payload, result, err, permanent);
}

static void test_replay_payload_and_run(void **state)
{
    (void)state;
    char *err = NULL;
    json_t *m = model_obj("org/alpha", NULL), *d = dataset_obj("dmlab");
    json_t *p = finetune_replay_payload(m, d, &err);
    if (!p)
        fail_msg("payload: %s", err);
    /* Canonical: only id, name, spec of the model are kept; the records come from the
     * dataset; the digest is the file's SHA-256 (64 hex). */
    assert_string_equal(json_string_value(json_object_get(p, "runner")), "replay");
    assert_null(json_object_get(json_object_get(p, "model"), "runner"));
    const json_t *rp = json_object_get(p, "replay");
    assert_string_equal(json_string_value(json_object_get(rp, "records")), FIXTURE);
    assert_string_equal(json_string_value(json_object_get(rp, "model_identifier")), "org/alpha");
    assert_string_equal(json_string_value(json_object_get(rp, "train_dataset_name")), "dmlab");
    assert_int_equal(strlen(json_string_value(json_object_get(rp, "digest"))), 64);
    json_t *res = NULL;
    bool perm;
    if (run_payload(p, &res, &err, &perm) != 0)
        fail_msg("run: %s", err);
    /* org/alpha on dmlab: runs 0.40 (100.0 s) and 0.25 (50.5 s): best 0.40, 150.5 s. */
    assert_float_equal(json_real_value(json_object_get(res, "test_accuracy")), 0.40, 1e-12);
    assert_float_equal(json_real_value(json_object_get(res, "elapsed_seconds")), 150.5, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(res, "runs")), 2);
    assert_true(json_is_null(json_object_get(res, "train_accuracy")));
    json_decref(res);
    /* The same inputs give the same payload (one job hash). */
    json_t *p2 = finetune_replay_payload(m, d, &err);
    assert_true(json_equal(p, p2));
    json_decref(p2);
    json_decref(p);
    json_decref(m);
    json_decref(d);
}

static void test_replay_unrecorded_pair(void **state)
{
    (void)state;
    char *err = NULL;
    json_t *m = model_obj("org/nobody", NULL), *d = dataset_obj("dmlab");
    json_t *p = finetune_replay_payload(m, d, &err);
    assert_non_null(p);
    json_t *res = NULL;
    bool perm = false;
    assert_int_equal(run_payload(p, &res, &err, &perm), -1);
    assert_true(perm);
    assert_non_null(strstr(err, "no recorded fine-tune run of org/nobody on dmlab"));
    free(err);
    json_decref(p);
    json_decref(m);
    json_decref(d);
}

static void test_replay_payload_errors(void **state)
{
    (void)state;
    char *err = NULL;
    json_t *m = json_pack("{s:i, s:s, s:{}}", "id", 1, "name", "x", "spec");
    json_t *d = dataset_obj("dmlab");
    assert_null(finetune_replay_payload(m, d, &err));
    assert_non_null(strstr(err, "spec.model_identifier"));
    free(err);
    json_decref(m);
    m = model_obj("org/alpha", "/nonexistent/records.csv");
    assert_null(finetune_replay_payload(m, d, &err));
    assert_non_null(strstr(err, "/nonexistent/records.csv"));
    free(err);
    json_decref(m);
    json_decref(d);
}

/* ---- knobs ------------------------------------------------------------------------------ */

static void test_knob_defaults(void **state)
{
    (void)state;
    const knob_config *cfg = finetune_knob_config("head");
    assert_non_null(cfg);
    char *err = NULL;
    const char *bad;
    json_t *k = finetune_knobs_resolve(cfg, NULL, &err, &bad);
    assert_non_null(k);
    assert_string_equal(json_string_value(json_object_get(k, "head")), "linear");
    assert_true(json_is_integer(json_object_get(k, "epochs")));
    assert_int_equal(json_integer_value(json_object_get(k, "epochs")), 30);
    assert_true(json_is_integer(json_object_get(k, "batch_size")));
    assert_int_equal(json_integer_value(json_object_get(k, "batch_size")), 64);
    assert_true(json_is_real(json_object_get(k, "lr")));
    assert_float_equal(json_real_value(json_object_get(k, "lr")), 0.05, 1e-15);
    assert_int_equal(json_object_size(k), cfg->n);
    json_decref(k);
    assert_null(finetune_knob_config("nope"));
    assert_int_equal(finetune_knob_config("replay")->n, 0);
}

static void resolve_fails(const char *trainer, json_t *given, const char *want_knob,
                          const char *want)
{
    char *err = NULL;
    const char *bad = NULL;
    assert_null(finetune_knobs_resolve(finetune_knob_config(trainer), given, &err, &bad));
    assert_non_null(bad);
    assert_string_equal(bad, want_knob);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    free(err);
    json_decref(given);
}

static void test_knob_overrides_and_errors(void **state)
{
    (void)state;
    char *err = NULL;
    const char *bad;
    /* Overrides are typed: 20.0 epochs is 20, "mlp" a category, 128.0 a batch size. */
    json_t *g = json_pack("{s:f, s:f, s:s, s:f}", "lr", 0.01, "epochs", 20.0, "head", "mlp",
                          "batch_size", 128.0);
    json_t *k = finetune_knobs_resolve(finetune_knob_config("head"), g, &err, &bad);
    assert_non_null(k);
    assert_int_equal(json_integer_value(json_object_get(k, "epochs")), 20);
    assert_int_equal(json_integer_value(json_object_get(k, "batch_size")), 128);
    assert_string_equal(json_string_value(json_object_get(k, "head")), "mlp");
    assert_float_equal(json_real_value(json_object_get(k, "lr")), 0.01, 1e-15);
    json_decref(k);
    json_decref(g);
    resolve_fails("head", json_pack("{s:f}", "lr", 100.0), "lr",
                  "knob lr: 100 is out of range, allowed: number in [1e-05, 10], log scale");
    resolve_fails("head", json_pack("{s:f}", "epochs", 2.5), "epochs", "not an integer");
    resolve_fails("head", json_pack("{s:i}", "epochs", 0), "epochs",
                  "integer in [1, 100000], log scale");
    resolve_fails("head", json_pack("{s:s}", "head", "cnn"), "head",
                  "knob head: cnn is not allowed, allowed: one of linear, mlp");
    resolve_fails("head", json_pack("{s:i}", "batch_size", 100), "batch_size",
                  "one of 16, 32, 64, 128, 256, 512");
    resolve_fails("head", json_pack("{s:f}", "momentum", 1.0), "momentum", "[0, 0.99]");
    resolve_fails("head", json_pack("{s:s}", "lr", "fast"), "lr", "fast is not a number");
    resolve_fails("head", json_pack("{s:i}", "depth", 3), "depth",
                  "unknown knob depth for head (knobs: head, hidden, lr, epochs");
    resolve_fails("replay", json_pack("{s:i}", "lr", 3), "lr", "replay fine-tunes take no knobs");
}

/* ---- head job builder ------------------------------------------------------------------- */

static json_t *ds(int id, int start, int stop)
{
    return json_pack("{s:i, s:s, s:s, s:s, s:{}, s:n, s:i, s:i}", "id", id, "name", "d", "format",
                     "idx", "location", "/x", "spec", "digest", "start", start, "stop", stop);
}

static void test_head_jobs(void **state)
{
    (void)state;
    json_t *pca = json_pack("{s:i, s:s, s:s, s:s, s:{s:s, s:i}, s:n}", "id", 4, "name", "p",
                            "runner", "builtin", "modality", "image", "spec", "extractor", "pca",
                            "k", 8, "batch_size");
    json_t *train = json_pack("[o, o]", ds(1, 0, 100), ds(2, 100, 200));
    json_t *test = ds(3, 0, 50);
    char *err = NULL;
    const char *bad;
    json_t *jobs = finetune_head_jobs(pca, train, test, NULL, &err, &bad);
    assert_non_null(jobs);
    assert_int_equal(json_array_size(jobs), 4);
    for (size_t i = 0; i < 4; i++) {
        const json_t *j = json_array_get(jobs, i);
        const char *kind = json_string_value(json_object_get(j, "kind"));
        assert_string_equal(kind, i < 3 ? "embed" : "finetune");
        char hex[HASH_HEX_LEN + 1];
        queue_job_hash(kind, json_object_get(j, "payload"), hex);
        assert_string_equal(json_string_value(json_object_get(j, "hash")), hex);
        /* A PCA is fitted on the first training dataset, for every part. */
        if (i < 3)
            assert_true(json_equal(json_object_get(json_object_get(j, "payload"), "fit"),
                                   json_array_get(train, 0)));
    }
    const json_t *ft = json_array_get(jobs, 3), *p = json_object_get(ft, "payload");
    json_t *want_deps = json_pack("[i, i, i]", 0, 1, 2);
    assert_true(json_equal(json_object_get(ft, "deps"), want_deps));
    json_decref(want_deps);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(p, "train"), 1), "features")),
                        json_string_value(json_object_get(json_array_get(jobs, 1), "hash")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(p, "test"), 0), "features")),
                        json_string_value(json_object_get(json_array_get(jobs, 2), "hash")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "test_dataset"), "id")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "knobs"), "epochs")), 30);
    json_decref(jobs);
    /* A raw extractor is not fitted; no test dataset: no test part. */
    json_object_set_new(json_object_get(pca, "spec"), "extractor", json_string("raw"));
    json_object_del(json_object_get(pca, "spec"), "k");
    jobs = finetune_head_jobs(pca, train, NULL, NULL, &err, &bad);
    assert_int_equal(json_array_size(jobs), 3);
    assert_true(json_is_null(json_object_get(json_object_get(json_array_get(jobs, 0), "payload"), "fit")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(json_array_get(jobs, 2), "payload"), "test")), 0);
    json_decref(jobs);
    /* Knobs are checked. */
    json_t *k = json_pack("{s:i}", "epochs", 0);
    assert_null(finetune_head_jobs(pca, train, NULL, k, &err, &bad));
    assert_string_equal(bad, "epochs");
    free(err);
    json_decref(k);
    json_decref(pca);
    json_decref(train);
    json_decref(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_payload_and_run),
        cmocka_unit_test(test_replay_unrecorded_pair),
        cmocka_unit_test(test_replay_payload_errors),
        cmocka_unit_test(test_knob_defaults),
        cmocka_unit_test(test_knob_overrides_and_errors),
        cmocka_unit_test(test_head_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
