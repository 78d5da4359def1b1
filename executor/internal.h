/* Shared by the executor's statement handlers; not part of its public interface. */
#ifndef RANKQL_EXECUTOR_INTERNAL_H
#define RANKQL_EXECUTOR_INTERNAL_H

#include <stdbool.h>
#include <time.h>

#include "executor/executor.h"
#include "planner/planner.h"

/* ---- errors (executor.c) ------------------------------------------------------------ */

/* Sets *err and returns NULL, so handlers can `return exec_fail(…)`. */
json_t *exec_fail(exec_error *err, int status, const char *code, ast_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same, returning false. */
bool exec_failb(exec_error *err, int status, const char *code, ast_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* 422 validation_error naming field. */
bool exec_invalid(exec_error *err, const char *field, ast_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void exec_from_plan_error(exec_error *err, const plan_error *pe);

/* ---- database (executor.c) ---------------------------------------------------------- */

/* PQexecParams with text parameters and results. Returns the result (caller PQclear's),
 * or NULL with *err set from the SQLSTATE: data errors → 400, integrity errors → 422
 * naming the column, lost connection → 503, anything else → 500. */
PGresult *exec_sql(exec_ctx *ctx, const char *sql, int nparams, const char *const *params,
                   exec_error *err);
/* exec_sql for statements without a result; returns the affected row count or -1. */
long exec_cmd(exec_ctx *ctx, const char *sql, int nparams, const char *const *params,
              exec_error *err);

/* ---- results (executor.c) ----------------------------------------------------------- */

/* {"statement": s, "columns": [], "rows": [], "row_count": 0, "notices": []} */
json_t *result_new(const char *statement);
void result_notice(json_t *result, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets columns and rows (steals both references) and row_count. */
void result_set(json_t *result, json_t *columns, json_t *rows);

/* ---- sessions and variables (variables.c) ------------------------------------------- */

/* Checks that ctx has a session and that it exists (404 not_found otherwise). */
bool session_require(exec_ctx *ctx, ast_pos pos, exec_error *err);

/* The variables a query reads, loaded for the planner. */
typedef struct loaded_vars {
    size_t n;
    plan_var *vars;
} loaded_vars;

bool vars_load(exec_ctx *ctx, const ast_node *query, loaded_vars *out, exec_error *err);
void vars_free(loaded_vars *v);

/* A stored variable's value ({"table", "ids", "columns", "rows"}), or NULL when the
 * session has none of that name (err untouched) or on a database error (err set). */
json_t *var_fetch(exec_ctx *ctx, const char *name, exec_error *err, bool *failed);

/* ---- handlers ----------------------------------------------------------------------- */

/* Plans a query with the session's variables. Returns NULL with *err set. */
plan *exec_plan(exec_ctx *ctx, const ast_node *query, loaded_vars *vars, exec_error *err);
/* Runs a plan: the rows as JSON arrays; the row ids into *ids (when not NULL and the
 * plan has them; caller json_decref's). */
json_t *exec_run_plan(exec_ctx *ctx, const plan *p, json_t **ids, exec_error *err);

json_t *exec_query(exec_ctx *ctx, const ast_node *query, exec_error *err);
json_t *exec_explain(exec_ctx *ctx, const ast_explain *e, exec_error *err);
/* A plan tree (planner_explain_tree) as QUERY PLAN rows, one ["line"] each. */
json_t *explain_rows(const json_t *tree);
/* After EXPLAIN ANALYZE ran a job query (run: its "jobs" and "status") between the
 * CLOCK_MONOTONIC readings a and b: marks them on the plan tree; the milliseconds it took. */
double explain_mark_run(json_t *tree, const json_t *run, const struct timespec *a,
                        const struct timespec *b);
/* The QUERY PLAN of a query that runs jobs (rankings, SELECT vec), so both print alike: JSON,
 * the plan document with execution_time_ms after ANALYZE; text, rows (the caller's lines,
 * taken; NULL with JSON) then, after ANALYZE (run not NULL), the jobs it ran (the failed
 * ones too when with_failed) and its time. */
void explain_jobs_result(json_t *result, const ast_explain *e, json_t *tree, json_t *rows,
                         const json_t *run, double ms, bool with_failed);
json_t *exec_declare(exec_ctx *ctx, const ast_declare *d, exec_error *err);
json_t *exec_print(exec_ctx *ctx, const ast_print *p, exec_error *err);
json_t *exec_register(exec_ctx *ctx, const ast_register *r, exec_error *err);
json_t *exec_show(exec_ctx *ctx, const ast_show *s, exec_error *err);
json_t *exec_use(exec_ctx *ctx, const ast_use *u, exec_error *err);
json_t *exec_purge(exec_ctx *ctx, const ast_purge *p, exec_error *err);
/* After PURGE committed: deletes the feature files no longer cached, adds the count. */
void exec_purge_files(exec_ctx *ctx, json_t *result);

/* ---- task-aware queries (task.c) ----------------------------------------------------- */

/* Whether a query ranks models on data (TRAINED ON, CLASSIFIED BY, RANK … BY, ORDER BY err). */
bool task_query_applies(const ast_node *query);
json_t *exec_task_query(exec_ctx *ctx, const ast_select *s, exec_error *err);
/* EXPLAIN [ANALYZE] [JSON] of a task-aware query: its jobs and what the caches hold. */
json_t *exec_task_explain(exec_ctx *ctx, const ast_explain *e, exec_error *err);
json_t *exec_cancel(exec_ctx *ctx, const ast_cancel *c, exec_error *err);
/* FINETUNE (finetune.c): fine-tune jobs, answered from finetune_results when known. */
json_t *exec_finetune(exec_ctx *ctx, const ast_finetune *f, exec_error *err);

/* ---- model checks (check.c) ---------------------------------------------------------- */

/* Looks up every `property OF "model"` of a plan and fills in its value (404 for an
 * unknown model, 409 no_measurement when the property is NULL); adds a notice each. */
bool exec_resolve_refs(exec_ctx *ctx, plan *p, exec_error *err);
/* After REGISTER MODEL wrote the row of model_name: submits its check job (or marks it
 * UNCHECKED) when what the check depends on changed, or always with force. Adds a notice
 * to result when not NULL. */
bool check_after_register(exec_ctx *ctx, const char *model_name, bool force, json_t *result,
                          exec_error *err);
json_t *exec_check(exec_ctx *ctx, const ast_check *c, exec_error *err);

#endif
