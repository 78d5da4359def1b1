/* CANCEL JOB n: the job and the queued jobs that wait for it are cancelled; a worker
 * running it stops at its next heartbeat. Results already cached stay. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/internal.h"
#include "queue/queue.h"

json_t *exec_cancel(exec_ctx *ctx, const ast_cancel *c, exec_error *err)
{
    if (c->what == CANCEL_QUERY)
        return exec_fail(err, 501, "not_implemented", c->h.pos,
                         "CANCEL QUERY is not implemented: cancel a WAIT by closing it (Ctrl-C "
                         "in the shell), and its jobs with CANCEL JOB n (SHOW JOBS lists them)");
    const ast_literal *id = c->id;
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
