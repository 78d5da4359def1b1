/* Shared by tests/unit/test_proxy_*.c: a seeded generator, data makers, and the
 * double-precision brute-force k-NN reference the proxies are checked against. Header-only
 * (static functions); include after <cmocka.h>. */
#ifndef RANKQL_TESTS_PROXY_TEST_H
#define RANKQL_TESTS_PROXY_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor/workers/proxies/proxy.h"

/* splitmix64: a fixed sequence per seed on every platform. */
typedef struct trng {
    uint64_t s;
} trng;

static inline uint64_t trng_next(trng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static inline double trng_unif(trng *r)
{
    return (double)(trng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double trng_gauss(trng *r)
{
    double u = trng_unif(r), v = trng_unif(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static inline int trng_int(trng *r, int n)
{
    return (int)(trng_next(r) % (uint64_t)n);
}

/* n × d values on a coarse dyadic grid (multiples of 1/4 in [-2, 2]): every product, dot
 * product and norm is exact in float, so float and double distances agree bit for bit and
 * exact ties are frequent. */
static inline float *t_grid(trng *r, size_t n, size_t d)
{
    float *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)(trng_int(r, 17) - 8) / 4.0f;
    return x;
}

static inline float *t_gauss(trng *r, size_t n, size_t d)
{
    float *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)trng_gauss(r);
    return x;
}

static inline int32_t *t_labels(trng *r, size_t n, int C)
{
    int32_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = trng_int(r, C);
    return y;
}

/* Reference distance in double: squared Euclidean, or 2 − 2·cos for cosine (0 for a zero
 * row, so cos = 0 against it). */
static inline double t_ref_dist(const float *x, const float *y, size_t d, int cosine)
{
    double s = 0, xx = 0, yy = 0, xy = 0;
    for (size_t j = 0; j < d; j++) {
        double a = x[j], b = y[j];
        s += (a - b) * (a - b);
        xx += a * a;
        yy += b * b;
        xy += a * b;
    }
    if (!cosine)
        return s;
    double c = (xx > 0 && yy > 0) ? xy / (sqrt(xx) * sqrt(yy)) : 0.0;
    return 2.0 - 2.0 * c;
}

/* Brute-force k-NN of one test row: the k smallest (distance, index) by selection. */
static inline void t_ref_knn(const float *train, size_t ntr, const float *x, size_t d, int k,
                             int cosine, int64_t *idx, double *dist)
{
    double *all = malloc(ntr * sizeof *all);
    char *used = calloc(ntr, 1);
    for (size_t j = 0; j < ntr; j++)
        all[j] = t_ref_dist(x, train + j * d, d, cosine);
    for (int q = 0; q < k; q++) {
        size_t best = SIZE_MAX;
        for (size_t j = 0; j < ntr; j++)
            if (!used[j] && (best == SIZE_MAX || all[j] < all[best]))
                best = j; /* strict: lowest index among equals */
        used[best] = 1;
        idx[q] = (int64_t)best;
        dist[q] = all[best];
    }
    free(all);
    free(used);
}

/* Reference vote (labels < 256): the most frequent label; a tie goes to the label whose
 * first (nearest) occurrence comes first. */
static inline int32_t t_ref_vote(const int32_t *lab, int k)
{
    int cnt[256] = {0}, first[256];
    for (int c = 0; c < 256; c++)
        first[c] = k;
    for (int i = 0; i < k; i++) {
        cnt[lab[i]]++;
        if (first[lab[i]] == k)
            first[lab[i]] = i;
    }
    int best = lab[0];
    for (int c = 0; c < 256; c++)
        if (cnt[c] > cnt[best] || (cnt[c] == cnt[best] && cnt[c] > 0 && first[c] < first[best]))
            best = c;
    return best;
}

#endif
