/* executor/workers/embed/: shared between the extractors (not part of the public API). */
#ifndef RANKQL_EXECUTOR_WORKERS_EMBED_INTERNAL_H
#define RANKQL_EXECUTOR_WORKERS_EMBED_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "executor/workers/embed/embed.h"

struct embedder {
    embed_spec spec;
    embed_shape in;
    size_t in_size;   /* height × width × channels */
    size_t dim;
    bool fitted;      /* pca: after embedder_fit */
    float *mat;       /* pca: k × in_size components; random_*: in_size × k */
    float *vec;       /* pca: k offsets (mean · component); random_fourier: k phases */
    float *scale;     /* pca with whiten: k factors */
    float *filters;   /* random_conv: (ksize² · C) × width */
};

/* Rows [start, start + count) of the batch as floats in [0, 1] (u8) or as stored (f32). */
void emb_load_rows(const embed_input *in, size_t start, size_t count, float *dst);

/* Deterministic random numbers: splitmix64. */
typedef struct emb_rng {
    uint64_t s;
} emb_rng;

static inline void emb_rng_seed(emb_rng *r, uint64_t seed, uint64_t stream)
{
    r->s = seed ^ (stream * 0x9E3779B97F4A7C15ull) ^ 0xD1B54A32D192ED03ull;
}

static inline uint64_t emb_rng_next(emb_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static inline double emb_rng_uniform(emb_rng *r)
{
    return (double)((emb_rng_next(r) >> 11) + 1) * 0x1.0p-53;
}

/* Standard normal (Box-Muller). */
static inline double emb_rng_normal(emb_rng *r)
{
    double u1 = emb_rng_uniform(r), u2 = emb_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Hand-written extractors (extract.c): one image at a time. x is one input (in_size floats),
 * out one output row. */
void emb_downsample(const embedder *e, const float *x, float *out);
void emb_profile(const embedder *e, const float *x, float *out);
void emb_histogram(const embedder *e, const float *x, float *out);
void emb_lbp(const embedder *e, const float *x, float *out, float *scratch);
void emb_hog(const embedder *e, const float *x, float *out, float *scratch);
/* Scratch floats emb_lbp / emb_hog need. */
size_t emb_scratch_size(const embedder *e);

/* Linear ones (linear.c). */
void emb_random_init(embedder *e);
int emb_pca_fit(embedder *e, const embed_input *train, char **err);
void emb_linear_apply(const embedder *e, const float *x, size_t rows, float *out);

/* random_conv (conv.c). */
void emb_conv_init(embedder *e);
/* rows inputs x → rows outputs; scratch of emb_conv_scratch(e, rows) floats. */
void emb_conv_apply(const embedder *e, const float *x, size_t rows, float *out, float *scratch);
size_t emb_conv_batch(const embedder *e);
size_t emb_conv_scratch(const embedder *e, size_t rows);

/* Grey value of pixel p (channels c): the value, the luminance of RGB, else the mean. */
static inline float emb_grey(const float *p, size_t c)
{
    if (c == 1)
        return p[0];
    if (c == 3)
        return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    float s = 0;
    for (size_t i = 0; i < c; i++)
        s += p[i];
    return s / (float)c;
}

#endif
