/* The host API's proxy jobs on file data (executor/workers/strategy_host.h
 * strategy_host_proxy_jobs), without a database: the payloads are compared with ones written
 * here by hand the way executor/task.c's build_jobs writes a ranking's (embed {model as
 * load_models names it, dataset, fit}, proxy {proxy, model_id, train/test parts naming the
 * embed hashes with no changes}), and their hashes with queue_job_hash of those. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/hash.h"
#include "executor/workers/proxy_job.h"
#include "executor/workers/strategy_host.h"
#include "queue/queue.h"

/* A strategy payload's model entry: catalog row included (batch_size is read from it). */
static json_t *strategy_model(const char *runner, json_t *spec)
{
    return json_pack("{s:i, s:s, s:s, s:s, s:o, s:{s:i, s:s, s:i}}", "id", 4, "name", "b/m",
                     "runner", runner, "modality", "image", "spec", spec, "catalog", "id", 4,
                     "name", "b/m", "batch_size", 256);
}

static json_t *dataset(int id, int start, int stop)
{
    return json_pack("{s:i, s:s, s:s, s:s, s:{s:s}, s:n, s:i, s:i}", "id", id, "name", "d",
                     "format", "idx", "location", "/x/images.gz", "spec", "labels",
                     "/x/labels.gz", "digest", "start", start, "stop", stop);
}

/* The ranking's proxy job for the model on (train, test), written by hand. */
static void check_jobs(const char *runner, json_t *spec, bool fitted)
{
    json_t *model = strategy_model(runner, json_deep_copy(spec));
    json_t *tr = dataset(1, 0, 600), *te = dataset(2, 0, 300);
    json_t *data = json_pack("{s:[O], s:[O]}", "train", tr, "test", te);
    char *err = NULL;
    json_t *canon = proxy_job_canonical("nn", NULL, &err);
    assert_non_null(canon);
    json_t *jobs = strategy_host_proxy_jobs(model, data, canon, &err);
    assert_non_null(jobs);
    assert_int_equal(json_array_size(jobs), 3);

    json_t *eobj = json_pack("{s:i, s:s, s:s, s:s, s:O, s:i}", "id", 4, "name", "b/m", "runner",
                             runner, "modality", "image", "spec", spec, "batch_size", 256);
    json_t *fit = fitted ? json_incref(tr) : json_null();
    char he[2][HASH_HEX_LEN + 1];
    for (int i = 0; i < 2; i++) {
        json_t *want = json_pack("{s:O, s:O, s:O}", "model", eobj, "dataset", i ? te : tr,
                                 "fit", fit);
        queue_job_hash("embed", want, he[i]);
        json_t *j = json_array_get(jobs, (size_t)i);
        assert_string_equal(json_string_value(json_object_get(j, "kind")), "embed");
        assert_true(json_equal(json_object_get(j, "payload"), want));
        assert_string_equal(json_string_value(json_object_get(j, "hash")), he[i]);
        json_decref(want);
    }
    json_t *want = json_pack("{s:{s:s, s:{s:i, s:s}}, s:i, s:[{s:s, s:[]}], s:[{s:s, s:[]}]}",
                             "proxy", "name", "nn", "params", "k", 1, "metric", "euclidean",
                             "model_id", 4, "train", "features", he[0], "changes", "test",
                             "features", he[1], "changes");
    char hp[HASH_HEX_LEN + 1];
    queue_job_hash("proxy", want, hp);
    json_t *j = json_array_get(jobs, 2);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "proxy");
    assert_true(json_equal(json_object_get(j, "payload"), want));
    assert_string_equal(json_string_value(json_object_get(j, "hash")), hp);

    json_decref(want);
    json_decref(fit);
    json_decref(eobj);
    json_decref(jobs);
    json_decref(canon);
    json_decref(data);
    json_decref(tr);
    json_decref(te);
    json_decref(model);
    json_decref(spec);
}

static void test_fitted_builtin(void **state)
{
    (void)state;
    /* PCA is fitted: its embed jobs name the first train dataset as "fit". */
    check_jobs("builtin", json_pack("{s:s, s:i}", "extractor", "pca", "k", 8), true);
}

static void test_unfitted_and_exec(void **state)
{
    (void)state;
    check_jobs("builtin", json_pack("{s:s}", "extractor", "raw"), false);
    /* Only builtin extractors are fitted; an exec model with a "pca" spec is not. */
    check_jobs("exec", json_pack("{s:s, s:i}", "extractor", "pca", "k", 8), false);
}

static void test_errors(void **state)
{
    (void)state;
    char *err = NULL;
    json_t *canon = proxy_job_canonical("nn", NULL, &err);
    json_t *replay = strategy_model("replay", json_object());
    json_t *data = json_pack("{s:[{s:i}], s:[]}", "train", "id", 1, "test");
    assert_null(strategy_host_proxy_jobs(replay, data, canon, &err));
    assert_non_null(strstr(err, "model b/m has runner replay, which has no features here"));
    free(err);
    err = NULL;
    json_t *raw = strategy_model("builtin", json_pack("{s:s}", "extractor", "raw"));
    json_t *empty = json_pack("{s:[], s:[]}", "train", "test");
    assert_null(strategy_host_proxy_jobs(raw, empty, canon, &err));
    assert_non_null(strstr(err, "carries no file datasets"));
    free(err);
    json_decref(empty);
    json_decref(raw);
    json_decref(data);
    json_decref(replay);
    json_decref(canon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fitted_builtin),
        cmocka_unit_test(test_unfitted_and_exec),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
