/* CANCEL JOB n: the job and the queued jobs that wait for it are cancelled; a worker
 * running it stops at its next heartbeat. CANCEL QUERY 'id': the same for every unfinished
 * job a ranking submitted. Results already cached stay. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/internal.h"
#include "queue/queue.h"

/* CANCEL QUERY 'id': the queued and running jobs a ranking recorded (query_jobs, sql/005),
 * each with queue_cancel, which also cancels what waits for them. */
static json_t *cancel_query(exec_ctx *ctx, const ast_literal *id, exec_error *err)
{
    if (id->type != LIT_STRING || !text_is_uuid(id->str))
        return exec_fail(err, 400, "semantic_error", id->h.pos,
                         "CANCEL QUERY takes the query id a ranking answered with "
                         "(\"query_id\", a uuid in quotes)");
    const char *params[] = {id->str};
    PGresult *res = exec_sql(ctx,
                             "SELECT q.id, j.id FROM queries q "
                             "LEFT JOIN query_jobs qj ON qj.query_id = q.id "
                             "LEFT JOIN jobs j ON j.id = qj.job_id "
                             "AND j.status IN ('queued', 'running') "
                             "WHERE q.id = $1::uuid ORDER BY j.id",
                             1, params, err);
    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return exec_fail(err, 404, "not_found", id->h.pos, "no query %s (ids come from rankings "
                                                           "that submitted jobs)",
                         id->str);
    }
    long cancelled = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        if (PQgetisnull(res, r, 1))
            continue;
        char *qerr = NULL;
        int rc = queue_cancel(ctx->conn, strtoll(PQgetvalue(res, r, 1), NULL, 10), &qerr);
        if (rc < 0) {
            PQclear(res);
            exec_fail(err, 503, "database_error", id->h.pos, "%s",
                      qerr ? qerr : "cannot cancel a job");
            free(qerr);
            return NULL;
        }
        cancelled += rc;
    }
    PQclear(res);
    json_t *result = result_new("CANCEL");
    json_object_set_new(result, "query", json_string(id->str));
    json_object_set_new(result, "cancelled_jobs", json_integer(cancelled));
    if (cancelled == 0)
        result_notice(result, "query %s has no queued or running job: nothing to cancel",
                      id->str);
    else
        result_notice(result, "%ld job%s cancelled; a query that shares them submits them again "
                              "when it runs",
                      cancelled, cancelled == 1 ? "" : "s");
    return result;
}

json_t *exec_cancel(exec_ctx *ctx, const ast_cancel *c, exec_error *err)
{
    const ast_literal *id = c->id;
    if (c->what == CANCEL_QUERY && id)
        return cancel_query(ctx, id, err);
    if (!id || id->type != LIT_INT || id->ival <= 0)
        return exec_fail(err, 400, "semantic_error", id ? id->h.pos : c->h.pos,
                         "CANCEL JOB takes a job id (a positive integer, as SHOW JOBS lists)");
    char *qerr = NULL;
    int rc = queue_cancel(ctx->conn, id->ival, &qerr);
    if (rc < 0) {
        bool unknown = qerr && strstr(qerr, "does not exist") != NULL;
        exec_fail(err, unknown ? 404 : 503, unknown ? "not_found" : "database_error", id->h.pos,
                  "%s", qerr ? qerr : "cannot cancel the job");
        free(qerr);
        return NULL;
    }
    json_t *result = result_new("CANCEL");
    json_object_set_new(result, "job", json_integer(id->ival));
    json_object_set_new(result, "cancelled", json_boolean(rc == 1));
    if (rc == 0)
        result_notice(result, "job %lld is already done, failed or cancelled: nothing to cancel",
                      (long long)id->ival);
    return result;
}
