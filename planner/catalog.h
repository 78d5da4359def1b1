/* The planner's whitelists: the tables a query may read, their columns with types and
 * SQL expressions, default column lists for `*`, and the spec keys that may be named
 * without `spec.`. Nothing else ever becomes SQL text. Internal to planner/. */
#ifndef RANKQL_PLANNER_CATALOG_H
#define RANKQL_PLANNER_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "planner/planner.h"

typedef enum col_type {
    CT_INT,
    CT_FLOAT,
    CT_TEXT,
    CT_BOOL,
    CT_DATE,
    CT_TIMESTAMP,
    CT_JSON,       /* a jsonb column (spec, payload, result) */
    CT_TEXTARRAY,  /* tags */
} col_type;

typedef struct catalog_column {
    const char *name;
    const char *sql;   /* expression over the table alias t */
    col_type type;
    unsigned tables;   /* bit (1u << plan_table) for each table that has it */
} catalog_column;

typedef struct catalog_table {
    plan_table id;
    const char *name;          /* as users write it */
    plan_entity entity;
    const char *relation;      /* the PostgreSQL table */
    const char *scope_sql;     /* a constant restriction (modality), or NULL */
    const char *json_column;   /* where bare non-column names look: "spec", "payload" */
    const char *const *defaults; /* `*`, NULL-terminated */
} catalog_table;

const catalog_table *catalog_table_get(plan_table t);
/* A column of table t by name (case-insensitive, as in SQL), or NULL. */
const catalog_column *catalog_column_find(plan_table t, const char *name);
/* A column of any table of the same entity (for "image_size is a column of image
 * models" messages), or NULL. */
const catalog_column *catalog_column_find_entity(plan_entity e, const char *name);
/* Is name a spec key users may name without `spec.` in a select list or ORDER BY
 * (SHiFT's model and reader JSON keys, builtin runner parameters)? */
bool catalog_known_spec_key(plan_entity e, const char *name);
/* The closest column name of t (edit distance ≤ 2, or ≤ a third of the length), or NULL. */
const char *catalog_suggest_column(plan_table t, const char *name);
/* Edit distance, capped (returns cap + 1 once it exceeds cap). */
size_t catalog_edit_distance(const char *a, const char *b, size_t cap);

#endif
