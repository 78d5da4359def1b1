/* Recorded fine-tune runs for the replay runner (replay.h; docs/runners.md "replay"). One
 * pass over the CSV text with RFC 4180 quoting, the rows of interest collected, sorted by
 * (model, dataset, line) and folded into one replay_pair per (model, dataset). */
#include "executor/workers/runners/replay.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- RFC 4180 records --------------------------------------------------------------- */

/* One record's fields: NUL-separated in buf, field i starting at buf.data + off[i]. */
typedef struct csv_record {
    strbuf buf;
    size_t *off;
    size_t n, cap;
} csv_record;

static void record_reset(csv_record *r)
{
    r->buf.len = 0;
    if (r->buf.data)
        r->buf.data[0] = '\0';
    r->n = 0;
}

static void record_start_field(csv_record *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 32;
        r->off = xrealloc(r->off, r->cap * sizeof *r->off);
    }
    r->off[r->n++] = r->buf.len;
}

static const char *field(const csv_record *r, size_t i)
{
    return r->buf.data + r->off[i];
}

/* Reads the record at *pos (its first line is *line); advances both past it. Returns 1 with
 * a record, 0 at the end of the text, -1 with *err. Fields are separated by commas and
 * records by LF or CRLF; a field in double quotes may hold commas, line breaks and "" (one
 * quote). A quote inside an unquoted field is kept as it is. */
static int next_record(const char *text, size_t len, size_t *pos, size_t *line,
                       csv_record *rec, const char *name, char **err)
{
    size_t p = *pos, start_line = *line;
    if (p >= len)
        return 0;
    record_reset(rec);
    for (;;) {
        record_start_field(rec);
        if (p < len && text[p] == '"') {
            p++;
            for (;;) {
                if (p >= len) {
                    *err = xasprintf("%s: line %zu: a quoted field is not closed", name,
                                     start_line);
                    return -1;
                }
                if (text[p] == '"') {
                    if (p + 1 < len && text[p + 1] == '"') {
                        strbuf_putc(&rec->buf, '"');
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (text[p] == '\n')
                    (*line)++;
                strbuf_putc(&rec->buf, text[p++]);
            }
            if (p < len && text[p] != ',' && text[p] != '\n' &&
                !(text[p] == '\r' && p + 1 < len && text[p + 1] == '\n') &&
                !(text[p] == '\r' && p + 1 == len)) {
                *err = xasprintf("%s: line %zu: text after the closing quote of field %zu", name,
                                 *line, rec->n);
                return -1;
            }
        } else {
            size_t s = p;
            while (p < len && text[p] != ',' && text[p] != '\n' &&
                   !(text[p] == '\r' && (p + 1 == len || text[p + 1] == '\n')))
                p++;
            strbuf_append(&rec->buf, text + s, p - s);
        }
        strbuf_putc(&rec->buf, '\0');
        if (p < len && text[p] == ',') {
            p++;
            continue;
        }
        /* end of record: CRLF, LF or the end of the text */
        if (p < len && text[p] == '\r')
            p++;
        if (p < len && text[p] == '\n')
            p++;
        (*line)++;
        *pos = p;
        return 1;
    }
}

/* ---- the records --------------------------------------------------------------------- */

typedef struct run_row {
    char *model, *dataset, *configs;
    double acc, elapsed;
    size_t line;
} run_row;

static int row_cmp(const void *a, const void *b)
{
    const run_row *x = a, *y = b;
    int c = strcmp(x->model, y->model);
    if (c == 0)
        c = strcmp(x->dataset, y->dataset);
    if (c == 0)
        c = x->line < y->line ? -1 : x->line > y->line;
    return c;
}

static bool parse_number(const char *s, double *out)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

void replay_records_free(replay_records *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->npairs; i++) {
        free(r->pairs[i].model);
        free(r->pairs[i].dataset);
        free(r->pairs[i].configs);
    }
    free(r->pairs);
    free(r);
}

int replay_records_parse(const char *text, size_t len, const char *name, replay_records **out,
                         char **err)
{
    *out = NULL;
    csv_record rec = {0};
    run_row *rows = NULL;
    size_t nrows = 0, cap = 0, pos = 0, line = 1;
    int rc = -1;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) /* a UTF-8 byte order mark */
        pos = 3;
    int got = next_record(text, len, &pos, &line, &rec, name, err);
    if (got < 0)
        goto out;
    if (got == 0) {
        *err = xasprintf("%s: empty file: a records file starts with a header naming its "
                         "columns (" REPLAY_COLUMNS ")", name);
        goto out;
    }
    static const char *const needed[] = {"model_identifier", "train_dataset_name",
                                         "test_accuracy", "elapsed_time"};
    enum { C_MODEL, C_DATASET, C_ACC, C_ELAPSED, C_CONFIGS, NCOLS };
    size_t col[NCOLS];
    bool has_configs = false;
    size_t nfields = rec.n;
    for (size_t k = 0; k < NCOLS; k++)
        col[k] = SIZE_MAX;
    for (size_t i = 0; i < rec.n; i++) {
        for (size_t k = 0; k < 4; k++)
            if (col[k] == SIZE_MAX && strcmp(field(&rec, i), needed[k]) == 0)
                col[k] = i;
        if (!has_configs && strcmp(field(&rec, i), "configs") == 0) {
            col[C_CONFIGS] = i;
            has_configs = true;
        }
    }
    for (size_t k = 0; k < 4; k++)
        if (col[k] == SIZE_MAX) {
            *err = xasprintf("%s: the header has no column \"%s\" (a records file needs "
                             REPLAY_COLUMNS ")", name, needed[k]);
            goto out;
        }
    for (;;) {
        size_t at = line;
        got = next_record(text, len, &pos, &line, &rec, name, err);
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        if (rec.n == 1 && field(&rec, 0)[0] == '\0') /* a blank line */
            continue;
        if (rec.n != nfields) {
            *err = xasprintf("%s: line %zu has %zu fields, the header %zu", name, at, rec.n,
                             nfields);
            goto out;
        }
        run_row r = {0};
        r.line = at;
        const char *model = field(&rec, col[C_MODEL]), *ds = field(&rec, col[C_DATASET]);
        if (!*model || !*ds) {
            *err = xasprintf("%s: line %zu: empty %s", name, at,
                             *model ? "train_dataset_name" : "model_identifier");
            goto out;
        }
        if (!parse_number(field(&rec, col[C_ACC]), &r.acc) || r.acc < 0 || r.acc > 1) {
            *err = xasprintf("%s: line %zu: test_accuracy must be a number in [0, 1], not "
                             "\"%.40s\"", name, at, field(&rec, col[C_ACC]));
            goto out;
        }
        if (!parse_number(field(&rec, col[C_ELAPSED]), &r.elapsed) || r.elapsed < 0) {
            *err = xasprintf("%s: line %zu: elapsed_time must be a number of seconds ≥ 0, not "
                             "\"%.40s\"", name, at, field(&rec, col[C_ELAPSED]));
            goto out;
        }
        r.model = xstrdup(model);
        r.dataset = xstrdup(ds);
        r.configs = has_configs ? xstrdup(field(&rec, col[C_CONFIGS])) : NULL;
        if (nrows == cap) {
            cap = cap ? 2 * cap : 256;
            rows = xrealloc(rows, cap * sizeof *rows);
        }
        rows[nrows++] = r;
    }
    if (nrows)
        qsort(rows, nrows, sizeof *rows, row_cmp);
    replay_records *res = xcalloc(1, sizeof *res);
    res->nrows = nrows;
    res->pairs = xcalloc(nrows + 1, sizeof *res->pairs);
    sha256_hex(text, len, res->digest);
    for (size_t i = 0; i < nrows;) {
        size_t j = i, best = i;
        double elapsed = 0;
        for (; j < nrows && strcmp(rows[j].model, rows[i].model) == 0 &&
               strcmp(rows[j].dataset, rows[i].dataset) == 0;
             j++) {
            elapsed += rows[j].elapsed;
            if (rows[j].acc > rows[best].acc) /* strictly better: ties keep the first run */
                best = j;
        }
        replay_pair *p = &res->pairs[res->npairs++];
        p->model = xstrdup(rows[i].model);
        p->dataset = xstrdup(rows[i].dataset);
        p->runs = j - i;
        p->test_accuracy = rows[best].acc;
        p->elapsed_seconds = elapsed;
        p->line = rows[best].line;
        p->configs = rows[best].configs ? xstrdup(rows[best].configs) : NULL;
        i = j;
    }
    *out = res;
    rc = 0;
out:
    for (size_t i = 0; i < nrows; i++) {
        free(rows[i].model);
        free(rows[i].dataset);
        free(rows[i].configs);
    }
    free(rows);
    strbuf_free(&rec.buf);
    free(rec.off);
    return rc;
}

int replay_records_load(const char *path, replay_records **out, char **err)
{
    *out = NULL;
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) {
        *err = xasprintf("records file %s cannot be read: %s", path, strerror(errno));
        return -1;
    }
    int rc = replay_records_parse(text, len, path, out, err);
    free(text);
    return rc;
}

int replay_file_digest(const char *path, char hex[HASH_HEX_LEN + 1], char **err)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) {
        *err = xasprintf("records file %s cannot be read: %s", path, strerror(errno));
        return -1;
    }
    sha256_hex(text, len, hex);
    free(text);
    return 0;
}

const replay_pair *replay_find(const replay_records *r, const char *model, const char *dataset)
{
    size_t lo = 0, hi = r ? r->npairs : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->pairs[mid].model, model);
        if (c == 0)
            c = strcmp(r->pairs[mid].dataset, dataset);
        if (c == 0)
            return &r->pairs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool replay_has_model(const replay_records *r, const char *model)
{
    size_t lo = 0, hi = r ? r->npairs : 0;
    while (lo < hi) { /* pairs are sorted by model first */
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->pairs[mid].model, model);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool replay_has_dataset(const replay_records *r, const char *dataset)
{
    for (size_t i = 0; r && i < r->npairs; i++)
        if (strcmp(r->pairs[i].dataset, dataset) == 0)
            return true;
    return false;
}
