/* Per-row arithmetic of the head trainer (head.c), written so that a CUDA kernel can share
 * it: `static inline` C11 here, `__host__ __device__` under nvcc (like
 * proxies/proxy_math.h). Parameters live in one flat array:
 *   linear: W[c][d], b[c]
 *   mlp:    W1[h][d], b1[h], W2[c][h], b2[c]
 * No libc beyond <math.h>/<stddef.h>/<stdint.h>, no allocation, no globals. */
#ifndef RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_MATH_H
#define RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define HEAD_HD static inline __host__ __device__
#else
#define HEAD_HD static inline
#endif

/* splitmix64: the trainer's only source of randomness (initial weights, minibatch order),
 * one 64-bit state that a checkpoint saves. */
HEAD_HD uint64_t head_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 24 bits (exact in float). */
HEAD_HD float head_rng_uniform(uint64_t *s)
{
    return (float)(head_rng_next(s) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n) (n ≥ 1), by rejection so every value is equally likely. */
HEAD_HD uint64_t head_rng_below(uint64_t *s, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do
        r = head_rng_next(s);
    while (r >= lim);
    return r % n;
}

/* An epoch's minibatch order: the identity, then Fisher–Yates drawn from *s. The CPU trainer
 * and the GPU one (head_cuda.h) both take their order from here, so it is the same. */
HEAD_HD void head_shuffle(size_t *perm, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n - 1; i > 0 && n > 0; i--) {
        size_t j = (size_t)head_rng_below(s, (uint64_t)i + 1);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* out[o] = b[o] + Σ_i W[o][i] x[i], for o < nout; relu applies max(0, ·). */
HEAD_HD void head_affine(const float *W, const float *b, const float *x, int nin, int nout,
                         int relu, float *out)
{
    for (int o = 0; o < nout; o++) {
        const float *w = W + (int64_t)o * nin;
        float s = 0.0f;
        for (int i = 0; i < nin; i++)
            s += w[i] * x[i];
        s += b[o];
        out[o] = relu && s < 0.0f ? 0.0f : s;
    }
}

/* Turns logits z[c] into softmax − onehot(y) in place (the gradient of the cross-entropy
 * with respect to the logits); returns the loss −log p_y. */
HEAD_HD float head_softmax_grad(float *z, int c, int y)
{
    float m = z[0];
    for (int k = 1; k < c; k++)
        m = z[k] > m ? z[k] : m;
    float sum = 0.0f;
    for (int k = 0; k < c; k++) {
        z[k] = expf(z[k] - m);
        sum += z[k];
    }
    float loss = 0.0f;
    for (int k = 0; k < c; k++) {
        z[k] /= sum;
        if (k == y)
            loss = -logf(z[k] > 1e-30f ? z[k] : 1e-30f);
    }
    z[y] -= 1.0f;
    return loss;
}

/* The predicted class: the largest logit, ties to the lowest index. */
HEAD_HD int head_argmax(const float *z, int c)
{
    int best = 0;
    for (int k = 1; k < c; k++)
        if (z[k] > z[best])
            best = k;
    return best;
}

/* g[o][i] += dz[o] x[i], gb[o] += dz[o]: one row's contribution to an affine layer's
 * gradient. */
HEAD_HD void head_outer_acc(float *gW, float *gb, const float *dz, const float *x, int nin,
                            int nout)
{
    for (int o = 0; o < nout; o++) {
        float *g = gW + (int64_t)o * nin;
        float d = dz[o];
        if (d == 0.0f)
            continue;
        for (int i = 0; i < nin; i++)
            g[i] += d * x[i];
        gb[o] += d;
    }
}

/* dh[j] = (h[j] > 0) Σ_o W2[o][j] dz[o]: back through the ReLU hidden layer. */
HEAD_HD void head_back_hidden(const float *W2, const float *dz, const float *h, int nh, int c,
                              float *dh)
{
    for (int j = 0; j < nh; j++) {
        float s = 0.0f;
        if (h[j] > 0.0f)
            for (int o = 0; o < c; o++)
                s += W2[(int64_t)o * nh + j] * dz[o];
        dh[j] = s;
    }
}

/* SGD with momentum and weight decay, one parameter:
 *   v ← μ v + (g + λ θ)   (λ only on weights, not biases: decay = 0 for them)
 *   θ ← θ − lr v */
HEAD_HD void head_sgd_step(float *theta, float *v, float g, float lr, float mu, float decay)
{
    float gg = g + decay * *theta;
    *v = mu * *v + gg;
    *theta -= lr * *v;
}

#endif
