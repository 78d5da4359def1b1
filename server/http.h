/* The HTTP layer: libmicrohttpd glue, routing, body limits, authentication, metrics and the
 * request log. Handlers (server/api.h) see a finished request and fill a response; they never
 * touch libmicrohttpd. */
#ifndef RANKQL_SERVER_HTTP_H
#define RANKQL_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/hostport.h"
#include "server/auth.h"
#include "server/server.h"

#define HTTP_MAX_ARGS 16
/* Connections served at once (each has a thread); more are refused until one closes. */
#define HTTP_MAX_CONNECTIONS 1000

typedef struct http_arg {
    const char *key, *value; /* value NULL for "?key" without '=' */
} http_arg;

typedef struct http_request {
    void *conn;              /* the MHD connection, for headers */
    const char *method;      /* "GET", "POST", … */
    const char *path;        /* decoded, without the query string */
    const char *body;        /* NUL-terminated copy; "" when none */
    size_t body_len;
    const char *remote;      /* the client's address, "" when unknown */
    size_t nargs;            /* query-string parameters, in order */
    http_arg args[HTTP_MAX_ARGS];
    bool too_many_args;      /* more than HTTP_MAX_ARGS were given */
    const volatile int *cancelled; /* becomes non-zero when the server stops */
    const auth_identity *who;      /* who sent it (server/tokens.h) */
} http_request;

typedef struct http_stream http_stream;
/* Makes a streamed answer's body: runs on a thread of its own, writes with http_stream_write
 * and returns when the answer is complete. It owns arg. */
typedef void http_stream_fn(http_stream *s, void *arg);

typedef struct http_response {
    int status;
    char *body;              /* malloc'd, taken by the response */
    size_t body_len;
    const char *content_type;
    const char *allow;       /* the Allow header of a 405 */
    char code[32];           /* the error code of an error answer, for metrics and the log */
    http_stream_fn *stream;  /* set by http_reply_stream: body is streamed by it */
    void *stream_arg;
    const char *heartbeat;   /* written when nothing else was for HTTP_HEARTBEAT_SECONDS */
} http_response;

/* A streamed answer is kept alive with a heartbeat line after this much silence. */
#define HTTP_HEARTBEAT_SECONDS 10

/* A request header, or NULL. */
const char *http_header(const http_request *req, const char *name);

/* A JSON answer (steals body). Reals are written with 15 significant digits. */
void http_reply_json(http_response *resp, int status, json_t *body);
/* A text answer (takes text, malloc'd). */
void http_reply_text(http_response *resp, int status, const char *content_type, char *text);
/* {"error": {"code", "message"}}. */
void http_reply_error(http_response *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* {"error": {...}} with "line"/"column" when line > 0 and "field" when field is not empty;
 * extra's members (e.g. "session", "results") are added beside "error" (stolen; may be NULL). */
void http_reply_error_at(http_response *resp, int status, const char *code, const char *message,
                         int line, int col, const char *field, json_t *extra);

/* A 200 answer whose body fn writes, on its own thread, while the answer is sent (chunked).
 * heartbeat (a static string, e.g. a line) is sent after HTTP_HEARTBEAT_SECONDS of silence.
 * fn always runs (and must free arg), also when the client is already gone. */
void http_reply_stream(http_response *resp, const char *content_type, const char *heartbeat,
                       http_stream_fn *fn, void *arg);
/* Appends to a streamed body; false (data dropped) once the client is gone or the server
 * stops. Thread-safe. */
bool http_stream_write(http_stream *s, const char *data, size_t len);
/* Non-zero once the client went away (or the server stops): the stream's work may end. */
const volatile int *http_stream_cancelled(const http_stream *s);

/* The "error" object of an error answer: {"code", "message"[, "line", "column"][, "field"]}. */
json_t *http_error_object(const char *code, const char *message, int line, int col,
                          const char *field);

/* A listening TCP socket on hp ("localhost" is 127.0.0.1). Returns the fd, or -1 with a
 * one-line reason in why. */
int http_listen_socket(const hostport *hp, char *why, size_t whysize);

typedef struct http_server http_server;

/* Serves on listen_fd (which the server then owns) with ctx->cfg's threads and limits. Returns
 * NULL with *err set (caller frees). */
http_server *http_server_start(server_ctx *ctx, int listen_fd, char **err);
/* Stops accepting, finishes the requests in flight, closes every connection. */
void http_server_stop(http_server *s);

#endif
