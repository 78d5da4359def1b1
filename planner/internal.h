/* Shared between the planner's phases; not part of its public interface. */
#ifndef RANKQL_PLANNER_INTERNAL_H
#define RANKQL_PLANNER_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>

#include "planner/catalog.h"
#include "planner/planner.h"

/* Sets *err (code, status, position of node or pos) and returns false, so callers can
 * `return plan_fail(…)`. */
bool plan_fail(plan_error *err, int status, const char *code, ast_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
bool plan_semantic(plan_error *err, ast_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void plan_add_notice(plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- expressions → SQL (expr.c) ------------------------------------------------------ */

typedef enum sql_type {
    ST_NUM,
    ST_TEXT,
    ST_BOOL,
    ST_DATE,
    ST_TIMESTAMP,
    ST_JSON,       /* a field inside a JSON column: any JSON value, or missing */
    ST_JSONDOC,    /* a whole jsonb column (spec) */
    ST_TEXTARRAY,
    ST_NULL,
    ST_ANY,        /* only as the type a literal is wanted as: its own */
} sql_type;

/* The state of one SQL generation: where parameters go, which table names resolve
 * against, and where notices go. */
typedef struct sqlgen {
    plan *plan;
    plan_params *params;
    plan_table table;
    const char *from_name;      /* the name written after FROM, for t.col qualifiers */
    plan_error *err;
    const plan_node *node;      /* the Filter being compiled (for plan_ref), or NULL */
} sqlgen;

/* The default filter of hide_failed_checks scans (docs/language.md "Model checks"). */
#define PLAN_CHECKS_FILTER_SQL "t.status NOT IN ('INVALID', 'NONUSABLE')"
#define PLAN_CHECKS_FILTER_TEXT "status NOT IN ('INVALID', 'NONUSABLE')"

/* A compiled expression. For ST_JSON, sql is the jsonb expression and text_sql the
 * same path ending in ->> (the field as text). */
typedef struct sql_expr {
    sql_type type;
    char *sql;
    char *text_sql;
    char *name;                 /* output column name when projected */
} sql_expr;

void sql_expr_free(sql_expr *e);

/* How a bare identifier that is not a column is read. */
typedef enum name_mode {
    NAMES_WHERE,   /* a spec field (SHiFT), with a notice when it looks like a typo */
    NAMES_STRICT,  /* select list, ORDER BY: only columns and known spec keys */
} name_mode;

/* A WHERE condition → boolean SQL. */
bool sqlgen_condition(sqlgen *g, const ast_node *cond, char **sql);
/* A select-list or ORDER BY expression. */
bool sqlgen_value(sqlgen *g, const ast_node *expr, name_mode mode, sql_expr *out);
/* jsonb for a projected value. Caller frees. */
char *sqlgen_to_jsonb(const sql_expr *e);

/* ---- logical plan helpers ------------------------------------------------------------ */

plan_node *plan_node_new(plan_op op);
void plan_node_free(plan_node *n);
/* The leftmost SELECT of a query (whose select list a set operation outputs). */
const ast_select *plan_first_select(const ast_node *query);

#endif
