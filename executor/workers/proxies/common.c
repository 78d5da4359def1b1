/* Argument checks, result allocation, column statistics and the LAPACK/BLAS glue shared by
 * the proxies (and by the CUDA twins through internal.h). */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor/workers/proxies/internal.h"
#include "executor/workers/proxies/proxy_math.h"

int proxy_fail(char *err, size_t errsize, int code, const char *fmt, ...)
{
    if (err && errsize) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsize, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *proxy_strerror(int code)
{
    switch (code) {
    case PROXY_OK: return "ok";
    case PROXY_EINVAL: return "invalid argument";
    case PROXY_ENOMEM: return "out of memory";
    case PROXY_ENOGPU: return "no GPU";
    case PROXY_EGPU: return "GPU error";
    case PROXY_ENUMERIC: return "numerical failure";
    default: return "unknown error";
    }
}

/* A float is finite iff its exponent bits are not all ones. Branch-free so the loop over
 * n·d values vectorises; the slow path only finds the position for the message. */
static int all_finite(const float *x, size_t count, size_t *bad)
{
    uint32_t acc = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        acc |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
    }
    if (!acc)
        return 1;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i])) {
            *bad = i;
            return 0;
        }
    return 1;
}

int proxy_check_data(const proxy_data *data, const char *what, int need_labels, char *err,
                     size_t errsize)
{
    if (!data)
        return proxy_fail(err, errsize, PROXY_EINVAL, "%s: no data", what);
    if (data->n == 0)
        return proxy_fail(err, errsize, PROXY_EINVAL, "%s: no rows", what);
    if (data->d == 0)
        return proxy_fail(err, errsize, PROXY_EINVAL, "%s: no feature columns", what);
    if (data->d > INT_MAX)
        return proxy_fail(err, errsize, PROXY_EINVAL, "%s: %zu feature columns (at most %d)",
                          what, data->d, INT_MAX);
    if (data->n > SIZE_MAX / sizeof(float) / data->d)
        return proxy_fail(err, errsize, PROXY_EINVAL, "%s: %zu × %zu features overflow", what,
                          data->n, data->d);
    if (!data->x)
        return proxy_fail(err, errsize, PROXY_EINVAL, "%s: no feature array", what);
    if (need_labels && !data->y)
        return proxy_fail(err, errsize, PROXY_EINVAL, "%s: labels are required", what);
    if (data->y)
        for (size_t i = 0; i < data->n; i++)
            if (data->y[i] < 0 || data->y[i] >= PROXY_MAX_CLASSES)
                return proxy_fail(err, errsize, PROXY_EINVAL,
                                  "%s: label %ld at row %zu is out of range (0..%d)", what,
                                  (long)data->y[i], i, PROXY_MAX_CLASSES - 1);
    size_t bad = 0;
    if (!all_finite(data->x, data->n * data->d, &bad))
        return proxy_fail(err, errsize, PROXY_EINVAL,
                          "%s: feature at row %zu, column %zu is not finite (%g)", what,
                          bad / data->d, bad % data->d, (double)data->x[bad]);
    return PROXY_OK;
}

int proxy_label_count(const int32_t *y, size_t n)
{
    int32_t mx = -1;
    if (!y)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (y[i] > mx)
            mx = y[i];
    return (int)mx + 1;
}

double proxy_row_sumsq(const float *x, size_t d)
{
    /* Four partial sums: faster, and no less accurate, than one. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        s0 += (double)x[j] * x[j];
        s1 += (double)x[j + 1] * x[j + 1];
        s2 += (double)x[j + 2] * x[j + 2];
        s3 += (double)x[j + 3] * x[j + 3];
    }
    for (; j < d; j++)
        s0 += (double)x[j] * x[j];
    return (s0 + s1) + (s2 + s3);
}

/* ---- nearest neighbours ------------------------------------------------------------- */

int proxy_nn_setup(const proxy_data *train, const proxy_data *test, const proxy_nn_opts *opts,
                   proxy_nn_opts *o, char *err, size_t errsize)
{
    int rc;
    if ((rc = proxy_check_data(train, "train", 1, err, errsize)) != PROXY_OK)
        return rc;
    if ((rc = proxy_check_data(test, "test", 0, err, errsize)) != PROXY_OK)
        return rc;
    if (train->d != test->d)
        return proxy_fail(err, errsize, PROXY_EINVAL,
                          "test has %zu feature columns but train has %zu", test->d, train->d);
    proxy_nn_opts def = {PROXY_EUCLIDEAN, 1, 0, 0};
    *o = opts ? *opts : def;
    if (o->metric != PROXY_EUCLIDEAN && o->metric != PROXY_COSINE)
        return proxy_fail(err, errsize, PROXY_EINVAL, "unknown metric %d", (int)o->metric);
    if (o->k == 0)
        o->k = 1;
    if (o->k < 0 || o->k > PROXY_MAX_K)
        return proxy_fail(err, errsize, PROXY_EINVAL, "k = %d is out of range (1..%d)", o->k,
                          PROXY_MAX_K);
    if ((size_t)o->k > train->n)
        return proxy_fail(err, errsize, PROXY_EINVAL, "k = %d exceeds the %zu train rows", o->k,
                          train->n);
    if (o->test_tile == 0)
        o->test_tile = PROXY_NN_TEST_TILE;
    if (o->train_tile == 0)
        o->train_tile = PROXY_NN_TRAIN_TILE;
    if (o->test_tile > test->n)
        o->test_tile = test->n;
    if (o->train_tile > train->n)
        o->train_tile = train->n;
    if (o->test_tile > INT_MAX || o->train_tile > INT_MAX ||
        o->test_tile > SIZE_MAX / sizeof(float) / o->train_tile ||
        o->train_tile > SIZE_MAX / sizeof(float) / train->d)
        return proxy_fail(err, errsize, PROXY_EINVAL, "tile %zu × %zu is too large",
                          o->test_tile, o->train_tile);
    return PROXY_OK;
}

int proxy_nn_result_alloc(proxy_nn_result *r, size_t n, int k, char *err, size_t errsize)
{
    memset(r, 0, sizeof *r);
    if (n > SIZE_MAX / sizeof(int64_t) / (size_t)k)
        return proxy_fail(err, errsize, PROXY_EINVAL, "result %zu × %d overflows", n, k);
    r->n = n;
    r->k = k;
    r->pred = malloc(n * sizeof *r->pred);
    r->nbr = malloc(n * (size_t)k * sizeof *r->nbr);
    r->dist = malloc(n * (size_t)k * sizeof *r->dist);
    if (!r->pred || !r->nbr || !r->dist) {
        proxy_nn_result_free(r);
        return proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory for %zu × %d neighbours",
                          n, k);
    }
    return PROXY_OK;
}

void proxy_nn_finish(proxy_nn_result *r, const int32_t *train_y, const int32_t *test_y)
{
    int32_t lab[PROXY_MAX_K];
    size_t wrong = 0, k = (size_t)r->k;
    for (size_t i = 0; i < r->n; i++) {
        for (size_t j = 0; j < k; j++) {
            r->dist[i * k + j] = proxy_dist_report(r->dist[i * k + j]);
            lab[j] = train_y[r->nbr[i * k + j]];
        }
        r->pred[i] = proxy_vote(lab, r->k);
        if (test_y && r->pred[i] != test_y[i])
            wrong++;
    }
    r->wrong = wrong;
    r->err = test_y ? (double)wrong / (double)r->n : NAN;
}

int proxy_nn_rescore(const proxy_nn_result *r, const int32_t *train_y, size_t n_train,
                     const int32_t *test_y, int32_t *pred, double *err_rate, char *err,
                     size_t errsize)
{
    if (!r || !r->nbr || r->k < 1 || r->n == 0)
        return proxy_fail(err, errsize, PROXY_EINVAL, "rescore: empty neighbour result");
    if (!train_y || !test_y)
        return proxy_fail(err, errsize, PROXY_EINVAL, "rescore: labels are required");
    int32_t *lab = malloc((size_t)r->k * sizeof *lab);
    if (!lab)
        return proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory");
    size_t wrong = 0;
    for (size_t i = 0; i < r->n; i++) {
        for (int j = 0; j < r->k; j++) {
            int64_t t = r->nbr[i * (size_t)r->k + (size_t)j];
            if (t < 0 || (uint64_t)t >= n_train) {
                free(lab);
                return proxy_fail(err, errsize, PROXY_EINVAL,
                                  "rescore: neighbour %lld of test row %zu is not a train row "
                                  "(%zu rows)", (long long)t, i, n_train);
            }
            lab[j] = train_y[t];
        }
        int32_t p = proxy_vote(lab, r->k);
        if (pred)
            pred[i] = p;
        if (p != test_y[i])
            wrong++;
    }
    free(lab);
    if (err_rate)
        *err_rate = (double)wrong / (double)r->n;
    return PROXY_OK;
}

void proxy_nn_result_free(proxy_nn_result *r)
{
    if (!r)
        return;
    free(r->pred);
    free(r->nbr);
    free(r->dist);
    memset(r, 0, sizeof *r);
}

/* ---- linear probe ------------------------------------------------------------------- */

int proxy_linear_setup(const proxy_data *train, const proxy_data *test,
                       const proxy_linear_opts *opts, proxy_linear_opts *o, char *err,
                       size_t errsize)
{
    int rc;
    if ((rc = proxy_check_data(train, "train", 1, err, errsize)) != PROXY_OK)
        return rc;
    if ((rc = proxy_check_data(test, "test", 1, err, errsize)) != PROXY_OK)
        return rc;
    if (train->d != test->d)
        return proxy_fail(err, errsize, PROXY_EINVAL,
                          "test has %zu feature columns but train has %zu", test->d, train->d);
    if (train->n > INT_MAX || test->n > INT_MAX)
        return proxy_fail(err, errsize, PROXY_EINVAL, "linear probe: more than %d rows",
                          INT_MAX);
    proxy_linear_opts def = {0, 0, 0, 0};
    *o = opts ? *opts : def;
    if (o->learning_rate == 0)
        o->learning_rate = 0.1;
    if (!(o->learning_rate > 0) || !isfinite(o->learning_rate))
        return proxy_fail(err, errsize, PROXY_EINVAL, "learning_rate %g must be > 0",
                          o->learning_rate);
    if (o->num_epochs == 0)
        o->num_epochs = 100;
    if (o->num_epochs < 0)
        return proxy_fail(err, errsize, PROXY_EINVAL, "num_epochs %d must be ≥ 1",
                          o->num_epochs);
    int c_train = proxy_label_count(train->y, train->n);
    int c_test = proxy_label_count(test->y, test->n);
    int c = c_train > c_test ? c_train : c_test;
    if (o->num_classes == 0)
        o->num_classes = c;
    else if (o->num_classes < c || o->num_classes > PROXY_MAX_CLASSES)
        return proxy_fail(err, errsize, PROXY_EINVAL,
                          "num_classes %d must be ≥ max label + 1 = %d (and ≤ %d)",
                          o->num_classes, c, PROXY_MAX_CLASSES);
    size_t C = (size_t)o->num_classes;
    if (C > SIZE_MAX / sizeof(float) / train->d || C > SIZE_MAX / sizeof(float) / train->n ||
        C > SIZE_MAX / sizeof(float) / test->n)
        return proxy_fail(err, errsize, PROXY_EINVAL, "%zu classes overflow", C);
    return PROXY_OK;
}

int proxy_linear_result_alloc(proxy_linear_result *r, size_t n_test, int num_classes,
                              int num_epochs, char *err, size_t errsize)
{
    memset(r, 0, sizeof *r);
    r->num_classes = num_classes;
    r->num_epochs = num_epochs;
    r->n = n_test;
    r->loss = malloc((size_t)num_epochs * sizeof *r->loss);
    r->pred = malloc(n_test * sizeof *r->pred);
    if (!r->loss || !r->pred) {
        proxy_linear_result_free(r);
        return proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory");
    }
    return PROXY_OK;
}

void proxy_linear_result_free(proxy_linear_result *r)
{
    if (!r)
        return;
    free(r->loss);
    free(r->pred);
    memset(r, 0, sizeof *r);
}

void proxy_column_stats(const float *x, size_t n, size_t d, float *mean, float *inv_std)
{
    double *acc = calloc(d, sizeof *acc);
    double *acc2 = calloc(d, sizeof *acc2);
    if (!acc || !acc2) { /* tiny (d doubles); fall back to a slow exact path */
        for (size_t j = 0; j < d; j++) {
            double s = 0, s2 = 0;
            for (size_t i = 0; i < n; i++)
                s += x[i * d + j];
            double m = s / (double)n;
            for (size_t i = 0; i < n; i++)
                s2 += ((double)x[i * d + j] - m) * ((double)x[i * d + j] - m);
            mean[j] = (float)m;
            inv_std[j] = proxy_inv_std(sqrt(s2 / (double)n));
        }
        free(acc);
        free(acc2);
        return;
    }
    /* Two passes (mean, then squared deviations): no cancellation. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            acc[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++)
        acc[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double v = (double)x[i * d + j] - acc[j];
            acc2[j] += v * v;
        }
    for (size_t j = 0; j < d; j++) {
        mean[j] = (float)acc[j];
        inv_std[j] = proxy_inv_std(sqrt(acc2[j] / (double)n));
    }
    free(acc);
    free(acc2);
}

/* ---- LAPACK / BLAS glue for the scores ------------------------------------------------ */

int proxy_symeig(double *a, int d, double *w, char *err, size_t errsize)
{
    int lwork = -1, liwork = -1, info = 0, iwq = 0;
    double wq = 0;
    dsyevd_("V", "U", &d, a, &d, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info != 0)
        return proxy_fail(err, errsize, PROXY_ENUMERIC, "dsyevd workspace query: info %d",
                          info);
    lwork = (int)wq + 1;
    liwork = iwq;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory for dsyevd (d = %d)", d);
    }
    dsyevd_("V", "U", &d, a, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info != 0)
        return proxy_fail(err, errsize, PROXY_ENUMERIC,
                          "eigendecomposition (dsyevd) did not converge: info %d", info);
    return PROXY_OK;
}

/* Rows per chunk converted to double for DSYRK: bounded memory (≤ 8 MiB per chunk). */
static size_t gram_chunk(size_t d)
{
    size_t rows = (size_t)(8u << 20) / (d * sizeof(double));
    return rows < 64 ? 64 : rows;
}

int proxy_gram(const float *x, size_t n, size_t d, const double *mu, double *g, char *err,
               size_t errsize)
{
    size_t chunk = gram_chunk(d);
    if (chunk > n)
        chunk = n;
    double *buf = malloc(chunk * d * sizeof *buf);
    if (!buf)
        return proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory for the Gram matrix");
    memset(g, 0, d * d * sizeof *g);
    for (size_t r0 = 0; r0 < n; r0 += chunk) {
        size_t m = n - r0 < chunk ? n - r0 : chunk;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < d; j++)
                buf[i * d + j] = (double)x[(r0 + i) * d + j] - (mu ? mu[j] : 0.0);
        /* g (upper, row-major) += bufᵀ buf */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)m, 1.0, buf, (int)d, 1.0,
                    g, (int)d);
    }
    free(buf);
    for (size_t i = 0; i < d; i++) /* mirror the upper triangle */
        for (size_t j = 0; j < i; j++)
            g[i * d + j] = g[j * d + i];
    return PROXY_OK;
}
