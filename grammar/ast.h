/* The RankQL abstract syntax tree.
 *
 * Every node starts with an ast_node header (kind + source position) so code can switch
 * on kind and cast, PostgreSQL-style. All nodes, lists and strings of one parse live in
 * one arena and are freed together with the parse result (see parse.h).
 */
#ifndef RANKQL_GRAMMAR_AST_H
#define RANKQL_GRAMMAR_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* 1-based line and column (columns count bytes), plus the byte offset from the start. */
typedef struct ast_pos {
    int line;
    int col;
    size_t offset;
} ast_pos;

typedef enum ast_kind {
    /* statements */
    AST_SELECT,   /* SELECT … (catalog or task-aware) and RANK … BY */
    AST_SET_OP,   /* query UNION | INTERSECT | EXCEPT query */
    AST_EXPLAIN,
    AST_DECLARE,
    AST_REGISTER,
    AST_USE,
    AST_PRINT,
    AST_FINETUNE,
    AST_PURGE,
    AST_SHOW,
    AST_CANCEL,
    /* clause parts */
    AST_COLUMN,      /* a select-list entry */
    AST_ORDER_ITEM,
    AST_DATASET_REF, /* a dataset in TRAINED ON / TESTED ON, with slice and mutations */
    AST_CHANGE,      /* CHANGE [i…] TO target [j…] */
    AST_CALL,        /* classifier or strategy: name(k=v, …) */
    AST_PARAM,       /* k = v inside a call */
    /* expressions */
    AST_LITERAL,
    AST_COLUMN_REF,  /* a, a.b.c (catalog column or a path into the model's JSON spec) */
    AST_STAR,        /* '*' in a select list or count(*) */
    AST_UNARY,
    AST_BINARY,
    AST_BETWEEN,
    AST_IN,
    AST_IS_NULL,
    AST_LIKE,
    AST_FINETUNED,   /* the FINETUNED predicate */
    AST_FUNC,        /* f(args): AVG(err), COUNT(*), … */
    AST_ARRAY,       /* [v, …] in REGISTER values */
    AST_OBJECT,      /* {k: v, …} in REGISTER values */
    AST_OBJECT_FIELD,
    AST_MODEL_PROPERTY, /* latency_ms OF "resnet50": a property of one named model */
    AST_CHECK,          /* statement: CHECK MODEL name | CHECK MODELS (added last: kinds keep
                           their values) */
} ast_kind;

typedef struct ast_node {
    ast_kind kind;
    ast_pos pos;
    int depth;         /* expressions: height of the subtree, 0 for a leaf (the parser caps it) */
} ast_node;

/* A growable list of nodes (arena-allocated). */
typedef struct ast_list {
    size_t n;
    size_t cap;
    ast_node **items;
} ast_list;

/* A name as written: identifiers keep their case; quoted names keep their quotes' content. */
typedef struct ast_name {
    const char *text;
    ast_pos pos;
    bool quoted;
} ast_name;

/* ---- expressions ---------------------------------------------------------------------- */

typedef enum ast_literal_type { LIT_INT, LIT_FLOAT, LIT_STRING, LIT_BOOL, LIT_NULL } ast_literal_type;

typedef struct ast_literal {
    ast_node h;
    ast_literal_type type;
    int64_t ival;      /* LIT_INT */
    double fval;       /* LIT_FLOAT (also set for LIT_INT) */
    bool bval;         /* LIT_BOOL */
    const char *str;   /* LIT_STRING: decoded text (may contain NUL bytes: see len) */
    size_t len;
    const char *text;  /* numbers: the source text, e.g. "10M" */
} ast_literal;

typedef struct ast_column_ref {
    ast_node h;
    size_t nparts;     /* a.b.c → 3 parts */
    ast_name *parts;
} ast_column_ref;

typedef struct ast_star {
    ast_node h;
} ast_star;

typedef enum ast_op {
    OP_OR, OP_AND, OP_NOT,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_NEG,
} ast_op;

typedef struct ast_unary {
    ast_node h;
    ast_op op;         /* OP_NOT or OP_NEG */
    ast_node *operand;
} ast_unary;

typedef struct ast_binary {
    ast_node h;
    ast_op op;
    ast_node *left;
    ast_node *right;
} ast_binary;

typedef struct ast_between {
    ast_node h;
    bool negated;
    ast_node *value, *low, *high;
} ast_between;

typedef struct ast_in {
    ast_node h;
    bool negated;
    ast_node *value;
    ast_list *items;
} ast_in;

typedef struct ast_is_null {
    ast_node h;
    bool negated;      /* IS NOT NULL */
    ast_node *value;
} ast_is_null;

typedef struct ast_like {
    ast_node h;
    bool negated;
    ast_node *value;
    ast_node *pattern;
} ast_like;

typedef struct ast_model_property {
    ast_node h;
    ast_name property; /* latency_ms, num_params, … (the planner checks it) */
    ast_name model;
} ast_model_property;

typedef struct ast_func {
    ast_node h;
    const char *name;  /* upper-cased for keywords (AVG, SUM, MIN, MAX), as written otherwise */
    ast_list *args;
} ast_func;

typedef struct ast_array {
    ast_node h;
    ast_list *items;
} ast_array;

typedef struct ast_object_field {
    ast_node h;
    ast_name key;
    ast_node *value;
} ast_object_field;

typedef struct ast_object {
    ast_node h;
    ast_list *fields;  /* of ast_object_field */
} ast_object;

/* ---- clause parts --------------------------------------------------------------------- */

typedef struct ast_column {
    ast_node h;
    bool distinct;
    ast_node *expr;    /* ast_column_ref, ast_star, ast_literal or ast_func */
    ast_name alias;    /* alias.text == NULL when absent */
} ast_column;

typedef struct ast_order_item {
    ast_node h;
    ast_node *key;     /* ast_column_ref or ast_func (AVG(err), …) */
    bool desc;
    bool explicit_direction;
} ast_order_item;

typedef struct ast_int_list {
    size_t n;
    int64_t *v;
    ast_pos pos;
} ast_int_list;

struct ast_dataset_ref;

typedef struct ast_change {
    ast_node h;
    ast_int_list base_indices;
    struct ast_dataset_ref *target;
    bool has_target_indices;      /* false: target indices = base indices */
    ast_int_list target_indices;
} ast_change;

typedef struct ast_dataset_ref {
    ast_node h;
    ast_name name;
    bool has_slice;               /* "name"[start:stop] */
    bool has_slice_start, has_slice_stop;
    int64_t slice_start, slice_stop;
    ast_list *changes;            /* of ast_change; NULL when none */
} ast_dataset_ref;

typedef struct ast_param {
    ast_node h;
    ast_name key;
    ast_node *value;              /* ast_literal, ast_column_ref (bare word) or ast_array */
} ast_param;

typedef struct ast_call {
    ast_node h;
    ast_name name;                /* "Euclidean NN", Linear, random, … */
    bool has_parens;
    ast_list *params;             /* of ast_param; NULL when written without parentheses */
} ast_call;

/* ---- statements ----------------------------------------------------------------------- */

typedef enum ast_tested_kind { TESTED_NONE, TESTED_DEFAULT, TESTED_TASK, TESTED_BENCHMARK } ast_tested_kind;

/* CHUNK / BUDGET: a number or AUTO; ETA: a number (≥ 2). */
typedef struct ast_amount {
    bool present;
    bool is_auto;
    int64_t value;
    ast_pos pos;
} ast_amount;

typedef struct ast_select {
    ast_node h;
    bool is_rank;                 /* RANK … BY strategy */
    bool distinct;
    ast_list *columns;            /* of ast_column */
    ast_name from;
    ast_node *where;              /* NULL when absent */
    ast_list *order_by;           /* of ast_order_item; NULL when absent */
    ast_list *trained_on;         /* of ast_dataset_ref; NULL when absent */
    ast_tested_kind tested_kind;
    ast_list *tested_on;          /* of ast_dataset_ref */
    ast_list *classifiers;        /* of ast_call; CLASSIFIED BY */
    ast_call *strategy;           /* RANK … BY */
    bool has_limit;
    int64_t limit;
    ast_pos limit_pos;
    ast_name other_than;          /* text == NULL when absent */
    ast_amount chunk;
    ast_amount budget;
    ast_amount eta;               /* successive halving's η; absent: 2 */
    bool wait;
} ast_select;

typedef enum ast_set_kind { SET_UNION, SET_INTERSECT, SET_EXCEPT } ast_set_kind;

typedef struct ast_set_op {
    ast_node h;
    ast_set_kind op;
    ast_node *left, *right;       /* ast_select or ast_set_op */
    /* ORDER BY / LIMIT written after the last member apply to the whole result: those of
     * a last plain catalog query, or those after a parenthesised last member. A task-aware
     * member (TRAINED ON, CLASSIFIED BY, RANK … BY, …) keeps its own ORDER BY and LIMIT. */
    ast_list *order_by;
    bool has_limit;
    int64_t limit;
    ast_pos limit_pos;
} ast_set_op;

typedef struct ast_explain {
    ast_node h;
    bool analyze;
    bool json;
    ast_node *stmt;
} ast_explain;

typedef struct ast_declare {
    ast_node h;
    ast_name name;
    ast_node *query;              /* ast_select or ast_set_op */
} ast_declare;

typedef enum ast_register_kind { REGISTER_DATASET, REGISTER_MODEL } ast_register_kind;

typedef struct ast_register {
    ast_node h;
    ast_register_kind what;
    ast_name name;
    size_t ncolumns;
    ast_name *columns;
    ast_list *values;             /* literals, arrays, objects; same count as columns */
} ast_register;

typedef struct ast_use {
    ast_node h;
    ast_name target;              /* "http://host:port", host:port, … */
} ast_use;

typedef struct ast_print {
    ast_node h;
    bool all;                     /* PRINT * */
    ast_name name;
} ast_print;

typedef struct ast_finetune {
    ast_node h;
    ast_name models;
    ast_list *datasets;           /* of ast_dataset_ref */
    ast_call *strategy;           /* USING "…"; NULL when absent */
    bool wait;
} ast_finetune;

typedef struct ast_purge {
    ast_node h;
    bool cache;                   /* PURGE CACHE (same effect, explicit) */
} ast_purge;

typedef enum ast_show_what { SHOW_JOBS, SHOW_MODELS, SHOW_DATASETS, SHOW_EXTENSIONS } ast_show_what;

typedef struct ast_show {
    ast_node h;
    ast_show_what what;
} ast_show;

typedef enum ast_cancel_what { CANCEL_JOB, CANCEL_QUERY } ast_cancel_what;

typedef struct ast_cancel {
    ast_node h;
    ast_cancel_what what;
    ast_literal *id;              /* number or string */
} ast_cancel;

typedef struct ast_check {
    ast_node h;
    bool all;                     /* CHECK MODELS */
    ast_name name;                /* CHECK MODEL name; text NULL when all */
} ast_check;

/* ---- construction (used by the parser; all memory comes from the arena) --------------- */

void *ast_new(arena *a, ast_kind kind, size_t size, ast_pos pos);
#define AST_NEW(a, type, kind, pos) ((type *)ast_new((a), (kind), sizeof(type), (pos)))
ast_list *ast_list_new(arena *a);
ast_list *ast_list_append(arena *a, ast_list *list, ast_node *item); /* list may be NULL */
void ast_int_list_append(arena *a, ast_int_list *list, int64_t v);

/* Names used in messages and JSON: "SELECT", "UNION", "=", … */
const char *ast_kind_name(ast_kind kind);
const char *ast_op_name(ast_op op);
const char *ast_set_kind_name(ast_set_kind k);
const char *ast_show_what_name(ast_show_what w);

/* Canonical JSON of a statement: sorted keys, compact, one line, every node with
 * "line"/"col". Caller frees. */
char *ast_to_json(const ast_node *node);

#endif
