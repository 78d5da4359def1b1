/* POST /v1/query: parse every statement first (a syntax error anywhere runs nothing), open or
 * make the session, then run the statements in order through the executor, each in its own
 * transaction, within the request's time limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "common/util.h"
#include "executor/executor.h"
#include "grammar/parse.h"
#include "server/api.h"
#include "server/sessions.h"

typedef struct query_request {
    const char *text;
    size_t len;
    const char *session; /* NULL: make one */
} query_request;

/* {"query": "…", "session": "…"|null}; anything else is 422. */
static bool read_request(const http_request *req, json_t **body, query_request *q,
                         http_response *resp)
{
    if (!api_json_body(req, false, body, resp))
        return false;
    memset(q, 0, sizeof *q);
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
        } else {
            http_reply_error(resp, 422, "invalid_request",
                             "unknown field \"%s\" (a query takes \"query\" and \"session\")", key);
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

/* The first statement that did not parse, as a 400. */
static bool answer_parse_error(const rq_script *s, http_response *resp)
{
    for (size_t i = 0; i < s->n; i++) {
        const rq_error *e = s->stmts[i].error;
        if (!e)
            continue;
        http_reply_error_at(resp, 400, e->kind == RQ_ERR_LEXICAL ? "lexical_error" : "syntax_error",
                            e->message, e->pos.line, e->pos.col, NULL, NULL);
        return true;
    }
    return false;
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static bool set_statement_timeout(PGconn *conn, long ms)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %ld", ms < 1 ? 1 : ms);
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok;
}

/* {"session", "results"} plus the last result's fields at the top level. */
static json_t *success_body(const char *session, json_t *results)
{
    json_t *body = json_pack("{s:s, s:o}", "session", session, "results", results);
    size_t n = json_array_size(results);
    if (n > 0) {
        json_t *last = json_array_get(results, n - 1);
        const char *key;
        json_t *value;
        json_object_foreach(last, key, value) {
            if (strcmp(key, "session") != 0 && strcmp(key, "results") != 0)
                json_object_set(body, key, value);
        }
    } else {
        json_object_set_new(body, "columns", json_array());
        json_object_set_new(body, "rows", json_array());
        json_object_set_new(body, "row_count", json_integer(0));
        json_object_set_new(body, "notices", json_pack("[s]", "the query holds no statement"));
    }
    return body;
}

/* Runs the statements; answers the first failure, or 200 with every result. */
static void run_statements(server_ctx *ctx, PGconn *conn, const rq_script *s, const char *session,
                           const struct timespec *start, http_response *resp)
{
    long limit_ms = (long)ctx->cfg->query_timeout_s * 1000;
    bool timeout_changed = false;
    json_t *results = json_array();
    for (size_t i = 0; i < s->n; i++) {
        long used = elapsed_ms(start);
        if (used >= limit_ms) {
            http_reply_error_at(resp, 503, "timeout",
                                "the request ran past its time limit (--query-timeout)",
                                s->stmts[i].pos.line, s->stmts[i].pos.col, NULL,
                                json_pack("{s:s, s:o}", "session", session, "results", results));
            results = NULL;
            break;
        }
        /* Whatever runs next gets only the time that is left. */
        if (used > 1000) {
            timeout_changed = true;
            set_statement_timeout(conn, limit_ms - used);
        }
        exec_ctx ec = {.conn = conn, .session_id = session};
        exec_error err;
        json_t *result = executor_run(&ec, s->stmts[i].ast, &err);
        if (!result) {
            /* Executor positions come from the AST, which the parser numbered over the whole
             * query string: they are already positions in the request's "query". */
            int status = err.http_status >= 400 && err.http_status <= 599 ? err.http_status : 500;
            http_reply_error_at(resp, status, err.code[0] ? err.code : "internal_error",
                                err.message, err.line, err.col, err.field,
                                json_pack("{s:s, s:o}", "session", session, "results", results));
            results = NULL;
            break;
        }
        json_array_append_new(results, result);
    }
    if (timeout_changed && PQstatus(conn) == CONNECTION_OK)
        set_statement_timeout(conn, limit_ms);
    if (results)
        http_reply_json(resp, 200, success_body(session, results));
}

void api_query(server_ctx *ctx, const http_request *req, http_response *resp)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    json_t *body = NULL;
    query_request q;
    if (!read_request(req, &body, &q, resp)) {
        json_decref(body);
        return;
    }
    rq_script *s = rq_parse_script(q.text, q.len);
    if (answer_parse_error(s, resp)) {
        rq_script_free(s);
        json_decref(body);
        return;
    }
    PGconn *conn = api_db_acquire(ctx, ctx->cfg->query_timeout_s * 1000, resp);
    char session[SESSION_ID_SIZE];
    if (conn && (q.session ? session_open(ctx, conn, q.session, session, resp)
                           : session_create(ctx, conn, req, session, resp)))
        run_statements(ctx, conn, s, session, &start, resp);
    api_db_release(ctx, conn);
    rq_script_free(s);
    json_decref(body);
}
