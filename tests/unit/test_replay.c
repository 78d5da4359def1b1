/* The replay runner's records reader (executor/workers/runners/replay.c) and replay proxy
 * jobs (executor/workers/proxy_job.c, a payload with "replay"): RFC 4180 quoting, missing
 * columns and malformed rows, the rule for several runs of one (model, dataset) — the best
 * test_accuracy (ties: the first run), elapsed_time summed over every run — with values
 * computed by hand on tests/fixtures/replay-records.csv, and run() answering from the
 * records (no database needed). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/hash.h"
#include "common/util.h"
#include "executor/workers/jobs.h"
#include "executor/workers/proxy_job.h"
#include "executor/workers/runners/replay.h"

#define FIXTURE "tests/fixtures/replay-records.csv"

static replay_records *parse_ok(const char *text)
{
    replay_records *r = NULL;
    char *err = NULL;
    if (replay_records_parse(text, strlen(text), "t.csv", &r, &err) != 0)
        fail_msg("parse failed: %s", err);
    assert_non_null(r);
    return r;
}

static void parse_fails(const char *text, const char *want)
{
    replay_records *r = NULL;
    char *err = NULL;
    assert_int_equal(replay_records_parse(text, strlen(text), "t.csv", &r, &err), -1);
    assert_null(r);
    assert_non_null(err);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    free(err);
}

/* ---- the reader ---------------------------------------------------------------------- */

static void test_quoting(void **state)
{
    (void)state;
    /* A BOM, CRLF line ends, quoted commas, "" and a line break inside quotes, the columns in
     * another order and an extra one. */
    const char *text =
        "\xEF\xBB\xBF" "configs,test_accuracy,note,train_dataset_name,elapsed_time,model_identifier\r\n"
        "\"{'lr': 0.01, 'x': \"\"y\"\"}\",0.5,\"a,b\",d1,10,m/one\r\n"
        "\"two\nlines, here\",0.25,,d1,5,\"m/two\"\r\n"
        "plain,1,\"\",\"d,2\",0,m/one\r\n";
    replay_records *r = parse_ok(text);
    assert_int_equal(r->nrows, 3);
    assert_int_equal(r->npairs, 3);
    const replay_pair *p = replay_find(r, "m/one", "d1");
    assert_non_null(p);
    assert_string_equal(p->configs, "{'lr': 0.01, 'x': \"y\"}");
    assert_true(fabs(p->test_accuracy - 0.5) < 1e-12);
    assert_int_equal(p->line, 2);
    p = replay_find(r, "m/two", "d1");
    assert_non_null(p);
    assert_string_equal(p->configs, "two\nlines, here");
    assert_int_equal(p->line, 3);
    p = replay_find(r, "m/one", "d,2"); /* the record after a two-line one starts on line 5 */
    assert_non_null(p);
    assert_int_equal(p->line, 5);
    assert_true(fabs(p->test_accuracy - 1.0) < 1e-12);
    assert_null(replay_find(r, "m/two", "d,2"));
    assert_true(replay_has_model(r, "m/two"));
    assert_false(replay_has_model(r, "m/three"));
    assert_true(replay_has_dataset(r, "d,2"));
    assert_false(replay_has_dataset(r, "d2"));
    char hex[HASH_HEX_LEN + 1];
    sha256_hex(text, strlen(text), hex);
    assert_string_equal(r->digest, hex);
    replay_records_free(r);

    /* No final line break, no configs column. */
    r = parse_ok("model_identifier,train_dataset_name,test_accuracy,elapsed_time\nm,d,0.1,2");
    assert_int_equal(r->npairs, 1);
    assert_null(r->pairs[0].configs);
    replay_records_free(r);
    /* A header alone: no runs, no error; blank lines are skipped. */
    r = parse_ok("model_identifier,train_dataset_name,test_accuracy,elapsed_time\n\n");
    assert_int_equal(r->npairs, 0);
    assert_null(replay_find(r, "m", "d"));
    replay_records_free(r);
}

static void test_bad_files(void **state)
{
    (void)state;
    parse_fails("", "empty file");
    parse_fails("model_identifier,train_dataset_name,elapsed_time\nm,d,1\n",
                "no column \"test_accuracy\"");
    parse_fails("hash,train_dataset_name,test_accuracy,elapsed_time\n1,d,0.5,1\n",
                "no column \"model_identifier\"");
    const char *h = "model_identifier,train_dataset_name,test_accuracy,elapsed_time\n";
    char *t = xasprintf("%sm,d,0.5,1\nm,\"d,0.5,1\n", h);
    parse_fails(t, "line 3: a quoted field is not closed");
    free(t);
    t = xasprintf("%sm,d,0.5\n", h);
    parse_fails(t, "line 2 has 3 fields, the header 4");
    free(t);
    t = xasprintf("%sm,\"d\"x,0.5,1\n", h);
    parse_fails(t, "text after the closing quote");
    free(t);
    t = xasprintf("%sm,d,76.1,1\n", h);
    parse_fails(t, "line 2: test_accuracy must be a number in [0, 1], not \"76.1\"");
    free(t);
    t = xasprintf("%sm,d,,1\n", h);
    parse_fails(t, "test_accuracy must be a number");
    free(t);
    t = xasprintf("%sm,d,0.5,-3\n", h);
    parse_fails(t, "elapsed_time must be a number of seconds");
    free(t);
    t = xasprintf("%s,d,0.5,3\n", h);
    parse_fails(t, "line 2: empty model_identifier");
    free(t);
    replay_records *r = NULL;
    char *err = NULL;
    assert_int_equal(replay_records_load("/nonexistent/records.csv", &r, &err), -1);
    assert_non_null(strstr(err, "cannot be read"));
    free(err);
}

/* The fixture, by hand: org/alpha on dmlab ran twice (0.40 at line 2, 0.25; 100 + 50.5 s),
 * org/beta once (0.55, line 4, 200 s), org/gamma three times (0.30, 0.35 at line 6, 0.35
 * again at line 7; 30 + 40 + 10 s); on eurosat org/beta 0.90 and org/delta 0.80 (a configs
 * field over two lines). org/delta has no run on dmlab. */
static void test_several_runs(void **state)
{
    (void)state;
    replay_records *r = NULL;
    char *err = NULL;
    if (replay_records_load(FIXTURE, &r, &err) != 0)
        fail_msg("%s", err);
    assert_int_equal(r->nrows, 8);
    assert_int_equal(r->npairs, 5);
    const replay_pair *p = replay_find(r, "org/alpha", "dmlab");
    assert_non_null(p);
    assert_int_equal(p->runs, 2);
    assert_true(fabs(p->test_accuracy - 0.40) < 1e-12); /* the best, not the mean 0.325 */
    assert_true(fabs(p->elapsed_seconds - 150.5) < 1e-9);
    assert_int_equal(p->line, 2);
    assert_string_equal(p->configs, "{'lr': 0.01, 'feature_name': 'image'}");
    p = replay_find(r, "org/beta", "dmlab");
    assert_non_null(p);
    assert_int_equal(p->runs, 1);
    assert_true(fabs(p->test_accuracy - 0.55) < 1e-12);
    assert_true(fabs(p->elapsed_seconds - 200) < 1e-9);
    assert_string_equal(p->configs, "{'lr': 0.01, 'label_name': \"label\"}");
    p = replay_find(r, "org/gamma", "dmlab");
    assert_non_null(p);
    assert_int_equal(p->runs, 3);
    assert_true(fabs(p->test_accuracy - 0.35) < 1e-12);
    assert_true(fabs(p->elapsed_seconds - 80) < 1e-9);
    assert_int_equal(p->line, 6); /* a tie keeps the first run */
    assert_string_equal(p->configs, "{'lr': 0.1}");
    p = replay_find(r, "org/delta", "eurosat");
    assert_non_null(p);
    assert_string_equal(p->configs, "{'lr': 0.01,\n 'preprocess': 'two, lines'}");
    assert_int_equal(p->line, 9);
    assert_null(replay_find(r, "org/delta", "dmlab"));
    assert_true(replay_has_model(r, "org/delta"));
    assert_true(replay_has_dataset(r, "eurosat"));
    char hex[HASH_HEX_LEN + 1];
    assert_int_equal(replay_file_digest(FIXTURE, hex, &err), 0);
    assert_string_equal(hex, r->digest);
    replay_records_free(r);
}

/* ---- replay proxy jobs ----------------------------------------------------------------- */

static json_t *replay_payload(const char *proxy, const char *model, const char *task,
                              const char *digest)
{
    char *e = NULL;
    json_t *canon = proxy_job_canonical(proxy, NULL, &e);
    assert_non_null(canon);
    return json_pack("{s:o, s:i, s:{s:s, s:s, s:s, s:s}}", "proxy", canon, "model_id", 7,
                     "replay", "records", FIXTURE, "model_identifier", model,
                     "train_dataset_name", task, "digest", digest);
}

static json_t *run_ok(const json_t *payload)
{
    job_ctx ctx = {.data_dir = "/nonexistent"};
    json_t *res = NULL;
    char *err = NULL;
    bool permanent = false;
    if (proxy_job_runner.run(&ctx, payload, &res, &err, &permanent) != 0)
        fail_msg("run failed: %s", err);
    return res;
}

static void run_fails(const json_t *payload, const char *want)
{
    job_ctx ctx = {.data_dir = "/nonexistent"};
    json_t *res = NULL;
    char *err = NULL;
    bool permanent = false;
    assert_int_equal(proxy_job_runner.run(&ctx, payload, &res, &err, &permanent), -1);
    assert_null(res);
    assert_true(permanent);
    if (!err || !strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err ? err : "(none)", want);
    free(err);
}

static void test_replay_job(void **state)
{
    (void)state;
    char digest[HASH_HEX_LEN + 1];
    char *e = NULL;
    assert_int_equal(replay_file_digest(FIXTURE, digest, &e), 0);
    static const struct { const char *model; double err, elapsed; int runs; } want[] = {
        {"org/alpha", 0.60, 150.5, 2}, {"org/beta", 0.45, 200, 1}, {"org/gamma", 0.65, 80, 3}};
    for (size_t i = 0; i < 3; i++) {
        json_t *pl = replay_payload("nn", want[i].model, "dmlab", digest);
        json_t *res = run_ok(pl);
        assert_true(fabs(json_real_value(json_object_get(res, "err")) - want[i].err) < 1e-12);
        assert_true(fabs(json_real_value(json_object_get(res, "elapsed_seconds")) -
                         want[i].elapsed) < 1e-9);
        assert_int_equal(json_integer_value(json_object_get(res, "runs")), want[i].runs);
        assert_string_equal(json_string_value(json_object_get(json_object_get(res, "proxy"), "name")),
                            "nn");
        assert_true(json_is_null(json_object_get(res, "raw_error")));
        assert_true(json_is_object(json_object_get(res, "details")));
        json_decref(res);
        json_decref(pl);
    }
    /* Every proxy gets the recorded fine-tune accuracy. */
    json_t *pl = replay_payload("logme", "org/beta", "eurosat", digest);
    json_t *res = run_ok(pl);
    assert_true(fabs(json_real_value(json_object_get(res, "err")) - 0.10) < 1e-12);
    json_decref(res);
    json_decref(pl);

    pl = replay_payload("linear", "org/delta", "dmlab", digest);
    run_fails(pl, "no recorded run of org/delta on dmlab");
    json_decref(pl);
    pl = replay_payload("nn", "org/alpha", "dmlab",
                        "0000000000000000000000000000000000000000000000000000000000000000");
    run_fails(pl, "changed since the query was planned");
    json_decref(pl);
    pl = replay_payload("nn", "org/alpha", "dmlab", "not-a-digest");
    run_fails(pl, "replay.digest must be 64");
    json_decref(pl);
    pl = replay_payload("nn", "org/alpha", "dmlab", digest);
    json_object_set_new(pl, "train", json_array());
    run_fails(pl, "unknown key \"train\" beside \"replay\"");
    json_decref(pl);
    pl = replay_payload("nn", "org/alpha", "dmlab", digest);
    json_object_set_new(json_object_get(pl, "replay"), "extra", json_true());
    run_fails(pl, "unknown key \"extra\" in \"replay\"");
    json_decref(pl);
    pl = replay_payload("nn", "org/alpha", "dmlab", digest);
    json_object_del(json_object_get(pl, "replay"), "model_identifier");
    run_fails(pl, "replay.model_identifier must be a non-empty string");
    json_decref(pl);
    pl = replay_payload("nn", "org/alpha", "dmlab", digest);
    json_object_set_new(json_object_get(pl, "replay"), "records",
                        json_string("/nonexistent/records.csv"));
    run_fails(pl, "cannot be read");
    json_decref(pl);
}

int main(void)
{
    if (access(FIXTURE, R_OK) != 0 && getenv("RANKQL_ROOT"))
        if (chdir(getenv("RANKQL_ROOT")) != 0)
            return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_several_runs),
        cmocka_unit_test(test_replay_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
