/* executor/workers/proxies/proxy_cuda.h: the GPU twins agree with the CPU path. Runs the
 * comparisons when a GPU answers (a `make CUDA=1` build on a machine with one); elsewhere
 * they print "skipped: no GPU (…)" and are reported as skipped by cmocka. The no-GPU
 * behaviour of the API itself is checked everywhere.
 *
 * Agreement: on grid data (exact float arithmetic, proxy_test.h) neighbours and votes are
 * identical; on Gaussian data a neighbour may differ only where the CPU distances of the two
 * candidates are within 1e-5 relative; linear-probe losses within 1e-4 relative per epoch,
 * test error within 1% of the rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "executor/workers/proxies/proxy_cuda.h"
#include "tests/unit/proxy_test.h"

static int need_gpu(void)
{
    if (proxy_cuda_available())
        return 1;
    print_message("skipped: no GPU (%s)\n", proxy_cuda_describe());
    return 0;
}

static void test_api_without_gpu(void **state)
{
    (void)state;
    const char *desc = proxy_cuda_describe();
    assert_non_null(desc);
    if (proxy_cuda_available()) {
        print_message("GPU: %s\n", desc);
        return;
    }
    assert_non_null(strstr(desc, "no GPU"));
    float x[] = {1, 2};
    int32_t y[] = {0, 1};
    proxy_data d = {x, y, 2, 1};
    proxy_nn_result r;
    proxy_linear_result l;
    char err[256] = "";
    assert_int_equal(proxy_nn_cuda(&d, &d, NULL, &r, err, sizeof err), PROXY_ENOGPU);
    assert_non_null(strstr(err, "no GPU"));
    err[0] = 0;
    assert_int_equal(proxy_linear_cuda(&d, &d, NULL, &l, err, sizeof err), PROXY_ENOGPU);
    assert_non_null(strstr(err, "no GPU"));
}

static void compare_nn(const float *tr, const int32_t *ytr, size_t ntr, const float *te,
                       const int32_t *yte, size_t nte, size_t d, proxy_nn_opts o, int exact)
{
    proxy_data train = {tr, ytr, ntr, d}, test = {te, yte, nte, d};
    proxy_nn_result c, g;
    char err[256] = "";
    if (proxy_nn(&train, &test, &o, &c, err, sizeof err) != PROXY_OK)
        fail_msg("cpu: %s", err);
    if (proxy_nn_cuda(&train, &test, &o, &g, err, sizeof err) != PROXY_OK)
        fail_msg("gpu: %s", err);
    int k = o.k ? o.k : 1;
    for (size_t i = 0; i < nte * (size_t)k; i++) {
        if (c.nbr[i] == g.nbr[i])
            continue;
        if (exact)
            fail_msg("entry %zu: cpu neighbour %lld, gpu %lld", i, (long long)c.nbr[i],
                     (long long)g.nbr[i]);
        double dc = t_ref_dist(te + i / k * d, tr + c.nbr[i] * d, d, o.metric == PROXY_COSINE);
        double dg = t_ref_dist(te + i / k * d, tr + g.nbr[i] * d, d, o.metric == PROXY_COSINE);
        if (fabs(dc - dg) > 1e-5 * (dc + 1))
            fail_msg("entry %zu: cpu %lld (d=%.9g), gpu %lld (d=%.9g)", i, (long long)c.nbr[i],
                     dc, (long long)g.nbr[i], dg);
    }
    if (exact) {
        assert_memory_equal(c.pred, g.pred, nte * sizeof *c.pred);
        assert_int_equal(c.wrong, g.wrong);
    }
    for (size_t i = 0; i < nte * (size_t)k; i++)
        assert_true(fabsf(c.dist[i] - g.dist[i]) <= 1e-4f * (c.dist[i] + 1));
    proxy_nn_result_free(&c);
    proxy_nn_result_free(&g);
}

static void test_nn_agree(void **state)
{
    (void)state;
    if (!need_gpu()) {
        skip();
        return;
    }
    trng gr = {101};
    size_t ntr = 3000, nte = 700, d = 24;
    float *tr = t_grid(&gr, ntr, d), *te = t_grid(&gr, nte, d);
    int32_t *ytr = t_labels(&gr, ntr, 10), *yte = t_labels(&gr, nte, 10);
    proxy_nn_opts opts[] = {
        {PROXY_EUCLIDEAN, 1, 0, 0},     {PROXY_EUCLIDEAN, 1, 64, 500},
        {PROXY_EUCLIDEAN, 5, 0, 0},     {PROXY_EUCLIDEAN, 32, 100, 333},
    };
    for (size_t q = 0; q < sizeof opts / sizeof opts[0]; q++)
        compare_nn(tr, ytr, ntr, te, yte, nte, d, opts[q], 1);
    free(tr), free(te);
    float *gtr = t_gauss(&gr, ntr, 100), *gte = t_gauss(&gr, nte, 100);
    for (size_t q = 0; q < sizeof opts / sizeof opts[0]; q++) {
        compare_nn(gtr, ytr, ntr, gte, yte, nte, 100, opts[q], 0);
        opts[q].metric = PROXY_COSINE;
        compare_nn(gtr, ytr, ntr, gte, yte, nte, 100, opts[q], 0);
    }
    free(gtr), free(gte), free(ytr), free(yte);
}

static void test_nn_gpu_errors(void **state)
{
    (void)state;
    if (!need_gpu()) {
        skip();
        return;
    }
    float x[] = {1, 2, 3, 4};
    int32_t y[] = {0, 1};
    proxy_data d = {x, y, 2, 2}, d1 = {x, y, 2, 1};
    proxy_nn_result r;
    char err[256] = "";
    assert_int_equal(proxy_nn_cuda(&d, &d1, NULL, &r, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "test has 1 feature columns but train has 2"));
    float huge[] = {1e30f, 1e30f, 1, 1};
    proxy_data h = {huge, y, 2, 2};
    assert_int_equal(proxy_nn_cuda(&h, &d, NULL, &r, err, sizeof err), PROXY_ENUMERIC);
    assert_non_null(strstr(err, "train row 0: squared norm"));
}

static void test_linear_agree(void **state)
{
    (void)state;
    if (!need_gpu()) {
        skip();
        return;
    }
    trng gr = {102};
    size_t n = 5000, nt = 1000, d = 64;
    int C = 10;
    float *xtr = t_gauss(&gr, n, d), *xte = t_gauss(&gr, nt, d);
    int32_t *ytr = malloc(n * sizeof *ytr), *yte = malloc(nt * sizeof *yte);
    /* labels from a noisy linear rule: learnable but not trivially */
    for (size_t i = 0; i < n + nt; i++) {
        const float *x = i < n ? xtr + i * d : xte + (i - n) * d;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (x[c] + 0.3 * x[c + C] > x[best] + 0.3 * x[best + C])
                best = c;
        if (i < n)
            ytr[i] = best;
        else
            yte[i - n] = best;
    }
    proxy_data train = {xtr, ytr, n, d}, test = {xte, yte, nt, d};
    proxy_linear_result c, g;
    char err[256] = "";
    if (proxy_linear(&train, &test, NULL, &c, err, sizeof err) != PROXY_OK)
        fail_msg("cpu: %s", err);
    if (proxy_linear_cuda(&train, &test, NULL, &g, err, sizeof err) != PROXY_OK)
        fail_msg("gpu: %s", err);
    assert_int_equal(c.num_classes, g.num_classes);
    for (int e = 0; e < c.num_epochs; e++)
        if (fabs(c.loss[e] - g.loss[e]) > 1e-4 * c.loss[e])
            fail_msg("epoch %d: cpu loss %.9g, gpu %.9g", e, c.loss[e], g.loss[e]);
    assert_true(fabs(c.final_loss - g.final_loss) <= 1e-4 * c.final_loss);
    assert_true(fabs(c.err - g.err) <= 0.01);
    print_message("linear probe: cpu err %.4f, gpu err %.4f\n", c.err, g.err);
    proxy_linear_result_free(&c);
    proxy_linear_result_free(&g);
    free(xtr), free(xte), free(ytr), free(yte);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_without_gpu),
        cmocka_unit_test(test_nn_agree),
        cmocka_unit_test(test_nn_gpu_errors),
        cmocka_unit_test(test_linear_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
