/* Roles per statement, and an analyst's CANCEL only of its own queries' jobs. */
#include "server/authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "server/api.h"
#include "server/audit.h"
#include "server/roles.h"

typedef enum { OWN_YES, OWN_NO, OWN_UNKNOWN_THING, OWN_ERROR } ownership;

/* Is the thing an analyst's CANCEL names its own: a query its token ran, or a job one of
 * its token's queries recorded? A thing that does not exist is left to the executor (404). */
static ownership owns(server_ctx *ctx, PGconn *conn, const auth_identity *who,
                      const ast_cancel *c, http_response *resp)
{
    const ast_literal *id = c->id;
    if (!id || who->token_id <= 0)
        return OWN_UNKNOWN_THING;
    char token[24], job[24];
    snprintf(token, sizeof token, "%lld", who->token_id);
    const char *sql;
    const char *params[2] = {NULL, token};
    if (c->what == CANCEL_QUERY) {
        if (id->type != LIT_STRING || !text_is_uuid(id->str))
            return OWN_UNKNOWN_THING; /* the executor explains the id's form */
        params[0] = id->str;
        sql = "SELECT coalesce(token_id = $2::bigint, false) FROM queries WHERE id = $1::uuid";
    } else {
        if (id->type != LIT_INT || id->ival <= 0)
            return OWN_UNKNOWN_THING;
        snprintf(job, sizeof job, "%lld", (long long)id->ival);
        params[0] = job;
        sql = "SELECT EXISTS (SELECT 1 FROM query_jobs qj JOIN queries q ON q.id = qj.query_id "
              "WHERE qj.job_id = j.id AND q.token_id = $2::bigint) FROM jobs j "
              "WHERE j.id = $1::bigint";
    }
    PGresult *res = api_db_exec(ctx, conn, sql, 2, params, resp);
    if (!res)
        return OWN_ERROR;
    ownership o = PQntuples(res) == 0                  ? OWN_UNKNOWN_THING
                  : PQgetvalue(res, 0, 0)[0] == 't' ? OWN_YES
                                                     : OWN_NO;
    PQclear(res);
    return o;
}

static void deny(PGconn *conn, const http_request *req, const char *session, const rq_script *s,
                 size_t i, const stmt_rule *rule, const char *message, http_response *resp)
{
    const rq_statement *st = &s->stmts[i];
    char action[48];
    if (rule->action)
        snprintf(action, sizeof action, "%s", rule->action);
    else /* "EXPLAIN ANALYZE" → "explain_analyze" */
        for (size_t k = 0; k + 1 < sizeof action; k++) {
            char c = rule->label[k];
            action[k] = c == ' ' ? '_' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            action[k + 1] = '\0';
            if (!c)
                break;
        }
    audit_entry e = {
        .who = req->who,
        .session = session,
        .remote = req->remote,
        .action = action,
        .statement = s->src + st->start,
        .statement_len = st->end - st->start,
        .outcome = "denied",
        .detail = json_pack("{s:I, s:s}", "statement_index", (json_int_t)i, "reason", message),
    };
    audit_write(conn, &e);
    http_reply_error_at(resp, 403, "forbidden", message, st->pos.line, st->pos.col, NULL,
                        json_pack("{s:I, s:s, s:[]}", "statement", (json_int_t)i, "session",
                                  session, "results"));
}

bool authz_script(server_ctx *ctx, PGconn *conn, const http_request *req, const char *session,
                  const rq_script *s, http_response *resp)
{
    const auth_identity *who = req->who;
    if (!who) {
        http_reply_error(resp, 500, "internal_error", "the request has no identity");
        return false;
    }
    if (who->role == ROLE_ADMIN)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        const ast_node *stmt = s->stmts[i].ast;
        stmt_rule rule = roles_classify(stmt);
        char message[400];
        if (!roles_permits(who->role, &rule)) {
            snprintf(message, sizeof message,
                     "%s needs the admin role; token '%s' has the role %s (statement %zu)",
                     rule.label, who->name, auth_role_name(who->role), i + 1);
            deny(conn, req, session, s, i, &rule, message, resp);
            return false;
        }
        if (rule.own_only) {
            ownership o = owns(ctx, conn, who, (const ast_cancel *)stmt, resp);
            if (o == OWN_ERROR)
                return false;
            if (o == OWN_NO) {
                snprintf(message, sizeof message,
                         "%s of another token's %s needs the admin role; token '%s' has the "
                         "role %s and may cancel its own queries only (statement %zu)",
                         rule.label,
                         ((const ast_cancel *)stmt)->what == CANCEL_JOB ? "job" : "query",
                         who->name, auth_role_name(who->role), i + 1);
                deny(conn, req, session, s, i, &rule, message, resp);
                return false;
            }
        }
    }
    return true;
}
