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

void api_metrics(server_ctx *ctx, const http_request *req, http_response *resp)
{
    (void)req;
    http_reply_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8",
                    metrics_render(ctx->metrics, ctx->pool));
}
