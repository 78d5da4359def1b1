/* The GPU twin of head_train (head.h): the same training, run by
 * executor/workers/kernels/head_kernels.cu. The API always exists: in a build without CUDA
 * (no `make CUDA=1`) or on a machine where no GPU answers, head_cuda_available() is 0 and
 * head_train_cuda returns HEAD_CUDA_ENOGPU with "no GPU: …", so callers need no #ifdef:
 * try the GPU, fall back to head_train (head_job.c does, unless RANKQL_DEVICE=cpu).
 *
 * Same training: the minibatch order comes from head_shuffle on the host with the same RNG
 * state, and each step is head_batch.h's pieces (head_math.h's functions, the gradient
 * summed over the batch rows in head.c's order). What differs is float rounding: nvcc
 * contracts multiply-adds into FMAs and the device's expf/logf are not glibc's. So the
 * weights should agree with the CPU's to a few float ulps per step, drifting apart slowly
 * over epochs as SGD carries those differences on; accuracies agree except for rows at the
 * decision boundary (expected, not yet measured: no GPU has run this code so far; the
 * split into per-thread pieces is checked on the CPU, bit for bit). tests/unit/test_finetune_cuda.c checks
 * max |θ_gpu − θ_cpu| ≤ 1e-3 · (1 + max |θ_cpu|) after a few epochs and equal accuracy on
 * well-separated data. The GPU run is itself deterministic (no atomics: every sum has a
 * fixed order), so a checkpoint/resume on the GPU gives the same weights bit for bit.
 *
 * Checkpoints: the weights and momentum are copied back to net/st after every epoch,
 * before on_epoch, so head_job.c's checkpoints are as on the CPU. When a CUDA call fails
 * midway (out of memory: the standardised features live on the GPU), net/st hold the last
 * completed epoch and HEAD_CUDA_ENOGPU is returned, so the CPU can carry on from there. */
#ifndef RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_CUDA_H
#define RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_CUDA_H

#include "executor/workers/finetune/head.h"

#ifdef __cplusplus
extern "C" {
#endif

/* head_train_cuda: no usable GPU, or a CUDA error; *err says which. */
#define HEAD_CUDA_ENOGPU (-2)

/* 1 when built with CUDA and a GPU answers (the probe of proxy_cuda.h, done once). */
int head_cuda_available(void);
/* The device in one line, or why there is none ("no GPU: …"). */
const char *head_cuda_describe(void);

/* head_train on the GPU: 0 done, 1 stopped by on_epoch, -1 with *err (no rows, a bad label,
 * diverged: the same errors as head_train), HEAD_CUDA_ENOGPU with *err (no GPU or a CUDA
 * failure; net/st are at the last completed epoch). */
int head_train_cuda(head_net *net, head_state *st, const head_knobs *k, const float *x,
                    const int32_t *y, size_t n, head_epoch_fn on_epoch, void *arg, char **err);

#ifdef __cplusplus
}
#endif

#endif
