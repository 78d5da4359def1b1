/* POST /v1/query: parse every statement first (a syntax error anywhere runs nothing), open or
 * make the session, then run the statements in order through the executor, each in its own
 * transaction, within the request's time limit.
 *
 * Streamed (Accept: application/x-ndjson, or "stream": true): the answer is 200 NDJSON, one
 * line per event, made by a thread of its own while the statements run (docs/http-api.md):
 *   {"type":"progress","statement":i,…the executor's WAIT progress event…}   (at most ~4/s)
 *   {"type":"result","statement":i,"result":{…the result object…}}
 *   {"type":"error","statement":i,"status":400,"error":{…}}   (nothing runs after it)
 *   {"type":"heartbeat"}                                       (after 10 s of silence)
 *   {"type":"end","session":"…"}                               (always last)
 * A client that goes away cancels the WAIT of the statement running (its jobs keep running). */
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "common/util.h"
#include "executor/executor.h"
#include "grammar/parse.h"
#include "server/api.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/limits.h"
#include "server/request.h"
#include "server/roles.h"
#include "server/sessions.h"

/* Progress lines are sent at most this often (the last one before a result always is). */
#define PROGRESS_INTERVAL_S 0.25
#define NDJSON "application/x-ndjson"

/* The index of the first statement that did not parse, or -1. */
static long parse_error_index(const rq_script *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->stmts[i].error)
            return (long)i;
    return -1;
}

static const char *parse_error_code(const rq_error *e)
{
    return e->kind == RQ_ERR_LEXICAL ? "lexical_error" : "syntax_error";
}

static double seconds_since(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
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

/* One run of a request's statements, answered as one JSON body or streamed. */
typedef struct query_run {
    server_ctx *ctx;
    PGconn *conn;
    const rq_script *s;
    const char *session;
    struct timespec start;
    http_stream *stream;            /* NULL: one JSON answer in resp */
    http_response *resp;
    const volatile int *cancelled;
    size_t statement;               /* the one running */
    double waited_s;                /* its WAIT so far (from its last progress event) */
    json_t *pending;                /* a progress line the throttle held back */
    struct timespec last_progress;
    bool progress_sent;
    bool dry;                       /* the request's "dry" */
    auth_identity who;              /* who sent it (roles, quota, audit rows) */
    char remote[64];                /* the client's address, for audit rows */
    size_t result_bytes;            /* of the results so far, as JSON */
} query_run;

/* Writes one NDJSON line (steals line). */
static void write_line(http_stream *stream, json_t *line)
{
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(line);
    if (!text)
        text = xstrdup("{\"type\":\"error\",\"status\":500,\"error\":{\"code\":\"internal_error\","
                       "\"message\":\"a line could not be written as JSON\"}}");
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    text[n] = '\n';
    text[n + 1] = '\0';
    http_stream_write(stream, text, n + 1);
    free(text);
}

static void flush_progress(query_run *run)
{
    if (!run->pending)
        return;
    write_line(run->stream, run->pending);
    run->pending = NULL;
    clock_gettime(CLOCK_MONOTONIC, &run->last_progress);
    run->progress_sent = true;
}

/* The executor's WAIT progress: counted as waiting (not against --query-timeout), and
 * streamed as a progress line, throttled. */
static void on_progress(void *arg, const json_t *event)
{
    query_run *run = arg;
    const json_t *elapsed = json_object_get(event, "elapsed_seconds");
    if (json_is_number(elapsed) && json_number_value(elapsed) > run->waited_s)
        run->waited_s = json_number_value(elapsed);
    if (!run->stream || !json_is_object(event))
        return;
    json_t *line = json_pack("{s:s}", "type", "progress");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)event, key, value) {
        if (strcmp(key, "type") != 0 && strcmp(key, "statement") != 0)
            json_object_set(line, key, value);
    }
    json_object_set_new(line, "statement", json_integer((json_int_t)run->statement));
    json_decref(run->pending);
    run->pending = line;
    if (!run->progress_sent || seconds_since(&run->last_progress) >= PROGRESS_INTERVAL_S)
        flush_progress(run);
}

/* Statement i failed: the streamed error line, or the error answer with the results so far. */
static void fail(query_run *run, size_t i, int status, const char *code, const char *message,
                 int line, int col, const char *field, json_t *results)
{
    if (run->stream) {
        flush_progress(run);
        write_line(run->stream,
                   json_pack("{s:s, s:I, s:i, s:o}", "type", "error", "statement", (json_int_t)i,
                             "status", status, "error",
                             http_error_object(code, message, line, col, field)));
        json_decref(results);
        return;
    }
    http_reply_error_at(run->resp, status, code, message, line, col, field,
                        json_pack("{s:s, s:o}", "session", run->session, "results", results));
}

/* The job quota (--quota-jobs) before statement i, which may submit jobs: the token's jobs
 * queued or running, plus, for a ranking, those its dry run says it would add. False after
 * answering 429 quota_exceeded (or 503). */
static bool within_quota(query_run *run, size_t i, json_t *results)
{
    server_ctx *ctx = run->ctx;
    const rq_statement *st = &run->s->stmts[i];
    long quota = ctx->cfg->quota_jobs;
    long active = limits_token_jobs(run->conn, run->who.token_id);
    if (active < 0) {
        fail(run, i, 503, "database_unavailable", "cannot count the token's jobs (--quota-jobs)",
             st->pos.line, st->pos.col, NULL, results);
        return false;
    }
    long more = 0;
    if (active < quota && st->ast->kind == AST_SELECT) {
        exec_ctx dry = {
            .conn = run->conn,
            .session_id = run->session,
            .data_dir = ctx->cfg->data_dir,
            .dry = true,
        };
        exec_error err;
        json_t *r = executor_run(&dry, st->ast, &err);
        /* a dry run that fails leaves the error to the real run */
        more = r ? (long)json_integer_value(json_object_get(r, "remaining_jobs")) : 0;
        json_decref(r);
    }
    if (active < quota && active + more <= quota)
        return true;
    char message[512];
    if (active >= quota)
        snprintf(message, sizeof message,
                 "token '%s' has %ld job%s queued or running, its quota (--quota-jobs %ld): "
                 "wait for them (SHOW JOBS), CANCEL QUERY some, or send \"dry\": true to see "
                 "what is known",
                 run->who.name, active, active == 1 ? "" : "s", quota);
    else
        snprintf(message, sizeof message,
                 "this ranking would submit %ld job%s; token '%s' has %ld queued or running and "
                 "a quota of %ld (--quota-jobs): rank fewer models or datasets, or wait for its "
                 "jobs",
                 more, more == 1 ? "" : "s", run->who.name, active, quota);
    fail(run, i, 429, "quota_exceeded", message, st->pos.line, st->pos.col, NULL, results);
    return false;
}

/* The audit row of statement i, a catalog write (REGISTER, PURGE, CANCEL, FINETUNE). */
static void audit_statement(query_run *run, size_t i, const char *action, const exec_error *err)
{
    const rq_statement *st = &run->s->stmts[i];
    json_t *detail = json_pack("{s:I}", "statement_index", (json_int_t)i);
    if (err)
        json_object_set_new(detail, "error", json_pack("{s:s, s:s, s:i}", "code", err->code,
                                                       "message", err->message, "status",
                                                       err->http_status));
    audit_entry e = {
        .who = &run->who,
        .session = run->session,
        .remote = run->remote,
        .action = action,
        .statement = run->s->src + st->start,
        .statement_len = st->end - st->start,
        .outcome = err ? "error" : "ok",
        .detail = detail,
    };
    audit_write(run->conn, &e);
}

/* Runs the statements; answers the first failure, or 200 with every result (or streams them,
 * then the end line). */
static void run_statements(query_run *run)
{
    server_ctx *ctx = run->ctx;
    const rq_script *s = run->s;
    long limit_ms = (long)ctx->cfg->query_timeout_s * 1000;
    double waited_s = 0; /* WAITs do not count against the time limit (--max-wait bounds them) */
    bool timeout_changed = false;
    json_t *results = json_array();
    for (size_t i = 0; i < s->n; i++) {
        long used = (long)((seconds_since(&run->start) - waited_s) * 1000);
        if (used >= limit_ms) {
            fail(run, i, 503, "timeout", "the request ran past its time limit (--query-timeout)",
                 s->stmts[i].pos.line, s->stmts[i].pos.col, NULL, results);
            results = NULL;
            break;
        }
        /* Whatever runs next gets only the time that is left. */
        if (used > 1000) {
            timeout_changed = true;
            set_statement_timeout(run->conn, limit_ms - used);
        }
        run->statement = i;
        run->waited_s = 0;
        stmt_rule rule = roles_classify(s->stmts[i].ast);
        if (rule.submits_jobs && !run->dry && ctx->cfg->quota_jobs > 0 &&
            run->who.source == AUTH_CATALOG && !within_quota(run, i, results)) {
            results = NULL; /* the error answer took them */
            break;
        }
        exec_ctx ec = {
            .conn = run->conn,
            .session_id = run->session,
            .data_dir = ctx->cfg->data_dir,
            .on_progress = on_progress,
            .progress_arg = run,
            .cancelled = run->cancelled,
            .wait_timeout_seconds = ctx->cfg->max_wait_s,
            .dry = run->dry,
        };
        exec_error err;
        json_t *result = executor_run(&ec, s->stmts[i].ast, &err);
        waited_s += run->waited_s;
        if (rule.action)
            audit_statement(run, i, rule.action, result ? NULL : &err);
        /* --max-result: the answer (or one streamed line) would be too large to send. */
        size_t bytes = result ? json_dumpb(result, NULL, 0, JSON_COMPACT) : 0;
        if (result && (run->stream ? 0 : run->result_bytes) + bytes > ctx->cfg->max_result) {
            json_decref(result);
            result = NULL;
            err = (exec_error){.http_status = 413, .line = s->stmts[i].pos.line,
                               .col = s->stmts[i].pos.col};
            snprintf(err.code, sizeof err.code, "result_too_large");
            snprintf(err.message, sizeof err.message,
                     "the results come to %zu bytes of JSON, over the %zu this server sends "
                     "(--max-result): add a LIMIT or select fewer columns",
                     (run->stream ? 0 : run->result_bytes) + bytes, ctx->cfg->max_result);
        }
        run->result_bytes += bytes;
        if (!result) {
            /* Executor positions come from the AST, which the parser numbered over the whole
             * query string: they are already positions in the request's "query". */
            int status = err.http_status >= 400 && err.http_status <= 599 ? err.http_status : 500;
            fail(run, i, status, err.code[0] ? err.code : "internal_error", err.message, err.line,
                 err.col, err.field, results);
            results = NULL;
            break;
        }
        if (run->stream) {
            flush_progress(run); /* the last progress comes before its result */
            write_line(run->stream, json_pack("{s:s, s:I, s:o}", "type", "result", "statement",
                                              (json_int_t)i, "result", result));
        } else {
            json_array_append_new(results, result);
        }
    }
    json_decref(run->pending);
    run->pending = NULL;
    if (timeout_changed && PQstatus(run->conn) == CONNECTION_OK)
        set_statement_timeout(run->conn, limit_ms);
    if (run->stream) {
        json_decref(results);
        write_line(run->stream, json_pack("{s:s, s:s}", "type", "end", "session", run->session));
    } else if (results) {
        http_reply_json(run->resp, 200, success_body(run->session, results));
    }
}

/* ---- streamed answers ----------------------------------------------------------------------- */

/* What a streamed answer's thread needs; it owns all of it. */
typedef struct stream_job {
    server_ctx *ctx;
    json_t *body;          /* the request, which the script's text points into */
    rq_script *s;
    PGconn *conn;          /* NULL: a statement did not parse, nothing runs */
    char session[SESSION_ID_SIZE];
    struct timespec start;
    bool dry;
    auth_identity who;
    char remote[64];
} stream_job;

static void stream_main(http_stream *stream, void *arg)
{
    stream_job *job = arg;
    if (!job->conn) {
        /* As without a stream: nothing runs, no session is made. */
        long i = parse_error_index(job->s);
        const rq_error *e = job->s->stmts[i].error;
        write_line(stream, json_pack("{s:s, s:I, s:i, s:o}", "type", "error", "statement",
                                     (json_int_t)i, "status", 400, "error",
                                     http_error_object(parse_error_code(e), e->message,
                                                       e->pos.line, e->pos.col, NULL)));
        write_line(stream, json_pack("{s:s}", "type", "end"));
    } else {
        query_run run = {
            .ctx = job->ctx,
            .conn = job->conn,
            .s = job->s,
            .session = job->session,
            .start = job->start,
            .stream = stream,
            .cancelled = http_stream_cancelled(stream),
            .dry = job->dry,
            .who = job->who,
        };
        memcpy(run.remote, job->remote, sizeof run.remote);
        run_statements(&run);
        limits_session_leave(job->session);
        api_db_release(job->ctx, job->conn);
    }
    rq_script_free(job->s);
    json_decref(job->body);
    free(job);
}

/* "stream" in the body decides; without it, an Accept header that names NDJSON. */
static bool wants_stream(const http_request *req, const query_request *q)
{
    if (q->stream >= 0)
        return q->stream;
    return api_accepts_ndjson(http_header(req, "Accept"));
}

void api_query(server_ctx *ctx, const http_request *req, http_response *resp)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    json_t *body = NULL;
    query_request q;
    if (!api_query_read_request(req, &body, &q, resp)) {
        json_decref(body);
        return;
    }
    if (q.len > ctx->cfg->max_query) {
        http_reply_error(resp, 413, "query_too_large",
                         "the query has %zu bytes; this server takes at most %zu (--max-query)",
                         q.len, ctx->cfg->max_query);
        json_decref(body);
        return;
    }
    bool stream = wants_stream(req, &q);
    rq_script *s = rq_parse_script(q.text, q.len);
    long bad = parse_error_index(s);
    if (bad >= 0 && !stream) {
        const rq_error *e = s->stmts[bad].error;
        http_reply_error_at(resp, 400, parse_error_code(e), e->message, e->pos.line, e->pos.col,
                            NULL, NULL);
        rq_script_free(s);
        json_decref(body);
        return;
    }
    /* The database and the session come first: when they fail, the answer is that error's
     * status, streamed or not. */
    PGconn *conn = NULL;
    char session[SESSION_ID_SIZE];
    if (bad < 0) {
        conn = api_db_acquire(ctx, ctx->cfg->query_timeout_s * 1000, resp);
        if (conn && !(q.session ? session_open(ctx, conn, req->who, q.session, session, resp)
                                : session_create(ctx, conn, req, session, resp))) {
            api_db_release(ctx, conn);
            conn = NULL;
        }
        /* Every statement is allowed, or none runs; then the session's query count. */
        if (conn && !authz_script(ctx, conn, req, session, s, resp)) {
            api_db_release(ctx, conn);
            conn = NULL;
        }
        if (conn && !limits_session_enter(session, ctx->cfg->max_concurrent)) {
            http_reply_error_at(resp, 429, "too_many_queries",
                                "this session already runs the most queries at once that this "
                                "server allows (--max-concurrent-queries): wait for one, or use "
                                "another session",
                                0, 0, NULL, json_pack("{s:s, s:[]}", "session", session,
                                                      "results"));
            api_db_release(ctx, conn);
            conn = NULL;
        }
        if (!conn) {
            rq_script_free(s);
            json_decref(body);
            return;
        }
    }
    if (stream) {
        stream_job *job = xcalloc(1, sizeof *job);
        job->ctx = ctx;
        job->body = body;
        job->s = s;
        job->conn = conn;
        if (conn)
            memcpy(job->session, session, sizeof session);
        job->start = start;
        job->dry = q.dry;
        if (req->who)
            job->who = *req->who;
        snprintf(job->remote, sizeof job->remote, "%s", req->remote ? req->remote : "");
        http_reply_stream(resp, NDJSON, "{\"type\":\"heartbeat\"}\n", stream_main, job);
        return;
    }
    query_run run = {
        .ctx = ctx,
        .conn = conn,
        .s = s,
        .session = session,
        .start = start,
        .resp = resp,
        .cancelled = req->cancelled,
        .dry = q.dry,
        .who = *req->who,
    };
    snprintf(run.remote, sizeof run.remote, "%s", req->remote ? req->remote : "");
    run_statements(&run);
    limits_session_leave(session);
    api_db_release(ctx, conn);
    rq_script_free(s);
    json_decref(body);
}
