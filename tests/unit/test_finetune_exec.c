/* Exec fine-tunes (executor/workers/finetune/exec_ft.c, the finetune operation of
 * runners/exec.c) with examples/exec/finetune_centroid.py on a tiny IDX set whose answer is
 * known by construction: 3 classes of 2×2 images with pixels 50·class + jitter < 5, so the
 * nearest class centroid is always the right class, and a test set of 4 rows where one
 * class-2 image is labelled 0 (accuracy exactly 3/4, train accuracy 1). Also the holdout
 * split, the weights file, the command's failure message, and a bad result. */
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
#include <jansson.h>

#include "common/util.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/jobs.h"

#define SCRIPT "examples/exec/finetune_centroid.py"
static char dir[64], images[128], labels[128];
static const char HASH[] = "cc00000000000000000000000000000000000000000000000000000000000004";

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rankql-ftx-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(images, sizeof images, "%s/img-idx3-ubyte", dir);
    snprintf(labels, sizeof labels, "%s/lab-idx1-ubyte", dir);
    /* Rows 0..11: 4 per class (train); rows 12..15: classes 0, 1, 2, and a class-2 image
     * labelled 0. */
    enum { N = 16 };
    uint8_t img[16 + N * 4], lab[8 + N];
    put_be32(img, 0x00000803), put_be32(img + 4, N), put_be32(img + 8, 2), put_be32(img + 12, 2);
    put_be32(lab, 0x00000801), put_be32(lab + 4, N);
    for (int i = 0; i < N; i++) {
        int look = i < 12 ? i % 3 : (i == 15 ? 2 : i - 12);
        lab[8 + i] = (uint8_t)(i < 12 ? i % 3 : (i == 15 ? 0 : i - 12));
        for (int p = 0; p < 4; p++)
            img[16 + i * 4 + p] = (uint8_t)(50 * look + (i * 3 + p) % 5);
    }
    write_bytes(images, img, sizeof img);
    write_bytes(labels, lab, sizeof lab);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

static json_t *data(int start, int stop)
{
    return json_pack("{s:i, s:s, s:s, s:s, s:{s:s}, s:i, s:i}", "id", 1, "name", "toy", "format",
                     "idx", "location", images, "spec", "labels", labels, "start", start, "stop",
                     stop);
}

static json_t *payload(const char *extra_arg, json_t *train, json_t *test, json_t *given)
{
    char *err = NULL;
    const char *bad;
    json_t *k = finetune_knobs_resolve(finetune_knob_config("exec"), given, &err, &bad);
    assert_non_null(k);
    json_decref(given);
    json_t *cmd = json_pack("[s, s]", "python3", SCRIPT);
    if (extra_arg)
        json_array_append_new(cmd, json_pack("s", "--fail")), json_array_append_new(cmd, json_string(extra_arg));
    return json_pack("{s:s, s:{s:i, s:s, s:s, s:s, s:{s:o, s:i}}, s:[o], s:o, s:o}", "runner",
                     "exec", "model", "id", 9, "name", "ex", "runner", "exec", "modality",
                     "image", "spec", "command", cmd, "timeout_seconds", 60, "train_data",
                     train, "test_data", test ? json_pack("[o]", test) : json_array(), "knobs",
                     k);
}

static int run(const json_t *p, json_t **res, char **err, bool *perm)
{
    job_ctx ctx = {.data_dir = dir, .job_id = 1, .hash = HASH};
    return job_runner_find("finetune")->run(&ctx, p, res, err, perm);
}

static void test_exec_finetune(void **state)
{
    (void)state;
    json_t *p = payload(NULL, data(0, 12), data(12, 16), json_pack("{s:i}", "epochs", 3));
    json_t *res = NULL;
    char *err = NULL;
    bool perm;
    if (run(p, &res, &err, &perm) != 0)
        fail_msg("run: %s", err);
    assert_float_equal(json_number_value(json_object_get(res, "test_accuracy")), 0.75, 0);
    assert_float_equal(json_number_value(json_object_get(res, "train_accuracy")), 1.0, 0);
    assert_int_equal(json_integer_value(json_object_get(res, "train_size")), 12);
    /* The script saw the resolved knobs. */
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(res, "answer"), "knobs"), "epochs")),
                     3);
    const char *rel = json_string_value(json_object_get(res, "path"));
    assert_non_null(rel);
    char *w = xasprintf("%s/%s", dir, rel);
    json_t *weights = json_load_file(w, 0, NULL);
    /* Centroid of class 1, pixel 0: rows 1, 4, 7, 10 → 50 + (3i mod 5) = 53, 52, 51, 50. */
    double c10 = json_number_value(json_array_get(
        json_array_get(json_object_get(weights, "centroids"), 1), 0));
    assert_float_equal(c10, (53 + 52 + 51 + 50) / 4.0 / 255.0, 1e-12);
    json_decref(weights);
    free(w);
    assert_string_equal(json_string_value(json_object_get(res, "model_name")), "ex@ft-cc000000");
    json_decref(res);
    json_decref(p);
    /* No test dataset: holdout 0.25 of rows 0..15 holds out the same 4 test rows. */
    p = payload(NULL, data(0, 16), NULL, json_pack("{s:f}", "holdout", 0.25));
    if (run(p, &res, &err, &perm) != 0)
        fail_msg("holdout: %s", err);
    assert_int_equal(json_integer_value(json_object_get(res, "test_size")), 4);
    assert_float_equal(json_number_value(json_object_get(res, "test_accuracy")), 0.75, 0);
    json_decref(res);
    json_decref(p);
}

static void test_exec_finetune_failures(void **state)
{
    (void)state;
    json_t *p = payload("out of GPU memory", data(0, 12), data(12, 16), NULL);
    json_t *res = NULL;
    char *err = NULL;
    bool perm = false;
    assert_int_equal(run(p, &res, &err, &perm), -1);
    assert_true(perm);
    assert_non_null(strstr(err, "exited with status 3: out of GPU memory"));
    free(err);
    json_decref(p);
    /* A command that writes no result. */
    p = payload(NULL, data(0, 12), data(12, 16), NULL);
    json_t *cmd = json_object_get(json_object_get(json_object_get(p, "model"), "spec"), "command");
    json_array_clear(cmd);
    json_array_append_new(cmd, json_string("true"));
    assert_int_equal(run(p, &res, &err, &perm), -1);
    assert_non_null(strstr(err, "wrote no valid $RANKQL_OUTPUT"));
    free(err);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_finetune),
        cmocka_unit_test(test_exec_finetune_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
