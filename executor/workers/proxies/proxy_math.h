/* Per-element arithmetic of the proxies, shared by the CPU path (the proxies/ .c files) and the
 * CUDA kernels (the kernels/ .cu files): compiled as `static inline` C11 here and as
 * `__host__ __device__` functions under nvcc, so the GPU makes the same decisions (distance
 * from dot products and norms, neighbour order and tie-breaking, vote, softmax, gradient,
 * standardisation) and the CPU tests exercise them.
 *
 * No libc beyond <math.h>/<stdint.h>, no allocation, no globals: keep it that way. */
#ifndef RANKQL_PROXY_MATH_H
#define RANKQL_PROXY_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define PROXY_HD static inline __host__ __device__
#else
#define PROXY_HD static inline
#endif

/* Index used in empty neighbour slots: never a real train row, and the "worst" index so a
 * real candidate at the same (+inf) distance wins. */
#define PROXY_NO_NEIGHBOUR INT64_MAX

/* Squared Euclidean distance from ‖x‖², ‖y‖² and x·y, in exactly this evaluation order
 * (float, no contraction: the factor 2 is exact, so an FMA gives the same value). It can
 * be slightly negative for near-duplicates through rounding; neighbours are ordered on this
 * raw value and only the reported distance is clamped (proxy_dist_report). */
PROXY_HD float proxy_sqdist(float xnorm2, float ynorm2, float dot)
{
    return (xnorm2 + ynorm2) - 2.0f * dot;
}

PROXY_HD float proxy_dist_report(float raw)
{
    return raw > 0.0f ? raw : 0.0f;
}

/* The total order on candidate neighbours: smaller distance first, then lower train index.
 * Every scan (CPU tiles, GPU threads, tile merges) uses it, so the result does not depend
 * on the order in which candidates are seen. */
PROXY_HD int proxy_nbr_better(float d1, int64_t i1, float d2, int64_t i2)
{
    return d1 < d2 || (d1 == d2 && i1 < i2);
}

/* Inserts (d, i) into the sorted k-list (bd, bi) when it beats the last entry. */
PROXY_HD void proxy_topk_insert(float *bd, int64_t *bi, int k, float d, int64_t i)
{
    if (!proxy_nbr_better(d, i, bd[k - 1], bi[k - 1]))
        return;
    int p = k - 1;
    while (p > 0 && proxy_nbr_better(d, i, bd[p - 1], bi[p - 1])) {
        bd[p] = bd[p - 1];
        bi[p] = bi[p - 1];
        p--;
    }
    bd[p] = d;
    bi[p] = i;
}

PROXY_HD void proxy_topk_init(float *bd, int64_t *bi, int k)
{
    for (int j = 0; j < k; j++) {
        bd[j] = INFINITY;
        bi[j] = PROXY_NO_NEIGHBOUR;
    }
}

/* Majority vote over the labels of the k nearest neighbours, given nearest first. A tie
 * between labels goes to the label whose nearest member is nearest (so k = 1, and any
 * all-distinct vote, is the nearest neighbour's label). O(k²) without scratch memory. */
PROXY_HD int32_t proxy_vote(const int32_t *labels, int k)
{
    int best = 0, best_count = 0;
    for (int i = 0; i < k; i++) {
        int first = 1, count = 0;
        for (int j = 0; j < k; j++) {
            if (labels[j] == labels[i]) {
                if (j < i) {
                    first = 0;
                    break;
                }
                count++;
            }
        }
        if (first && count > best_count) { /* strict: earlier (nearer) label keeps a tie */
            best = i;
            best_count = count;
        }
    }
    return labels[best];
}

/* 1/‖x‖ from the squared norm (accumulated in double) for cosine normalisation. A zero row
 * stays zero: its cosine similarity to every row is taken as 0 (see proxy.h). */
PROXY_HD float proxy_inv_norm(double sumsq)
{
    return sumsq > 0.0 ? (float)(1.0 / sqrt(sumsq)) : 0.0f;
}

/* Standardisation with train statistics: (x − mean) · inv_std. */
PROXY_HD float proxy_standardize(float x, float mean, float inv_std)
{
    return (x - mean) * inv_std;
}

/* inv_std for a column of standard deviation sd (population, from train): a constant
 * column (sd == 0) is only centred. */
PROXY_HD float proxy_inv_std(double sd)
{
    return sd > 0.0 ? (float)(1.0 / sd) : 1.0f;
}

/* Softmax of one row of logits z + b (C classes) into p (p may be z), returning the
 * cross-entropy −log p[y] in nats, computed stably as log Σ exp(z_c − max) − (z_y − max). */
PROXY_HD double proxy_softmax_xent(const float *z, const float *b, int C, int32_t y, float *p)
{
    const float zy = z[y] + b[y];
    float mx = z[0] + b[0];
    for (int c = 1; c < C; c++) {
        float v = z[c] + b[c];
        mx = v > mx ? v : mx;
    }
    double s = 0.0;
    for (int c = 0; c < C; c++) {
        float e = expf((z[c] + b[c]) - mx);
        p[c] = e;
        s += e;
    }
    float inv = (float)(1.0 / s);
    for (int c = 0; c < C; c++)
        p[c] *= inv;
    return log(s) - (double)(zy - mx);
}

/* d(mean cross-entropy)/d(logit c) for one row: (p_c − [c == y]) / n. */
PROXY_HD float proxy_xent_grad(float p, int is_label, float inv_n)
{
    return (p - (is_label ? 1.0f : 0.0f)) * inv_n;
}

/* Predicted class of one row of logits z + b; ties go to the lowest class. */
PROXY_HD int32_t proxy_argmax(const float *z, const float *b, int C)
{
    int32_t best = 0;
    float bv = z[0] + b[0];
    for (int c = 1; c < C; c++) {
        float v = z[c] + b[c];
        if (v > bv) {
            bv = v;
            best = c;
        }
    }
    return best;
}

#endif
