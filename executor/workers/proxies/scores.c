/* Transferability scores computed from features (LogME, H-score) or from a source
 * classifier's probabilities (LEEP), in double precision, CPU only: after one O(n·d²) Gram
 * matrix (DSYRK) and one O(d³) eigendecomposition (DSYEVD) the rest is O(C·d), so a GPU
 * twin would not pay for its transfers.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "executor/workers/proxies/internal.h"

/* Labels that occur, numbered densely: cls[y] = 0..K-1 or -1 for absent labels, cnt[k] the
 * rows per class. */
typedef struct label_map {
    int32_t *cls; /* [max label + 1] */
    size_t *cnt;  /* [K] */
    int K;
} label_map;

static int label_map_build(const int32_t *y, size_t n, label_map *m, char *err, size_t errsize)
{
    int C = proxy_label_count(y, n);
    memset(m, 0, sizeof *m);
    m->cls = malloc((size_t)C * sizeof *m->cls);
    m->cnt = calloc((size_t)C, sizeof *m->cnt);
    if (!m->cls || !m->cnt) {
        free(m->cls);
        free(m->cnt);
        return proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory for %d labels", C);
    }
    for (int c = 0; c < C; c++)
        m->cls[c] = -1;
    for (size_t i = 0; i < n; i++)
        if (m->cls[y[i]] < 0)
            m->cls[y[i]] = 0;
    for (int c = 0; c < C; c++)
        if (m->cls[c] >= 0)
            m->cls[c] = m->K++;
    for (size_t i = 0; i < n; i++)
        m->cnt[m->cls[y[i]]]++;
    return PROXY_OK;
}

static void label_map_free(label_map *m)
{
    free(m->cls);
    free(m->cnt);
}

/* S (K × d) = per-class sums of the rows of x, minus cnt·mu when mu is given (so S/cnt is
 * the class mean minus mu). */
static void class_sums(const proxy_data *data, const label_map *m, const double *mu, double *S)
{
    const size_t d = data->d;
    memset(S, 0, (size_t)m->K * d * sizeof *S);
    for (size_t i = 0; i < data->n; i++) {
        double *s = S + (size_t)m->cls[data->y[i]] * d;
        const float *x = data->x + i * d;
        for (size_t j = 0; j < d; j++)
            s[j] += x[j];
    }
    if (mu)
        for (int k = 0; k < m->K; k++)
            for (size_t j = 0; j < d; j++)
                S[(size_t)k * d + j] -= (double)m->cnt[k] * mu[j];
}

static int check_d_square(const proxy_data *data, char *err, size_t errsize)
{
    if (data->d > 46340 || data->d * data->d > SIZE_MAX / sizeof(double) / 3)
        return proxy_fail(err, errsize, PROXY_EINVAL,
                          "%zu feature columns: the d × d matrices are too large", data->d);
    return PROXY_OK;
}

/* ---- LogME ------------------------------------------------------------------------- */

#define LOGME_EPS 1e-5 /* the reference code's regulariser in the α and β updates */

/* One class: maximise the evidence over (α, β) by the fixed-point iteration. sigma[0..r) are
 * the nonzero eigenvalues of FᵀF, x2[i] = (uᵢᵀy)², res0 = ‖y‖² − Σ x2 (the part of y outside
 * the column space of F), D − r eigenvalues are zero. Returns the evidence / N. */
static double logme_class(const double *sigma, const double *x2, int r, double res0, double N,
                          double D, int max_iter, double tol)
{
    double alpha = 1.0, beta = 1.0, evidence = 0.0;
    for (int it = 0; it < max_iter; it++) {
        double t = alpha / beta, gamma = 0, m2 = 0, res2 = res0;
        for (int i = 0; i < r; i++) {
            double s = sigma[i], q = t + s;
            gamma += s / q;
            m2 += s * x2[i] / (q * q);
            res2 += x2[i] * (t / q) * (t / q); /* x²/(1 + σ/t)² */
        }
        alpha = gamma / (m2 + LOGME_EPS);
        beta = (N - gamma) / (res2 + LOGME_EPS);
        double logdet = (D - r) * log(alpha);
        for (int i = 0; i < r; i++)
            logdet += log(alpha + beta * sigma[i]);
        evidence = D / 2.0 * log(alpha) + N / 2.0 * log(beta) - 0.5 * logdet -
                   beta / 2.0 * res2 - alpha / 2.0 * m2 - N / 2.0 * log(2.0 * M_PI);
        double t_new = alpha / beta;
        if (fabs(t_new - t) / t <= tol)
            break;
    }
    return evidence / N;
}

int proxy_logme(const proxy_data *data, const proxy_logme_opts *opts, double *score, char *err,
                size_t errsize)
{
    int rc = proxy_check_data(data, "data", 1, err, errsize);
    if (rc != PROXY_OK || (rc = check_d_square(data, err, errsize)) != PROXY_OK)
        return rc;
    int max_iter = opts && opts->max_iter ? opts->max_iter : 100;
    double tol = opts && opts->tol != 0 ? opts->tol : 1e-3;
    if (max_iter < 1 || !(tol > 0) || !isfinite(tol))
        return proxy_fail(err, errsize, PROXY_EINVAL,
                          "LogME: max_iter %d must be ≥ 1 and tol %g > 0", max_iter, tol);
    if (!score)
        return proxy_fail(err, errsize, PROXY_EINVAL, "LogME: no output");

    const size_t n = data->n, d = data->d;
    label_map m;
    if ((rc = label_map_build(data->y, n, &m, err, errsize)) != PROXY_OK)
        return rc;
    double *G = malloc(d * d * sizeof *G);
    double *w = malloc(d * sizeof *w);
    double *S = malloc((size_t)m.K * d * sizeof *S);
    double *P = malloc((size_t)m.K * d * sizeof *P);
    double *x2 = malloc(d * sizeof *x2);
    double *sig = malloc(d * sizeof *sig);
    int *keep = malloc(d * sizeof *keep);
    if (!G || !w || !S || !P || !x2 || !sig || !keep) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM, "LogME: out of memory (d = %zu)", d);
        goto done;
    }
    /* FᵀF = V diag(σ) Vᵀ; with F = U Σ Vᵀ, uᵢᵀy = vᵢᵀFᵀy / √σᵢ and Fᵀy for the indicator of
     * class c is the class sum S_c, so x²ᵢ = (vᵢᵀS_c)² / σᵢ. */
    if ((rc = proxy_gram(data->x, n, d, NULL, G, err, errsize)) != PROXY_OK ||
        (rc = proxy_symeig(G, (int)d, w, err, errsize)) != PROXY_OK)
        goto done;
    class_sums(data, &m, NULL, S);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m.K, (int)d, (int)d, 1.0, S, (int)d, G,
                (int)d, 0.0, P, (int)d);
    double wmax = w[d - 1], cut = wmax * (double)(n > d ? n : d) * DBL_EPSILON;
    int r = 0;
    for (size_t i = 0; i < d; i++) {
        keep[i] = w[i] > cut && wmax > 0;
        if (keep[i])
            sig[r++] = w[i];
    }
    double total = 0.0;
    for (int k = 0; k < m.K; k++) {
        double sx = 0.0;
        int q = 0;
        for (size_t i = 0; i < d; i++)
            if (keep[i]) {
                double p = P[(size_t)k * d + i];
                x2[q] = p * p / w[i];
                sx += x2[q++];
            }
        double res0 = (double)m.cnt[k] - sx; /* ‖y‖² = number of rows of the class */
        if (res0 < 0)
            res0 = 0;
        total += logme_class(sig, x2, r, res0, (double)n, (double)d, max_iter, tol);
    }
    *score = total / m.K;
    if (!isfinite(*score))
        rc = proxy_fail(err, errsize, PROXY_ENUMERIC, "LogME: the evidence is not finite");

done:
    free(G);
    free(w);
    free(S);
    free(P);
    free(x2);
    free(sig);
    free(keep);
    label_map_free(&m);
    return rc;
}

/* ---- H-score ----------------------------------------------------------------------- */

int proxy_hscore(const proxy_data *data, const proxy_hscore_opts *opts, double *score,
                 char *err, size_t errsize)
{
    int rc = proxy_check_data(data, "data", 1, err, errsize);
    if (rc != PROXY_OK || (rc = check_d_square(data, err, errsize)) != PROXY_OK)
        return rc;
    const size_t n = data->n, d = data->d;
    double lambda = opts ? opts->shrinkage : 0.0;
    double rcond = opts && opts->rcond != 0 ? opts->rcond : (double)(n > d ? n : d) * DBL_EPSILON;
    if (!(lambda >= 0 && lambda <= 1))
        return proxy_fail(err, errsize, PROXY_EINVAL, "H-score: shrinkage %g is not in [0, 1]",
                          lambda);
    if (!(rcond > 0 && rcond < 1))
        return proxy_fail(err, errsize, PROXY_EINVAL, "H-score: rcond %g is not in (0, 1)",
                          rcond);
    if (n < 2)
        return proxy_fail(err, errsize, PROXY_EINVAL, "H-score: needs at least 2 rows");
    if (!score)
        return proxy_fail(err, errsize, PROXY_EINVAL, "H-score: no output");

    label_map m;
    if ((rc = label_map_build(data->y, n, &m, err, errsize)) != PROXY_OK)
        return rc;
    double *mu = calloc(d, sizeof *mu);
    double *G = malloc(d * d * sizeof *G);
    double *w = malloc(d * sizeof *w);
    double *S = malloc((size_t)m.K * d * sizeof *S);
    double *P = malloc((size_t)m.K * d * sizeof *P);
    if (!mu || !G || !w || !S || !P) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM, "H-score: out of memory (d = %zu)", d);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            mu[j] += data->x[i * d + j];
    for (size_t j = 0; j < d; j++)
        mu[j] /= (double)n;
    /* cov(f) = (1/n) Σ (f − μ)(f − μ)ᵀ, optionally shrunk towards (tr/d)·I. */
    if ((rc = proxy_gram(data->x, n, d, mu, G, err, errsize)) != PROXY_OK)
        goto done;
    double tr = 0.0;
    for (size_t j = 0; j < d * d; j++)
        G[j] /= (double)n;
    for (size_t j = 0; j < d; j++)
        tr += G[j * d + j];
    if (lambda > 0) {
        for (size_t j = 0; j < d * d; j++)
            G[j] *= 1.0 - lambda;
        for (size_t j = 0; j < d; j++)
            G[j * d + j] += lambda * tr / (double)d;
    }
    if ((rc = proxy_symeig(G, (int)d, w, err, errsize)) != PROXY_OK)
        goto done;
    /* cov(E[f|y]) = Σ_c (n_c/n) (μ_c − μ)(μ_c − μ)ᵀ; with Sc = n_c (μ_c − μ):
     * tr(cov⁺ · cov_g) = Σ_i (1/wᵢ) Σ_c (vᵢᵀSc)² / (n_c · n) over the kept eigenvalues. */
    class_sums(data, &m, mu, S);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m.K, (int)d, (int)d, 1.0, S, (int)d, G,
                (int)d, 0.0, P, (int)d);
    double wmax = w[d - 1], h = 0.0;
    for (size_t i = 0; i < d; i++) {
        if (!(wmax > 0) || w[i] <= rcond * wmax)
            continue;
        double s = 0.0;
        for (int k = 0; k < m.K; k++) {
            double p = P[(size_t)k * d + i];
            s += p * p / ((double)m.cnt[k] * (double)n);
        }
        h += s / w[i];
    }
    *score = h;
    if (!isfinite(h))
        rc = proxy_fail(err, errsize, PROXY_ENUMERIC, "H-score: the score is not finite");

done:
    free(mu);
    free(G);
    free(w);
    free(S);
    free(P);
    label_map_free(&m);
    return rc;
}

/* ---- LEEP -------------------------------------------------------------------------- */

#define LEEP_ROW_SUM_TOL 1e-3

int proxy_leep(const proxy_data *theta, double *score, char *err, size_t errsize)
{
    int rc = proxy_check_data(theta, "theta", 1, err, errsize);
    if (rc != PROXY_OK)
        return rc;
    if (!score)
        return proxy_fail(err, errsize, PROXY_EINVAL, "LEEP: no output");
    const size_t n = theta->n, Z = theta->d;
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t z = 0; z < Z; z++) {
            float p = theta->x[i * Z + z];
            if (p < 0)
                return proxy_fail(err, errsize, PROXY_EINVAL,
                                  "theta: probability at row %zu, column %zu is negative (%g)", i,
                                  z, (double)p);
            s += p;
        }
        if (fabs(s - 1.0) > LEEP_ROW_SUM_TOL)
            return proxy_fail(err, errsize, PROXY_EINVAL,
                              "theta: row %zu sums to %.6g, not 1 (source-class probabilities "
                              "expected, e.g. a softmax)", i, s);
    }
    label_map m;
    if ((rc = label_map_build(theta->y, n, &m, err, errsize)) != PROXY_OK)
        return rc;
    if ((size_t)m.K > SIZE_MAX / sizeof(double) / Z) {
        label_map_free(&m);
        return proxy_fail(err, errsize, PROXY_EINVAL, "LEEP: %d × %zu joint overflows", m.K, Z);
    }
    double *joint = calloc((size_t)m.K * Z, sizeof *joint);
    double *pz = calloc(Z, sizeof *pz);
    if (!joint || !pz) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM, "LEEP: out of memory (%d × %zu)", m.K, Z);
        goto done;
    }
    /* Empirical joint: every row adds its θ to its label's row (a loop, so repeated labels
     * accumulate — SHiFT's `joint[y] += θ` fancy indexing kept only one row per label). */
    for (size_t i = 0; i < n; i++) {
        double *jr = joint + (size_t)m.cls[theta->y[i]] * Z;
        const float *t = theta->x + i * Z;
        for (size_t z = 0; z < Z; z++)
            jr[z] += t[z];
    }
    for (size_t j = 0; j < (size_t)m.K * Z; j++)
        joint[j] /= (double)n;
    for (int k = 0; k < m.K; k++)
        for (size_t z = 0; z < Z; z++)
            pz[z] += joint[(size_t)k * Z + z];
    /* P(y | z) in place; z with P(z) = 0 has θᵢ(z) = 0 for every row and drops out. */
    for (int k = 0; k < m.K; k++)
        for (size_t z = 0; z < Z; z++)
            joint[(size_t)k * Z + z] = pz[z] > 0 ? joint[(size_t)k * Z + z] / pz[z] : 0.0;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *cond = joint + (size_t)m.cls[theta->y[i]] * Z;
        const float *t = theta->x + i * Z;
        double s = 0.0;
        for (size_t z = 0; z < Z; z++)
            s += cond[z] * t[z];
        total += log(s); /* s ≥ θᵢ(z)²/(n P(z)) > 0 for some z */
    }
    *score = total / (double)n;
    if (!isfinite(*score))
        rc = proxy_fail(err, errsize, PROXY_ENUMERIC, "LEEP: the score is not finite");

done:
    free(joint);
    free(pz);
    label_map_free(&m);
    return rc;
}
