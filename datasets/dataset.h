/* datasets/: readers that load a dataset file (or folder) into memory, and the checks that
 * REGISTER DATASET stores (size, number of classes, content digest).
 *
 *   dataset_spec spec;
 *   dataset_spec_init(&spec, DATASET_IDX, "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
 *   spec.start = 0; spec.stop = 1000;            // optional slice [start, stop)
 *   dataset *ds; char *err;
 *   if (dataset_load(&spec, &ds, &err) != 0) { fprintf(stderr, "%s\n", err); free(err); }
 *   … ds->n, ds->u8, ds->labels, ds->num_classes …
 *   dataset_free(ds);
 *
 * Kinds of data:
 *   DATASET_IMAGES    n × height × width × channels pixels, row-major, channels last (HWC),
 *                     uint8 (u8) or float (f32; meant to be in [0, 1]);
 *   DATASET_FEATURES  n × dim float32 feature vectors;
 *   DATASET_TEXTS     n NUL-terminated UTF-8 strings.
 * Labels are int32 in [0, num_classes), one per example, or absent (labels == NULL,
 * num_classes == 0) where the source has none (an NPY file without a labels file, an IDX
 * images file alone, a text file without labels).
 *
 * Formats (spec->format) and where their labels come from:
 *   IDX          path = images file (idx3: n×H×W uint8, or idx4: n×H×W×C uint8); labels_path =
 *                idx1 uint8 labels. Without labels_path, a file beside the images whose name
 *                has "labels-idx1" where the images file has "images-idx3" is used when it
 *                exists (the MNIST naming; with ".gz" added or removed too). Either file may
 *                be gzip'd.
 *   CSV          numeric feature columns + one label column (label_column by name, which needs
 *                a header, or label_index, negative = from the end; default: the last column).
 *                header: yes / no / auto (auto: the first row is a header when a field other
 *                than the label is not a number). skip_rows physical lines are skipped first
 *                (the sklearn files' "n_samples,n_features,…" line). RFC 4180 quoting, CRLF,
 *                blank lines skipped, any delimiter (default ',').
 *   NPY          path = features array: (n, d) or (n,) → feature vectors; (n, H, W) or
 *                (n, H, W, C) → images (uint8 arrays stay uint8, other dtypes become float
 *                pixels). labels_path = a 1-D (or (n, 1)) integer array, or a float array of
 *                integral values. dtypes: bool, (u)int8/16/32/64, float32, float64, either byte
 *                order; C order only; format versions 1, 2 and 3.
 *   NPZ          a zip (stored or deflate, zip64 included) of .npy arrays: the features are
 *                features_key or the first of "features", "x", "X" present; the labels
 *                labels_key or the first of "labels", "y", "Y" (absent = unlabelled).
 *   IMAGEFOLDER  path = a folder with one sub-folder per class; classes are the sub-folders
 *                sorted by name (bytewise), label = position in that order; examples are
 *                ordered by class, then by file name. PNG and JPEG files (sniffed by content,
 *                chosen by extension .png/.jpg/.jpeg, any case); other files and names that
 *                start with '.' are ignored. All images must have the same width and height;
 *                channels = spec->channels (1 or 3), or when 0 those of the first image, the
 *                others converted (alpha is dropped, composited on black).
 *   TEXT         one example per line (LF or CRLF; a final newline ends the last line). Labels
 *                from labels_path (one per line) or, with tab_labels, "label<TAB>text" lines.
 *
 * Labels from text (CSV, TEXT): when every label is an integer (a number with an integral
 * value) they are used as they are and must be ≥ 0; otherwise every label is a string and
 * the distinct strings are numbered 0..C-1 in the order they are first seen in the file
 * (class_names holds them). The mapping and num_classes are computed over the whole source,
 * not only the slice, so slices of one file agree on class numbers. num_classes is
 * spec->num_classes when given (> 0; a label ≥ it is an error), else max label + 1 (or the
 * number of classes of an image folder). Labels must be below DATASET_MAX_CLASSES (2^24).
 *
 * Slices: [start, stop) as in SHiFT. stop = DATASET_END (-1) reads to the end; a stop past
 * the end is clamped; start past the end, a negative start, or stop < start is an error.
 * The whole source is read and checked whichever slice is asked for.
 *
 * Digest: SHA-256 (hex) of the bytes of the files read, as stored (before gunzip). A source
 * made of one file has that file's SHA-256 (what `sha256sum FILE` prints). A source made of
 * several has the SHA-256 of a sha256sum-style manifest, one line per file in reading order,
 * "<hex>  <name>\n", where name is the role ("images", "labels", "features", "text") for
 * IDX/NPY/TEXT and "class/file" for image folders: moving the files keeps the digest, any
 * change of content, class or order changes it. The slice is not part of the digest.
 *
 * Labels only: with spec->labels_only a source without labels is an error, and a CSV file
 * may consist of the label column alone (an NPY features array may be (n, 0)): the dataset
 * then has feature vectors of dim 0 (features is a valid, empty allocation).
 *
 * Errors: -1 and *err = one line naming the file and the cause (caller frees); nothing is
 * left allocated. Readers check every length and count before use, so arbitrary bytes give
 * an error, never a crash; a gzip'd file may not expand past spec->max_bytes.
 */
#ifndef RANKQL_DATASETS_DATASET_H
#define RANKQL_DATASETS_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef enum dataset_format {
    DATASET_IDX,
    DATASET_CSV,
    DATASET_NPY,
    DATASET_NPZ,
    DATASET_IMAGEFOLDER,
    DATASET_TEXT,
} dataset_format;

typedef enum dataset_kind {
    DATASET_IMAGES,
    DATASET_FEATURES,
    DATASET_TEXTS,
} dataset_kind;

typedef enum dataset_pixel {
    DATASET_PIXEL_U8,
    DATASET_PIXEL_F32,
} dataset_pixel;

typedef enum dataset_header {
    DATASET_HEADER_AUTO,
    DATASET_HEADER_YES,
    DATASET_HEADER_NO,
} dataset_header;

#define DATASET_END ((int64_t)-1)
#define DATASET_MAX_CLASSES (1 << 24) /* labels are < this (a corrupt label, not a class) */
#define DATASET_DEFAULT_MAX_BYTES ((uint64_t)8 << 30) /* 8 GiB per file, after gunzip */

/* What to read. Strings are borrowed (they must outlive dataset_load). Start from
 * dataset_spec_init(), which sets the defaults noted here. */
typedef struct dataset_spec {
    dataset_format format;
    const char *path;         /* file, or folder for IMAGEFOLDER */
    const char *labels_path;  /* IDX, NPY, TEXT: a separate labels file; NULL = none */
    int64_t start;            /* slice start, default 0 */
    int64_t stop;             /* slice stop (exclusive), default DATASET_END */
    int32_t num_classes;      /* 0 (default) = from the labels */
    uint64_t max_bytes;       /* limit on one file's size after gunzip; 0 = default */
    /* CSV */
    const char *label_column; /* label column by header name; NULL = use label_index */
    int label_index;          /* label column by position, negative from the end; default -1 */
    dataset_header header;    /* default AUTO */
    char delimiter;           /* default ',' */
    unsigned skip_rows;       /* physical lines skipped before the header/data; default 0 */
    /* NPZ */
    const char *features_key; /* array name without ".npy"; NULL = features, x, X */
    const char *labels_key;   /* NULL = labels, y, Y */
    /* TEXT */
    bool tab_labels;          /* lines are "label<TAB>text" */
    /* IMAGEFOLDER */
    int channels;             /* 0 (default) = as the first image, or 1 or 3 */
    /* A label source only (label-only data changes, docs/jobs.md): the source must have
     * labels, and CSV files (and NPY feature arrays of shape (n, 0)) may then have zero
     * feature columns (dim 0). Default false. */
    bool labels_only;
} dataset_spec;

typedef struct dataset {
    dataset_kind kind;
    size_t n;             /* examples loaded (the slice) */
    size_t total;         /* examples in the whole source */
    size_t start;         /* the slice is [start, start + n) of the source */
    /* DATASET_IMAGES */
    size_t height, width, channels;
    dataset_pixel pixel;
    uint8_t *u8;          /* n × height × width × channels when pixel == DATASET_PIXEL_U8 */
    float *f32;           /* same, when pixel == DATASET_PIXEL_F32 */
    /* DATASET_FEATURES */
    size_t dim;
    float *features;      /* n × dim */
    /* DATASET_TEXTS */
    char **texts;         /* n strings (pointers into one block) */
    /* labels */
    int32_t *labels;      /* n labels, or NULL */
    int32_t num_classes;  /* 0 without labels */
    char **class_names;   /* num_classes names (image folders, string labels) or NULL */
    char digest[65];      /* SHA-256 hex, see above */
    /* private */
    char *text_block_;
} dataset;

/* What REGISTER DATASET stores, from dataset_validate(). */
typedef struct dataset_info {
    dataset_kind kind;
    uint64_t size;            /* examples in the slice */
    uint64_t total;           /* examples in the source */
    bool has_labels;
    int32_t num_classes;      /* 0 without labels */
    int32_t min_label, max_label; /* over the slice; 0/-1 when empty or unlabelled */
    uint64_t empty_classes;   /* classes in [0, num_classes) with no example in the slice */
    size_t height, width, channels; /* images */
    size_t dim;               /* feature vectors */
    char digest[65];
} dataset_info;

void dataset_spec_init(dataset_spec *spec, dataset_format format, const char *path);

/* Fills *spec from a reader-configuration object as REGISTER DATASET stores it (the
 * datasets.spec column): "labels" (path), "num_classes", "slice" {"start", "stop"},
 * "max_bytes", "labels_only" (a boolean); CSV: "label_column" (name or integer index), "header" (true, false or
 * "auto"), "delimiter" (one character), "skip_rows"; NPZ: "features_key", "labels_key";
 * TEXT: "tab_labels"; IMAGEFOLDER: "channels". An unknown key, a key of another format or a
 * value of the wrong type is an error. Strings stay owned by obj. */
int dataset_spec_from_json(dataset_format format, const char *path, const json_t *obj,
                           dataset_spec *spec, char **err);

/* "idx", "csv", "npy", "npz", "imagefolder", "text" (the names the catalog uses). */
const char *dataset_format_name(dataset_format format);
int dataset_format_parse(const char *name, dataset_format *format);
const char *dataset_kind_name(dataset_kind kind);

/* Reads the source, checks it whole, keeps the slice. 0 and *out, or -1 and *err. */
int dataset_load(const dataset_spec *spec, dataset **out, char **err);
void dataset_free(dataset *ds);

/* Loads the source and summarises it for REGISTER DATASET. 0 or -1 with *err. */
int dataset_validate(const dataset_spec *spec, dataset_info *info, char **err);
void dataset_describe(const dataset *ds, dataset_info *info);

/* Bytes of one example's pixels (images) or floats (features); 0 for texts. */
size_t dataset_example_size(const dataset *ds);

#endif
