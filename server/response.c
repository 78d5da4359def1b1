/* Answers (server/http.h): JSON bodies, error objects, text and streamed answers. Apart from
 * http.c (the libmicrohttpd glue) so that the request checks of server/request.c, and
 * tests/fuzz/fuzz_http_body.c, link without libmicrohttpd. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "server/http.h"

void http_reply_json(http_response *resp, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    if (!text) {
        /* Only when out of memory or handed an invalid value: a bug, not the user's doing. */
        text = xstrdup("{\"error\":{\"code\":\"internal_error\",\"message\":\"the answer could "
                       "not be written as JSON\"}}");
        status = 500;
        snprintf(resp->code, sizeof resp->code, "internal_error");
    }
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    text[n] = '\n';
    text[n + 1] = '\0';
    free(resp->body);
    resp->status = status;
    resp->body = text;
    resp->body_len = n + 1;
    resp->content_type = "application/json";
}

void http_reply_text(http_response *resp, int status, const char *content_type, char *text)
{
    free(resp->body);
    resp->status = status;
    resp->body = text;
    resp->body_len = strlen(text);
    resp->content_type = content_type;
}

json_t *http_error_object(const char *code, const char *message, int line, int col,
                          const char *field)
{
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_t *msg = json_string(message);
    if (!msg) /* not UTF-8: would only come from a bug elsewhere; keep the answer valid */
        msg = json_string("(message not valid UTF-8)");
    json_object_set_new(err, "message", msg);
    if (line > 0) {
        json_object_set_new(err, "line", json_integer(line));
        json_object_set_new(err, "column", json_integer(col));
    }
    if (field && *field)
        json_object_set_new(err, "field", json_string(field));
    return err;
}

void http_reply_error_at(http_response *resp, int status, const char *code, const char *message,
                         int line, int col, const char *field, json_t *extra)
{
    json_t *err = http_error_object(code, message, line, col, field);
    json_t *body = extra ? extra : json_object();
    json_object_set_new(body, "error", err);
    http_reply_json(resp, status, body);
    if (resp->status == status)
        snprintf(resp->code, sizeof resp->code, "%s", code);
}

void http_reply_error(http_response *resp, int status, const char *code, const char *fmt, ...)
{
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    http_reply_error_at(resp, status, code, sb.data ? sb.data : "", 0, 0, NULL, NULL);
    strbuf_free(&sb);
}

void http_reply_stream(http_response *resp, const char *content_type, const char *heartbeat,
                       http_stream_fn *fn, void *arg)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = 200;
    resp->content_type = content_type;
    resp->heartbeat = heartbeat;
    resp->stream = fn;
    resp->stream_arg = arg;
}
