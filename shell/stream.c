/* Streamed query answers: lines, events, the progress bar. See stream.h. */
#include "shell/stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sh_lines_feed(sh_lines *l, const char *data, size_t n, sh_line_fn *fn, void *arg)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        if (!nl) {
            strbuf_append(&l->buf, data, n);
            return;
        }
        size_t part = (size_t)(nl - data);
        const char *line = data;
        size_t len = part;
        if (l->buf.len) {
            strbuf_append(&l->buf, data, part);
            line = l->buf.data;
            len = l->buf.len;
        }
        if (len > 0 && line[len - 1] == '\r')
            len--;
        fn(line, len, arg);
        l->buf.len = 0;
        data = nl + 1;
        n -= part + 1;
    }
}

void sh_lines_finish(sh_lines *l, sh_line_fn *fn, void *arg)
{
    if (l->buf.len) {
        size_t len = l->buf.len;
        if (l->buf.data[len - 1] == '\r')
            len--;
        fn(l->buf.data, len, arg);
        l->buf.len = 0;
    }
}

void sh_lines_free(sh_lines *l)
{
    strbuf_free(&l->buf);
}

sh_line_kind sh_stream_line(sh_stream *s, const char *line, size_t len, const json_t **event)
{
    static json_t *last; /* the progress event handed out last */
    if (event)
        *event = NULL;
    json_decref(last);
    last = NULL;
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return SH_LINE_OTHER;
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (!json_is_object(obj) || !type) {
        json_decref(obj);
        s->bad = true;
        return SH_LINE_BAD;
    }
    sh_line_kind kind = SH_LINE_OTHER;
    if (strcmp(type, "result") == 0) {
        json_t *result = json_object_get(obj, "result");
        if (!json_is_object(result)) {
            s->bad = true;
            kind = SH_LINE_BAD;
        } else {
            if (!s->results)
                s->results = json_array();
            json_array_append(s->results, result);
            kind = SH_LINE_RESULT;
        }
    } else if (strcmp(type, "error") == 0) {
        json_t *error = json_object_get(obj, "error");
        if (!json_is_object(error) || !json_is_string(json_object_get(error, "message"))) {
            s->bad = true;
            kind = SH_LINE_BAD;
        } else {
            json_decref(s->error);
            s->error = json_incref(error);
            const json_t *status = json_object_get(obj, "status");
            s->status = json_is_integer(status) ? (long)json_integer_value(status) : 400;
            kind = SH_LINE_ERROR;
        }
    } else if (strcmp(type, "progress") == 0) {
        kind = SH_LINE_PROGRESS;
        last = json_incref(obj);
        if (event)
            *event = last;
    } else if (strcmp(type, "heartbeat") == 0) {
        kind = SH_LINE_HEARTBEAT;
    } else if (strcmp(type, "end") == 0) {
        const char *session = json_string_value(json_object_get(obj, "session"));
        if (session) {
            free(s->session);
            s->session = xstrdup(session);
        }
        s->ended = true;
        kind = SH_LINE_END;
    }
    json_decref(obj);
    return kind;
}

json_t *sh_stream_body(const sh_stream *s)
{
    json_t *body = json_object();
    if (s->session)
        json_object_set_new(body, "session", json_string(s->session));
    json_object_set_new(body, "results", s->results ? json_copy(s->results) : json_array());
    if (s->error) {
        json_object_set(body, "error", s->error);
        return body;
    }
    size_t n = json_array_size(s->results);
    if (n > 0) {
        const char *key;
        json_t *value;
        json_object_foreach(json_array_get(s->results, n - 1), key, value) {
            if (strcmp(key, "session") != 0 && strcmp(key, "results") != 0)
                json_object_set(body, key, value);
        }
    }
    return body;
}

void sh_stream_free(sh_stream *s)
{
    json_decref(s->results);
    json_decref(s->error);
    free(s->session);
    memset(s, 0, sizeof *s);
}

static double number(const json_t *event, const char *key, double otherwise)
{
    const json_t *v = json_object_get(event, key);
    return json_is_number(v) ? json_number_value(v) : otherwise;
}

static void put_duration(strbuf *out, double seconds)
{
    long s = (long)llround(seconds);
    if (s >= 3600)
        strbuf_printf(out, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        strbuf_printf(out, "%ld:%02ld", s / 60, s % 60);
}

void sh_format_progress(strbuf *out, const json_t *event, int width)
{
    double total = number(event, "jobs_total", 0);
    double done = number(event, "jobs_done", 0);
    double failed = number(event, "jobs_failed", 0);
    double fraction = number(event, "fraction", total > 0 ? done / total : 0);
    if (!(fraction >= 0)) /* NaN too */
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    if (width < 1)
        width = 1;
    int filled = (int)floor(fraction * width + 1e-9);
    strbuf_putc(out, '[');
    for (int i = 0; i < width; i++)
        strbuf_putc(out, i < filled ? '#' : '-');
    strbuf_printf(out, "] %.0f/%.0f jobs", done, total);
    if (failed > 0)
        strbuf_printf(out, ", %.0f failed", failed);
    strbuf_printf(out, "  %d%%  ETA ", (int)floor(fraction * 100 + 1e-9));
    const json_t *eta = json_object_get(event, "eta_seconds");
    if (json_is_number(eta) && json_number_value(eta) >= 0)
        put_duration(out, json_number_value(eta));
    else
        strbuf_puts(out, "-:--");
}
