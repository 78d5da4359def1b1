/* The pure parts of reading an HTTP request: the JSON bodies of the endpoints, the query
 * parameters of the listings and the header values the server looks at, with no
 * libmicrohttpd connection and no database (server/request.c; the answers they make come from
 * server/response.c). The handlers call these; tests/fuzz/fuzz_http_body.c drives them with
 * arbitrary bytes. Each returns false after answering 4xx with a JSON error body. */
#ifndef RANKQL_SERVER_REQUEST_H
#define RANKQL_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "server/http.h"

/* POST /v1/query's body. */
typedef struct query_request {
    const char *text;    /* "query" (points into the body) */
    size_t len;
    const char *session; /* NULL: make one */
    int stream;          /* "stream": 1 true, 0 false, -1 not given */
    bool dry;            /* "dry": rankings answer what is known and submit no job */
} query_request;

/* {"query": "…", "session": "…"|null, "stream": true|false, "dry": true|false}; anything
 * else is 400 (not JSON) or 422. *body is the parsed object, which q points into (caller
 * json_decref()s it, also after false). */
bool api_query_read_request(const http_request *req, json_t **body, query_request *q,
                            http_response *resp);

/* An Accept header value that asks for NDJSON (application/x-ndjson). */
bool api_accepts_ndjson(const char *accept);

/* POST /v1/sessions's body: none, or {} as application/json (content_type: the Content-Type
 * header, NULL when absent). */
bool api_sessions_read_body(const http_request *req, const char *content_type,
                            http_response *resp);

/* The User-Agent as a short printable label (at most 200 bytes, others as '?'), or NULL
 * when absent or empty. Caller frees. */
char *session_client_label(const char *user_agent);

/* The query parameters of a listing (GET /v1/models, /v1/datasets): limit (default 100, at
 * most 1000), offset and the equality filters named in filters (NULL-terminated; their
 * values go into values[i] in that order, absent ones left alone). what names the listing
 * in messages. False after answering 400 invalid_parameter. */
#define API_LIST_DEFAULT_LIMIT 100
#define API_LIST_MAX_LIMIT 1000
#define API_LIST_MAX_OFFSET 1000000000000LL
bool api_list_args(const char *what, const char *const *filters, const http_request *req,
                   const char **values, long long *limit, long long *offset,
                   http_response *resp);

/* A Content-Type that is "application/json", any case, optionally with
 * "; charset=utf-8". */
bool http_json_content_type(const char *ct);

#endif
