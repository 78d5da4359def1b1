/* The head trainer (executor/workers/finetune/head.c) and head fine-tune jobs
 * (finetune/head_job.c) without a database: convergence on synthetic sets whose accuracies
 * are known by construction (two separated blobs; XOR, which a linear head cannot fit beyond
 * 3 of 4 corners and an MLP fits exactly; a deliberately mislabelled test point), checkpoint
 * files (round trip, torn, foreign key), resume equivalence (train k epochs, checkpoint,
 * reload, finish = bit-identical to an uninterrupted run), and a whole job run on feature
 * files (holdout split, weights file, checkpoint removed, resume after a stop). */
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
#include <jansson.h>

#include "common/util.h"
#include "executor/workers/featstore.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/finetune/head.h"
#include "executor/workers/finetune/head_job.h"
#include "executor/workers/finetune/head_math.h"
#include "executor/workers/jobs.h"

static head_knobs knobs(head_kind kind, int epochs)
{
    head_knobs k = {.kind = kind, .hidden = 16, .lr = 0.1, .weight_decay = 1e-4,
                    .momentum = 0.9, .epochs = epochs, .batch_size = 8, .seed = 7};
    return k;
}

/* Two blobs in 2-D: class 0 around (−2, 0), class 1 around (+2, 0), jitter in [−0.5, 0.5]. */
static void blobs(size_t n, float *x, int32_t *y, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 2);
        x[2 * i] = (y[i] ? 2.0f : -2.0f) + head_rng_uniform(&seed) - 0.5f;
        x[2 * i + 1] = 3.0f * (head_rng_uniform(&seed) - 0.5f);
    }
}

static void test_linear_separable(void **state)
{
    (void)state;
    enum { N = 200 };
    float x[2 * N];
    int32_t y[N];
    blobs(N, x, y, 1);
    head_knobs k = knobs(HEAD_LINEAR, 20);
    head_net net;
    head_state st;
    head_init(&net, &st, &k, x, N, 2, 2);
    assert_int_equal(net.nparams, 2 * 2 + 2);
    char *err = NULL;
    assert_int_equal(head_train(&net, &st, &k, x, y, N, NULL, NULL, &err), 0);
    assert_int_equal(st.epoch, 20);
    assert_float_equal(head_accuracy(&net, x, y, N), 1.0, 0);
    /* Four test points: three on their class's side, one labelled against its side, so the
     * accuracy is exactly 3/4. */
    float tx[] = {-3, 0, 3, 0, -3, 1, 3, 1};
    int32_t ty[] = {0, 1, 0, 0};
    assert_float_equal(head_accuracy(&net, tx, ty, 4), 0.75, 0);
    head_net_free(&net);
    head_state_free(&st);
}

/* XOR of the signs: corners (±1, ±1) labelled 1 when the signs differ. */
static void xor_set(size_t n, float *x, int32_t *y)
{
    uint64_t s = 3;
    for (size_t i = 0; i < n; i++) {
        float a = (i & 1) ? 1.0f : -1.0f, b = (i & 2) ? 1.0f : -1.0f;
        x[2 * i] = a + 0.2f * (head_rng_uniform(&s) - 0.5f);
        x[2 * i + 1] = b + 0.2f * (head_rng_uniform(&s) - 0.5f);
        y[i] = (a > 0) != (b > 0);
    }
}

static void test_mlp_fits_xor_linear_cannot(void **state)
{
    (void)state;
    enum { N = 200 };
    float x[2 * N];
    int32_t y[N];
    xor_set(N, x, y);
    float cx[] = {-1, -1, 1, -1, -1, 1, 1, 1};
    int32_t cy[] = {0, 1, 1, 0};
    head_knobs k = knobs(HEAD_MLP, 60);
    head_net net;
    head_state st;
    char *err = NULL;
    head_init(&net, &st, &k, x, N, 2, 2);
    assert_int_equal(net.nparams, 16 * 2 + 16 + 2 * 16 + 2);
    assert_int_equal(head_train(&net, &st, &k, x, y, N, NULL, NULL, &err), 0);
    assert_float_equal(head_accuracy(&net, cx, cy, 4), 1.0, 0);
    head_net_free(&net);
    head_state_free(&st);
    /* A line splits 4 XOR corners at best 3 : 1. */
    k = knobs(HEAD_LINEAR, 60);
    head_init(&net, &st, &k, x, N, 2, 2);
    assert_int_equal(head_train(&net, &st, &k, x, y, N, NULL, NULL, &err), 0);
    assert_true(head_accuracy(&net, cx, cy, 4) <= 0.75);
    head_net_free(&net);
    head_state_free(&st);
}

static void test_rng_and_softmax(void **state)
{
    (void)state;
    /* splitmix64 from 0: the reference sequence's first value. */
    uint64_t s = 0;
    assert_true(head_rng_next(&s) == 0xe220a8397b1dcdafull);
    /* softmax − onehot of (0, ln 3): p = (1/4, 3/4); label 1 → (1/4, −1/4), loss ln(4/3). */
    float z[2] = {0.0f, logf(3.0f)};
    float loss = head_softmax_grad(z, 2, 1);
    assert_float_equal(z[0], 0.25, 1e-6);
    assert_float_equal(z[1], -0.25, 1e-6);
    assert_float_equal(loss, log(4.0 / 3.0), 1e-6);
}

static char *scratch(void)
{
    char tmpl[] = "/tmp/rankql-ft-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

static const char KEY[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* Stops training after `at` epochs, writing a checkpoint there. */
typedef struct stop_at {
    uint32_t at;
    const char *path;
} stop_at;

static int stop_cb(void *arg, const head_net *net, const head_state *st, double loss)
{
    (void)loss;
    stop_at *s = arg;
    if (st->epoch < s->at)
        return 0;
    char *err = NULL;
    if (head_file_write(s->path, KEY, net, st, &err) != 0)
        fail_msg("checkpoint: %s", err);
    return 1;
}

static void test_checkpoint_resume_equivalence(void **state)
{
    (void)state;
    enum { N = 120 };
    float x[2 * N];
    int32_t y[N];
    xor_set(N, x, y);
    char *dir = scratch();
    char *path = xasprintf("%s/c.ckpt", dir);
    for (int kind = HEAD_LINEAR; kind <= HEAD_MLP; kind++) {
        head_knobs k = knobs((head_kind)kind, 15);
        char *err = NULL;
        head_net a, b;
        head_state sa, sb;
        head_init(&a, &sa, &k, x, N, 2, 2);
        assert_int_equal(head_train(&a, &sa, &k, x, y, N, NULL, NULL, &err), 0);
        /* Interrupted at epoch 6, resumed from the file. */
        head_init(&b, &sb, &k, x, N, 2, 2);
        stop_at s = {6, path};
        assert_int_equal(head_train(&b, &sb, &k, x, y, N, stop_cb, &s, &err), 1);
        head_net_free(&b);
        head_state_free(&sb);
        bool missing;
        if (head_file_read(path, KEY, &b, &sb, &missing, &err) != 0)
            fail_msg("read: %s", err);
        assert_int_equal(sb.epoch, 6);
        assert_int_equal(head_train(&b, &sb, &k, x, y, N, NULL, NULL, &err), 0);
        assert_int_equal(sb.epoch, 15);
        assert_int_equal(a.nparams, b.nparams);
        assert_memory_equal(a.theta, b.theta, a.nparams * sizeof(float));
        assert_memory_equal(sa.velocity, sb.velocity, a.nparams * sizeof(float));
        assert_true(sa.rng == sb.rng);
        char da[65], db[65];
        head_digest(&a, da);
        head_digest(&b, db);
        assert_string_equal(da, db);
        /* Weights files round-trip too. */
        char *wpath = xasprintf("%s/w.head", dir);
        assert_int_equal(head_file_write(wpath, KEY, &a, NULL, &err), 0);
        head_net c;
        assert_int_equal(head_file_read(wpath, KEY, &c, NULL, &missing, &err), 0);
        assert_memory_equal(c.theta, a.theta, a.nparams * sizeof(float));
        assert_memory_equal(c.scale, a.scale, a.dim * sizeof(float));
        head_net_free(&c);
        free(wpath);
        head_net_free(&a);
        head_net_free(&b);
        head_state_free(&sa);
        head_state_free(&sb);
    }
    /* A foreign key, a torn file, a missing file. */
    char *err = NULL;
    head_net n;
    head_state st;
    bool missing;
    char other[65];
    memcpy(other, KEY, sizeof other);
    other[0] = 'f';
    assert_int_equal(head_file_read(path, other, &n, &st, &missing, &err), -1);
    assert_false(missing);
    assert_non_null(strstr(err, "belongs to another job"));
    free(err);
    assert_int_equal(truncate(path, 150), 0); /* past the header, short of the data */
    assert_int_equal(head_file_read(path, KEY, &n, &st, &missing, &err), -1);
    assert_non_null(strstr(err, "bytes, its header says"));
    free(err);
    unlink(path);
    assert_int_equal(head_file_read(path, KEY, &n, &st, &missing, &err), -1);
    assert_true(missing);
    free(err);
    rmdir(dir);
    free(path);
    free(dir);
}

/* ---- whole jobs on feature files -------------------------------------------------------- */

static const char TRAIN_HASH[] = "aa00000000000000000000000000000000000000000000000000000000000001";
static const char TEST_HASH[] = "aa00000000000000000000000000000000000000000000000000000000000002";
static const char JOB_HASH[] = "bb00000000000000000000000000000000000000000000000000000000000003";

static bool stop_now;
static bool should_stop(void *arg)
{
    (void)arg;
    return stop_now;
}

static int stop_after_calls;
static void progress(void *arg, double f, const char *note)
{
    (void)arg;
    (void)f;
    (void)note;
    if (stop_after_calls > 0 && --stop_after_calls == 0)
        stop_now = true;
}

static json_t *head_payload(bool with_test, json_t *given)
{
    char *err = NULL;
    const char *bad;
    json_t *k = finetune_knobs_resolve(finetune_knob_config("head"), given, &err, &bad);
    assert_non_null(k);
    json_decref(given);
    return json_pack("{s:s, s:{s:i, s:s}, s:[{s:s}], s:o, s:o}", "runner", "head", "model", "id",
                     5, "name", "m", "train", "features", TRAIN_HASH, "test",
                     with_test ? json_pack("[{s:s}]", "features", TEST_HASH) : json_array(),
                     "knobs", k);
}

static void test_head_job(void **state)
{
    (void)state;
    enum { N = 100 };
    float x[2 * N];
    int32_t y[N];
    blobs(N, x, y, 9);
    char *dir = scratch();
    char *err = NULL;
    uint64_t bytes;
    assert_int_equal(featstore_write(dir, TRAIN_HASH, x, y, N, 2, 2, &bytes, &err), 0);
    float tx[] = {-3, 0, 3, 0, -3, 1, 3, 1};
    int32_t ty[] = {0, 1, 0, 0};
    assert_int_equal(featstore_write(dir, TEST_HASH, tx, ty, 4, 2, 2, &bytes, &err), 0);
    job_ctx ctx = {.data_dir = dir, .job_id = 1, .hash = JOB_HASH, .progress = progress,
                   .should_stop = should_stop};
    const job_runner *r = job_runner_find("finetune");
    setenv("RANKQL_FT_CHECKPOINT_SECONDS", "0", 1);
    /* With the test set: 3 of 4 (one test point is labelled against its side). */
    json_t *p = head_payload(true, json_pack("{s:i, s:i}", "epochs", 10, "batch_size", 16));
    json_t *res = NULL;
    bool perm;
    if (r->run(&ctx, p, &res, &err, &perm) != 0)
        fail_msg("run: %s", err);
    assert_float_equal(json_real_value(json_object_get(res, "test_accuracy")), 0.75, 0);
    assert_float_equal(json_real_value(json_object_get(res, "train_accuracy")), 1.0, 0);
    assert_int_equal(json_integer_value(json_object_get(res, "resumed_from_epoch")), 0);
    assert_int_equal(json_integer_value(json_object_get(res, "test_size")), 4);
    assert_string_equal(json_string_value(json_object_get(res, "model_name")), "m@ft-bb000000");
    char *wpath = xasprintf("%s/finetune/bb/%s.head", dir, JOB_HASH);
    char *cpath = xasprintf("%s/finetune/bb/%s.ckpt", dir, JOB_HASH);
    struct stat sb;
    assert_int_equal(stat(wpath, &sb), 0);
    assert_int_equal(stat(cpath, &sb), -1); /* removed once done */
    const char *digest1 = json_string_value(json_object_get(res, "weights_digest"));
    char *d1 = xstrdup(digest1);
    json_decref(res);
    /* Stopped during epoch 4's progress report: the checkpoint of epoch 3 stays; the next
     * attempt resumes from it and ends with the same weights. */
    unlink(wpath);
    stop_now = false;
    stop_after_calls = 5; /* "loading features", then epochs 1..4 */
    assert_int_equal(r->run(&ctx, p, &res, &err, &perm), -1);
    assert_false(perm);
    free(err);
    assert_int_equal(stat(cpath, &sb), 0);
    stop_now = false;
    stop_after_calls = 0;
    if (r->run(&ctx, p, &res, &err, &perm) != 0)
        fail_msg("resume: %s", err);
    assert_int_equal(json_integer_value(json_object_get(res, "resumed_from_epoch")), 4);
    assert_int_equal(json_integer_value(json_object_get(res, "epochs_run")), 6);
    assert_string_equal(json_string_value(json_object_get(res, "weights_digest")), d1);
    assert_float_equal(json_real_value(json_object_get(res, "test_accuracy")), 0.75, 0);
    /* The registered model embeds the test rows as the head's logits: their argmax scores
     * the job's test accuracy again (3 of 4). */
    static const char EMB_HASH[] =
        "dd00000000000000000000000000000000000000000000000000000000000005";
    assert_int_equal(featstore_write(dir, EMB_HASH, tx, ty, 4, 2, 2, &bytes, &err), 0);
    const json_t *spec = json_object_get(res, "model_spec");
    assert_true(finetune_is_head_model(spec));
    job_ctx ectx = {.data_dir = dir, .job_id = 2, .hash = EMB_HASH};
    json_t *eres = json_pack("{s:i}", "dim", 2);
    if (finetune_head_features(&ectx, spec, eres, &err, &perm) != 0)
        fail_msg("head features: %s", err);
    featfile ff;
    assert_int_equal(featstore_read(dir, EMB_HASH, &ff, &err), 0);
    assert_int_equal(ff.dim, 2);
    assert_int_equal(json_integer_value(json_object_get(eres, "dim")), 2);
    int right = 0;
    for (int i = 0; i < 4; i++)
        right += head_argmax(ff.x + 2 * i, 2) == ff.y[i];
    assert_int_equal(right, 3);
    featfile_free(&ff);
    json_decref(eres);
    json_decref(res);
    json_decref(p);
    /* Without a test set: the last ⌈0.2 · 100⌉ = 20 rows are held out. */
    p = head_payload(false, json_pack("{s:i}", "epochs", 5));
    if (r->run(&ctx, p, &res, &err, &perm) != 0)
        fail_msg("holdout: %s", err);
    assert_int_equal(json_integer_value(json_object_get(res, "test_size")), 20);
    assert_int_equal(json_integer_value(json_object_get(res, "train_size")), 80);
    assert_true(json_is_true(json_object_get(res, "held_out")));
    assert_float_equal(json_real_value(json_object_get(res, "test_accuracy")), 1.0, 0);
    json_decref(res);
    json_decref(p);
    free(d1);
    free(wpath);
    free(cpath);
    char *cmd = xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_and_softmax),
        cmocka_unit_test(test_linear_separable),
        cmocka_unit_test(test_mlp_fits_xor_linear_cannot),
        cmocka_unit_test(test_checkpoint_resume_equivalence),
        cmocka_unit_test(test_head_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
