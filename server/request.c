/* The pure parts of reading a request (server/request.h): JSON bodies, listing parameters and
 * header values, without libmicrohttpd or the database. Moved here from the handlers, which
 * call them, so that tests/fuzz/fuzz_http_body.c can link them alone. */
#include "server/request.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"
#include "common/util.h"
#include "server/api.h"

/* ---- JSON bodies (api_db.c, api_query.c, sessions.c) ------------------------------------ */

bool api_json_body(const http_request *req, bool empty_ok, json_t **out, http_response *resp)
{
    *out = NULL;
    if (req->body_len == 0) {
        if (empty_ok) {
            *out = json_object();
            return true;
        }
        http_reply_error(resp, 400, "invalid_json", "the body is empty; send a JSON object");
        return false;
    }
    size_t bad;
    if (!utf8_valid(req->body, req->body_len, &bad)) {
        http_reply_error(resp, 400, "invalid_json",
                         "the body is not valid UTF-8 (byte 0x%02x at offset %zu)",
                         (unsigned char)req->body[bad], bad);
        return false;
    }
    json_error_t je;
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        http_reply_error(resp, 400, "invalid_json", "the body is not valid JSON: %s (line %d, column %d)",
                         je.text, je.line, je.column);
        return false;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_reply_error(resp, 422, "invalid_request", "the body must be a JSON object");
        return false;
    }
    *out = v;
    return true;
}

/* {"query": "…", "session": "…"|null, "stream": true|false, "dry": true|false}; anything
 * else is 422. */
bool api_query_read_request(const http_request *req, json_t **body, query_request *q,
                            http_response *resp)
{
    if (!api_json_body(req, false, body, resp))
        return false;
    memset(q, 0, sizeof *q);
    q->stream = -1;
    const char *key;
    json_t *value;
    json_object_foreach(*body, key, value) {
        if (strcmp(key, "query") == 0) {
            if (!json_is_string(value)) {
                http_reply_error(resp, 422, "invalid_request", "\"query\" must be a string");
                return false;
            }
            q->text = json_string_value(value);
            q->len = json_string_length(value);
        } else if (strcmp(key, "session") == 0) {
            if (!json_is_string(value) && !json_is_null(value)) {
                http_reply_error(resp, 422, "invalid_request",
                                 "\"session\" must be a string (a session id) or null");
                return false;
            }
            q->session = json_string_value(value);
        } else if (strcmp(key, "stream") == 0) {
            if (!json_is_boolean(value)) {
                http_reply_error(resp, 422, "invalid_request", "\"stream\" must be true or false");
                return false;
            }
            q->stream = json_is_true(value);
        } else if (strcmp(key, "dry") == 0) {
            if (!json_is_boolean(value)) {
                http_reply_error(resp, 422, "invalid_request", "\"dry\" must be true or false");
                return false;
            }
            q->dry = json_is_true(value);
        } else {
            http_reply_error(resp, 422, "invalid_request",
                             "unknown field \"%s\" (a query takes \"query\", \"session\", "
                             "\"stream\" and \"dry\")",
                             key);
            return false;
        }
    }
    if (!q->text) {
        http_reply_error(resp, 422, "invalid_request",
                         "the body has no \"query\": send {\"query\": \"SELECT …;\"}");
        return false;
    }
    return true;
}

bool api_accepts_ndjson(const char *accept)
{
    return accept && strcasestr(accept, "application/x-ndjson") != NULL;
}

bool api_sessions_read_body(const http_request *req, const char *content_type,
                            http_response *resp)
{
    if (req->body_len > 0) {
        if (!content_type || strncasecmp(content_type, "application/json", 16) != 0) {
            http_reply_error(resp, 415, "unsupported_media_type",
                             "send no body, or {} as Content-Type: application/json");
            return false;
        }
    }
    json_t *body;
    if (!api_json_body(req, true, &body, resp))
        return false;
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value) {
        (void)value;
        http_reply_error(resp, 422, "invalid_request",
                         "POST /v1/sessions takes no fields (got \"%s\")", key);
        json_decref(body);
        return false;
    }
    json_decref(body);
    return true;
}

/* ---- headers (sessions.c, http.c) -------------------------------------------------------- */

char *session_client_label(const char *ua)
{
    if (!ua || !*ua)
        return NULL;
    size_t n = strlen(ua);
    if (n > 200)
        n = 200;
    char *s = xstrndup(ua, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            s[i] = '?';
    return s;
}

bool http_json_content_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    static const char want[] = "application/json";
    if (strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    const char *p = ct + sizeof want - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return true;
    if (*p != ';')
        return false;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return true;
    if (strncasecmp(p, "charset=", 8) != 0)
        return false;
    p += 8;
    if (*p == '"')
        p++;
    return strncasecmp(p, "utf-8", 5) == 0 && (p[5] == '\0' || p[5] == '"' || p[5] == ' ' ||
                                               p[5] == ';');
}

/* ---- listing parameters (api_catalog.c) --------------------------------------------------- */

/* A non-negative decimal number of at most 15 digits. */
static bool parse_count(const char *s, long long *out)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    *out = strtoll(s, NULL, 10);
    return true;
}

static void filter_names(const char *const *filters, strbuf *sb)
{
    for (size_t i = 0; filters[i]; i++)
        strbuf_printf(sb, "%s%s", i ? ", " : "", filters[i]);
}

bool api_list_args(const char *what, const char *const *filters, const http_request *req,
                   const char **values, long long *limit, long long *offset,
                   http_response *resp)
{
    *limit = API_LIST_DEFAULT_LIMIT;
    *offset = 0;
    if (req->too_many_args) {
        http_reply_error(resp, 400, "invalid_parameter", "too many query parameters (at most %d)",
                         HTTP_MAX_ARGS);
        return false;
    }
    for (size_t i = 0; i < req->nargs; i++) {
        const char *key = req->args[i].key, *value = req->args[i].value;
        if (!utf8_valid(key, strlen(key), NULL) || (value && !utf8_valid(value, strlen(value), NULL))) {
            http_reply_error(resp, 400, "invalid_parameter", "a query parameter is not valid UTF-8");
            return false;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->args[j].key, key) == 0) {
                http_reply_error(resp, 400, "invalid_parameter", "parameter \"%s\" is given twice",
                                 key);
                return false;
            }
        if (!value) {
            http_reply_error(resp, 400, "invalid_parameter", "parameter \"%s\" needs a value (%s=…)",
                             key, key);
            return false;
        }
        if (strcmp(key, "limit") == 0) {
            if (!parse_count(value, limit) || *limit > API_LIST_MAX_LIMIT) {
                http_reply_error(resp, 400, "invalid_parameter",
                                 "limit must be a whole number from 0 to %d", API_LIST_MAX_LIMIT);
                return false;
            }
            continue;
        }
        if (strcmp(key, "offset") == 0) {
            if (!parse_count(value, offset) || *offset > API_LIST_MAX_OFFSET) {
                http_reply_error(resp, 400, "invalid_parameter",
                                 "offset must be a whole number from 0 to %lld", API_LIST_MAX_OFFSET);
                return false;
            }
            continue;
        }
        size_t f = 0;
        while (filters[f] && strcmp(filters[f], key) != 0)
            f++;
        if (!filters[f]) {
            strbuf names = {0};
            filter_names(filters, &names);
            http_reply_error(resp, 400, "invalid_parameter",
                             "unknown parameter \"%.64s\": %s takes limit, offset and the filters %s",
                             key, what, names.data);
            strbuf_free(&names);
            return false;
        }
        values[f] = value;
    }
    return true;
}
