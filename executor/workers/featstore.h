/* Feature files: the embeddings of one (model, dataset slice), content-addressed by the
 * embed job's hash under the data directory (features/<2 hex>/<hash>.rqf), written
 * atomically (temp file, fsync, rename). Format: docs/jobs.md "Feature files". */
#ifndef RANKQL_EXECUTOR_WORKERS_FEATSTORE_H
#define RANKQL_EXECUTOR_WORKERS_FEATSTORE_H

#include <stdint.h>

#include "common/hash.h"

typedef struct featfile {
    uint64_t rows;
    uint32_t dim;
    int32_t num_classes;   /* 0 = no labels (y == NULL) */
    float *x;              /* rows × dim */
    int32_t *y;            /* rows, or NULL */
} featfile;

/* "features/ab/<hash>.rqf", relative to the data directory (caller frees). */
char *featstore_relpath(const char *hash);

/* Writes the file for hash atomically; *bytes = its size. 0, or -1 with *err naming the path
 * and the cause (nothing left behind: no temp file, no partial file). Temp files of the same
 * hash that a killed writer left are removed first. */
int featstore_write(const char *data_dir, const char *hash, const float *x, const int32_t *y,
                    uint64_t rows, uint32_t dim, int32_t num_classes, uint64_t *bytes,
                    char **err);

/* Reads and checks (magic, sizes, label range) the file for hash. 0, or -1 with *err naming
 * the file and the cause. */
int featstore_read(const char *data_dir, const char *hash, featfile *out, char **err);

void featfile_free(featfile *f);

#endif
