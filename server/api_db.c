/* What the handlers share: pooled connections with their 503 answers and a statement runner
 * that survives a database restart. (Reading a JSON body, api_json_body, is in request.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "common/util.h"
#include "db/pqutil.h"
#include "server/api.h"

PGconn *api_db_acquire(server_ctx *ctx, int wait_ms, http_response *resp)
{
    db_pool_result r;
    char why[512];
    PGconn *conn = db_pool_acquire(ctx->pool, wait_ms, &r, why, sizeof why);
    if (conn)
        return conn;
    if (r == DB_POOL_TIMEOUT)
        http_reply_error(resp, 503, "timeout", "the server is busy: %s", why);
    else
        http_reply_error(resp, 503, "database_unavailable", "the catalog database is unreachable: %s",
                         why);
    return NULL;
}

void api_db_release(server_ctx *ctx, PGconn *conn)
{
    if (conn)
        db_pool_release(ctx->pool, conn);
}

static void answer_failure(PGconn *conn, const PGresult *res, http_response *resp)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char *msg = pq_one_line(res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                                                                : PQerrorMessage(conn));
    if (PQstatus(conn) != CONNECTION_OK || (state && strncmp(state, "08", 2) == 0) ||
        (state && (strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
                   strcmp(state, "57P03") == 0)))
        http_reply_error(resp, 503, "database_unavailable", "the catalog database is unreachable: %s",
                         msg);
    else if (state && strcmp(state, "57014") == 0)
        http_reply_error(resp, 503, "timeout", "the request ran past its time limit");
    else
        http_reply_error(resp, 500, "internal_error", "database error %s: %s",
                         state ? state : "(no SQLSTATE)", msg);
    free(msg);
}

PGresult *api_db_exec(server_ctx *ctx, PGconn *conn, const char *sql, int nparams,
                      const char *const *params, http_response *resp)
{
    for (int attempt = 0;; attempt++) {
        PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
            return res;
        /* A connection that broke while idle in the pool (the server restarted) is only
         * noticed here: reconnect and send the statement once more. */
        if (attempt == 0 && PQstatus(conn) != CONNECTION_OK) {
            char why[512];
            if (db_pool_reset(ctx->pool, conn, why, sizeof why) == 0) {
                PQclear(res);
                continue;
            }
        }
        answer_failure(conn, res, resp);
        PQclear(res);
        return NULL;
    }
}
