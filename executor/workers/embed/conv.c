/* executor/workers/embed/: random_conv — random filters, ReLU, average pooling — as im2col
 * and one GEMM per batch of images (OpenBLAS). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "common/util.h"
#include "executor/workers/embed/internal.h"

#define STREAM_CONV 3

void emb_conv_init(embedder *e)
{
    size_t ks = (size_t)e->spec.ksize, C = e->in.channels, width = (size_t)e->spec.width;
    size_t P = ks * ks * C;
    emb_rng r;
    emb_rng_seed(&r, e->spec.seed, STREAM_CONV);
    e->filters = xmalloc(P * width * sizeof *e->filters);
    double *w = xmalloc(P * sizeof *w);
    for (size_t f = 0; f < width; f++) {
        double mean = 0, norm = 0;
        for (size_t p = 0; p < P; p++) {
            w[p] = emb_rng_normal(&r);
            mean += w[p];
        }
        mean = P > 1 ? mean / (double)P : 0; /* a 1×1×1 filter keeps its sign */
        for (size_t p = 0; p < P; p++) {
            w[p] -= mean;
            norm += w[p] * w[p];
        }
        norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
        for (size_t p = 0; p < P; p++)
            e->filters[p * width + f] = (float)(w[p] * norm);
    }
    free(w);
}

static size_t patch_size(const embedder *e)
{
    return (size_t)e->spec.ksize * (size_t)e->spec.ksize * e->in.channels;
}

size_t emb_conv_batch(const embedder *e)
{
    size_t per = e->in.height * e->in.width * (patch_size(e) + (size_t)e->spec.width);
    /* about 1 MiB of patches and responses: they stay in cache between the GEMM and the
     * pooling */
    size_t b = ((size_t)1 << 18) / (per ? per : 1);
    return b < 1 ? 1 : b > 256 ? 256 : b;
}

size_t emb_conv_scratch(const embedder *e, size_t rows)
{
    return rows * e->in.height * e->in.width * (patch_size(e) + (size_t)e->spec.width);
}

/* acc[f] += max(v[f], 0): four at a time with GCC/Clang vector extensions (SSE without
 * asking for it; -O2 does not vectorise the plain loop), then one at a time. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static void relu_add(float *acc, const float *v, size_t n)
{
    size_t f = 0;
    const v4f zero = {0, 0, 0, 0};
    for (; f + 4 <= n; f += 4) {
        v4f a, b;
        memcpy(&a, acc + f, sizeof a);
        memcpy(&b, v + f, sizeof b);
        v4i pos = b > zero;
        b = (v4f)((v4i)b & pos);
        a += b;
        memcpy(acc + f, &a, sizeof a);
    }
    for (; f < n; f++)
        acc[f] += v[f] > 0.0f ? v[f] : 0.0f;
}

void emb_conv_apply(const embedder *e, const float *x, size_t rows, float *out, float *scratch)
{
    size_t H = e->in.height, W = e->in.width, C = e->in.channels;
    size_t ks = (size_t)e->spec.ksize, half = ks / 2, P = patch_size(e);
    size_t width = (size_t)e->spec.width, g = (size_t)e->spec.grid, dim = e->dim;
    size_t pix = H * W;
    float *patches = scratch, *resp = scratch + rows * pix * P;
    for (size_t b = 0; b < rows; b++) {
        const float *img = x + b * pix * C;
        for (size_t y = 0; y < H; y++)
            for (size_t xx = 0; xx < W; xx++) {
                float *p = patches + ((b * H + y) * W + xx) * P;
                for (size_t dy = 0; dy < ks; dy++) {
                    long sy = (long)y + (long)dy - (long)half;
                    for (size_t dx = 0; dx < ks; dx++) {
                        long sx = (long)xx + (long)dx - (long)half;
                        float *q = p + (dy * ks + dx) * C;
                        bool pad = sy < 0 || sy >= (long)H || sx < 0 || sx >= (long)W;
                        const float *src = pad ? NULL : img + ((size_t)sy * W + (size_t)sx) * C;
                        for (size_t c = 0; c < C; c++)
                            q[c] = pad ? 0.0f : src[c];
                    }
                }
            }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(rows * pix), (int)width, (int)P,
                1.0f, patches, (int)P, e->filters, (int)width, 0.0f, resp, (int)width);
    for (size_t b = 0; b < rows; b++) {
        float *o = out + b * dim;
        memset(o, 0, dim * sizeof *o);
        const float *rb = resp + b * pix * width;
        for (size_t ry = 0; ry < g; ry++) {
            size_t y0 = ry * H / g, y1 = (ry + 1) * H / g;
            for (size_t rx = 0; rx < g; rx++) {
                size_t x0 = rx * W / g, x1 = (rx + 1) * W / g;
                float *restrict acc = o + (ry * g + rx) * width;
                for (size_t y = y0; y < y1; y++)
                    for (size_t xx = x0; xx < x1; xx++) {
                        relu_add(acc, rb + (y * W + xx) * width, width);
                    }
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (size_t f = 0; f < width; f++)
                    acc[f] *= inv;
            }
        }
    }
}
