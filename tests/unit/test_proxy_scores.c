/* executor/workers/proxies: LogME, H-score and LEEP against direct implementations of
 * their formulas in double precision with explicit matrices (Cholesky, Gauss-Jordan):
 *   LogME   MacKay's fixed point with A = αI + βFᵀF, m = βA⁻¹Fᵀy, γ = d − α·tr A⁻¹, the
 *           evidence with log|A| from the Cholesky factor; both sides iterated to 1e-12, the
 *           scores agree within 1e-7 relative (the library goes through an
 *           eigendecomposition instead);
 *   H-score tr(Σ⁻¹ Σ_g) by solving with Gaussian elimination; within 1e-9 relative;
 *   LEEP    the empirical joint by a loop; within 1e-12, and a hand-computed example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/proxy_test.h"

/* ---- small dense linear algebra (row-major, n ≤ ~40) ---------------------------------- */

/* In-place lower Cholesky factor of SPD a; returns log|a|. */
static double chol(double *a, int n)
{
    double logdet = 0;
    for (int j = 0; j < n; j++) {
        double s = a[j * n + j];
        for (int k = 0; k < j; k++)
            s -= a[j * n + k] * a[j * n + k];
        assert_true(s > 0);
        a[j * n + j] = sqrt(s);
        logdet += 2 * log(a[j * n + j]);
        for (int i = j + 1; i < n; i++) {
            double t = a[i * n + j];
            for (int k = 0; k < j; k++)
                t -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = t / a[j * n + j];
        }
    }
    return logdet;
}

/* Solves L Lᵀ x = b in place. */
static void chol_solve(const double *l, int n, double *b)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < i; k++)
            b[i] -= l[i * n + k] * b[k];
        b[i] /= l[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        for (int k = i + 1; k < n; k++)
            b[i] -= l[k * n + i] * b[k];
        b[i] /= l[i * n + i];
    }
}

/* Solves a X = b (a n × n, b n × m) by Gaussian elimination with partial pivoting;
 * X overwrites b, a is destroyed. */
static void gauss_solve(double *a, int n, double *b, int m)
{
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[p * n + c]))
                p = r;
        for (int k = 0; k < n; k++) {
            double t = a[c * n + k];
            a[c * n + k] = a[p * n + k], a[p * n + k] = t;
        }
        for (int k = 0; k < m; k++) {
            double t = b[c * m + k];
            b[c * m + k] = b[p * m + k], b[p * m + k] = t;
        }
        for (int r = 0; r < n; r++) {
            if (r == c)
                continue;
            double f = a[r * n + c] / a[c * n + c];
            for (int k = 0; k < n; k++)
                a[r * n + k] -= f * a[c * n + k];
            for (int k = 0; k < m; k++)
                b[r * m + k] -= f * b[c * m + k];
        }
    }
    for (int r = 0; r < n; r++)
        for (int k = 0; k < m; k++)
            b[r * m + k] /= a[r * n + r];
}

/* ---- LogME --------------------------------------------------------------------------- */

static double ref_logme_class(const float *f, size_t N, int D, const double *y)
{
    double *FtF = calloc(D * D, sizeof *FtF), *Fty = calloc(D, sizeof *Fty);
    double *A = malloc(D * D * sizeof *A), *m = malloc(D * sizeof *m), *e = malloc(D * sizeof *e);
    for (size_t i = 0; i < N; i++)
        for (int a = 0; a < D; a++) {
            Fty[a] += f[i * D + a] * y[i];
            for (int b = 0; b < D; b++)
                FtF[a * D + b] += (double)f[i * D + a] * f[i * D + b];
        }
    double alpha = 1, beta = 1, logdet = 0, mm = 0, res = 0;
    for (int it = 0; it < 100000; it++) {
        for (int j = 0; j < D * D; j++)
            A[j] = beta * FtF[j] + (j % (D + 1) == 0 ? alpha : 0);
        logdet = chol(A, D);
        for (int a = 0; a < D; a++)
            m[a] = beta * Fty[a];
        chol_solve(A, D, m);
        double trinv = 0;
        for (int a = 0; a < D; a++) {
            memset(e, 0, D * sizeof *e);
            e[a] = 1;
            chol_solve(A, D, e);
            trinv += e[a];
        }
        double gamma = D - alpha * trinv;
        mm = 0, res = 0;
        for (int a = 0; a < D; a++)
            mm += m[a] * m[a];
        for (size_t i = 0; i < N; i++) {
            double p = 0;
            for (int a = 0; a < D; a++)
                p += f[i * D + a] * m[a];
            res += (p - y[i]) * (p - y[i]);
        }
        double na = gamma / (mm + 1e-5), nb = (N - gamma) / (res + 1e-5);
        int done = fabs(na / nb - alpha / beta) / (alpha / beta) < 1e-13;
        if (done)
            break;
        alpha = na, beta = nb;
    }
    double ev = D / 2.0 * log(alpha) + N / 2.0 * log(beta) - 0.5 * logdet - beta / 2 * res -
                alpha / 2 * mm - N / 2.0 * log(2 * M_PI);
    free(FtF), free(Fty), free(A), free(m), free(e);
    return ev / N;
}

static double ref_logme(const float *f, const int32_t *lab, size_t N, int D)
{
    double *y = malloc(N * sizeof *y), total = 0;
    int C = 0, present = 0;
    for (size_t i = 0; i < N; i++)
        C = lab[i] + 1 > C ? lab[i] + 1 : C;
    for (int c = 0; c < C; c++) {
        int any = 0;
        for (size_t i = 0; i < N; i++)
            any |= (y[i] = lab[i] == c) != 0;
        if (!any)
            continue;
        total += ref_logme_class(f, N, D, y);
        present++;
    }
    free(y);
    return total / present;
}

/* Features with label signal: class means apart, plus noise. */
static float *signal_features(trng *g, const int32_t *y, size_t n, size_t d, double sep)
{
    float *x = malloc(n * d * sizeof *x);
    double cent[16][64];
    for (int c = 0; c < 16; c++)
        for (size_t j = 0; j < d && j < 64; j++)
            cent[c][j] = trng_gauss(g);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)(sep * cent[y[i]][j % 64] + trng_gauss(g));
    return x;
}

static void check_logme(const float *x, const int32_t *y, size_t n, size_t d)
{
    proxy_data data = {x, y, n, d};
    proxy_logme_opts tight = {100000, 1e-13};
    double s = 0, s_def = 0;
    char err[256] = "";
    if (proxy_logme(&data, &tight, &s, err, sizeof err) != PROXY_OK)
        fail_msg("%s", err);
    double ref = ref_logme(x, y, n, (int)d);
    if (fabs(s - ref) > 1e-7 * fabs(ref))
        fail_msg("LogME n=%zu d=%zu: %.12g, reference %.12g", n, d, s, ref);
    /* the default stopping rule (1e-3 on α/β) lands close to the fixed point */
    assert_int_equal(proxy_logme(&data, NULL, &s_def, NULL, 0), PROXY_OK);
    if (fabs(s_def - ref) > 1e-3 * fabs(ref))
        fail_msg("LogME default tol: %.12g, reference %.12g", s_def, ref);
}

static void test_logme_reference(void **state)
{
    (void)state;
    trng g = {21};
    struct { size_t n, d; int C; double sep; } cases[] = {
        {200, 8, 3, 1.0}, {300, 20, 5, 0.3}, {150, 12, 2, 3.0},
        {15, 25, 3, 1.0}, /* n < d: rank-deficient FᵀF */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t *y = t_labels(&g, cases[c].n, cases[c].C);
        float *x = signal_features(&g, y, cases[c].n, cases[c].d, cases[c].sep);
        check_logme(x, y, cases[c].n, cases[c].d);
        free(x), free(y);
    }
}

static void test_logme_properties(void **state)
{
    (void)state;
    trng g = {22};
    size_t n = 300, d = 10;
    int32_t *y = t_labels(&g, n, 4);
    float *weak = signal_features(&g, y, n, d, 0.1), *strong = signal_features(&g, y, n, d, 3.0);
    proxy_data w = {weak, y, n, d}, s = {strong, y, n, d};
    double sw, ss;
    assert_int_equal(proxy_logme(&w, NULL, &sw, NULL, 0), PROXY_OK);
    assert_int_equal(proxy_logme(&s, NULL, &ss, NULL, 0), PROXY_OK);
    assert_true(ss > sw); /* features that separate the classes score higher */
    /* absent classes are skipped: labels {0, 3} score as {0, 1} */
    int32_t *y2 = malloc(n * sizeof *y2), *y3 = malloc(n * sizeof *y3);
    for (size_t i = 0; i < n; i++)
        y2[i] = y[i] % 2, y3[i] = 3 * (y[i] % 2);
    proxy_data a = {strong, y2, n, d}, b = {strong, y3, n, d};
    double sa, sb;
    assert_int_equal(proxy_logme(&a, NULL, &sa, NULL, 0), PROXY_OK);
    assert_int_equal(proxy_logme(&b, NULL, &sb, NULL, 0), PROXY_OK);
    assert_true(sa == sb);
    free(weak), free(strong), free(y), free(y2), free(y3);
}

/* ---- H-score ------------------------------------------------------------------------- */

static double ref_hscore(const float *f, const int32_t *y, size_t n, int d, double lambda)
{
    double *mu = calloc(d, sizeof *mu), *cov = calloc(d * d, sizeof *cov);
    double *covg = calloc(d * d, sizeof *covg), *g = malloc(d * sizeof *g);
    int C = 0;
    for (size_t i = 0; i < n; i++)
        C = y[i] + 1 > C ? y[i] + 1 : C;
    double *cm = calloc(C * d, sizeof *cm), *cnt = calloc(C, sizeof *cnt);
    for (size_t i = 0; i < n; i++) {
        cnt[y[i]]++;
        for (int j = 0; j < d; j++)
            mu[j] += f[i * d + j] / (double)n, cm[y[i] * d + j] += f[i * d + j];
    }
    for (int c = 0; c < C; c++)
        for (int j = 0; j < d; j++)
            cm[c * d + j] /= cnt[c] > 0 ? cnt[c] : 1;
    /* cov(f) and cov(g) with g = E[f | y] per sample, as in the authors' getCov */
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < d; j++)
            g[j] = cm[y[i] * d + j] - mu[j];
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++) {
                cov[a * d + b] += (f[i * d + a] - mu[a]) * (f[i * d + b] - mu[b]) / n;
                covg[a * d + b] += g[a] * g[b] / n;
            }
    }
    if (lambda > 0) {
        double tr = 0;
        for (int a = 0; a < d; a++)
            tr += cov[a * d + a];
        for (int j = 0; j < d * d; j++)
            cov[j] *= 1 - lambda;
        for (int a = 0; a < d; a++)
            cov[a * d + a] += lambda * tr / d;
    }
    gauss_solve(cov, d, covg, d);
    double h = 0;
    for (int a = 0; a < d; a++)
        h += covg[a * d + a];
    free(mu), free(cov), free(covg), free(g), free(cm), free(cnt);
    return h;
}

static void test_hscore_reference(void **state)
{
    (void)state;
    trng g = {31};
    struct { size_t n, d; int C; double sep; } cases[] = {
        {200, 8, 4, 1.0}, {500, 30, 10, 0.5}, {100, 5, 2, 0.05},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = cases[c].n, d = cases[c].d;
        int32_t *y = t_labels(&g, n, cases[c].C);
        float *x = signal_features(&g, y, n, d, cases[c].sep);
        proxy_data data = {x, y, n, d};
        double lambdas[] = {0, 0.3, 1};
        for (int l = 0; l < 3; l++) {
            proxy_hscore_opts o = {lambdas[l], 0};
            double h;
            char err[256] = "";
            if (proxy_hscore(&data, &o, &h, err, sizeof err) != PROXY_OK)
                fail_msg("%s", err);
            double ref = ref_hscore(x, y, n, (int)d, lambdas[l]);
            if (fabs(h - ref) > 1e-9 * fabs(ref) + 1e-12)
                fail_msg("H-score case %zu λ=%g: %.12g, reference %.12g", c, lambdas[l], h, ref);
            assert_true(h >= 0);
            if (lambdas[l] == 0) /* cov(f) ⪰ cov(E[f|y]) → H ≤ rank ≤ C − 1 */
                assert_true(h <= cases[c].C - 1 + 1e-9);
        }
        free(x), free(y);
    }
}

/* A duplicated column leaves the feature span, hence H-score, unchanged: the singular
 * covariance goes through the pseudo-inverse. Also invariant to invertible column scaling. */
static void test_hscore_pinv(void **state)
{
    (void)state;
    trng g = {32};
    size_t n = 300, d = 6;
    int32_t *y = t_labels(&g, n, 3);
    float *x = signal_features(&g, y, n, d, 1.0);
    float *x2 = malloc(n * (d + 2) * sizeof *x2);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            x2[i * (d + 2) + j] = x[i * d + j] * (float)(j + 1);
        x2[i * (d + 2) + d] = x[i * d + 0];     /* duplicate (scaled) of column 0 */
        x2[i * (d + 2) + d + 1] = x[i * d + 2]; /* … and of column 2 */
    }
    proxy_data a = {x, y, n, d}, b = {x2, y, n, d + 2};
    double ha, hb;
    assert_int_equal(proxy_hscore(&a, NULL, &ha, NULL, 0), PROXY_OK);
    assert_int_equal(proxy_hscore(&b, NULL, &hb, NULL, 0), PROXY_OK);
    if (fabs(ha - hb) > 1e-6 * ha)
        fail_msg("H-score with duplicated columns %.12g, without %.12g", hb, ha);
    free(x), free(x2), free(y);
}

/* ---- LEEP ---------------------------------------------------------------------------- */

static double ref_leep(const float *th, const int32_t *y, size_t n, size_t Z)
{
    int C = 0;
    for (size_t i = 0; i < n; i++)
        C = y[i] + 1 > C ? y[i] + 1 : C;
    double *joint = calloc(C * Z, sizeof *joint), *pz = calloc(Z, sizeof *pz), s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t z = 0; z < Z; z++)
            joint[y[i] * Z + z] += th[i * Z + z] / (double)n;
    for (int c = 0; c < C; c++)
        for (size_t z = 0; z < Z; z++)
            pz[z] += joint[c * Z + z];
    for (size_t i = 0; i < n; i++) {
        double e = 0;
        for (size_t z = 0; z < Z; z++)
            if (pz[z] > 0)
                e += joint[y[i] * Z + z] / pz[z] * th[i * Z + z];
        s += log(e);
    }
    free(joint), free(pz);
    return s / n;
}

static void test_leep_example(void **state)
{
    (void)state;
    /* joint: y0 → (0.5, 1/6), y1 → (0, 1/3); P(z) = (.5, .5); P(y0|z) = (1, 1/3), P(y1|z) =
     * (0, 2/3). Rows: log 1, log(.5 + 1/6), log(2/3) → LEEP = (2/3)·log(2/3). Dropping the
     * repeated label 0 (SHiFT's bug) would give another value. */
    float th[] = {1, 0, 0.5f, 0.5f, 0, 1};
    int32_t y[] = {0, 0, 1};
    proxy_data t = {th, y, 3, 2};
    double s;
    assert_int_equal(proxy_leep(&t, &s, NULL, 0), PROXY_OK);
    assert_true(fabs(s - 2.0 / 3.0 * log(2.0 / 3.0)) < 1e-12);
    /* a source class nobody uses (P(z) = 0) drops out */
    float th3[] = {1, 0, 0, 0.5f, 0.5f, 0, 0, 1, 0};
    proxy_data t3 = {th3, y, 3, 3};
    double s3;
    assert_int_equal(proxy_leep(&t3, &s3, NULL, 0), PROXY_OK);
    assert_true(fabs(s3 - s) < 1e-12);
    /* perfect transfer: θ one-hot and equal to the label → LEEP = 0 */
    float th4[] = {1, 0, 0, 1, 1, 0};
    int32_t y4[] = {0, 1, 0};
    proxy_data t4 = {th4, y4, 3, 2};
    assert_int_equal(proxy_leep(&t4, &s, NULL, 0), PROXY_OK);
    assert_true(fabs(s) < 1e-12);
}

static void test_leep_reference(void **state)
{
    (void)state;
    trng g = {41};
    size_t n = 500, Z = 17;
    int32_t *y = t_labels(&g, n, 6);
    float *th = malloc(n * Z * sizeof *th);
    for (size_t i = 0; i < n; i++) {
        double s = 0, e[17];
        for (size_t z = 0; z < Z; z++)
            s += e[z] = exp(2 * trng_gauss(&g) + (z % 6 == (size_t)y[i] ? 1.5 : 0));
        for (size_t z = 0; z < Z; z++)
            th[i * Z + z] = (float)(e[z] / s);
    }
    proxy_data t = {th, y, n, Z};
    double s;
    assert_int_equal(proxy_leep(&t, &s, NULL, 0), PROXY_OK);
    double ref = ref_leep(th, y, n, Z);
    if (fabs(s - ref) > 1e-12 * fabs(ref))
        fail_msg("LEEP %.15g, reference %.15g", s, ref);
    assert_true(s < 0);
    free(y), free(th);
}

/* ---- errors -------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    float x[] = {0.5f, 0.5f, 1, 0, 0.2f, 0.7f};
    int32_t y[] = {0, 1, 0}, neg[] = {0, -2, 0};
    double s;
    char err[256];
    proxy_data t = {x, y, 3, 2};
    assert_int_equal(proxy_leep(&t, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "theta: row 2 sums to 0.9"));
    x[4] = -0.3f, x[5] = 1.3f;
    assert_int_equal(proxy_leep(&t, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "row 2, column 0 is negative"));
    proxy_data tn = {x, neg, 3, 2};
    assert_int_equal(proxy_leep(&tn, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "theta: label -2 at row 1 is out of range"));
    proxy_data nolab = {x, NULL, 3, 2};
    assert_int_equal(proxy_leep(&nolab, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "labels are required"));

    proxy_data one = {x, y, 1, 2};
    assert_int_equal(proxy_hscore(&one, NULL, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "at least 2 rows"));
    proxy_hscore_opts ho = {1.5, 0};
    assert_int_equal(proxy_hscore(&t, &ho, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "shrinkage 1.5 is not in [0, 1]"));
    proxy_data dn = {x, neg, 3, 2};
    assert_int_equal(proxy_hscore(&dn, NULL, &s, err, sizeof err), PROXY_EINVAL);
    assert_int_equal(proxy_logme(&dn, NULL, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "data: label -2 at row 1"));
    proxy_logme_opts lo = {-1, 0};
    assert_int_equal(proxy_logme(&t, &lo, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "max_iter -1"));
    float xn[] = {0, NAN};
    proxy_data nan = {xn, y, 1, 2};
    assert_int_equal(proxy_logme(&nan, NULL, &s, err, sizeof err), PROXY_EINVAL);
    assert_non_null(strstr(err, "not finite"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logme_reference),
        cmocka_unit_test(test_logme_properties),
        cmocka_unit_test(test_hscore_reference),
        cmocka_unit_test(test_hscore_pinv),
        cmocka_unit_test(test_leep_example),
        cmocka_unit_test(test_leep_reference),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
