/* AST → logical plan: resolves FROM and OTHER THAN names, refuses what is not a catalog
 * query, and stacks Scan → Filter → Exclude → Project → Sort → Limit (or SetOp). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "planner/internal.h"

/* ---- errors, parameters, notices ------------------------------------------------------ */

static void vfail(plan_error *err, int status, const char *code, ast_pos pos, const char *fmt,
                  va_list ap)
{
    if (!err)
        return;
    err->http_status = status;
    snprintf(err->code, sizeof err->code, "%s", code);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    err->line = pos.line;
    err->col = pos.col;
}

bool plan_fail(plan_error *err, int status, const char *code, ast_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, status, code, pos, fmt, ap);
    va_end(ap);
    return false;
}

bool plan_semantic(plan_error *err, ast_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, 400, "semantic_error", pos, fmt, ap);
    va_end(ap);
    return false;
}

size_t plan_params_add(plan_params *p, const char *value)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->values = xrealloc(p->values, p->cap * sizeof *p->values);
    }
    p->values[p->n++] = value ? xstrdup(value) : NULL;
    return p->n;
}

void plan_params_free(plan_params *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->values[i]);
    free(p->values);
    p->values = NULL;
    p->n = p->cap = 0;
}

void plan_add_notice(plan *p, const char *fmt, ...)
{
    va_list ap;
    strbuf sb = {0};
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    char *msg = strbuf_detach(&sb);
    for (size_t i = 0; i < p->nnotices; i++)
        if (strcmp(p->notices[i], msg) == 0) { /* one notice per cause */
            free(msg);
            return;
        }
    p->notices = xrealloc(p->notices, (p->nnotices + 1) * sizeof *p->notices);
    p->notices[p->nnotices++] = msg;
}

/* ---- nodes ---------------------------------------------------------------------------- */

plan_node *plan_node_new(plan_op op)
{
    plan_node *n = xcalloc(1, sizeof *n);
    n->op = op;
    return n;
}

void plan_node_free(plan_node *n)
{
    if (!n)
        return;
    plan_node_free(n->input);
    plan_node_free(n->left);
    plan_node_free(n->right);
    free(n->detail);
    free(n->scan_sql);
    plan_params_free(&n->scan_params);
    free(n);
}

void plan_free(plan *p)
{
    if (!p)
        return;
    plan_node_free(p->root);
    free(p->sql);
    plan_params_free(&p->params);
    for (size_t i = 0; i < p->ncolumns; i++)
        free(p->columns[i]);
    free(p->columns);
    for (size_t i = 0; i < p->nnotices; i++)
        free(p->notices[i]);
    free(p->notices);
    for (size_t i = 0; i < p->nrefs; i++) {
        plan_ref *r = &p->refs[i];
        free(r->property);
        free(r->model);
        free(r->status);
        free(r->measured_on);
        free(r->checked_at);
    }
    free(p->refs);
    free(p);
}

const ast_select *plan_first_select(const ast_node *query)
{
    while (query && query->kind == AST_SET_OP)
        query = ((const ast_set_op *)query)->left;
    return query && query->kind == AST_SELECT ? (const ast_select *)query : NULL;
}

/* ---- task-aware detection ------------------------------------------------------------- */

static bool is_metric_name(const ast_node *key)
{
    if (key->kind == AST_FUNC)
        return true; /* AVG(err) … */
    if (key->kind != AST_COLUMN_REF)
        return false;
    const ast_column_ref *c = (const ast_column_ref *)key;
    return c->nparts == 1 &&
           (strcasecmp(c->parts[0].text, "err") == 0 || strcasecmp(c->parts[0].text, "acc") == 0);
}

/* Does cond compare the identifier `probe` (SHiFT's SELECT vec … WHERE probe = v)? */
static bool mentions_probe(const ast_node *cond)
{
    if (!cond)
        return false;
    if (cond->kind == AST_COLUMN_REF) {
        const ast_column_ref *c = (const ast_column_ref *)cond;
        return c->nparts == 1 && strcasecmp(c->parts[0].text, "probe") == 0;
    }
    if (cond->kind == AST_BINARY) {
        const ast_binary *b = (const ast_binary *)cond;
        return mentions_probe(b->left) || mentions_probe(b->right);
    }
    return false;
}

static const char *select_task_aware_reason(const ast_select *s, const ast_node **where)
{
    *where = &s->h;
    if (s->is_rank) {
        if (s->strategy)
            *where = &s->strategy->h;
        return "RANK … BY a strategy needs the strategy plugins, which are not implemented yet";
    }
    if (s->columns && s->columns->n == 1 && mentions_probe(s->where)) {
        const ast_column *c = (const ast_column *)s->columns->items[0];
        if (c->expr->kind == AST_COLUMN_REF &&
            strcasecmp(((const ast_column_ref *)c->expr)->parts[0].text, "vec") == 0) {
            *where = c->expr;
            return "dataset similarity (SELECT vec … WHERE probe = …) is not implemented yet";
        }
    }
    for (size_t i = 0; s->order_by && i < s->order_by->n; i++) {
        const ast_order_item *o = (const ast_order_item *)s->order_by->items[i];
        if (is_metric_name(o->key)) {
            *where = o->key;
            if (!s->trained_on && !s->tested_on)
                return NULL; /* reported as a semantic error by the physical phase */
            return "task-aware ranking (ORDER BY err/acc … TRAINED ON … TESTED ON …) is not "
                   "implemented yet: it needs the embedding and proxy jobs";
        }
    }
    if (s->trained_on || s->tested_on || s->classifiers) {
        *where = s->trained_on ? s->trained_on->items[0]
                 : s->tested_on ? s->tested_on->items[0]
                                : s->classifiers->items[0];
        return "task-aware ranking (TRAINED ON … TESTED ON … CLASSIFIED BY …) is not implemented "
               "yet: it needs the embedding and proxy jobs";
    }
    if (s->chunk.present || s->budget.present) {
        *where = &s->h;
        return "successive halving (CHUNK / BUDGET) is part of task-aware ranking, which is not "
               "implemented yet";
    }
    return NULL;
}

const char *planner_task_aware_reason(const ast_node *query, const ast_node **where)
{
    const ast_node *dummy;
    if (!where)
        where = &dummy;
    if (!query)
        return NULL;
    if (query->kind == AST_SET_OP) {
        const ast_set_op *s = (const ast_set_op *)query;
        const char *r = planner_task_aware_reason(s->left, where);
        if (!r)
            r = planner_task_aware_reason(s->right, where);
        for (size_t i = 0; !r && s->order_by && i < s->order_by->n; i++) {
            const ast_order_item *o = (const ast_order_item *)s->order_by->items[i];
            if (is_metric_name(o->key)) {
                *where = o->key;
                r = "ORDER BY err/acc over a set operation needs task-aware ranking, which is "
                    "not implemented yet";
            }
        }
        return r;
    }
    if (query->kind == AST_SELECT)
        return select_task_aware_reason((const ast_select *)query, where);
    return NULL;
}

/* ---- variables ------------------------------------------------------------------------ */

static void add_var_name(const ast_name *n, const ast_name **out, size_t *count, size_t max)
{
    plan_table t;
    if (!n->text || planner_table_lookup(n->text, &t))
        return;
    for (size_t i = 0; i < *count; i++)
        if (strcmp(out[i]->text, n->text) == 0)
            return;
    if (*count < max)
        out[(*count)++] = n;
}

static void collect_vars(const ast_node *q, const ast_name **out, size_t *count, size_t max)
{
    if (!q)
        return;
    if (q->kind == AST_SET_OP) {
        collect_vars(((const ast_set_op *)q)->left, out, count, max);
        collect_vars(((const ast_set_op *)q)->right, out, count, max);
    } else if (q->kind == AST_SELECT) {
        const ast_select *s = (const ast_select *)q;
        add_var_name(&s->from, out, count, max);
        add_var_name(&s->other_than, out, count, max);
    }
}

size_t planner_referenced_vars(const ast_node *query, const ast_name **out, size_t max)
{
    size_t count = 0;
    collect_vars(query, out, &count, max);
    return count;
}

static const plan_var *find_var(const plan_env *env, const char *name)
{
    for (size_t i = 0; env && i < env->nvars; i++)
        if (strcmp(env->vars[i].name, name) == 0)
            return &env->vars[i];
    return NULL;
}

/* ---- building ------------------------------------------------------------------------- */

typedef struct logical_ctx {
    plan *plan;
    const plan_env *env;
    plan_error *err;
} logical_ctx;

static const char *closest_table(const char *name)
{
    static const char *const names[] = {"image_models", "text_models", "models", "datasets",
                                        "readers", "jobs", NULL};
    for (size_t i = 0; names[i]; i++)
        if (catalog_edit_distance(name, names[i], 2) <= 2)
            return names[i];
    return NULL;
}

/* FROM: a table, else a variable of this session. */
static plan_node *logical_scan(logical_ctx *c, const ast_select *s)
{
    plan_node *scan = plan_node_new(PLAN_SCAN);
    if (planner_table_lookup(s->from.text, &scan->table))
        return scan;
    const plan_var *v = find_var(c->env, s->from.text);
    if (v) {
        scan->table = v->table;
        scan->var = v;
        return scan;
    }
    plan_node_free(scan);
    const char *near = closest_table(s->from.text);
    if (near)
        plan_semantic(c->err, s->from.pos,
                      "unknown table or variable \"%s\" (did you mean %s?)", s->from.text, near);
    else
        plan_semantic(c->err, s->from.pos,
                      "unknown table or variable \"%s\": FROM takes image_models, text_models, "
                      "models, datasets (readers), jobs or a variable made by DECLARE",
                      s->from.text);
    return NULL;
}

static plan_node *wrap(plan_op op, plan_node *input)
{
    plan_node *n = plan_node_new(op);
    n->input = input;
    n->table = input->table;
    return n;
}

/* OTHER THAN v: v must exist and hold rows of the same kind. */
static plan_node *logical_exclude(logical_ctx *c, const ast_select *s, plan_node *input)
{
    const plan_var *v = find_var(c->env, s->other_than.text);
    plan_table t;
    if (!v) {
        if (planner_table_lookup(s->other_than.text, &t))
            plan_semantic(c->err, s->other_than.pos,
                          "OTHER THAN takes a variable made by DECLARE, not the table %s",
                          s->other_than.text);
        else
            plan_semantic(c->err, s->other_than.pos, "unknown variable \"%s\" in OTHER THAN",
                          s->other_than.text);
        return NULL;
    }
    plan_entity want = planner_table_entity(input->table);
    if (planner_table_entity(v->table) != want) {
        plan_semantic(c->err, s->other_than.pos,
                      "OTHER THAN %s: the variable holds %s, but this query reads %s",
                      v->name, planner_entity_name(planner_table_entity(v->table)),
                      planner_entity_name(want));
        return NULL;
    }
    plan_node *n = wrap(PLAN_EXCLUDE, input);
    n->var = v;
    return n;
}

/* Whether an expression names the status column (status, t.status, models.status). */
static bool mentions_status(const ast_node *n)
{
    if (!n)
        return false;
    switch (n->kind) {
    case AST_COLUMN_REF: {
        const ast_column_ref *c = (const ast_column_ref *)n;
        return strcasecmp(c->parts[c->nparts - 1].text, "status") == 0 && c->nparts <= 2;
    }
    case AST_UNARY: return mentions_status(((const ast_unary *)n)->operand);
    case AST_BINARY:
        return mentions_status(((const ast_binary *)n)->left) ||
               mentions_status(((const ast_binary *)n)->right);
    case AST_BETWEEN: {
        const ast_between *b = (const ast_between *)n;
        return mentions_status(b->value) || mentions_status(b->low) || mentions_status(b->high);
    }
    case AST_IN: {
        const ast_in *in = (const ast_in *)n;
        for (size_t i = 0; in->items && i < in->items->n; i++)
            if (mentions_status(in->items->items[i]))
                return true;
        return mentions_status(in->value);
    }
    case AST_IS_NULL: return mentions_status(((const ast_is_null *)n)->value);
    case AST_LIKE:
        return mentions_status(((const ast_like *)n)->value) ||
               mentions_status(((const ast_like *)n)->pattern);
    case AST_FUNC: {
        const ast_func *f = (const ast_func *)n;
        for (size_t i = 0; f->args && i < f->args->n; i++)
            if (mentions_status(f->args->items[i]))
                return true;
        return false;
    }
    default: return false;
    }
}

/* Scan, Filter and Exclude of one SELECT: the rows it selects, before projection. */
static plan_node *logical_rows(logical_ctx *c, const ast_select *s)
{
    const ast_node *where = NULL;
    const char *reason = select_task_aware_reason(s, &where);
    if (reason) {
        plan_fail(c->err, 501, "not_implemented", where->pos, "%s", reason);
        return NULL;
    }
    if (s->wait)
        plan_add_notice(c->plan, "WAIT has no effect on a catalog query: it returns at once");
    plan_node *n = logical_scan(c, s);
    if (!n)
        return NULL;
    /* A variable keeps the rows it was declared with; a table of models hides failed
     * checks unless the WHERE names status. */
    n->hide_failed_checks = c->env && c->env->hide_failed_checks && !n->var &&
                            planner_table_entity(n->table) == ENTITY_MODELS &&
                            !mentions_status(s->where);
    if (s->where) {
        n = wrap(PLAN_FILTER, n);
        n->where = s->where;
    }
    if (s->other_than.text) {
        plan_node *e = logical_exclude(c, s, n);
        if (!e) {
            plan_node_free(n);
            return NULL;
        }
        n = e;
    }
    return n;
}

static plan_node *add_sort_limit(plan_node *n, const ast_list *order_by, bool has_limit,
                                 int64_t limit)
{
    if (order_by) {
        n = wrap(PLAN_SORT, n);
        n->order_by = order_by;
    }
    if (has_limit) {
        n = wrap(PLAN_LIMIT, n);
        n->limit = limit;
    }
    return n;
}

static plan_node *logical_member(logical_ctx *c, const ast_node *q);

/* The table a set operation's output is resolved against: the members' table when
 * they agree, else the entity's widest table. */
static plan_table common_table(plan_table a, plan_table b)
{
    if (a == b)
        return a;
    return planner_table_entity(a) == ENTITY_MODELS ? TABLE_MODELS : a;
}

static plan_node *logical_setop(logical_ctx *c, const ast_set_op *s)
{
    plan_node *l = logical_member(c, s->left);
    if (!l)
        return NULL;
    plan_node *r = logical_member(c, s->right);
    if (!r) {
        plan_node_free(l);
        return NULL;
    }
    if (planner_table_entity(l->table) != planner_table_entity(r->table)) {
        plan_semantic(c->err, s->right->pos,
                      "%s combines %s with %s: both sides must select the same kind of rows",
                      ast_set_kind_name(s->op), planner_entity_name(planner_table_entity(l->table)),
                      planner_entity_name(planner_table_entity(r->table)));
        plan_node_free(l);
        plan_node_free(r);
        return NULL;
    }
    plan_node *n = plan_node_new(PLAN_SETOP);
    n->left = l;
    n->right = r;
    n->set_kind = s->op;
    n->table = common_table(l->table, r->table);
    return n;
}

/* A member of a set operation: its rows (ids), with its own ORDER BY / LIMIT when it
 * was written in parentheses. Its select list is not used. */
static plan_node *logical_member(logical_ctx *c, const ast_node *q)
{
    if (q->kind == AST_SET_OP) {
        const ast_set_op *s = (const ast_set_op *)q;
        plan_node *n = logical_setop(c, s);
        return n ? add_sort_limit(n, s->order_by, s->has_limit, s->limit) : NULL;
    }
    const ast_select *s = (const ast_select *)q;
    plan_node *n = logical_rows(c, s);
    if (n && s->distinct)
        plan_add_notice(c->plan, "DISTINCT inside a set operation has no effect: set operations "
                                 "already compare rows by identity");
    return n ? add_sort_limit(n, s->order_by, s->has_limit, s->limit) : NULL;
}

plan *planner_logical(const ast_node *query, const plan_env *env, plan_error *err)
{
    if (!query || (query->kind != AST_SELECT && query->kind != AST_SET_OP)) {
        plan_fail(err, 500, "internal_error", query ? query->pos : (ast_pos){0, 0, 0},
                  "the planner only plans queries");
        return NULL;
    }
    plan *p = xcalloc(1, sizeof *p);
    logical_ctx c = {p, env, err};
    plan_node *rows;
    const ast_list *order_by;
    bool has_limit;
    int64_t limit;
    const ast_select *first = plan_first_select(query);
    if (query->kind == AST_SET_OP) {
        const ast_set_op *s = (const ast_set_op *)query;
        rows = logical_setop(&c, s);
        order_by = s->order_by;
        has_limit = s->has_limit;
        limit = s->limit;
    } else {
        rows = logical_rows(&c, first);
        order_by = first->order_by;
        has_limit = first->has_limit;
        limit = first->limit;
    }
    if (!rows) {
        plan_free(p);
        return NULL;
    }
    plan_node *proj = wrap(PLAN_PROJECT, rows);
    proj->columns = first->columns;
    proj->distinct = query->kind == AST_SELECT && first->distinct;
    p->root = add_sort_limit(proj, order_by, has_limit, limit);
    p->table = rows->table;
    p->entity = planner_table_entity(rows->table);
    p->has_id = !proj->distinct;
    return p;
}

plan *planner_plan(const ast_node *query, const plan_env *env, plan_error *err)
{
    plan *p = planner_logical(query, env, err);
    if (p && !planner_physical(p, err)) {
        plan_free(p);
        return NULL;
    }
    return p;
}
