/* executor/workers/embed/: the `builtin` model runner's feature extractors — C functions from
 * images (or feature vectors) to float32 features that need no download. Each is
 * deterministic: the same spec (seed included), the same training set (for those that are
 * fitted) and the same input give the same features on a given build.
 *
 *   embed_spec spec;  char *err;
 *   if (embed_spec_from_json(json, &spec, &err) != 0) …          // {"extractor": "pca", "k": 32}
 *   embed_shape in = embed_shape_of(train);                     // 28×28×1 for Fashion-MNIST
 *   embedder *e = embedder_new(&spec, in, &err);
 *   if (embed_needs_fit(&spec)) embedder_fit(e, &train_input, &err);
 *   float *out = malloc(n * embedder_dim(e) * sizeof(float));
 *   embedder_apply(e, &input, out, &err);
 *   embedder_free(e);
 * or embed_dataset() for the whole sequence on datasets.
 *
 * Pixels: uint8 images are scaled to [0, 1] (v / 255); float images and feature vectors are
 * used as they are. Images are height × width × channels, channels last.
 *
 * Extractors (options and defaults; dims for a 28×28×1 input):
 *   raw                 pixels in [0, 1]; H·W·C (784)
 *   downsample          factor=2: mean over factor×factor blocks (partial blocks at the edge
 *                       averaged over what they hold); ⌈H/f⌉·⌈W/f⌉·C (196)
 *   profile             row and column means per channel; (H + W)·C (56)
 *   histogram           bins=16, grid=2: intensity histograms of grid×grid regions per
 *                       channel, each normalised to sum 1; grid²·C·bins (64)
 *   lbp                 grid=4: histograms of the 59 uniform 8-neighbour local binary patterns
 *                       of the grey image over grid×grid regions, normalised; grid²·59 (944)
 *   hog                 cell=4, bins=9, block=2: histograms of oriented gradients (unsigned,
 *                       [-1 0 1] gradients of the grey image, votes split between the two
 *                       nearest bins), block×block cells L2-Hys normalised with a stride of one
 *                       cell; (⌊H/cell⌋-block+1)·(⌊W/cell⌋-block+1)·block²·bins (1296)
 *   pca                 k=50, whiten=false: projection on the k leading principal components
 *                       of the training set (fit; covariance in double precision, LAPACK
 *                       dsyevd; the sign of each component makes its largest coefficient
 *                       positive); k (50). Inputs of at most 4096 values.
 *   random_projection   k=256, seed=0: x·R with R[i][j] ~ N(0, 1/k); k (256)
 *   random_fourier      k=512, gamma=0 (0 = 16 / (H·W·C)), seed=0: random Fourier features
 *                       of the RBF kernel exp(-gamma‖x-y‖²): sqrt(2/k)·cos(x·W + b), W ~ N(0,
 *                       2·gamma), b ~ U[0, 2π); k (512)
 *   random_conv         width=32, ksize=3, grid=4, seed=0: width random ksize×ksize×C filters
 *                       (Gaussian, then zero mean and unit norm), zero-padded "same"
 *                       convolution, ReLU, average pooling over grid×grid regions;
 *                       grid²·width (512)
 * raw, pca, random_projection and random_fourier also take flat feature vectors (CSV/NPY
 * datasets); the others need images.
 */
#ifndef RANKQL_EXECUTOR_WORKERS_EMBED_EMBED_H
#define RANKQL_EXECUTOR_WORKERS_EMBED_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "datasets/dataset.h"

typedef enum embed_kind {
    EMBED_RAW,
    EMBED_DOWNSAMPLE,
    EMBED_PROFILE,
    EMBED_HISTOGRAM,
    EMBED_LBP,
    EMBED_HOG,
    EMBED_PCA,
    EMBED_RANDOM_PROJECTION,
    EMBED_RANDOM_FOURIER,
    EMBED_RANDOM_CONV,
    EMBED_KIND_COUNT
} embed_kind;

typedef struct embed_spec {
    embed_kind kind;
    uint64_t seed;     /* random_projection, random_fourier, random_conv */
    int k;             /* pca, random_projection, random_fourier */
    bool whiten;       /* pca */
    double gamma;      /* random_fourier; 0 = 16 / input size */
    int factor;        /* downsample */
    int bins;          /* histogram, hog */
    int grid;          /* histogram, lbp, random_conv */
    int cell, block;   /* hog */
    int width, ksize;  /* random_conv */
} embed_spec;

/* Input geometry: an image (height × width × channels), or with flat = true a feature
 * vector of width values (height = channels = 1). */
typedef struct embed_shape {
    size_t height, width, channels;
    bool flat;
} embed_shape;

/* A batch of inputs: exactly one of u8 (scaled by 1/255) and f32 is set. */
typedef struct embed_input {
    size_t n;
    embed_shape shape;
    const uint8_t *u8;
    const float *f32;
} embed_input;

/* The extractor's name ("pca", …) and the reverse; -1 for an unknown name. */
const char *embed_kind_name(embed_kind kind);
int embed_kind_parse(const char *name, embed_kind *kind);

/* The defaults of one extractor. */
void embed_spec_init(embed_spec *spec, embed_kind kind);

/* {"extractor": "random_conv", "width": 64, "ksize": 5, "seed": 7}: the extractor's name and
 * its options (integers, "gamma" a number, "whiten" a boolean); an unknown extractor, an
 * option the extractor does not take, a wrong type or a value out of range is an error
 * naming it. */
int embed_spec_from_json(const json_t *obj, embed_spec *spec, char **err);

/* The canonical JSON of a spec: the extractor and every option it takes, defaults filled
 * in — the model's identity for caches. Caller json_decref's it. */
json_t *embed_spec_to_json(const embed_spec *spec);

/* Output dimension for inputs of shape `in`, or 0 when the spec does not apply to it
 * (embed_check says why). */
size_t embed_output_dim(const embed_spec *spec, embed_shape in);
int embed_check(const embed_spec *spec, embed_shape in, char **err);

/* Whether embedder_fit must see a training set first (pca). */
bool embed_needs_fit(const embed_spec *spec);

typedef struct embedder embedder;

/* Draws the random parameters; NULL with *err when the spec does not fit the shape. */
embedder *embedder_new(const embed_spec *spec, embed_shape in, char **err);
/* Fits on a training batch (pca); a no-op for the others. 0 or -1 with *err. */
int embedder_fit(embedder *e, const embed_input *train, char **err);
/* out: in->n × embedder_dim(e) floats. 0 or -1 with *err (wrong shape, not fitted). */
int embedder_apply(const embedder *e, const embed_input *in, float *out, char **err);
size_t embedder_dim(const embedder *e);
void embedder_free(embedder *e);

/* The shape and pixels of a loaded dataset (images or feature vectors; texts are an error),
 * rows [start, start + count). */
embed_shape embed_shape_of(const dataset *ds);
int embed_input_of(const dataset *ds, size_t start, size_t count, embed_input *in, char **err);

/* Fits on `train` when the extractor needs it and embeds all of `ds`: *out = ds->n × *dim
 * floats (caller frees). train may be NULL for extractors that need no fit. */
int embed_dataset(const embed_spec *spec, const dataset *train, const dataset *ds, float **out,
                  size_t *dim, char **err);

#endif
