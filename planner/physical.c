/* Logical plan → one parameterised PostgreSQL statement.
 *
 * Shapes (t is the table alias everywhere; $n are parameters):
 *
 *   SELECT t.id, to_jsonb(<col>), …  FROM models t
 *    WHERE t.modality = 'image' AND (<where>) AND t.id <> ALL($k::bigint[])
 *    ORDER BY <key> DESC NULLS LAST, …, t.id  LIMIT $m::bigint
 *
 *   set operations compare row ids:  … WHERE t.id IN ((SELECT t.id …) UNION (SELECT t.id …))
 *   FROM v (a variable):             … WHERE t.id = ANY($k::bigint[])  ORDER BY array_position(…)
 *   SELECT DISTINCT:                 SELECT to_jsonb(d.c1), … FROM (SELECT DISTINCT … ) d …
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "planner/internal.h"

typedef struct phys {
    plan *p;
    plan_error *err;
} phys;

/* The rows a query reads before projection: a relation and ANDed conditions. */
typedef struct source {
    plan_table table;         /* names resolve against it */
    const char *from_name;
    const char *relation;
    strbuf where;
    char *default_order;      /* a variable's own order; NULL = t.id */
} source;

/* One select-list entry. */
typedef struct output {
    sql_expr e;
    const char *alias;        /* written alias or NULL */
    char *written;            /* the expression as written, for DISTINCT ORDER BY */
} output;

typedef struct outputs {
    size_t n;
    output *items;
    bool distinct;
} outputs;

static void source_free(source *s)
{
    strbuf_free(&s->where);
    free(s->default_order);
}

static void outputs_free(outputs *o)
{
    for (size_t i = 0; i < o->n; i++) {
        sql_expr_free(&o->items[i].e);
        free(o->items[i].written);
    }
    free(o->items);
}

static void add_cond(strbuf *where, const char *cond)
{
    if (where->len)
        strbuf_puts(where, " AND ");
    strbuf_puts(where, cond);
}

static sqlgen gen_for(phys *ph, plan_params *params, plan_table table, const char *from_name)
{
    sqlgen g = {ph->p, params, table, from_name, ph->err, NULL};
    return g;
}

/* "$n::bigint[]" holding a variable's ids. */
static char *ids_param(plan_params *params, const plan_var *v)
{
    strbuf sb = {0};
    strbuf_putc(&sb, '{');
    for (size_t i = 0; i < v->nids; i++)
        strbuf_printf(&sb, "%s%" PRId64, i ? "," : "", v->ids[i]);
    strbuf_putc(&sb, '}');
    size_t n = plan_params_add(params, sb.data);
    strbuf_free(&sb);
    return xasprintf("$%zu::bigint[]", n);
}

static const char *entity_singular(plan_entity e)
{
    return e == ENTITY_MODELS ? "model" : e == ENTITY_DATASETS ? "dataset" : "job";
}

/* ---- scans ---------------------------------------------------------------------------- */

/* The scan on its own, for EXPLAIN's row estimate of the table or variable. */
static void scan_alone(plan_node *n, const catalog_table *tab)
{
    strbuf sql = {0}, where = {0};
    if (tab->scope_sql)
        add_cond(&where, tab->scope_sql);
    if (n->var) {
        char *ids = ids_param(&n->scan_params, n->var);
        char *c = xasprintf("t.id = ANY(%s)", ids);
        add_cond(&where, c);
        free(c);
        free(ids);
    }
    strbuf_printf(&sql, "SELECT t.id FROM %s t", tab->relation);
    if (where.len)
        strbuf_printf(&sql, " WHERE %s", where.data);
    n->scan_sql = strbuf_detach(&sql);
    strbuf_free(&where);
}

static void collect_scan(phys *ph, plan_node *n, source *src)
{
    const catalog_table *tab = catalog_table_get(n->table);
    src->table = n->table;
    src->relation = tab->relation;
    src->from_name = n->var ? n->var->name : tab->name;
    if (tab->scope_sql)
        add_cond(&src->where, tab->scope_sql);
    if (n->hide_failed_checks)
        add_cond(&src->where, PLAN_CHECKS_FILTER_SQL);
    if (n->var) {
        char *ids = ids_param(&ph->p->params, n->var);
        char *c = xasprintf("t.id = ANY(%s)", ids);
        add_cond(&src->where, c);
        src->default_order = xasprintf("array_position(%s, t.id)", ids);
        free(c);
        free(ids);
        n->detail = xasprintf("variable %s (%zu %s%s, from %s)", n->var->name, n->var->nids,
                              entity_singular(tab->entity), n->var->nids == 1 ? "" : "s", tab->name);
    } else {
        n->detail = xstrdup(tab->name);
    }
    scan_alone(n, tab);
}

static char *ids_sql(phys *ph, plan_node *n);

/* Fills src with the relation and conditions of a Scan/Filter/Exclude/SetOp subtree. */
static bool collect_source(phys *ph, plan_node *n, source *src)
{
    switch (n->op) {
    case PLAN_SCAN:
        collect_scan(ph, n, src);
        return true;
    case PLAN_FILTER: {
        if (!collect_source(ph, n->input, src))
            return false;
        sqlgen g = gen_for(ph, &ph->p->params, src->table, src->from_name);
        g.node = n;
        char *cond;
        if (!sqlgen_condition(&g, n->where, &cond))
            return false;
        add_cond(&src->where, cond);
        free(cond);
        n->detail = planner_deparse(n->where);
        return true;
    }
    case PLAN_EXCLUDE: {
        if (!collect_source(ph, n->input, src))
            return false;
        char *ids = ids_param(&ph->p->params, n->var);
        char *c = xasprintf("t.id <> ALL(%s)", ids);
        add_cond(&src->where, c);
        free(c);
        free(ids);
        n->detail = xasprintf("OTHER THAN %s (%zu %s%s)", n->var->name, n->var->nids,
                              entity_singular(planner_table_entity(n->var->table)),
                              n->var->nids == 1 ? "" : "s");
        return true;
    }
    case PLAN_SETOP: {
        char *ids = ids_sql(ph, n);
        if (!ids)
            return false;
        const catalog_table *tab = catalog_table_get(n->table);
        src->table = n->table;
        src->relation = tab->relation;
        src->from_name = tab->name;
        char *c = xasprintf("t.id IN (%s)", ids);
        add_cond(&src->where, c);
        free(c);
        free(ids);
        return true;
    }
    default:
        return plan_fail(ph->err, 500, "internal_error", (ast_pos){0, 0, 0},
                         "planner: unexpected node below a projection");
    }
}

/* ---- ORDER BY ------------------------------------------------------------------------- */

static bool is_metric(const ast_node *key)
{
    if (key->kind != AST_COLUMN_REF)
        return false;
    const ast_column_ref *c = (const ast_column_ref *)key;
    return c->nparts == 1 &&
           (strcasecmp(c->parts[0].text, "err") == 0 || strcasecmp(c->parts[0].text, "acc") == 0);
}

/* The select-list entry an ORDER BY key names: its alias, its position, or (DISTINCT)
 * the same expression. Returns its index, or -1. */
static long find_output(const outputs *outs, const ast_node *key)
{
    if (!outs)
        return -1;
    if (key->kind == AST_COLUMN_REF) {
        const ast_column_ref *c = (const ast_column_ref *)key;
        for (size_t i = 0; c->nparts == 1 && !c->parts[0].quoted && i < outs->n; i++)
            if (outs->items[i].alias && strcmp(outs->items[i].alias, c->parts[0].text) == 0)
                return (long)i;
    }
    if (outs->distinct) {
        char *w = planner_deparse(key);
        long found = -1;
        for (size_t i = 0; found < 0 && i < outs->n; i++)
            if (outs->items[i].written && strcmp(outs->items[i].written, w) == 0)
                found = (long)i;
        free(w);
        return found;
    }
    return -1;
}

static bool order_key(phys *ph, sqlgen *g, const ast_order_item *o, const outputs *outs,
                      char **sql)
{
    const ast_node *key = o->key;
    if (is_metric(key))
        return plan_semantic(ph->err, key->pos,
                             "ORDER BY %s ranks by a proxy's error: it needs TRAINED ON … "
                             "TESTED ON … (a task-aware query)",
                             ((const ast_column_ref *)key)->parts[0].text);
    long idx = -1;
    if (key->kind == AST_LITERAL) {
        const ast_literal *l = (const ast_literal *)key;
        if (l->type != LIT_INT || !outs)
            return plan_semantic(ph->err, key->pos, "ORDER BY needs a column, not a constant");
        if (l->ival < 1 || (size_t)l->ival > outs->n)
            return plan_semantic(ph->err, key->pos,
                                 "ORDER BY %" PRId64 ": the select list has %zu column%s", l->ival,
                                 outs->n, outs->n == 1 ? "" : "s");
        idx = (long)l->ival - 1;
    } else {
        idx = find_output(outs, key);
    }
    if (idx >= 0) {
        *sql = outs->distinct ? xasprintf("d.c%ld", idx + 1) : xstrdup(outs->items[idx].e.sql);
        return true;
    }
    if (outs && outs->distinct)
        return plan_semantic(ph->err, key->pos,
                             "with DISTINCT, ORDER BY must name a selected column");
    sql_expr e;
    if (!sqlgen_value(g, key, NAMES_STRICT, &e))
        return false;
    *sql = e.sql;
    e.sql = NULL;
    sql_expr_free(&e);
    return true;
}

/* "k1 DESC NULLS LAST, …" (without the tie-breakers); sets the Sort node's detail. */
static bool order_list(phys *ph, plan_node *sort, const source *src, const outputs *outs,
                       char **sql)
{
    sqlgen g = gen_for(ph, &ph->p->params, src->table, src->from_name);
    strbuf sb = {0}, detail = {0};
    for (size_t i = 0; i < sort->order_by->n; i++) {
        const ast_order_item *o = (const ast_order_item *)sort->order_by->items[i];
        char *k = NULL;
        if (!order_key(ph, &g, o, outs, &k)) {
            strbuf_free(&sb);
            strbuf_free(&detail);
            return false;
        }
        const char *dir = o->desc ? "DESC" : "ASC";
        strbuf_printf(&sb, "%s%s %s NULLS LAST", i ? ", " : "", k, dir);
        char *w = planner_deparse(o->key);
        strbuf_printf(&detail, "%s%s %s NULLS LAST", i ? ", " : "", w, dir);
        free(w);
        free(k);
    }
    *sql = strbuf_detach(&sb);
    sort->detail = strbuf_detach(&detail);
    return true;
}

static void put_limit(phys *ph, strbuf *sql, plan_node *limit)
{
    char v[32];
    snprintf(v, sizeof v, "%" PRId64, limit->limit);
    size_t n = plan_params_add(&ph->p->params, v);
    strbuf_printf(sql, " LIMIT $%zu::bigint", n);
    limit->detail = xstrdup(v);
}

/* ---- set operations ------------------------------------------------------------------- */

static char *setop_sql(phys *ph, plan_node *n)
{
    char *l = ids_sql(ph, n->left);
    if (!l)
        return NULL;
    char *r = ids_sql(ph, n->right);
    if (!r) {
        free(l);
        return NULL;
    }
    char *s = xasprintf("(%s) %s (%s)", l, ast_set_kind_name(n->set_kind), r);
    n->detail = xasprintf("by %s identity", entity_singular(planner_table_entity(n->table)));
    free(l);
    free(r);
    return s;
}

/* The ids a member of a set operation selects, in SQL. */
static char *ids_sql(phys *ph, plan_node *n)
{
    plan_node *limit = NULL, *sort = NULL;
    if (n->op == PLAN_LIMIT) {
        limit = n;
        n = n->input;
    }
    if (n->op == PLAN_SORT) {
        sort = n;
        n = n->input;
    }
    if (!limit && !sort && n->op == PLAN_SETOP)
        return setop_sql(ph, n);
    source src = {0};
    char *order = NULL;
    if (!collect_source(ph, n, &src) || (sort && !order_list(ph, sort, &src, NULL, &order))) {
        source_free(&src);
        return NULL;
    }
    strbuf sql = {0};
    strbuf_printf(&sql, "SELECT t.id FROM %s t", src.relation);
    if (src.where.len)
        strbuf_printf(&sql, " WHERE %s", src.where.data);
    if (sort || limit)
        strbuf_printf(&sql, " ORDER BY %s%s%s%st.id", order ? order : "", order ? ", " : "",
                      src.default_order ? src.default_order : "", src.default_order ? ", " : "");
    if (limit)
        put_limit(ph, &sql, limit);
    free(order);
    source_free(&src);
    return strbuf_detach(&sql);
}

/* ---- projection ----------------------------------------------------------------------- */

static bool is_all(const ast_node *e)
{
    if (e->kind == AST_STAR)
        return true;
    if (e->kind != AST_COLUMN_REF)
        return false;
    const ast_column_ref *c = (const ast_column_ref *)e;
    return c->nparts == 1 && !c->parts[0].quoted && strcasecmp(c->parts[0].text, "all") == 0;
}

static output *outputs_push(outputs *o)
{
    o->items = xrealloc(o->items, (o->n + 1) * sizeof *o->items);
    output *out = &o->items[o->n++];
    memset(out, 0, sizeof *out);
    return out;
}

static void expand_defaults(outputs *outs, plan_table table)
{
    const catalog_table *tab = catalog_table_get(table);
    for (size_t i = 0; tab->defaults[i]; i++) {
        const catalog_column *c = catalog_column_find(table, tab->defaults[i]);
        output *o = outputs_push(outs);
        o->e.sql = xstrdup(c->sql);
        o->e.name = xstrdup(c->name);
        o->e.type = c->type == CT_JSON ? ST_JSONDOC : ST_TEXT; /* only JSON-ness matters here */
        o->written = xstrdup(c->name);
    }
}

static bool compile_outputs(phys *ph, plan_node *proj, const source *src, outputs *outs)
{
    sqlgen g = gen_for(ph, &ph->p->params, src->table, src->from_name);
    outs->distinct = proj->distinct;
    for (size_t i = 0; i < proj->columns->n; i++) {
        const ast_column *c = (const ast_column *)proj->columns->items[i];
        if (is_all(c->expr)) {
            expand_defaults(outs, src->table);
            continue;
        }
        output *o = outputs_push(outs);
        if (!sqlgen_value(&g, c->expr, NAMES_STRICT, &o->e)) {
            outs->n--;
            return false;
        }
        o->alias = c->alias.text;
        o->written = planner_deparse(c->expr);
        if (c->alias.text) {
            free(o->e.name);
            o->e.name = xstrdup(c->alias.text);
        }
    }
    strbuf detail = {0};
    if (proj->distinct)
        strbuf_puts(&detail, "DISTINCT ");
    for (size_t i = 0; i < outs->n; i++)
        strbuf_printf(&detail, "%s%s", i ? ", " : "", outs->items[i].e.name);
    proj->detail = strbuf_detach(&detail);
    ph->p->ncolumns = outs->n;
    ph->p->columns = xcalloc(outs->n, sizeof *ph->p->columns);
    for (size_t i = 0; i < outs->n; i++)
        ph->p->columns[i] = xstrdup(outs->items[i].e.name);
    return true;
}

/* ---- the statement -------------------------------------------------------------------- */

static void put_select_list(strbuf *sql, const outputs *outs)
{
    for (size_t i = 0; i < outs->n; i++) {
        char *j = sqlgen_to_jsonb(&outs->items[i].e);
        strbuf_printf(sql, ", %s", j);
        free(j);
    }
}

static char *plain_sql(const source *src, const outputs *outs, const char *order)
{
    strbuf sql = {0};
    strbuf_puts(&sql, "SELECT t.id");
    put_select_list(&sql, outs);
    strbuf_printf(&sql, " FROM %s t", src->relation);
    if (src->where.len)
        strbuf_printf(&sql, " WHERE %s", src->where.data);
    strbuf_printf(&sql, " ORDER BY %s%s%s%st.id", order ? order : "", order ? ", " : "",
                  src->default_order ? src->default_order : "", src->default_order ? ", " : "");
    return strbuf_detach(&sql);
}

static char *distinct_sql(const source *src, const outputs *outs, const char *order)
{
    strbuf sql = {0}, inner = {0};
    for (size_t i = 0; i < outs->n; i++)
        strbuf_printf(&inner, "%s%s AS c%zu", i ? ", " : "", outs->items[i].e.sql, i + 1);
    strbuf_puts(&sql, "SELECT ");
    for (size_t i = 0; i < outs->n; i++)
        strbuf_printf(&sql, "%sto_jsonb(d.c%zu)", i ? ", " : "", i + 1);
    strbuf_printf(&sql, " FROM (SELECT DISTINCT %s FROM %s t", inner.data, src->relation);
    if (src->where.len)
        strbuf_printf(&sql, " WHERE %s", src->where.data);
    strbuf_printf(&sql, ") d ORDER BY %s", order ? order : "");
    for (size_t i = 0; i < outs->n; i++)
        strbuf_printf(&sql, "%sd.c%zu", (order || i) ? ", " : "", i + 1);
    strbuf_free(&inner);
    return strbuf_detach(&sql);
}

bool planner_physical(plan *p, plan_error *err)
{
    phys ph = {p, err};
    plan_node *n = p->root, *limit = NULL, *sort = NULL;
    if (n->op == PLAN_LIMIT) {
        limit = n;
        n = n->input;
    }
    if (n->op == PLAN_SORT) {
        sort = n;
        n = n->input;
    }
    if (n->op != PLAN_PROJECT)
        return plan_fail(err, 500, "internal_error", (ast_pos){0, 0, 0},
                         "planner: a query plan must project");
    source src = {0};
    outputs outs = {0};
    char *order = NULL;
    bool ok = collect_source(&ph, n->input, &src) && compile_outputs(&ph, n, &src, &outs) &&
              (!sort || order_list(&ph, sort, &src, &outs, &order));
    if (ok) {
        strbuf sql = {0};
        char *body = n->distinct ? distinct_sql(&src, &outs, order) : plain_sql(&src, &outs, order);
        strbuf_puts(&sql, body);
        free(body);
        if (limit)
            put_limit(&ph, &sql, limit);
        p->sql = strbuf_detach(&sql);
    }
    free(order);
    outputs_free(&outs);
    source_free(&src);
    return ok;
}
