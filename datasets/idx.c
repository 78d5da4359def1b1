/* datasets/: IDX files (MNIST, Fashion-MNIST): big-endian header, then the array.
 *   bytes 0-1: 0, byte 2: element type (0x08 = unsigned byte), byte 3: number of dimensions,
 *   then one big-endian uint32 per dimension, then the elements in C order. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "datasets/internal.h"

typedef struct idx_header {
    uint8_t type;
    unsigned ndims;
    uint32_t dims[255];
    size_t offset;   /* of the first element */
    size_t elements; /* product of dims */
} idx_header;

static const char *type_name(uint8_t t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return NULL;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int parse_header(const char *path, const ds_buf *b, idx_header *h, char **err)
{
    if (b->len < 4)
        return ds_fail(err, path, "truncated: %zu bytes, too short for an IDX header", b->len);
    const uint8_t *p = b->data;
    if (p[0] != 0 || p[1] != 0 || !type_name(p[2]) || p[3] == 0)
        return ds_fail(err, path, "wrong magic %02x %02x %02x %02x: not an IDX file (expected "
                       "00 00, a type byte such as 08, and the number of dimensions)",
                       p[0], p[1], p[2], p[3]);
    h->type = p[2];
    h->ndims = p[3];
    if (b->len < 4 + 4 * (size_t)h->ndims)
        return ds_fail(err, path, "truncated IDX header: %u dimensions need %zu bytes, the file "
                       "has %zu", h->ndims, 4 + 4 * (size_t)h->ndims, b->len);
    h->offset = 4 + 4 * (size_t)h->ndims;
    h->elements = 1;
    bool overflow = false;
    for (unsigned i = 0; i < h->ndims; i++) {
        h->dims[i] = be32(p + 4 + 4 * i);
        if (!ds_mul(h->elements, h->dims[i], &h->elements))
            overflow = true;
    }
    if (overflow)
        return ds_fail(err, path, "IDX dimensions overflow (the header is corrupt)");
    return 0;
}

static int check_length(const char *path, const ds_buf *b, const idx_header *h,
                        const char *what, char **err)
{
    size_t need = h->elements; /* unsigned bytes: one per element */
    size_t have = b->len - h->offset;
    if (have < need)
        return ds_fail(err, path, "truncated: the header declares %zu bytes of %s, the file "
                       "has %zu", need, what, have);
    if (have > need)
        return ds_fail(err, path, "%zu unexpected bytes after the %zu bytes of %s the header "
                       "declares", have - need, need, what);
    return 0;
}

/* "…train-images-idx3-ubyte.gz" → "…train-labels-idx1-ubyte.gz" when that file exists. */
static char *guess_labels_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *hit = strstr(base, "images-idx3");
    if (!hit)
        return NULL;
    size_t pre = (size_t)(hit - path);
    const char *rest = hit + strlen("images-idx3");
    size_t rl = strlen(rest);
    bool gz = rl >= 3 && strcmp(rest + rl - 3, ".gz") == 0;
    /* The same suffix, then with ".gz" added or removed. */
    char *tries[2] = {
        xasprintf("%.*slabels-idx1%s", (int)pre, path, rest),
        gz ? xasprintf("%.*slabels-idx1%.*s", (int)pre, path, (int)(rl - 3), rest)
           : xasprintf("%.*slabels-idx1%s.gz", (int)pre, path, rest),
    };
    char *found = NULL;
    for (int i = 0; i < 2; i++) {
        if (!found && access(tries[i], F_OK) == 0)
            found = tries[i];
        else
            free(tries[i]);
    }
    return found;
}

int ds_read_idx(ds_ctx *ctx, dataset *ds, char **err)
{
    const dataset_spec *spec = ctx->spec;
    const char *path = spec->path;
    ds_buf img = {0}, lab = {0};
    char *guessed = NULL;
    int rc = -1;
    idx_header h, lh;

    if (ds_read_file(ctx, path, "images", &img, err) != 0)
        goto done;
    if (parse_header(path, &img, &h, err) != 0)
        goto done;
    if (h.type != 0x08) {
        ds_fail(err, path, "unsupported IDX element type 0x%02X (%s); images must be unsigned "
                "bytes (0x08)", h.type, type_name(h.type));
        goto done;
    }
    if (h.ndims == 1) {
        ds_fail(err, path, "this is a 1-dimensional IDX file (idx1, labels?); images need 3 "
                "dimensions (idx3: count, rows, columns) or 4 (with channels)");
        goto done;
    }
    if (h.ndims != 3 && h.ndims != 4) {
        ds_fail(err, path, "IDX images need 3 dimensions (idx3: count, rows, columns) or 4 "
                "(with channels), the file has %u", h.ndims);
        goto done;
    }
    for (unsigned i = 1; i < h.ndims; i++) {
        if (h.dims[i] == 0) {
            ds_fail(err, path, "IDX image dimension %u is 0", i);
            goto done;
        }
    }
    if (check_length(path, &img, &h, "pixels", err) != 0)
        goto done;

    size_t n = h.dims[0];
    ds->kind = DATASET_IMAGES;
    ds->pixel = DATASET_PIXEL_U8;
    ds->height = h.dims[1];
    ds->width = h.dims[2];
    ds->channels = h.ndims == 4 ? h.dims[3] : 1;
    ds->total = n;

    const char *lpath = spec->labels_path;
    if (!lpath)
        lpath = guessed = guess_labels_path(path);
    int32_t *all = NULL;
    if (lpath) {
        if (ds_read_file(ctx, lpath, "labels", &lab, err) != 0)
            goto done;
        if (parse_header(lpath, &lab, &lh, err) != 0)
            goto done;
        if (lh.type != 0x08) {
            ds_fail(err, lpath, "unsupported IDX element type 0x%02X (%s); labels must be "
                    "unsigned bytes (0x08)", lh.type, type_name(lh.type));
            goto done;
        }
        if (lh.ndims != 1) {
            ds_fail(err, lpath, "IDX labels need 1 dimension (idx1), the file has %u%s",
                    lh.ndims, lh.ndims == 3 ? " (an images file?)" : "");
            goto done;
        }
        if (check_length(lpath, &lab, &lh, "labels", err) != 0)
            goto done;
        if (lh.dims[0] != n) {
            ds_fail(err, lpath, "count mismatch: %zu labels for %zu images in %s",
                    (size_t)lh.dims[0], n, path);
            goto done;
        }
        int64_t *vals = xmalloc((n ? n : 1) * sizeof *vals);
        for (size_t i = 0; i < n; i++)
            vals[i] = lab.data[lh.offset + i];
        int32_t classes;
        int lrc = ds_check_labels(vals, n, spec->num_classes, lpath, &classes, err);
        free(vals);
        if (lrc != 0)
            goto done;
        ds->num_classes = classes;
        all = xmalloc((n ? n : 1) * sizeof *all);
        for (size_t i = 0; i < n; i++)
            all[i] = lab.data[lh.offset + i];
    }

    size_t start, count, per;
    if (!ds_mul(ds->height, ds->width, &per) || !ds_mul(per, ds->channels, &per)) {
        ds_fail(err, path, "IDX image dimensions overflow (the header is corrupt)");
        free(all);
        goto done;
    }
    if (ds_slice(spec, n, path, &start, &count, err) != 0) {
        free(all);
        goto done;
    }
    ds->start = start;
    ds->n = count;
    ds->u8 = xmalloc(count && per ? count * per : 1);
    if (count)
        memcpy(ds->u8, img.data + h.offset + start * per, count * per);
    if (all) {
        ds_take_labels(ds, all, start, count);
        free(all);
    }
    rc = 0;
done:
    free(guessed);
    ds_buf_free(&img);
    ds_buf_free(&lab);
    return rc;
}
