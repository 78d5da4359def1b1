/* executor/workers/embed/: specs and their errors, output shapes, determinism, PCA on a
 * known low-rank matrix, value checks, and 1-NN quality on a Fashion-MNIST subset when the
 * dataset-fashion-mnist package is installed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "datasets/dataset.h"
#include "executor/workers/embed/embed.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

static const char *const all_kinds[] = {
    "raw", "downsample", "profile", "histogram", "lbp", "hog", "pca", "random_projection",
    "random_fourier", "random_conv",
};
#define NKINDS (sizeof all_kinds / sizeof *all_kinds)

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rnd_normal(void)
{
    double u1 = ((double)(rnd() >> 11) + 1) * 0x1.0p-53, u2 = (double)(rnd() >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static embed_spec spec_of(const char *text)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    if (!o)
        fail_msg("bad JSON in the test: %s", text);
    embed_spec s;
    char *err = NULL;
    if (embed_spec_from_json(o, &s, &err) != 0)
        fail_msg("%s: %s", text, err);
    json_decref(o);
    return s;
}

static void spec_fails(const char *text, const char *needle)
{
    json_error_t je;
    json_t *o = json_loads(text, JSON_DECODE_ANY, &je);
    assert_non_null(o);
    embed_spec s;
    char *err = NULL;
    assert_int_equal(embed_spec_from_json(o, &s, &err), -1);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("%s: error '%s' lacks '%s'", text, err, needle);
    free(err);
    json_decref(o);
}

static embed_shape image_shape(size_t h, size_t w, size_t c)
{
    embed_shape s = {h, w, c, false};
    return s;
}

/* ---- specs -------------------------------------------------------------------------- */

static void test_spec_json(void **state)
{
    (void)state;
    for (size_t i = 0; i < NKINDS; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"extractor\": \"%s\"}", all_kinds[i]);
        embed_spec s = spec_of(text);
        assert_string_equal(embed_kind_name(s.kind), all_kinds[i]);
        /* the canonical JSON parses back to the same spec */
        json_t *j = embed_spec_to_json(&s);
        embed_spec back;
        char *err = NULL;
        assert_int_equal(embed_spec_from_json(j, &back, &err), 0);
        assert_memory_equal(&s, &back, sizeof s);
        json_decref(j);
    }
    embed_spec s = spec_of("{\"extractor\": \"random_conv\", \"width\": 64, \"ksize\": 5, "
                           "\"grid\": 2, \"seed\": 9007199254740993}");
    assert_int_equal(s.kind, EMBED_RANDOM_CONV);
    assert_int_equal(s.width, 64);
    assert_int_equal(s.ksize, 5);
    assert_int_equal(s.grid, 2);
    assert_true(s.seed == 9007199254740993ull);
    json_t *j = embed_spec_to_json(&s);
    char *dump = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(dump, "{\"extractor\":\"random_conv\",\"grid\":2,\"ksize\":5,"
                              "\"seed\":9007199254740993,\"width\":64}");
    free(dump);
    json_decref(j);
    s = spec_of("{\"extractor\": \"pca\", \"k\": 3, \"whiten\": true}");
    assert_int_equal(s.k, 3);
    assert_true(s.whiten);
    s = spec_of("{\"extractor\": \"random_fourier\", \"gamma\": 0.5, \"k\": 64}");
    assert_true(s.gamma == 0.5);
    s = spec_of("{\"extractor\": \"hog\"}");
    assert_int_equal(s.cell, 4);
    assert_int_equal(s.bins, 9);
    assert_int_equal(s.block, 2);

    spec_fails("{\"extractor\": \"resnet\"}", "unknown extractor 'resnet' (known: raw, "
               "downsample");
    spec_fails("{\"k\": 3}", "needs \"extractor\"");
    spec_fails("{\"extractor\": 3}", "needs \"extractor\"");
    spec_fails("[\"pca\"]", "must be an object");
    spec_fails("{\"extractor\": \"pca\", \"kk\": 3}", "extractor 'pca' has no option 'kk' (its "
               "options: k, whiten)");
    spec_fails("{\"extractor\": \"raw\", \"seed\": 1}", "extractor 'raw' has no option 'seed' "
               "(its options: none)");
    spec_fails("{\"extractor\": \"pca\", \"k\": 0}", "option 'k' must be an integer from 1");
    spec_fails("{\"extractor\": \"pca\", \"k\": \"8\"}", "option 'k' must be an integer");
    spec_fails("{\"extractor\": \"pca\", \"k\": 2.5}", "option 'k' must be an integer");
    spec_fails("{\"extractor\": \"pca\", \"whiten\": 1}", "option 'whiten' must be true or false");
    spec_fails("{\"extractor\": \"random_conv\", \"ksize\": 4}", "option 'ksize' must be an odd "
               "integer");
    spec_fails("{\"extractor\": \"random_conv\", \"seed\": -1}", "option 'seed' must be an "
               "integer from 0");
    spec_fails("{\"extractor\": \"random_fourier\", \"gamma\": -1}", "option 'gamma' must be a "
               "number");
}

/* ---- dimensions --------------------------------------------------------------------- */

static void dim_is(const char *text, embed_shape in, size_t want)
{
    embed_spec s = spec_of(text);
    size_t got = embed_output_dim(&s, in);
    if (got != want)
        fail_msg("%s on %zux%zux%zu: dim %zu, expected %zu", text, in.height, in.width,
                 in.channels, got, want);
    char *err = NULL;
    assert_int_equal(embed_check(&s, in, &err), want ? 0 : -1);
    if (want)
        assert_null(err);
    free(err);
}

static void dim_fails(const char *text, embed_shape in, const char *needle)
{
    embed_spec s = spec_of(text);
    assert_int_equal(embed_output_dim(&s, in), 0);
    char *err = NULL;
    assert_int_equal(embed_check(&s, in, &err), -1);
    if (!strstr(err, needle))
        fail_msg("%s: error '%s' lacks '%s'", text, err, needle);
    free(err);
    assert_null(embedder_new(&s, in, &err));
    free(err);
}

static void test_output_dims(void **state)
{
    (void)state;
    embed_shape m = image_shape(28, 28, 1), c = image_shape(32, 32, 3);
    embed_shape v = {1, 10, 1, true};
    dim_is("{\"extractor\": \"raw\"}", m, 784);
    dim_is("{\"extractor\": \"downsample\"}", m, 196);
    dim_is("{\"extractor\": \"downsample\", \"factor\": 3}", m, 100);
    dim_is("{\"extractor\": \"profile\"}", m, 56);
    dim_is("{\"extractor\": \"histogram\"}", m, 64);
    dim_is("{\"extractor\": \"lbp\"}", m, 944);
    dim_is("{\"extractor\": \"hog\"}", m, 1296);
    dim_is("{\"extractor\": \"hog\", \"cell\": 7, \"block\": 1, \"bins\": 8}", m, 128);
    dim_is("{\"extractor\": \"pca\"}", m, 50);
    dim_is("{\"extractor\": \"random_projection\"}", m, 256);
    dim_is("{\"extractor\": \"random_fourier\"}", m, 512);
    dim_is("{\"extractor\": \"random_conv\"}", m, 512);
    dim_is("{\"extractor\": \"random_conv\", \"width\": 8, \"grid\": 2}", m, 32);
    dim_is("{\"extractor\": \"raw\"}", c, 3072);
    dim_is("{\"extractor\": \"downsample\", \"factor\": 4}", c, 192);
    dim_is("{\"extractor\": \"profile\"}", c, 192);
    dim_is("{\"extractor\": \"histogram\", \"bins\": 8, \"grid\": 1}", c, 24);
    dim_is("{\"extractor\": \"hog\", \"cell\": 8}", c, 324);
    dim_is("{\"extractor\": \"pca\", \"k\": 100}", c, 100);
    dim_is("{\"extractor\": \"raw\"}", v, 10);
    dim_is("{\"extractor\": \"pca\", \"k\": 10}", v, 10);
    dim_is("{\"extractor\": \"random_projection\", \"k\": 4}", v, 4);
    dim_is("{\"extractor\": \"random_fourier\", \"k\": 4}", v, 4);
    dim_fails("{\"extractor\": \"hog\"}", v, "extractor 'hog' needs images");
    dim_fails("{\"extractor\": \"random_conv\"}", v, "needs images");
    dim_fails("{\"extractor\": \"pca\", \"k\": 11}", v, "k = 11 is more than the 10 input values");
    dim_fails("{\"extractor\": \"pca\"}", image_shape(64, 64, 3), "12288 values are more than");
    dim_fails("{\"extractor\": \"hog\", \"cell\": 8}", image_shape(12, 28, 1), "fewer than one "
              "block");
    dim_fails("{\"extractor\": \"lbp\", \"grid\": 8}", image_shape(9, 9, 1), "too small for grid");
    dim_fails("{\"extractor\": \"histogram\", \"grid\": 8}", image_shape(4, 9, 1), "grid 8 is "
              "larger");
    dim_fails("{\"extractor\": \"raw\"}", image_shape(0, 9, 1), "empty or impossible");
}

/* ---- shapes and determinism --------------------------------------------------------- */

static uint8_t *random_images(size_t n, size_t per, uint64_t seed)
{
    rng_state = seed;
    uint8_t *b = xmalloc(n * per);
    for (size_t i = 0; i < n * per; i++)
        b[i] = (uint8_t)(rnd() % 256);
    return b;
}

static float *embed_ok(const embed_spec *s, embed_shape shape, const embed_input *train,
                       const embed_input *in)
{
    char *err = NULL;
    embedder *e = embedder_new(s, shape, &err);
    if (!e)
        fail_msg("%s: %s", embed_kind_name(s->kind), err);
    if (embed_needs_fit(s) && embedder_fit(e, train, &err) != 0)
        fail_msg("%s: %s", embed_kind_name(s->kind), err);
    size_t dim = embedder_dim(e);
    assert_int_equal(dim, embed_output_dim(s, shape));
    float *out = xmalloc(in->n * dim * sizeof *out);
    for (size_t i = 0; i < in->n * dim; i++)
        out[i] = NAN;
    if (embedder_apply(e, in, out, &err) != 0)
        fail_msg("%s: %s", embed_kind_name(s->kind), err);
    for (size_t i = 0; i < in->n * dim; i++)
        if (!isfinite(out[i]))
            fail_msg("%s: output %zu is not finite", embed_kind_name(s->kind), i);
    embedder_free(e);
    return out;
}

static void test_shapes_and_determinism(void **state)
{
    (void)state;
    const embed_shape shapes[2] = {image_shape(28, 28, 1), image_shape(16, 12, 3)};
    for (int si = 0; si < 2; si++) {
        embed_shape sh = shapes[si];
        size_t per = sh.height * sh.width * sh.channels, n = 300;
        uint8_t *u8 = random_images(n, per, 42 + (uint64_t)si);
        float *f32 = xmalloc(n * per * sizeof *f32);
        for (size_t i = 0; i < n * per; i++)
            f32[i] = (float)u8[i] * (1.0f / 255.0f); /* as the u8 path scales */
        embed_input in_u8 = {n, sh, u8, NULL}, in_f32 = {n, sh, NULL, f32};
        for (size_t k = 0; k < NKINDS; k++) {
            char text[160];
            snprintf(text, sizeof text, "{\"extractor\": \"%s\"%s}", all_kinds[k],
                     strcmp(all_kinds[k], "pca") == 0 ? ", \"k\": 20" : "");
            embed_spec s = spec_of(text);
            size_t dim = embed_output_dim(&s, sh);
            assert_true(dim > 0);
            float *a = embed_ok(&s, sh, &in_u8, &in_u8);
            float *b = embed_ok(&s, sh, &in_u8, &in_u8);
            if (memcmp(a, b, n * dim * sizeof *a) != 0)
                fail_msg("%s: two runs differ", all_kinds[k]);
            /* uint8 and the same pixels as floats in [0, 1] agree */
            float *c = embed_ok(&s, sh, &in_f32, &in_f32);
            for (size_t i = 0; i < n * dim; i++)
                if (fabsf(a[i] - c[i]) > 1e-4f * (1 + fabsf(a[i])))
                    fail_msg("%s: u8 and f32 inputs differ at %zu: %g vs %g", all_kinds[k], i,
                             (double)a[i], (double)c[i]);
            /* one example alone gives its row of the batch */
            embed_input one = {1, sh, u8 + 7 * per, NULL};
            float *d = embed_ok(&s, sh, &in_u8, &one);
            for (size_t i = 0; i < dim; i++)
                if (fabsf(a[7 * dim + i] - d[i]) > 1e-4f * (1 + fabsf(d[i])))
                    fail_msg("%s: row 7 alone differs at %zu", all_kinds[k], i);
            /* another seed, other features (for the seeded ones) */
            if (s.kind == EMBED_RANDOM_PROJECTION || s.kind == EMBED_RANDOM_FOURIER ||
                s.kind == EMBED_RANDOM_CONV) {
                s.seed = 1234;
                float *e = embed_ok(&s, sh, &in_u8, &in_u8);
                assert_true(memcmp(a, e, n * dim * sizeof *a) != 0);
                free(e);
            }
            free(a);
            free(b);
            free(c);
            free(d);
        }
        free(u8);
        free(f32);
    }
}

static void test_apply_errors(void **state)
{
    (void)state;
    embed_shape sh = image_shape(8, 8, 1);
    uint8_t px[64 * 4] = {0};
    embed_input in = {4, sh, px, NULL};
    embed_spec s = spec_of("{\"extractor\": \"pca\", \"k\": 2}");
    char *err = NULL;
    embedder *e = embedder_new(&s, sh, &err);
    assert_non_null(e);
    float out[8];
    assert_int_equal(embedder_apply(e, &in, out, &err), -1);
    assert_non_null(strstr(err, "must be fitted on a training set first"));
    free(err);
    embed_input one = {1, sh, px, NULL};
    assert_int_equal(embedder_fit(e, &one, &err), -1);
    assert_non_null(strstr(err, "at least 2 training examples"));
    free(err);
    embed_input other = {4, image_shape(4, 16, 1), px, NULL};
    assert_int_equal(embedder_fit(e, &other, &err), -1);
    assert_non_null(strstr(err, "was made for images of 8x8x1, the input is images of 4x16x1"));
    free(err);
    embed_input both = {4, sh, px, (const float *)px};
    assert_int_equal(embedder_fit(e, &both, &err), -1);
    assert_non_null(strstr(err, "exactly one of u8 and f32"));
    free(err);
    embedder_free(e);

    /* embed_dataset: texts, images-only extractors on vectors, fitting without a train set */
    dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.kind = DATASET_TEXTS;
    float *o;
    size_t dim;
    s = spec_of("{\"extractor\": \"raw\"}");
    assert_int_equal(embed_dataset(&s, NULL, &ds, &o, &dim, &err), -1);
    assert_non_null(strstr(err, "this dataset holds texts"));
    free(err);
    float feats[6] = {1, 2, 3, 4, 5, 6};
    ds.kind = DATASET_FEATURES;
    ds.n = 3;
    ds.dim = 2;
    ds.features = feats;
    assert_int_equal(embed_dataset(&s, NULL, &ds, &o, &dim, &err), 0);
    assert_int_equal(dim, 2);
    assert_memory_equal(o, feats, sizeof feats);
    free(o);
    s = spec_of("{\"extractor\": \"hog\"}");
    assert_int_equal(embed_dataset(&s, NULL, &ds, &o, &dim, &err), -1);
    assert_non_null(strstr(err, "needs images; the input is a feature vector"));
    free(err);
    s = spec_of("{\"extractor\": \"pca\", \"k\": 1}");
    assert_int_equal(embed_dataset(&s, NULL, &ds, &o, &dim, &err), -1);
    assert_non_null(strstr(err, "give a training dataset"));
    free(err);
    assert_int_equal(embed_dataset(&s, &ds, &ds, &o, &dim, &err), 0);
    assert_int_equal(dim, 1);
    /* the points lie on a line: one component explains them, centred projections ±√2·2 */
    assert_float_equal(o[0], -2.828427f, 1e-4);
    assert_float_equal(o[1], 0, 1e-4);
    assert_float_equal(o[2], 2.828427f, 1e-4);
    free(o);
}

/* ---- values ------------------------------------------------------------------------- */

static void test_values(void **state)
{
    (void)state;
    embed_shape sh = image_shape(12, 12, 1);
    uint8_t *u8 = random_images(3, 144, 7);
    embed_input in = {3, sh, u8, NULL};
    float *o;

    o = embed_ok((const embed_spec[]){spec_of("{\"extractor\": \"raw\"}")}, sh, &in, &in);
    for (size_t i = 0; i < 3 * 144; i++)
        assert_true(o[i] == (float)u8[i] * (1.0f / 255.0f));
    free(o);

    /* histograms and LBP histograms sum to 1 per region */
    o = embed_ok((const embed_spec[]){spec_of("{\"extractor\": \"histogram\", \"grid\": 3, "
                                              "\"bins\": 5}")}, sh, &in, &in);
    for (size_t r = 0; r < 3 * 9; r++) {
        double s = 0;
        for (int b = 0; b < 5; b++)
            s += o[r * 5 + (size_t)b];
        assert_float_equal(s, 1, 1e-5);
    }
    free(o);
    o = embed_ok((const embed_spec[]){spec_of("{\"extractor\": \"lbp\", \"grid\": 2}")}, sh, &in,
                 &in);
    for (size_t r = 0; r < 3 * 4; r++) {
        double s = 0;
        for (int b = 0; b < 59; b++)
            s += o[r * 59 + (size_t)b];
        assert_float_equal(s, 1, 1e-5);
    }
    free(o);
    /* HOG blocks have unit norm (non-flat images) and entries ≤ the clip after renormalising */
    o = embed_ok((const embed_spec[]){spec_of("{\"extractor\": \"hog\"}")}, sh, &in, &in);
    size_t per = 4 * 9, blocks = 3 * 2 * 2;
    for (size_t b = 0; b < blocks; b++) {
        double s = 0;
        for (size_t k = 0; k < per; k++)
            s += (double)o[b * per + k] * o[b * per + k];
        assert_float_equal(s, 1, 1e-3);
    }
    free(o);
    free(u8);

    /* A constant image: downsample and profile give the constant, HOG no gradient at all. */
    uint8_t flat[144];
    memset(flat, 51, sizeof flat);
    embed_input fin = {1, sh, flat, NULL};
    o = embed_ok((const embed_spec[]){spec_of("{\"extractor\": \"downsample\", \"factor\": 5}")},
                 sh, &fin, &fin);
    for (int i = 0; i < 9; i++)
        assert_float_equal(o[i], 0.2f, 1e-6);
    free(o);
    o = embed_ok((const embed_spec[]){spec_of("{\"extractor\": \"profile\"}")}, sh, &fin, &fin);
    for (int i = 0; i < 24; i++)
        assert_float_equal(o[i], 0.2f, 1e-6);
    free(o);
    o = embed_ok((const embed_spec[]){spec_of("{\"extractor\": \"hog\", \"cell\": 3}")}, sh,
                 &fin, &fin);
    double s = 0;
    for (size_t i = 0; i < 9 * 4 * 9; i++)
        s += fabs(o[i]);
    assert_float_equal(s, 0, 1e-6);
    free(o);
}

/* ---- PCA recovers a low-rank subspace ----------------------------------------------- */

static void test_pca_low_rank(void **state)
{
    (void)state;
    const size_t n = 400, D = 40, r = 3;
    rng_state = 99;
    double basis[3][40], mean[40];
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < D; j++)
            basis[i][j] = rnd_normal() * (double)(3 - i); /* distinct variances */
    for (size_t j = 0; j < D; j++)
        mean[j] = rnd_normal() * 5;
    float *x = xmalloc(n * D * sizeof *x);
    for (size_t p = 0; p < n; p++) {
        double z[3] = {rnd_normal(), rnd_normal(), rnd_normal()};
        for (size_t j = 0; j < D; j++) {
            double v = mean[j];
            for (size_t i = 0; i < r; i++)
                v += z[i] * basis[i][j];
            x[p * D + j] = (float)v;
        }
    }
    embed_shape sh = {1, D, 1, true};
    embed_input in = {n, sh, NULL, x};
    embed_spec s = spec_of("{\"extractor\": \"pca\", \"k\": 3}");
    char *err = NULL;
    embedder *e = embedder_new(&s, sh, &err);
    assert_non_null(e);
    assert_int_equal(embedder_fit(e, &in, &err), 0);
    /* Components: the images of the unit vectors, minus that of 0. */
    float *unit = xcalloc((D + 1) * D, sizeof *unit);
    for (size_t j = 0; j < D; j++)
        unit[(j + 1) * D + j] = 1;
    embed_input uin = {D + 1, sh, NULL, unit};
    float *uo = xmalloc((D + 1) * 3 * sizeof *uo);
    assert_int_equal(embedder_apply(e, &uin, uo, &err), 0);
    double comp[3][40];
    for (size_t c = 0; c < 3; c++)
        for (size_t j = 0; j < D; j++)
            comp[c][j] = (double)uo[(j + 1) * 3 + c] - uo[c];
    /* orthonormal */
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            double dot = 0;
            for (size_t j = 0; j < D; j++)
                dot += comp[a][j] * comp[b][j];
            assert_float_equal(dot, a == b ? 1 : 0, 1e-3);
        }
    /* every basis vector lies in their span */
    for (size_t i = 0; i < r; i++) {
        double res[40], nb = 0, nr = 0;
        memcpy(res, basis[i], sizeof res);
        for (size_t c = 0; c < 3; c++) {
            double dot = 0;
            for (size_t j = 0; j < D; j++)
                dot += basis[i][j] * comp[c][j];
            for (size_t j = 0; j < D; j++)
                res[j] -= dot * comp[c][j];
        }
        for (size_t j = 0; j < D; j++) {
            nb += basis[i][j] * basis[i][j];
            nr += res[j] * res[j];
        }
        if (sqrt(nr / nb) > 1e-3)
            fail_msg("basis vector %zu is %.2e outside the PCA subspace", i, sqrt(nr / nb));
    }
    /* the data are reconstructed from 3 numbers each: x ≈ sample mean + y·C */
    double smean[40] = {0};
    for (size_t p = 0; p < n; p++)
        for (size_t j = 0; j < D; j++)
            smean[j] += x[p * D + j] / (double)n;
    float *y = xmalloc(n * 3 * sizeof *y);
    assert_int_equal(embedder_apply(e, &in, y, &err), 0);
    double worst = 0;
    for (size_t p = 0; p < n; p++) {
        double num = 0, den = 0;
        for (size_t j = 0; j < D; j++) {
            double v = smean[j];
            for (size_t c = 0; c < 3; c++)
                v += (double)y[p * 3 + c] * comp[c][j];
            num += (v - x[p * D + j]) * (v - x[p * D + j]);
            den += (x[p * D + j] - smean[j]) * (x[p * D + j] - smean[j]);
        }
        if (sqrt(num / den) > worst)
            worst = sqrt(num / den);
    }
    if (worst > 5e-3)
        fail_msg("reconstruction error %.2e", worst);
    /* the first component has the largest variance, and whitening makes each unit */
    double var[3] = {0};
    for (size_t p = 0; p < n; p++)
        for (size_t c = 0; c < 3; c++)
            var[c] += (double)y[p * 3 + c] * y[p * 3 + c] / (double)(n - 1);
    assert_true(var[0] > var[1] && var[1] > var[2]);
    embedder_free(e);
    s.whiten = true;
    e = embedder_new(&s, sh, &err);
    assert_int_equal(embedder_fit(e, &in, &err), 0);
    assert_int_equal(embedder_apply(e, &in, y, &err), 0);
    for (size_t c = 0; c < 3; c++) {
        double v = 0, m = 0;
        for (size_t p = 0; p < n; p++)
            m += y[p * 3 + c] / (double)n;
        for (size_t p = 0; p < n; p++)
            v += (y[p * 3 + c] - m) * (y[p * 3 + c] - m) / (double)(n - 1);
        assert_float_equal(v, 1, 1e-3);
    }
    embedder_free(e);
    free(y);
    free(unit);
    free(uo);
    free(x);
}

/* ---- Fashion-MNIST 1-NN ------------------------------------------------------------- */

/* Fraction of test points whose nearest training point (Euclidean) has another label. */
static double nn_error(const float *tr, const int32_t *ytr, size_t ntr, const float *te,
                       const int32_t *yte, size_t nte, size_t dim)
{
    size_t wrong = 0;
    for (size_t i = 0; i < nte; i++) {
        double best = INFINITY;
        size_t arg = 0;
        for (size_t j = 0; j < ntr; j++) {
            /* four partial sums: the same arithmetic, without one long dependency chain */
            const float *a = te + i * dim, *b = tr + j * dim;
            double d0 = 0, d1 = 0, d2 = 0, d3 = 0;
            size_t k = 0;
            for (; k + 4 <= dim; k += 4) {
                double t0 = (double)a[k] - b[k], t1 = (double)a[k + 1] - b[k + 1];
                double t2 = (double)a[k + 2] - b[k + 2], t3 = (double)a[k + 3] - b[k + 3];
                d0 += t0 * t0;
                d1 += t1 * t1;
                d2 += t2 * t2;
                d3 += t3 * t3;
            }
            for (; k < dim; k++) {
                double t = (double)a[k] - b[k];
                d0 += t * t;
            }
            double d = (d0 + d1) + (d2 + d3);
            if (d < best) {
                best = d;
                arg = j;
            }
        }
        wrong += ytr[arg] != yte[i];
    }
    return (double)wrong / (double)nte;
}

static void test_fashion_mnist_quality(void **state)
{
    (void)state;
    if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        print_message("skipped: Fashion-MNIST is not installed (" FMNIST "; Debian package "
                      "dataset-fashion-mnist)\n");
        skip();
    }
    dataset_spec spec;
    dataset *train, *test;
    char *err = NULL;
    dataset_spec_init(&spec, DATASET_IDX, FMNIST "/train-images-idx3-ubyte.gz");
    spec.stop = 2000;
    if (dataset_load(&spec, &train, &err) != 0)
        fail_msg("%s", err);
    dataset_spec_init(&spec, DATASET_IDX, FMNIST "/t10k-images-idx3-ubyte.gz");
    spec.stop = 500;
    if (dataset_load(&spec, &test, &err) != 0)
        fail_msg("%s", err);
    assert_int_equal(train->n, 2000);
    assert_int_equal(test->n, 500);
    assert_non_null(train->labels);
    const char *specs[] = {
        "{\"extractor\": \"raw\"}",
        "{\"extractor\": \"downsample\"}",
        "{\"extractor\": \"profile\"}",
        "{\"extractor\": \"histogram\"}",
        "{\"extractor\": \"lbp\"}",
        "{\"extractor\": \"hog\"}",
        "{\"extractor\": \"pca\", \"k\": 50}",
        "{\"extractor\": \"pca\", \"k\": 10}",
        "{\"extractor\": \"random_projection\", \"k\": 64}",
        "{\"extractor\": \"random_fourier\", \"k\": 512}",
        "{\"extractor\": \"random_conv\", \"width\": 8, \"ksize\": 3}",
        "{\"extractor\": \"random_conv\", \"width\": 64, \"ksize\": 5}",
    };
    const size_t ns = sizeof specs / sizeof *specs;
    double errs[sizeof specs / sizeof *specs];
    print_message("1-NN error, Fashion-MNIST train[:2000] → t10k[:500] (chance 0.9):\n");
    for (size_t i = 0; i < ns; i++) {
        embed_spec s = spec_of(specs[i]);
        float *ftr = NULL, *fte = NULL;
        size_t dtr = 0, dte = 0;
        if (embed_dataset(&s, train, train, &ftr, &dtr, &err) != 0 ||
            embed_dataset(&s, train, test, &fte, &dte, &err) != 0)
            fail_msg("%s: %s", specs[i], err);
        assert_int_equal(dtr, dte);
        errs[i] = nn_error(ftr, train->labels, train->n, fte, test->labels, test->n, dtr);
        print_message("  %-58s dim %5zu  error %.3f\n", specs[i], dtr, errs[i]);
        free(ftr);
        free(fte);
    }
    /* raw pixels: 0.1503 on the full set, higher on this subset */
    assert_true(errs[0] > 0.15 && errs[0] < 0.30);
    size_t distinct = 0;
    for (size_t i = 0; i < ns; i++) {
        assert_true(errs[i] < 0.75); /* well above chance */
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= fabs(errs[i] - errs[j]) < 1e-9;
        distinct += !seen;
    }
    assert_true(distinct >= ns / 2);
    dataset_free(train);
    dataset_free(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_json),
        cmocka_unit_test(test_output_dims),
        cmocka_unit_test(test_shapes_and_determinism),
        cmocka_unit_test(test_apply_errors),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_pca_low_rank),
        cmocka_unit_test(test_fashion_mnist_quality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
