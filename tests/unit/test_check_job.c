/* The check job (executor/workers/check_job.h): the classification of outputs (shape,
 * finiteness), parameter counts of builtin extractors, latency arithmetic, and whole check
 * runs of builtin, exec and replay models without a database (store() is exercised by
 * tests/integration/test_checks.sh). Run from the repository root (examples/exec/). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "executor/workers/check_job.h"

#define EXAMPLE "examples/exec/embed_mean.py"

/* ---- classification ------------------------------------------------------------------- */

static void test_output_usable(void **state)
{
    (void)state;
    float x[6] = {0, 1.5f, -2, 3, 4, 1e30f};
    char *msg = (char *)"unset";
    assert_int_equal(check_output(x, 2, 3, 3, &msg), CHECK_USABLE);
    assert_null(msg);
    /* no dimension in the catalog: any width passes */
    assert_int_equal(check_output(x, 3, 2, 0, &msg), CHECK_USABLE);
    assert_null(msg);
}

static void test_output_wrong_dimension(void **state)
{
    (void)state;
    float x[14] = {0};
    char *msg = NULL;
    assert_int_equal(check_output(x, 2, 7, 10, &msg), CHECK_NONUSABLE);
    assert_string_equal(msg, "the output has 7 values per sample, but the catalog's dimension is 10");
    free(msg);
    assert_int_equal(check_output(x, 2, 0, 0, &msg), CHECK_NONUSABLE);
    assert_string_equal(msg, "the output has 0 values per sample");
    free(msg);
}

static void test_output_not_finite(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6};
    char *msg = NULL;
    x[5] = NAN; /* sample 1, value 2 */
    assert_int_equal(check_output(x, 2, 3, 3, &msg), CHECK_NONUSABLE);
    assert_string_equal(msg, "the output is not finite: NaN at sample 1, value 2");
    free(msg);
    x[5] = 6;
    x[1] = -INFINITY; /* sample 0, value 1: the first offence is named */
    x[4] = INFINITY;
    assert_int_equal(check_output(x, 2, 3, 3, &msg), CHECK_NONUSABLE);
    assert_string_equal(msg, "the output is not finite: -Infinity at sample 0, value 1");
    free(msg);
    /* the dimension is checked before the values */
    assert_int_equal(check_output(x, 3, 2, 3, &msg), CHECK_NONUSABLE);
    assert_non_null(strstr(msg, "2 values per sample"));
    free(msg);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(check_status_name(CHECK_USABLE), "USABLE");
    assert_string_equal(check_status_name(CHECK_NONUSABLE), "NONUSABLE");
    assert_string_equal(check_status_name(CHECK_INVALID), "INVALID");
    assert_string_equal(check_status_name(CHECK_UNCHECKED), "UNCHECKED");
}

static embed_spec spec_of(const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    assert_non_null(o);
    embed_spec s;
    char *err = NULL;
    assert_int_equal(embed_spec_from_json(o, &s, &err), 0);
    json_decref(o);
    return s;
}

static void test_builtin_params(void **state)
{
    (void)state;
    embed_shape mnist = {28, 28, 1, false}, rgb = {32, 32, 3, false};
    embed_spec s = spec_of("{\"extractor\": \"pca\", \"k\": 8}");
    assert_int_equal(check_builtin_params(&s, mnist), 8 * 784 + 784); /* components + mean */
    s = spec_of("{\"extractor\": \"random_projection\", \"k\": 16}");
    assert_int_equal(check_builtin_params(&s, mnist), 784 * 16);
    s = spec_of("{\"extractor\": \"random_fourier\"}"); /* k = 512 */
    assert_int_equal(check_builtin_params(&s, mnist), 784 * 512 + 512);
    s = spec_of("{\"extractor\": \"random_conv\", \"width\": 32, \"ksize\": 5}");
    assert_int_equal(check_builtin_params(&s, rgb), 32 * 5 * 5 * 3);
    s = spec_of("{\"extractor\": \"hog\"}");
    assert_int_equal(check_builtin_params(&s, mnist), 0);
    s = spec_of("{\"extractor\": \"raw\"}");
    assert_int_equal(check_builtin_params(&s, mnist), 0);
}

static void test_latency_and_bytes(void **state)
{
    (void)state;
    assert_true(fabs(check_latency_ms(0.5, 1000) - 0.5) < 1e-12);
    assert_true(fabs(check_latency_ms(2.0, 16) - 125.0) < 1e-12);
    assert_true(check_latency_ms(1.0, 0) == 0);
    uint8_t a[10000], b[10000], c[10000];
    check_synthetic_bytes(a, sizeof a, 1);
    check_synthetic_bytes(b, sizeof b, 1);
    check_synthetic_bytes(c, sizeof c, 2);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    /* roughly uniform: the mean of 10k uniform bytes is 127.5 ± 0.74 (sd); allow 5 sd */
    double sum = 0;
    for (size_t i = 0; i < sizeof a; i++)
        sum += a[i];
    assert_true(fabs(sum / (double)sizeof a - 127.5) < 3.7);
    assert_true(strncmp(check_device(), "cpu: ", 5) == 0);
}

/* ---- whole runs ----------------------------------------------------------------------- */

static json_t *run(const char *payload_json, bool expect_ok)
{
    json_t *p = json_loads(payload_json, 0, NULL);
    assert_non_null(p);
    job_ctx ctx = {.data_dir = "/nonexistent", .job_id = 1, .hash = "x"};
    json_t *result = NULL;
    char *err = NULL;
    bool permanent = false;
    int rc = check_job_runner.run(&ctx, p, &result, &err, &permanent);
    json_decref(p);
    if (expect_ok && rc != 0)
        fail_msg("check job failed: %s", err);
    if (!expect_ok) {
        assert_int_equal(rc, -1);
        assert_non_null(err);
        free(err);
        return NULL;
    }
    assert_null(err);
    assert_non_null(result);
    return result;
}

static const char *status_of(const json_t *r)
{
    return json_string_value(json_object_get(r, "status"));
}

static const char *message_of(const json_t *r)
{
    return json_string_value(json_object_get(r, "message"));
}

static void test_run_builtin(void **state)
{
    (void)state;
    json_t *r = run("{\"model\": {\"id\": 3, \"name\": \"t/pca\", \"runner\": \"builtin\","
                    " \"modality\": \"image\", \"spec\": {\"extractor\": \"pca\", \"k\": 8},"
                    " \"image_size\": 28, \"dimension\": 8}, \"samples\": 8}", true);
    assert_string_equal(status_of(r), "USABLE");
    assert_int_equal(json_integer_value(json_object_get(r, "dimension")), 8);
    assert_int_equal(json_integer_value(json_object_get(r, "num_params")), 8 * 784 + 784);
    double lat = json_number_value(json_object_get(r, "latency_ms"));
    assert_true(lat > 0 && isfinite(lat) && lat < 1000);
    assert_int_equal(json_integer_value(json_object_get(r, "samples")), 8);
    assert_non_null(strstr(message_of(r), "8 synthetic 28x28x1 images: 8 values each"));
    json_decref(r);

    /* hog on 16×16: (16/4 - 1)² blocks × 2² cells × 9 bins = 324 values, no parameters */
    r = run("{\"model\": {\"id\": 3, \"runner\": \"builtin\", \"modality\": \"image\","
            " \"spec\": {\"extractor\": \"hog\"}, \"image_size\": 16}}", true);
    assert_string_equal(status_of(r), "USABLE");
    assert_int_equal(json_integer_value(json_object_get(r, "dimension")), 324);
    assert_true(json_is_null(json_object_get(r, "num_params")));
    json_decref(r);

    /* the catalog's dimension disagrees with what the extractor gives */
    r = run("{\"model\": {\"id\": 3, \"runner\": \"builtin\", \"modality\": \"image\","
            " \"spec\": {\"extractor\": \"raw\"}, \"image_size\": 10, \"dimension\": 99}}", true);
    assert_string_equal(status_of(r), "NONUSABLE");
    assert_string_equal(message_of(r),
                        "the output has 100 values per sample, but the catalog's dimension is 99");
    json_decref(r);

    /* a text model cannot run a builtin extractor */
    r = run("{\"model\": {\"id\": 3, \"runner\": \"builtin\", \"modality\": \"text\","
            " \"spec\": {\"extractor\": \"hog\"}}}", true);
    assert_string_equal(status_of(r), "INVALID");
    assert_non_null(strstr(message_of(r), "cannot embed texts"));
    assert_true(json_is_null(json_object_get(r, "latency_ms")));
    json_decref(r);

    /* an extractor that does not fit the input size: hog cells larger than the image */
    r = run("{\"model\": {\"id\": 3, \"runner\": \"builtin\", \"modality\": \"image\","
            " \"spec\": {\"extractor\": \"hog\", \"cell\": 8}, \"image_size\": 8}}", true);
    assert_string_equal(status_of(r), "INVALID");
    json_decref(r);

    /* a catalog-only runner */
    r = run("{\"model\": {\"id\": 3, \"runner\": \"tfhub\", \"modality\": \"image\"}}", true);
    assert_string_equal(status_of(r), "UNCHECKED");
    json_decref(r);

    /* bad payloads are job failures, not verdicts */
    run("{\"model\": {\"runner\": \"builtin\"}}", false);
    run("{\"model\": {\"id\": 1, \"runner\": \"builtin\"}, \"samples\": 0}", false);
}

static char *exec_payload(const char *args, const char *extra)
{
    return xasprintf("{\"model\": {\"id\": 5, \"name\": \"t/exec\", \"runner\": \"exec\","
                     " \"modality\": \"image\", \"image_size\": 8%s, \"spec\": {\"command\":"
                     " [\"python3\", \"" EXAMPLE "\"%s]}}, \"samples\": 4}",
                     extra, args);
}

static void test_run_exec(void **state)
{
    (void)state;
    assert_int_equal(access(EXAMPLE, R_OK), 0);
    /* the example writes 7 statistics per example */
    char *p = exec_payload("", ", \"dimension\": 7");
    json_t *r = run(p, true);
    free(p);
    assert_string_equal(status_of(r), "USABLE");
    assert_int_equal(json_integer_value(json_object_get(r, "dimension")), 7);
    assert_true(json_number_value(json_object_get(r, "latency_ms")) > 0);
    assert_non_null(strstr(message_of(r), "4 synthetic 8x8x3 images: 7 values each"));
    json_decref(r);

    /* runs, but the catalog says 10 */
    p = exec_payload("", ", \"dimension\": 10");
    r = run(p, true);
    free(p);
    assert_string_equal(status_of(r), "NONUSABLE");
    assert_non_null(strstr(message_of(r), "7 values per sample"));
    assert_true(json_number_value(json_object_get(r, "latency_ms")) > 0);
    json_decref(r);

    /* runs, but every feature is NaN */
    p = exec_payload(", \"--scale\", \"nan\"", "");
    r = run(p, true);
    free(p);
    assert_string_equal(status_of(r), "NONUSABLE");
    assert_non_null(strstr(message_of(r), "not all finite"));
    json_decref(r);

    /* runs, but writes 2 rows for 4 examples */
    p = exec_payload(", \"--limit\", \"2\"", "");
    r = run(p, true);
    free(p);
    assert_string_equal(status_of(r), "NONUSABLE");
    assert_non_null(strstr(message_of(r), "2 rows of features for 4 examples"));
    json_decref(r);

    /* cannot run: exit status 2 from python3 (no such script) */
    r = run("{\"model\": {\"id\": 5, \"runner\": \"exec\", \"modality\": \"image\","
            " \"spec\": {\"command\": [\"python3\", \"/nonexistent/model.py\"]}}}", true);
    assert_string_equal(status_of(r), "INVALID");
    assert_non_null(strstr(message_of(r), "exited with status 2"));
    json_decref(r);

    /* cannot load: a command that does not exist */
    r = run("{\"model\": {\"id\": 5, \"runner\": \"exec\", \"modality\": \"text\","
            " \"spec\": {\"command\": [\"/nonexistent/rankql-model\"]}}}", true);
    assert_string_equal(status_of(r), "INVALID");
    json_decref(r);
}

static void test_run_replay(void **state)
{
    (void)state;
    json_t *r = run("{\"model\": {\"id\": 9, \"runner\": \"replay\", \"modality\": \"image\","
                    " \"spec\": {\"records\": \"/nonexistent/records.csv\","
                    " \"model_identifier\": \"org/a\"}}}", true);
    assert_string_equal(status_of(r), "INVALID");
    assert_non_null(strstr(message_of(r), "records cannot be read"));
    assert_true(json_is_null(json_object_get(r, "latency_ms")));
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_usable),
        cmocka_unit_test(test_output_wrong_dimension),
        cmocka_unit_test(test_output_not_finite),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_builtin_params),
        cmocka_unit_test(test_latency_and_bytes),
        cmocka_unit_test(test_run_builtin),
        cmocka_unit_test(test_run_exec),
        cmocka_unit_test(test_run_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
