/* datasets/: NumPy .npy arrays and .npz archives (a zip of .npy files).
 *
 * .npy: "\x93NUMPY", major and minor version bytes, the header length (uint16 LE for version
 * 1, uint32 LE for 2 and 3), then a Python dict literal {'descr': '<f4', 'fortran_order':
 * False, 'shape': (n, d), }, then the array bytes. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/util.h"
#include "datasets/internal.h"

#define NPY_MAX_DIMS 32

typedef struct npy_array {
    char kind;            /* 'b' bool, 'i' signed, 'u' unsigned, 'f' float */
    unsigned size;        /* bytes per element */
    bool swap;            /* stored big-endian */
    char descr[64];
    unsigned ndim;
    size_t shape[NPY_MAX_DIMS];
    size_t count;         /* elements */
    const uint8_t *data;
} npy_array;

/* ---- header ------------------------------------------------------------------------- */

typedef struct hdr_parser {
    const char *s;
    size_t len, pos;
} hdr_parser;

static void hp_ws(hdr_parser *h)
{
    while (h->pos < h->len && (h->s[h->pos] == ' ' || h->s[h->pos] == '\t' ||
                               h->s[h->pos] == '\n' || h->s[h->pos] == '\r'))
        h->pos++;
}

static bool hp_char(hdr_parser *h, char c)
{
    hp_ws(h);
    if (h->pos < h->len && h->s[h->pos] == c) {
        h->pos++;
        return true;
    }
    return false;
}

/* A quoted string (no escapes in what numpy writes) into out[cap]. */
static bool hp_string(hdr_parser *h, char *out, size_t cap)
{
    hp_ws(h);
    if (h->pos >= h->len || (h->s[h->pos] != '\'' && h->s[h->pos] != '"'))
        return false;
    char q = h->s[h->pos++];
    size_t n = 0;
    while (h->pos < h->len && h->s[h->pos] != q) {
        if (h->s[h->pos] == '\\' || n + 1 >= cap)
            return false;
        out[n++] = h->s[h->pos++];
    }
    if (h->pos >= h->len)
        return false;
    h->pos++;
    out[n] = '\0';
    return true;
}

static bool hp_word(hdr_parser *h, const char *w)
{
    hp_ws(h);
    size_t n = strlen(w);
    if (h->len - h->pos >= n && memcmp(h->s + h->pos, w, n) == 0) {
        h->pos += n;
        return true;
    }
    return false;
}

static bool hp_uint(hdr_parser *h, size_t *out)
{
    hp_ws(h);
    size_t v = 0;
    size_t start = h->pos;
    while (h->pos < h->len && h->s[h->pos] >= '0' && h->s[h->pos] <= '9') {
        unsigned d = (unsigned)(h->s[h->pos] - '0');
        if (v > (SIZE_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        h->pos++;
    }
    if (h->pos < h->len && h->s[h->pos] == 'L') /* Python 2 longs */
        h->pos++;
    *out = v;
    return h->pos > start;
}

static int parse_descr(const char *path, const char *d, npy_array *a, char **err)
{
    snprintf(a->descr, sizeof a->descr, "%s", d);
    char order = '=';
    if (*d == '<' || *d == '>' || *d == '|' || *d == '=')
        order = *d++;
    char kind = *d;
    if (kind)
        d++;
    char *end;
    long size = strtol(d, &end, 10);
    if (d[0] < '0' || d[0] > '9' || *end != '\0')
        size = 0;
    bool ok = (kind == 'b' && size == 1) || (kind == 'u' && (size == 1 || size == 2 ||
              size == 4 || size == 8)) || (kind == 'i' && (size == 1 || size == 2 ||
              size == 4 || size == 8)) || (kind == 'f' && (size == 4 || size == 8));
    if (!ok) {
        const char *what = kind == 'f' && size == 2 ? " (float16)"
                         : kind == 'U' || kind == 'S' ? " (strings)"
                         : kind == 'O' ? " (Python objects)"
                         : kind == 'c' ? " (complex)"
                         : kind == 'M' || kind == 'm' ? " (dates)" : "";
        return ds_fail(err, path, "unsupported dtype '%s'%s; supported: bool, (u)int8-64, "
                       "float32, float64", a->descr, what);
    }
    a->kind = kind;
    a->size = (unsigned)size;
    a->swap = size > 1 && order == '>'; /* this machine is little-endian (checked below) */
    return 0;
}

static int npy_parse(const char *path, const uint8_t *buf, size_t len, npy_array *a,
                     char **err)
{
    static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, magic, 6) != 0) {
        if (len >= 6 && memcmp(buf, magic, 6) == 0)
            return ds_fail(err, path, "truncated .npy header (%zu bytes)", len);
        if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4)
            return ds_fail(err, path, "wrong magic: this is a zip file (use format npz)");
        return ds_fail(err, path, "wrong magic: not a .npy file (expected \\x93NUMPY)");
    }
    unsigned major = buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return ds_fail(err, path, "truncated .npy header (%zu bytes)", len);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
        hstart = 12;
    } else {
        return ds_fail(err, path, "unsupported .npy format version %u.%u (1, 2 and 3 are "
                       "supported)", major, buf[7]);
    }
    if (hlen > len - hstart)
        return ds_fail(err, path, "truncated .npy header: it declares %zu bytes, %zu follow",
                       hlen, len - hstart);
    hdr_parser h = {.s = (const char *)buf + hstart, .len = hlen};
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    char key[32], val[64];
    if (!hp_char(&h, '{'))
        goto syntax;
    for (;;) {
        if (hp_char(&h, '}'))
            break;
        if (!hp_string(&h, key, sizeof key) || !hp_char(&h, ':'))
            goto syntax;
        if (strcmp(key, "descr") == 0) {
            hp_ws(&h);
            if (h.pos < h.len && h.s[h.pos] == '[')
                return ds_fail(err, path, "unsupported dtype: a structured array (record "
                               "dtype); store a plain numeric array");
            if (!hp_string(&h, val, sizeof val))
                goto syntax;
            if (parse_descr(path, val, a, err) != 0)
                return -1;
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (hp_word(&h, "True"))
                fortran = true;
            else if (!hp_word(&h, "False"))
                goto syntax;
            have_order = true;
        } else if (strcmp(key, "shape") == 0) {
            if (!hp_char(&h, '('))
                goto syntax;
            a->ndim = 0;
            while (!hp_char(&h, ')')) {
                if (a->ndim == NPY_MAX_DIMS)
                    return ds_fail(err, path, "more than %d dimensions", NPY_MAX_DIMS);
                if (!hp_uint(&h, &a->shape[a->ndim]))
                    goto syntax;
                a->ndim++;
                if (!hp_char(&h, ',')) {
                    if (!hp_char(&h, ')'))
                        goto syntax;
                    break;
                }
            }
            have_shape = true;
        } else {
            return ds_fail(err, path, ".npy header has an unknown key '%s'", key);
        }
        if (!hp_char(&h, ',')) {
            if (!hp_char(&h, '}'))
                goto syntax;
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return ds_fail(err, path, ".npy header lacks '%s'",
                       !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    if (fortran && a->ndim > 1)
        return ds_fail(err, path, "Fortran-order (column-major) arrays are not supported; save "
                       "with np.ascontiguousarray");
    a->count = 1;
    for (unsigned i = 0; i < a->ndim; i++)
        if (!ds_mul(a->count, a->shape[i], &a->count))
            return ds_fail(err, path, "array shape overflows (the header is corrupt)");
    size_t bytes;
    if (!ds_mul(a->count, a->size, &bytes))
        return ds_fail(err, path, "array shape overflows (the header is corrupt)");
    size_t have = len - hstart - hlen;
    if (have < bytes)
        return ds_fail(err, path, "truncated: the header declares %zu bytes of data (%s, "
                       "%zu elements), the file has %zu", bytes, a->descr, a->count, have);
    if (have > bytes)
        return ds_fail(err, path, "%zu unexpected bytes after the %zu bytes of data the header "
                       "declares", have - bytes, bytes);
    a->data = buf + hstart + hlen;
    return 0;
syntax:
    return ds_fail(err, path, "malformed .npy header near byte %zu: '%.*s'", hstart + h.pos,
                   (int)(hlen > 80 ? 80 : hlen), (const char *)buf + hstart);
}

/* ---- elements ----------------------------------------------------------------------- */

static void load_bytes(const npy_array *a, size_t i, uint8_t *out)
{
    memcpy(out, a->data + i * a->size, a->size);
    if (a->swap)
        for (unsigned k = 0; k < a->size / 2; k++) {
            uint8_t t = out[k];
            out[k] = out[a->size - 1 - k];
            out[a->size - 1 - k] = t;
        }
}

/* Element i as a double; integers beyond 2^53 lose precision (features only). */
static double get_double(const npy_array *a, size_t i)
{
    uint8_t b[8];
    load_bytes(a, i, b);
    switch (a->kind) {
    case 'b': return b[0] != 0;
    case 'u':
        switch (a->size) {
        case 1: return b[0];
        case 2: { uint16_t v; memcpy(&v, b, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, b, 4); return v; }
        default: { uint64_t v; memcpy(&v, b, 8); return (double)v; }
        }
    case 'i':
        switch (a->size) {
        case 1: { int8_t v; memcpy(&v, b, 1); return v; }
        case 2: { int16_t v; memcpy(&v, b, 2); return v; }
        case 4: { int32_t v; memcpy(&v, b, 4); return v; }
        default: { int64_t v; memcpy(&v, b, 8); return (double)v; }
        }
    default:
        if (a->size == 4) {
            float v;
            memcpy(&v, b, 4);
            return v;
        } else {
            double v;
            memcpy(&v, b, 8);
            return v;
        }
    }
}

/* Element i as an integer label: false (with *why) when it is not one. */
static bool get_label(const npy_array *a, size_t i, int64_t *out, double *bad)
{
    uint8_t b[8];
    load_bytes(a, i, b);
    if (a->kind == 'u' && a->size == 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        *bad = (double)v;
        if (v > INT64_MAX)
            return false;
        *out = (int64_t)v;
        return true;
    }
    if (a->kind == 'i' && a->size == 8) {
        memcpy(out, b, 8);
        return true;
    }
    double v = get_double(a, i);
    *bad = v;
    if (!isfinite(v) || v != floor(v) || fabs(v) > 9007199254740992.0)
        return false;
    *out = (int64_t)v;
    return true;
}

static int to_float(const char *path, const npy_array *a, size_t from, size_t count,
                    float **out, char **err)
{
    size_t bytes;
    if (!ds_mul(count, sizeof(float), &bytes))
        return ds_fail(err, path, "array too large");
    float *f = xmalloc(bytes ? bytes : 1);
    if (a->kind == 'f' && a->size == 4 && !a->swap) {
        memcpy(f, a->data + from * 4, count * 4);
        for (size_t i = 0; i < count; i++) {
            if (!isfinite(f[i])) {
                const char *what = isnan(f[i]) ? "NaN" : "infinite";
                free(f);
                return ds_fail(err, path, "element %zu is %s; features must be finite",
                               from + i, what);
            }
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            double v = get_double(a, from + i);
            if (!isfinite(v) || fabs(v) > FLT_MAX) {
                free(f);
                return ds_fail(err, path, "element %zu is %s; features must be finite float32 "
                               "values", from + i, isnan(v) ? "NaN" : isinf(v) ? "infinite"
                               : "out of float32 range");
            }
            f[i] = (float)v;
        }
    }
    *out = f;
    return 0;
}

/* Builds the dataset from a features array and an optional labels array. */
static int from_arrays(ds_ctx *ctx, dataset *ds, const char *fpath, const npy_array *fa,
                       const char *lpath, const npy_array *la, char **err)
{
    const dataset_spec *spec = ctx->spec;
    {
        const uint16_t one = 1;
        uint8_t first;
        memcpy(&first, &one, 1);
        if (first != 1)
            return ds_fail(err, fpath, "NPY reading needs a little-endian machine");
    }
    if (fa->ndim == 0 || fa->ndim > 4)
        return ds_fail(err, fpath, "features array has shape with %u dimensions; expected "
                       "(n, d), (n,), (n, H, W) or (n, H, W, C)", fa->ndim);
    size_t n = fa->shape[0];
    size_t per = n ? fa->count / n : 1;
    if (n == 0) {
        per = 1;
        for (unsigned i = 1; i < fa->ndim; i++)
            if (!ds_mul(per, fa->shape[i], &per))
                return ds_fail(err, fpath, "array shape overflows");
    }
    for (unsigned i = 1; i < fa->ndim; i++)
        if (fa->shape[i] == 0 && !(spec->labels_only && fa->ndim == 2))
            return ds_fail(err, fpath, "dimension %u of the features array is 0", i);
    int32_t *all = NULL;
    if (la) {
        if (!(la->ndim == 1 || (la->ndim == 2 && la->shape[1] == 1)))
            return ds_fail(err, lpath, "labels array must have shape (n,) or (n, 1), not %u "
                           "dimensions%s", la->ndim, la->ndim == 2 ? " with more than one "
                           "column" : "");
        if (la->shape[0] != n)
            return ds_fail(err, lpath, "count mismatch: %zu labels for %zu examples in %s",
                           la->shape[0], n, fpath);
        int64_t *vals = xmalloc((n ? n : 1) * sizeof *vals);
        for (size_t i = 0; i < n; i++) {
            double bad = 0;
            if (!get_label(la, i, &vals[i], &bad)) {
                free(vals);
                return ds_fail(err, lpath, "label %g of example %zu is not an integer", bad, i);
            }
        }
        int32_t classes;
        if (ds_check_labels(vals, n, spec->num_classes, lpath, &classes, err) != 0) {
            free(vals);
            return -1;
        }
        ds->num_classes = classes;
        all = xmalloc((n ? n : 1) * sizeof *all);
        for (size_t i = 0; i < n; i++)
            all[i] = (int32_t)vals[i];
        free(vals);
    }
    size_t start, count;
    if (ds_slice(spec, n, fpath, &start, &count, err) != 0) {
        free(all);
        return -1;
    }
    ds->total = n;
    ds->start = start;
    ds->n = count;
    size_t from = start * per, elems = count * per;
    if (fa->ndim >= 3) {
        ds->kind = DATASET_IMAGES;
        ds->height = fa->shape[1];
        ds->width = fa->shape[2];
        ds->channels = fa->ndim == 4 ? fa->shape[3] : 1;
        if (fa->kind == 'u' && fa->size == 1) {
            ds->pixel = DATASET_PIXEL_U8;
            ds->u8 = xmalloc(elems ? elems : 1);
            if (elems)
                memcpy(ds->u8, fa->data + from, elems);
        } else {
            ds->pixel = DATASET_PIXEL_F32;
            if (to_float(fpath, fa, from, elems, &ds->f32, err) != 0) {
                free(all);
                return -1;
            }
        }
    } else {
        ds->kind = DATASET_FEATURES;
        ds->dim = per;
        if (to_float(fpath, fa, from, elems, &ds->features, err) != 0) {
            free(all);
            return -1;
        }
    }
    if (all) {
        ds_take_labels(ds, all, start, count);
        free(all);
    }
    return 0;
}

int ds_read_npy(ds_ctx *ctx, dataset *ds, char **err)
{
    const dataset_spec *spec = ctx->spec;
    ds_buf fb = {0}, lb = {0};
    npy_array fa, la;
    int rc = -1;
    if (ds_read_file(ctx, spec->path, "features", &fb, err) != 0)
        goto done;
    if (npy_parse(spec->path, fb.data, fb.len, &fa, err) != 0)
        goto done;
    if (spec->labels_path) {
        if (ds_read_file(ctx, spec->labels_path, "labels", &lb, err) != 0)
            goto done;
        if (npy_parse(spec->labels_path, lb.data, lb.len, &la, err) != 0)
            goto done;
    }
    rc = from_arrays(ctx, ds, spec->path, &fa, spec->labels_path,
                     spec->labels_path ? &la : NULL, err);
done:
    ds_buf_free(&fb);
    ds_buf_free(&lb);
    return rc;
}

/* ---- zip ---------------------------------------------------------------------------- */

typedef struct zip_entry {
    char *name;
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, offset;
} zip_entry;

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static void free_entries(zip_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

static int zip_list(const char *path, const uint8_t *buf, size_t len, zip_entry **out,
                    size_t *nout, char **err)
{
    *out = NULL;
    *nout = 0;
    if (len < 22)
        return ds_fail(err, path, "not a zip file (%zu bytes, too short)", len);
    size_t eocd = SIZE_MAX;
    size_t lowest = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t i = len - 22 + 1; i-- > lowest;) {
        if (buf[i] == 'P' && buf[i + 1] == 'K' && buf[i + 2] == 5 && buf[i + 3] == 6) {
            eocd = i;
            break;
        }
    }
    if (eocd == SIZE_MAX) {
        if (len >= 6 && buf[0] == 0x93 && memcmp(buf + 1, "NUMPY", 5) == 0)
            return ds_fail(err, path, "this is a .npy file, not an .npz (use format npy)");
        return ds_fail(err, path, "not a zip file, or truncated (no end-of-central-directory "
                       "record)");
    }
    const uint8_t *e = buf + eocd;
    uint64_t entries = le16(e + 10), cd_size = le32(e + 12), cd_off = le32(e + 16);
    if (le16(e + 4) != 0 || le16(e + 6) != 0)
        return ds_fail(err, path, "multi-disk zip archives are not supported");
    if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
        if (eocd < 20 || le32(buf + eocd - 20) != 0x07064b50)
            return ds_fail(err, path, "corrupt zip: zip64 sizes without a zip64 locator");
        uint64_t z = le64(buf + eocd - 20 + 8);
        if (z > len || len - z < 56 || le32(buf + z) != 0x06064b50)
            return ds_fail(err, path, "corrupt zip: bad zip64 end-of-central-directory record");
        entries = le64(buf + z + 32);
        cd_size = le64(buf + z + 40);
        cd_off = le64(buf + z + 48);
    }
    if (cd_off > len || cd_size > len - cd_off)
        return ds_fail(err, path, "truncated or corrupt zip: the central directory (%llu bytes "
                       "at %llu) lies outside the file (%zu bytes)", (unsigned long long)cd_size,
                       (unsigned long long)cd_off, len);
    if (entries > cd_size / 46)
        return ds_fail(err, path, "corrupt zip: %llu entries cannot fit a %llu-byte central "
                       "directory", (unsigned long long)entries, (unsigned long long)cd_size);
    zip_entry *list = xcalloc(entries ? entries : 1, sizeof *list);
    size_t p = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    for (size_t i = 0; i < entries; i++) {
        if (end - p < 46 || le32(buf + p) != 0x02014b50) {
            free_entries(list, i);
            return ds_fail(err, path, "corrupt zip: bad central directory entry %zu", i);
        }
        const uint8_t *c = buf + p;
        size_t nl = le16(c + 28), xl = le16(c + 30), cl = le16(c + 32);
        if (end - p - 46 < nl + xl + cl) {
            free_entries(list, i);
            return ds_fail(err, path, "corrupt zip: central directory entry %zu overruns", i);
        }
        zip_entry *z = &list[i];
        z->flags = le16(c + 8);
        z->method = le16(c + 10);
        z->crc = le32(c + 16);
        z->csize = le32(c + 20);
        z->usize = le32(c + 24);
        z->offset = le32(c + 42);
        z->name = xstrndup((const char *)c + 46, nl);
        /* zip64 extra field: the 0xFFFFFFFF fields, in order usize, csize, offset. */
        const uint8_t *x = c + 46 + nl, *xend = x + xl;
        while (xend - x >= 4) {
            uint16_t id = le16(x), sz = le16(x + 2);
            if ((size_t)(xend - x - 4) < sz)
                break;
            if (id == 1) {
                const uint8_t *q = x + 4, *qend = q + sz;
                uint64_t *fields[3] = {&z->usize, &z->csize, &z->offset};
                for (int k = 0; k < 3; k++) {
                    if (*fields[k] != 0xFFFFFFFF)
                        continue;
                    if (qend - q < 8) {
                        free_entries(list, i + 1);
                        return ds_fail(err, path, "corrupt zip: short zip64 field in entry "
                                       "'%s'", z->name);
                    }
                    *fields[k] = le64(q);
                    q += 8;
                }
            }
            x += 4 + sz;
        }
        p += 46 + nl + xl + cl;
    }
    *out = list;
    *nout = (size_t)entries;
    return 0;
}

static int zip_extract(const char *path, const uint8_t *buf, size_t len, const zip_entry *z,
                       uint64_t max_bytes, ds_buf *out, char **err)
{
    out->data = NULL;
    out->len = 0;
    if (z->flags & 1)
        return ds_fail(err, path, "zip entry '%s' is encrypted", z->name);
    if (z->method != 0 && z->method != 8)
        return ds_fail(err, path, "zip entry '%s' uses compression method %u; only stored (0) "
                       "and deflate (8) are supported", z->name, z->method);
    if (z->offset > len || len - z->offset < 30 || le32(buf + z->offset) != 0x04034b50)
        return ds_fail(err, path, "corrupt zip: bad local header for '%s'", z->name);
    const uint8_t *l = buf + z->offset;
    uint64_t data = z->offset + 30 + le16(l + 26) + le16(l + 28);
    if (data > len || z->csize > len - data)
        return ds_fail(err, path, "truncated zip: the data of '%s' (%llu bytes) runs past the "
                       "end of the file", z->name, (unsigned long long)z->csize);
    if (z->usize > max_bytes || z->usize > SIZE_MAX - 1)
        return ds_fail(err, path, "zip entry '%s' is %llu bytes, more than max_bytes (%llu)",
                       z->name, (unsigned long long)z->usize, (unsigned long long)max_bytes);
    /* Deflate expands at most 1032:1; a larger declared size is a corrupt directory (and
     * must not make us allocate it). */
    if (z->method == 8 && z->usize / 1032 > z->csize + 64)
        return ds_fail(err, path, "corrupt zip: entry '%s' declares %llu bytes from %llu "
                       "compressed bytes", z->name, (unsigned long long)z->usize,
                       (unsigned long long)z->csize);
    if (z->method == 0 && z->csize != z->usize)
        return ds_fail(err, path, "corrupt zip: stored entry '%s' has different compressed and "
                       "uncompressed sizes", z->name);
    uint8_t *dst = xmalloc((size_t)z->usize + 1);
    dst[z->usize] = 0;
    if (z->method == 0) {
        if (z->usize)
            memcpy(dst, buf + data, (size_t)z->usize);
    } else {
        const char *why = NULL;
        if (ds_inflate_raw(buf + data, (size_t)z->csize, dst, (size_t)z->usize, &why) != 0) {
            free(dst);
            return ds_fail(err, path, "zip entry '%s': %s", z->name, why);
        }
    }
    uLong crc = crc32_z(0L, Z_NULL, 0);
    crc = crc32_z(crc, dst, (size_t)z->usize);
    if ((uint32_t)crc != z->crc) {
        free(dst);
        return ds_fail(err, path, "zip entry '%s': CRC mismatch (the archive is corrupt)",
                       z->name);
    }
    out->data = dst;
    out->len = (size_t)z->usize;
    return 0;
}

static const zip_entry *find_array(const zip_entry *e, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (strncmp(e[i].name, key, kl) == 0 && strcmp(e[i].name + kl, ".npy") == 0)
            return &e[i];
    return NULL;
}

static char *array_names(const zip_entry *e, size_t n)
{
    strbuf sb = {0};
    strbuf_puts(&sb, "");
    for (size_t i = 0; i < n && i < 20; i++) {
        size_t l = strlen(e[i].name);
        if (l > 4 && strcmp(e[i].name + l - 4, ".npy") == 0)
            l -= 4;
        strbuf_printf(&sb, "%s'%.*s'", i ? ", " : "", (int)l, e[i].name);
    }
    if (n > 20)
        strbuf_puts(&sb, ", …");
    if (n == 0)
        strbuf_puts(&sb, "none");
    return strbuf_detach(&sb);
}

int ds_read_npz(ds_ctx *ctx, dataset *ds, char **err)
{
    const dataset_spec *spec = ctx->spec;
    const char *path = spec->path;
    ds_buf zb = {0}, fb = {0}, lb = {0};
    zip_entry *entries = NULL;
    size_t n = 0;
    char *fname = NULL, *lname = NULL;
    int rc = -1;
    if (ds_read_file(ctx, path, "features", &zb, err) != 0)
        goto done;
    if (zip_list(path, zb.data, zb.len, &entries, &n, err) != 0)
        goto done;
    static const char *const fkeys[] = {"features", "x", "X"};
    static const char *const lkeys[] = {"labels", "y", "Y"};
    const zip_entry *fe = NULL, *le = NULL;
    if (spec->features_key) {
        fe = find_array(entries, n, spec->features_key);
    } else {
        for (int i = 0; i < 3 && !fe; i++)
            fe = find_array(entries, n, fkeys[i]);
    }
    if (!fe) {
        char *names = array_names(entries, n);
        if (spec->features_key)
            ds_fail(err, path, "no array '%s' in the archive (arrays: %s)", spec->features_key,
                    names);
        else
            ds_fail(err, path, "no 'features', 'x' or 'X' array in the archive (arrays: %s); "
                    "name one with features_key", names);
        free(names);
        goto done;
    }
    if (spec->labels_key) {
        le = find_array(entries, n, spec->labels_key);
        if (!le) {
            char *names = array_names(entries, n);
            ds_fail(err, path, "no array '%s' in the archive (arrays: %s)", spec->labels_key,
                    names);
            free(names);
            goto done;
        }
    } else {
        for (int i = 0; i < 3 && !le; i++)
            le = find_array(entries, n, lkeys[i]);
    }
    fname = xasprintf("%s[%s]", path, fe->name);
    if (zip_extract(path, zb.data, zb.len, fe, ctx->max_bytes, &fb, err) != 0)
        goto done;
    npy_array fa, la;
    if (npy_parse(fname, fb.data, fb.len, &fa, err) != 0)
        goto done;
    if (le) {
        lname = xasprintf("%s[%s]", path, le->name);
        if (zip_extract(path, zb.data, zb.len, le, ctx->max_bytes, &lb, err) != 0)
            goto done;
        if (npy_parse(lname, lb.data, lb.len, &la, err) != 0)
            goto done;
    }
    rc = from_arrays(ctx, ds, fname, &fa, lname, le ? &la : NULL, err);
done:
    free(fname);
    free(lname);
    free_entries(entries, n);
    ds_buf_free(&zb);
    ds_buf_free(&fb);
    ds_buf_free(&lb);
    return rc;
}
