/* datasets/: file reading (gunzip, size limit, digest), errors, slices, numbers, labels. */
#include "common/hash.h"
#include "datasets/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "common/utf8.h"
#include "common/util.h"

int ds_fail(char **err, const char *path, const char *fmt, ...)
{
    if (err) {
        strbuf sb = {0};
        if (path)
            strbuf_printf(&sb, "%s: ", path);
        va_list ap;
        va_start(ap, fmt);
        strbuf_vprintf(&sb, fmt, ap);
        va_end(ap);
        /* One line of valid UTF-8 (it is sent as JSON), although messages quote bytes of
         * the file (a CSV field, an .npy header): control bytes and bytes that are not
         * UTF-8 become '?'. */
        for (size_t i = 0; i < sb.len; i++)
            if ((unsigned char)sb.data[i] < 0x20 || sb.data[i] == 0x7f)
                sb.data[i] = '?';
        size_t off = 0, bad;
        while (off < sb.len && !utf8_valid(sb.data + off, sb.len - off, &bad)) {
            sb.data[off + bad] = '?';
            off += bad + 1;
        }
        *err = strbuf_detach(&sb);
    }
    return -1;
}

bool ds_mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

/* ---- digest ------------------------------------------------------------------------- */

void ds_ctx_init(ds_ctx *ctx, const dataset_spec *spec)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->spec = spec;
    ctx->max_bytes = spec->max_bytes ? spec->max_bytes : DATASET_DEFAULT_MAX_BYTES;
}

void ds_ctx_free(ds_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nfiles; i++)
        free(ctx->files[i].name);
    free(ctx->files);
    ctx->files = NULL;
    ctx->nfiles = ctx->cap = 0;
}

static void add_file_sum(ds_ctx *ctx, const char *name, const void *data, size_t len)
{
    if (ctx->nfiles == ctx->cap) {
        ctx->cap = ctx->cap ? 2 * ctx->cap : 4;
        ctx->files = xrealloc(ctx->files, ctx->cap * sizeof *ctx->files);
    }
    ds_file_sum *f = &ctx->files[ctx->nfiles++];
    sha256_hex(data, len, f->hex);
    f->name = xstrdup(name);
}

void ds_ctx_digest(const ds_ctx *ctx, char hex[65])
{
    if (ctx->nfiles == 1) {
        memcpy(hex, ctx->files[0].hex, 65);
        return;
    }
    strbuf sb = {0};
    strbuf_puts(&sb, "");
    for (size_t i = 0; i < ctx->nfiles; i++)
        strbuf_printf(&sb, "%s  %s\n", ctx->files[i].hex, ctx->files[i].name);
    sha256_hex(sb.data, sb.len, hex);
    strbuf_free(&sb);
}

/* ---- reading files ------------------------------------------------------------------ */

void ds_buf_free(ds_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int gunzip(const char *path, const uint8_t *src, size_t len, uint64_t max_bytes,
                  ds_buf *out, char **err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return ds_fail(err, path, "cannot start gunzip (zlib)");
    size_t cap = len < (SIZE_MAX / 4) ? len * 4 + 1024 : len;
    if (cap > max_bytes)
        cap = (size_t)max_bytes + 1;
    uint8_t *dst = xmalloc(cap);
    size_t have = 0, pos = 0;
    int rc = -1;
    for (;;) {
        if (have == cap) {
            if (cap > max_bytes) {
                ds_fail(err, path, "expands to more than %llu bytes when gunzipped (max_bytes)",
                        (unsigned long long)max_bytes);
                goto done;
            }
            size_t ncap = cap < SIZE_MAX / 2 ? cap * 2 : SIZE_MAX;
            if (ncap > max_bytes)
                ncap = (size_t)max_bytes + 1;
            dst = xrealloc(dst, ncap);
            cap = ncap;
        }
        size_t in_chunk = len - pos > UINT_MAX ? UINT_MAX : len - pos;
        size_t out_chunk = cap - have > UINT_MAX ? UINT_MAX : cap - have;
        zs.next_in = (Bytef *)(uintptr_t)(src + pos);
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = dst + have;
        zs.avail_out = (uInt)out_chunk;
        int z = inflate(&zs, Z_NO_FLUSH);
        pos += in_chunk - zs.avail_in;
        have += out_chunk - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (pos == len)
                break;
            /* Concatenated gzip members are one stream (gzip -c a b). */
            if (len - pos >= 2 && src[pos] == 0x1f && src[pos + 1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            ds_fail(err, path, "%zu bytes of trailing garbage after the gzip stream", len - pos);
            goto done;
        }
        if (z == Z_OK)
            continue;
        if (z == Z_BUF_ERROR && zs.avail_out == 0)
            continue; /* needs more room */
        if (z == Z_BUF_ERROR && pos == len) {
            ds_fail(err, path, "truncated gzip stream (file ends after %zu bytes, %zu "
                    "decompressed)", len, have);
            goto done;
        }
        ds_fail(err, path, "corrupt gzip data: %s", zs.msg ? zs.msg : "inflate failed");
        goto done;
    }
    rc = 0;
done:
    inflateEnd(&zs);
    if (rc != 0) {
        free(dst);
        return -1;
    }
    dst = xrealloc(dst, have + 1); /* a spare NUL after the data, like plain files */
    dst[have] = 0;
    out->data = dst;
    out->len = have;
    return 0;
}

int ds_read_file(ds_ctx *ctx, const char *path, const char *name, ds_buf *out, char **err)
{
    out->data = NULL;
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ds_fail(err, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ds_fail(err, path, "cannot stat: %s", strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return ds_fail(err, path, "is a directory, expected a file");
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ds_fail(err, path, "not a regular file");
    }
    if ((uint64_t)st.st_size > ctx->max_bytes || (uint64_t)st.st_size > SIZE_MAX - 1) {
        close(fd);
        return ds_fail(err, path, "file is %lld bytes, more than max_bytes (%llu)",
                       (long long)st.st_size, (unsigned long long)ctx->max_bytes);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = xmalloc(size + 1);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(data);
            return ds_fail(err, path, "read error: %s", strerror(e));
        }
        if (r == 0)
            break; /* shrank while reading */
        got += (size_t)r;
    }
    close(fd);
    data[got] = 0;
    add_file_sum(ctx, name, data, got);
    if (got >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        int rc = gunzip(path, data, got, ctx->max_bytes, out, err);
        free(data);
        return rc;
    }
    out->data = data;
    out->len = got;
    return 0;
}

int ds_inflate_raw(const uint8_t *src, size_t len, uint8_t *dst, size_t expect,
                   const char **why)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) {
        *why = "cannot start inflate (zlib)";
        return -1;
    }
    size_t pos = 0, have = 0;
    int rc = -1;
    uint8_t spare[1];
    for (;;) {
        size_t in_chunk = len - pos > UINT_MAX ? UINT_MAX : len - pos;
        bool spare_out = have == expect; /* more output than declared lands in spare */
        size_t out_chunk = spare_out ? 1 : (expect - have > UINT_MAX ? UINT_MAX : expect - have);
        zs.next_in = (Bytef *)(uintptr_t)(src + pos);
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = spare_out ? spare : dst + have;
        zs.avail_out = (uInt)out_chunk;
        int z = inflate(&zs, Z_NO_FLUSH);
        pos += in_chunk - zs.avail_in;
        size_t produced = out_chunk - zs.avail_out;
        if (spare_out && produced > 0) {
            *why = "deflate data expands past the size the zip directory declares";
            goto done;
        }
        have += spare_out ? 0 : produced;
        if (z == Z_STREAM_END) {
            if (have != expect) {
                *why = "deflate data is shorter than the size the zip directory declares";
                goto done;
            }
            break;
        }
        if (z == Z_OK)
            continue;
        if (z == Z_BUF_ERROR && pos == len) {
            *why = "truncated deflate data";
            goto done;
        }
        if (z == Z_BUF_ERROR)
            continue;
        *why = "corrupt deflate data";
        goto done;
    }
    rc = 0;
done:
    inflateEnd(&zs);
    return rc;
}

/* ---- slices ------------------------------------------------------------------------- */

int ds_slice(const dataset_spec *spec, size_t total, const char *path, size_t *start,
             size_t *count, char **err)
{
    if (spec->start < 0)
        return ds_fail(err, path, "slice start %lld is negative", (long long)spec->start);
    if (spec->stop < 0 && spec->stop != DATASET_END)
        return ds_fail(err, path, "slice stop %lld is negative", (long long)spec->stop);
    if (spec->stop != DATASET_END && spec->stop < spec->start)
        return ds_fail(err, path, "slice stop %lld is before its start %lld",
                       (long long)spec->stop, (long long)spec->start);
    if ((uint64_t)spec->start > (uint64_t)total)
        return ds_fail(err, path, "slice start %lld is past the end of the dataset "
                       "(%zu examples)", (long long)spec->start, total);
    size_t s = (size_t)spec->start;
    size_t e = total;
    if (spec->stop != DATASET_END && (uint64_t)spec->stop < (uint64_t)total)
        e = (size_t)spec->stop;
    *start = s;
    *count = e - s;
    return 0;
}

void ds_take_labels(dataset *ds, const int32_t *all, size_t start, size_t count)
{
    ds->labels = xmalloc((count ? count : 1) * sizeof *ds->labels);
    if (count)
        memcpy(ds->labels, all + start, count * sizeof *all);
}

/* ---- numbers ------------------------------------------------------------------------ */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

bool ds_parse_double(const char *s, size_t len, double *out)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    if (len == 0 || len > 400)
        return false;
    char tmp[401];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    pthread_once(&c_locale_once, make_c_locale);
    char *end = NULL;
    errno = 0;
    double v = c_locale ? strtod_l(tmp, &end, c_locale) : strtod(tmp, &end);
    if (end != tmp + len)
        return false;
    *out = v;
    return true;
}

/* ---- labels ------------------------------------------------------------------------- */

int ds_check_labels(const int64_t *vals, size_t n, int32_t declared, const char *path,
                    int32_t *classes, char **err)
{
    int64_t max = -1;
    for (size_t i = 0; i < n; i++) {
        int64_t v = vals[i];
        if (v < 0 || (declared > 0 && v >= declared) || v >= DATASET_MAX_CLASSES) {
            if (declared > 0 && v >= 0 && v < DATASET_MAX_CLASSES)
                return ds_fail(err, path, "label %lld of example %zu is out of range "
                               "[0, %d) (num_classes)", (long long)v, i, declared);
            return ds_fail(err, path, "label %lld of example %zu is out of range (labels are "
                           "integers from 0 to %d)", (long long)v, i, DATASET_MAX_CLASSES - 1);
        }
        if (v > max)
            max = v;
    }
    *classes = declared > 0 ? declared : (int32_t)(max + 1);
    return 0;
}

/* An integral number that fits an int64 (within ±2^53 so the double is exact). */
static bool label_integer(const char *s, int64_t *out)
{
    double v;
    if (!ds_parse_double(s, strlen(s), &v))
        return false;
    if (!isfinite(v) || v != floor(v) || fabs(v) > 9007199254740992.0)
        return false;
    *out = (int64_t)v;
    return true;
}

typedef struct label_map {
    char **keys;   /* open addressing, capacity power of two */
    int32_t *ids;
    size_t cap, n;
} label_map;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void map_grow(label_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    char **keys = xcalloc(ncap, sizeof *keys);
    int32_t *ids = xcalloc(ncap, sizeof *ids);
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = hash_str(m->keys[i]) & (ncap - 1);
        while (keys[j])
            j = (j + 1) & (ncap - 1);
        keys[j] = m->keys[i];
        ids[j] = m->ids[i];
    }
    free(m->keys);
    free(m->ids);
    m->keys = keys;
    m->ids = ids;
    m->cap = ncap;
}

/* The id of key, adding it with id m->n when new (key is borrowed). */
static int32_t map_id(label_map *m, char *key, bool *added)
{
    if ((m->n + 1) * 2 > m->cap)
        map_grow(m);
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0) {
            *added = false;
            return m->ids[j];
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = key;
    m->ids[j] = (int32_t)m->n++;
    *added = true;
    return m->ids[j];
}

int ds_labels_from_strings(char **vals, const size_t *where, size_t n, int32_t declared,
                           const char *path, int32_t **labels, int32_t *classes,
                           char ***names, char **err)
{
    *labels = NULL;
    *names = NULL;
    *classes = 0;
    bool all_int = true;
    int64_t *ints = xmalloc((n ? n : 1) * sizeof *ints);
    for (size_t i = 0; i < n && all_int; i++)
        all_int = label_integer(vals[i], &ints[i]);
    if (all_int) {
        for (size_t i = 0; i < n; i++) {
            int64_t v = ints[i];
            if (v < 0 || v >= DATASET_MAX_CLASSES || (declared > 0 && v >= declared)) {
                free(ints);
                if (declared > 0 && v >= 0 && v < DATASET_MAX_CLASSES)
                    return ds_fail(err, path, "line %zu: label %lld is out of range [0, %d) "
                                   "(num_classes)", where[i], (long long)v, declared);
                return ds_fail(err, path, "line %zu: label %lld is out of range (integer "
                               "labels are from 0 to %d)", where[i], (long long)v,
                               DATASET_MAX_CLASSES - 1);
            }
        }
        int32_t c;
        if (ds_check_labels(ints, n, declared, path, &c, err) != 0) {
            free(ints);
            return -1;
        }
        int32_t *out = xmalloc((n ? n : 1) * sizeof *out);
        for (size_t i = 0; i < n; i++)
            out[i] = (int32_t)ints[i];
        free(ints);
        *labels = out;
        *classes = c;
        return 0;
    }
    free(ints);
    label_map m = {0};
    int32_t *out = xmalloc((n ? n : 1) * sizeof *out);
    char **order = NULL;
    size_t order_cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (vals[i][0] == '\0') {
            free(out);
            free(order);
            free(m.keys);
            free(m.ids);
            return ds_fail(err, path, "line %zu: empty label", where[i]);
        }
        bool added;
        out[i] = map_id(&m, vals[i], &added);
        if (added) {
            if ((declared > 0 && m.n > (size_t)declared) || m.n > DATASET_MAX_CLASSES) {
                free(out);
                free(order);
                free(m.keys);
                free(m.ids);
                return ds_fail(err, path, "line %zu: label '%s' is class %zu, more classes "
                               "than num_classes (%d)", where[i], vals[i], m.n,
                               declared > 0 ? declared : DATASET_MAX_CLASSES);
            }
            if (m.n > order_cap) {
                order_cap = order_cap ? order_cap * 2 : 16;
                order = xrealloc(order, order_cap * sizeof *order);
            }
            order[m.n - 1] = vals[i];
        }
    }
    size_t c = declared > 0 ? (size_t)declared : m.n;
    char **nm = xcalloc(c ? c : 1, sizeof *nm);
    for (size_t i = 0; i < m.n; i++)
        nm[i] = xstrdup(order[i]);
    for (size_t i = m.n; i < c; i++)
        nm[i] = xasprintf("%zu", i); /* declared classes never seen */
    free(order);
    free(m.keys);
    free(m.ids);
    *labels = out;
    *classes = (int32_t)c;
    *names = nm;
    return 0;
}
