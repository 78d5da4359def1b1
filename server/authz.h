/* May this request's identity run these statements (docs/operations.md, "Security")?
 * Checked for every statement of a request before the first one runs: a request with one
 * forbidden statement runs none. */
#ifndef RANKQL_SERVER_AUTHZ_H
#define RANKQL_SERVER_AUTHZ_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "grammar/parse.h"
#include "server/http.h"

/* True when who may run every statement of s. Otherwise answers 403 forbidden naming the
 * statement and the role (with "statement", "session" and "results": [] beside "error"),
 * writes a denied audit row, and returns false; or answers 503 when an ownership check
 * (an analyst's CANCEL) cannot read the catalog. */
bool authz_script(server_ctx *ctx, PGconn *conn, const http_request *req, const char *session,
                  const rq_script *s, http_response *resp);

#endif
