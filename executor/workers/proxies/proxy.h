/* Proxy classifiers and transferability scores: the numerical core of task-aware ranking.
 *
 * Everything takes float32 features, row-major (n rows × d columns), and int32 labels in
 * 0..C-1. The work is done with OpenBLAS (SGEMM for the n×m dot products, LAPACK dsyevd for
 * LogME/H-score) plus loops whose per-element arithmetic lives in proxy_math.h, shared with
 * the CUDA twins declared in proxy_cuda.h.
 *
 * What each one returns and how it maps to rankql's "lower is better" err:
 *
 *   proxy_nn       k-NN (k = 1: exact 1-NN), Euclidean or cosine   err = misclassified / n_test
 *   proxy_linear   linear probe (softmax regression, full-batch GD) err = misclassified / n_test
 *   proxy_logme    LogME (You et al. 2021), nats per sample        err = −LogME
 *   proxy_hscore   H-score (Bao et al. 2019), dimensionless        err = −H-score
 *   proxy_leep     LEEP (Nguyen et al. 2020), nats per sample      err = −LEEP
 *
 * The first two are error rates in [0, 1]. LogME is an average log-evidence per sample
 * (any real number; larger = the features explain the labels better), H-score lies in
 * [0, min(C − 1, rank)] for C classes, LEEP is an average log-likelihood (≤ 0). Negating
 * them keeps the order and the units; errs of different proxies are not comparable with
 * each other, only across models for one proxy and one dataset.
 *
 * Conventions: functions return PROXY_OK (0) or a negative PROXY_E* code with a one-line
 * reason in err (errsize bytes; err may be NULL). Outputs are written only on success.
 * Inputs are checked first: d and n ≥ 1, matching d between train and test, labels in
 * range, every feature finite. Results own their arrays: free them with the *_free
 * function (safe on a zeroed or already freed result). Results are deterministic for a
 * given OpenBLAS thread count (set OPENBLAS_NUM_THREADS for bit-identical runs across
 * machines with different core counts). Thread-safe: no global state.
 */
#ifndef RANKQL_PROXY_H
#define RANKQL_PROXY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    PROXY_OK = 0,
    PROXY_EINVAL = -1,  /* bad argument: dimensions, labels, options, non-finite features */
    PROXY_ENOMEM = -2,  /* an allocation (host or GPU) failed */
    PROXY_ENOGPU = -3,  /* CUDA path: built without CUDA, or no usable GPU at run time */
    PROXY_EGPU = -4,    /* CUDA path: a CUDA or cuBLAS call failed */
    PROXY_ENUMERIC = -5 /* LAPACK did not converge, or a value overflowed float */
};

/* Labels must be in 0..PROXY_MAX_CLASSES-1. */
#define PROXY_MAX_CLASSES (1 << 20)
/* Largest k for proxy_nn (the CUDA path keeps the k-list per thread: PROXY_CUDA_MAX_K). */
#define PROXY_MAX_K 4096

/* A dataset: n rows of d float features, row-major, and n labels (NULL where a function
 * says labels are optional). Not owned. */
typedef struct proxy_data {
    const float *x;
    const int32_t *y;
    size_t n;
    size_t d;
} proxy_data;

/* Short name of a PROXY_E* code ("invalid argument", …). */
const char *proxy_strerror(int code);

/* ---- nearest neighbours ------------------------------------------------------------- */

typedef enum proxy_metric {
    PROXY_EUCLIDEAN = 0,
    PROXY_COSINE = 1
} proxy_metric;

/* Default tiles (rows of test × rows of train per SGEMM call). The dot-product tile
 * (test_tile × train_tile floats, 16 MiB by default) is consumed by the argmin pass while
 * it is still in the last-level cache, and the SGEMM calls are big enough to run at the
 * machine's SGEMM rate (each train tile is packed once per test tile: 1024 rows keep that
 * under ~3%). Memory besides the result: that tile, norms, and for cosine a normalised copy
 * of train and of one test tile. */
#define PROXY_NN_TEST_TILE 1024
#define PROXY_NN_TRAIN_TILE 4096

typedef struct proxy_nn_opts {
    proxy_metric metric; /* PROXY_EUCLIDEAN (default) or PROXY_COSINE */
    int k;               /* neighbours voting, 1..PROXY_MAX_K and ≤ train rows; 0 → 1 */
    size_t test_tile;    /* 0 → PROXY_NN_TEST_TILE */
    size_t train_tile;   /* 0 → PROXY_NN_TRAIN_TILE */
} proxy_nn_opts;

typedef struct proxy_nn_result {
    size_t n;       /* test rows */
    int k;
    int32_t *pred;  /* [n] predicted labels: majority vote of the k neighbours' labels, a tie
                       going to the label whose nearest member is nearest (k = 1: the
                       neighbour's label) */
    int64_t *nbr;   /* [n × k] train row indices, nearest first; equal distances → lower
                       index first. Enough to re-score label changes (proxy_nn_rescore). */
    float *dist;    /* [n × k] squared Euclidean distances, or for cosine 2 − 2·cos(x, y)
                       (the squared distance of the L2-normalised rows), clamped at ≥ 0 */
    size_t wrong;   /* test rows whose pred ≠ label */
    double err;     /* wrong / n; NAN when the test labels were NULL */
} proxy_nn_result;

/* Exact k-NN of every test row among the train rows: distances ‖x‖² − 2x·y + ‖y‖² from
 * tiled SGEMM dot products, the k best per test row kept in the total order of
 * proxy_nbr_better (distance, then train index). Cosine: the same on L2-normalised rows; a
 * zero row is kept as zero and so has cosine 0 to every row (distance 2), where SHiFT's
 * faiss path gave it distance 1. train->y is required, test->y optional (no err then).
 * opts may be NULL (1-NN, Euclidean, default tiles). */
int proxy_nn(const proxy_data *train, const proxy_data *test, const proxy_nn_opts *opts,
             proxy_nn_result *out, char *err, size_t errsize);

/* Re-scores a neighbour result under new labels without recomputing distances: pred
 * (may be NULL, else [r->n]) gets the vote of train_y over r->nbr, *err_rate the fraction
 * that differs from test_y. n_train bounds the neighbour indices. */
int proxy_nn_rescore(const proxy_nn_result *r, const int32_t *train_y, size_t n_train,
                     const int32_t *test_y, int32_t *pred, double *err_rate, char *err,
                     size_t errsize);

void proxy_nn_result_free(proxy_nn_result *r);

/* ---- linear probe ------------------------------------------------------------------- */

typedef struct proxy_linear_opts {
    double learning_rate; /* > 0; 0 → 0.1 (SHiFT's default) */
    int num_epochs;       /* full-batch gradient steps, ≥ 1; 0 → 100 (SHiFT's default) */
    int num_classes;      /* 0 → max label + 1 over train ∪ test; else must exceed both */
    int no_standardize;   /* 1: skip standardisation (SHiFT's behaviour) */
} proxy_linear_opts;

typedef struct proxy_linear_result {
    int num_classes;
    int num_epochs;
    double *loss;       /* [num_epochs] mean train cross-entropy (nats) before each step;
                           loss[0] = log C (zero initialisation) */
    double final_loss;  /* after the last step */
    double train_err;   /* misclassified train rows / n_train after the last step */
    size_t n;           /* test rows */
    int32_t *pred;      /* [n] argmax class (ties → lowest class) */
    size_t wrong;
    double err;         /* wrong / n_test */
} proxy_linear_result;

/* Softmax regression D → C (weights and bias, zero-initialised), trained by full-batch
 * gradient descent on the mean cross-entropy over train for num_epochs steps of
 * learning_rate (no momentum, no weight decay), on features standardised with the train
 * mean and standard deviation (population; a constant column is only centred), which are
 * applied to test as well. Logits and gradients are SGEMMs. Both labels are required.
 * opts may be NULL. Memory: one standardised copy (the larger of train and test). */
int proxy_linear(const proxy_data *train, const proxy_data *test,
                 const proxy_linear_opts *opts, proxy_linear_result *out, char *err,
                 size_t errsize);

void proxy_linear_result_free(proxy_linear_result *r);

/* ---- transferability scores --------------------------------------------------------- */

typedef struct proxy_logme_opts {
    int max_iter; /* fixed-point iterations per class; 0 → 100 */
    double tol;   /* stop when |Δ(α/β)| / (α/β) ≤ tol; 0 → 1e-3 (the reference code's) */
} proxy_logme_opts;

/* LogME: for each class c present in the labels, the maximised log-evidence per sample of
 * a Bayesian linear regression from the features to the indicator [y = c], with prior
 * weight precision α and noise precision β found by the fixed-point iteration of You et al.
 * (α = γ/(mᵀm + ε), β = (n − γ)/(‖Fm − y‖² + ε), γ = Σ βσᵢ/(α + βσᵢ), ε = 1e-5, as in the
 * reference code), via the eigendecomposition (dsyevd, double) of FᵀF. The score is the mean
 * over the classes that occur. Unlike the reference code, all d eigenvalues enter log|A|
 * (its truncated SVD drops the zero ones when n < d), and absent classes are skipped.
 * Cost O(n d² + d³), memory O(d²). opts may be NULL. Higher is better: err = −LogME. */
int proxy_logme(const proxy_data *data, const proxy_logme_opts *opts, double *score, char *err,
                size_t errsize);

typedef struct proxy_hscore_opts {
    double shrinkage; /* λ in [0, 1]: cov(f) → (1 − λ)·cov(f) + λ·(tr cov(f) / d)·I; 0 (default)
                         keeps cov(f) and uses its pseudo-inverse */
    double rcond;     /* eigenvalues ≤ rcond · the largest are dropped from the pseudo-inverse;
                         0 → max(n, d) · DBL_EPSILON (numpy's matrix_rank cut-off) */
} proxy_hscore_opts;

/* H-score: tr(cov(f)⁺ · cov(E[f | y])), both covariances over the n rows (the 1/n or
 * 1/(n−1) factor cancels), the inverse taken as a pseudo-inverse through dsyevd. At least 2
 * rows. opts may be NULL. Higher is better: err = −H-score. */
int proxy_hscore(const proxy_data *data, const proxy_hscore_opts *opts, double *score,
                 char *err, size_t errsize);

/* LEEP: theta->x holds, per target row, the source classifier's probabilities over its Z
 * source classes (theta->d = Z; entries ≥ 0, each row summing to 1 within 1e-3), theta->y
 * the target labels. With the empirical joint P(y, z) = (1/n) Σ_{i: yᵢ = y} θᵢ(z) — every
 * row accumulated, repeated labels included (SHiFT's numpy code dropped them) — and
 * P(y | z) = P(y, z) / P(z): LEEP = (1/n) Σᵢ log Σ_z P(yᵢ | z) θᵢ(z), in nats (≤ 0; source
 * classes with P(z) = 0 contribute nothing). Higher is better: err = −LEEP. */
int proxy_leep(const proxy_data *theta, double *score, char *err, size_t errsize);

#ifdef __cplusplus
}
#endif

#endif
