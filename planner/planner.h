/* The planner: a parsed catalog query (AST) → logical plan → physical plan.
 *
 *   plan_error err;
 *   plan *p = planner_plan(stmt, &env, &err);       // SELECT … or a set operation
 *   if (!p) … err.http_status, err.code, err.message, err.line, err.col …
 *   PQexecParams(conn, p->sql, p->params.n, NULL, p->params.values, …);
 *   plan_free(p);
 *
 * The logical plan is a tree of Scan, Filter, Exclude (OTHER THAN), Project, Sort, Limit
 * and SetOp nodes; EXPLAIN prints it. The physical plan is one PostgreSQL statement with
 * $n placeholders and its parameter array: every value the user wrote (strings, numbers,
 * spec keys, variable contents) travels as a parameter, and the SQL text is built only
 * from the planner's own whitelists of tables, columns and operators.
 *
 * The planner never talks to the database. Session variables that a query names
 * (FROM v, OTHER THAN v) are looked up by the caller first and passed in plan_env
 * (planner_referenced_vars lists the names to look up).
 */
#ifndef RANKQL_PLANNER_PLANNER_H
#define RANKQL_PLANNER_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "grammar/ast.h"

/* What a row of a result is: model sets, dataset sets and job lists never mix. */
typedef enum plan_entity { ENTITY_MODELS, ENTITY_DATASETS, ENTITY_JOBS } plan_entity;

/* The tables a query may name (readers is an alias of datasets). */
typedef enum plan_table {
    TABLE_MODELS,
    TABLE_IMAGE_MODELS,
    TABLE_TEXT_MODELS,
    TABLE_DATASETS,
    TABLE_JOBS,
} plan_table;

/* A session variable as the planner needs it: the table its query read and the ids of
 * its rows, in the variable's order. */
typedef struct plan_var {
    const char *name;
    plan_table table;
    size_t nids;
    const int64_t *ids;
} plan_var;

typedef struct plan_env {
    const plan_var *vars;
    size_t nvars;
    /* Scans of model tables leave out models whose check failed (status INVALID or
     * NONUSABLE) unless the query's WHERE names status (docs/language.md "Model checks").
     * The executor sets it; false plans exactly what was written. */
    bool hide_failed_checks;
} plan_env;

typedef struct plan_error {
    int http_status;      /* 400 semantic_error, 501 not_implemented, 500 internal_error */
    char code[32];
    char message[1024];
    int line, col;        /* 0 when the error has no position */
} plan_error;

/* Parameter values as PostgreSQL text; NULL would be SQL NULL (never produced today). */
typedef struct plan_params {
    size_t n, cap;
    char **values;
} plan_params;

/* Appends a parameter value (copied); returns its 1-based number for "$n". */
size_t plan_params_add(plan_params *p, const char *value);
void plan_params_free(plan_params *p);

typedef enum plan_op {
    PLAN_SCAN,     /* rows of a table, or of a variable (var != NULL) */
    PLAN_FILTER,   /* WHERE */
    PLAN_EXCLUDE,  /* OTHER THAN v */
    PLAN_PROJECT,  /* the select list */
    PLAN_SORT,     /* ORDER BY, NULLs last */
    PLAN_LIMIT,
    PLAN_SETOP,    /* UNION / INTERSECT / EXCEPT by row identity */
} plan_op;

/* A logical plan node. Unary nodes use input; PLAN_SETOP uses left and right. */
typedef struct plan_node {
    plan_op op;
    struct plan_node *input, *left, *right;
    plan_table table;          /* SCAN: the table read (a variable's: the table it came from) */
    const plan_var *var;       /* SCAN of a variable, EXCLUDE */
    const ast_node *where;     /* FILTER */
    const ast_list *columns;   /* PROJECT: of ast_column */
    bool distinct;             /* PROJECT */
    const ast_list *order_by;  /* SORT: of ast_order_item */
    int64_t limit;             /* LIMIT */
    ast_set_kind set_kind;     /* SETOP */
    bool hide_failed_checks;   /* SCAN: the default status filter applies */
    /* Filled by the physical phase: */
    char *detail;              /* one line for EXPLAIN ("num_params DESC NULLS LAST") */
    char *scan_sql;            /* SCAN: the scan alone, for its row estimate */
    plan_params scan_params;
} plan_node;

/* A property of one named model used in an expression (latency_ms OF "resnet50"). Its
 * value is parameter number `param`, left NULL by the planner: the executor looks the
 * model up, fails when it has no such value, and fills it in with planner_resolve_ref(),
 * which also records the provenance EXPLAIN prints. */
typedef struct plan_ref {
    char *property;            /* a whitelisted numeric model column (plan_ref_column) */
    char *model;               /* the model's name */
    ast_pos pos;
    size_t param;              /* 1-based, in plan.params */
    const plan_node *node;     /* the Filter it belongs to, or NULL (select list, ORDER BY) */
    /* Set by planner_resolve_ref: */
    bool resolved;
    double value;
    char *status, *measured_on, *checked_at;
} plan_ref;

typedef struct plan {
    plan_node *root;           /* logical plan */
    plan_entity entity;
    plan_table table;          /* the table whose columns the output is resolved against */
    char *sql;                 /* physical plan */
    plan_params params;
    bool has_id;               /* result column 0 is the row id (hidden from the user) */
    size_t ncolumns;           /* output columns after the id, each a jsonb value */
    char **columns;
    size_t nnotices;
    char **notices;
    size_t nrefs;
    plan_ref *refs;
} plan;

/* ---- names -------------------------------------------------------------------------- */

/* Looks up a table name (case-insensitive; "readers" = datasets). */
bool planner_table_lookup(const char *name, plan_table *out);
/* The name of a table as users write it. */
const char *planner_table_name(plan_table t);
plan_entity planner_table_entity(plan_table t);
/* "models", "datasets", "jobs" */
const char *planner_entity_name(plan_entity e);
/* Names DECLARE may not use: the table names and SHiFT's client scope keys
 * (query_type, response, remaining_tasks), case-insensitive. */
bool planner_name_reserved(const char *name);

/* The variable names a query reads (FROM v, OTHER THAN v), each once, in order; the
 * caller looks them up and passes them in plan_env. Returns the count (≤ max). */
size_t planner_referenced_vars(const ast_node *query, const ast_name **out, size_t max);

/* ---- planning ----------------------------------------------------------------------- */

/* Why a query cannot run as a catalog query: NULL for a catalog query, else a sentence
 * naming the task-aware feature it uses (ORDER BY err, TRAINED ON, RANK … BY, …). */
const char *planner_task_aware_reason(const ast_node *query, const ast_node **where);

/* AST → logical plan. query is an AST_SELECT or AST_SET_OP. Returns NULL with *err set. */
plan *planner_logical(const ast_node *query, const plan_env *env, plan_error *err);

/* Logical → physical: fills sql, params, columns, notices and each node's detail.
 * Returns false with *err set (type errors, unknown columns or functions). */
bool planner_physical(plan *p, plan_error *err);

/* Both phases. */
plan *planner_plan(const ast_node *query, const plan_env *env, plan_error *err);

void plan_free(plan *p);

/* The SQL column behind a property usable with OF (latency_ms, num_params, dimension,
 * up_acc, batch_size, image_size, token_length), or NULL. */
const char *plan_ref_column(const char *property);
/* Fills ref i: its value (as the parameter) and where it came from (any may be NULL). */
void planner_resolve_ref(plan *p, size_t i, double value, const char *status,
                         const char *measured_on, const char *checked_at);
/* "latency_ms OF "resnet50" = 1.25 (USABLE, measured on …, checked …)". Caller frees. */
char *planner_ref_text(const plan_ref *r);

/* ---- EXPLAIN ------------------------------------------------------------------------ */

/* The plan tree as JSON: {"node", "detail", "children": [...]} plus, where PostgreSQL's
 * EXPLAIN (FORMAT JSON) output pg_plan (its "Plan" object) has a matching node,
 * "estimated_rows", "startup_cost", "total_cost" and, after ANALYZE, "actual_rows",
 * "actual_time_ms", "loops". scan_plans[i] is the "Plan" of the i-th scan's own
 * estimate (pre-order), or NULL. Returns a new reference. */
json_t *planner_explain_tree(const plan *p, json_t *pg_plan, json_t *const *scan_plans,
                             size_t nscan_plans);

/* The scans of a plan in pre-order (what scan_plans is indexed by). */
size_t planner_scans(const plan *p, const plan_node **out, size_t max);

/* Renders a planner_explain_tree() result as indented lines ("→ Sort: …  (rows=…)").
 * Returns the number of lines; *lines is a malloc'd array of malloc'd strings. */
size_t planner_explain_lines(const json_t *tree, char ***lines);

/* An expression written back as RankQL (for EXPLAIN and messages). Caller frees. */
char *planner_deparse(const ast_node *expr);

#endif
