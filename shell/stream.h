/* Streamed answers of POST /v1/query (Accept: application/x-ndjson, docs/http-api.md): the
 * body cut into lines, the lines turned back into the body a plain answer has, and the
 * progress bar of a WAIT. No libcurl here (tests/unit/test_shell_format.c links it).
 *
 *   sh_lines lines = {0};  sh_stream st = {0};
 *   … per chunk received: sh_lines_feed(&lines, data, n, on_line, &st);
 *   … on_line: switch (sh_stream_line(&st, line, len, &event)) { case SH_LINE_PROGRESS: … }
 *   sh_lines_finish(&lines, on_line, &st);
 *   json_t *body = sh_stream_body(&st);
 */
#ifndef RANKQL_SHELL_STREAM_H
#define RANKQL_SHELL_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/util.h"

/* ---- lines ------------------------------------------------------------------------------ */

typedef void sh_line_fn(const char *line, size_t len, void *arg);

/* Bytes as they come; a part of a line waits for the rest. */
typedef struct sh_lines {
    strbuf buf;
} sh_lines;

/* Calls fn for every line completed by data (without its "\n" or "\r\n"; empty lines too). */
void sh_lines_feed(sh_lines *l, const char *data, size_t n, sh_line_fn *fn, void *arg);
/* At the end of the body: a last line without "\n", if any, goes to fn. */
void sh_lines_finish(sh_lines *l, sh_line_fn *fn, void *arg);
void sh_lines_free(sh_lines *l);

/* ---- events ----------------------------------------------------------------------------- */

typedef enum sh_line_kind {
    SH_LINE_RESULT,     /* {"type":"result","statement":i,"result":{…}} */
    SH_LINE_ERROR,      /* {"type":"error","statement":i,"status":n,"error":{…}} */
    SH_LINE_PROGRESS,   /* {"type":"progress","statement":i,"jobs_total":n,…} */
    SH_LINE_HEARTBEAT,  /* {"type":"heartbeat"} */
    SH_LINE_END,        /* {"type":"end","session":"…"} */
    SH_LINE_OTHER,      /* a type this shell does not know (ignored), or an empty line */
    SH_LINE_BAD,        /* not a JSON object with a "type" */
} sh_line_kind;

typedef struct sh_stream {
    json_t *results;    /* the result objects, in order (NULL until the first) */
    json_t *error;      /* the error line's "error" object */
    long status;        /* the error line's HTTP status (400 when it gave none) */
    char *session;      /* from the end line */
    bool ended;         /* the end line came */
    bool bad;           /* a line was not the API's */
} sh_stream;

/* Takes one line. A progress line's object is left in *event (borrowed until the next call;
 * event may be NULL). */
sh_line_kind sh_stream_line(sh_stream *s, const char *line, size_t len, const json_t **event);
/* The body a plain (non-streamed) answer would have had: {"session", "results"} and the last
 * result's fields, or {"session", "results", "error"}. New reference. */
json_t *sh_stream_body(const sh_stream *s);
void sh_stream_free(sh_stream *s);

/* ---- the progress bar ------------------------------------------------------------------- */

/* "[#######-------------] 12/40 jobs  30%  ETA 0:42" (bar of width cells; ", 2 failed" after
 * "jobs" when some failed; "ETA -:--" when unknown; hours as H:MM:SS). */
void sh_format_progress(strbuf *out, const json_t *event, int width);

#endif
