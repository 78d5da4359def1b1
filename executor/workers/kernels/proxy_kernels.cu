// CUDA twins of the proxies (proxy_cuda.h): exact k-NN and the linear probe.
//
// k-NN: train and test are uploaded in chunks that fit the GPU (sized from cudaMemGetInfo),
// row norms come from a warp-per-row kernel (double accumulation; cosine also normalises the
// rows in place), cuBLAS SGEMM gives a dot-product tile, and one block per test row scans
// it with proxy_sqdist/proxy_topk_insert (proxy_math.h, the CPU path's functions), then
// merges the threads' lists with proxy_nbr_better into the row's running k-list. The lists
// of all test rows stay on the GPU; the vote and error are computed on the host by the same
// proxy_nn_finish as the CPU path.
//
// Linear probe: features standardised on the GPU with the host-computed train statistics
// (proxy_column_stats), logits and ∇W by cuBLAS SGEMM, one thread per row for softmax,
// cross-entropy and gradient (proxy_softmax_xent, proxy_xent_grad), ∇b by SGEMV with a
// vector of ones, the step by SAXPY. Loss and train error are reduced per block in a fixed
// order and summed on the host, so runs are deterministic.
//
// Nothing here runs on machines without a GPU: proxy_cuda_available() probes once and every
// entry point returns PROXY_ENOGPU when it failed.

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <pthread.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "executor/workers/proxies/internal.h"
#include "executor/workers/proxies/proxy_cuda.h"
#include "executor/workers/proxies/proxy_math.h"

// ---- availability ----------------------------------------------------------------------

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int gpu_ok;
static char gpu_desc[512];

static void probe(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        snprintf(gpu_desc, sizeof gpu_desc, "no GPU: %s",
                 e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device");
        cudaGetLastError(); // clear the sticky error state of the runtime
        return;
    }
    int dev = 0;
    cudaDeviceProp p;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
        snprintf(gpu_desc, sizeof gpu_desc, "no GPU: cannot query device properties");
        cudaGetLastError();
        return;
    }
    snprintf(gpu_desc, sizeof gpu_desc, "%.200s (%.1f GiB, compute %d.%d)", p.name,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), p.major, p.minor);
    gpu_ok = 1;
}

extern "C" int proxy_cuda_available(void)
{
    pthread_once(&probe_once, probe);
    return gpu_ok;
}

extern "C" const char *proxy_cuda_describe(void)
{
    pthread_once(&probe_once, probe);
    return gpu_desc;
}

// ---- helpers ---------------------------------------------------------------------------

#define CUDA_CK(call)                                                                        \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) {                                                             \
            rc = proxy_fail(err, errsize,                                                    \
                            e_ == cudaErrorMemoryAllocation ? PROXY_ENOMEM : PROXY_EGPU,     \
                            "CUDA: %s: %s", #call, cudaGetErrorString(e_));                  \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

#define BLAS_CK(call)                                                                        \
    do {                                                                                     \
        cublasStatus_t s_ = (call);                                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                   \
            rc = proxy_fail(err, errsize, PROXY_EGPU, "cuBLAS: %s: status %d", #call,        \
                            (int)s_);                                                        \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

#define LAUNCH_CK() CUDA_CK(cudaGetLastError())

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

static unsigned blocks_for(size_t n, unsigned per)
{
    return (unsigned)((n + per - 1) / per);
}

// Device memory the call may use: 70% of what is free now.
static int gpu_budget(size_t *budget, char *err, size_t errsize)
{
    size_t freeb = 0, total = 0;
    cudaError_t e = cudaMemGetInfo(&freeb, &total);
    if (e != cudaSuccess)
        return proxy_fail(err, errsize, PROXY_EGPU, "CUDA: cudaMemGetInfo: %s",
                          cudaGetErrorString(e));
    *budget = freeb / 10 * 7;
    return PROXY_OK;
}

// ---- kernels ---------------------------------------------------------------------------

#define NORM2_MAX_D (3.4028234663852886e38 / 4.0) // FLT_MAX / 4, as nn.c

// One warp per row: squared norm in double. Euclidean: norm2[row] = it (rows over
// NORM2_MAX_D raise *bad to row + 1, the lowest such row kept). Cosine: the row is scaled
// to unit length in place (a zero row stays zero) and norm2[row] = 1.
__global__ void k_row_norms(float *x, size_t rows, int d, int cosine, float *norm2,
                            unsigned long long *bad)
{
    size_t row = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows)
        return;
    float *r = x + row * (size_t)d;
    double s = 0.0;
    for (int j = lane; j < d; j += 32)
        s += (double)r[j] * r[j];
    for (int off = 16; off > 0; off /= 2)
        s += __shfl_down_sync(0xffffffffu, s, off);
    s = __shfl_sync(0xffffffffu, s, 0);
    if (cosine) {
        float inv = proxy_inv_norm(s);
        for (int j = lane; j < d; j += 32)
            r[j] *= inv;
        if (lane == 0)
            norm2[row] = 1.0f;
    } else if (lane == 0) {
        if (s > NORM2_MAX_D)
            atomicMin(bad, (unsigned long long)row + 1);
        norm2[row] = (float)s;
    }
}

__global__ void k_topk_init(float *bd, int64_t *bi, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        bd[i] = INFINITY;
        bi[i] = PROXY_NO_NEIGHBOUR;
    }
}

// One block per test row of the tile: the threads scan the row's n candidates (global train
// index jbase + j) into private k-lists, thread 0 also holding the row's running list, and
// k rounds of a block-wide minimum in proxy_nbr_better order merge them back.
template <int KMAX, int THREADS>
__global__ void k_topk_update(const float *dots, int n, const float *xn, const float *yn,
                              int64_t jbase, int k, float *bd, int64_t *bi)
{
    __shared__ float sd[THREADS];
    __shared__ int64_t si[THREADS];
    __shared__ int st[THREADS];
    const int row = blockIdx.x, t = threadIdx.x;
    float ld[KMAX];
    int64_t li[KMAX];
    float *gd = bd + (size_t)row * k;
    int64_t *gi = bi + (size_t)row * k;
    if (t == 0)
        for (int q = 0; q < k; q++)
            ld[q] = gd[q], li[q] = gi[q];
    else
        proxy_topk_init(ld, li, k);
    const float x2 = xn[row];
    const float *drow = dots + (size_t)row * n;
    for (int j = t; j < n; j += THREADS) {
        float v = proxy_sqdist(x2, yn[j], drow[j]);
        proxy_topk_insert(ld, li, k, v, jbase + j);
    }
    int head = 0;
    for (int q = 0; q < k; q++) {
        sd[t] = head < k ? ld[head] : INFINITY;
        si[t] = head < k ? li[head] : PROXY_NO_NEIGHBOUR;
        st[t] = t;
        __syncthreads();
        for (int w = THREADS / 2; w > 0; w /= 2) {
            if (t < w && proxy_nbr_better(sd[t + w], si[t + w], sd[t], si[t])) {
                sd[t] = sd[t + w];
                si[t] = si[t + w];
                st[t] = st[t + w];
            }
            __syncthreads();
        }
        if (t == 0) {
            gd[q] = sd[0];
            gi[q] = si[0];
        }
        if (t == st[0])
            head++;
        __syncthreads();
    }
}

__global__ void k_standardize(float *x, size_t rows, int d, const float *mean,
                              const float *inv_std)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows * (size_t)d) {
        int j = (int)(i % (size_t)d);
        x[i] = proxy_standardize(x[i], mean[j], inv_std[j]);
    }
}

// One thread per row: argmax against the label, softmax and cross-entropy in place, and when
// grad the gradient (p − onehot)/n. Per-block sums of loss and errors, reduced in a fixed
// order (deterministic), go to part_loss / part_wrong.
#define SOFTMAX_THREADS 256
__global__ void k_softmax_xent(float *Z, const float *b, size_t rows, int C, const int32_t *y,
                               float inv_n, int grad, double *part_loss,
                               unsigned *part_wrong)
{
    __shared__ double sl[SOFTMAX_THREADS];
    __shared__ unsigned sw[SOFTMAX_THREADS];
    size_t i = (size_t)blockIdx.x * SOFTMAX_THREADS + threadIdx.x;
    double loss = 0.0;
    unsigned wrong = 0;
    if (i < rows) {
        float *z = Z + i * (size_t)C;
        wrong = proxy_argmax(z, b, C) != y[i];
        loss = proxy_softmax_xent(z, b, C, y[i], z);
        if (grad)
            for (int c = 0; c < C; c++)
                z[c] = proxy_xent_grad(z[c], c == y[i], inv_n);
    }
    sl[threadIdx.x] = loss;
    sw[threadIdx.x] = wrong;
    __syncthreads();
    for (int w = SOFTMAX_THREADS / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) {
            sl[threadIdx.x] += sl[threadIdx.x + w];
            sw[threadIdx.x] += sw[threadIdx.x + w];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        part_loss[blockIdx.x] = sl[0];
        part_wrong[blockIdx.x] = sw[0];
    }
}

__global__ void k_argmax(const float *Z, const float *b, size_t rows, int C, int32_t *pred)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows)
        pred[i] = proxy_argmax(Z + i * (size_t)C, b, C);
}

__global__ void k_fill(float *x, size_t n, float v)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = v;
}

// ---- k-NN ------------------------------------------------------------------------------

#define GPU_TEST_TILE 4096
#define GPU_TRAIN_TILE 32768
#define GPU_DOTS_MAX ((size_t)512 << 20) // bytes of one dot-product tile

// Norms of `rows` uploaded rows (cosine: also normalises them); first bad row → error.
static int row_norms(float *x, size_t rows, int d, int cosine, float *norm2,
                     unsigned long long *bad_d, size_t base, const char *what, char *err,
                     size_t errsize)
{
    int rc = PROXY_OK;
    unsigned long long bad = 0;
    CUDA_CK(cudaMemset(bad_d, 0, sizeof bad));
    k_row_norms<<<blocks_for(rows * 32, 256), 256>>>(x, rows, d, cosine, norm2, bad_d);
    LAUNCH_CK();
    CUDA_CK(cudaMemcpy(&bad, bad_d, sizeof bad, cudaMemcpyDeviceToHost));
    if (bad)
        rc = proxy_fail(err, errsize, PROXY_ENUMERIC,
                        "%s row %zu: squared norm is too large for float", what,
                        base + (size_t)(bad - 1));
done:
    return rc;
}

extern "C" int proxy_nn_cuda(const proxy_data *train, const proxy_data *test,
                             const proxy_nn_opts *opts, proxy_nn_result *out, char *err,
                             size_t errsize)
{
    if (!proxy_cuda_available())
        return proxy_fail(err, errsize, PROXY_ENOGPU, "%s", gpu_desc);
    proxy_nn_opts o;
    int rc = proxy_nn_setup(train, test, opts, &o, err, errsize);
    if (rc != PROXY_OK)
        return rc;
    if (o.k > PROXY_CUDA_MAX_K)
        return proxy_fail(err, errsize, PROXY_EINVAL, "k = %d: the GPU path takes k ≤ %d", o.k,
                          PROXY_CUDA_MAX_K);
    proxy_nn_result r;
    if ((rc = proxy_nn_result_alloc(&r, test->n, o.k, err, errsize)) != PROXY_OK)
        return rc;

    const size_t d = train->d, ntr = train->n, nte = test->n, k = (size_t)o.k;
    const int cosine = o.metric == PROXY_COSINE;
    // User tiles are upper bounds; unset ones get the GPU's larger defaults.
    size_t mt = opts && opts->test_tile ? o.test_tile : min_sz(nte, GPU_TEST_TILE);
    size_t nt = opts && opts->train_tile ? o.train_tile : min_sz(ntr, GPU_TRAIN_TILE);
    size_t budget = 0, rows_y = 0, rows_x = 0, lists = nte * k * (sizeof(float) + sizeof(int64_t));
    float *Yd = NULL, *Xd = NULL, *yn = NULL, *xn = NULL, *dots = NULL, *bd = NULL;
    int64_t *bi = NULL;
    unsigned long long *bad = NULL;
    cublasHandle_t h = NULL;
    const float one = 1.0f, zero = 0.0f;

    if ((rc = gpu_budget(&budget, err, errsize)) != PROXY_OK)
        goto done;
    // The k-lists of every test row stay resident; then train and test chunks (most of the
    // rest, train first), then one dot-product tile.
    if (lists > budget / 4) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM, "GPU: %zu × %zu neighbour lists do not fit",
                        nte, k);
        goto done;
    }
    budget -= lists;
    while (mt * nt * sizeof(float) > min_sz(GPU_DOTS_MAX, budget / 4) && (mt > 1 || nt > 1)) {
        if (nt >= mt && nt > 1)
            nt = (nt + 1) / 2;
        else
            mt = (mt + 1) / 2;
    }
    budget -= min_sz(budget, mt * nt * sizeof(float));
    rows_y = min_sz(ntr, budget / 2 / ((d + 1) * sizeof(float)));
    rows_x = min_sz(nte, budget / 4 / ((d + 1) * sizeof(float)));
    if (rows_y < nt || rows_x < mt) {
        nt = min_sz(nt, rows_y);
        mt = min_sz(mt, rows_x);
    }
    if (nt == 0 || mt == 0) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM, "GPU: not enough free memory for one tile");
        goto done;
    }

    CUDA_CK(cudaMalloc(&bd, nte * k * sizeof *bd));
    CUDA_CK(cudaMalloc(&bi, nte * k * sizeof *bi));
    CUDA_CK(cudaMalloc(&dots, mt * nt * sizeof *dots));
    CUDA_CK(cudaMalloc(&Yd, rows_y * d * sizeof *Yd));
    CUDA_CK(cudaMalloc(&Xd, rows_x * d * sizeof *Xd));
    CUDA_CK(cudaMalloc(&yn, rows_y * sizeof *yn));
    CUDA_CK(cudaMalloc(&xn, rows_x * sizeof *xn));
    CUDA_CK(cudaMalloc(&bad, sizeof *bad));
    BLAS_CK(cublasCreate(&h));
    BLAS_CK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH)); // plain FP32: no TF32

    k_topk_init<<<blocks_for(nte * k, 256), 256>>>(bd, bi, nte * k);
    LAUNCH_CK();
    for (size_t y0 = 0; y0 < ntr; y0 += rows_y) {
        size_t ny = min_sz(rows_y, ntr - y0);
        CUDA_CK(cudaMemcpy(Yd, train->x + y0 * d, ny * d * sizeof(float),
                           cudaMemcpyHostToDevice));
        if ((rc = row_norms(Yd, ny, (int)d, cosine, yn, bad, y0, "train", err, errsize)) !=
            PROXY_OK)
            goto done;
        for (size_t x0 = 0; x0 < nte; x0 += rows_x) {
            size_t nx = min_sz(rows_x, nte - x0);
            // test is uploaded once when it fits whole, else once per train chunk
            if (y0 == 0 || rows_x < nte) {
                CUDA_CK(cudaMemcpy(Xd, test->x + x0 * d, nx * d * sizeof(float),
                                   cudaMemcpyHostToDevice));
                if ((rc = row_norms(Xd, nx, (int)d, cosine, xn, bad, x0, "test", err,
                                    errsize)) != PROXY_OK)
                    goto done;
            }
            for (size_t i0 = 0; i0 < nx; i0 += mt) {
                size_t m = min_sz(mt, nx - i0);
                for (size_t j0 = 0; j0 < ny; j0 += nt) {
                    size_t n = min_sz(nt, ny - j0);
                    BLAS_CK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)m, (int)d, &one,
                                        Yd + j0 * d, (int)d, Xd + i0 * d, (int)d, &zero, dots,
                                        (int)n));
                    float *rbd = bd + (x0 + i0) * k;
                    int64_t *rbi = bi + (x0 + i0) * k;
                    if (k == 1)
                        k_topk_update<1, 256><<<(unsigned)m, 256>>>(
                            dots, (int)n, xn + i0, yn + j0, (int64_t)(y0 + j0), 1, rbd, rbi);
                    else
                        k_topk_update<PROXY_CUDA_MAX_K, 64><<<(unsigned)m, 64>>>(
                            dots, (int)n, xn + i0, yn + j0, (int64_t)(y0 + j0), (int)k, rbd,
                            rbi);
                    LAUNCH_CK();
                }
            }
        }
    }
    CUDA_CK(cudaMemcpy(r.dist, bd, nte * k * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_CK(cudaMemcpy(r.nbr, bi, nte * k * sizeof(int64_t), cudaMemcpyDeviceToHost));
    proxy_nn_finish(&r, train->y, test->y);

done:
    if (h)
        cublasDestroy(h);
    cudaFree(Yd);
    cudaFree(Xd);
    cudaFree(yn);
    cudaFree(xn);
    cudaFree(dots);
    cudaFree(bd);
    cudaFree(bi);
    cudaFree(bad);
    if (rc != PROXY_OK)
        proxy_nn_result_free(&r);
    else
        *out = r;
    return rc;
}

// ---- linear probe ----------------------------------------------------------------------

// Uploads rows [r0, r0 + m) of x (and y) and standardises them on the GPU.
static int upload_std(const proxy_data *data, size_t r0, size_t m, float *Xd, int32_t *yd,
                      const float *mean_d, const float *istd_d, char *err, size_t errsize)
{
    int rc = PROXY_OK;
    const size_t d = data->d;
    CUDA_CK(cudaMemcpy(Xd, data->x + r0 * d, m * d * sizeof(float), cudaMemcpyHostToDevice));
    if (yd)
        CUDA_CK(cudaMemcpy(yd, data->y + r0, m * sizeof(int32_t), cudaMemcpyHostToDevice));
    if (mean_d) {
        k_standardize<<<blocks_for(m * d, 256), 256>>>(Xd, m, (int)d, mean_d, istd_d);
        LAUNCH_CK();
    }
done:
    return rc;
}

extern "C" int proxy_linear_cuda(const proxy_data *train, const proxy_data *test,
                                 const proxy_linear_opts *opts, proxy_linear_result *out,
                                 char *err, size_t errsize)
{
    if (!proxy_cuda_available())
        return proxy_fail(err, errsize, PROXY_ENOGPU, "%s", gpu_desc);
    proxy_linear_opts o;
    int rc = proxy_linear_setup(train, test, opts, &o, err, errsize);
    if (rc != PROXY_OK)
        return rc;
    proxy_linear_result r;
    rc = proxy_linear_result_alloc(&r, test->n, o.num_classes, o.num_epochs, err, errsize);
    if (rc != PROXY_OK)
        return rc;

    const size_t d = train->d, n = train->n, nt = test->n, C = (size_t)o.num_classes;
    const float neg_lr = (float)-o.learning_rate, one = 1.0f, zero = 0.0f;
    const float inv_n = (float)(1.0 / (double)n);
    size_t budget = 0, rows = 0, fixed = 0, nblk = 0;
    float *mean = NULL, *istd = NULL, *mean_d = NULL, *istd_d = NULL;
    float *Xd = NULL, *Zd = NULL, *Wd = NULL, *gWd = NULL, *bd_ = NULL, *gbd = NULL,
          *ones = NULL;
    int32_t *yd = NULL, *pred_d = NULL;
    double *part_loss_d = NULL, *part_loss = NULL;
    unsigned *part_wrong_d = NULL, *part_wrong = NULL;
    int resident = 0;
    cublasHandle_t h = NULL;

    if ((rc = gpu_budget(&budget, err, errsize)) != PROXY_OK)
        goto done;
    // Fixed: W, ∇W (d × C), b, ∇b, mean, 1/std. Per row of a chunk: features, logits, label,
    // prediction, a one; per block of 256 rows: partial sums.
    if (d * C > (size_t)INT_MAX) {
        rc = proxy_fail(err, errsize, PROXY_EINVAL, "GPU: %zu × %zu weights exceed cuBLAS's int",
                        d, C);
        goto done;
    }
    fixed = (2 * d * C + 2 * C + 2 * d) * sizeof(float);
    if (fixed >= budget) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM,
                        "GPU: the %zu × %zu weights do not fit in GPU memory", d, C);
        goto done;
    }
    rows = min_sz(n > nt ? n : nt, (budget - fixed) / ((d + C + 3) * sizeof(float) + 16));
    if (rows == 0) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM, "GPU: not enough free memory for one row");
        goto done;
    }
    resident = rows >= n;
    nblk = blocks_for(rows, SOFTMAX_THREADS);

    if (!o.no_standardize) {
        mean = (float *)malloc(d * sizeof *mean);
        istd = (float *)malloc(d * sizeof *istd);
        if (!mean || !istd) {
            rc = proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory");
            goto done;
        }
        proxy_column_stats(train->x, n, d, mean, istd);
        CUDA_CK(cudaMalloc(&mean_d, d * sizeof *mean_d));
        CUDA_CK(cudaMalloc(&istd_d, d * sizeof *istd_d));
        CUDA_CK(cudaMemcpy(mean_d, mean, d * sizeof *mean, cudaMemcpyHostToDevice));
        CUDA_CK(cudaMemcpy(istd_d, istd, d * sizeof *istd, cudaMemcpyHostToDevice));
    }
    part_loss = (double *)malloc(nblk * sizeof *part_loss);
    part_wrong = (unsigned *)malloc(nblk * sizeof *part_wrong);
    if (!part_loss || !part_wrong) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory");
        goto done;
    }
    CUDA_CK(cudaMalloc(&Xd, rows * d * sizeof *Xd));
    CUDA_CK(cudaMalloc(&Zd, rows * C * sizeof *Zd));
    CUDA_CK(cudaMalloc(&yd, rows * sizeof *yd));
    CUDA_CK(cudaMalloc(&pred_d, rows * sizeof *pred_d));
    CUDA_CK(cudaMalloc(&ones, rows * sizeof *ones));
    CUDA_CK(cudaMalloc(&Wd, d * C * sizeof *Wd));
    CUDA_CK(cudaMalloc(&gWd, d * C * sizeof *gWd));
    CUDA_CK(cudaMalloc(&bd_, C * sizeof *bd_));
    CUDA_CK(cudaMalloc(&gbd, C * sizeof *gbd));
    CUDA_CK(cudaMalloc(&part_loss_d, nblk * sizeof *part_loss_d));
    CUDA_CK(cudaMalloc(&part_wrong_d, nblk * sizeof *part_wrong_d));
    CUDA_CK(cudaMemset(Wd, 0, d * C * sizeof *Wd));
    CUDA_CK(cudaMemset(bd_, 0, C * sizeof *bd_));
    k_fill<<<blocks_for(rows, 256), 256>>>(ones, rows, 1.0f);
    LAUNCH_CK();
    BLAS_CK(cublasCreate(&h));
    BLAS_CK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));

    if (resident && (rc = upload_std(train, 0, n, Xd, yd, mean_d, istd_d, err, errsize)) != PROXY_OK)
        goto done;
    for (int e = 0; e <= o.num_epochs; e++) {
        const int last = e == o.num_epochs;
        double loss = 0.0;
        size_t wrong = 0;
        for (size_t r0 = 0; r0 < n; r0 += rows) {
            size_t m = min_sz(rows, n - r0);
            unsigned nb = blocks_for(m, SOFTMAX_THREADS);
            if (!resident &&
                (rc = upload_std(train, r0, m, Xd, yd, mean_d, istd_d, err, errsize)) != PROXY_OK)
                goto done;
            // Z (m × C, row-major) = Xs · W
            BLAS_CK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)C, (int)m, (int)d, &one, Wd,
                                (int)C, Xd, (int)d, &zero, Zd, (int)C));
            k_softmax_xent<<<nb, SOFTMAX_THREADS>>>(Zd, bd_, m, (int)C, yd, inv_n, !last,
                                                    part_loss_d, part_wrong_d);
            LAUNCH_CK();
            CUDA_CK(cudaMemcpy(part_loss, part_loss_d, nb * sizeof *part_loss,
                               cudaMemcpyDeviceToHost));
            CUDA_CK(cudaMemcpy(part_wrong, part_wrong_d, nb * sizeof *part_wrong,
                               cudaMemcpyDeviceToHost));
            for (unsigned q = 0; q < nb; q++)
                loss += part_loss[q], wrong += part_wrong[q];
            if (last)
                continue;
            // ∇W (d × C) += Xsᵀ G, ∇b += Gᵀ 1 (first chunk overwrites)
            const float beta = r0 == 0 ? 0.0f : 1.0f;
            BLAS_CK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)C, (int)d, (int)m, &one, Zd,
                                (int)C, Xd, (int)d, &beta, gWd, (int)C));
            BLAS_CK(cublasSgemv(h, CUBLAS_OP_N, (int)C, (int)m, &one, Zd, (int)C, ones, 1, &beta,
                                gbd, 1));
        }
        loss /= (double)n;
        if (last) {
            r.final_loss = loss;
            r.train_err = (double)wrong / (double)n;
            break;
        }
        r.loss[e] = loss;
        BLAS_CK(cublasSaxpy(h, (int)(d * C), &neg_lr, gWd, 1, Wd, 1));
        BLAS_CK(cublasSaxpy(h, (int)C, &neg_lr, gbd, 1, bd_, 1));
    }

    r.wrong = 0;
    for (size_t r0 = 0; r0 < nt; r0 += rows) {
        size_t m = min_sz(rows, nt - r0);
        if ((rc = upload_std(test, r0, m, Xd, NULL, mean_d, istd_d, err, errsize)) != PROXY_OK)
            goto done;
        BLAS_CK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)C, (int)m, (int)d, &one, Wd, (int)C,
                            Xd, (int)d, &zero, Zd, (int)C));
        k_argmax<<<blocks_for(m, 256), 256>>>(Zd, bd_, m, (int)C, pred_d);
        LAUNCH_CK();
        CUDA_CK(cudaMemcpy(r.pred + r0, pred_d, m * sizeof(int32_t), cudaMemcpyDeviceToHost));
    }
    for (size_t i = 0; i < nt; i++)
        r.wrong += r.pred[i] != test->y[i];
    r.err = (double)r.wrong / (double)nt;

done:
    if (h)
        cublasDestroy(h);
    free(mean);
    free(istd);
    free(part_loss);
    free(part_wrong);
    cudaFree(mean_d);
    cudaFree(istd_d);
    cudaFree(Xd);
    cudaFree(Zd);
    cudaFree(Wd);
    cudaFree(gWd);
    cudaFree(bd_);
    cudaFree(gbd);
    cudaFree(ones);
    cudaFree(yd);
    cudaFree(pred_d);
    cudaFree(part_loss_d);
    cudaFree(part_wrong_d);
    if (rc != PROXY_OK)
        proxy_linear_result_free(&r);
    else
        *out = r;
    return rc;
}
