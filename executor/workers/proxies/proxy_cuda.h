/* CUDA twins of the proxies in proxy.h (cuBLAS SGEMM for the dot products, own kernels for
 * norms, the distance + top-k reduction, softmax/gradient), with the same signatures and
 * results. The API always exists: in a build without CUDA (make without CUDA=1) or on a
 * machine without a usable GPU (no driver, no device, a stub libcuda) every call returns
 * PROXY_ENOGPU with "no GPU: …" in err, and proxy_cuda_available() returns 0, so callers
 * need no #ifdef: try the GPU, fall back to the CPU function.
 *
 * Agreement with the CPU path: the per-element decisions are the same functions
 * (proxy_math.h), so results differ only where the dot products round differently
 * (cuBLAS sums in another order; TF32 is not used). Neighbours agree except between
 * candidates whose distances differ by a few float ulps of the norms; linear-probe losses
 * agree to about 1e-5 relative per epoch (expf and summation order differ).
 *
 * Memory: tiles are sized from cudaMemGetInfo (at most ~70% of the free memory), so data
 * larger than the GPU is streamed in tiles; opts' tile sizes are upper bounds. */
#ifndef RANKQL_PROXY_CUDA_H
#define RANKQL_PROXY_CUDA_H

#include "executor/workers/proxies/proxy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest k the GPU path takes (per-thread k-lists); larger k → PROXY_EINVAL. */
#define PROXY_CUDA_MAX_K 32

/* 1 when built with CUDA and a GPU answers (cudaGetDeviceCount succeeds with ≥ 1 device),
 * else 0. Checked once (thread-safe) and cached. proxy_cuda_describe() gives one line: the
 * device's name and memory, or why there is none ("no GPU: …"). */
int proxy_cuda_available(void);
const char *proxy_cuda_describe(void);

int proxy_nn_cuda(const proxy_data *train, const proxy_data *test, const proxy_nn_opts *opts,
                  proxy_nn_result *out, char *err, size_t errsize);

int proxy_linear_cuda(const proxy_data *train, const proxy_data *test,
                      const proxy_linear_opts *opts, proxy_linear_result *out, char *err,
                      size_t errsize);

#ifdef __cplusplus
}
#endif

#endif
