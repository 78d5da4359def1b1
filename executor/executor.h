/* The executor: runs one parsed RankQL statement against the PostgreSQL catalog and
 * returns its result as JSON, the same object the HTTP API sends (docs/http-api.md).
 *
 *   exec_ctx ctx = {.conn = conn, .session_id = id};
 *   exec_error err;
 *   json_t *result = executor_run(&ctx, stmt, &err);
 *   if (!result) … err.http_status, err.code, err.message, err.line, err.col …
 *
 * A result object has:
 *   "statement":  "SELECT", "EXPLAIN", "DECLARE", "REGISTER", …
 *   "columns":    ["name", "num_params", …]
 *   "rows":       [[…], …]            values as JSON (numbers, strings, booleans, null, objects)
 *   "row_count":  number of rows
 *   "notices":    ["…", …]             things the user should know (never errors)
 *   plus statement-specific fields ("plan" for EXPLAIN JSON, "variable" for DECLARE, …).
 *
 * Every statement runs in one transaction: an error leaves nothing half-written.
 */
#ifndef RANKQL_EXECUTOR_EXECUTOR_H
#define RANKQL_EXECUTOR_EXECUTOR_H

#include <stdbool.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "grammar/ast.h"

/* WAIT progress, reported while a task-aware query waits for its jobs: a JSON object
 *   {"type": "progress", "jobs_total": n, "jobs_done": n, "jobs_running": n,
 *    "jobs_failed": n, "fraction": 0..1, "elapsed_seconds": s, "eta_seconds": s | null}
 * The callback runs on the executing thread; it must not keep the object. */
typedef void (*exec_progress_fn)(void *arg, const json_t *event);

typedef struct exec_ctx {
    PGconn *conn;            /* a connection to the migrated catalog database */
    const char *session_id;  /* sessions.id (uuid text) for DECLARE/PRINT; NULL = none */
    const char *data_dir;    /* where feature files live (features/…); NULL = none known */
    exec_progress_fn on_progress; /* WAIT progress; NULL = not reported */
    void *progress_arg;
    /* Set (by another thread: the client went away, the server stops) to end a WAIT early;
     * the query's jobs keep running. NULL = never. */
    const volatile int *cancelled;
    double wait_timeout_seconds;  /* longest WAIT; 0 = no limit */
    /* SHiFT's dry run: a ranking answers what is known and how much work remains, and
     * submits nothing (nor waits). */
    bool dry;
} exec_ctx;

typedef struct exec_error {
    int http_status;         /* 400 bad query, 404 unknown thing, 422 invalid value, 501, 500 … */
    char code[32];           /* "semantic_error", "validation_error", "not_found", "not_implemented",
                                "database_error", "internal_error" */
    char message[1024];      /* one line, names the cause */
    int line, col;           /* position in the statement's source; 0 when none */
    char field[64];          /* validation_error: the REGISTER field at fault; "" otherwise */
} exec_error;

/* Runs stmt; returns a new result object (caller json_decref's it), or NULL with *err. */
json_t *executor_run(exec_ctx *ctx, const ast_node *stmt, exec_error *err);

#endif
