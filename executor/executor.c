/* executor_run: one statement, one transaction. Also the helpers every handler shares:
 * errors, database calls with SQLSTATE mapping, result objects. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "db/pqutil.h"
#include "executor/internal.h"
#include "executor/similarity.h"

/* ---- errors --------------------------------------------------------------------------- */

static void vset(exec_error *err, int status, const char *code, ast_pos pos, const char *fmt,
                 va_list ap)
{
    err->http_status = status;
    snprintf(err->code, sizeof err->code, "%s", code);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    err->line = pos.line;
    err->col = pos.col;
}

json_t *exec_fail(exec_error *err, int status, const char *code, ast_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, status, code, pos, fmt, ap);
    va_end(ap);
    return NULL;
}

bool exec_failb(exec_error *err, int status, const char *code, ast_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, status, code, pos, fmt, ap);
    va_end(ap);
    return false;
}

bool exec_invalid(exec_error *err, const char *field, ast_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, 422, "validation_error", pos, fmt, ap);
    va_end(ap);
    snprintf(err->field, sizeof err->field, "%s", field);
    return false;
}

void exec_from_plan_error(exec_error *err, const plan_error *pe)
{
    err->http_status = pe->http_status;
    snprintf(err->code, sizeof err->code, "%s", pe->code);
    snprintf(err->message, sizeof err->message, "%s", pe->message);
    err->line = pe->line;
    err->col = pe->col;
}

/* ---- database ------------------------------------------------------------------------- */

/* "models_num_params_check" → "num_params": the column a constraint guards. */
static void constraint_field(const char *constraint, char *field, size_t size)
{
    static const struct { const char *constraint, *field; } known[] = {
        {"models_image_size_only_image", "image_size"},
        {"models_token_length_only_text", "token_length"},
        {"models_not_own_parent", "parent"},
        {"models_name_key", "name"},
        {"datasets_name_key", "name"},
        {"datasets_slice_order", "slice_stop"},
        {"datasets_file_format_needs_location", "location"},
    };
    snprintf(field, size, "%s", "");
    if (!constraint)
        return;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].constraint, constraint) == 0) {
            snprintf(field, size, "%s", known[i].field);
            return;
        }
    const char *s = constraint;
    if (strncmp(s, "models_", 7) == 0)
        s += 7;
    else if (strncmp(s, "datasets_", 9) == 0)
        s += 9;
    size_t n = strlen(s);
    if (n > 6 && strcmp(s + n - 6, "_check") == 0)
        n -= 6;
    snprintf(field, size, "%.*s", (int)n, s);
}

static void error_from_result(exec_ctx *ctx, const PGresult *res, exec_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char *msg = pq_one_line(primary ? primary : PQerrorMessage(ctx->conn));
    ast_pos none = {0, 0, 0};
    if (PQstatus(ctx->conn) != CONNECTION_OK) {
        exec_fail(err, 503, "database_unavailable", none, "the catalog database is unreachable: %s", msg);
    } else if (state && strcmp(state, "57014") == 0) {
        exec_fail(err, 503, "timeout", none, "the statement ran past its time limit");
    } else if (state && strncmp(state, "22", 2) == 0) {
        exec_fail(err, 400, "semantic_error", none, "invalid value: %s", msg);
    } else if (state && strncmp(state, "23", 2) == 0) {
        char field[64];
        constraint_field(res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL, field,
                         sizeof field);
        exec_fail(err, 422, "validation_error", none, "%s%s%s", field, field[0] ? ": " : "", msg);
        snprintf(err->field, sizeof err->field, "%s", field);
    } else if (state && strcmp(state, "42P10") == 0) {
        exec_fail(err, 400, "semantic_error", none, "%s", msg);
    } else {
        exec_fail(err, 500, "database_error", none, "database error%s%s: %s", state ? " " : "",
                  state ? state : "", msg);
    }
    free(msg);
}

PGresult *exec_sql(exec_ctx *ctx, const char *sql, int nparams, const char *const *params,
                   exec_error *err)
{
    PGresult *res = PQexecParams(ctx->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    error_from_result(ctx, res, err);
    PQclear(res);
    return NULL;
}

long exec_cmd(exec_ctx *ctx, const char *sql, int nparams, const char *const *params,
              exec_error *err)
{
    PGresult *res = exec_sql(ctx, sql, nparams, params, err);
    if (!res)
        return -1;
    const char *n = PQcmdTuples(res);
    long count = n && *n ? strtol(n, NULL, 10) : 0;
    PQclear(res);
    return count;
}

/* ---- results -------------------------------------------------------------------------- */

json_t *result_new(const char *statement)
{
    return json_pack("{s:s, s:[], s:[], s:i, s:[]}", "statement", statement, "columns", "rows",
                     "row_count", 0, "notices");
}

void result_notice(json_t *result, const char *fmt, ...)
{
    va_list ap;
    strbuf sb = {0};
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    json_array_append_new(json_object_get(result, "notices"), json_string(sb.data ? sb.data : ""));
    strbuf_free(&sb);
}

void result_set(json_t *result, json_t *columns, json_t *rows)
{
    json_object_set_new(result, "row_count", json_integer((json_int_t)json_array_size(rows)));
    json_object_set_new(result, "columns", columns);
    json_object_set_new(result, "rows", rows);
}

/* ---- dispatch and transactions -------------------------------------------------------- */

/* For statements that parse but have no executor yet (none right now). */
static __attribute__((unused)) json_t *not_implemented(exec_error *err, const ast_node *stmt, const char *what)
{
    return exec_fail(err, 501, "not_implemented", stmt->pos, "%s is not implemented yet", what);
}

static json_t *dispatch(exec_ctx *ctx, const ast_node *stmt, exec_error *err)
{
    switch (stmt->kind) {
    case AST_SELECT:
        if (similarity_query_applies(stmt))
            return exec_similarity_query(ctx, (const ast_select *)stmt, err);
        return exec_query(ctx, stmt, err);
    case AST_SET_OP: return exec_query(ctx, stmt, err);
    case AST_EXPLAIN:
        if (similarity_query_applies(((const ast_explain *)stmt)->stmt))
            return exec_similarity_explain(ctx, (const ast_explain *)stmt, err);
        return exec_explain(ctx, (const ast_explain *)stmt, err);
    case AST_DECLARE: return exec_declare(ctx, (const ast_declare *)stmt, err);
    case AST_PRINT: return exec_print(ctx, (const ast_print *)stmt, err);
    case AST_REGISTER: return exec_register(ctx, (const ast_register *)stmt, err);
    case AST_SHOW: return exec_show(ctx, (const ast_show *)stmt, err);
    case AST_USE: return exec_use(ctx, (const ast_use *)stmt, err);
    case AST_PURGE: return exec_purge(ctx, (const ast_purge *)stmt, err);
    case AST_FINETUNE: return exec_finetune(ctx, (const ast_finetune *)stmt, err);
    case AST_CANCEL: return exec_cancel(ctx, (const ast_cancel *)stmt, err);
    case AST_CHECK: return exec_check(ctx, (const ast_check *)stmt, err);
    default:
        return exec_fail(err, 400, "semantic_error", stmt->pos, "this is not a statement");
    }
}

/* Statements that only read: each of their SQL statements is atomic on its own, so they
 * skip BEGIN/COMMIT and the two round trips that cost (a third of a catalog SELECT). */
static bool is_read_only(ast_kind kind)
{
    switch (kind) {
    case AST_SELECT:
    case AST_SET_OP:
    case AST_EXPLAIN:
    case AST_SHOW:
    case AST_PRINT:
    case AST_USE:
    case AST_CANCEL: /* the queue commits on its own */
    case AST_FINETUNE: /* likewise, and its WAIT must not hold a transaction open */
        return true;
    default:
        return false;
    }
}

/* One statement, one transaction; inside a caller's transaction, a savepoint, so a failed
 * statement still leaves nothing half-written. */
json_t *executor_run(exec_ctx *ctx, const ast_node *stmt, exec_error *err)
{
    exec_error scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    ast_pos none = {0, 0, 0};
    if (!ctx || !ctx->conn || !stmt)
        return exec_fail(err, 500, "internal_error", none, "executor_run: no connection or statement");
    if (PQstatus(ctx->conn) != CONNECTION_OK)
        return exec_fail(err, 503, "database_unavailable", none, "the catalog database is unreachable");
    PGTransactionStatusType ts = PQtransactionStatus(ctx->conn);
    if (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS)
        return exec_fail(err, 500, "internal_error", none,
                         "executor_run: the connection is busy or its transaction failed");
    bool nested = ts == PQTRANS_INTRANS;
    if (!nested && is_read_only(stmt->kind))
        return dispatch(ctx, stmt, err);
    if (exec_cmd(ctx, nested ? "SAVEPOINT rankql_statement" : "BEGIN", 0, NULL, err) < 0)
        return NULL;
    json_t *result = dispatch(ctx, stmt, err);
    exec_error end_err = {0};
    if (result) {
        if (exec_cmd(ctx, nested ? "RELEASE SAVEPOINT rankql_statement" : "COMMIT", 0, NULL,
                     &end_err) >= 0) {
            if (stmt->kind == AST_PURGE && !nested)
                exec_purge_files(ctx, result);
            else if (stmt->kind == AST_PURGE)
                result_notice(result, "feature files are kept: the caller's transaction has not "
                                      "committed yet; a PURGE of its own deletes them");
            return result;
        }
        json_decref(result);
        *err = end_err;
    }
    if (nested)
        exec_cmd(ctx, "ROLLBACK TO SAVEPOINT rankql_statement", 0, NULL, &end_err);
    else
        exec_cmd(ctx, "ROLLBACK", 0, NULL, &end_err);
    if (nested)
        exec_cmd(ctx, "RELEASE SAVEPOINT rankql_statement", 0, NULL, &end_err);
    return NULL;
}
