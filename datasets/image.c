/* datasets/: PNG (libpng's simplified API) and JPEG (libjpeg) decoding from memory. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "common/util.h"
#include "datasets/internal.h"

/* w × h × c bytes fit max_bytes and are plausible for a file of `len` bytes: deflate and
 * JPEG's entropy coding do not expand past ~1000:1 (×8 for 1-bit pixels), so a header that
 * claims more is corrupt, and is not allowed to make us allocate it. */
static bool pixels_fit(size_t w, size_t h, size_t c, uint64_t max_bytes, size_t len,
                       size_t *bytes)
{
    return ds_mul(w, h, bytes) && ds_mul(*bytes, c, bytes) && *bytes <= max_bytes &&
           *bytes / 8300 <= len + 1024;
}

static int decode_png(const uint8_t *data, size_t len, int channels, uint64_t max_bytes,
                      ds_image *out, char *why, size_t whylen)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, len)) {
        snprintf(why, whylen, "corrupt PNG: %s", img.message);
        png_image_free(&img);
        return -1;
    }
    int own = (img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    int ch = channels ? channels : own;
    img.format = ch == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    size_t bytes;
    if (!pixels_fit(img.width, img.height, (size_t)ch, max_bytes, len, &bytes)) {
        snprintf(why, whylen, "corrupt PNG: %ux%u pixels cannot come from %zu bytes (or are "
                 "more than max_bytes)", img.width, img.height, len);
        png_image_free(&img);
        return -1;
    }
    uint8_t *buf = xcalloc(bytes ? bytes : 1, 1);
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        snprintf(why, whylen, "corrupt PNG: %s", img.message);
        png_image_free(&img);
        free(buf);
        return -1;
    }
    out->pixels = buf;
    out->width = img.width;
    out->height = img.height;
    out->channels = (size_t)ch;
    png_image_free(&img);
    return 0;
}

typedef struct jpeg_state {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    int warnings;
    uint8_t *buf;
} jpeg_state;

static void jpeg_fail(j_common_ptr c)
{
    jpeg_state *st = (jpeg_state *)c->client_data;
    (*c->err->format_message)(c, st->msg);
    longjmp(st->jb, 1);
}

/* Warnings (e.g. "premature end of data segment") make the image count as corrupt. */
static void jpeg_message(j_common_ptr c, int level)
{
    jpeg_state *st = (jpeg_state *)c->client_data;
    if (level < 0 && st->warnings++ == 0)
        (*c->err->format_message)(c, st->msg);
}

static int decode_jpeg(const uint8_t *data, size_t len, int channels, uint64_t max_bytes,
                       ds_image *out, char *why, size_t whylen)
{
    jpeg_state *st = xcalloc(1, sizeof *st);
    st->cinfo.err = jpeg_std_error(&st->pub);
    st->pub.error_exit = jpeg_fail;
    st->pub.emit_message = jpeg_message;
    st->cinfo.client_data = st;
    if (setjmp(st->jb)) {
        snprintf(why, whylen, "corrupt JPEG: %s", st->msg);
        jpeg_destroy_decompress(&st->cinfo);
        free(st->buf);
        free(st);
        return -1;
    }
    jpeg_create_decompress(&st->cinfo);
    st->cinfo.client_data = st;
    jpeg_mem_src(&st->cinfo, data, (unsigned long)len);
    jpeg_read_header(&st->cinfo, TRUE);
    J_COLOR_SPACE cs = st->cinfo.jpeg_color_space;
    if (cs == JCS_CMYK || cs == JCS_YCCK) {
        snprintf(why, whylen, "CMYK JPEG images are not supported");
        jpeg_destroy_decompress(&st->cinfo);
        free(st);
        return -1;
    }
    int own = st->cinfo.num_components == 1 ? 1 : 3;
    int ch = channels ? channels : own;
    st->cinfo.out_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;
    size_t bytes;
    if (!pixels_fit(st->cinfo.image_width, st->cinfo.image_height, (size_t)ch, max_bytes, len,
                    &bytes)) {
        snprintf(why, whylen, "corrupt JPEG: %ux%u pixels cannot come from %zu bytes (or are "
                 "more than max_bytes)", st->cinfo.image_width, st->cinfo.image_height, len);
        jpeg_destroy_decompress(&st->cinfo);
        free(st);
        return -1;
    }
    jpeg_start_decompress(&st->cinfo);
    size_t w = st->cinfo.output_width, h = st->cinfo.output_height;
    if ((int)st->cinfo.output_components != ch ||
        !pixels_fit(w, h, (size_t)ch, max_bytes, len, &bytes)) {
        snprintf(why, whylen, "unexpected JPEG output format");
        jpeg_destroy_decompress(&st->cinfo);
        free(st);
        return -1;
    }
    st->buf = xmalloc(bytes ? bytes : 1);
    while (st->cinfo.output_scanline < st->cinfo.output_height) {
        JSAMPROW row = st->buf + (size_t)st->cinfo.output_scanline * w * (size_t)ch;
        if (jpeg_read_scanlines(&st->cinfo, &row, 1) != 1)
            break;
    }
    jpeg_finish_decompress(&st->cinfo);
    jpeg_destroy_decompress(&st->cinfo);
    if (st->warnings) {
        snprintf(why, whylen, "corrupt JPEG: %s", st->msg);
        free(st->buf);
        free(st);
        return -1;
    }
    out->pixels = st->buf;
    out->width = w;
    out->height = h;
    out->channels = (size_t)ch;
    free(st);
    return 0;
}

int ds_decode_image(const uint8_t *data, size_t len, int channels, uint64_t max_bytes,
                    ds_image *out, const char **why, char *whybuf, size_t whylen)
{
    memset(out, 0, sizeof *out);
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int rc;
    if (len >= 8 && memcmp(data, png_sig, 8) == 0)
        rc = decode_png(data, len, channels, max_bytes, out, whybuf, whylen);
    else if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        rc = decode_jpeg(data, len, channels, max_bytes, out, whybuf, whylen);
    else {
        snprintf(whybuf, whylen, "not a PNG or JPEG file (unknown signature)");
        rc = -1;
    }
    *why = whybuf;
    return rc;
}
