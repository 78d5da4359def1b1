/* executor/workers/embed/: specs, output dimensions, and the apply loop (embed.h). */
#include "executor/workers/embed/embed.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/workers/embed/internal.h"

/* ---- names and options -------------------------------------------------------------- */

static const char *const kind_names[EMBED_KIND_COUNT] = {
    [EMBED_RAW] = "raw",
    [EMBED_DOWNSAMPLE] = "downsample",
    [EMBED_PROFILE] = "profile",
    [EMBED_HISTOGRAM] = "histogram",
    [EMBED_LBP] = "lbp",
    [EMBED_HOG] = "hog",
    [EMBED_PCA] = "pca",
    [EMBED_RANDOM_PROJECTION] = "random_projection",
    [EMBED_RANDOM_FOURIER] = "random_fourier",
    [EMBED_RANDOM_CONV] = "random_conv",
};

typedef enum opt_type { OPT_INT, OPT_SEED, OPT_DOUBLE, OPT_BOOL } opt_type;

typedef struct opt_def {
    const char *name;
    opt_type type;
    size_t offset;
    long long lo, hi;
    const char *note; /* extra rule, shown in errors */
} opt_def;

enum {
    O_SEED, O_K, O_WHITEN, O_GAMMA, O_FACTOR, O_BINS, O_GRID, O_CELL, O_BLOCK, O_WIDTH, O_KSIZE,
    O_COUNT
};

static const opt_def opts[O_COUNT] = {
    [O_SEED] = {"seed", OPT_SEED, offsetof(embed_spec, seed), 0, INT64_MAX, NULL},
    [O_K] = {"k", OPT_INT, offsetof(embed_spec, k), 1, 65536, NULL},
    [O_WHITEN] = {"whiten", OPT_BOOL, offsetof(embed_spec, whiten), 0, 1, NULL},
    [O_GAMMA] = {"gamma", OPT_DOUBLE, offsetof(embed_spec, gamma), 0, 1000000, NULL},
    [O_FACTOR] = {"factor", OPT_INT, offsetof(embed_spec, factor), 1, 1024, NULL},
    [O_BINS] = {"bins", OPT_INT, offsetof(embed_spec, bins), 2, 256, NULL},
    [O_GRID] = {"grid", OPT_INT, offsetof(embed_spec, grid), 1, 64, NULL},
    [O_CELL] = {"cell", OPT_INT, offsetof(embed_spec, cell), 2, 256, NULL},
    [O_BLOCK] = {"block", OPT_INT, offsetof(embed_spec, block), 1, 8, NULL},
    [O_WIDTH] = {"width", OPT_INT, offsetof(embed_spec, width), 1, 4096, NULL},
    [O_KSIZE] = {"ksize", OPT_INT, offsetof(embed_spec, ksize), 1, 15, "odd"},
};

#define B(o) (1u << (o))
static const unsigned kind_opts[EMBED_KIND_COUNT] = {
    [EMBED_RAW] = 0,
    [EMBED_DOWNSAMPLE] = B(O_FACTOR),
    [EMBED_PROFILE] = 0,
    [EMBED_HISTOGRAM] = B(O_BINS) | B(O_GRID),
    [EMBED_LBP] = B(O_GRID),
    [EMBED_HOG] = B(O_CELL) | B(O_BINS) | B(O_BLOCK),
    [EMBED_PCA] = B(O_K) | B(O_WHITEN),
    [EMBED_RANDOM_PROJECTION] = B(O_K) | B(O_SEED),
    [EMBED_RANDOM_FOURIER] = B(O_K) | B(O_GAMMA) | B(O_SEED),
    [EMBED_RANDOM_CONV] = B(O_WIDTH) | B(O_KSIZE) | B(O_GRID) | B(O_SEED),
};

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **err, const char *fmt, ...)
{
    if (err) {
        strbuf sb = {0};
        va_list ap;
        va_start(ap, fmt);
        strbuf_vprintf(&sb, fmt, ap);
        va_end(ap);
        *err = strbuf_detach(&sb);
    }
    return -1;
}

const char *embed_kind_name(embed_kind kind)
{
    return (unsigned)kind < EMBED_KIND_COUNT ? kind_names[kind] : "?";
}

int embed_kind_parse(const char *name, embed_kind *kind)
{
    for (int i = 0; i < EMBED_KIND_COUNT; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (embed_kind)i;
            return 0;
        }
    }
    return -1;
}

void embed_spec_init(embed_spec *spec, embed_kind kind)
{
    memset(spec, 0, sizeof *spec);
    spec->kind = kind;
    spec->seed = 0;
    spec->k = kind == EMBED_PCA ? 50 : kind == EMBED_RANDOM_FOURIER ? 512 : 256;
    spec->whiten = false;
    spec->gamma = 0;
    spec->factor = 2;
    spec->bins = kind == EMBED_HOG ? 9 : 16;
    spec->grid = kind == EMBED_HISTOGRAM ? 2 : 4;
    spec->cell = 4;
    spec->block = 2;
    spec->width = 32;
    spec->ksize = 3;
}

static char *known_options(embed_kind kind)
{
    strbuf sb = {0};
    strbuf_puts(&sb, "");
    for (int o = 0; o < O_COUNT; o++)
        if (kind_opts[kind] & B(o))
            strbuf_printf(&sb, "%s%s", sb.len ? ", " : "", opts[o].name);
    if (!sb.len)
        strbuf_puts(&sb, "none");
    return strbuf_detach(&sb);
}

static char *known_kinds(void)
{
    strbuf sb = {0};
    for (int i = 0; i < EMBED_KIND_COUNT; i++)
        strbuf_printf(&sb, "%s%s", i ? ", " : "", kind_names[i]);
    return strbuf_detach(&sb);
}

int embed_spec_from_json(const json_t *obj, embed_spec *spec, char **err)
{
    if (!json_is_object(obj))
        return fail(err, "a builtin extractor spec must be an object like {\"extractor\": "
                    "\"pca\", \"k\": 32}");
    json_t *name = json_object_get(obj, "extractor");
    if (!name || !json_is_string(name)) {
        char *kinds = known_kinds();
        int rc = fail(err, "a builtin extractor spec needs \"extractor\": a name (one of %s)",
                      kinds);
        free(kinds);
        return rc;
    }
    embed_kind kind;
    if (embed_kind_parse(json_string_value(name), &kind) != 0) {
        char *kinds = known_kinds();
        int rc = fail(err, "unknown extractor '%s' (known: %s)", json_string_value(name), kinds);
        free(kinds);
        return rc;
    }
    embed_spec_init(spec, kind);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "extractor") == 0)
            continue;
        int o;
        for (o = 0; o < O_COUNT; o++)
            if (strcmp(key, opts[o].name) == 0)
                break;
        if (o == O_COUNT || !(kind_opts[kind] & B(o))) {
            char *known = known_options(kind);
            int rc = fail(err, "extractor '%s' has no option '%s' (its options: %s)",
                          kind_names[kind], key, known);
            free(known);
            return rc;
        }
        const opt_def *d = &opts[o];
        char *field = (char *)spec + d->offset;
        switch (d->type) {
        case OPT_INT:
        case OPT_SEED: {
            long long x = json_is_integer(v) ? json_integer_value(v) : d->lo - 1;
            bool odd_ok = !d->note || (x % 2 != 0);
            if (!json_is_integer(v) || x < d->lo || x > d->hi || !odd_ok)
                return fail(err, "extractor '%s': option '%s' must be an %sinteger from %lld "
                            "to %lld", kind_names[kind], d->name, d->note ? "odd " : "", d->lo,
                            d->hi);
            if (d->type == OPT_SEED) {
                uint64_t s = (uint64_t)x;
                memcpy(field, &s, sizeof s);
            } else {
                int i = (int)x;
                memcpy(field, &i, sizeof i);
            }
            break;
        }
        case OPT_DOUBLE: {
            double x = json_is_number(v) ? json_number_value(v) : -1;
            if (!json_is_number(v) || !(x >= (double)d->lo && x <= (double)d->hi))
                return fail(err, "extractor '%s': option '%s' must be a number from %lld to "
                            "%lld", kind_names[kind], d->name, d->lo, d->hi);
            memcpy(field, &x, sizeof x);
            break;
        }
        case OPT_BOOL: {
            if (!json_is_boolean(v))
                return fail(err, "extractor '%s': option '%s' must be true or false",
                            kind_names[kind], d->name);
            bool b = json_is_true(v);
            memcpy(field, &b, sizeof b);
            break;
        }
        }
    }
    return 0;
}

json_t *embed_spec_to_json(const embed_spec *spec)
{
    json_t *o = json_object();
    json_object_set_new(o, "extractor", json_string(embed_kind_name(spec->kind)));
    if ((unsigned)spec->kind >= EMBED_KIND_COUNT)
        return o;
    for (int i = 0; i < O_COUNT; i++) {
        if (!(kind_opts[spec->kind] & B(i)))
            continue;
        const char *field = (const char *)spec + opts[i].offset;
        switch (opts[i].type) {
        case OPT_INT: {
            int x;
            memcpy(&x, field, sizeof x);
            json_object_set_new(o, opts[i].name, json_integer(x));
            break;
        }
        case OPT_SEED: {
            uint64_t s;
            memcpy(&s, field, sizeof s);
            json_object_set_new(o, opts[i].name, json_integer((json_int_t)s));
            break;
        }
        case OPT_DOUBLE: {
            double x;
            memcpy(&x, field, sizeof x);
            json_object_set_new(o, opts[i].name, json_real(x));
            break;
        }
        case OPT_BOOL: {
            bool b;
            memcpy(&b, field, sizeof b);
            json_object_set_new(o, opts[i].name, json_boolean(b));
            break;
        }
        }
    }
    return o;
}

bool embed_needs_fit(const embed_spec *spec)
{
    return spec->kind == EMBED_PCA;
}

/* ---- output dimensions -------------------------------------------------------------- */

#define PCA_MAX_INPUT 4096
#define MAX_MATRIX ((size_t)1 << 28) /* floats in a random matrix (1 GiB) */

static size_t output_dim(const embed_spec *s, embed_shape in, char **err)
{
    const char *name = embed_kind_name(s->kind);
    size_t H = in.height, W = in.width, C = in.channels, D;
    if ((unsigned)s->kind >= EMBED_KIND_COUNT) {
        fail(err, "unknown extractor %d", (int)s->kind);
        return 0;
    }
    if (H == 0 || W == 0 || C == 0 || __builtin_mul_overflow(H, W, &D) ||
        __builtin_mul_overflow(D, C, &D)) {
        fail(err, "extractor '%s': empty or impossible input shape %zux%zux%zu", name, H, W, C);
        return 0;
    }
    if (in.flat && s->kind != EMBED_RAW && s->kind != EMBED_PCA &&
        s->kind != EMBED_RANDOM_PROJECTION && s->kind != EMBED_RANDOM_FOURIER) {
        fail(err, "extractor '%s' needs images; the input is a feature vector (raw, pca, "
             "random_projection and random_fourier take feature vectors)", name);
        return 0;
    }
    size_t g = (size_t)s->grid;
    switch (s->kind) {
    case EMBED_RAW:
        return D;
    case EMBED_DOWNSAMPLE: {
        size_t f = (size_t)s->factor;
        return ((H + f - 1) / f) * ((W + f - 1) / f) * C;
    }
    case EMBED_PROFILE:
        return (H + W) * C;
    case EMBED_HISTOGRAM:
        if (g > H || g > W) {
            fail(err, "extractor 'histogram': grid %zu is larger than the %zux%zu image", g, H, W);
            return 0;
        }
        return g * g * C * (size_t)s->bins;
    case EMBED_LBP:
        if (H < 3 || W < 3 || g > H - 2 || g > W - 2) {
            fail(err, "extractor 'lbp': a %zux%zu image is too small for grid %zu (it needs at "
                 "least grid + 2 pixels a side)", H, W, g);
            return 0;
        }
        return g * g * 59;
    case EMBED_HOG: {
        size_t cy = H / (size_t)s->cell, cx = W / (size_t)s->cell, b = (size_t)s->block;
        if (cy < b || cx < b) {
            fail(err, "extractor 'hog': a %zux%zu image has %zux%zu cells of %d pixels, fewer "
                 "than one block of %zux%zu cells", H, W, cy, cx, s->cell, b, b);
            return 0;
        }
        return (cy - b + 1) * (cx - b + 1) * b * b * (size_t)s->bins;
    }
    case EMBED_PCA:
        if (D > PCA_MAX_INPUT) {
            fail(err, "extractor 'pca': inputs of %zu values are more than %d (downsample "
                 "first)", D, PCA_MAX_INPUT);
            return 0;
        }
        if ((size_t)s->k > D) {
            fail(err, "extractor 'pca': k = %d is more than the %zu input values", s->k, D);
            return 0;
        }
        return (size_t)s->k;
    case EMBED_RANDOM_PROJECTION:
    case EMBED_RANDOM_FOURIER:
        if (D > MAX_MATRIX / (size_t)s->k) {
            fail(err, "extractor '%s': a %zu × %d matrix is too large", name, D, s->k);
            return 0;
        }
        return (size_t)s->k;
    case EMBED_RANDOM_CONV:
        if (s->ksize % 2 == 0) {
            fail(err, "extractor 'random_conv': ksize must be odd, not %d", s->ksize);
            return 0;
        }
        if (g > H || g > W) {
            fail(err, "extractor 'random_conv': grid %zu is larger than the %zux%zu image", g,
                 H, W);
            return 0;
        }
        if (C > 64) {
            fail(err, "extractor 'random_conv': %zu channels are more than 64", C);
            return 0;
        }
        return g * g * (size_t)s->width;
    default:
        break;
    }
    fail(err, "unknown extractor %d", (int)s->kind);
    return 0;
}

size_t embed_output_dim(const embed_spec *spec, embed_shape in)
{
    return output_dim(spec, in, NULL);
}

int embed_check(const embed_spec *spec, embed_shape in, char **err)
{
    return output_dim(spec, in, err) ? 0 : -1;
}

/* ---- embedders ---------------------------------------------------------------------- */

embedder *embedder_new(const embed_spec *spec, embed_shape in, char **err)
{
    size_t dim = output_dim(spec, in, err);
    if (!dim)
        return NULL;
    embedder *e = xcalloc(1, sizeof *e);
    e->spec = *spec;
    e->in = in;
    e->in_size = in.height * in.width * in.channels;
    e->dim = dim;
    e->fitted = !embed_needs_fit(spec);
    if (spec->kind == EMBED_RANDOM_PROJECTION || spec->kind == EMBED_RANDOM_FOURIER)
        emb_random_init(e);
    else if (spec->kind == EMBED_RANDOM_CONV)
        emb_conv_init(e);
    return e;
}

void embedder_free(embedder *e)
{
    if (!e)
        return;
    free(e->mat);
    free(e->vec);
    free(e->scale);
    free(e->filters);
    free(e);
}

size_t embedder_dim(const embedder *e)
{
    return e->dim;
}

static int check_input(const embedder *e, const embed_input *in, char **err)
{
    if (!in->u8 == !in->f32 && in->n > 0)
        return fail(err, "extractor '%s': the input needs exactly one of u8 and f32 pixels",
                    embed_kind_name(e->spec.kind));
    if (in->shape.height != e->in.height || in->shape.width != e->in.width ||
        in->shape.channels != e->in.channels || in->shape.flat != e->in.flat)
        return fail(err, "extractor '%s' was made for %s of %zux%zux%zu, the input is %s of "
                    "%zux%zux%zu", embed_kind_name(e->spec.kind),
                    e->in.flat ? "vectors" : "images", e->in.height, e->in.width, e->in.channels,
                    in->shape.flat ? "vectors" : "images", in->shape.height, in->shape.width,
                    in->shape.channels);
    return 0;
}

int embedder_fit(embedder *e, const embed_input *train, char **err)
{
    if (check_input(e, train, err) != 0)
        return -1;
    if (e->spec.kind != EMBED_PCA)
        return 0;
    if (emb_pca_fit(e, train, err) != 0)
        return -1;
    e->fitted = true;
    return 0;
}

void emb_load_rows(const embed_input *in, size_t start, size_t count, float *dst)
{
    size_t per = in->shape.height * in->shape.width * in->shape.channels;
    size_t n = count * per;
    if (in->u8) {
        const uint8_t *src = in->u8 + start * per;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)src[i] * (1.0f / 255.0f);
    } else {
        memcpy(dst, in->f32 + start * per, n * sizeof *dst);
    }
}

int embedder_apply(const embedder *e, const embed_input *in, float *out, char **err)
{
    if (check_input(e, in, err) != 0)
        return -1;
    if (!e->fitted)
        return fail(err, "extractor '%s' must be fitted on a training set first",
                    embed_kind_name(e->spec.kind));
    if (in->n == 0)
        return 0;
    size_t per = e->in_size, dim = e->dim;
    embed_kind k = e->spec.kind;
    size_t batch;
    if (k == EMBED_RANDOM_CONV)
        batch = emb_conv_batch(e);
    else if (k == EMBED_PCA || k == EMBED_RANDOM_PROJECTION || k == EMBED_RANDOM_FOURIER)
        batch = 256;
    else
        batch = 1;
    if (batch > in->n)
        batch = in->n;
    float *x = xmalloc(batch * per * sizeof *x);
    size_t scratch_n = k == EMBED_RANDOM_CONV ? emb_conv_scratch(e, batch) : emb_scratch_size(e);
    float *scratch = scratch_n ? xmalloc(scratch_n * sizeof *scratch) : NULL;
    for (size_t i = 0; i < in->n; i += batch) {
        size_t rows = in->n - i < batch ? in->n - i : batch;
        float *o = out + i * dim;
        if (k == EMBED_RAW) {
            emb_load_rows(in, i, rows, o);
            continue;
        }
        emb_load_rows(in, i, rows, x);
        switch (k) {
        case EMBED_DOWNSAMPLE: emb_downsample(e, x, o); break;
        case EMBED_PROFILE: emb_profile(e, x, o); break;
        case EMBED_HISTOGRAM: emb_histogram(e, x, o); break;
        case EMBED_LBP: emb_lbp(e, x, o, scratch); break;
        case EMBED_HOG: emb_hog(e, x, o, scratch); break;
        case EMBED_RANDOM_CONV: emb_conv_apply(e, x, rows, o, scratch); break;
        default: emb_linear_apply(e, x, rows, o); break;
        }
    }
    free(x);
    free(scratch);
    return 0;
}

/* ---- datasets ----------------------------------------------------------------------- */

embed_shape embed_shape_of(const dataset *ds)
{
    embed_shape s = {0};
    if (ds->kind == DATASET_IMAGES) {
        s.height = ds->height;
        s.width = ds->width;
        s.channels = ds->channels;
    } else if (ds->kind == DATASET_FEATURES) {
        s.height = 1;
        s.width = ds->dim;
        s.channels = 1;
        s.flat = true;
    }
    return s;
}

int embed_input_of(const dataset *ds, size_t start, size_t count, embed_input *in, char **err)
{
    memset(in, 0, sizeof *in);
    if (ds->kind == DATASET_TEXTS)
        return fail(err, "builtin extractors need images or feature vectors; this dataset "
                    "holds texts");
    if (start > ds->n || count > ds->n - start)
        return fail(err, "rows [%zu, %zu) are outside the dataset's %zu", start, start + count,
                    ds->n);
    in->n = count;
    in->shape = embed_shape_of(ds);
    size_t per = dataset_example_size(ds);
    if (ds->kind == DATASET_FEATURES)
        in->f32 = ds->features + start * per;
    else if (ds->pixel == DATASET_PIXEL_U8)
        in->u8 = ds->u8 + start * per;
    else
        in->f32 = ds->f32 + start * per;
    return 0;
}

int embed_dataset(const embed_spec *spec, const dataset *train, const dataset *ds, float **out,
                  size_t *dim, char **err)
{
    *out = NULL;
    *dim = 0;
    embed_input in, tr;
    if (embed_input_of(ds, 0, ds->n, &in, err) != 0)
        return -1;
    embedder *e = embedder_new(spec, in.shape, err);
    if (!e)
        return -1;
    if (embed_needs_fit(spec)) {
        if (!train) {
            embedder_free(e);
            return fail(err, "extractor '%s' must be fitted: give a training dataset",
                        embed_kind_name(spec->kind));
        }
        if (embed_input_of(train, 0, train->n, &tr, err) != 0 ||
            embedder_fit(e, &tr, err) != 0) {
            embedder_free(e);
            return -1;
        }
    }
    size_t bytes;
    if (e->dim && ds->n > SIZE_MAX / sizeof(float) / e->dim) {
        size_t d = e->dim;
        embedder_free(e);
        return fail(err, "%zu × %zu features are too many", ds->n, d);
    }
    bytes = ds->n * e->dim * sizeof(float);
    float *o = xmalloc(bytes ? bytes : 1);
    if (embedder_apply(e, &in, o, err) != 0) {
        free(o);
        embedder_free(e);
        return -1;
    }
    *out = o;
    *dim = e->dim;
    embedder_free(e);
    return 0;
}
