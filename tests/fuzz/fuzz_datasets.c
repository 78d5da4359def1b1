/* libFuzzer target for every reader of datasets/ (IDX plain and gzip'd, CSV, NPY, NPZ, TEXT,
 * image folders of PNG and JPEG files).
 *
 * Input layout: byte 0 picks the reader and its spec variant (see variants[] below), byte 1
 * holds option bits (a slice, a declared num_classes, labels_only, channels, and whether
 * dataset_validate runs too); the rest is the file's content. Variants that read two files
 * (images + labels, features + labels, text + labels, two images of an image folder) split
 * the content at the first SEP ("#LABELS#"); without one, the second file is empty.
 * The files are written under one temporary folder per process (made once, reused, removed
 * at exit), and spec.max_bytes is 1 MiB, so one input's work stays bounded.
 *
 * What is checked for every input:
 *   - dataset_load returns 0 with a dataset, or -1 with no dataset and an error that is one
 *     non-empty line of valid UTF-8 without control bytes;
 *   - a dataset's counts agree: start + n <= total, the kind matches the format, images have
 *     height, width and channels > 0 (channels 1, 3 or 4 when asked) and pixel memory of n ×
 *     H × W × C, features n × dim, texts n strings; labels lie in [0, num_classes) with
 *     num_classes in (0, DATASET_MAX_CLASSES] (or are absent with num_classes 0), a declared
 *     num_classes is kept, labels_only means labels; class_names has num_classes strings;
 *     the digest is 64 lowercase hex digits; every byte of every array is read (ASan checks
 *     the sizes);
 *   - dataset_describe agrees with the dataset, and dataset_validate agrees with
 *     dataset_load (same outcome, same summary).
 * A broken invariant aborts (libFuzzer saves the input); ASan reports leaks and memory
 * errors, UBSan undefined behaviour.
 *
 * FUZZ_DATASETS_VERBOSE=1 prints each input's outcome (to check the seeds of
 * tests/fuzz/make-corpus.py: build-fuzz/fuzz_datasets FILE...).
 *
 * Built by `make fuzz-build` and run by tests/fuzz/run-fuzz.sh.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/utf8.h"
#include "datasets/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_datasets: invariant broken at %s:%d: %s\n  ",         \
                    __FILE__, __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#define SEP "#LABELS#"
#define MAX_BYTES ((uint64_t)1 << 20)

/* How the second file (after SEP) is used. */
enum second { NONE, LABELS, AUTO_LABELS, IMAGE2 };

typedef struct variant {
    dataset_format format;
    const char *file;         /* first file's name, in the temp folder */
    const char *file2;        /* second file's name (when second != NONE) */
    enum second second;
    /* CSV */
    dataset_header header;
    char delimiter;
    const char *label_column;
    int label_index;
    unsigned skip_rows;
    /* NPZ */
    const char *features_key, *labels_key;
    /* TEXT */
    bool tab_labels;
} variant;

static const variant variants[] = {
    /* IDX: images alone, explicit labels file, labels found by the MNIST naming */
    {.format = DATASET_IDX, .file = "data.idx"},
    {.format = DATASET_IDX, .file = "imgs.idx", .file2 = "lbls.idx", .second = LABELS},
    {.format = DATASET_IDX, .file = "train-images-idx3-ubyte", .file2 = "train-labels-idx1-ubyte",
     .second = AUTO_LABELS},
    {.format = DATASET_IDX, .file = "t10k-images-idx3-ubyte.gz",
     .file2 = "t10k-labels-idx1-ubyte", .second = AUTO_LABELS},
    /* CSV */
    {.format = DATASET_CSV, .file = "a.csv", .header = DATASET_HEADER_AUTO, .delimiter = ',',
     .label_index = -1},
    {.format = DATASET_CSV, .file = "b.csv", .header = DATASET_HEADER_YES, .delimiter = ',',
     .label_column = "label", .label_index = -1},
    {.format = DATASET_CSV, .file = "c.csv", .header = DATASET_HEADER_NO, .delimiter = ';',
     .label_index = 0},
    {.format = DATASET_CSV, .file = "d.csv", .header = DATASET_HEADER_AUTO, .delimiter = '\t',
     .label_index = -2, .skip_rows = 1},
    {.format = DATASET_CSV, .file = "e.csv", .header = DATASET_HEADER_YES, .delimiter = '|',
     .label_column = "y", .label_index = -1, .skip_rows = 2},
    {.format = DATASET_CSV, .file = "f.csv", .header = DATASET_HEADER_NO, .delimiter = ',',
     .label_index = 2},
    /* NPY: features alone, with a labels array */
    {.format = DATASET_NPY, .file = "x.npy"},
    {.format = DATASET_NPY, .file = "x2.npy", .file2 = "y2.npy", .second = LABELS},
    /* NPZ: default keys, named keys */
    {.format = DATASET_NPZ, .file = "a.npz"},
    {.format = DATASET_NPZ, .file = "b.npz", .features_key = "f", .labels_key = "l"},
    /* TEXT: plain, tab labels, a labels file */
    {.format = DATASET_TEXT, .file = "a.txt"},
    {.format = DATASET_TEXT, .file = "b.txt", .tab_labels = true},
    {.format = DATASET_TEXT, .file = "c.txt", .file2 = "c.labels", .second = LABELS},
    /* image folders: class a holds file (and class b file2, when given) */
    {.format = DATASET_IMAGEFOLDER, .file = "png/a/x.png", .file2 = "png/b/y.PNG",
     .second = IMAGE2},
    {.format = DATASET_IMAGEFOLDER, .file = "jpg/a/x.jpg", .file2 = "jpg/b/y.jpeg",
     .second = IMAGE2},
    {.format = DATASET_IMAGEFOLDER, .file = "mix/a/x.png", .file2 = "mix/a/y.jpg",
     .second = IMAGE2},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

static char tmpdir[64];

static const char *const dirs[] = {"png", "png/a", "png/b", "jpg", "jpg/a", "jpg/b",
                                   "mix", "mix/a"};

static void cleanup(void)
{
    char path[256];
    for (size_t i = 0; i < NVARIANTS; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, variants[i].file);
        unlink(path);
        if (variants[i].file2) {
            snprintf(path, sizeof path, "%s/%s", tmpdir, variants[i].file2);
            unlink(path);
        }
    }
    for (size_t i = sizeof dirs / sizeof dirs[0]; i-- > 0;) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, dirs[i]);
        rmdir(path);
    }
    rmdir(tmpdir);
}

static void setup(void)
{
    if (tmpdir[0])
        return;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/fuzz-datasets.XXXXXX", t && strlen(t) < 30 ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("fuzz_datasets: mkdtemp");
        abort();
    }
    char path[256];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, dirs[i]);
        if (mkdir(path, 0700) != 0) {
            perror("fuzz_datasets: mkdir");
            abort();
        }
    }
    atexit(cleanup);
}

/* Writes the file (present = false: removes it). */
static void put(char *path, size_t size, const char *name, const uint8_t *data, size_t len,
                bool present)
{
    snprintf(path, size, "%s/%s", tmpdir, name);
    unlink(path);
    if (!present)
        return;
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s: %s", path, strerror(errno));
    CHECK(len == 0 || fwrite(data, 1, len, f) == len, "cannot write %s", path);
    CHECK(fclose(f) == 0, "cannot write %s", path);
}

static volatile uint64_t sink;

static void check_error(const char *err)
{
    CHECK(err != NULL, "error without a message");
    CHECK(err[0] != '\0', "empty error message");
    for (const char *p = err; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "error message with control byte 0x%02x: %s",
              (unsigned char)*p, err);
    CHECK(utf8_valid(err, strlen(err), NULL), "error message is not UTF-8: %s", err);
}

static void check_dataset(const dataset_spec *spec, const dataset *ds)
{
    CHECK(ds->start + ds->n <= ds->total && ds->start <= ds->total,
          "slice [%zu, +%zu) of %zu examples", ds->start, ds->n, ds->total);
    CHECK(ds->start == (size_t)spec->start, "start %zu, asked %lld", ds->start,
          (long long)spec->start);
    if (spec->stop != DATASET_END)
        CHECK(ds->start + ds->n <= (size_t)spec->stop, "slice past its stop");
    else
        CHECK(ds->start + ds->n == ds->total, "slice to the end stops early");
    uint64_t sum = 0;
    switch (ds->kind) {
    case DATASET_IMAGES: {
        CHECK(spec->format == DATASET_IDX || spec->format == DATASET_NPY ||
                  spec->format == DATASET_NPZ || spec->format == DATASET_IMAGEFOLDER,
              "images from format %d", (int)spec->format);
        CHECK(ds->height > 0 && ds->width > 0 && ds->channels > 0, "images of %zux%zux%zu",
              ds->height, ds->width, ds->channels);
        if (spec->format == DATASET_IMAGEFOLDER)
            CHECK(ds->channels == 1 || ds->channels == 3, "%zu channels", ds->channels);
        if (spec->channels)
            CHECK(ds->channels == (size_t)spec->channels, "%zu channels, %d asked", ds->channels,
                  spec->channels);
        size_t per = ds->height * ds->width * ds->channels;
        CHECK(per / ds->height / ds->width == ds->channels, "example size overflows");
        CHECK(dataset_example_size(ds) == per, "example size %zu", dataset_example_size(ds));
        if (ds->pixel == DATASET_PIXEL_U8) {
            CHECK(ds->n == 0 || ds->u8 != NULL, "no pixels");
            for (size_t i = 0; i < ds->n * per; i++)
                sum += ds->u8[i];
        } else {
            CHECK(ds->pixel == DATASET_PIXEL_F32, "pixel type %d", (int)ds->pixel);
            CHECK(ds->n == 0 || ds->f32 != NULL, "no pixels");
            for (size_t i = 0; i < ds->n * per; i++)
                sum += (uint64_t)(ds->f32[i] == ds->f32[i]);
        }
        break;
    }
    case DATASET_FEATURES:
        CHECK(spec->format == DATASET_CSV || spec->format == DATASET_NPY ||
                  spec->format == DATASET_NPZ,
              "features from format %d", (int)spec->format);
        CHECK(ds->dim > 0 || spec->labels_only, "features of dim 0 without labels_only");
        CHECK(ds->n == 0 || ds->features != NULL || ds->dim == 0, "no features");
        CHECK(dataset_example_size(ds) == ds->dim, "example size %zu",
              dataset_example_size(ds));
        for (size_t i = 0; i < ds->n * ds->dim; i++)
            sum += (uint64_t)(ds->features[i] == ds->features[i]);
        break;
    case DATASET_TEXTS:
        CHECK(spec->format == DATASET_TEXT, "texts from format %d", (int)spec->format);
        CHECK(ds->n == 0 || ds->texts != NULL, "no texts");
        for (size_t i = 0; i < ds->n; i++) {
            CHECK(ds->texts[i] != NULL, "text %zu is NULL", i);
            sum += strlen(ds->texts[i]);
        }
        break;
    default:
        CHECK(0, "kind %d", (int)ds->kind);
    }
    if (ds->labels) {
        CHECK(ds->num_classes > 0 && ds->num_classes <= DATASET_MAX_CLASSES, "num_classes %d",
              ds->num_classes);
        if (spec->num_classes > 0)
            CHECK(ds->num_classes == spec->num_classes, "num_classes %d, declared %d",
                  ds->num_classes, spec->num_classes);
        for (size_t i = 0; i < ds->n; i++)
            CHECK(ds->labels[i] >= 0 && ds->labels[i] < ds->num_classes,
                  "label %d of example %zu, %d classes", ds->labels[i], i, ds->num_classes);
    } else {
        CHECK(ds->num_classes == 0, "num_classes %d without labels", ds->num_classes);
        CHECK(!spec->labels_only, "labels_only but no labels");
        CHECK(ds->class_names == NULL, "class names without labels");
    }
    if (ds->class_names)
        for (int32_t c = 0; c < ds->num_classes; c++) {
            CHECK(ds->class_names[c] != NULL, "class name %d is NULL", c);
            sum += strlen(ds->class_names[c]);
        }
    CHECK(strlen(ds->digest) == 64 && strspn(ds->digest, "0123456789abcdef") == 64,
          "digest %.70s", ds->digest);
    sink += sum;

    dataset_info info;
    dataset_describe(ds, &info);
    CHECK(info.kind == ds->kind && info.size == ds->n && info.total == ds->total,
          "describe: kind %d size %llu total %llu", (int)info.kind,
          (unsigned long long)info.size, (unsigned long long)info.total);
    CHECK(info.has_labels == (ds->labels != NULL) && info.num_classes == ds->num_classes,
          "describe: labels");
    if (info.has_labels && ds->n > 0) {
        CHECK(0 <= info.min_label && info.min_label <= info.max_label &&
                  info.max_label < info.num_classes,
              "describe: labels %d..%d of %d classes", info.min_label, info.max_label,
              info.num_classes);
    }
    CHECK(info.empty_classes <= (uint64_t)(info.num_classes > 0 ? info.num_classes : 0),
          "describe: %llu empty classes of %d", (unsigned long long)info.empty_classes,
          info.num_classes);
    CHECK(strcmp(info.digest, ds->digest) == 0, "describe: digest");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    setup();
    const variant *v = &variants[data[0] % NVARIANTS];
    uint8_t opt = data[1];
    const uint8_t *body = data + 2;
    size_t len = size - 2, len2 = 0;
    const uint8_t *body2 = NULL;
    if (v->second != NONE) {
        const uint8_t *sep = memmem(body, len, SEP, strlen(SEP));
        if (sep) {
            body2 = sep + strlen(SEP);
            len2 = (size_t)(body + len - body2);
            len = (size_t)(sep - body);
        }
    }

    char path[256], path2[256];
    put(path, sizeof path, v->file, body, len, true);
    if (v->file2)
        put(path2, sizeof path2, v->file2, body2, len2, body2 != NULL);

    dataset_spec spec;
    if (v->format == DATASET_IMAGEFOLDER) {
        /* the class folders' parent */
        snprintf(path, sizeof path, "%s/%.*s", tmpdir, (int)strcspn(v->file, "/"), v->file);
    }
    dataset_spec_init(&spec, v->format, path);
    spec.max_bytes = MAX_BYTES;
    if (v->second == LABELS)
        spec.labels_path = path2;
    if (v->format == DATASET_CSV) {
        spec.header = v->header;
        spec.delimiter = v->delimiter;
        spec.label_column = v->label_column;
        spec.label_index = v->label_index;
        spec.skip_rows = v->skip_rows;
    }
    spec.features_key = v->features_key;
    spec.labels_key = v->labels_key;
    spec.tab_labels = v->tab_labels;
    /* option bits: 0-1 slice, 2-3 num_classes, 4 labels_only, 5-6 channels, 7 validate */
    switch (opt & 3) {
    case 1: spec.start = 1; break;
    case 2: spec.start = 0; spec.stop = 2; break;
    case 3: spec.start = 1; spec.stop = 1000; break;
    }
    static const int32_t classes[] = {0, 0, 3, 10};
    spec.num_classes = classes[(opt >> 2) & 3];
    spec.labels_only = (opt >> 4) & 1;
    if (v->format == DATASET_IMAGEFOLDER) {
        static const int chans[] = {0, 1, 3, 0};
        spec.channels = chans[(opt >> 5) & 3];
    }
    bool validate = (opt >> 7) & 1;

    dataset *ds = (dataset *)1;
    char *err = NULL;
    int rc = dataset_load(&spec, &ds, &err);
    CHECK(rc == 0 || rc == -1, "dataset_load returned %d", rc);
    dataset_info from_load;
    memset(&from_load, 0, sizeof from_load);
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_DATASETS_VERBOSE") != NULL;
    if (verbose) {
        if (rc == 0)
            fprintf(stderr, "variant %zu: kind %d, %zu of %zu examples, %d classes\n",
                    (size_t)(v - variants), (int)ds->kind, ds->n, ds->total, ds->num_classes);
        else
            fprintf(stderr, "variant %zu: %s\n", (size_t)(v - variants), err);
    }
    if (rc == 0) {
        CHECK(ds != NULL && ds != (dataset *)1, "no dataset");
        check_dataset(&spec, ds);
        dataset_describe(ds, &from_load);
        dataset_free(ds);
    } else {
        CHECK(ds == NULL, "an error and a dataset");
        check_error(err);
        free(err);
    }
    if (validate) {
        dataset_info info;
        char *verr = NULL;
        int vrc = dataset_validate(&spec, &info, &verr);
        CHECK(vrc == rc, "dataset_validate returned %d, dataset_load %d", vrc, rc);
        if (vrc == 0) {
            CHECK(info.kind == from_load.kind && info.size == from_load.size &&
                      info.total == from_load.total && info.num_classes == from_load.num_classes &&
                      info.has_labels == from_load.has_labels &&
                      info.min_label == from_load.min_label &&
                      info.max_label == from_load.max_label &&
                      info.empty_classes == from_load.empty_classes &&
                      info.dim == from_load.dim && info.height == from_load.height &&
                      strcmp(info.digest, from_load.digest) == 0,
                  "dataset_validate and dataset_load disagree");
        } else {
            check_error(verr);
            free(verr);
        }
    }
    return 0;
}
