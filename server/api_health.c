/* GET /healthz (is the catalog database reachable?) and GET /metrics (Prometheus text). */
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "server/api.h"

/* How long /healthz waits for a pooled connection before calling the server busy. */
#define HEALTH_WAIT_MS 5000

void api_healthz(server_ctx *ctx, const http_request *req, http_response *resp)
{
    (void)req;
    http_response probe = {0};
    PGconn *conn = api_db_acquire(ctx, HEALTH_WAIT_MS, &probe);
    PGresult *res = conn ? api_db_exec(ctx, conn, "SELECT 1", 0, NULL, &probe) : NULL;
    PQclear(res);
    api_db_release(ctx, conn);
    if (res) {
        http_reply_json(resp, 200, json_pack("{s:s, s:s}", "status", "ok", "database", "ok"));
        free(probe.body);
        return;
    }
    /* The probe's error message is what the database said. */
    json_t *err = json_loadb(probe.body, probe.body_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(json_object_get(err, "error"), "message"));
    http_reply_json(resp, 503, json_pack("{s:s, s:s}", "status", "unavailable", "database",
                                         msg ? msg : "unreachable"));
    snprintf(resp->code, sizeof resp->code, "%s", probe.code[0] ? probe.code : "database_unavailable");
    json_decref(err);
    free(probe.body);
}

/* The job queue as gauges, read from the jobs table at scrape time: what an operator
 * alerts on (a growing queue, no worker taking jobs). Left out, with the scrape still
 * answered, when the database cannot be reached. */
static void render_queue_metrics(server_ctx *ctx, strbuf *sb)
{
    static const char sql[] =
        "SELECT kind, status, count(*), "
        "       COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) "
        "                                   FILTER (WHERE status = 'queued')), 0) "
        "FROM jobs GROUP BY kind, status ORDER BY kind, status";
    http_response probe = {0};
    PGconn *conn = api_db_acquire(ctx, HEALTH_WAIT_MS, &probe);
    PGresult *res = conn ? api_db_exec(ctx, conn, sql, 0, NULL, &probe) : NULL;
    if (res) {
        double oldest = 0;
        strbuf_puts(sb, "# HELP rankql_jobs Jobs in the queue, by kind and status.\n"
                        "# TYPE rankql_jobs gauge\n");
        for (int i = 0; i < PQntuples(res); i++) {
            strbuf_printf(sb, "rankql_jobs{kind=\"%s\",status=\"%s\"} %s\n",
                          PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
            double age = strtod(PQgetvalue(res, i, 3), NULL);
            if (age > oldest)
                oldest = age;
        }
        strbuf_printf(sb, "# HELP rankql_jobs_oldest_queued_seconds Age of the oldest queued "
                          "job (0 when none): grows when no worker takes jobs.\n"
                          "# TYPE rankql_jobs_oldest_queued_seconds gauge\n"
                          "rankql_jobs_oldest_queued_seconds %.3f\n", oldest);
    }
    PQclear(res);
    api_db_release(ctx, conn);
    free(probe.body);
}

void api_metrics(server_ctx *ctx, const http_request *req, http_response *resp)
{
    (void)req;
    strbuf sb = {0};
    char *http = metrics_render(ctx->metrics, ctx->pool);
    strbuf_puts(&sb, http);
    free(http);
    render_queue_metrics(ctx, &sb);
    http_reply_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", strbuf_detach(&sb));
}
