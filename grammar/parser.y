/* The RankQL grammar (lemon). One statement per parse: the driver (parse.c) feeds the
 * tokens of one statement up to its ';' and then end-of-input.
 *
 * The grammar must stay free of conflicts: the build fails when lemon reports any.
 * Expression precedence follows SQLite's grammar (OR < AND < NOT < comparison < + - < * /).
 */

%name rq_parser
%token_prefix TK_
%token_type { rq_token * }
%extra_argument { parse_state *ps }
%start_symbol input

%include {
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/ast.h"
#include "grammar/lexer.h"
#include "grammar/parse_internal.h"
#include "parser.h"

#define YYNOERRORRECOVERY 1
/* The driver checks every token with rq_parser_accepts() before feeding it, so a
 * syntax error never reaches lemon's own handler. */
#define A_(type, kind, pos) AST_NEW(ps->arena, type, kind, pos)

static const char *xasprintf_tmp(arena *a, const char *fmt, const char *arg);

static ast_name name_of(const rq_token *t)
{
    ast_name n = {t->str, t->pos, t->type == TK_STRING};
    return n;
}

static ast_literal *number_literal(parse_state *ps, const rq_token *t, bool negate)
{
    ast_literal *lit = A_(ast_literal, AST_LITERAL, t->pos);
    lit->text = t->str;
    if (t->is_int) {
        lit->type = LIT_INT;
        lit->ival = negate ? -t->ival : t->ival;
        lit->fval = (double)lit->ival;
    } else {
        lit->type = LIT_FLOAT;
        lit->fval = negate ? -t->fval : t->fval;
    }
    return lit;
}

/* "-" NUMBER written as a value: the literal starts at the sign and keeps it in its text,
 * as a folded "-5" in an expression does. */
static ast_literal *negative_literal(parse_state *ps, const rq_token *minus, const rq_token *t)
{
    ast_literal *lit = number_literal(ps, t, true);
    lit->h.pos = minus->pos;
    lit->text = xasprintf_tmp(ps->arena, "-%s", t->str);
    return lit;
}

/* "-" NUMBER where only a non-negative integer is allowed (LIMIT, CHUNK, slices, indices):
 * one token spanning both, so the error names and underlines what was written. */
static rq_token *negative_token(parse_state *ps, const rq_token *minus, const rq_token *t)
{
    rq_token *n = arena_alloc(ps->arena, sizeof(*n));
    *n = *t;
    n->start = minus->start;
    n->len = (size_t)(t->start + t->len - minus->start);
    n->pos = minus->pos;
    n->ival = -t->ival;
    n->fval = -t->fval;
    n->str = xasprintf_tmp(ps->arena, "-%s", t->str);
    n->slen = strlen(n->str);
    return n;
}

static ast_literal *string_literal(parse_state *ps, const rq_token *t)
{
    ast_literal *lit = A_(ast_literal, AST_LITERAL, t->pos);
    lit->type = LIT_STRING;
    lit->str = t->str;
    lit->len = t->slen;
    return lit;
}

/* Integers in index lists, slices, LIMIT, CHUNK and BUDGET. */
static int64_t whole_number(parse_state *ps, const rq_token *t, const char *what)
{
    if (!t->is_int || t->ival < 0) {
        parse_action_error(ps, t->pos, t->len, "%s must be a non-negative integer, not %.*s",
                           what, (int)t->len, t->start);
        return 0;
    }
    return t->ival;
}

/* printf into the arena */
static const char *xasprintf_tmp(arena *a, const char *fmt, const char *arg)
{
    char *s = xasprintf(fmt, arg);
    const char *copy = arena_strdup(a, s);
    free(s);
    return copy;
}

/* Expression trees are walked recursively (JSON printer, planner), so their height is
 * capped. Parentheses and prefix operators are already bounded by the parser stack, but
 * left-associative chains (a OR b OR …, a + b + …, a IS NULL IS NULL …) are not. */
#define RQ_MAX_EXPR_DEPTH 1000

static int depth_of(const ast_node *n)
{
    return n ? n->depth : 0;
}

/* Sets n's height from its children's (given as the deepest child) and reports an error
 * at pos when the cap is passed. */
static void set_depth(parse_state *ps, ast_node *n, int child_depth, ast_pos pos)
{
    n->depth = child_depth + 1;
    if (n->depth > RQ_MAX_EXPR_DEPTH)
        parse_action_error(ps, pos, 1, "expression is nested too deeply (more than %d levels); "
                           "write long lists of alternatives as IN (…)", RQ_MAX_EXPR_DEPTH);
}

static int max_depth(const ast_node *a, const ast_node *b)
{
    return depth_of(a) > depth_of(b) ? depth_of(a) : depth_of(b);
}

static int list_depth(const ast_list *l)
{
    int d = 0;
    for (size_t i = 0; l && i < l->n; i++)
        if (depth_of(l->items[i]) > d)
            d = depth_of(l->items[i]);
    return d;
}

static ast_node *binary(parse_state *ps, ast_op op, ast_node *l, ast_node *r)
{
    ast_binary *b = A_(ast_binary, AST_BINARY, l->pos);
    b->op = op;
    b->left = l;
    b->right = r;
    set_depth(ps, &b->h, max_depth(l, r), r->pos);
    return &b->h;
}

static ast_node *unary(parse_state *ps, ast_op op, ast_pos pos, ast_node *operand)
{
    ast_unary *u = A_(ast_unary, AST_UNARY, pos);
    u->op = op;
    u->operand = operand;
    set_depth(ps, &u->h, depth_of(operand), pos);
    return &u->h;
}

/* A plain catalog query ends with its ORDER BY and LIMIT. A task-aware query (TRAINED ON,
 * TESTED ON, CLASSIFIED BY, RANK … BY, OTHER THAN, CHUNK, BUDGET, ETA, WAIT) does not: its
 * ORDER BY names the metric and its LIMIT keeps the top k per classifier, so both belong
 * to that query wherever it stands in a set operation. */
static bool is_plain_select(const ast_node *n)
{
    if (n->kind != AST_SELECT)
        return false;
    const ast_select *s = (const ast_select *)n;
    return !s->is_rank && !s->trained_on && s->tested_kind == TESTED_NONE && !s->classifiers
           && !s->other_than.text && !s->chunk.present && !s->budget.present && !s->eta.present
           && !s->wait;
}

/* A query and whether it was written in parentheses (which the tree does not keep). */
typedef struct query_ref {
    ast_node *node;
    bool parenthesised;
    ast_pos pos;          /* of its first token, '(' included */
} query_ref;

/* In a compound query, ORDER BY and LIMIT written after the last plain member apply to the
 * whole result (as in SQL); on an earlier member they are an error unless it is in
 * parentheses (or task-aware, see is_plain_select). */
static void check_not_ordered(parse_state *ps, query_ref member)
{
    if (member.parenthesised)
        return;
    if (member.node->kind == AST_SET_OP) {
        /* "a UNION b ORDER BY x UNION c": the ORDER BY is not at the end */
        ast_set_op *op = (ast_set_op *)member.node;
        if (op->order_by)
            parse_action_error(ps, op->order_by->items[0]->pos, 0,
                               "ORDER BY must come after the last query of a set operation "
                               "(put the queries it orders in parentheses)");
        else if (op->has_limit)
            parse_action_error(ps, op->limit_pos, 0,
                               "LIMIT must come after the last query of a set operation "
                               "(put the queries it limits in parentheses)");
        return;
    }
    if (!is_plain_select(member.node))
        return;
    ast_select *s = (ast_select *)member.node;
    if (s->order_by)
        parse_action_error(ps, s->order_by->items[0]->pos, 0,
                           "ORDER BY must come after the last query of a set operation "
                           "(put this query in parentheses to order it on its own)");
    else if (s->has_limit)
        parse_action_error(ps, s->limit_pos, 0,
                           "LIMIT must come after the last query of a set operation "
                           "(put this query in parentheses to limit it on its own)");
}

static ast_node *set_operation(parse_state *ps, ast_set_kind op, query_ref l, ast_node *r, bool hoist)
{
    ast_set_op *s = A_(ast_set_op, AST_SET_OP, l.pos);
    s->op = op;
    s->left = l.node;
    s->right = r;
    /* a UNION chain is left-deep like a + b + …: cap it the same way */
    s->h.depth = max_depth(l.node, r) + 1;
    if (s->h.depth > RQ_MAX_EXPR_DEPTH)
        parse_action_error(ps, r->pos, 1, "too many set operations in one query (more than %d)",
                           RQ_MAX_EXPR_DEPTH);
    if (hoist && is_plain_select(r)) {
        ast_select *last = (ast_select *)r;
        s->order_by = last->order_by;
        s->has_limit = last->has_limit;
        s->limit = last->limit;
        s->limit_pos = last->limit_pos;
        last->order_by = NULL;
        last->has_limit = false;
    }
    return &s->h;
}

static ast_amount amount_of(parse_state *ps, const rq_token *t, const char *what)
{
    return (ast_amount){.present = true, .value = whole_number(ps, t, what), .pos = t->pos};
}

/* ETA n: an integer of at least 2 (η = 1 would keep every model in every round). */
static ast_amount eta_of(parse_state *ps, const rq_token *t)
{
    ast_amount a = amount_of(ps, t, "ETA");
    if (!ps->failed && a.value < 2)
        parse_action_error(ps, t->pos, t->len, "ETA must be an integer of at least 2, not %.*s",
                           (int)t->len, t->start);
    return a;
}

static ast_int_list int_list_one(parse_state *ps, const rq_token *t)
{
    ast_int_list l = {0};
    l.pos = t->pos;
    ast_int_list_append(ps->arena, &l, whole_number(ps, t, "an index"));
    return l;
}

/* A select or rank statement is assembled clause by clause; each optional clause
 * fills the fields of this carrier. */
typedef struct clause_set {
    ast_node *where;
    ast_list *order_by;
    ast_list *trained_on;
    ast_tested_kind tested_kind;
    ast_list *tested_on;
} clause_set;

typedef struct tail_set {
    ast_list *classifiers;
    bool has_limit;
    int64_t limit;
    ast_pos limit_pos;
    ast_name other_than;
    ast_amount chunk, budget, eta;
    bool wait;
} tail_set;
}

%syntax_error {
    (void)yymajor;
    (void)TOKEN;
    if (!ps->failed)
        parse_action_error(ps, (ast_pos){0, 0, 0}, 0, "syntax error");
}

%stack_overflow {
    parse_action_error(ps, (ast_pos){0, 0, 0}, 0, "statement is nested too deeply");
}
%stack_size 200

/* ---- tokens ------------------------------------------------------------------------- */

%token SEMI COMMA DOT LP RP LBRACKET RBRACKET LBRACE RBRACE COLON.
%token IDENT STRING NUMBER HOSTPORT.
/* SHiFT-QL's 44 reserved words, then rankql's reserved operators. */
%token PRINT USE SELECT FINETUNE DECLARE WHERE FROM ORDER DESC OTHER THAN CHUNK BUDGET
       ASC EXPLAIN LIMIT AS BY WITH ON FINETUNED NULL SUM AVG MIN MAX BENCHMARK
       TASK DISTINCT REGISTER VALUES TESTED TRAINED CLASSIFIED RANK CHANGE TO PURGE AUTO.
%token UNION INTERSECT EXCEPT.
/* Non-reserved words: keywords where the grammar expects them, identifiers elsewhere. */
%token ANALYZE JSON WAIT SHOW CANCEL JOB JOBS QUERY MODEL MODELS DATASET DATASETS
       EXTENSIONS USING CACHE TRUE FALSE CHECK OF ETA.
%fallback IDENT ANALYZE JSON WAIT SHOW CANCEL JOB JOBS QUERY MODEL MODELS DATASET DATASETS
       EXTENSIONS USING CACHE TRUE FALSE CHECK OF ETA.

%left OR.
%left AND.
%right NOT.
%left IS LIKE BETWEEN IN NE EQ.
%left GT LE LT GE.
%left PLUS MINUS.
%left STAR SLASH.
%right UMINUS.

/* ---- statements --------------------------------------------------------------------- */

input ::= statement(S) SEMI. { ps->result = S; }

%type statement { ast_node * }
statement(A) ::= query(Q).      { A = Q.node; }
statement(A) ::= explain(X).    { A = X; }
statement(A) ::= declare(X).    { A = X; }
statement(A) ::= register(X).   { A = X; }
statement(A) ::= use(X).        { A = X; }
statement(A) ::= print(X).      { A = X; }
statement(A) ::= finetune(X).   { A = X; }
statement(A) ::= purge(X).      { A = X; }
statement(A) ::= show(X).       { A = X; }
statement(A) ::= cancel(X).     { A = X; }
statement(A) ::= check(X).      { A = X; }

/* ---- queries and set operations ---------------------------------------------------- */

%type query { query_ref }
query(A) ::= select(S).        { A.node = S; A.parenthesised = false; A.pos = S->pos; }
query(A) ::= LP(P) query(Q) RP. { A.node = Q.node; A.parenthesised = true; A.pos = P->pos; }
query(A) ::= query(L) set_op(O) select(R). {
    check_not_ordered(ps, L);
    A.node = set_operation(ps, O, L, R, true);
    A.parenthesised = false;
    A.pos = L.pos;
}
/* ORDER BY and LIMIT after a parenthesised last member order and limit the whole result. */
query(A) ::= query(L) set_op(O) LP query(R) RP order_by(OB) limit(LI). {
    check_not_ordered(ps, L);
    ast_set_op *s = (ast_set_op *)set_operation(ps, O, L, R.node, false);
    s->order_by = OB;
    s->has_limit = LI.has_limit;
    s->limit = LI.limit;
    s->limit_pos = LI.limit_pos;
    A.node = &s->h;
    A.parenthesised = false;
    A.pos = L.pos;
}

%type set_op { ast_set_kind }
set_op(A) ::= UNION.     { A = SET_UNION; }
set_op(A) ::= INTERSECT. { A = SET_INTERSECT; }
set_op(A) ::= EXCEPT.    { A = SET_EXCEPT; }

%type select { ast_node * }
select(A) ::= SELECT(K) distinct(D) columns(C) FROM name(F) clauses(X) tail(T). {
    ast_select *s = A_(ast_select, AST_SELECT, K->pos);
    s->distinct = D;
    s->columns = C;
    s->from = F;
    s->where = X.where;
    s->order_by = X.order_by;
    s->trained_on = X.trained_on;
    s->tested_kind = X.tested_kind;
    s->tested_on = X.tested_on;
    s->classifiers = T.classifiers;
    s->has_limit = T.has_limit;
    s->limit = T.limit;
    s->limit_pos = T.limit_pos;
    s->other_than = T.other_than;
    s->chunk = T.chunk;
    s->budget = T.budget;
    s->eta = T.eta;
    s->wait = T.wait;
    A = &s->h;
}
select(A) ::= RANK(K) distinct(D) columns(C) FROM name(F) clauses(X) BY call(S) limit(L) wait(W). {
    ast_select *s = A_(ast_select, AST_SELECT, K->pos);
    s->is_rank = true;
    s->distinct = D;
    s->columns = C;
    s->from = F;
    s->where = X.where;
    s->order_by = X.order_by;
    s->trained_on = X.trained_on;
    s->tested_kind = X.tested_kind;
    s->tested_on = X.tested_on;
    s->strategy = S;
    s->has_limit = L.has_limit;
    s->limit = L.limit;
    s->limit_pos = L.limit_pos;
    s->wait = W;
    A = &s->h;
}

%type distinct { bool }
distinct(A) ::= .         { A = false; }
distinct(A) ::= DISTINCT. { A = true; }

/* WHERE, ORDER BY, TRAINED ON, TESTED ON: shared by SELECT and RANK, in this order. */
%type clauses { clause_set }
clauses(A) ::= where(W) order_by(O) trained_on(T) tested_on(E). {
    A.where = W;
    A.order_by = O;
    A.trained_on = T;
    A.tested_kind = E.tested_kind;
    A.tested_on = E.tested_on;
}

%type where { ast_node * }
where(A) ::= .                { A = NULL; }
where(A) ::= WHERE expr(E).   { A = E; }

%type order_by { ast_list * }
order_by(A) ::= .                           { A = NULL; }
order_by(A) ::= ORDER BY order_items(L).    { A = L; }

%type order_items { ast_list * }
order_items(A) ::= order_item(I).                        { A = ast_list_append(ps->arena, NULL, I); }
order_items(A) ::= order_items(L) COMMA order_item(I).   { A = ast_list_append(ps->arena, L, I); }

%type order_item { ast_node * }
order_item(A) ::= expr(E) direction(D). {
    ast_order_item *o = A_(ast_order_item, AST_ORDER_ITEM, E->pos);
    o->key = E;
    o->desc = D == 2;
    o->explicit_direction = D != 0;
    A = &o->h;
}

%type direction { int }
direction(A) ::= .     { A = 0; }
direction(A) ::= ASC.  { A = 1; }
direction(A) ::= DESC. { A = 2; }

%type trained_on { ast_list * }
trained_on(A) ::= .                         { A = NULL; }
trained_on(A) ::= TRAINED ON datasets(D).   { A = D; }

%type tested_on { clause_set }
tested_on(A) ::= .                                    { A.tested_kind = TESTED_NONE; A.tested_on = NULL; }
tested_on(A) ::= TESTED ON datasets(D).               { A.tested_kind = TESTED_DEFAULT; A.tested_on = D; }
tested_on(A) ::= TESTED ON TASK datasets(D).          { A.tested_kind = TESTED_TASK; A.tested_on = D; }
tested_on(A) ::= TESTED ON BENCHMARK datasets(D).     { A.tested_kind = TESTED_BENCHMARK; A.tested_on = D; }

/* CLASSIFIED BY, LIMIT, OTHER THAN, CHUNK, BUDGET, ETA, WAIT: task-aware SELECT only. */
%type tail { tail_set }
tail(A) ::= classified(C) limit(L) other_than(O) chunk(CH) budget(B) eta(E) wait(W). {
    A.classifiers = C;
    A.has_limit = L.has_limit;
    A.limit = L.limit;
    A.limit_pos = L.limit_pos;
    A.other_than = O;
    A.chunk = CH;
    A.budget = B;
    A.eta = E;
    A.wait = W;
}

%type classified { ast_list * }
classified(A) ::= .                                            { A = NULL; }
classified(A) ::= CLASSIFIED BY call_list(L).                  { A = L; }
classified(A) ::= CLASSIFIED BY LBRACKET call_list(L) RBRACKET. { A = L; }

%type limit { tail_set }
limit(A) ::= .                  { A.has_limit = false; A.limit = 0; A.limit_pos = (ast_pos){0, 0, 0}; }
limit(A) ::= LIMIT integer(N).  { A.has_limit = true; A.limit = whole_number(ps, N, "LIMIT"); A.limit_pos = N->pos; }

%type other_than { ast_name }
other_than(A) ::= .                     { A = (ast_name){NULL, {0, 0, 0}, false}; }
other_than(A) ::= OTHER THAN name(N).   { A = N; }

%type chunk { ast_amount }
chunk(A) ::= .                  { A = (ast_amount){0}; }
chunk(A) ::= CHUNK integer(N).  { A = amount_of(ps, N, "CHUNK"); }
chunk(A) ::= CHUNK AUTO(K).     { A = (ast_amount){.present = true, .is_auto = true, .pos = K->pos}; }

%type budget { ast_amount }
budget(A) ::= .                 { A = (ast_amount){0}; }
budget(A) ::= BUDGET integer(N). { A = amount_of(ps, N, "BUDGET"); }
budget(A) ::= BUDGET AUTO(K).    { A = (ast_amount){.present = true, .is_auto = true, .pos = K->pos}; }

/* η of successive halving: each round keeps ceil(S/η) models (the planner caps it). */
%type eta { ast_amount }
eta(A) ::= .                    { A = (ast_amount){0}; }
eta(A) ::= ETA integer(N).      { A = eta_of(ps, N); }

/* A number where a non-negative integer is required; the sign is taken so the error can
 * say "must be a non-negative integer, not -1" rather than "unexpected '-'". */
%type integer { rq_token * }
integer(A) ::= NUMBER(N).           { A = N; }
integer(A) ::= MINUS(M) NUMBER(N).  { A = negative_token(ps, M, N); }

%type wait { bool }
wait(A) ::= .      { A = false; }
wait(A) ::= WAIT.  { A = true; }

/* ---- select list ------------------------------------------------------------------- */

%type columns { ast_list * }
columns(A) ::= column_list(L).                    { A = L; }
columns(A) ::= LBRACKET column_list(L) RBRACKET.  { A = L; }

%type column_list { ast_list * }
column_list(A) ::= column(C).                        { A = ast_list_append(ps->arena, NULL, C); }
column_list(A) ::= column_list(L) COMMA column(C).   { A = ast_list_append(ps->arena, L, C); }

%type column { ast_node * }
column(A) ::= STAR(S). {
    ast_column *c = A_(ast_column, AST_COLUMN, S->pos);
    c->expr = &A_(ast_star, AST_STAR, S->pos)->h;
    A = &c->h;
}
column(A) ::= expr(E). {
    ast_column *c = A_(ast_column, AST_COLUMN, E->pos);
    c->expr = E;
    A = &c->h;
}
column(A) ::= expr(E) AS name(N). {
    ast_column *c = A_(ast_column, AST_COLUMN, E->pos);
    c->expr = E;
    c->alias = N;
    A = &c->h;
}
column(A) ::= expr(E) IDENT(N). {
    ast_column *c = A_(ast_column, AST_COLUMN, E->pos);
    c->expr = E;
    c->alias = name_of(N);
    A = &c->h;
}

/* ---- names -------------------------------------------------------------------------- */

%type name { ast_name }
name(A) ::= IDENT(T).  { A = name_of(T); }
name(A) ::= STRING(T). { A = name_of(T); }

/* ---- datasets and data mutations ---------------------------------------------------- */

%type datasets { ast_list * }
datasets(A) ::= dataset_item(L).                     { A = L; }
datasets(A) ::= datasets(L) COMMA dataset_item(R). {
    for (size_t i = 0; i < R->n; i++)
        L = ast_list_append(ps->arena, L, R->items[i]);
    A = L;
}

/* A bracketed list inside a list is flattened: [a, [b, c]] = a, b, c. */
%type dataset_item { ast_list * }
dataset_item(A) ::= dataset(D).                        { A = ast_list_append(ps->arena, NULL, &D->h); }
dataset_item(A) ::= LBRACKET datasets(L) RBRACKET.     { A = L; }

%type dataset { ast_dataset_ref * }
dataset(A) ::= name(N) slice(S). {
    S->h.pos = N.pos;
    S->name = N;
    A = S;
}
dataset(A) ::= LP(P) dataset(D) changes(C) RP. {
    if (D->changes && C) {
        for (size_t i = 0; i < C->n; i++)
            D->changes = ast_list_append(ps->arena, D->changes, C->items[i]);
    } else if (C) {
        D->changes = C;
    }
    (void)P;
    A = D;
}

/* "name"[start:stop], either bound optional; stop is exclusive. */
%type slice { ast_dataset_ref * }
slice(A) ::= . {
    A = A_(ast_dataset_ref, AST_DATASET_REF, ((ast_pos){0, 0, 0}));
}
slice(A) ::= LBRACKET(B) bound(S) COLON bound(E) RBRACKET. {
    ast_dataset_ref *d = A_(ast_dataset_ref, AST_DATASET_REF, B->pos);
    d->has_slice = true;
    d->has_slice_start = S != NULL;
    d->has_slice_stop = E != NULL;
    d->slice_start = S ? whole_number(ps, S, "a slice bound") : 0;
    d->slice_stop = E ? whole_number(ps, E, "a slice bound") : 0;
    if (S && E && d->slice_start > d->slice_stop)
        parse_action_error(ps, B->pos, 1, "slice start %lld is after its stop %lld",
                           (long long)d->slice_start, (long long)d->slice_stop);
    A = d;
}

%type bound { rq_token * }
bound(A) ::= .          { A = NULL; }
bound(A) ::= integer(N). { A = N; }

%type changes { ast_list * }
changes(A) ::= .                              { A = NULL; }
changes(A) ::= change_list(L).                { A = L; }

%type change_list { ast_list * }
change_list(A) ::= change(C).                        { A = ast_list_append(ps->arena, NULL, C); }
change_list(A) ::= change_list(L) COMMA change(C).   { A = ast_list_append(ps->arena, L, C); }

%type change { ast_node * }
change(A) ::= CHANGE(K) LBRACKET index_list(I) RBRACKET TO change_target(T) target_indices(J). {
    ast_change *c = A_(ast_change, AST_CHANGE, K->pos);
    c->base_indices = I;
    c->target = T;
    c->has_target_indices = J.n > 0;
    c->target_indices = J;
    if (J.n > 0 && J.n != I.n)
        parse_action_error(ps, J.pos, 0, "CHANGE lists %zu base ind%s but %zu target ind%s",
                           I.n, I.n == 1 ? "ex" : "ices", J.n, J.n == 1 ? "ex" : "ices");
    A = &c->h;
}

%type change_target { ast_dataset_ref * }
change_target(A) ::= name(N). {
    ast_dataset_ref *d = A_(ast_dataset_ref, AST_DATASET_REF, N.pos);
    d->name = N;
    A = d;
}
change_target(A) ::= LP dataset(D) changes(C) RP. {
    if (C) {
        for (size_t i = 0; i < C->n; i++)
            D->changes = ast_list_append(ps->arena, D->changes, C->items[i]);
    }
    A = D;
}

%type target_indices { ast_int_list }
target_indices(A) ::= .                                   { A = (ast_int_list){0}; }
target_indices(A) ::= LBRACKET index_list(I) RBRACKET.    { A = I; }

%type index_list { ast_int_list }
index_list(A) ::= integer(N).                       { A = int_list_one(ps, N); }
index_list(A) ::= index_list(L) COMMA integer(N).   {
    ast_int_list_append(ps->arena, &L, whole_number(ps, N, "an index"));
    A = L;
}

/* ---- classifiers and strategies: name or name(k = v, …) ---------------------------- */

%type call_list { ast_list * }
call_list(A) ::= call(C).                       { A = ast_list_append(ps->arena, NULL, &C->h); }
call_list(A) ::= call_list(L) COMMA call(C).    { A = ast_list_append(ps->arena, L, &C->h); }

%type call { ast_call * }
call(A) ::= IDENT(N). {
    ast_call *c = A_(ast_call, AST_CALL, N->pos);
    c->name = name_of(N);
    A = c;
}
call(A) ::= STRING(S). { A = parse_call_string(ps, S); }
call(A) ::= name(N) LP params(P) RP. {
    ast_call *c = A_(ast_call, AST_CALL, N.pos);
    c->name = N;
    c->has_parens = true;
    c->params = P;
    A = c;
}

%type params { ast_list * }
params(A) ::= .                            { A = ast_list_new(ps->arena); }
params(A) ::= param_list(L).               { A = L; }

%type param_list { ast_list * }
param_list(A) ::= param(P).                        { A = ast_list_append(ps->arena, NULL, P); }
param_list(A) ::= param_list(L) COMMA param(P).    { A = ast_list_append(ps->arena, L, P); }

%type param { ast_node * }
param(A) ::= name(K) EQ value(V). {
    ast_param *p = A_(ast_param, AST_PARAM, K.pos);
    p->key = K;
    p->value = V;
    A = &p->h;
}
param(A) ::= name(K) EQ IDENT(W). {
    /* A bare word value (kernel=rbf) is taken as a string. */
    ast_param *p = A_(ast_param, AST_PARAM, K.pos);
    p->key = K;
    p->value = &string_literal(ps, W)->h;
    A = &p->h;
}

/* ---- literal values (REGISTER, parameters) ------------------------------------------ */

%type value { ast_node * }
value(A) ::= NUMBER(N).                   { A = &number_literal(ps, N, false)->h; }
value(A) ::= MINUS(M) NUMBER(N).          { A = &negative_literal(ps, M, N)->h; }
value(A) ::= PLUS NUMBER(N).              { A = &number_literal(ps, N, false)->h; }
value(A) ::= STRING(S).                   { A = &string_literal(ps, S)->h; }
value(A) ::= TRUE(T). {
    ast_literal *l = A_(ast_literal, AST_LITERAL, T->pos);
    l->type = LIT_BOOL;
    l->bval = true;
    A = &l->h;
}
value(A) ::= FALSE(T). {
    ast_literal *l = A_(ast_literal, AST_LITERAL, T->pos);
    l->type = LIT_BOOL;
    A = &l->h;
}
value(A) ::= NULL(T). {
    ast_literal *l = A_(ast_literal, AST_LITERAL, T->pos);
    l->type = LIT_NULL;
    A = &l->h;
}
value(A) ::= LBRACKET(B) value_list(L) RBRACKET. {
    ast_array *arr = A_(ast_array, AST_ARRAY, B->pos);
    arr->items = L;
    A = &arr->h;
}
value(A) ::= LBRACKET(B) RBRACKET. {
    ast_array *arr = A_(ast_array, AST_ARRAY, B->pos);
    arr->items = ast_list_new(ps->arena);
    A = &arr->h;
}
value(A) ::= LBRACE(B) field_list(L) RBRACE. {
    ast_object *o = A_(ast_object, AST_OBJECT, B->pos);
    o->fields = L;
    A = &o->h;
}
value(A) ::= LBRACE(B) RBRACE. {
    ast_object *o = A_(ast_object, AST_OBJECT, B->pos);
    o->fields = ast_list_new(ps->arena);
    A = &o->h;
}

%type value_list { ast_list * }
value_list(A) ::= value(V).                        { A = ast_list_append(ps->arena, NULL, V); }
value_list(A) ::= value_list(L) COMMA value(V).    { A = ast_list_append(ps->arena, L, V); }

%type field_list { ast_list * }
field_list(A) ::= field(F).                        { A = ast_list_append(ps->arena, NULL, F); }
field_list(A) ::= field_list(L) COMMA field(F).    { A = ast_list_append(ps->arena, L, F); }

%type field { ast_node * }
field(A) ::= name(K) COLON value(V). {
    ast_object_field *f = A_(ast_object_field, AST_OBJECT_FIELD, K.pos);
    f->key = K;
    f->value = V;
    A = &f->h;
}

/* ---- expressions ------------------------------------------------------------------- */

%type expr { ast_node * }
expr(A) ::= term(T).                       { A = T; }
expr(A) ::= LP expr(E) RP.                 { A = E; }
expr(A) ::= expr(L) OR expr(R).            { A = binary(ps, OP_OR, L, R); }
expr(A) ::= expr(L) AND expr(R).           { A = binary(ps, OP_AND, L, R); }
expr(A) ::= NOT(K) expr(E).                { A = unary(ps, OP_NOT, K->pos, E); }
expr(A) ::= expr(L) EQ expr(R).            { A = binary(ps, OP_EQ, L, R); }
expr(A) ::= expr(L) NE expr(R).            { A = binary(ps, OP_NE, L, R); }
expr(A) ::= expr(L) LT expr(R).            { A = binary(ps, OP_LT, L, R); }
expr(A) ::= expr(L) LE expr(R).            { A = binary(ps, OP_LE, L, R); }
expr(A) ::= expr(L) GT expr(R).            { A = binary(ps, OP_GT, L, R); }
expr(A) ::= expr(L) GE expr(R).            { A = binary(ps, OP_GE, L, R); }
expr(A) ::= expr(L) PLUS expr(R).          { A = binary(ps, OP_ADD, L, R); }
expr(A) ::= expr(L) MINUS expr(R).         { A = binary(ps, OP_SUB, L, R); }
expr(A) ::= expr(L) STAR expr(R).          { A = binary(ps, OP_MUL, L, R); }
expr(A) ::= expr(L) SLASH expr(R).         { A = binary(ps, OP_DIV, L, R); }
expr(A) ::= MINUS(K) expr(E). [UMINUS] {
    /* Fold "-5" into a negative literal so it prints and plans as a number. */
    if (E->kind == AST_LITERAL && (((ast_literal *)E)->type == LIT_INT || ((ast_literal *)E)->type == LIT_FLOAT)) {
        ast_literal *l = (ast_literal *)E;
        l->ival = -l->ival;
        l->fval = -l->fval;
        l->h.pos = K->pos;
        l->text = l->text ? xasprintf_tmp(ps->arena, "-%s", l->text) : NULL;
        A = E;
    } else {
        A = unary(ps, OP_NEG, K->pos, E);
    }
}
expr(A) ::= PLUS expr(E). [UMINUS]         { A = E; }

expr(A) ::= expr(V) between_op(N) expr(L) AND expr(H). [BETWEEN] {
    ast_between *b = A_(ast_between, AST_BETWEEN, V->pos);
    b->negated = N;
    b->value = V;
    b->low = L;
    b->high = H;
    int d = max_depth(V, L);
    set_depth(ps, &b->h, d > depth_of(H) ? d : depth_of(H), H->pos);
    A = &b->h;
}
%type between_op { bool }
between_op(A) ::= BETWEEN.       { A = false; }
between_op(A) ::= NOT BETWEEN.   { A = true; }

expr(A) ::= expr(V) in_op(N) LP expr_list(L) RP. [IN] {
    ast_in *in = A_(ast_in, AST_IN, V->pos);
    in->negated = N;
    in->value = V;
    in->items = L;
    set_depth(ps, &in->h, depth_of(V) > list_depth(L) ? depth_of(V) : list_depth(L), V->pos);
    A = &in->h;
}
%type in_op { bool }
in_op(A) ::= IN.         { A = false; }
in_op(A) ::= NOT IN.     { A = true; }

expr(A) ::= expr(V) like_op(N) expr(P). [LIKE] {
    ast_like *l = A_(ast_like, AST_LIKE, V->pos);
    l->negated = N;
    l->value = V;
    l->pattern = P;
    set_depth(ps, &l->h, max_depth(V, P), P->pos);
    A = &l->h;
}
%type like_op { bool }
like_op(A) ::= LIKE.       { A = false; }
like_op(A) ::= NOT LIKE.   { A = true; }

expr(A) ::= expr(V) IS(K) NULL. {
    ast_is_null *n = A_(ast_is_null, AST_IS_NULL, V->pos);
    n->value = V;
    set_depth(ps, &n->h, depth_of(V), K->pos);
    A = &n->h;
}
expr(A) ::= expr(V) IS(K) NOT NULL. {
    ast_is_null *n = A_(ast_is_null, AST_IS_NULL, V->pos);
    n->negated = true;
    n->value = V;
    set_depth(ps, &n->h, depth_of(V), K->pos);
    A = &n->h;
}

%type expr_list { ast_list * }
expr_list(A) ::= expr(E).                       { A = ast_list_append(ps->arena, NULL, E); }
expr_list(A) ::= expr_list(L) COMMA expr(E).    { A = ast_list_append(ps->arena, L, E); }

%type term { ast_node * }
term(A) ::= NUMBER(N).        { A = &number_literal(ps, N, false)->h; }
term(A) ::= STRING(S).        { A = &string_literal(ps, S)->h; }
term(A) ::= TRUE(T). {
    ast_literal *l = A_(ast_literal, AST_LITERAL, T->pos);
    l->type = LIT_BOOL;
    l->bval = true;
    A = &l->h;
}
term(A) ::= FALSE(T). {
    ast_literal *l = A_(ast_literal, AST_LITERAL, T->pos);
    l->type = LIT_BOOL;
    A = &l->h;
}
term(A) ::= NULL(T). {
    ast_literal *l = A_(ast_literal, AST_LITERAL, T->pos);
    l->type = LIT_NULL;
    A = &l->h;
}
term(A) ::= FINETUNED(K).     { A = A_(ast_node, AST_FINETUNED, K->pos); }
term(A) ::= column_ref(C).    { A = &C->h; }
/* A measured property of one named model: latency_ms OF "resnet50" (docs/language.md,
 * "Constraints"). */
term(A) ::= IDENT(P) OF name(M). {
    ast_model_property *m = A_(ast_model_property, AST_MODEL_PROPERTY, P->pos);
    m->property = name_of(P);
    m->model = M;
    A = &m->h;
}
term(A) ::= func_name(F) LP func_args(L) RP. {
    ast_func *f = A_(ast_func, AST_FUNC, F->pos);
    f->name = F->str;
    if (F->type != TK_IDENT) {
        /* aggregate keywords print the same however they were written */
        char *upper = arena_strdup(ps->arena, F->str);
        for (char *c = upper; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        f->name = upper;
    }
    f->args = L;
    set_depth(ps, &f->h, list_depth(L), F->pos);
    A = &f->h;
}

%type column_ref { ast_column_ref * }
column_ref(A) ::= IDENT(N). {
    ast_column_ref *c = A_(ast_column_ref, AST_COLUMN_REF, N->pos);
    c->nparts = 1;
    c->parts = arena_alloc(ps->arena, sizeof(ast_name));
    c->parts[0] = name_of(N);
    A = c;
}
column_ref(A) ::= column_ref(C) DOT name(N). {
    /* capacity doubles at powers of two, so long paths cost linear time and memory */
    if ((C->nparts & (C->nparts - 1)) == 0) {
        ast_name *parts = arena_alloc(ps->arena, sizeof(ast_name) * C->nparts * 2);
        memcpy(parts, C->parts, sizeof(ast_name) * C->nparts);
        C->parts = parts;
    }
    C->parts[C->nparts] = N;
    C->nparts++;
    A = C;
}

%type func_name { rq_token * }
func_name(A) ::= IDENT(N).  { A = N; }
func_name(A) ::= SUM(N).    { A = N; }
func_name(A) ::= AVG(N).    { A = N; }
func_name(A) ::= MIN(N).    { A = N; }
func_name(A) ::= MAX(N).    { A = N; }

%type func_args { ast_list * }
func_args(A) ::= .                 { A = ast_list_new(ps->arena); }
func_args(A) ::= STAR(S).          { A = ast_list_append(ps->arena, NULL, &A_(ast_star, AST_STAR, S->pos)->h); }
func_args(A) ::= expr_list(L).     { A = L; }

/* ---- other statements -------------------------------------------------------------- */

%type explain { ast_node * }
explain(A) ::= EXPLAIN(K) explain_options(O) query(Q). {
    ast_explain *e = A_(ast_explain, AST_EXPLAIN, K->pos);
    e->analyze = (O & 1) != 0;
    e->json = (O & 2) != 0;
    e->stmt = Q.node;
    A = &e->h;
}

%type explain_options { int }
explain_options(A) ::= .                                { A = 0; }
explain_options(A) ::= explain_options(O) ANALYZE(K). {
    if (O & 1)
        parse_action_error(ps, K->pos, K->len, "ANALYZE given twice");
    A = O | 1;
}
explain_options(A) ::= explain_options(O) JSON(K). {
    if (O & 2)
        parse_action_error(ps, K->pos, K->len, "JSON given twice");
    A = O | 2;
}

%type declare { ast_node * }
declare(A) ::= DECLARE(K) name(N) AS query(Q). {
    ast_declare *d = A_(ast_declare, AST_DECLARE, K->pos);
    d->name = N;
    d->query = Q.node;
    A = &d->h;
}

%type register { ast_node * }
register(A) ::= REGISTER(K) register_what(W) name(N) LP name_list(C) RP VALUES(V) LP value_list(L) RP. {
    ast_register *r = A_(ast_register, AST_REGISTER, K->pos);
    r->what = W;
    r->name = N;
    r->ncolumns = C->n;
    r->columns = arena_alloc(ps->arena, sizeof(ast_name) * (C->n ? C->n : 1));
    for (size_t i = 0; i < C->n; i++)
        r->columns[i] = ((ast_object_field *)C->items[i])->key;
    r->values = L;
    if (C->n != L->n)
        parse_action_error(ps, V->pos, V->len, "REGISTER lists %zu column%s but %zu value%s",
                           C->n, C->n == 1 ? "" : "s", L->n, L->n == 1 ? "" : "s");
    A = &r->h;
}

%type register_what { ast_register_kind }
register_what(A) ::= DATASET.   { A = REGISTER_DATASET; }
register_what(A) ::= MODEL.     { A = REGISTER_MODEL; }
register_what(A) ::= IDENT(W). {
    parse_action_error(ps, W->pos, W->len, "cannot register \"%s\": expected DATASET or MODEL", W->str);
    A = REGISTER_DATASET;
}

/* Column names of REGISTER, carried as fields so each keeps its position. */
/* A REGISTER column: a name, or finetuned, the catalog column behind the FINETUNED test. */
%type column_name { ast_name }
column_name(A) ::= name(N).         { A = N; }
column_name(A) ::= FINETUNED(K).    { A = name_of(K); }

%type name_list { ast_list * }
name_list(A) ::= column_name(N). {
    ast_object_field *f = A_(ast_object_field, AST_OBJECT_FIELD, N.pos);
    f->key = N;
    A = ast_list_append(ps->arena, NULL, &f->h);
}
name_list(A) ::= name_list(L) COMMA column_name(N). {
    ast_object_field *f = A_(ast_object_field, AST_OBJECT_FIELD, N.pos);
    f->key = N;
    A = ast_list_append(ps->arena, L, &f->h);
}

%type use { ast_node * }
use(A) ::= USE(K) name(N). {
    ast_use *u = A_(ast_use, AST_USE, K->pos);
    u->target = N;
    A = &u->h;
}
use(A) ::= USE(K) HOSTPORT(H). {
    ast_use *u = A_(ast_use, AST_USE, K->pos);
    u->target = name_of(H);
    A = &u->h;
}

%type print { ast_node * }
print(A) ::= PRINT(K) name(N). {
    ast_print *p = A_(ast_print, AST_PRINT, K->pos);
    p->name = N;
    A = &p->h;
}
print(A) ::= PRINT(K) STAR. {
    ast_print *p = A_(ast_print, AST_PRINT, K->pos);
    p->all = true;
    A = &p->h;
}

%type finetune { ast_node * }
finetune(A) ::= FINETUNE(K) name(M) WITH datasets(D) using(U) wait(W). {
    ast_finetune *f = A_(ast_finetune, AST_FINETUNE, K->pos);
    f->models = M;
    f->datasets = D;
    f->strategy = U;
    f->wait = W;
    A = &f->h;
}

%type using { ast_call * }
using(A) ::= .              { A = NULL; }
using(A) ::= USING call(C). { A = C; }

%type purge { ast_node * }
purge(A) ::= PURGE(K).        { A = &A_(ast_purge, AST_PURGE, K->pos)->h; }
purge(A) ::= PURGE(K) CACHE.  { ast_purge *p = A_(ast_purge, AST_PURGE, K->pos); p->cache = true; A = &p->h; }

%type show { ast_node * }
show(A) ::= SHOW(K) show_what(W). {
    ast_show *s = A_(ast_show, AST_SHOW, K->pos);
    s->what = W;
    A = &s->h;
}
%type show_what { ast_show_what }
show_what(A) ::= JOBS.        { A = SHOW_JOBS; }
show_what(A) ::= MODELS.      { A = SHOW_MODELS; }
show_what(A) ::= DATASETS.    { A = SHOW_DATASETS; }
show_what(A) ::= EXTENSIONS.  { A = SHOW_EXTENSIONS; }

%type cancel { ast_node * }
cancel(A) ::= CANCEL(K) cancel_what(W) NUMBER(N). {
    ast_cancel *c = A_(ast_cancel, AST_CANCEL, K->pos);
    c->what = W;
    c->id = number_literal(ps, N, false);
    A = &c->h;
}
cancel(A) ::= CANCEL(K) cancel_what(W) STRING(S). {
    ast_cancel *c = A_(ast_cancel, AST_CANCEL, K->pos);
    c->what = W;
    c->id = string_literal(ps, S);
    A = &c->h;
}
%type cancel_what { ast_cancel_what }
cancel_what(A) ::= JOB.    { A = CANCEL_JOB; }
cancel_what(A) ::= QUERY.  { A = CANCEL_QUERY; }

/* CHECK MODEL "name" re-checks one model, CHECK MODELS every model rankql can run. */
%type check { ast_node * }
check(A) ::= CHECK(K) MODEL name(N). {
    ast_check *c = A_(ast_check, AST_CHECK, K->pos);
    c->name = N;
    A = &c->h;
}
check(A) ::= CHECK(K) MODELS. {
    ast_check *c = A_(ast_check, AST_CHECK, K->pos);
    c->all = true;
    A = &c->h;
}

%code {
/* Token acceptance without touching the parser: replay lemon's shift/reduce decisions
 * on a copy of the state stack. */
static int simulate(yyParser *p, int token, int use_fallback)
{
    YYACTIONTYPE stack[YYSTACKDEPTH + 8];
    int top = (int)(p->yytos - p->yystack);
    for (int i = 0; i <= top; i++)
        stack[i] = p->yystack[i].stateno;
    YYACTIONTYPE act = stack[top];
    for (;;) {
        if (act > YY_MAX_SHIFT) {
            /* the state is a pending reduce */
        } else if (use_fallback) {
            act = yy_find_shift_action((YYCODETYPE)token, act);
        } else {
            int i = yy_shift_ofst[act] + token;
            act = yy_lookahead[i] == token ? yy_action[i] : yy_default[act];
        }
        if (act >= YY_MIN_REDUCE) {
            unsigned rule = act - YY_MIN_REDUCE;
            top += yyRuleInfoNRhs[rule];
            if (top < 0 || top + 1 >= (int)(sizeof(stack) / sizeof(stack[0])))
                return 0;
            act = yy_find_reduce_action(stack[top], (YYCODETYPE)yyRuleInfoLhs[rule]);
            stack[++top] = act;
        } else if (act <= YY_MAX_SHIFTREDUCE || act == YY_ACCEPT_ACTION) {
            return 1;
        } else {
            return 0;
        }
    }
}

int rq_parser_accepts(void *parser, int token)
{
    return simulate((yyParser *)parser, token, 1);
}

int rq_parser_accepts_keyword(void *parser, int token)
{
    return simulate((yyParser *)parser, token, 0);
}

int rq_parser_expected(void *parser, int *out, int max)
{
    int n = 0;
    for (int t = 1; t < YYNTOKEN && n < max; t++)
        if (simulate((yyParser *)parser, t, 0))
            out[n++] = t;
    return n;
}

int rq_parser_token_count(void)
{
    return YYNTOKEN;
}
}
