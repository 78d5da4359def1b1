/* datasets/: CSV files: numeric feature columns and one label column. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "datasets/internal.h"

typedef struct csv_parser {
    const char *path;
    const char *data;
    size_t len, pos;
    size_t line;     /* physical line of data[pos], 1-based */
    char delim;
} csv_parser;

typedef struct csv_record {
    char *buf;       /* fields, each NUL-terminated */
    size_t len, cap;
    size_t *offs;    /* field starts in buf */
    size_t nfields, fcap;
    size_t line;     /* where the record starts */
} csv_record;

static void rec_putc(csv_record *r, char c)
{
    if (r->len == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->buf = xrealloc(r->buf, r->cap);
    }
    r->buf[r->len++] = c;
}

static void rec_field(csv_record *r)
{
    if (r->nfields == r->fcap) {
        r->fcap = r->fcap ? 2 * r->fcap : 32;
        r->offs = xrealloc(r->offs, r->fcap * sizeof *r->offs);
    }
    r->offs[r->nfields++] = r->len;
}

static const char *field(const csv_record *r, size_t i)
{
    return r->buf + r->offs[i];
}

/* 1 = a record, 0 = end of file, -1 = error. */
static int next_record(csv_parser *p, csv_record *r, char **err)
{
    const char *d = p->data;
    /* Blank lines ("" or "\r") are skipped. */
    for (;;) {
        if (p->pos < p->len && d[p->pos] == '\n') {
            p->pos++;
            p->line++;
        } else if (p->pos + 1 < p->len && d[p->pos] == '\r' && d[p->pos + 1] == '\n') {
            p->pos += 2;
            p->line++;
        } else if (p->pos + 1 == p->len && d[p->pos] == '\r') {
            p->pos++;
        } else {
            break;
        }
    }
    if (p->pos >= p->len)
        return 0;
    r->len = 0;
    r->nfields = 0;
    r->line = p->line;
    for (;;) {
        rec_field(r);
        if (p->pos < p->len && d[p->pos] == '"') {
            size_t qline = p->line;
            p->pos++;
            for (;;) {
                if (p->pos >= p->len)
                    return ds_fail(err, p->path, "line %zu: unterminated quoted field", qline);
                char c = d[p->pos];
                if (c == '\0')
                    return ds_fail(err, p->path, "line %zu: NUL byte (a binary file?)", p->line);
                if (c == '"') {
                    if (p->pos + 1 < p->len && d[p->pos + 1] == '"') {
                        rec_putc(r, '"');
                        p->pos += 2;
                        continue;
                    }
                    p->pos++;
                    break;
                }
                if (c == '\n')
                    p->line++;
                rec_putc(r, c);
                p->pos++;
            }
            while (p->pos < p->len && (d[p->pos] == ' ' || d[p->pos] == '\t') &&
                   d[p->pos] != p->delim)
                p->pos++;
            if (p->pos + 1 < p->len && d[p->pos] == '\r' && d[p->pos + 1] == '\n')
                p->pos++;
            else if (p->pos + 1 == p->len && d[p->pos] == '\r')
                p->pos++;
            if (p->pos < p->len && d[p->pos] != p->delim && d[p->pos] != '\n') {
                unsigned char c = (unsigned char)d[p->pos];
                if (c >= 0x20 && c < 0x7f)
                    return ds_fail(err, p->path, "line %zu: unexpected '%c' after a closing "
                                   "quote", p->line, c);
                return ds_fail(err, p->path, "line %zu: unexpected byte 0x%02x after a closing "
                               "quote", p->line, c);
            }
        } else {
            while (p->pos < p->len && d[p->pos] != p->delim && d[p->pos] != '\n') {
                if (d[p->pos] == '\0')
                    return ds_fail(err, p->path, "line %zu: NUL byte (a binary file?)", p->line);
                if (d[p->pos] == '\r' && (p->pos + 1 == p->len || d[p->pos + 1] == '\n')) {
                    p->pos++;
                    continue;
                }
                rec_putc(r, d[p->pos++]);
            }
        }
        rec_putc(r, '\0');
        if (p->pos < p->len && d[p->pos] == p->delim) {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && d[p->pos] == '\n') {
            p->pos++;
            p->line++;
        }
        return 1;
    }
}

static bool is_number(const char *s)
{
    double v;
    return ds_parse_double(s, strlen(s), &v);
}

static char *trimmed(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return xstrndup(s, n);
}

/* "column 3 ('name')" or "column 3". */
static char *column_label(char **names, size_t col)
{
    if (names)
        return xasprintf("column %zu ('%s')", col + 1, names[col]);
    return xasprintf("column %zu", col + 1);
}

int ds_read_csv(ds_ctx *ctx, dataset *ds, char **err)
{
    const dataset_spec *spec = ctx->spec;
    const char *path = spec->path;
    ds_buf b = {0};
    csv_record r = {0};
    char **names = NULL;
    size_t ncols = 0;
    float *feat = NULL;
    size_t feat_rows = 0, feat_cap = 0;
    strbuf labels = {0};
    size_t *label_offs = NULL, *label_lines = NULL, nlabels = 0, label_cap = 0;
    char **label_ptrs = NULL;
    int32_t *all = NULL;
    char **class_names = NULL;
    int rc = -1;

    if (ds_read_file(ctx, path, "features", &b, err) != 0)
        return -1;
    if (spec->delimiter == '"' || spec->delimiter == '\n' || spec->delimiter == '\r' ||
        spec->delimiter == '\0') {
        ds_fail(err, path, "the delimiter cannot be a quote, a newline or NUL");
        goto done;
    }
    csv_parser p = {.path = path, .data = (const char *)b.data, .len = b.len, .line = 1,
                    .delim = spec->delimiter};
    for (unsigned i = 0; i < spec->skip_rows; i++) {
        const char *nl = memchr(p.data + p.pos, '\n', p.len - p.pos);
        if (!nl) {
            ds_fail(err, path, "skip_rows is %u but the file has only %zu lines",
                    spec->skip_rows, p.line - (p.pos == p.len));
            goto done;
        }
        p.pos = (size_t)(nl - p.data) + 1;
        p.line++;
    }
    int got = next_record(&p, &r, err);
    if (got < 0)
        goto done;
    if (got == 0) {
        ds_fail(err, path, "empty: no header and no rows");
        goto done;
    }
    ncols = r.nfields;
    bool header;
    if (spec->header == DATASET_HEADER_YES || spec->label_column) {
        if (spec->header == DATASET_HEADER_NO) {
            ds_fail(err, path, "label_column '%s' is a name, which needs a header line "
                    "(header is no)", spec->label_column);
            goto done;
        }
        header = true;
    } else if (spec->header == DATASET_HEADER_NO) {
        header = false;
    } else {
        long li = spec->label_index < 0 ? (long)ncols + spec->label_index : spec->label_index;
        header = false;
        for (size_t c = 0; c < ncols; c++)
            if ((long)c != li && !is_number(field(&r, c)))
                header = true;
    }
    size_t label_col = 0;
    if (header) {
        names = xcalloc(ncols, sizeof *names);
        for (size_t c = 0; c < ncols; c++)
            names[c] = trimmed(field(&r, c));
    }
    if (spec->label_column) {
        bool found = false;
        for (size_t c = 0; c < ncols; c++) {
            if (strcmp(names[c], spec->label_column) != 0)
                continue;
            if (found) {
                ds_fail(err, path, "line %zu: two columns are named '%s'; give label_column "
                        "as an index", r.line, spec->label_column);
                goto done;
            }
            found = true;
            label_col = c;
        }
        if (!found) {
            strbuf sb = {0};
            for (size_t c = 0; c < ncols && c < 20; c++)
                strbuf_printf(&sb, "%s'%s'", c ? ", " : "", names[c]);
            if (ncols > 20)
                strbuf_puts(&sb, ", …");
            ds_fail(err, path, "no column named '%s' in the header (columns: %s)",
                    spec->label_column, sb.data);
            strbuf_free(&sb);
            goto done;
        }
    } else {
        long li = spec->label_index < 0 ? (long)ncols + spec->label_index : spec->label_index;
        if (li < 0 || li >= (long)ncols) {
            ds_fail(err, path, "label column index %d is out of range for %zu columns",
                    spec->label_index, ncols);
            goto done;
        }
        label_col = (size_t)li;
    }
    if (ncols < 2 && !spec->labels_only) {
        ds_fail(err, path, "line %zu: one column only; a CSV dataset needs feature columns "
                "besides the label column (or labels_only)", r.line);
        goto done;
    }
    size_t dim = ncols - 1;
    size_t header_line = r.line;
    uint64_t start = (uint64_t)spec->start;
    uint64_t stop = spec->stop == DATASET_END ? UINT64_MAX : (uint64_t)spec->stop;
    size_t row = 0;
    if (header) {
        got = next_record(&p, &r, err);
        if (got < 0)
            goto done;
    }
    for (; got == 1; row++) {
        if (r.nfields != ncols) {
            ds_fail(err, path, "line %zu has %zu fields, expected %zu (as line %zu)", r.line,
                    r.nfields, ncols, header_line);
            goto done;
        }
        bool keep = row >= start && row < stop && dim > 0;
        if (keep) {
            if (feat_rows == feat_cap) {
                feat_cap = feat_cap ? 2 * feat_cap : 256;
                size_t bytes;
                if (!ds_mul(feat_cap, dim * sizeof(float), &bytes)) {
                    ds_fail(err, path, "too many rows");
                    goto done;
                }
                feat = xrealloc(feat, bytes);
            }
        }
        float *out = keep ? feat + feat_rows * dim : NULL;
        for (size_t c = 0, j = 0; c < ncols; c++) {
            if (c == label_col)
                continue;
            const char *s = field(&r, c);
            double v;
            if (!ds_parse_double(s, strlen(s), &v)) {
                char *col = column_label(names, c);
                char *t = trimmed(s);
                if (!t[0])
                    ds_fail(err, path, "line %zu, %s: empty value", r.line, col);
                else
                    ds_fail(err, path, "line %zu, %s: '%.40s' is not a number", r.line, col, t);
                free(t);
                free(col);
                goto done;
            }
            if (!isfinite(v) || fabs(v) > FLT_MAX) {
                char *col = column_label(names, c);
                ds_fail(err, path, "line %zu, %s: %s is not a finite float32 value", r.line, col,
                        isnan(v) ? "NaN" : "the value");
                free(col);
                goto done;
            }
            if (out)
                out[j] = (float)v;
            j++;
        }
        if (keep)
            feat_rows++;
        if (nlabels == label_cap) {
            label_cap = label_cap ? 2 * label_cap : 256;
            label_offs = xrealloc(label_offs, label_cap * sizeof *label_offs);
            label_lines = xrealloc(label_lines, label_cap * sizeof *label_lines);
        }
        char *l = trimmed(field(&r, label_col));
        label_offs[nlabels] = labels.len;
        label_lines[nlabels] = r.line;
        nlabels++;
        strbuf_append(&labels, l, strlen(l) + 1);
        free(l);
        got = next_record(&p, &r, err);
        if (got < 0)
            goto done;
    }
    if (row == 0) {
        ds_fail(err, path, "no data rows%s", header ? " after the header" : "");
        goto done;
    }
    size_t s0, count;
    if (ds_slice(spec, row, path, &s0, &count, err) != 0)
        goto done;
    label_ptrs = xmalloc(nlabels * sizeof *label_ptrs);
    for (size_t i = 0; i < nlabels; i++)
        label_ptrs[i] = labels.data + label_offs[i];
    int32_t classes;
    if (ds_labels_from_strings(label_ptrs, label_lines, nlabels, spec->num_classes, path, &all,
                               &classes, &class_names, err) != 0)
        goto done;
    ds->kind = DATASET_FEATURES;
    ds->total = row;
    ds->start = s0;
    ds->n = count;
    ds->dim = dim;
    ds->features = feat ? feat : xmalloc(1);
    feat = NULL;
    ds->num_classes = classes;
    ds->class_names = class_names;
    class_names = NULL;
    ds_take_labels(ds, all, s0, count);
    rc = 0;
done:
    if (names) {
        for (size_t c = 0; c < ncols; c++)
            free(names[c]);
        free(names);
    }
    free(r.buf);
    free(r.offs);
    free(feat);
    strbuf_free(&labels);
    free(label_offs);
    free(label_lines);
    free(label_ptrs);
    free(all);
    ds_buf_free(&b);
    return rc;
}
