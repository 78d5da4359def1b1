// The GPU twin of the head trainer (finetune/head_cuda.h).
//
// The standardised training rows, labels, weights and momentum stay on the GPU for the
// whole call. Per epoch the host draws the order with head_shuffle (the RNG state of
// head.c), uploads it, and runs every minibatch as four kernels, one thread per index of
// head_batch.h's pieces (forward1, forward2 for an mlp, softmax + back through the ReLU,
// update), all on one stream so each starts after the previous finished. At the end of
// the epoch the weights, momentum and per-row losses come back to the host: the loss is
// summed there in the epoch's row order as head.c does, and on_epoch sees current weights
// (head_job.c checkpoints them). No atomics and fixed summation orders: a run is
// deterministic.
//
// A simple design rather than a fast one: one thread per output or parameter with a
// sequential loop over the inputs or batch rows (the CPU's order). It is launch-bound for
// small heads and leaves GEMM speed on the table for wide ones, but it is the CPU's
// arithmetic, piece by piece.

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "common/util.h"
#include "executor/workers/finetune/head.h"
}
#include "executor/workers/finetune/head_batch.h"
#include "executor/workers/finetune/head_cuda.h"
#include "executor/workers/proxies/proxy_cuda.h"

extern "C" int head_cuda_available(void)
{
    return proxy_cuda_available();
}

extern "C" const char *head_cuda_describe(void)
{
    return proxy_cuda_describe();
}

// ---- kernels: one thread per index of a head_batch.h piece ------------------------------

__global__ void k_forward1(head_batch b, size_t total)
{
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < total)
        head_batch_forward1(&b, t);
}

__global__ void k_forward2(head_batch b, size_t total)
{
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < total)
        head_batch_forward2(&b, t);
}

__global__ void k_softmax(head_batch b, size_t total)
{
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < total)
        head_batch_softmax(&b, t);
}

__global__ void k_update(head_batch b, size_t total)
{
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < total)
        head_batch_update(&b, t);
}

// ---- host ------------------------------------------------------------------------------

#define THREADS 256

static unsigned blocks_for(size_t n)
{
    return (unsigned)((n + THREADS - 1) / THREADS);
}

// A CUDA failure: *err, rc = HEAD_CUDA_ENOGPU, leave (net/st are at an epoch boundary).
#define CUDA_CK(call)                                                                        \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) {                                                             \
            *err = xasprintf("CUDA: %s: %s", #call, cudaGetErrorString(e_));                 \
            cudaGetLastError();                                                              \
            rc = HEAD_CUDA_ENOGPU;                                                           \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

template <typename T> static cudaError_t dev_alloc(T **p, size_t count)
{
    return cudaMalloc((void **)p, (count + 1) * sizeof(T));
}

extern "C" int head_train_cuda(head_net *net, head_state *st, const head_knobs *k,
                               const float *x, const int32_t *y, size_t n,
                               head_epoch_fn on_epoch, void *arg, char **err)
{
    if (!head_cuda_available()) {
        *err = xstrdup(head_cuda_describe());
        return HEAD_CUDA_ENOGPU;
    }
    if (n == 0) {
        *err = xstrdup("no training rows");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (uint32_t)y[i] >= net->classes) {
            *err = xasprintf("training row %zu has label %d, outside [0, %u)", i, y[i],
                             net->classes);
            return -1;
        }
    const size_t d = net->dim, np = net->nparams;
    const int mlp = net->kind == HEAD_MLP;
    const size_t bs = (size_t)k->batch_size < n ? (size_t)k->batch_size : n;
    const size_t out1 = mlp ? net->hidden : net->classes;
    int rc = 0;
    float *h_xs = NULL, *h_theta = NULL, *h_vel = NULL, *h_loss = NULL;
    size_t *h_perm = NULL;
    float *d_xs = NULL, *d_theta = NULL, *d_vel = NULL, *d_act1 = NULL, *d_z = NULL,
          *d_dh = NULL, *d_loss = NULL;
    int32_t *d_y = NULL;
    size_t *d_perm = NULL;
    head_batch hb;
    memset(&hb, 0, sizeof hb);

    // Standardised on the host with head.c's expression, so the GPU sees the same inputs.
    h_xs = (float *)xmalloc(n * d * sizeof(float) + sizeof(float));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            h_xs[i * d + j] = (x[i * d + j] - net->mean[j]) * net->scale[j];
    h_perm = (size_t *)xmalloc((n + 1) * sizeof(size_t));
    h_theta = (float *)xmalloc((np + 1) * sizeof(float));
    h_vel = (float *)xmalloc((np + 1) * sizeof(float));
    h_loss = (float *)xmalloc((n + 1) * sizeof(float));

    CUDA_CK(dev_alloc(&d_xs, n * d));
    CUDA_CK(dev_alloc(&d_y, n));
    CUDA_CK(dev_alloc(&d_perm, n));
    CUDA_CK(dev_alloc(&d_theta, np));
    CUDA_CK(dev_alloc(&d_vel, np));
    CUDA_CK(dev_alloc(&d_act1, bs * out1));
    CUDA_CK(dev_alloc(&d_z, bs * net->classes));
    CUDA_CK(dev_alloc(&d_dh, bs * (mlp ? net->hidden : 0)));
    CUDA_CK(dev_alloc(&d_loss, n));
    CUDA_CK(cudaMemcpy(d_xs, h_xs, n * d * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CK(cudaMemcpy(d_y, y, n * sizeof(int32_t), cudaMemcpyHostToDevice));
    CUDA_CK(cudaMemcpy(d_theta, net->theta, np * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CK(cudaMemcpy(d_vel, st->velocity, np * sizeof(float), cudaMemcpyHostToDevice));

    hb.mlp = mlp;
    hb.dim = (int)net->dim;
    hb.hidden = (int)net->hidden;
    hb.classes = (int)net->classes;
    hb.xs = d_xs;
    hb.y = d_y;
    hb.perm = d_perm;
    hb.theta = d_theta;
    hb.velocity = d_vel;
    hb.act1 = d_act1;
    hb.z = mlp ? d_z : d_act1;
    hb.dh = d_dh;
    hb.loss = d_loss;
    hb.lr = (float)k->lr;
    hb.mu = (float)k->momentum;
    hb.wd = (float)k->weight_decay;

    while (st->epoch < (uint32_t)k->epochs) {
        // The RNG state moves on only when the epoch is complete (net/st stay consistent).
        uint64_t rng = st->rng;
        head_shuffle(h_perm, n, &rng);
        CUDA_CK(cudaMemcpy(d_perm, h_perm, n * sizeof(size_t), cudaMemcpyHostToDevice));
        for (size_t b0 = 0; b0 < n; b0 += (size_t)k->batch_size) {
            size_t rows = b0 + (size_t)k->batch_size < n ? (size_t)k->batch_size : n - b0;
            hb.b0 = b0;
            hb.rows = (int)rows;
            k_forward1<<<blocks_for(rows * out1), THREADS>>>(hb, rows * out1);
            if (mlp)
                k_forward2<<<blocks_for(rows * net->classes), THREADS>>>(hb, rows * net->classes);
            k_softmax<<<blocks_for(rows), THREADS>>>(hb, rows);
            k_update<<<blocks_for(np), THREADS>>>(hb, np);
        }
        CUDA_CK(cudaGetLastError());
        // cudaMemcpy waits for the epoch's kernels; a kernel fault shows here.
        CUDA_CK(cudaMemcpy(h_theta, d_theta, np * sizeof(float), cudaMemcpyDeviceToHost));
        CUDA_CK(cudaMemcpy(h_vel, d_vel, np * sizeof(float), cudaMemcpyDeviceToHost));
        CUDA_CK(cudaMemcpy(h_loss, d_loss, n * sizeof(float), cudaMemcpyDeviceToHost));
        memcpy(net->theta, h_theta, np * sizeof(float));
        memcpy(st->velocity, h_vel, np * sizeof(float));
        st->rng = rng;
        st->epoch++;
        double loss = 0;
        for (size_t r = 0; r < n; r++)
            loss += h_loss[r];
        for (size_t p = 0; p < np; p++)
            if (!std::isfinite(net->theta[p])) {
                *err = xasprintf("training diverged at epoch %u (a weight is not finite): "
                                 "lower lr",
                                 st->epoch);
                rc = -1;
                goto done;
            }
        if (on_epoch && on_epoch(arg, net, st, loss / (double)n)) {
            rc = 1;
            break;
        }
    }
done:
    cudaFree(d_xs);
    cudaFree(d_y);
    cudaFree(d_perm);
    cudaFree(d_theta);
    cudaFree(d_vel);
    cudaFree(d_act1);
    cudaFree(d_z);
    cudaFree(d_dh);
    cudaFree(d_loss);
    free(h_xs);
    free(h_perm);
    free(h_theta);
    free(h_vel);
    free(h_loss);
    return rc;
}
