/* Result output of the rankql shell: aligned tables, expanded records, CSV, JSON lines,
 * and positioned error messages. See format.h. */
#include "shell/format.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- text measurement -------------------------------------------------------------- */

/* Decodes one UTF-8 character; returns the bytes it takes (at least 1). An invalid or
 * truncated sequence is one byte, reported as U+FFFD. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (n > len) {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return n;
}

typedef struct range {
    uint32_t lo, hi;
} range;

static bool in_ranges(uint32_t c, const range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi)
            return true;
    return false;
}

/* Columns of one character in a terminal (a compact version of wcwidth that does not
 * depend on the locale). */
static int char_width(uint32_t c)
{
    static const range zero[] = {
        {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},
        {0x064B, 0x065F}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E},
        {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x202A, 0x202E},
        {0x2060, 0x2064}, {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
        {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF},
    };
    static const range wide[] = {
        {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
        {0x25FD, 0x25FE},   {0x2614, 0x2615},   {0x2E80, 0x303E},   {0x3041, 0x33FF},
        {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xA960, 0xA97F},
        {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},
        {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF},
        {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
    };
    if (c < 0x20 || (c >= 0x7F && c < 0xA0))
        return 0;
    if (in_ranges(c, zero, sizeof(zero) / sizeof(zero[0])))
        return 0;
    if (in_ranges(c, wide, sizeof(wide) / sizeof(wide[0])))
        return 2;
    return 1;
}

size_t sh_display_width(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        i += utf8_next(p + i, len - i, &c);
        w += (size_t)char_width(c);
    }
    return w;
}

static void put_spaces(strbuf *sb, size_t n)
{
    for (size_t i = 0; i < n; i++)
        strbuf_putc(sb, ' ');
}

static void put_repeat(strbuf *sb, char c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        strbuf_putc(sb, c);
}

/* Ends a line without the spaces that padded it. */
static void end_line(strbuf *sb, size_t line_start)
{
    while (sb->len > line_start && sb->data[sb->len - 1] == ' ')
        sb->len--;
    sb->data[sb->len] = '\0';
    strbuf_putc(sb, '\n');
}

/* ---- values ------------------------------------------------------------------------ */

static void put_real(strbuf *sb, double d)
{
    if (!isfinite(d)) {
        strbuf_puts(sb, "null");
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    strbuf_puts(sb, buf);
    if (!strpbrk(buf, ".eE"))
        strbuf_puts(sb, ".0"); /* stays a real when read back */
}

static void put_json_string(strbuf *sb, const char *s, size_t len)
{
    strbuf_putc(sb, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': strbuf_puts(sb, "\\\""); break;
        case '\\': strbuf_puts(sb, "\\\\"); break;
        case '\n': strbuf_puts(sb, "\\n"); break;
        case '\r': strbuf_puts(sb, "\\r"); break;
        case '\t': strbuf_puts(sb, "\\t"); break;
        case '\b': strbuf_puts(sb, "\\b"); break;
        case '\f': strbuf_puts(sb, "\\f"); break;
        default:
            if (c < 0x20)
                strbuf_printf(sb, "\\u%04x", c);
            else
                strbuf_putc(sb, (char)c);
        }
    }
    strbuf_putc(sb, '"');
}

void sh_json_compact(strbuf *out, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        bool first = true;
        strbuf_putc(out, '{');
        json_object_foreach((json_t *)v, key, val) {
            if (!first)
                strbuf_putc(out, ',');
            first = false;
            put_json_string(out, key, strlen(key));
            strbuf_putc(out, ':');
            sh_json_compact(out, val);
        }
        strbuf_putc(out, '}');
        break;
    }
    case JSON_ARRAY:
        strbuf_putc(out, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                strbuf_putc(out, ',');
            sh_json_compact(out, json_array_get(v, i));
        }
        strbuf_putc(out, ']');
        break;
    case JSON_STRING:
        put_json_string(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        strbuf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        put_real(out, json_real_value(v));
        break;
    case JSON_TRUE: strbuf_puts(out, "true"); break;
    case JSON_FALSE: strbuf_puts(out, "false"); break;
    case JSON_NULL: strbuf_puts(out, "null"); break;
    }
}

char *sh_value_text(const json_t *v)
{
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return xstrndup(json_string_value(v), json_string_length(v));
    strbuf sb = {0};
    sh_json_compact(&sb, v);
    return strbuf_detach(&sb);
}

/* ---- options ----------------------------------------------------------------------- */

bool sh_format_parse(const char *name, sh_format *out)
{
    static const struct {
        const char *name;
        sh_format f;
    } names[] = {{"table", SH_FORMAT_TABLE}, {"aligned", SH_FORMAT_TABLE},
                 {"csv", SH_FORMAT_CSV},     {"json", SH_FORMAT_JSON}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].f;
            return true;
        }
    return false;
}

const char *sh_format_name(sh_format f)
{
    switch (f) {
    case SH_FORMAT_CSV: return "csv";
    case SH_FORMAT_JSON: return "json";
    case SH_FORMAT_TABLE: break;
    }
    return "table";
}

/* ---- a result as a grid of texts ------------------------------------------------------ */

typedef struct grid {
    size_t ncols, nrows;
    char **names;      /* ncols */
    char **cells;      /* nrows × ncols; NULL = SQL NULL */
    bool *numeric;     /* ncols: every non-null value is a number (and there is one) */
} grid;

static const json_t *row_value(const json_t *row, const json_t *columns, size_t col)
{
    if (json_is_array(row))
        return json_array_get(row, col);
    if (json_is_object(row)) {
        const char *name = json_string_value(json_array_get(columns, col));
        return name ? json_object_get(row, name) : NULL;
    }
    return col == 0 ? row : NULL;
}

static void grid_init(grid *g, const json_t *result)
{
    const json_t *columns = json_object_get(result, "columns");
    const json_t *rows = json_object_get(result, "rows");
    memset(g, 0, sizeof(*g));
    g->ncols = json_is_array(columns) ? json_array_size(columns) : 0;
    g->nrows = json_is_array(rows) ? json_array_size(rows) : 0;
    g->names = xcalloc(g->ncols, sizeof(char *));
    g->numeric = xcalloc(g->ncols, sizeof(bool));
    g->cells = xcalloc(g->nrows * g->ncols, sizeof(char *));
    bool *seen = xcalloc(g->ncols, sizeof(bool));
    for (size_t c = 0; c < g->ncols; c++) {
        char *name = sh_value_text(json_array_get(columns, c));
        g->names[c] = name ? name : xstrdup("");
        g->numeric[c] = true;
    }
    for (size_t r = 0; r < g->nrows; r++) {
        const json_t *row = json_array_get(rows, r);
        for (size_t c = 0; c < g->ncols; c++) {
            const json_t *v = row_value(row, columns, c);
            g->cells[r * g->ncols + c] = sh_value_text(v);
            if (v && !json_is_null(v)) {
                seen[c] = true;
                if (!json_is_number(v))
                    g->numeric[c] = false;
            }
        }
    }
    for (size_t c = 0; c < g->ncols; c++)
        g->numeric[c] = g->numeric[c] && seen[c];
    free(seen);
}

static void grid_free(grid *g)
{
    for (size_t c = 0; c < g->ncols; c++)
        free(g->names[c]);
    for (size_t i = 0; i < g->nrows * g->ncols; i++)
        free(g->cells[i]);
    free(g->names);
    free(g->cells);
    free(g->numeric);
}

/* A cell's text for the terminal: control characters other than newlines become spaces,
 * so they cannot break the alignment. */
static char *display_text(const char *s)
{
    char *d = xstrdup(s ? s : "");
    for (char *p = d; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\n')
            *p = ' ';
    return d;
}

/* Line k (0-based) of a multi-line text: start and length; false past the last line. */
static bool text_line(const char *s, size_t k, const char **start, size_t *len)
{
    const char *p = s;
    for (size_t i = 0; i < k; i++) {
        p = strchr(p, '\n');
        if (!p)
            return false;
        p++;
    }
    const char *nl = strchr(p, '\n');
    *start = p;
    *len = nl ? (size_t)(nl - p) : strlen(p);
    return true;
}

static size_t line_count(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static size_t max_line_width(const char *s)
{
    size_t w = 0, n = line_count(s);
    for (size_t k = 0; k < n; k++) {
        const char *p;
        size_t len;
        text_line(s, k, &p, &len);
        size_t lw = sh_display_width(p, len);
        if (lw > w)
            w = lw;
    }
    return w;
}

typedef enum { ALIGN_LEFT, ALIGN_RIGHT, ALIGN_CENTER } align;

static void put_aligned(strbuf *sb, const char *s, size_t len, size_t width, align a)
{
    size_t w = sh_display_width(s, len);
    size_t pad = width > w ? width - w : 0;
    size_t left = a == ALIGN_RIGHT ? pad : a == ALIGN_CENTER ? pad / 2 : 0;
    put_spaces(sb, left);
    strbuf_append(sb, s, len);
    put_spaces(sb, pad - left);
}

/* ---- table ------------------------------------------------------------------------- */

static void print_title(strbuf *out, const char *title, size_t total)
{
    size_t tw = sh_display_width(title, strlen(title));
    size_t start = out->len;
    put_spaces(out, total > tw ? (total - tw) / 2 : 0);
    strbuf_puts(out, title);
    end_line(out, start);
}

static void print_table(strbuf *out, const grid *g, const sh_print_opts *opts)
{
    size_t n = g->ncols;
    size_t *width = xcalloc(n, sizeof(size_t));
    char **text = xcalloc(g->nrows * n, sizeof(char *));
    for (size_t c = 0; c < n; c++)
        width[c] = sh_display_width(g->names[c], strlen(g->names[c]));
    for (size_t i = 0; i < g->nrows * n; i++) {
        text[i] = display_text(g->cells[i]);
        size_t w = max_line_width(text[i]);
        if (w > width[i % n])
            width[i % n] = w;
    }
    if (opts->title) {
        size_t total = n ? n - 1 : 0;
        for (size_t c = 0; c < n; c++)
            total += width[c] + 2;
        print_title(out, opts->title, total);
    }

    size_t start = out->len;
    for (size_t c = 0; c < n; c++) {
        char *name = display_text(g->names[c]);
        for (char *p = name; *p; p++)
            if (*p == '\n')
                *p = ' ';
        strbuf_puts(out, c ? "| " : " ");
        put_aligned(out, name, strlen(name), width[c], ALIGN_CENTER);
        strbuf_putc(out, ' ');
        free(name);
    }
    end_line(out, start);
    for (size_t c = 0; c < n; c++) {
        if (c)
            strbuf_putc(out, '+');
        put_repeat(out, '-', width[c] + 2);
    }
    strbuf_putc(out, '\n');

    for (size_t r = 0; r < g->nrows; r++) {
        size_t lines = 1;
        for (size_t c = 0; c < n; c++) {
            size_t l = line_count(text[r * n + c]);
            if (l > lines)
                lines = l;
        }
        for (size_t k = 0; k < lines; k++) {
            start = out->len;
            for (size_t c = 0; c < n; c++) {
                const char *cell = text[r * n + c];
                const char *p = "";
                size_t len = 0;
                bool has = text_line(cell, k, &p, &len);
                const char *dummy;
                size_t dlen;
                bool more = has && text_line(cell, k + 1, &dummy, &dlen);
                if (c)
                    strbuf_putc(out, '|');
                strbuf_putc(out, ' ');
                put_aligned(out, has ? p : "", has ? len : 0, width[c],
                            g->numeric[c] ? ALIGN_RIGHT : ALIGN_LEFT);
                strbuf_putc(out, more ? '+' : ' ');
            }
            end_line(out, start);
        }
    }
    strbuf_printf(out, "(%zu %s)\n\n", g->nrows, g->nrows == 1 ? "row" : "rows");
    for (size_t i = 0; i < g->nrows * n; i++)
        free(text[i]);
    free(text);
    free(width);
}

static void print_expanded(strbuf *out, const grid *g, const sh_print_opts *opts)
{
    size_t n = g->ncols;
    size_t nw = 0, vw = 0;
    char **names = xcalloc(n, sizeof(char *));
    for (size_t c = 0; c < n; c++) {
        names[c] = display_text(g->names[c]);
        for (char *p = names[c]; *p; p++)
            if (*p == '\n')
                *p = ' ';
        size_t w = sh_display_width(names[c], strlen(names[c]));
        if (w > nw)
            nw = w;
    }
    char **text = xcalloc(g->nrows * n, sizeof(char *));
    for (size_t i = 0; i < g->nrows * n; i++) {
        text[i] = display_text(g->cells[i]);
        size_t w = max_line_width(text[i]);
        if (w > vw)
            vw = w;
    }
    if (opts->title)
        print_title(out, opts->title, nw + vw + 3);
    if (g->nrows == 0)
        strbuf_puts(out, "(0 rows)\n");
    for (size_t r = 0; r < g->nrows; r++) {
        /* -[ RECORD n ]-----+------ : dashes over both columns, '+' above the '|' */
        char *label = xasprintf("-[ RECORD %zu ]", r + 1);
        size_t llen = strlen(label), total = nw + vw + 3;
        char *rule = xmalloc((total > llen ? total : llen) + 1);
        memset(rule, '-', total);
        rule[total] = '\0';
        rule[nw + 1] = '+';
        if (llen >= total) {
            free(rule);
            rule = xstrdup(label);
        } else {
            memcpy(rule, label, llen);
        }
        strbuf_puts(out, rule);
        strbuf_putc(out, '\n');
        free(rule);
        free(label);
        for (size_t c = 0; c < n; c++) {
            const char *cell = text[r * n + c];
            size_t lines = line_count(cell);
            for (size_t k = 0; k < lines; k++) {
                const char *p;
                size_t len;
                text_line(cell, k, &p, &len);
                size_t start = out->len;
                put_aligned(out, k == 0 ? names[c] : "", k == 0 ? strlen(names[c]) : 0, nw,
                            ALIGN_LEFT);
                strbuf_puts(out, " | ");
                strbuf_append(out, p, len);
                if (k + 1 < lines)
                    strbuf_putc(out, '+');
                end_line(out, start);
            }
        }
    }
    strbuf_putc(out, '\n');
    for (size_t i = 0; i < g->nrows * n; i++)
        free(text[i]);
    for (size_t c = 0; c < n; c++)
        free(names[c]);
    free(text);
    free(names);
}

/* ---- CSV --------------------------------------------------------------------------- */

static void put_csv_field(strbuf *out, const char *s)
{
    if (!s)
        return; /* NULL: an empty field; an empty string is "" */
    if (*s && !strpbrk(s, ",\"\r\n")) {
        strbuf_puts(out, s);
        return;
    }
    strbuf_putc(out, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            strbuf_putc(out, '"');
        strbuf_putc(out, *p);
    }
    strbuf_putc(out, '"');
}

static void print_csv(strbuf *out, const grid *g)
{
    for (size_t c = 0; c < g->ncols; c++) {
        if (c)
            strbuf_putc(out, ',');
        put_csv_field(out, g->names[c]);
    }
    strbuf_putc(out, '\n');
    for (size_t r = 0; r < g->nrows; r++) {
        for (size_t c = 0; c < g->ncols; c++) {
            if (c)
                strbuf_putc(out, ',');
            put_csv_field(out, g->cells[r * g->ncols + c]);
        }
        strbuf_putc(out, '\n');
    }
}

/* ---- results ------------------------------------------------------------------------ */

void sh_print_result(strbuf *out, const json_t *result, const sh_print_opts *opts)
{
    if (opts->format == SH_FORMAT_JSON) {
        sh_json_compact(out, result);
        strbuf_putc(out, '\n');
        return;
    }
    const json_t *columns = json_object_get(result, "columns");
    if (!json_is_array(columns) || json_array_size(columns) == 0) {
        const char *tag = json_string_value(json_object_get(result, "statement"));
        if (opts->format == SH_FORMAT_TABLE && tag)
            strbuf_printf(out, "%s\n", tag);
        return;
    }
    grid g;
    grid_init(&g, result);
    if (opts->format == SH_FORMAT_CSV)
        print_csv(out, &g);
    else if (opts->expanded)
        print_expanded(out, &g, opts);
    else
        print_table(out, &g, opts);
    grid_free(&g);
}

/* ---- errors ------------------------------------------------------------------------ */

void sh_format_error(strbuf *out, const char *prefix, const char *message, int line,
                     const char *src_line, size_t src_len, size_t col, size_t underline)
{
    strbuf_printf(out, "%sERROR: %s\n", prefix ? prefix : "", message);
    if (!src_line)
        return;
    if (src_len > 0 && src_line[src_len - 1] == '\r')
        src_len--;
    size_t head = out->len;
    strbuf_printf(out, "LINE %d: ", line);
    size_t head_len = out->len - head;
    for (size_t i = 0; i < src_len; i++) {
        unsigned char c = (unsigned char)src_line[i];
        strbuf_putc(out, (c < 0x20 && c != '\t') || c == 0x7F ? '?' : (char)c);
    }
    strbuf_putc(out, '\n');

    size_t off = col > 0 ? col - 1 : 0;
    if (off > src_len)
        off = src_len;
    put_spaces(out, head_len);
    const unsigned char *p = (const unsigned char *)src_line;
    for (size_t i = 0; i < off;) {
        uint32_t c;
        size_t n = utf8_next(p + i, off - i, &c);
        if (c == '\t')
            strbuf_putc(out, '\t');
        else
            put_spaces(out, (size_t)(c < 0x20 || c == 0x7F ? 1 : char_width(c)));
        i += n;
    }
    strbuf_putc(out, '^');
    /* '~' under the rest of the marked bytes, within the line */
    size_t end = off + (underline ? underline : 1);
    if (end > src_len)
        end = src_len;
    size_t i = off;
    if (i < src_len) {
        uint32_t c;
        i += utf8_next(p + i, src_len - i, &c);
    }
    while (i < end) {
        uint32_t c;
        i += utf8_next(p + i, src_len - i, &c);
        int w = char_width(c);
        put_repeat(out, '~', w > 0 ? (size_t)w : 1);
    }
    strbuf_putc(out, '\n');
}
