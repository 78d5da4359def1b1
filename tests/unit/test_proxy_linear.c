/* executor/workers/proxies: the linear probe (softmax regression, full-batch GD). Checked
 * against a straightforward double-precision implementation of the same algorithm (losses
 * within 1e-4 relative per epoch: float SGEMM and expf against double), for monotone loss
 * decrease, 0 error on separable data, the class count rule and the argument errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/proxy_test.h"

/* Reference: standardise (population std; constant column only centred), zero init, per
 * epoch loss then step; returns test error, fills loss[epochs]. */
static double ref_linear(const float *xtr, const int32_t *ytr, size_t n, const float *xte,
                         const int32_t *yte, size_t nt, size_t d, int C, double lr, int epochs,
                         int standardize, double *loss)
{
    double *mu = calloc(d, sizeof *mu), *is = malloc(d * sizeof *is);
    for (size_t j = 0; j < d; j++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++)
            s += xtr[i * d + j];
        mu[j] = s / n;
        for (size_t i = 0; i < n; i++)
            s2 += (xtr[i * d + j] - mu[j]) * (xtr[i * d + j] - mu[j]);
        double sd = sqrt(s2 / n);
        is[j] = sd > 0 ? 1 / sd : 1;
        if (!standardize)
            mu[j] = 0, is[j] = 1;
    }
    double *W = calloc(d * C, sizeof *W), *b = calloc(C, sizeof *b);
    double *gW = malloc(d * C * sizeof *gW), *gb = malloc(C * sizeof *gb), *p = malloc(C * sizeof *p);
    double *xs = malloc(d * sizeof *xs);
    for (int e = 0; e < epochs; e++) {
        memset(gW, 0, d * C * sizeof *gW);
        memset(gb, 0, C * sizeof *gb);
        double L = 0;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < d; j++)
                xs[j] = (xtr[i * d + j] - mu[j]) * is[j];
            double mx = -INFINITY, s = 0;
            for (int c = 0; c < C; c++) {
                p[c] = b[c];
                for (size_t j = 0; j < d; j++)
                    p[c] += xs[j] * W[j * C + c];
                mx = p[c] > mx ? p[c] : mx;
            }
            for (int c = 0; c < C; c++)
                s += exp(p[c] - mx);
            L += log(s) - (p[ytr[i]] - mx);
            for (int c = 0; c < C; c++) {
                double g = (exp(p[c] - mx) / s - (c == ytr[i])) / n;
                gb[c] += g;
                for (size_t j = 0; j < d; j++)
                    gW[j * C + c] += xs[j] * g;
            }
        }
        loss[e] = L / n;
        for (size_t j = 0; j < d * C; j++)
            W[j] -= lr * gW[j];
        for (int c = 0; c < C; c++)
            b[c] -= lr * gb[c];
    }
    size_t wrong = 0;
    for (size_t i = 0; i < nt; i++) {
        int best = 0;
        double bv = -INFINITY;
        for (int c = 0; c < C; c++) {
            double v = b[c];
            for (size_t j = 0; j < d; j++)
                v += (xte[i * d + j] - mu[j]) * is[j] * W[j * C + c];
            if (v > bv)
                bv = v, best = c;
        }
        wrong += best != yte[i];
    }
    free(mu), free(is), free(W), free(b), free(gW), free(gb), free(p), free(xs);
    return (double)wrong / nt;
}

/* Gaussian clusters: class c centred at a random point scaled by sep, plus an offset and
 * per-column scales (standardisation has work to do). */
static void clusters(trng *g, size_t n, size_t d, int C, double sep, const double *centres,
                     float **x, int32_t **y)
{
    *x = malloc(n * d * sizeof **x);
    *y = malloc(n * sizeof **y);
    for (size_t i = 0; i < n; i++) {
        int c = trng_int(g, C);
        (*y)[i] = c;
        for (size_t j = 0; j < d; j++)
            (*x)[i * d + j] =
                (float)((centres[c * d + j] * sep + trng_gauss(g)) * (1.0 + (double)j) + 100.0);
    }
}

static double *make_centres(trng *g, int C, size_t d)
{
    double *c = malloc(C * d * sizeof *c);
    for (size_t i = 0; i < C * d; i++)
        c[i] = trng_gauss(g);
    return c;
}

static void test_matches_reference(void **state)
{
    (void)state;
    trng g = {11};
    size_t n = 300, nt = 120, d = 12;
    int C = 4;
    double *cent = make_centres(&g, C, d);
    float *xtr, *xte;
    int32_t *ytr, *yte;
    clusters(&g, n, d, C, 0.7, cent, &xtr, &ytr);
    clusters(&g, nt, d, C, 0.7, cent, &xte, &yte);
    proxy_data train = {xtr, ytr, n, d}, test = {xte, yte, nt, d};
    for (int std = 0; std <= 1; std++) {
        proxy_linear_opts o = {0.1, 40, 0, !std};
        if (!std)
            o.learning_rate = 1e-5; /* raw features (~100 + scale): keep GD stable */
        proxy_linear_result r;
        char err[256] = "";
        if (proxy_linear(&train, &test, &o, &r, err, sizeof err) != PROXY_OK)
            fail_msg("%s", err);
        double ref[40];
        double ref_err = ref_linear(xtr, ytr, n, xte, yte, nt, d, C, o.learning_rate, 40, std, ref);
        assert_int_equal(r.num_classes, C);
        assert_int_equal(r.num_epochs, 40);
        assert_true(fabs(r.loss[0] - log(C)) < 1e-6);
        for (int e = 0; e < 40; e++)
            if (fabs(r.loss[e] - ref[e]) > 1e-4 * ref[e])
                fail_msg("std=%d epoch %d: loss %.8g, reference %.8g", std, e, r.loss[e], ref[e]);
        /* the predictions may differ only on near-ties: allow one row */
        assert_true(fabs(r.err - ref_err) <= 1.0 / nt + 1e-12);
        assert_true(r.final_loss < r.loss[39]);
        proxy_linear_result_free(&r);
    }
    free(cent), free(xtr), free(xte), free(ytr), free(yte);
}

static void test_loss_decreases(void **state)
{
    (void)state;
    trng g = {12};
    size_t n = 500, d = 30;
    int C = 7;
    float *x = t_gauss(&g, n, d);
    int32_t *y = t_labels(&g, n, C);
    proxy_data train = {x, y, n, d};
    proxy_linear_result r;
    assert_int_equal(proxy_linear(&train, &train, NULL, &r, NULL, 0), PROXY_OK);
    assert_int_equal(r.num_epochs, 100); /* defaults: 100 epochs of lr 0.1 */
    for (int e = 1; e < 100; e++)
        if (!(r.loss[e] < r.loss[e - 1]))
            fail_msg("loss did not decrease at epoch %d: %.9g → %.9g", e, r.loss[e - 1], r.loss[e]);
    assert_true(r.final_loss < r.loss[99]);
    if (!(r.loss[99] < r.loss[0] - 0.05))
        fail_msg("loss %.6g → %.6g", r.loss[0], r.loss[99]);
    /* deterministic */
    proxy_linear_result r2;
    assert_int_equal(proxy_linear(&train, &train, NULL, &r2, NULL, 0), PROXY_OK);
    assert_memory_equal(r.loss, r2.loss, 100 * sizeof *r.loss);
    assert_memory_equal(r.pred, r2.pred, n * sizeof *r.pred);
    proxy_linear_result_free(&r);
    proxy_linear_result_free(&r2);
    free(x), free(y);
}

static void test_separable_zero_error(void **state)
{
    (void)state;
    trng g = {13};
    size_t n = 400, nt = 200, d = 10;
    int C = 5;
    double *cent = make_centres(&g, C, d);
    float *xtr, *xte;
    int32_t *ytr, *yte;
    clusters(&g, n, d, C, 12.0, cent, &xtr, &ytr);
    clusters(&g, nt, d, C, 12.0, cent, &xte, &yte);
    proxy_data train = {xtr, ytr, n, d}, test = {xte, yte, nt, d};
    proxy_linear_result r;
    assert_int_equal(proxy_linear(&train, &test, NULL, &r, NULL, 0), PROXY_OK);
    assert_true(r.err == 0.0);
    assert_int_equal(r.wrong, 0);
    assert_true(r.train_err == 0.0);
    assert_memory_equal(r.pred, yte, nt * sizeof *yte);
    proxy_linear_result_free(&r);
    free(cent), free(xtr), free(xte), free(ytr), free(yte);
}

/* C = max label + 1 over train ∪ test (not the labels seen in train); a constant column. */
static void test_class_count(void **state)
{
    (void)state;
    float xtr[] = {0, 5, 1, 5, 2, 5, 3, 5}, xte[] = {0, 5, 3, 5, 9, 5};
    int32_t ytr[] = {0, 0, 2, 2}, yte[] = {0, 2, 6};
    proxy_data train = {xtr, ytr, 4, 2}, test = {xte, yte, 3, 2};
    proxy_linear_result r;
    assert_int_equal(proxy_linear(&train, &test, NULL, &r, NULL, 0), PROXY_OK);
    assert_int_equal(r.num_classes, 7);
    assert_true(fabs(r.loss[0] - log(7.0)) < 1e-6);
    assert_int_equal(r.pred[0], 0);
    assert_int_equal(r.pred[1], 2);
    assert_int_equal(r.wrong, 1); /* label 6 never trained on */
    assert_true(fabs(r.err - 1.0 / 3) < 1e-12);
    proxy_linear_result_free(&r);
    proxy_linear_opts o = {0, 5, 9, 0};
    assert_int_equal(proxy_linear(&train, &test, &o, &r, NULL, 0), PROXY_OK);
    assert_int_equal(r.num_classes, 9);
    assert_int_equal(r.num_epochs, 5);
    proxy_linear_result_free(&r);
}

static void expect_lin_error(const proxy_data *tr, const proxy_data *te,
                             const proxy_linear_opts *o, const char *needle)
{
    proxy_linear_result r;
    char err[256] = "";
    int rc = proxy_linear(tr, te, o, &r, err, sizeof err);
    if (rc != PROXY_EINVAL || !strstr(err, needle))
        fail_msg("want EINVAL '%s', got %d '%s'", needle, rc, err);
}

static void test_errors(void **state)
{
    (void)state;
    float x[] = {1, 2, 3, 4};
    int32_t y[] = {0, 1}, bad[] = {0, 1 << 21};
    proxy_data tr = {x, y, 2, 2}, te = {x, y, 2, 2};
    proxy_linear_opts o = {-1, 0, 0, 0};
    expect_lin_error(&tr, &te, &o, "learning_rate -1 must be > 0");
    o.learning_rate = NAN;
    expect_lin_error(&tr, &te, &o, "learning_rate nan must be > 0");
    o = (proxy_linear_opts){0, -3, 0, 0};
    expect_lin_error(&tr, &te, &o, "num_epochs -3");
    o = (proxy_linear_opts){0, 0, 1, 0};
    expect_lin_error(&tr, &te, &o, "num_classes 1 must be ≥ max label + 1 = 2");
    proxy_data nolab = {x, NULL, 2, 2};
    expect_lin_error(&tr, &nolab, NULL, "test: labels are required");
    proxy_data badlab = {x, bad, 2, 2};
    expect_lin_error(&badlab, &te, NULL, "train: label 2097152 at row 1 is out of range");
    proxy_data d1 = {x, y, 2, 1};
    expect_lin_error(&tr, &d1, NULL, "test has 1 feature columns but train has 2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_loss_decreases),
        cmocka_unit_test(test_separable_zero_error),
        cmocka_unit_test(test_class_count),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
