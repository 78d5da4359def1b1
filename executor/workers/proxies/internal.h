/* Helpers shared by the proxies' C files and the CUDA twins (the kernels/ .cu files, compiled as
 * C++): argument checks, result allocation and finishing, column statistics, LAPACK
 * prototypes. Not part of the public API. */
#ifndef RANKQL_PROXY_INTERNAL_H
#define RANKQL_PROXY_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "executor/workers/proxies/proxy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes "fmt…" to err (when err and errsize) and returns code. */
int proxy_fail(char *err, size_t errsize, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks one dataset: non-NULL, n ≥ 1, d ≥ 1, d ≤ INT_MAX, n·d without overflow, every
 * feature finite, labels (required when need_labels, checked whenever present) in
 * 0..PROXY_MAX_CLASSES-1. what names it in messages ("train", "test", "theta"). */
int proxy_check_data(const proxy_data *data, const char *what, int need_labels, char *err,
                     size_t errsize);

/* max label + 1 over y[0..n) (0 when y is NULL or n is 0). Labels already checked. */
int proxy_label_count(const int32_t *y, size_t n);

/* The checks and defaults of proxy_nn/proxy_nn_cuda: both datasets, matching d, k, tiles.
 * Fills *o with the resolved options. */
int proxy_nn_setup(const proxy_data *train, const proxy_data *test, const proxy_nn_opts *opts,
                   proxy_nn_opts *o, char *err, size_t errsize);

/* Allocates r's arrays for n test rows and k neighbours (zeroed result on failure). */
int proxy_nn_result_alloc(proxy_nn_result *r, size_t n, int k, char *err, size_t errsize);

/* From the raw k-lists (bd: raw distances, bi: indices, n × k, in r->nbr/r->dist already or
 * given here) fills pred (vote of train_y), clamps dist, counts wrong and err. */
void proxy_nn_finish(proxy_nn_result *r, const int32_t *train_y, const int32_t *test_y);

/* Squared L2 norm of a float row, accumulated in double. */
double proxy_row_sumsq(const float *x, size_t d);

/* The checks and defaults of proxy_linear/proxy_linear_cuda; fills *o (num_classes too). */
int proxy_linear_setup(const proxy_data *train, const proxy_data *test,
                       const proxy_linear_opts *opts, proxy_linear_opts *o, char *err,
                       size_t errsize);

int proxy_linear_result_alloc(proxy_linear_result *r, size_t n_test, int num_classes,
                              int num_epochs, char *err, size_t errsize);

/* Column mean and 1/std (population, double accumulation, proxy_inv_std) of x (n × d). */
void proxy_column_stats(const float *x, size_t n, size_t d, float *mean, float *inv_std);

/* LAPACK (exported by OpenBLAS; Fortran ABI with hidden string lengths). */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
             double *w, double *work, const int *lwork, int *iwork, const int *liwork,
             int *info, size_t jobz_len, size_t uplo_len);

/* Eigendecomposition of the symmetric d × d matrix a (both triangles or the upper one,
 * row-major = column-major for a symmetric matrix): eigenvalues ascending into w,
 * eigenvectors overwrite a (eigenvector i is row i of a in row-major). */
int proxy_symeig(double *a, int d, double *w, char *err, size_t errsize);

/* Gram matrix Σ (x − mu)(x − mu)ᵀ of the rows of x (n × d), accumulated in double by row
 * chunks into g (d × d, full), mu may be NULL (no centring). */
int proxy_gram(const float *x, size_t n, size_t d, const double *mu, double *g, char *err,
               size_t errsize);

#ifdef __cplusplus
}
#endif

#endif
