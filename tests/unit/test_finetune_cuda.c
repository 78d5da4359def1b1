/* The GPU head trainer (executor/workers/finetune/head_cuda.h, kernels/head_kernels.cu)
 * against its CPU twin head_train.
 *
 * Everywhere: the split of a training step into the kernels' per-thread pieces
 * (head_batch.h), run on the host one index at a time, gives head_train's weights, momentum,
 * RNG state and epoch losses bit for bit (linear and mlp, 3 classes, a short last batch):
 * the kernels compute exactly those pieces. Without a GPU the API says "no GPU", leaves the
 * head untouched, and a head fine-tune job falls back to the CPU and records
 * "device": "cpu" (also with RANKQL_DEVICE=cpu), with the same weights as head_train.
 *
 * With a GPU (a `make CUDA=1` build on a machine with one; otherwise "skipped: no GPU"):
 * after 8 epochs the GPU's weights are within 1e-3 · (1 + max |θ_cpu|) of the CPU's, the
 * epoch losses within 1e-4 relative, the RNG state and epoch equal, and the accuracy on the
 * (well separated) training and test sets equal; a GPU run stopped at epoch 3 and resumed
 * on the GPU ends bit-identical to an uninterrupted GPU run, and resumed on the CPU ends
 * within the same tolerance; a bad label is the same error as on the CPU. */
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

#include "common/util.h"
#include "executor/workers/featstore.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/finetune/head.h"
#include "executor/workers/finetune/head_batch.h"
#include "executor/workers/finetune/head_cuda.h"
#include "executor/workers/finetune/head_math.h"
#include "executor/workers/jobs.h"

enum { N = 150, D = 6, C = 3, EPOCHS = 8 };

/* Three blobs in 6-D: class c around 3·e_c, jitter uniform in [−1, 1] in every coordinate. */
static void blobs(size_t n, float *x, int32_t *y, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % C);
        for (int j = 0; j < D; j++)
            x[i * D + j] = (j == y[i] ? 3.0f : 0.0f) + 2.0f * head_rng_uniform(&seed) - 1.0f;
    }
}

static head_knobs knobs(head_kind kind)
{
    head_knobs k = {.kind = kind, .hidden = 8, .lr = 0.05, .weight_decay = 1e-3,
                    .momentum = 0.9, .epochs = EPOCHS, .batch_size = 16, .seed = 11};
    return k;
}

/* Records each epoch's mean loss; stops after `stop_at` epochs when non-zero. */
typedef struct rec {
    double loss[EPOCHS + 1];
    uint32_t stop_at;
} rec;

static int rec_cb(void *arg, const head_net *net, const head_state *st, double loss)
{
    (void)net;
    rec *r = arg;
    r->loss[st->epoch] = loss;
    return r->stop_at && st->epoch >= r->stop_at;
}

/* head_train written as the GPU runs it: head_shuffle on the host, then every piece of
 * head_batch.h for every thread index, piece after piece. */
static void train_by_pieces(head_net *net, head_state *st, const head_knobs *k, const float *x,
                            const int32_t *y, size_t n, rec *r)
{
    const size_t d = net->dim, np = net->nparams;
    const int mlp = net->kind == HEAD_MLP;
    const size_t out1 = mlp ? net->hidden : net->classes, bs = (size_t)k->batch_size;
    float *xs = xmalloc(n * d * sizeof *xs);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            xs[i * d + j] = (x[i * d + j] - net->mean[j]) * net->scale[j];
    size_t *perm = xmalloc(n * sizeof *perm);
    float *act1 = xmalloc(bs * out1 * sizeof *act1);
    float *z = xmalloc(bs * net->classes * sizeof *z);
    float *dh = xmalloc((bs * net->hidden + 1) * sizeof *dh);
    float *loss = xmalloc(n * sizeof *loss);
    head_batch b = {.mlp = mlp, .dim = (int)d, .hidden = (int)net->hidden,
                    .classes = (int)net->classes, .xs = xs, .y = y, .perm = perm,
                    .theta = net->theta, .velocity = st->velocity, .act1 = act1,
                    .z = mlp ? z : act1, .dh = dh, .loss = loss, .lr = (float)k->lr,
                    .mu = (float)k->momentum, .wd = (float)k->weight_decay};
    assert_int_equal(head_batch_nparams(&b), np);
    while (st->epoch < (uint32_t)k->epochs) {
        head_shuffle(perm, n, &st->rng);
        for (size_t b0 = 0; b0 < n; b0 += bs) {
            b.b0 = b0;
            b.rows = (int)(b0 + bs < n ? bs : n - b0);
            for (size_t t = 0; t < (size_t)b.rows * out1; t++)
                head_batch_forward1(&b, t);
            if (mlp)
                for (size_t t = 0; t < (size_t)b.rows * net->classes; t++)
                    head_batch_forward2(&b, t);
            for (size_t t = 0; t < (size_t)b.rows; t++)
                head_batch_softmax(&b, t);
            for (size_t t = 0; t < np; t++)
                head_batch_update(&b, t);
        }
        st->epoch++;
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += loss[i];
        r->loss[st->epoch] = sum / (double)n;
    }
    free(xs);
    free(perm);
    free(act1);
    free(z);
    free(dh);
    free(loss);
}

static void test_pieces_equal_cpu(void **state)
{
    (void)state;
    float x[N * D];
    int32_t y[N];
    blobs(N, x, y, 5);
    for (int kind = HEAD_LINEAR; kind <= HEAD_MLP; kind++) {
        head_knobs k = knobs((head_kind)kind);
        head_net a, b;
        head_state sa, sb;
        rec ra = {0}, rb = {0};
        char *err = NULL;
        head_init(&a, &sa, &k, x, N, D, C);
        head_init(&b, &sb, &k, x, N, D, C);
        assert_int_equal(head_train(&a, &sa, &k, x, y, N, rec_cb, &ra, &err), 0);
        train_by_pieces(&b, &sb, &k, x, y, N, &rb);
        assert_int_equal(sb.epoch, EPOCHS);
        assert_true(sa.rng == sb.rng);
        assert_memory_equal(a.theta, b.theta, a.nparams * sizeof(float));
        assert_memory_equal(sa.velocity, sb.velocity, a.nparams * sizeof(float));
        for (int e = 1; e <= EPOCHS; e++)
            assert_true(ra.loss[e] == rb.loss[e]);
        /* It learned something: the loss fell and the blobs are separated. */
        assert_true(ra.loss[EPOCHS] < 0.5 * ra.loss[1]);
        assert_float_equal(head_accuracy(&a, x, y, N), 1.0, 0);
        head_net_free(&a);
        head_net_free(&b);
        head_state_free(&sa);
        head_state_free(&sb);
    }
}

static int need_gpu(void)
{
    if (head_cuda_available())
        return 1;
    print_message("skipped: no GPU (%s)\n", head_cuda_describe());
    return 0;
}

static void test_api_without_gpu(void **state)
{
    (void)state;
    const char *desc = head_cuda_describe();
    assert_non_null(desc);
    if (head_cuda_available()) {
        print_message("GPU: %s\n", desc);
        return;
    }
    assert_non_null(strstr(desc, "no GPU"));
    float x[N * D];
    int32_t y[N];
    blobs(N, x, y, 5);
    head_knobs k = knobs(HEAD_MLP);
    head_net net;
    head_state st;
    head_init(&net, &st, &k, x, N, D, C);
    float *before = xmalloc(net.nparams * sizeof *before);
    memcpy(before, net.theta, net.nparams * sizeof *before);
    uint64_t rng = st.rng;
    char *err = NULL;
    assert_int_equal(head_train_cuda(&net, &st, &k, x, y, N, NULL, NULL, &err), HEAD_CUDA_ENOGPU);
    assert_non_null(err);
    assert_non_null(strstr(err, "no GPU"));
    free(err);
    assert_int_equal(st.epoch, 0);
    assert_true(st.rng == rng);
    assert_memory_equal(before, net.theta, net.nparams * sizeof *before);
    free(before);
    head_net_free(&net);
    head_state_free(&st);
}

/* max |a − b| ≤ 1e-3 · (1 + max |a|) */
static void assert_close(const float *a, const float *b, size_t n, const char *what)
{
    double amax = 0, dmax = 0;
    for (size_t i = 0; i < n; i++) {
        amax = fmax(amax, fabs(a[i]));
        dmax = fmax(dmax, fabs((double)a[i] - b[i]));
    }
    if (!(dmax <= 1e-3 * (1 + amax)))
        fail_msg("%s: max difference %g, max |cpu| %g", what, dmax, amax);
}

static void test_gpu_matches_cpu(void **state)
{
    (void)state;
    if (!need_gpu()) {
        skip();
        return;
    }
    float x[N * D], tx[N * D];
    int32_t y[N], ty[N];
    blobs(N, x, y, 5);
    blobs(N, tx, ty, 99);
    for (int kind = HEAD_LINEAR; kind <= HEAD_MLP; kind++) {
        head_knobs k = knobs((head_kind)kind);
        head_net a, g;
        head_state sa, sg;
        rec ra = {0}, rg = {0};
        char *err = NULL;
        head_init(&a, &sa, &k, x, N, D, C);
        head_init(&g, &sg, &k, x, N, D, C);
        assert_int_equal(head_train(&a, &sa, &k, x, y, N, rec_cb, &ra, &err), 0);
        if (head_train_cuda(&g, &sg, &k, x, y, N, rec_cb, &rg, &err) != 0)
            fail_msg("gpu: %s", err);
        assert_int_equal(sg.epoch, EPOCHS);
        assert_true(sa.rng == sg.rng);
        assert_close(a.theta, g.theta, a.nparams, "weights");
        assert_close(sa.velocity, sg.velocity, a.nparams, "momentum");
        for (int e = 1; e <= EPOCHS; e++)
            if (!(fabs(ra.loss[e] - rg.loss[e]) <= 1e-4 * ra.loss[e]))
                fail_msg("epoch %d: cpu loss %.9g, gpu %.9g", e, ra.loss[e], rg.loss[e]);
        assert_float_equal(head_accuracy(&a, x, y, N), head_accuracy(&g, x, y, N), 0);
        assert_float_equal(head_accuracy(&a, tx, ty, N), head_accuracy(&g, tx, ty, N), 0);
        head_net_free(&a);
        head_net_free(&g);
        head_state_free(&sa);
        head_state_free(&sg);
    }
}

static void test_gpu_resume(void **state)
{
    (void)state;
    if (!need_gpu()) {
        skip();
        return;
    }
    float x[N * D];
    int32_t y[N];
    blobs(N, x, y, 5);
    head_knobs k = knobs(HEAD_MLP);
    head_net whole, part, cpu;
    head_state sw, sp, sc;
    rec r = {0}, stop = {.stop_at = 3};
    char *err = NULL;
    head_init(&whole, &sw, &k, x, N, D, C);
    if (head_train_cuda(&whole, &sw, &k, x, y, N, NULL, NULL, &err) != 0)
        fail_msg("gpu: %s", err);
    /* Stopped after epoch 3: net/st hold epoch 3; on the GPU again, the same end. */
    head_init(&part, &sp, &k, x, N, D, C);
    assert_int_equal(head_train_cuda(&part, &sp, &k, x, y, N, rec_cb, &stop, &err), 1);
    assert_int_equal(sp.epoch, 3);
    head_init(&cpu, &sc, &k, x, N, D, C);
    memcpy(cpu.theta, part.theta, part.nparams * sizeof(float));
    memcpy(sc.velocity, sp.velocity, part.nparams * sizeof(float));
    sc.epoch = sp.epoch;
    sc.rng = sp.rng;
    if (head_train_cuda(&part, &sp, &k, x, y, N, rec_cb, &r, &err) != 0)
        fail_msg("gpu resume: %s", err);
    assert_memory_equal(whole.theta, part.theta, whole.nparams * sizeof(float));
    assert_memory_equal(sw.velocity, sp.velocity, whole.nparams * sizeof(float));
    assert_true(sw.rng == sp.rng);
    /* ... and on the CPU (the fallback after a GPU failure), within the tolerance. */
    assert_int_equal(head_train(&cpu, &sc, &k, x, y, N, NULL, NULL, &err), 0);
    assert_true(sc.rng == sw.rng);
    assert_close(cpu.theta, whole.theta, whole.nparams, "cpu after gpu");
    /* A bad label: the CPU's error. */
    y[7] = C;
    head_net_free(&part);
    head_state_free(&sp);
    head_init(&part, &sp, &k, x, N, D, C);
    assert_int_equal(head_train_cuda(&part, &sp, &k, x, y, N, NULL, NULL, &err), -1);
    assert_non_null(strstr(err, "training row 7 has label 3, outside [0, 3)"));
    free(err);
    head_net_free(&whole);
    head_net_free(&part);
    head_net_free(&cpu);
    head_state_free(&sw);
    head_state_free(&sp);
    head_state_free(&sc);
}

/* ---- the job's device choice ------------------------------------------------------------ */

static const char TRAIN_HASH[] = "ac00000000000000000000000000000000000000000000000000000000000001";
static const char JOB_HASH[] = "bc00000000000000000000000000000000000000000000000000000000000003";

static json_t *run_job(const char *dir)
{
    char *err = NULL;
    const char *bad;
    json_t *given = json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:i}", "head", "mlp", "hidden",
                              8, "epochs", EPOCHS, "batch_size", 16, "lr", 0.05, "weight_decay",
                              1e-3, "momentum", 0.9, "seed", 11);
    json_t *k = finetune_knobs_resolve(finetune_knob_config("head"), given, &err, &bad);
    json_decref(given);
    if (!k)
        fail_msg("knobs: %s", err);
    json_t *p = json_pack("{s:s, s:{s:i, s:s}, s:[{s:s}], s:[], s:o}", "runner", "head",
                          "model", "id", 5, "name", "m", "train", "features", TRAIN_HASH,
                          "test", "knobs", k);
    job_ctx ctx = {.data_dir = dir, .job_id = 1, .hash = JOB_HASH};
    json_t *res = NULL;
    bool perm;
    if (job_runner_find("finetune")->run(&ctx, p, &res, &err, &perm) != 0)
        fail_msg("run: %s", err);
    json_decref(p);
    return res;
}

static void test_job_device(void **state)
{
    (void)state;
    /* The job's training rows are the first ⌊(1 − holdout)·n⌋ (the rest are held out). */
    float x[N * D];
    int32_t y[N];
    blobs(N, x, y, 5);
    char tmpl[] = "/tmp/rankql-ftcuda-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *err = NULL;
    uint64_t bytes;
    assert_int_equal(featstore_write(tmpl, TRAIN_HASH, x, y, N, D, C, &bytes, &err), 0);
    setenv("RANKQL_FT_CHECKPOINT_SECONDS", "1000", 1);
    setenv("RANKQL_DEVICE", "cpu", 1);
    json_t *res = run_job(tmpl);
    assert_string_equal(json_string_value(json_object_get(res, "device")), "cpu");
    assert_true(json_is_null(json_object_get(res, "device_note"))); /* no GPU failure */
    size_t ntrain = (size_t)json_integer_value(json_object_get(res, "train_size"));
    assert_true(ntrain > 0 && ntrain < N);
    /* The CPU job's weights are head_train's on those rows. */
    head_knobs k = knobs(HEAD_MLP);
    head_net net;
    head_state st;
    head_init(&net, &st, &k, x, ntrain, D, C);
    assert_int_equal(head_train(&net, &st, &k, x, y, ntrain, NULL, NULL, &err), 0);
    char digest[65];
    head_digest(&net, digest);
    assert_string_equal(json_string_value(json_object_get(res, "weights_digest")), digest);
    json_decref(res);
    /* Unforced: the GPU when one answers, else the CPU again (same weights). */
    unsetenv("RANKQL_DEVICE");
    res = run_job(tmpl);
    const char *dev = json_string_value(json_object_get(res, "device"));
    assert_string_equal(dev, head_cuda_available() ? "cuda" : "cpu");
    if (!head_cuda_available())
        assert_string_equal(json_string_value(json_object_get(res, "weights_digest")), digest);
    json_decref(res);
    head_net_free(&net);
    head_state_free(&st);
    char *cmd = xasprintf("rm -rf '%s'", tmpl);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_equal_cpu),
        cmocka_unit_test(test_api_without_gpu),
        cmocka_unit_test(test_gpu_matches_cpu),
        cmocka_unit_test(test_gpu_resume),
        cmocka_unit_test(test_job_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
