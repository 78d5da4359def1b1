/* datasets/: text files, one example per line; labels from a second file or "label<TAB>text". */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "datasets/internal.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Splits b into lines in place (NUL-terminated, CR of CRLF dropped) after checking for NUL
 * bytes and invalid UTF-8. *lines points into b->data. */
static int split_lines(const char *path, ds_buf *b, char ***lines, size_t *nlines, char **err)
{
    *lines = NULL;
    *nlines = 0;
    unsigned char *d = b->data;
    size_t line = 1;
    for (size_t i = 0; i < b->len;) {
        if (d[i] == '\n') {
            line++;
            i++;
            continue;
        }
        if (d[i] == 0)
            return ds_fail(err, path, "line %zu: NUL byte (a binary file?)", line);
        size_t k = utf8_seq(d + i, b->len - i);
        if (k == 0)
            return ds_fail(err, path, "line %zu: invalid UTF-8 (byte 0x%02x)", line, d[i]);
        i += k;
    }
    size_t n = 0, cap = 0;
    char **v = NULL;
    size_t pos = 0;
    while (pos < b->len) {
        char *s = (char *)d + pos;
        char *nl = memchr(s, '\n', b->len - pos);
        size_t l = nl ? (size_t)(nl - s) : b->len - pos;
        pos += l + (nl ? 1 : 0);
        if (l > 0 && s[l - 1] == '\r')
            l--;
        s[l] = '\0'; /* b->data has a spare byte after len */
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n++] = s;
    }
    *lines = v;
    *nlines = n;
    return 0;
}

int ds_read_text(ds_ctx *ctx, dataset *ds, char **err)
{
    const dataset_spec *spec = ctx->spec;
    const char *path = spec->path;
    ds_buf tb = {0}, lb = {0};
    char **lines = NULL, **llines = NULL, **texts = NULL, **lvals = NULL;
    size_t n = 0, nl = 0, *where = NULL;
    int32_t *all = NULL;
    char **names = NULL;
    int32_t classes = 0;
    int rc = -1;

    if (spec->tab_labels && spec->labels_path)
        return ds_fail(err, path, "tab_labels and a labels file exclude each other");
    if (ds_read_file(ctx, path, "text", &tb, err) != 0)
        goto done;
    if (split_lines(path, &tb, &lines, &n, err) != 0)
        goto done;
    if (n == 0) {
        ds_fail(err, path, "empty: no lines");
        goto done;
    }
    texts = lines;
    if (spec->tab_labels || spec->labels_path) {
        lvals = xmalloc(n * sizeof *lvals);
        where = xmalloc(n * sizeof *where);
        for (size_t i = 0; i < n; i++)
            where[i] = i + 1;
    }
    if (spec->tab_labels) {
        texts = xmalloc(n * sizeof *texts);
        for (size_t i = 0; i < n; i++) {
            char *tab = strchr(lines[i], '\t');
            if (!tab) {
                ds_fail(err, path, "line %zu: no TAB; with tab_labels every line is "
                        "'label<TAB>text'", i + 1);
                goto done;
            }
            *tab = '\0';
            lvals[i] = lines[i];
            texts[i] = tab + 1;
        }
    } else if (spec->labels_path) {
        if (ds_read_file(ctx, spec->labels_path, "labels", &lb, err) != 0)
            goto done;
        if (split_lines(spec->labels_path, &lb, &llines, &nl, err) != 0)
            goto done;
        if (nl != n) {
            ds_fail(err, spec->labels_path, "count mismatch: %zu labels for %zu lines of text "
                    "in %s", nl, n, path);
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            lvals[i] = llines[i];
    }
    if (lvals) {
        const char *lpath = spec->labels_path ? spec->labels_path : path;
        if (ds_labels_from_strings(lvals, where, n, spec->num_classes, lpath, &all, &classes,
                                   &names, err) != 0)
            goto done;
    }
    size_t start, count;
    if (ds_slice(spec, n, path, &start, &count, err) != 0)
        goto done;
    size_t bytes = 0;
    for (size_t i = start; i < start + count; i++)
        bytes += strlen(texts[i]) + 1;
    ds->kind = DATASET_TEXTS;
    ds->total = n;
    ds->start = start;
    ds->n = count;
    ds->text_block_ = xmalloc(bytes ? bytes : 1);
    ds->texts = xmalloc((count ? count : 1) * sizeof *ds->texts);
    char *p = ds->text_block_;
    for (size_t i = 0; i < count; i++) {
        size_t l = strlen(texts[start + i]) + 1;
        memcpy(p, texts[start + i], l);
        ds->texts[i] = p;
        p += l;
    }
    if (all) {
        ds->num_classes = classes;
        ds->class_names = names;
        names = NULL;
        ds_take_labels(ds, all, start, count);
    }
    rc = 0;
done:
    if (names) {
        for (int32_t c = 0; c < classes; c++)
            free(names[c]);
        free(names);
    }
    if (texts != lines)
        free(texts);
    free(lines);
    free(llines);
    free(lvals);
    free(where);
    free(all);
    ds_buf_free(&tb);
    ds_buf_free(&lb);
    return rc;
}
