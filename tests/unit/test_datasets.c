/* datasets/: every reader on small files this test writes into a temporary folder, every
 * error case, arbitrary bytes (truncations and random mutations of valid files), and the
 * real Fashion-MNIST files when the dataset-fashion-mnist package is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <openssl/evp.h>
#include <png.h>
#include <zlib.h>

#include "common/util.h"
#include "datasets/dataset.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

static char tmpdir[256];

/* ---- helpers ------------------------------------------------------------------------ */

/* A path in the temporary folder; a ring of buffers so a few can be live at once. */
static const char *tp(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ & 7];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *name, const void *data, size_t len)
{
    /* A new file rather than truncating the old one: ext4 flushes a file rewritten through
     * O_TRUNC when it is closed (auto_da_alloc), which made the many rewrites of the
     * arbitrary-bytes test wait on the disk. */
    unlink(tp(name));
    FILE *f = fopen(tp(name), "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_str(const char *name, const char *s)
{
    write_bytes(name, s, strlen(s));
}

/* gzip of data (deflate with a gzip wrapper). */
static uint8_t *gzip_bytes(const void *data, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len) + 64;
    uint8_t *out = xmalloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* Raw deflate (zip members). */
static uint8_t *deflate_raw(const void *data, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len) + 64;
    uint8_t *out = xmalloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void write_gz(const char *name, const void *data, size_t len)
{
    size_t gl;
    uint8_t *g = gzip_bytes(data, len, &gl);
    write_bytes(name, g, gl);
    free(g);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    char *text = read_file(path, len);
    assert_non_null(text);
    return (uint8_t *)text;
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned mdlen = 0;
    assert_true(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL));
    for (unsigned i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
}

static void file_sha(const char *path, char hex[65])
{
    size_t len;
    uint8_t *d = read_all(path, &len);
    sha256_hex(d, len, hex);
    free(d);
}

static dataset *load_ok(const dataset_spec *spec)
{
    dataset *ds = NULL;
    char *err = NULL;
    if (dataset_load(spec, &ds, &err) != 0)
        fail_msg("load of %s failed: %s", spec->path, err);
    assert_null(err);
    assert_non_null(ds);
    return ds;
}

/* The load fails, the message names the file (when `path` is given) and has every needle. */
static void expect_fail(const dataset_spec *spec, const char *path, ...)
{
    dataset *ds = (dataset *)0x1;
    char *err = NULL;
    int rc = dataset_load(spec, &ds, &err);
    if (rc == 0) {
        dataset_free(ds);
        fail_msg("load of %s succeeded, expected an error", spec->path);
    }
    assert_null(ds);
    assert_non_null(err);
    if (path && !strstr(err, path))
        fail_msg("error '%s' does not name '%s'", err, path);
    va_list ap;
    va_start(ap, path);
    const char *needle;
    while ((needle = va_arg(ap, const char *)) != NULL)
        if (!strstr(err, needle))
            fail_msg("error '%s' lacks '%s'", err, needle);
    va_end(ap);
    free(err);
}

/* ---- builders ----------------------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* n images of h×w, pixel (i, j) = i * 16 + j. */
static uint8_t *idx_images(uint32_t n, uint32_t h, uint32_t w, size_t *len)
{
    *len = 16 + (size_t)n * h * w;
    uint8_t *b = xcalloc(*len, 1);
    b[2] = 0x08;
    b[3] = 3;
    put_be32(b + 4, n);
    put_be32(b + 8, h);
    put_be32(b + 12, w);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < (size_t)h * w; j++)
            b[16 + i * h * w + j] = (uint8_t)(i * 16 + j);
    return b;
}

static uint8_t *idx_labels(uint32_t n, const uint8_t *labels, size_t *len)
{
    *len = 8 + n;
    uint8_t *b = xcalloc(*len, 1);
    b[2] = 0x08;
    b[3] = 1;
    put_be32(b + 4, n);
    memcpy(b + 8, labels, n);
    return b;
}

/* A .npy file: descr, shape text such as "(3, 2)", data. */
static uint8_t *npy_bytes(const char *descr, const char *shape, const void *data, size_t nbytes,
                          int version, size_t *len)
{
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                      descr, shape);
    size_t pre = version == 1 ? 10 : 12;
    size_t hlen = (size_t)dl + 1;
    while ((pre + hlen) % 64)
        hlen++;
    *len = pre + hlen + nbytes;
    uint8_t *b = xmalloc(*len);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)version;
    b[7] = 0;
    if (version == 1) {
        b[8] = (uint8_t)hlen;
        b[9] = (uint8_t)(hlen >> 8);
    } else {
        b[8] = (uint8_t)hlen;
        b[9] = (uint8_t)(hlen >> 8);
        b[10] = (uint8_t)(hlen >> 16);
        b[11] = (uint8_t)(hlen >> 24);
    }
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, (size_t)dl);
    b[pre + hlen - 1] = '\n';
    if (nbytes)
        memcpy(b + pre + hlen, data, nbytes);
    return b;
}

static void write_npy(const char *name, const char *descr, const char *shape, const void *data,
                      size_t nbytes)
{
    size_t len;
    uint8_t *b = npy_bytes(descr, shape, data, nbytes, 1, &len);
    write_bytes(name, b, len);
    free(b);
}

typedef struct zip_member {
    const char *name;
    const uint8_t *data;
    size_t len;
    int method;     /* 0 stored, 8 deflate */
    bool zip64;     /* numpy's force_zip64 local headers */
} zip_member;

static void le16(strbuf *sb, unsigned v)
{
    char b[2] = {(char)(v & 0xff), (char)((v >> 8) & 0xff)};
    strbuf_append(sb, b, 2);
}

static void le32(strbuf *sb, uint32_t v)
{
    le16(sb, v & 0xffff);
    le16(sb, v >> 16);
}

static void le64(strbuf *sb, uint64_t v)
{
    le32(sb, (uint32_t)v);
    le32(sb, (uint32_t)(v >> 32));
}

static uint8_t *zip_bytes(const zip_member *m, size_t n, size_t *len)
{
    strbuf sb = {0}, cd = {0};
    for (size_t i = 0; i < n; i++) {
        size_t clen = m[i].len;
        uint8_t *comp = NULL;
        const uint8_t *payload = m[i].data;
        if (m[i].method == 8) {
            comp = deflate_raw(m[i].data, m[i].len, &clen);
            payload = comp;
        }
        uint32_t crc = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        size_t off = sb.len;
        size_t nl = strlen(m[i].name);
        le32(&sb, 0x04034b50);
        le16(&sb, m[i].zip64 ? 45 : 20);
        le16(&sb, 0);
        le16(&sb, (unsigned)m[i].method);
        le16(&sb, 0);
        le16(&sb, 0x21);
        le32(&sb, crc);
        le32(&sb, m[i].zip64 ? 0xFFFFFFFFu : (uint32_t)clen);
        le32(&sb, m[i].zip64 ? 0xFFFFFFFFu : (uint32_t)m[i].len);
        le16(&sb, (unsigned)nl);
        le16(&sb, m[i].zip64 ? 20 : 0);
        strbuf_append(&sb, m[i].name, nl);
        if (m[i].zip64) {
            le16(&sb, 1);
            le16(&sb, 16);
            le64(&sb, m[i].len);
            le64(&sb, clen);
        }
        strbuf_append(&sb, (const char *)payload, clen);
        free(comp);
        le32(&cd, 0x02014b50);
        le16(&cd, 20);
        le16(&cd, 20);
        le16(&cd, 0);
        le16(&cd, (unsigned)m[i].method);
        le16(&cd, 0);
        le16(&cd, 0x21);
        le32(&cd, crc);
        le32(&cd, (uint32_t)clen);
        le32(&cd, (uint32_t)m[i].len);
        le16(&cd, (unsigned)nl);
        le16(&cd, 0);
        le16(&cd, 0);
        le16(&cd, 0);
        le16(&cd, 0);
        le32(&cd, 0);
        le32(&cd, (uint32_t)off);
        strbuf_append(&cd, m[i].name, nl);
    }
    size_t cd_off = sb.len;
    strbuf_append(&sb, cd.data, cd.len);
    le32(&sb, 0x06054b50);
    le16(&sb, 0);
    le16(&sb, 0);
    le16(&sb, (unsigned)n);
    le16(&sb, (unsigned)n);
    le32(&sb, (uint32_t)cd.len);
    le32(&sb, (uint32_t)cd_off);
    le16(&sb, 0);
    strbuf_free(&cd);
    *len = sb.len;
    return (uint8_t *)strbuf_detach(&sb);
}

static void write_png(const char *name, int w, int h, int channels, const uint8_t *pixels)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    assert_true(png_image_write_to_file(&img, tp(name), 0, pixels, 0, NULL));
}

static void write_jpeg(const char *name, int w, int h, const uint8_t *grey)
{
    FILE *f = fopen(tp(name), "wb");
    assert_non_null(f);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < h; y++) {
        JSAMPROW row = (JSAMPROW)(uintptr_t)(grey + y * w);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static void mkdir_t(const char *name)
{
    assert_int_equal(mkdir(tp(name), 0755), 0);
}

/* ---- fixtures ----------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    /* $TMPDIR, else /dev/shm (the arbitrary-bytes test writes thousands of small files, and
     * opening a file costs ~0.5 ms on the disks of some build machines), else /tmp. */
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/rankql-datasets-XXXXXX", base);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- IDX ---------------------------------------------------------------------------- */

static void test_idx_plain_and_gzip(void **state)
{
    (void)state;
    size_t il, ll;
    const uint8_t labs[5] = {3, 0, 2, 3, 1};
    uint8_t *img = idx_images(5, 3, 4, &il);
    uint8_t *lab = idx_labels(5, labs, &ll);
    write_bytes("a-images-idx3-ubyte", img, il);
    write_gz("a-labels-idx1-ubyte.gz", lab, ll);
    write_gz("b-images-idx3-ubyte.gz", img, il);
    write_bytes("b-labels-idx1-ubyte", lab, ll);

    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_IDX, tp("a-images-idx3-ubyte"));
    spec.labels_path = tp("a-labels-idx1-ubyte.gz");
    dataset *ds = load_ok(&spec);
    assert_int_equal(ds->kind, DATASET_IMAGES);
    assert_int_equal(ds->pixel, DATASET_PIXEL_U8);
    assert_int_equal(ds->n, 5);
    assert_int_equal(ds->total, 5);
    assert_int_equal(ds->height, 3);
    assert_int_equal(ds->width, 4);
    assert_int_equal(ds->channels, 1);
    assert_int_equal(ds->num_classes, 4);
    assert_null(ds->class_names);
    assert_memory_equal(ds->u8, img + 16, 60);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ds->labels[i], labs[i]);
    /* Two files: the digest is the SHA-256 of their sha256sum-style manifest. */
    char h1[65], h2[65], want[65];
    file_sha(tp("a-images-idx3-ubyte"), h1);
    file_sha(tp("a-labels-idx1-ubyte.gz"), h2);
    char *manifest = xasprintf("%s  images\n%s  labels\n", h1, h2);
    sha256_hex(manifest, strlen(manifest), want);
    free(manifest);
    assert_string_equal(ds->digest, want);
    dataset_free(ds);

    /* gzip'd images, plain labels; the same content. */
    dataset_spec_init(&spec, DATASET_IDX, tp("b-images-idx3-ubyte.gz"));
    spec.labels_path = tp("b-labels-idx1-ubyte");
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 5);
    assert_memory_equal(ds->u8, img + 16, 60);
    assert_int_equal(ds->labels[4], 1);
    dataset_free(ds);

    /* The labels file is found by the MNIST naming when not given. */
    dataset_spec_init(&spec, DATASET_IDX, tp("b-images-idx3-ubyte.gz"));
    ds = load_ok(&spec);
    assert_non_null(ds->labels);
    assert_int_equal(ds->labels[0], 3);
    dataset_free(ds);

    /* Images alone: no labels. */
    write_bytes("solo.idx3", img, il);
    dataset_spec_init(&spec, DATASET_IDX, tp("solo.idx3"));
    ds = load_ok(&spec);
    assert_null(ds->labels);
    assert_int_equal(ds->num_classes, 0);
    dataset_free(ds);

    /* Slices: [1, 4), [2, end), a stop past the end is clamped, start == size is empty. */
    dataset_spec_init(&spec, DATASET_IDX, tp("a-images-idx3-ubyte"));
    spec.labels_path = tp("a-labels-idx1-ubyte.gz");
    spec.start = 1;
    spec.stop = 4;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->start, 1);
    assert_int_equal(ds->total, 5);
    assert_memory_equal(ds->u8, img + 16 + 12, 36);
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[2], 3);
    assert_int_equal(ds->num_classes, 4); /* from the whole file, not the slice */
    dataset_free(ds);
    spec.start = 2;
    spec.stop = DATASET_END;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 3);
    dataset_free(ds);
    spec.start = 3;
    spec.stop = 100;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 2);
    dataset_free(ds);
    spec.start = 5;
    spec.stop = DATASET_END;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 0);
    dataset_free(ds);
    spec.start = 6;
    expect_fail(&spec, "a-images-idx3-ubyte", "slice start 6 is past the end", "5 examples",
                NULL);
    spec.start = 3;
    spec.stop = 2;
    expect_fail(&spec, "a-images-idx3-ubyte", "slice stop 2 is before its start 3", NULL);
    spec.start = -1;
    spec.stop = DATASET_END;
    expect_fail(&spec, "a-images-idx3-ubyte", "slice start -1 is negative", NULL);
    free(img);
    free(lab);
}

static void test_idx_errors(void **state)
{
    (void)state;
    size_t il, ll;
    const uint8_t labs[4] = {0, 1, 5, 2};
    uint8_t *img = idx_images(4, 2, 2, &il);
    uint8_t *lab = idx_labels(4, labs, &ll);
    write_bytes("img", img, il);
    write_bytes("lab", lab, ll);
    dataset_spec spec;

    /* wrong magic */
    uint8_t bad[32];
    memcpy(bad, img, 32);
    bad[0] = 'P';
    write_bytes("magic", bad, 32);
    dataset_spec_init(&spec, DATASET_IDX, tp("magic"));
    expect_fail(&spec, tp("magic"), "wrong magic", "not an IDX file", NULL);
    /* header shorter than 4 bytes, and than its dimensions */
    write_bytes("short", img, 3);
    dataset_spec_init(&spec, DATASET_IDX, tp("short"));
    expect_fail(&spec, tp("short"), "truncated", "too short for an IDX header", NULL);
    write_bytes("short2", img, 10);
    dataset_spec_init(&spec, DATASET_IDX, tp("short2"));
    expect_fail(&spec, tp("short2"), "truncated IDX header", "3 dimensions", NULL);
    /* pixels cut short, and extra bytes after them */
    write_bytes("cut", img, il - 1);
    dataset_spec_init(&spec, DATASET_IDX, tp("cut"));
    expect_fail(&spec, tp("cut"), "truncated", "declares 16 bytes of pixels", "has 15", NULL);
    uint8_t *longer = xcalloc(il + 3, 1);
    memcpy(longer, img, il);
    write_bytes("long", longer, il + 3);
    free(longer);
    dataset_spec_init(&spec, DATASET_IDX, tp("long"));
    expect_fail(&spec, tp("long"), "3 unexpected bytes", NULL);
    /* unsupported element type */
    memcpy(bad, img, 32);
    bad[2] = 0x0D;
    write_bytes("float", bad, 32);
    dataset_spec_init(&spec, DATASET_IDX, tp("float"));
    expect_fail(&spec, tp("float"), "unsupported IDX element type 0x0D", "float32", NULL);
    /* labels given as the images, images given as the labels */
    dataset_spec_init(&spec, DATASET_IDX, tp("lab"));
    expect_fail(&spec, tp("lab"), "1-dimensional IDX file", "labels?", NULL);
    dataset_spec_init(&spec, DATASET_IDX, tp("img"));
    spec.labels_path = tp("img");
    expect_fail(&spec, NULL, "IDX labels need 1 dimension", "an images file?", NULL);
    /* count mismatch */
    size_t l3;
    uint8_t *lab3 = idx_labels(3, labs, &l3);
    write_bytes("lab3", lab3, l3);
    free(lab3);
    dataset_spec_init(&spec, DATASET_IDX, tp("img"));
    spec.labels_path = tp("lab3");
    expect_fail(&spec, tp("lab3"), "count mismatch", "3 labels for 4 images", NULL);
    /* label out of range of a declared class count */
    dataset_spec_init(&spec, DATASET_IDX, tp("img"));
    spec.labels_path = tp("lab");
    spec.num_classes = 3;
    expect_fail(&spec, tp("lab"), "label 5 of example 2 is out of range [0, 3)", NULL);
    spec.num_classes = 6;
    dataset *ds = load_ok(&spec);
    assert_int_equal(ds->num_classes, 6);
    dataset_free(ds);
    /* gzip: corrupt, truncated, too large for max_bytes */
    size_t gl;
    uint8_t *gz = gzip_bytes(img, il, &gl);
    write_bytes("trunc.gz", gz, gl - 6);
    dataset_spec_init(&spec, DATASET_IDX, tp("trunc.gz"));
    expect_fail(&spec, tp("trunc.gz"), "truncated gzip stream", NULL);
    gz[12] ^= 0xFF;
    gz[13] ^= 0x55;
    write_bytes("corrupt.gz", gz, gl);
    dataset_spec_init(&spec, DATASET_IDX, tp("corrupt.gz"));
    expect_fail(&spec, tp("corrupt.gz"), "gzip", NULL);
    free(gz);
    uint8_t *zeros = xcalloc(100000, 1);
    write_gz("big.gz", zeros, 100000);
    free(zeros);
    dataset_spec_init(&spec, DATASET_IDX, tp("big.gz"));
    spec.max_bytes = 5000;
    expect_fail(&spec, tp("big.gz"), "more than 5000 bytes when gunzipped", NULL);
    /* missing file, a folder */
    dataset_spec_init(&spec, DATASET_IDX, tp("nope"));
    expect_fail(&spec, tp("nope"), "cannot open", "No such file", NULL);
    dataset_spec_init(&spec, DATASET_IDX, tmpdir);
    expect_fail(&spec, tmpdir, "is a directory", NULL);
    dataset_spec_init(&spec, DATASET_IDX, "");
    expect_fail(&spec, NULL, "no path", NULL);
    free(img);
    free(lab);
}

/* ---- CSV ---------------------------------------------------------------------------- */

static void test_csv(void **state)
{
    (void)state;
    dataset_spec spec;
    dataset *ds;

    /* Header, string labels by column name, first-seen order. */
    write_str("iris.csv", "sepal,petal,species\n1.5,2,setosa\n3,4.25,virginica\n"
                          "5,-6e-1,setosa\n7,8,versicolor\n");
    dataset_spec_init(&spec, DATASET_CSV, tp("iris.csv"));
    spec.label_column = "species";
    ds = load_ok(&spec);
    assert_int_equal(ds->kind, DATASET_FEATURES);
    assert_int_equal(ds->n, 4);
    assert_int_equal(ds->dim, 2);
    assert_int_equal(ds->num_classes, 3);
    assert_string_equal(ds->class_names[0], "setosa");
    assert_string_equal(ds->class_names[1], "virginica");
    assert_string_equal(ds->class_names[2], "versicolor");
    const int32_t want_l[4] = {0, 1, 0, 2};
    const float want_f[8] = {1.5f, 2, 3, 4.25f, 5, -0.6f, 7, 8};
    assert_memory_equal(ds->labels, want_l, sizeof want_l);
    assert_memory_equal(ds->features, want_f, sizeof want_f);
    dataset_free(ds);

    /* The same with the default label column (the last) and header detection; a slice keeps
     * the class numbering of the whole file. */
    dataset_spec_init(&spec, DATASET_CSV, tp("iris.csv"));
    spec.start = 3;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 1);
    assert_int_equal(ds->labels[0], 2);
    assert_int_equal(ds->num_classes, 3);
    assert_float_equal(ds->features[0], 7, 0);
    dataset_free(ds);

    /* No header, integer labels in the first column, ';' delimiter, CRLF, blank lines, quotes. */
    write_str("semi.csv", "2;0.5;\"1\"\r\n\r\n0;\"1.5\" ;2\r\n1;3;4\r\n");
    dataset_spec_init(&spec, DATASET_CSV, tp("semi.csv"));
    spec.delimiter = ';';
    spec.label_index = 0;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->dim, 2);
    assert_int_equal(ds->num_classes, 3);
    assert_int_equal(ds->labels[0], 2);
    assert_int_equal(ds->labels[1], 0);
    assert_float_equal(ds->features[2], 1.5f, 0);
    assert_float_equal(ds->features[5], 4, 0);
    assert_null(ds->class_names);
    dataset_free(ds);

    /* Quoted labels with delimiters, escaped quotes and a newline; header = yes. */
    write_str("quoted.csv", "x,y,label\n1,2,\"a, b\"\n3,4,\"say \"\"hi\"\"\"\n5,6,\"two\nlines\"\n"
                            "7,8,\"a, b\"\n");
    dataset_spec_init(&spec, DATASET_CSV, tp("quoted.csv"));
    spec.header = DATASET_HEADER_YES;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 4);
    assert_int_equal(ds->num_classes, 3);
    assert_string_equal(ds->class_names[0], "a, b");
    assert_string_equal(ds->class_names[1], "say \"hi\"");
    assert_string_equal(ds->class_names[2], "two\nlines");
    assert_int_equal(ds->labels[3], 0);
    dataset_free(ds);

    /* The sklearn layout: a first line to skip, no header, gzip'd. Integral floats are integer
     * labels. */
    const char *wine = "3,2,class_0,class_1,class_2\n1,2,0.0\n3,4,2\n5,6,1\n";
    write_gz("wine.csv.gz", wine, strlen(wine));
    dataset_spec_init(&spec, DATASET_CSV, tp("wine.csv.gz"));
    spec.skip_rows = 1;
    spec.header = DATASET_HEADER_NO;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->num_classes, 3);
    assert_int_equal(ds->labels[1], 2);
    char want[65];
    file_sha(tp("wine.csv.gz"), want);
    assert_string_equal(ds->digest, want); /* one file: its own SHA-256 (as stored) */
    dataset_free(ds);

    /* Declared class count larger than the labels seen. */
    dataset_spec_init(&spec, DATASET_CSV, tp("iris.csv"));
    spec.num_classes = 5;
    ds = load_ok(&spec);
    assert_int_equal(ds->num_classes, 5);
    assert_string_equal(ds->class_names[4], "4");
    dataset_free(ds);
}

static void csv_fail(const char *content, const char *label_column, int label_index,
                     int32_t num_classes, const char *n1, const char *n2)
{
    write_str("bad.csv", content);
    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_CSV, tp("bad.csv"));
    spec.label_column = label_column;
    spec.label_index = label_index;
    spec.num_classes = num_classes;
    expect_fail(&spec, tp("bad.csv"), n1, n2, NULL);
}

static void test_csv_errors(void **state)
{
    (void)state;
    csv_fail("a,b,c\n1,2,0\n3,4\n", NULL, -1, 0, "line 3 has 2 fields, expected 3", "(as line 1)");
    csv_fail("a,b,c\n1,2,0\n\n5,6,1,9\n", NULL, -1, 0, "line 4 has 4 fields, expected 3", NULL);
    csv_fail("a,b,c\n1,x,0\n", NULL, -1, 0, "line 2, column 2 ('b'): 'x' is not a number", NULL);
    csv_fail("1,2,0\n1,,0\n", NULL, -1, 0, "line 2, column 2: empty value", NULL);
    csv_fail("a,b,c\n1,2,0\n", "label", -1, 0, "no column named 'label'", "'a', 'b', 'c'");
    csv_fail("a,b,c\n1,2,0\n", NULL, 3, 0, "label column index 3 is out of range for 3 columns",
             NULL);
    csv_fail("a,b,c\n1,2,0\n", NULL, -4, 0, "label column index -4 is out of range", NULL);
    csv_fail("a,b,c\n1,\"2,0\n", NULL, -1, 0, "line 2: unterminated quoted field", NULL);
    csv_fail("a,b,c\n1,\"2\"x,0\n", NULL, -1, 0, "line 2: unexpected 'x' after a closing quote",
             NULL);
    csv_fail("a,b,c\n1,nan,0\n", NULL, -1, 0, "line 2, column 2 ('b')", "not a finite float32");
    csv_fail("a,b,c\n1,1e300,0\n", NULL, -1, 0, "line 2, column 2", "not a finite float32");
    csv_fail("a,b,c\n1,2,0\n1,2,-1\n", NULL, -1, 0, "line 3: label -1 is out of range", NULL);
    csv_fail("a,b,c\n1,2,0\n1,2,7\n", NULL, -1, 5, "line 3: label 7 is out of range [0, 5)",
             NULL);
    csv_fail("a,b,c\n1,2,x\n1,2,y\n1,2,z\n", NULL, -1, 2, "line 4: label 'z' is class 3",
             "num_classes (2)");
    csv_fail("a,b,c\n1,2,\n", NULL, -1, 0, "line 2: empty label", NULL);
    csv_fail("a,b\n1,99999999\n", NULL, -1, 0, "line 2: label 99999999 is out of range",
             "from 0 to 16777215");
    csv_fail("label\nx\ny\n", NULL, -1, 0, "one column only", NULL);
    csv_fail("", NULL, -1, 0, "empty: no header and no rows", NULL);
    csv_fail("a,b,c\n", NULL, -1, 0, "no data rows after the header", NULL);
    write_bytes("bad.csv", "a,b,c\n1,2\0,3\n", 13);
    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_CSV, tp("bad.csv"));
    expect_fail(&spec, tp("bad.csv"), "line 2: NUL byte", NULL);
    /* A label column by name needs a header. */
    write_str("bad.csv", "1,2,0\n");
    dataset_spec_init(&spec, DATASET_CSV, tp("bad.csv"));
    spec.label_column = "c";
    spec.header = DATASET_HEADER_NO;
    expect_fail(&spec, tp("bad.csv"), "needs a header line", NULL);
    dataset_spec_init(&spec, DATASET_CSV, tp("bad.csv"));
    spec.skip_rows = 3;
    expect_fail(&spec, tp("bad.csv"), "skip_rows is 3 but the file has only 1 lines", NULL);
    write_str("bad.csv", "a,b,a\n1,2,0\n");
    dataset_spec_init(&spec, DATASET_CSV, tp("bad.csv"));
    spec.label_column = "a";
    expect_fail(&spec, tp("bad.csv"), "two columns are named 'a'", NULL);
}

/* ---- NPY ---------------------------------------------------------------------------- */

static void test_npy(void **state)
{
    (void)state;
    const float f4[6] = {1, 2, 3, 4.5f, -5, 6};
    const double f8[6] = {1, 2, 3, 4.5, -5, 6};
    const int64_t l8[3] = {2, 0, 1};
    const double lf[3] = {2, 0, 1};
    write_npy("f4.npy", "<f4", "(3, 2)", f4, sizeof f4);
    write_npy("f8.npy", "<f8", "(3, 2)", f8, sizeof f8);
    write_npy("l8.npy", "<i8", "(3,)", l8, sizeof l8);
    write_npy("lf.npy", "<f8", "(3, 1)", lf, sizeof lf);
    dataset_spec spec;
    dataset *ds;

    dataset_spec_init(&spec, DATASET_NPY, tp("f4.npy"));
    spec.labels_path = tp("l8.npy");
    ds = load_ok(&spec);
    assert_int_equal(ds->kind, DATASET_FEATURES);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->dim, 2);
    assert_memory_equal(ds->features, f4, sizeof f4);
    assert_int_equal(ds->labels[0], 2);
    assert_int_equal(ds->num_classes, 3);
    dataset_free(ds);

    dataset_spec_init(&spec, DATASET_NPY, tp("f8.npy"));
    spec.labels_path = tp("lf.npy");
    spec.start = 1;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 2);
    assert_memory_equal(ds->features, f4 + 2, 4 * sizeof(float));
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[1], 1);
    dataset_free(ds);

    /* Version 2 header, big-endian float32. */
    uint8_t be[24];
    for (int i = 0; i < 6; i++) {
        uint32_t u;
        memcpy(&u, &f4[i], 4);
        be[4 * i] = (uint8_t)(u >> 24);
        be[4 * i + 1] = (uint8_t)(u >> 16);
        be[4 * i + 2] = (uint8_t)(u >> 8);
        be[4 * i + 3] = (uint8_t)u;
    }
    size_t len;
    uint8_t *b = npy_bytes(">f4", "(3, 2)", be, sizeof be, 2, &len);
    write_bytes("be.npy", b, len);
    free(b);
    dataset_spec_init(&spec, DATASET_NPY, tp("be.npy"));
    ds = load_ok(&spec);
    assert_memory_equal(ds->features, f4, sizeof f4);
    assert_null(ds->labels);
    dataset_free(ds);

    /* uint8 images (n, H, W) stay uint8; float ones (n, H, W, C) become float pixels. */
    uint8_t u1[12];
    for (int i = 0; i < 12; i++)
        u1[i] = (uint8_t)(i * 20);
    write_npy("u1.npy", "|u1", "(2, 2, 3)", u1, sizeof u1);
    dataset_spec_init(&spec, DATASET_NPY, tp("u1.npy"));
    ds = load_ok(&spec);
    assert_int_equal(ds->kind, DATASET_IMAGES);
    assert_int_equal(ds->pixel, DATASET_PIXEL_U8);
    assert_int_equal(ds->height, 2);
    assert_int_equal(ds->width, 3);
    assert_int_equal(ds->channels, 1);
    assert_memory_equal(ds->u8, u1, 12);
    dataset_free(ds);
    write_npy("fimg.npy", "<f4", "(1, 1, 2, 3)", f4, sizeof f4);
    dataset_spec_init(&spec, DATASET_NPY, tp("fimg.npy"));
    ds = load_ok(&spec);
    assert_int_equal(ds->pixel, DATASET_PIXEL_F32);
    assert_int_equal(ds->channels, 3);
    assert_memory_equal(ds->f32, f4, sizeof f4);
    dataset_free(ds);

    /* int32 features of shape (n,), bool labels. */
    const int32_t i4[3] = {-7, 0, 9};
    const uint8_t bl[3] = {1, 0, 1};
    write_npy("i4.npy", "<i4", "(3,)", i4, sizeof i4);
    write_npy("bl.npy", "|b1", "(3,)", bl, sizeof bl);
    dataset_spec_init(&spec, DATASET_NPY, tp("i4.npy"));
    spec.labels_path = tp("bl.npy");
    ds = load_ok(&spec);
    assert_int_equal(ds->dim, 1);
    assert_float_equal(ds->features[0], -7, 0);
    assert_int_equal(ds->num_classes, 2);
    dataset_free(ds);
}

static void npy_fail(const char *descr, const char *shape, const void *data, size_t n,
                     const char *n1, const char *n2)
{
    write_npy("bad.npy", descr, shape, data, n);
    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_NPY, tp("bad.npy"));
    expect_fail(&spec, tp("bad.npy"), n1, n2, NULL);
}

static void test_npy_errors(void **state)
{
    (void)state;
    const float f4[6] = {1, 2, 3, 4, 5, 6};
    npy_fail("<f2", "(3,)", f4, 6, "unsupported dtype '<f2'", "float16");
    npy_fail("<U5", "(3,)", f4, 15, "unsupported dtype '<U5'", "strings");
    npy_fail("|O", "(3,)", f4, 24, "unsupported dtype", "Python objects");
    npy_fail("<c8", "(3,)", f4, 24, "unsupported dtype", "complex");
    npy_fail("<f4", "(3, 2)", f4, 20, "truncated", "declares 24 bytes of data");
    npy_fail("<f4", "(2, 2)", f4, 24, "8 unexpected bytes after", NULL);
    npy_fail("<f4", "(1, 1, 1, 1, 6)", f4, 24, "5 dimensions", NULL);
    npy_fail("<f4", "()", f4, 4, "0 dimensions", NULL);
    npy_fail("<f4", "(3, x)", f4, 24, "malformed .npy header", NULL);
    const float nanv[2] = {1, __builtin_nanf("")};
    npy_fail("<f4", "(2,)", nanv, 8, "element 1 is NaN", NULL);

    dataset_spec spec;
    write_str("bad.npy", "not numpy at all");
    dataset_spec_init(&spec, DATASET_NPY, tp("bad.npy"));
    expect_fail(&spec, tp("bad.npy"), "wrong magic", "\\x93NUMPY", NULL);
    write_bytes("bad.npy", "\x93NUMPY\x01", 7);
    expect_fail(&spec, tp("bad.npy"), "truncated .npy header", NULL);
    write_bytes("bad.npy", "\x93NUMPY\x01\x00\xff\x00{", 11);
    expect_fail(&spec, tp("bad.npy"), "truncated .npy header", "declares 255 bytes", NULL);
    write_bytes("bad.npy", "\x93NUMPY\x04\x00\x10\x00{}              ", 26);
    expect_fail(&spec, tp("bad.npy"), "unsupported .npy format version 4.0", NULL);
    write_bytes("bad.npy", "PK\x03\x04 etc", 8);
    expect_fail(&spec, tp("bad.npy"), "zip file", "npz", NULL);

    /* Fortran order, unknown key, structured dtype, missing key. */
    const char *hdrs[][2] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", "Fortran-order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", "unknown key 'x'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", "structured"},
        {"{'descr': '<f4', 'shape': (6,)}", "lacks 'fortran_order'"},
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof *hdrs; i++) {
        size_t hl = strlen(hdrs[i][0]);
        uint8_t *b = xmalloc(10 + hl + 24);
        memcpy(b, "\x93NUMPY\x01\x00", 8);
        b[8] = (uint8_t)hl;
        b[9] = 0;
        memcpy(b + 10, hdrs[i][0], hl);
        memcpy(b + 10 + hl, f4, 24);
        write_bytes("bad.npy", b, 10 + hl + 24);
        free(b);
        expect_fail(&spec, tp("bad.npy"), hdrs[i][1], NULL);
    }

    /* Labels: count mismatch, not integers, negative, a matrix. */
    write_npy("ok.npy", "<f4", "(3, 2)", f4, sizeof f4);
    const int64_t l2[2] = {0, 1};
    const double lh[3] = {0, 0.5, 1};
    const int64_t ln[3] = {0, -2, 1};
    write_npy("l2.npy", "<i8", "(2,)", l2, sizeof l2);
    write_npy("lh.npy", "<f8", "(3,)", lh, sizeof lh);
    write_npy("ln.npy", "<i8", "(3,)", ln, sizeof ln);
    write_npy("lm.npy", "<f4", "(3, 2)", f4, sizeof f4);
    dataset_spec_init(&spec, DATASET_NPY, tp("ok.npy"));
    spec.labels_path = tp("l2.npy");
    expect_fail(&spec, tp("l2.npy"), "count mismatch: 2 labels for 3 examples", NULL);
    spec.labels_path = tp("lh.npy");
    expect_fail(&spec, tp("lh.npy"), "label 0.5 of example 1 is not an integer", NULL);
    spec.labels_path = tp("ln.npy");
    expect_fail(&spec, tp("ln.npy"), "label -2 of example 1 is out of range", NULL);
    spec.labels_path = tp("lm.npy");
    expect_fail(&spec, tp("lm.npy"), "labels array must have shape (n,) or (n, 1)", NULL);
}

/* ---- NPZ ---------------------------------------------------------------------------- */

static void test_npz(void **state)
{
    (void)state;
    const float f4[6] = {1, 2, 3, 4, 5, 6};
    const int64_t l8[3] = {1, 0, 1};
    size_t fl, ll;
    uint8_t *fb = npy_bytes("<f4", "(3, 2)", f4, sizeof f4, 1, &fl);
    uint8_t *lb = npy_bytes("<i8", "(3,)", l8, sizeof l8, 1, &ll);
    dataset_spec spec;
    dataset *ds;
    struct {
        const char *file, *fname, *lname;
        int method;
        bool zip64;
    } cases[] = {
        {"stored.npz", "x.npy", "y.npy", 0, false},
        {"deflate.npz", "features.npy", "labels.npy", 8, false},
        {"zip64.npz", "X.npy", "Y.npy", 8, true},
    };
    for (size_t c = 0; c < 3; c++) {
        zip_member m[3] = {
            {"other.npy", lb, ll, 0, false},
            {cases[c].fname, fb, fl, cases[c].method, cases[c].zip64},
            {cases[c].lname, lb, ll, cases[c].method, cases[c].zip64},
        };
        size_t zl;
        uint8_t *z = zip_bytes(m, 3, &zl);
        write_bytes(cases[c].file, z, zl);
        free(z);
        dataset_spec_init(&spec, DATASET_NPZ, tp(cases[c].file));
        ds = load_ok(&spec);
        assert_int_equal(ds->n, 3);
        assert_int_equal(ds->dim, 2);
        assert_memory_equal(ds->features, f4, sizeof f4);
        assert_int_equal(ds->labels[0], 1);
        assert_int_equal(ds->num_classes, 2);
        char want[65];
        file_sha(tp(cases[c].file), want);
        assert_string_equal(ds->digest, want);
        dataset_free(ds);
    }
    /* Named arrays; features without labels. */
    dataset_spec_init(&spec, DATASET_NPZ, tp("stored.npz"));
    spec.features_key = "y";
    spec.labels_key = "other";
    ds = load_ok(&spec);
    assert_int_equal(ds->dim, 1);
    assert_int_equal(ds->labels[0], 1);
    dataset_free(ds);
    zip_member only[1] = {{"features.npy", fb, fl, 8, false}};
    size_t zl;
    uint8_t *z = zip_bytes(only, 1, &zl);
    write_bytes("nolabels.npz", z, zl);
    free(z);
    dataset_spec_init(&spec, DATASET_NPZ, tp("nolabels.npz"));
    ds = load_ok(&spec);
    assert_null(ds->labels);
    dataset_free(ds);
    free(fb);
    free(lb);
}

static void test_npz_errors(void **state)
{
    (void)state;
    const float f4[6] = {1, 2, 3, 4, 5, 6};
    size_t fl, zl;
    uint8_t *fb = npy_bytes("<f4", "(3, 2)", f4, sizeof f4, 1, &fl);
    dataset_spec spec;

    zip_member m[1] = {{"weights.npy", fb, fl, 0, false}};
    uint8_t *z = zip_bytes(m, 1, &zl);
    write_bytes("e.npz", z, zl);
    dataset_spec_init(&spec, DATASET_NPZ, tp("e.npz"));
    expect_fail(&spec, tp("e.npz"), "no 'features', 'x' or 'X' array", "(arrays: 'weights')",
                NULL);
    spec.features_key = "weights";
    spec.labels_key = "labels";
    expect_fail(&spec, tp("e.npz"), "no array 'labels'", NULL);
    free(z);

    /* CRC mismatch: flip one data byte of a stored member. */
    m[0].name = "x.npy";
    z = zip_bytes(m, 1, &zl);
    z[30 + 5 + 100] ^= 1;
    write_bytes("crc.npz", z, zl);
    dataset_spec_init(&spec, DATASET_NPZ, tp("crc.npz"));
    expect_fail(&spec, tp("crc.npz"), "CRC mismatch", NULL);
    /* truncated: the end record is gone */
    write_bytes("cut.npz", z, zl - 30);
    dataset_spec_init(&spec, DATASET_NPZ, tp("cut.npz"));
    expect_fail(&spec, tp("cut.npz"), "not a zip file, or truncated", NULL);
    free(z);
    /* unsupported method (bzip2 = 12), encrypted */
    z = zip_bytes(m, 1, &zl);
    size_t cd = zl - 22 - (46 + 5);
    z[cd + 10] = 12;
    write_bytes("bz.npz", z, zl);
    dataset_spec_init(&spec, DATASET_NPZ, tp("bz.npz"));
    expect_fail(&spec, tp("bz.npz"), "compression method 12", NULL);
    z[cd + 10] = 0;
    z[cd + 8] = 1;
    write_bytes("enc.npz", z, zl);
    dataset_spec_init(&spec, DATASET_NPZ, tp("enc.npz"));
    expect_fail(&spec, tp("enc.npz"), "encrypted", NULL);
    free(z);
    /* corrupt deflate data */
    m[0].method = 8;
    z = zip_bytes(m, 1, &zl);
    for (size_t i = 35; i < 45; i++)
        z[i] = 0xFF;
    write_bytes("inflate.npz", z, zl);
    dataset_spec_init(&spec, DATASET_NPZ, tp("inflate.npz"));
    expect_fail(&spec, tp("inflate.npz"), "zip entry 'x.npy'", NULL);
    free(z);
    /* a .npy given as npz; a bad array inside names the member */
    write_bytes("plain.npz", fb, fl);
    dataset_spec_init(&spec, DATASET_NPZ, tp("plain.npz"));
    expect_fail(&spec, tp("plain.npz"), "this is a .npy file", NULL);
    zip_member junk[1] = {{"x.npy", (const uint8_t *)"garbage!", 8, 0, false}};
    z = zip_bytes(junk, 1, &zl);
    write_bytes("junk.npz", z, zl);
    free(z);
    dataset_spec_init(&spec, DATASET_NPZ, tp("junk.npz"));
    expect_fail(&spec, "junk.npz[x.npy]", "wrong magic", NULL);
    free(fb);
}

/* ---- image folders ------------------------------------------------------------------ */

static void test_imagefolder(void **state)
{
    (void)state;
    mkdir_t("imgs");
    mkdir_t("imgs/zebra");
    mkdir_t("imgs/ant");
    mkdir_t("imgs/.hidden");
    uint8_t px[4][6];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++)
            px[i][j] = (uint8_t)(i * 50 + j);
    write_png("imgs/zebra/b.png", 3, 2, 1, px[0]);
    write_png("imgs/zebra/a.PNG", 3, 2, 1, px[1]);
    write_png("imgs/ant/x.png", 3, 2, 1, px[2]);
    write_png("imgs/ant/y.png", 3, 2, 1, px[3]);
    write_png("imgs/.hidden/h.png", 3, 2, 1, px[3]);
    write_str("imgs/ant/notes.txt", "ignored");
    write_str("imgs/README", "ignored");

    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("imgs"));
    dataset *ds = load_ok(&spec);
    assert_int_equal(ds->kind, DATASET_IMAGES);
    assert_int_equal(ds->n, 4);
    assert_int_equal(ds->height, 2);
    assert_int_equal(ds->width, 3);
    assert_int_equal(ds->channels, 1);
    assert_int_equal(ds->num_classes, 2);
    assert_string_equal(ds->class_names[0], "ant");
    assert_string_equal(ds->class_names[1], "zebra");
    /* ant/x, ant/y, zebra/a.PNG, zebra/b */
    const int32_t want_l[4] = {0, 0, 1, 1};
    assert_memory_equal(ds->labels, want_l, sizeof want_l);
    assert_memory_equal(ds->u8, px[2], 6);
    assert_memory_equal(ds->u8 + 6, px[3], 6);
    assert_memory_equal(ds->u8 + 12, px[1], 6);
    assert_memory_equal(ds->u8 + 18, px[0], 6);
    /* the digest covers every file with its class/name */
    char h[4][65], want[65];
    file_sha(tp("imgs/ant/x.png"), h[0]);
    file_sha(tp("imgs/ant/y.png"), h[1]);
    file_sha(tp("imgs/zebra/a.PNG"), h[2]);
    file_sha(tp("imgs/zebra/b.png"), h[3]);
    char *manifest = xasprintf("%s  ant/x.png\n%s  ant/y.png\n%s  zebra/a.PNG\n%s  zebra/b.png\n",
                               h[0], h[1], h[2], h[3]);
    sha256_hex(manifest, strlen(manifest), want);
    free(manifest);
    assert_string_equal(ds->digest, want);
    dataset_free(ds);

    /* A slice, and 3 channels from grey images. */
    spec.start = 1;
    spec.stop = 3;
    spec.channels = 3;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->channels, 3);
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[1], 1);
    for (int j = 0; j < 6; j++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(ds->u8[j * 3 + c], px[3][j]);
    dataset_free(ds);

    /* A JPEG among PNGs, and an RGB PNG converted to the first image's grey. */
    mkdir_t("mixed");
    mkdir_t("mixed/c0");
    mkdir_t("mixed/c1");
    uint8_t grey[64], rgb[192];
    for (int i = 0; i < 64; i++) {
        grey[i] = (uint8_t)(i * 4);
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)(i * 4);
    }
    write_png("mixed/c0/a.png", 8, 8, 1, grey);
    write_jpeg("mixed/c1/b.jpg", 8, 8, grey);
    write_png("mixed/c1/c.png", 8, 8, 3, rgb);
    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("mixed"));
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->channels, 1);
    for (int i = 0; i < 64; i++) {
        assert_true(abs((int)ds->u8[64 + i] - grey[i]) <= 8); /* JPEG at quality 100 */
        assert_true(abs((int)ds->u8[128 + i] - grey[i]) <= 1);
    }
    dataset_free(ds);
}

static void test_imagefolder_errors(void **state)
{
    (void)state;
    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("none"));
    expect_fail(&spec, tp("none"), "cannot open folder", NULL);
    write_str("afile", "x");
    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("afile"));
    expect_fail(&spec, tp("afile"), "not a folder", NULL);
    mkdir_t("empty");
    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("empty"));
    expect_fail(&spec, tp("empty"), "no class sub-folders", NULL);
    mkdir_t("empty/c");
    write_str("empty/c/readme.txt", "x");
    expect_fail(&spec, tp("empty"), "no PNG or JPEG images", NULL);

    uint8_t px[16] = {0};
    mkdir_t("e1");
    mkdir_t("e1/c");
    write_png("e1/c/a.png", 4, 4, 1, px);
    write_str("e1/c/b.png", "this is not an image");
    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("e1"));
    expect_fail(&spec, tp("e1/c/b.png"), "not a PNG or JPEG file", NULL);

    size_t len;
    uint8_t *png = read_all(tp("e1/c/a.png"), &len);
    write_bytes("e1/c/b.png", png, len / 2);
    expect_fail(&spec, tp("e1/c/b.png"), "corrupt PNG", NULL);
    free(png);
    write_png("e1/c/b.png", 2, 8, 1, px);
    expect_fail(&spec, tp("e1/c/b.png"), "image is 2x8 pixels", "'c/a.png') is 4x4", NULL);

    mkdir_t("e2");
    mkdir_t("e2/c");
    write_jpeg("e2/c/a.jpg", 8, 8, (uint8_t[64]){0});
    uint8_t *jpg = read_all(tp("e2/c/a.jpg"), &len);
    write_bytes("e2/c/a.jpg", jpg, len - 40);
    free(jpg);
    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("e2"));
    expect_fail(&spec, tp("e2/c/a.jpg"), "corrupt JPEG", NULL);

    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("e1"));
    spec.num_classes = 1;
    spec.channels = 2;
    expect_fail(&spec, tp("e1"), "channels must be 0", NULL);
}

/* ---- text --------------------------------------------------------------------------- */

static void test_text(void **state)
{
    (void)state;
    write_str("t.txt", "good movie\r\nbad movie\n\nfine, I guess\n");
    write_str("t.labels", "pos\nneg\nneg\npos\n");
    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_TEXT, tp("t.txt"));
    spec.labels_path = tp("t.labels");
    dataset *ds = load_ok(&spec);
    assert_int_equal(ds->kind, DATASET_TEXTS);
    assert_int_equal(ds->n, 4);
    assert_string_equal(ds->texts[0], "good movie");
    assert_string_equal(ds->texts[2], "");
    assert_string_equal(ds->texts[3], "fine, I guess");
    assert_int_equal(ds->num_classes, 2);
    assert_string_equal(ds->class_names[1], "neg");
    assert_int_equal(ds->labels[3], 0);
    dataset_free(ds);

    write_str("tab.txt", "1\tthe first\n0\tthe\tsecond\n2\tthird");
    dataset_spec_init(&spec, DATASET_TEXT, tp("tab.txt"));
    spec.tab_labels = true;
    spec.start = 1;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 2);
    assert_string_equal(ds->texts[0], "the\tsecond");
    assert_string_equal(ds->texts[1], "third");
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[1], 2);
    assert_int_equal(ds->num_classes, 3);
    dataset_free(ds);

    dataset_spec_init(&spec, DATASET_TEXT, tp("tab.txt"));
    ds = load_ok(&spec);
    assert_null(ds->labels);
    assert_string_equal(ds->texts[0], "1\tthe first");
    dataset_free(ds);
}

static void test_text_errors(void **state)
{
    (void)state;
    dataset_spec spec;
    write_str("t.txt", "a\nb\nc\n");
    write_str("t2.labels", "x\ny\n");
    dataset_spec_init(&spec, DATASET_TEXT, tp("t.txt"));
    spec.labels_path = tp("t2.labels");
    expect_fail(&spec, tp("t2.labels"), "count mismatch: 2 labels for 3 lines", NULL);
    write_str("t2.labels", "x\n\ny\n");
    expect_fail(&spec, tp("t2.labels"), "line 2: empty label", NULL);
    dataset_spec_init(&spec, DATASET_TEXT, tp("t.txt"));
    spec.tab_labels = true;
    expect_fail(&spec, tp("t.txt"), "line 1: no TAB", NULL);
    write_bytes("bin.txt", "ok\nbad\0\n", 8);
    dataset_spec_init(&spec, DATASET_TEXT, tp("bin.txt"));
    expect_fail(&spec, tp("bin.txt"), "line 2: NUL byte", NULL);
    write_str("utf.txt", "caf\xc3\xa9\nna\xefve\n");
    dataset_spec_init(&spec, DATASET_TEXT, tp("utf.txt"));
    expect_fail(&spec, tp("utf.txt"), "line 2: invalid UTF-8 (byte 0xef)", NULL);
    write_str("empty.txt", "");
    dataset_spec_init(&spec, DATASET_TEXT, tp("empty.txt"));
    expect_fail(&spec, tp("empty.txt"), "no lines", NULL);
}

/* ---- validate and JSON -------------------------------------------------------------- */

static void test_validate(void **state)
{
    (void)state;
    write_str("v.csv", "a,b\n1,0\n2,2\n3,0\n4,2\n");
    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_CSV, tp("v.csv"));
    dataset_info info;
    char *err = NULL;
    assert_int_equal(dataset_validate(&spec, &info, &err), 0);
    assert_int_equal(info.kind, DATASET_FEATURES);
    assert_int_equal(info.size, 4);
    assert_int_equal(info.total, 4);
    assert_true(info.has_labels);
    assert_int_equal(info.num_classes, 3);
    assert_int_equal(info.min_label, 0);
    assert_int_equal(info.max_label, 2);
    assert_int_equal(info.empty_classes, 1); /* class 1 never appears */
    assert_int_equal(info.dim, 1);
    char want[65];
    sha256_hex("a,b\n1,0\n2,2\n3,0\n4,2\n", 20, want);
    assert_string_equal(info.digest, want);
    /* the slice changes the size, not the digest */
    spec.start = 1;
    spec.stop = 2;
    assert_int_equal(dataset_validate(&spec, &info, &err), 0);
    assert_int_equal(info.size, 1);
    assert_int_equal(info.total, 4);
    assert_int_equal(info.min_label, 2);
    assert_string_equal(info.digest, want);
    /* a content change does */
    write_str("v.csv", "a,b\n1,0\n2,2\n3,0\n4,1\n");
    assert_int_equal(dataset_validate(&spec, &info, &err), 0);
    assert_string_not_equal(info.digest, want);
    spec.num_classes = 2;
    assert_int_equal(dataset_validate(&spec, &info, &err), -1);
    assert_non_null(strstr(err, "out of range [0, 2)"));
    free(err);
}

static void test_spec_json(void **state)
{
    (void)state;
    json_error_t je;
    json_t *o = json_loads("{\"label_column\": \"species\", \"header\": \"auto\", \"delimiter\": "
                           "\";\", \"skip_rows\": 1, \"num_classes\": 3, \"slice\": {\"start\": "
                           "10, \"stop\": 20}}", 0, &je);
    assert_non_null(o);
    dataset_spec spec;
    char *err = NULL;
    assert_int_equal(dataset_spec_from_json(DATASET_CSV, "x.csv", o, &spec, &err), 0);
    assert_string_equal(spec.path, "x.csv");
    assert_string_equal(spec.label_column, "species");
    assert_int_equal(spec.delimiter, ';');
    assert_int_equal(spec.skip_rows, 1);
    assert_int_equal(spec.num_classes, 3);
    assert_int_equal(spec.start, 10);
    assert_int_equal(spec.stop, 20);
    json_decref(o);
    o = json_loads("{\"label_column\": -2, \"header\": false}", 0, &je);
    assert_int_equal(dataset_spec_from_json(DATASET_CSV, "x.csv", o, &spec, &err), 0);
    assert_null(spec.label_column);
    assert_int_equal(spec.label_index, -2);
    assert_int_equal(spec.header, DATASET_HEADER_NO);
    json_decref(o);
    assert_int_equal(dataset_spec_from_json(DATASET_IDX, "i", NULL, &spec, &err), 0);
    assert_int_equal(spec.stop, DATASET_END);

    const char *bad[][3] = {
        {"csv", "{\"colour\": 1}", "unknown dataset option 'colour'"},
        {"idx", "{\"label_column\": \"a\"}", "'label_column' does not apply to format 'idx'"},
        {"csv", "{\"header\": 1}", "'header' must be true, false or \"auto\""},
        {"csv", "{\"delimiter\": \"ab\"}", "'delimiter' must be one character"},
        {"csv", "{\"num_classes\": 0}", "'num_classes' must be an integer from 1"},
        {"npz", "{\"slice\": {\"begin\": 1}}", "unknown key 'begin' in 'slice'"},
        {"npz", "{\"slice\": {\"start\": -1}}", "'slice.start' must be an integer"},
        {"text", "{\"tab_labels\": true, \"labels\": \"l\"}", "exclude each other"},
        {"imagefolder", "{\"channels\": 2}", "'channels' must be 0"},
        {"csv", "[1]", "must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dataset_format f;
        assert_int_equal(dataset_format_parse(bad[i][0], &f), 0);
        o = json_loads(bad[i][1], JSON_DECODE_ANY, &je);
        assert_non_null(o);
        err = NULL;
        assert_int_equal(dataset_spec_from_json(f, "p", o, &spec, &err), -1);
        if (!strstr(err, bad[i][2]))
            fail_msg("%s: error '%s' lacks '%s'", bad[i][1], err, bad[i][2]);
        free(err);
        json_decref(o);
    }
    dataset_format f;
    assert_int_equal(dataset_format_parse("imagefolder", &f), 0);
    assert_int_equal(f, DATASET_IMAGEFOLDER);
    assert_int_equal(dataset_format_parse("parquet", &f), -1);
    assert_string_equal(dataset_format_name(DATASET_NPZ), "npz");
}

/* ---- labels_only -------------------------------------------------------------------- */

/* A label source for label-only changes: the label column alone is a dataset (dim 0) only
 * with labels_only, and labels_only needs labels. */
static void test_labels_only(void **state)
{
    (void)state;
    write_str("labels.csv", "label\ncat\ndog\ncat\nbird\n");
    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_CSV, tp("labels.csv"));
    spec.header = DATASET_HEADER_YES;
    expect_fail(&spec, tp("labels.csv"), "one column only", "labels_only", NULL);
    spec.labels_only = true;
    dataset *ds = load_ok(&spec);
    assert_int_equal(ds->kind, DATASET_FEATURES);
    assert_int_equal(ds->n, 4);
    assert_int_equal(ds->dim, 0);
    assert_non_null(ds->features);
    assert_int_equal(ds->num_classes, 3);
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[1], 1);
    assert_int_equal(ds->labels[3], 2);
    assert_string_equal(ds->class_names[2], "bird");
    dataset_free(ds);
    /* a slice, integer labels, no header (auto: a lone label column is never a header) */
    write_str("labels.csv", "3\n0\n1\n2\n");
    dataset_spec_init(&spec, DATASET_CSV, tp("labels.csv"));
    spec.labels_only = true;
    spec.start = 1;
    spec.stop = 3;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->total, 4);
    assert_int_equal(ds->num_classes, 4);
    assert_int_equal(ds->labels[0], 0);
    assert_int_equal(ds->labels[1], 1);
    dataset_info info;
    char *err = NULL;
    assert_int_equal(dataset_validate(&spec, &info, &err), 0);
    assert_int_equal(info.size, 2);
    assert_int_equal(info.dim, 0);
    assert_true(info.has_labels);
    dataset_free(ds);
    /* labels_only with feature columns too is fine */
    write_str("labels.csv", "x,y\n1.5,1\n2,0\n");
    dataset_spec_init(&spec, DATASET_CSV, tp("labels.csv"));
    spec.labels_only = true;
    ds = load_ok(&spec);
    assert_int_equal(ds->dim, 1);
    assert_int_equal(ds->num_classes, 2);
    dataset_free(ds);
    /* labels_only without labels: an NPY array alone, a text file without labels */
    const float f4[4] = {1, 2, 3, 4};
    write_npy("nolabels.npy", "<f4", "(2, 2)", f4, sizeof f4);
    dataset_spec_init(&spec, DATASET_NPY, tp("nolabels.npy"));
    spec.labels_only = true;
    expect_fail(&spec, tp("nolabels.npy"), "labels_only is set but the npy source has no labels",
                NULL);
    write_str("lines.txt", "a\nb\n");
    dataset_spec_init(&spec, DATASET_TEXT, tp("lines.txt"));
    spec.labels_only = true;
    expect_fail(&spec, tp("lines.txt"), "has no labels", NULL);
    /* NPY: (n, 0) features with labels, only with labels_only */
    const int64_t l8[3] = {1, 0, 1};
    write_npy("empty.npy", "<f4", "(3, 0)", NULL, 0);
    write_npy("l8.npy", "<i8", "(3,)", l8, sizeof l8);
    dataset_spec_init(&spec, DATASET_NPY, tp("empty.npy"));
    spec.labels_path = tp("l8.npy");
    expect_fail(&spec, tp("empty.npy"), "dimension 1 of the features array is 0", NULL);
    spec.labels_only = true;
    ds = load_ok(&spec);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->dim, 0);
    assert_int_equal(ds->num_classes, 2);
    assert_int_equal(ds->labels[2], 1);
    dataset_free(ds);
    /* from JSON */
    json_t *o = json_pack("{s:b, s:s}", "labels_only", 1, "label_column", "label");
    assert_int_equal(dataset_spec_from_json(DATASET_CSV, "l.csv", o, &spec, &err), 0);
    assert_true(spec.labels_only);
    json_decref(o);
    o = json_pack("{s:i}", "labels_only", 1);
    assert_int_equal(dataset_spec_from_json(DATASET_IDX, "l", o, &spec, &err), -1);
    assert_non_null(strstr(err, "'labels_only' must be true or false"));
    free(err);
    json_decref(o);
    assert_int_equal(dataset_spec_from_json(DATASET_IDX, "l", NULL, &spec, &err), 0);
    assert_false(spec.labels_only);
}

/* ---- arbitrary bytes ---------------------------------------------------------------- */

static uint64_t rng_state = 0x1234567;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Loads spec after writing each truncation and `mutations` random corruptions of `good` to
 * `name`: every outcome must be a dataset or an error message, never a crash (ASan/UBSan
 * check the rest). */
static void torture(const dataset_spec *spec, const char *name, const uint8_t *good, size_t len,
                    int mutations, int *loaded, int *rejected)
{
    uint8_t *b = xmalloc(len + 1);
    size_t step = len > 400 ? len / 200 : 1;
    for (int round = 0; round < 2; round++) {
        size_t cuts = round == 0 ? len : (size_t)mutations;
        for (size_t i = 0; i < cuts; i += round == 0 ? step : 1) {
            size_t l = len;
            memcpy(b, good, len);
            if (round == 0) {
                l = i;
            } else {
                int flips = 1 + (int)(rnd() % 4);
                for (int k = 0; k < flips; k++) {
                    size_t at = (size_t)(rnd() % len);
                    switch (rnd() % 3) {
                    case 0: b[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
                    case 1: b[at] = (uint8_t)rnd(); break;
                    default: b[at] = (uint8_t)(rnd() % 2 ? 0xFF : 0x00); break;
                    }
                }
            }
            write_bytes(name, b, l);
            dataset *ds = NULL;
            char *err = NULL;
            if (dataset_load(spec, &ds, &err) == 0) {
                assert_non_null(ds);
                size_t per = dataset_example_size(ds);
                volatile uint8_t sink = 0;
                if (ds->u8 && ds->n)
                    sink ^= ds->u8[ds->n * per - 1];
                if (ds->features && ds->n)
                    sink ^= (uint8_t)(ds->features[ds->n * per - 1] != 0);
                for (size_t j = 0; ds->labels && j < ds->n; j++)
                    assert_true(ds->labels[j] >= 0 && ds->labels[j] < ds->num_classes);
                (void)sink;
                dataset_free(ds);
                (*loaded)++;
            } else {
                assert_non_null(err);
                assert_true(strlen(err) > 0);
                free(err);
                (*rejected)++;
            }
        }
    }
    free(b);
}

static void test_arbitrary_bytes(void **state)
{
    (void)state;
    int loaded = 0, rejected = 0;
    dataset_spec spec;
    size_t len, ll;
    const uint8_t labs[6] = {0, 1, 2, 1, 0, 2};
    uint8_t *img = idx_images(6, 4, 3, &len);
    uint8_t *lab = idx_labels(6, labs, &ll);
    write_bytes("f-labels", lab, ll);
    dataset_spec_init(&spec, DATASET_IDX, tp("f-images"));
    spec.labels_path = tp("f-labels");
    torture(&spec, "f-images", img, len, 400, &loaded, &rejected);
    size_t gl;
    uint8_t *gz = gzip_bytes(img, len, &gl);
    torture(&spec, "f-images", gz, gl, 400, &loaded, &rejected);
    write_bytes("f-images", img, len);
    torture(&spec, "f-labels", lab, ll, 200, &loaded, &rejected);
    free(gz);
    free(img);
    free(lab);

    const char *csv = "a,\"b\",label\n1.5,2,cat\n3,4,dog\n\"5\",6e1,cat\n7,8,bird\n";
    dataset_spec_init(&spec, DATASET_CSV, tp("f.csv"));
    torture(&spec, "f.csv", (const uint8_t *)csv, strlen(csv), 600, &loaded, &rejected);
    spec.label_column = "label";
    spec.start = 1;
    spec.stop = 3;
    torture(&spec, "f.csv", (const uint8_t *)csv, strlen(csv), 300, &loaded, &rejected);

    const float f4[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int64_t l8[4] = {1, 0, 1, 2};
    size_t fl;
    uint8_t *fb = npy_bytes("<f4", "(4, 2)", f4, sizeof f4, 1, &fl);
    uint8_t *lb = npy_bytes("<i8", "(4,)", l8, sizeof l8, 2, &ll);
    write_bytes("f.labels.npy", lb, ll);
    dataset_spec_init(&spec, DATASET_NPY, tp("f.npy"));
    spec.labels_path = tp("f.labels.npy");
    torture(&spec, "f.npy", fb, fl, 600, &loaded, &rejected);
    write_bytes("f.npy", fb, fl);
    torture(&spec, "f.labels.npy", lb, ll, 300, &loaded, &rejected);

    for (int method = 0; method <= 8; method += 8) {
        zip_member m[2] = {{"x.npy", fb, fl, method, method == 8},
                           {"y.npy", lb, ll, method, false}};
        size_t zl;
        uint8_t *z = zip_bytes(m, 2, &zl);
        dataset_spec_init(&spec, DATASET_NPZ, tp("f.npz"));
        torture(&spec, "f.npz", z, zl, 800, &loaded, &rejected);
        free(z);
    }
    free(fb);
    free(lb);

    mkdir_t("fimg");
    mkdir_t("fimg/c");
    uint8_t px[48];
    for (int i = 0; i < 48; i++)
        px[i] = (uint8_t)(i * 5);
    write_png("fimg/c/a.png", 4, 4, 3, px);
    write_jpeg("fimg/c/b.jpg", 4, 4, px);
    dataset_spec_init(&spec, DATASET_IMAGEFOLDER, tp("fimg"));
    uint8_t *png = read_all(tp("fimg/c/a.png"), &len);
    torture(&spec, "fimg/c/a.png", png, len, 300, &loaded, &rejected);
    write_bytes("fimg/c/a.png", png, len);
    free(png);
    uint8_t *jpg = read_all(tp("fimg/c/b.jpg"), &len);
    torture(&spec, "fimg/c/b.jpg", jpg, len, 300, &loaded, &rejected);
    free(jpg);

    const char *txt = "pos\tnice caf\xc3\xa9\nneg\tbad\r\npos\tok\n";
    dataset_spec_init(&spec, DATASET_TEXT, tp("f.txt"));
    spec.tab_labels = true;
    torture(&spec, "f.txt", (const uint8_t *)txt, strlen(txt), 300, &loaded, &rejected);

    print_message("arbitrary bytes: %d inputs loaded, %d rejected with a message\n", loaded,
                  rejected);
    assert_true(loaded > 0 && rejected > 0);
}

/* ---- Fashion-MNIST ------------------------------------------------------------------ */

static void test_fashion_mnist(void **state)
{
    (void)state;
    if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) != 0 ||
        access(FMNIST "/t10k-labels-idx1-ubyte.gz", R_OK) != 0) {
        print_message("skipped: Fashion-MNIST is not installed (" FMNIST "; Debian package "
                      "dataset-fashion-mnist)\n");
        skip();
    }
    const char *split[2] = {"train", "t10k"};
    const size_t want_n[2] = {60000, 10000};
    for (int s = 0; s < 2; s++) {
        char img[256], lab[256];
        snprintf(img, sizeof img, FMNIST "/%s-images-idx3-ubyte.gz", split[s]);
        snprintf(lab, sizeof lab, FMNIST "/%s-labels-idx1-ubyte.gz", split[s]);
        dataset_spec spec;
        dataset_spec_init(&spec, DATASET_IDX, img);
        spec.labels_path = lab;
        dataset_info info;
        char *err = NULL;
        if (dataset_validate(&spec, &info, &err) != 0)
            fail_msg("%s", err);
        assert_int_equal(info.size, want_n[s]);
        assert_int_equal(info.height, 28);
        assert_int_equal(info.width, 28);
        assert_int_equal(info.channels, 1);
        assert_int_equal(info.num_classes, 10);
        assert_int_equal(info.min_label, 0);
        assert_int_equal(info.max_label, 9);
        assert_int_equal(info.empty_classes, 0);
        assert_int_equal(strlen(info.digest), 64);
        /* 6000 / 1000 of each class */
        dataset *ds = load_ok(&spec);
        size_t counts[10] = {0};
        for (size_t i = 0; i < ds->n; i++)
            counts[ds->labels[i]]++;
        for (int c = 0; c < 10; c++)
            assert_int_equal(counts[c], want_n[s] / 10);
        dataset_free(ds);
        print_message("%s: %zu images 28x28, 10 classes, digest %.16s…\n", split[s], want_n[s],
                      info.digest);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_plain_and_gzip),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_npy_errors),
        cmocka_unit_test(test_npz),
        cmocka_unit_test(test_npz_errors),
        cmocka_unit_test(test_imagefolder),
        cmocka_unit_test(test_imagefolder_errors),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_text_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_spec_json),
        cmocka_unit_test(test_labels_only),
        cmocka_unit_test(test_arbitrary_bytes),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
