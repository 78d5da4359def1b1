/* Exact k-NN (Euclidean and cosine) on the CPU: tiled SGEMM dot products, then one pass
 * over each dot-product tile that keeps the k best train rows per test row.
 *
 * For a test tile X (mt rows) and a train tile Y (nt rows), cblas_sgemm gives
 * D = X·Yᵀ (mt × nt); the distance of (i, j) is proxy_sqdist(‖xᵢ‖², ‖yⱼ‖², Dᵢⱼ). For k = 1 a
 * SIMD pass finds the row minimum of exactly those float values and a short scalar pass
 * finds its first (lowest) index, so the cost beyond the SGEMM is about one read of the tile
 * while it is still in cache. For k > 1 a scalar pass inserts candidates that beat the
 * current k-th. Tiles are visited in increasing train order, and every comparison is the
 * total order proxy_nbr_better, so the result is the exact (distance, index)-sorted k-list.
 * The row minimum uses AVX2 when the CPU has it, else SSE2 (x86-64) or plain C; setting
 * RANKQL_PROXY_SCALAR in the environment forces plain C (the tests compare the two).
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PROXY_X86 1
#endif

#include "executor/workers/proxies/internal.h"
#include "executor/workers/proxies/proxy_math.h"

/* Minimum over j < nt of proxy_sqdist(xn, yn[j], dot[j]) — the same float operations, so
 * the value found is bit-identical to one of the scalar values. */
static float row_min_scalar(const float *dot, const float *yn, float xn, size_t nt)
{
    float m = INFINITY;
    for (size_t j = 0; j < nt; j++) {
        float v = proxy_sqdist(xn, yn[j], dot[j]);
        m = v < m ? v : m;
    }
    return m;
}

#ifdef PROXY_X86
__attribute__((target("avx2"))) static float row_min_avx2(const float *dot, const float *yn,
                                                           float xn, size_t nt)
{
    size_t j = 0;
    float m = INFINITY;
    if (nt >= 32) {
        __m256 xv = _mm256_set1_ps(xn);
        __m256 m0 = _mm256_set1_ps(INFINITY), m1 = m0, m2 = m0, m3 = m0;
        for (; j + 32 <= nt; j += 32) {
            __m256 c0 = _mm256_loadu_ps(dot + j), c1 = _mm256_loadu_ps(dot + j + 8);
            __m256 c2 = _mm256_loadu_ps(dot + j + 16), c3 = _mm256_loadu_ps(dot + j + 24);
            /* (xn + yn) − (dot + dot): proxy_sqdist's operations (2·dot is exact) */
            m0 = _mm256_min_ps(m0, _mm256_sub_ps(_mm256_add_ps(xv, _mm256_loadu_ps(yn + j)),
                                                 _mm256_add_ps(c0, c0)));
            m1 = _mm256_min_ps(m1, _mm256_sub_ps(_mm256_add_ps(xv, _mm256_loadu_ps(yn + j + 8)),
                                                 _mm256_add_ps(c1, c1)));
            m2 = _mm256_min_ps(m2, _mm256_sub_ps(_mm256_add_ps(xv, _mm256_loadu_ps(yn + j + 16)),
                                                 _mm256_add_ps(c2, c2)));
            m3 = _mm256_min_ps(m3, _mm256_sub_ps(_mm256_add_ps(xv, _mm256_loadu_ps(yn + j + 24)),
                                                 _mm256_add_ps(c3, c3)));
        }
        m0 = _mm256_min_ps(_mm256_min_ps(m0, m1), _mm256_min_ps(m2, m3));
        float lanes[8];
        _mm256_storeu_ps(lanes, m0);
        for (int l = 0; l < 8; l++)
            m = lanes[l] < m ? lanes[l] : m;
    }
    float t = row_min_scalar(dot + j, yn + j, xn, nt - j);
    return t < m ? t : m;
}

static float row_min_sse2(const float *dot, const float *yn, float xn, size_t nt)
{
    size_t j = 0;
    float m = INFINITY;
    if (nt >= 16) {
        __m128 xv = _mm_set1_ps(xn);
        __m128 m0 = _mm_set1_ps(INFINITY), m1 = m0, m2 = m0, m3 = m0;
        for (; j + 16 <= nt; j += 16) {
            __m128 c0 = _mm_loadu_ps(dot + j), c1 = _mm_loadu_ps(dot + j + 4);
            __m128 c2 = _mm_loadu_ps(dot + j + 8), c3 = _mm_loadu_ps(dot + j + 12);
            m0 = _mm_min_ps(m0, _mm_sub_ps(_mm_add_ps(xv, _mm_loadu_ps(yn + j)), _mm_add_ps(c0, c0)));
            m1 = _mm_min_ps(m1, _mm_sub_ps(_mm_add_ps(xv, _mm_loadu_ps(yn + j + 4)), _mm_add_ps(c1, c1)));
            m2 = _mm_min_ps(m2, _mm_sub_ps(_mm_add_ps(xv, _mm_loadu_ps(yn + j + 8)), _mm_add_ps(c2, c2)));
            m3 = _mm_min_ps(m3, _mm_sub_ps(_mm_add_ps(xv, _mm_loadu_ps(yn + j + 12)), _mm_add_ps(c3, c3)));
        }
        m0 = _mm_min_ps(_mm_min_ps(m0, m1), _mm_min_ps(m2, m3));
        float lanes[4];
        _mm_storeu_ps(lanes, m0);
        for (int l = 0; l < 4; l++)
            m = lanes[l] < m ? lanes[l] : m;
    }
    float t = row_min_scalar(dot + j, yn + j, xn, nt - j);
    return t < m ? t : m;
}
#endif

/* Squared norms above this are refused: ‖x‖² + ‖y‖² + 2|x·y| must stay finite in float. */
#define NORM2_MAX (FLT_MAX / 4.0)

typedef float (*row_min_fn)(const float *, const float *, float, size_t);

static row_min_fn pick_row_min(void)
{
#ifdef PROXY_X86
    if (getenv("RANKQL_PROXY_SCALAR"))
        return row_min_scalar;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        return row_min_avx2;
    return row_min_sse2;
#else
    return row_min_scalar;
#endif
}

/* k = 1: update (bd[i], bi[i]) with the best of tile row i. */
static void best1_tile(row_min_fn row_min, const float *dots, size_t mt, size_t nt,
                       const float *xn, const float *yn, int64_t j0, float *bd, int64_t *bi)
{
    for (size_t i = 0; i < mt; i++) {
        const float *row = dots + i * nt;
        float m = row_min(row, yn, xn[i], nt);
        if (!(m <= bd[i])) /* cannot beat (nor tie with a lower index: j0 grows) */
            continue;
        for (size_t j = 0; j < nt; j++) {
            float v = proxy_sqdist(xn[i], yn[j], row[j]);
            if (v == m) {
                if (proxy_nbr_better(v, j0 + (int64_t)j, bd[i], bi[i])) {
                    bd[i] = v;
                    bi[i] = j0 + (int64_t)j;
                }
                break;
            }
        }
    }
}

/* k > 1: insert every candidate that beats row i's current k-th. */
static void bestk_tile(const float *dots, size_t mt, size_t nt, const float *xn,
                       const float *yn, int64_t j0, int k, float *bd, int64_t *bi)
{
    for (size_t i = 0; i < mt; i++) {
        const float *row = dots + i * nt;
        float *d = bd + i * (size_t)k;
        int64_t *ix = bi + i * (size_t)k;
        float thr = d[k - 1];
        for (size_t j = 0; j < nt; j++) {
            float v = proxy_sqdist(xn[i], yn[j], row[j]);
            if (v <= thr) {
                proxy_topk_insert(d, ix, k, v, j0 + (int64_t)j);
                thr = d[k - 1];
            }
        }
    }
}

/* dst (rows × d) = src rows scaled by inv[i] (cosine normalisation). */
static void scale_rows(const float *src, size_t rows, size_t d, const float *inv, float *dst)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < d; j++)
            dst[i * d + j] = src[i * d + j] * inv[i];
}

int proxy_nn(const proxy_data *train, const proxy_data *test, const proxy_nn_opts *opts,
             proxy_nn_result *out, char *err, size_t errsize)
{
    proxy_nn_opts o;
    int rc = proxy_nn_setup(train, test, opts, &o, err, errsize);
    if (rc != PROXY_OK)
        return rc;
    proxy_nn_result r;
    if ((rc = proxy_nn_result_alloc(&r, test->n, o.k, err, errsize)) != PROXY_OK)
        return rc;

    const size_t d = train->d, ntr = train->n, nte = test->n;
    const size_t mt = o.test_tile, nt = o.train_tile, k = (size_t)o.k;
    const int cosine = o.metric == PROXY_COSINE;
    row_min_fn row_min = pick_row_min();

    /* Euclidean: yn = ‖y‖² per train row, xn = ‖x‖² per tile row. Cosine: rows are
     * normalised (train once, into ycos; test per tile, into xcos) and every norm is 1. */
    float *yn = malloc((cosine ? (nt > mt ? nt : mt) : ntr) * sizeof *yn);
    float *xn = malloc(mt * sizeof *xn);
    float *dots = malloc(mt * nt * sizeof *dots);
    float *ycos = cosine ? malloc(ntr * d * sizeof *ycos) : NULL;
    float *xcos = cosine ? malloc(mt * d * sizeof *xcos) : NULL;
    float *inv = cosine ? malloc((ntr > mt ? ntr : mt) * sizeof *inv) : NULL;
    if (!yn || !xn || !dots || (cosine && (!ycos || !xcos || !inv))) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM,
                        "out of memory for nearest-neighbour tiles (%zu × %zu)", mt, nt);
        goto done;
    }
    if (cosine) {
        for (size_t j = 0; j < ntr; j++)
            inv[j] = proxy_inv_norm(proxy_row_sumsq(train->x + j * d, d));
        scale_rows(train->x, ntr, d, inv, ycos);
        for (size_t j = 0; j < (nt > mt ? nt : mt); j++)
            yn[j] = 1.0f;
        for (size_t i = 0; i < mt; i++)
            xn[i] = 1.0f;
    } else {
        for (size_t j = 0; j < ntr; j++) {
            double s = proxy_row_sumsq(train->x + j * d, d);
            if (s > NORM2_MAX) {
                rc = proxy_fail(err, errsize, PROXY_ENUMERIC,
                                "train row %zu: squared norm %g is too large for float", j, s);
                goto done;
            }
            yn[j] = (float)s;
        }
    }

    for (size_t t0 = 0; t0 < nte; t0 += mt) {
        size_t m = nte - t0 < mt ? nte - t0 : mt;
        const float *X = test->x + t0 * d;
        float *bd = r.dist + t0 * k;
        int64_t *bi = r.nbr + t0 * k;
        if (cosine) {
            for (size_t i = 0; i < m; i++)
                inv[i] = proxy_inv_norm(proxy_row_sumsq(X + i * d, d));
            scale_rows(X, m, d, inv, xcos);
            X = xcos;
        } else {
            for (size_t i = 0; i < m; i++) {
                double s = proxy_row_sumsq(X + i * d, d);
                if (s > NORM2_MAX) {
                    rc = proxy_fail(err, errsize, PROXY_ENUMERIC,
                                    "test row %zu: squared norm %g is too large for float",
                                    t0 + i, s);
                    goto done;
                }
                xn[i] = (float)s;
            }
        }
        for (size_t i = 0; i < m; i++)
            proxy_topk_init(bd + i * k, bi + i * k, (int)k);

        for (size_t j0 = 0; j0 < ntr; j0 += nt) {
            size_t n = ntr - j0 < nt ? ntr - j0 : nt;
            const float *Y = (cosine ? ycos : train->x) + j0 * d;
            const float *ynj = cosine ? yn : yn + j0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)d, 1.0f, X,
                        (int)d, Y, (int)d, 0.0f, dots, (int)n);
            if (k == 1)
                best1_tile(row_min, dots, m, n, xn, ynj, (int64_t)j0, bd, bi);
            else
                bestk_tile(dots, m, n, xn, ynj, (int64_t)j0, (int)k, bd, bi);
        }
    }
    proxy_nn_finish(&r, train->y, test->y);

done:
    free(yn);
    free(xn);
    free(dots);
    free(ycos);
    free(xcos);
    free(inv);
    if (rc != PROXY_OK)
        proxy_nn_result_free(&r);
    else
        *out = r;
    return rc;
}
