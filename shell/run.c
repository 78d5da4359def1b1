/* Running one statement and printing what comes back. See run.h. */
#include "shell/run.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grammar/ast.h"

void sh_emit(sh_state *st, const strbuf *text)
{
    if (text->len)
        fwrite(text->data, 1, text->len, st->out);
    fflush(st->out);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Where a message about script s at byte off starts: "rankql:FILE:LINE: " for files. */
static char *file_prefix(const sh_script *s, int line)
{
    return s && s->name ? xasprintf("rankql:%s:%d: ", s->name, line) : NULL;
}

static void print_error_at(sh_state *st, const sh_script *s, const char *message, size_t off,
                           size_t underline)
{
    sh_where w = sh_script_where(s, off);
    char *prefix = file_prefix(s, w.line);
    strbuf sb = {0};
    sh_format_error(&sb, prefix, message, w.line, w.line_text, w.line_len, (size_t)w.col, underline);
    fflush(st->out);
    fputs(sb.data, stderr);
    strbuf_free(&sb);
    free(prefix);
}

static void print_notices(sh_state *st, const json_t *result)
{
    const json_t *notices = json_object_get(result, "notices");
    size_t i;
    const json_t *n;
    if (!json_is_array(notices) || json_array_size(notices) == 0)
        return;
    fflush(st->out);
    json_array_foreach(notices, i, n) {
        if (json_is_string(n)) {
            fprintf(stderr, "NOTICE: %s\n", json_string_value(n));
        } else {
            const char *m = json_string_value(json_object_get(n, "message"));
            char *text = m ? NULL : sh_value_text(n);
            fprintf(stderr, "NOTICE: %s\n", m ? m : text ? text : "");
            free(text);
        }
    }
}

static void print_result(sh_state *st, const json_t *result)
{
    print_notices(st, result);
    strbuf sb = {0};
    sh_print_result(&sb, result, &st->print);
    sh_emit(st, &sb);
    strbuf_free(&sb);
    const char *var = json_string_value(json_object_get(result, "variable"));
    if (var)
        sh_add_variable(st, var);
}

/* Every result of a reply: "results" when present, else the body itself. */
static void print_results(sh_state *st, const json_t *body, bool body_is_result)
{
    const json_t *results = json_object_get(body, "results");
    if (json_is_array(results)) {
        size_t i;
        const json_t *r;
        json_array_foreach(results, i, r) {
            if (json_is_object(r))
                print_result(st, r);
        }
    } else if (body_is_result) {
        print_result(st, body);
    }
}

static bool error_position(const json_t *error, int *line, int *col)
{
    const json_t *pos = json_object_get(error, "position");
    const json_t *where = json_is_object(pos) ? pos : error;
    const json_t *l = json_object_get(where, "line");
    const json_t *c = json_object_get(where, "column");
    if (!c)
        c = json_object_get(where, "col");
    if (!json_is_integer(l) || json_integer_value(l) < 1)
        return false;
    *line = (int)json_integer_value(l);
    *col = json_is_integer(c) && json_integer_value(c) >= 1 ? (int)json_integer_value(c) : 1;
    return true;
}

void sh_print_reply_error(sh_state *st, const sh_reply *r)
{
    fflush(st->out);
    if (r->status == SH_CANCELED && st->interactive)
        fputc('\n', stderr); /* after the terminal's "^C" */
    if (r->status == SH_CANCELED && r->waiting) /* a WAIT given up: not an error of the query */
        fprintf(stderr, "%s\n", r->message);
    else if (r->status == SH_SERVER_ERROR || r->status == SH_CANCELED)
        fprintf(stderr, "ERROR: %s\n", r->message);
    else
        fprintf(stderr, "rankql: %s\n", r->message);
}

void sh_request_failed(sh_state *st, const sh_reply *r)
{
    sh_print_reply_error(st, r);
    if (r->status == SH_CONNECT) {
        sh_fail(st, SH_EXIT_CONNECT);
        if (!st->interactive)
            st->quit = true;
    } else {
        sh_fail(st, SH_EXIT_FAILED);
    }
}

bool sh_connect(sh_state *st, const char *target, bool announce)
{
    char err[512];
    sh_client *c = sh_client_new(target, st->token, err, sizeof(err));
    if (!c) {
        fflush(st->out);
        fprintf(stderr, "rankql: %s\n", err);
        sh_fail(st, SH_EXIT_FAILED);
        return false;
    }
    sh_reply r;
    if (sh_client_open_session(c, &r) != SH_OK) {
        if (r.status != SH_CONNECT && r.status != SH_CANCELED) {
            /* answered, but no session (a token is missing or wrong, not rankqld, …) */
            char *why = xasprintf("cannot open a session on %s: %s", sh_client_address(c), r.message);
            free(r.message);
            r.message = why;
            r.status = SH_CONNECT;
        }
        sh_request_failed(st, &r);
        sh_reply_free(&r);
        sh_client_free(c);
        return false;
    }
    sh_reply_free(&r);
    sh_client_free(st->client);
    st->client = c;
    sh_forget_variables(st);
    st->columns_loaded = false;
    if (announce && st->print.format == SH_FORMAT_TABLE) {
        fprintf(st->out, "You are now connected to rankqld at %s.\n", sh_client_address(c));
        fflush(st->out);
    }
    return true;
}

sh_status sh_query_quiet(sh_state *st, const char *text, sh_reply *r)
{
    return sh_client_query(st->client, text, strlen(text), r);
}

static bool run_use(sh_state *st, const ast_use *use)
{
    return sh_connect(st, use->target.text, true);
}

bool sh_run_statement(sh_state *st, const sh_script *s, const sh_stmt *stmt)
{
    if (stmt->error) {
        char *msg = xasprintf("%s: %s",
                              stmt->error->kind == RQ_ERR_LEXICAL ? "lexical error" : "syntax error",
                              stmt->error->message);
        print_error_at(st, s, msg, stmt->error_offset, stmt->error->len);
        free(msg);
        sh_fail(st, SH_EXIT_FAILED);
        return false;
    }
    if (stmt->ast && stmt->ast->kind == AST_USE)
        return run_use(st, (const ast_use *)stmt->ast);

    sh_interrupted = 0;
    double t0 = now_ms();
    sh_reply r;
    sh_status status = sh_client_query(st->client, stmt->text, stmt->len, &r);
    double elapsed = now_ms() - t0;
    bool ok = status == SH_OK;
    if (ok) {
        print_results(st, r.body, true);
        if (stmt->ast && stmt->ast->kind == AST_DECLARE)
            sh_add_variable(st, ((const ast_declare *)stmt->ast)->name.text);
    } else if (status == SH_SERVER_ERROR) {
        print_results(st, r.body, false); /* those before the failing one, if any */
        print_notices(st, r.body);
        const json_t *error = json_object_get(r.body, "error");
        int line, col;
        if (error_position(error, &line, &col)) {
            print_error_at(st, s, r.message, sh_stmt_offset(stmt, line, col), 1);
        } else {
            sh_where w = sh_script_where(s, stmt->offset);
            char *prefix = file_prefix(s, w.line);
            fflush(st->out);
            fprintf(stderr, "%sERROR: %s\n", prefix ? prefix : "", r.message);
            free(prefix);
        }
        sh_fail(st, SH_EXIT_FAILED);
    } else {
        sh_request_failed(st, &r);
    }
    if (st->timing && status != SH_CONNECT) {
        fprintf(st->out, "Time: %.3f ms\n", elapsed);
        fflush(st->out);
    }
    sh_reply_free(&r);
    return ok;
}
