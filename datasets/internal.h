/* datasets/: helpers shared by the readers (not part of the public API). */
#ifndef RANKQL_DATASETS_INTERNAL_H
#define RANKQL_DATASETS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/dataset.h"

/* One load: the spec, the files read so far (for the digest) and the size limit. */
typedef struct ds_file_sum {
    char hex[65];
    char *name;
} ds_file_sum;

typedef struct ds_ctx {
    const dataset_spec *spec;
    uint64_t max_bytes;
    ds_file_sum *files;
    size_t nfiles, cap;
} ds_ctx;

typedef struct ds_buf {
    uint8_t *data;
    size_t len;
} ds_buf;

void ds_ctx_init(ds_ctx *ctx, const dataset_spec *spec);
void ds_ctx_free(ds_ctx *ctx);
/* The dataset digest (see dataset.h) of the files read, into hex[65]. */
void ds_ctx_digest(const ds_ctx *ctx, char hex[65]);

/* Reads a whole regular file, adds it to the digest under `name`, and gunzips it when it
 * starts with the gzip magic. 0 or -1 with *err ("PATH: cause"). */
int ds_read_file(ds_ctx *ctx, const char *path, const char *name, ds_buf *out, char **err);
void ds_buf_free(ds_buf *b);

/* Inflates raw deflate data (zip members) into exactly `expect` bytes. */
int ds_inflate_raw(const uint8_t *src, size_t len, uint8_t *dst, size_t expect,
                   const char **why);

/* *err = "PATH: message". Always returns -1. */
int ds_fail(char **err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resolves spec->start/stop against `total`: 0 and the slice, or -1 with *err. */
int ds_slice(const dataset_spec *spec, size_t total, const char *path, size_t *start,
             size_t *count, char **err);

/* a * b (and * c) without overflow: false when it overflows. */
bool ds_mul(size_t a, size_t b, size_t *out);

/* Labels given as text, one per example (CSV, TEXT): integers or strings (dataset.h).
 * where[i] is the line number shown in errors. Fills labels (n, caller frees), *classes,
 * and *names (string labels only, else NULL). */
int ds_labels_from_strings(char **vals, const size_t *where, size_t n, int32_t declared,
                           const char *path, int32_t **labels, int32_t *classes,
                           char ***names, char **err);

/* Checks numeric labels (IDX, NPY): each in [0, declared) when declared > 0, else ≥ 0;
 * sets *classes to declared or max + 1. */
int ds_check_labels(const int64_t *vals, size_t n, int32_t declared, const char *path,
                    int32_t *classes, char **err);

/* Strict number parsing in the C locale: the whole (trimmed) string must be a number. */
bool ds_parse_double(const char *s, size_t len, double *out);

/* The readers. Each fills *ds (allocated by the caller, zeroed) or returns -1 with *err;
 * dataset_load frees a half-filled *ds. */
int ds_read_idx(ds_ctx *ctx, dataset *ds, char **err);
int ds_read_csv(ds_ctx *ctx, dataset *ds, char **err);
int ds_read_npy(ds_ctx *ctx, dataset *ds, char **err);
int ds_read_npz(ds_ctx *ctx, dataset *ds, char **err);
int ds_read_imagefolder(ds_ctx *ctx, dataset *ds, char **err);
int ds_read_text(ds_ctx *ctx, dataset *ds, char **err);

/* Keeps rows [start, start + count) of labels (all n of them) in ds->labels. */
void ds_take_labels(dataset *ds, const int32_t *all, size_t start, size_t count);

/* Decodes one PNG or JPEG held in memory to 8-bit pixels with `channels` channels (1 or 3;
 * 0 = the image's own: 1 for grey, 3 for colour). */
typedef struct ds_image {
    uint8_t *pixels;
    size_t width, height, channels;
} ds_image;
int ds_decode_image(const uint8_t *data, size_t len, int channels, uint64_t max_bytes,
                    ds_image *out, const char **why, char *whybuf, size_t whylen);

#endif
