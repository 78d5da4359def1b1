/* executor/workers/embed/: the linear extractors — pca, random_projection, random_fourier —
 * as one GEMM per batch (OpenBLAS), PCA fitted with LAPACK's dsyevd. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "common/util.h"
#include "executor/workers/embed/internal.h"

/* LAPACK (in OpenBLAS), Fortran calling convention with the hidden string lengths. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

#define STREAM_PROJECTION 1
#define STREAM_FOURIER 2

void emb_random_init(embedder *e)
{
    size_t D = e->in_size, k = (size_t)e->spec.k;
    emb_rng r;
    e->mat = xmalloc(D * k * sizeof *e->mat);
    if (e->spec.kind == EMBED_RANDOM_PROJECTION) {
        emb_rng_seed(&r, e->spec.seed, STREAM_PROJECTION);
        double s = 1.0 / sqrt((double)k);
        for (size_t i = 0; i < D * k; i++)
            e->mat[i] = (float)(emb_rng_normal(&r) * s);
        return;
    }
    emb_rng_seed(&r, e->spec.seed, STREAM_FOURIER);
    double gamma = e->spec.gamma > 0 ? e->spec.gamma : 16.0 / (double)D;
    double s = sqrt(2.0 * gamma);
    for (size_t i = 0; i < D * k; i++)
        e->mat[i] = (float)(emb_rng_normal(&r) * s);
    e->vec = xmalloc(k * sizeof *e->vec);
    for (size_t j = 0; j < k; j++)
        e->vec[j] = (float)(emb_rng_uniform(&r) * 6.283185307179586);
}

int emb_pca_fit(embedder *e, const embed_input *train, char **err)
{
    size_t n = train->n, D = e->in_size, k = (size_t)e->spec.k;
    if (n < 2) {
        if (err)
            *err = xasprintf("extractor 'pca' needs at least 2 training examples, got %zu", n);
        return -1;
    }
    const size_t chunk = 256;
    float *x = xmalloc(chunk * D * sizeof *x);
    double *xc = xmalloc(chunk * D * sizeof *xc);
    double *mean = xcalloc(D, sizeof *mean);
    double *cov = xcalloc(D * D, sizeof *cov);
    for (size_t i = 0; i < n; i += chunk) {
        size_t rows = n - i < chunk ? n - i : chunk;
        emb_load_rows(train, i, rows, x);
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < D; j++)
                mean[j] += x[r * D + j];
    }
    for (size_t j = 0; j < D; j++)
        mean[j] /= (double)n;
    for (size_t i = 0; i < n; i += chunk) {
        size_t rows = n - i < chunk ? n - i : chunk;
        emb_load_rows(train, i, rows, x);
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < D; j++)
                xc[r * D + j] = x[r * D + j] - mean[j];
        /* Row-major upper triangle of cov += xcᵀ·xc. */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)D, (int)rows, 1.0, xc, (int)D,
                    1.0, cov, (int)D);
    }
    free(x);
    free(xc);
    double inv = 1.0 / (double)(n - 1);
    for (size_t i = 0; i < D * D; i++)
        cov[i] *= inv;
    /* The row-major upper triangle is the column-major lower one. */
    int nn = (int)D, lwork = -1, liwork = -1, info = 0, iwq = 0;
    double wq = 0;
    double *w = xmalloc(D * sizeof *w);
    dsyevd_("V", "L", &nn, cov, &nn, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info != 0) {
        free(w);
        free(cov);
        free(mean);
        if (err)
            *err = xasprintf("extractor 'pca': LAPACK dsyevd workspace query failed (info %d)",
                             info);
        return -1;
    }
    lwork = (int)wq;
    liwork = iwq;
    double *work = xmalloc((size_t)(lwork > 1 ? lwork : 1) * sizeof *work);
    int *iwork = xmalloc((size_t)(liwork > 1 ? liwork : 1) * sizeof *iwork);
    dsyevd_("V", "L", &nn, cov, &nn, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info != 0) {
        free(w);
        free(cov);
        free(mean);
        if (err)
            *err = xasprintf("extractor 'pca': the eigendecomposition failed (LAPACK dsyevd info "
                             "%d)", info);
        return -1;
    }
    /* Eigenvalues ascend; eigenvector j is column j (contiguous, column-major). */
    free(e->mat);
    free(e->vec);
    free(e->scale);
    e->mat = xmalloc(k * D * sizeof *e->mat);
    e->vec = xmalloc(k * sizeof *e->vec);
    e->scale = e->spec.whiten ? xmalloc(k * sizeof *e->scale) : NULL;
    for (size_t c = 0; c < k; c++) {
        size_t j = D - 1 - c;
        const double *v = cov + j * D;
        size_t arg = 0;
        for (size_t i = 1; i < D; i++)
            if (fabs(v[i]) > fabs(v[arg]))
                arg = i;
        double sign = v[arg] < 0 ? -1.0 : 1.0;
        double off = 0;
        for (size_t i = 0; i < D; i++) {
            e->mat[c * D + i] = (float)(sign * v[i]);
            off += mean[i] * sign * v[i];
        }
        e->vec[c] = (float)off;
        if (e->scale)
            e->scale[c] = (float)(1.0 / sqrt(w[j] > 1e-12 ? w[j] : 1e-12));
    }
    free(w);
    free(cov);
    free(mean);
    return 0;
}

void emb_linear_apply(const embedder *e, const float *x, size_t rows, float *out)
{
    int D = (int)e->in_size, k = e->spec.k, m = (int)rows;
    if (e->spec.kind == EMBED_PCA) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, D, 1.0f, x, D, e->mat, D,
                    0.0f, out, k);
        for (size_t r = 0; r < rows; r++)
            for (int c = 0; c < k; c++) {
                float v = out[r * (size_t)k + (size_t)c] - e->vec[c];
                out[r * (size_t)k + (size_t)c] = e->scale ? v * e->scale[c] : v;
            }
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, D, 1.0f, x, D, e->mat, k, 0.0f,
                out, k);
    if (e->spec.kind == EMBED_RANDOM_FOURIER) {
        double s = sqrt(2.0 / (double)k);
        for (size_t r = 0; r < rows; r++)
            for (int c = 0; c < k; c++) {
                float *o = &out[r * (size_t)k + (size_t)c];
                *o = (float)(s * cos((double)*o + (double)e->vec[c]));
            }
    }
}
