/* The endpoints of docs/http-api.md. http.c routes a finished request (method, path, auth,
 * body size and Content-Type already checked) to one of these. */
#ifndef RANKQL_SERVER_API_H
#define RANKQL_SERVER_API_H

#include <libpq-fe.h>

#include "server/http.h"

typedef void api_handler(server_ctx *ctx, const http_request *req, http_response *resp);

api_handler api_query;            /* POST /v1/query       api_query.c */
api_handler api_sessions_create;  /* POST /v1/sessions    sessions.c */
api_handler api_models;           /* GET  /v1/models      api_catalog.c */
api_handler api_datasets;         /* GET  /v1/datasets    api_catalog.c */
api_handler api_healthz;          /* GET  /healthz        api_health.c */
api_handler api_metrics;          /* GET  /metrics        api_health.c */
api_handler api_tokens_create;    /* POST /v1/tokens      api_tokens.c */
api_handler api_tokens_list;      /* GET  /v1/tokens      api_tokens.c */
api_handler api_tokens_revoke;    /* DELETE /v1/tokens/ID api_tokens.c */

/* ---- shared by the handlers (api_db.c, request.c) ---------------------------------------- */

/* A pooled connection, waiting at most wait_ms; NULL after answering 503 (database_unavailable,
 * or timeout when every connection stayed busy). */
PGconn *api_db_acquire(server_ctx *ctx, int wait_ms, http_response *resp);
void api_db_release(server_ctx *ctx, PGconn *conn);

/* PQexecParams (text parameters and results). When the connection turns out broken, it is
 * re-established and the statement sent once more: only for statements that are safe to
 * repeat. Returns the result, or NULL after answering 503 (database gone, statement_timeout)
 * or 500. */
PGresult *api_db_exec(server_ctx *ctx, PGconn *conn, const char *sql, int nparams,
                      const char *const *params, http_response *resp);

/* (request.c) Parses a JSON request body into *out (an object). Answers 400 invalid_json (not UTF-8, not
 * JSON) or 422 invalid_request (not an object) and returns false. An empty body is {} when
 * empty_ok. */
bool api_json_body(const http_request *req, bool empty_ok, json_t **out, http_response *resp);

#endif
