/* Result output of the rankql shell: psql-style aligned tables (and the expanded,
 * one-block-per-row form of \x), CSV (RFC 4180) and JSON lines; error messages with
 * "LINE n:" and a caret. Everything is written to a strbuf, so it is tested without
 * a terminal or a server. */
#ifndef RANKQL_SHELL_FORMAT_H
#define RANKQL_SHELL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/util.h"

typedef enum sh_format { SH_FORMAT_TABLE, SH_FORMAT_CSV, SH_FORMAT_JSON } sh_format;

typedef struct sh_print_opts {
    sh_format format;
    bool expanded;       /* table format: one "-[ RECORD n ]-" block per row */
    const char *title;   /* table format: a title centred above the table, or NULL */
} sh_print_opts;

/* "table", "csv", "json" (any case). */
bool sh_format_parse(const char *name, sh_format *out);
const char *sh_format_name(sh_format f);

/* Prints one result object of the HTTP API ({"statement", "columns", "rows",
 * "row_count", …}). A result without columns prints its statement tag (e.g.
 * "DECLARE") in table format and nothing in CSV; JSON prints every result. */
void sh_print_result(strbuf *out, const json_t *result, const sh_print_opts *opts);

/* A value as text for tables and CSV: NULL for JSON null; strings as they are;
 * numbers as the shortest text that reads back the same; true/false; arrays and
 * objects as compact JSON. Caller frees. */
char *sh_value_text(const json_t *v);

/* Compact JSON (no spaces, keys in the order received, UTF-8 kept, reals in their
 * shortest round-trip form). */
void sh_json_compact(strbuf *out, const json_t *v);

/* Terminal columns taken by UTF-8 text: wide East Asian characters and emoji take 2,
 * combining marks 0, an invalid byte 1. */
size_t sh_display_width(const char *s, size_t len);

/* An error as the shell shows it:
 *   [prefix]ERROR: message
 *   LINE n: <source line>
 *           ^~~~
 * The LINE part is left out when src_line is NULL. col is the 1-based byte column
 * in src_line; underline is how many bytes to mark from there (at least 1 character). */
void sh_format_error(strbuf *out, const char *prefix, const char *message, int line,
                     const char *src_line, size_t src_len, size_t col, size_t underline);

#endif
