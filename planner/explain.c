/* EXPLAIN: the logical plan tree, annotated with PostgreSQL's estimates (and, after
 * ANALYZE, actual rows and times) for the nodes that implement each logical node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "planner/internal.h"

/* PostgreSQL's plan nodes in pre-order, each claimable by one logical node. */
typedef struct pg_nodes {
    size_t n;
    json_t **nodes;
    bool *claimed;
} pg_nodes;

static void pg_collect(pg_nodes *pg, json_t *node)
{
    if (!json_is_object(node))
        return;
    pg->nodes = xrealloc(pg->nodes, (pg->n + 1) * sizeof *pg->nodes);
    pg->claimed = xrealloc(pg->claimed, (pg->n + 1) * sizeof *pg->claimed);
    pg->nodes[pg->n] = node;
    pg->claimed[pg->n] = false;
    pg->n++;
    json_t *children = json_object_get(node, "Plans");
    size_t i;
    json_t *c;
    json_array_foreach(children, i, c) pg_collect(pg, c);
}

static bool type_is(json_t *node, const char *const *types)
{
    const char *t = json_string_value(json_object_get(node, "Node Type"));
    for (size_t i = 0; t && types[i]; i++)
        if (strcmp(t, types[i]) == 0)
            return true;
    return false;
}

/* A scan of the query's own table (alias t), not of a subquery's. */
static bool is_row_scan(json_t *node, const char *relation)
{
    const char *rel = json_string_value(json_object_get(node, "Relation Name"));
    const char *alias = json_string_value(json_object_get(node, "Alias"));
    return rel && alias && strcmp(rel, relation) == 0 && strcmp(alias, "t") == 0;
}

static json_t *claim(pg_nodes *pg, const char *const *types, const char *relation)
{
    for (size_t i = 0; i < pg->n; i++) {
        if (pg->claimed[i])
            continue;
        if ((types && type_is(pg->nodes[i], types)) ||
            (relation && is_row_scan(pg->nodes[i], relation))) {
            pg->claimed[i] = true;
            return pg->nodes[i];
        }
    }
    return NULL;
}

static void copy_number(json_t *dst, const char *key, json_t *src, const char *src_key)
{
    json_t *v = json_object_get(src, src_key);
    if (json_is_number(v))
        json_object_set(dst, key, v);
}

/* Estimates (and actuals) of PostgreSQL node pgn onto out. */
static void annotate(json_t *out, json_t *pgn)
{
    if (!pgn)
        return;
    copy_number(out, "estimated_rows", pgn, "Plan Rows");
    copy_number(out, "startup_cost", pgn, "Startup Cost");
    copy_number(out, "total_cost", pgn, "Total Cost");
    copy_number(out, "actual_rows", pgn, "Actual Rows");
    copy_number(out, "actual_time_ms", pgn, "Actual Total Time");
    copy_number(out, "loops", pgn, "Actual Loops");
}

static const char *node_name(const plan_node *n)
{
    switch (n->op) {
    case PLAN_SCAN: return "Scan";
    case PLAN_FILTER: return "Filter";
    case PLAN_EXCLUDE: return "Exclude";
    case PLAN_PROJECT: return "Project";
    case PLAN_SORT: return "Sort";
    case PLAN_LIMIT: return "Limit";
    case PLAN_SETOP:
        return n->set_kind == SET_UNION ? "Union" : n->set_kind == SET_INTERSECT ? "Intersect" : "Except";
    }
    return "?";
}

typedef struct explain_ctx {
    const plan *plan;
    pg_nodes pg;
    json_t *const *scan_plans;
    size_t nscan_plans;
    size_t scan_index;
} explain_ctx;

static json_t *explain_node(explain_ctx *c, const plan_node *n, json_t *chain_pg);

/* Filter/Exclude chains share PostgreSQL's scan node (quals run inside the scan): the
 * topmost of the chain takes its numbers; the Scan below gets its own estimate. */
static json_t *explain_node(explain_ctx *c, const plan_node *n, json_t *chain_pg)
{
    static const char *const limit_types[] = {"Limit", NULL};
    static const char *const sort_types[] = {"Sort", "Incremental Sort", NULL};
    static const char *const distinct_types[] = {"Unique", "Aggregate", NULL};
    static const char *const setop_types[] = {"SetOp", "Unique", "Aggregate", "Append", NULL};
    json_t *out = json_object();
    json_object_set_new(out, "node", json_string(node_name(n)));
    if (n->detail)
        json_object_set_new(out, "detail", json_string(n->detail));
    const char *relation = catalog_table_get(n->table)->relation;
    json_t *pgn = NULL;
    switch (n->op) {
    case PLAN_LIMIT: pgn = claim(&c->pg, limit_types, NULL); break;
    case PLAN_SORT: pgn = claim(&c->pg, sort_types, NULL); break;
    case PLAN_PROJECT: pgn = n->distinct ? claim(&c->pg, distinct_types, NULL) : NULL; break;
    case PLAN_SETOP: pgn = claim(&c->pg, setop_types, NULL); break;
    case PLAN_FILTER:
    case PLAN_EXCLUDE:
        if (!chain_pg)
            pgn = chain_pg = claim(&c->pg, NULL, relation);
        break;
    case PLAN_SCAN: {
        json_t *own = c->scan_index < c->nscan_plans ? c->scan_plans[c->scan_index] : NULL;
        c->scan_index++;
        if (!chain_pg) {
            pgn = claim(&c->pg, NULL, relation);
            break;
        }
        annotate(out, own);
        json_object_del(out, "actual_rows");
        /* after ANALYZE, the rows the scan read = rows kept + rows its quals removed */
        json_t *kept = json_object_get(chain_pg, "Actual Rows");
        json_t *removed = json_object_get(chain_pg, "Rows Removed by Filter");
        if (json_is_number(kept))
            json_object_set_new(out, "actual_rows",
                                json_real(json_number_value(kept) +
                                          (json_is_number(removed) ? json_number_value(removed) : 0)));
        break;
    }
    }
    annotate(out, pgn);
    if (n->op == PLAN_SCAN && n->hide_failed_checks)
        json_object_set_new(out, "default_filter", json_string(PLAN_CHECKS_FILTER_TEXT));
    /* The values OF read, with where each was measured (the Filter's, or the root's for
     * those of the select list and ORDER BY). */
    json_t *refs = json_array();
    for (size_t i = 0; i < c->plan->nrefs; i++) {
        const plan_ref *r = &c->plan->refs[i];
        if (r->node == n || (!r->node && n == c->plan->root)) {
            char *text = planner_ref_text(r);
            json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "property", r->property, "model",
                                  r->model, "text", text, "status", r->status ? r->status : "");
            json_object_set_new(o, "value", r->resolved ? json_real(r->value) : json_null());
            json_object_set_new(o, "measured_on",
                                r->measured_on ? json_string(r->measured_on) : json_null());
            json_object_set_new(o, "checked_at",
                                r->checked_at ? json_string(r->checked_at) : json_null());
            json_array_append_new(refs, o);
            free(text);
        }
    }
    if (json_array_size(refs))
        json_object_set_new(out, "references", refs);
    else
        json_decref(refs);
    json_t *children = json_array();
    const plan_node *kids[2] = {n->input ? n->input : n->left, n->input ? NULL : n->right};
    for (size_t i = 0; i < 2; i++) {
        if (!kids[i])
            continue;
        bool in_chain = (n->op == PLAN_FILTER || n->op == PLAN_EXCLUDE);
        json_array_append_new(children, explain_node(c, kids[i], in_chain ? chain_pg : NULL));
    }
    json_object_set_new(out, "children", children);
    return out;
}

json_t *planner_explain_tree(const plan *p, json_t *pg_plan, json_t *const *scan_plans,
                             size_t nscan_plans)
{
    explain_ctx c = {p, {0}, scan_plans, nscan_plans, 0};
    pg_collect(&c.pg, pg_plan);
    json_t *tree = explain_node(&c, p->root, NULL);
    free(c.pg.nodes);
    free(c.pg.claimed);
    return tree;
}

static size_t scans_of(const plan_node *n, const plan_node **out, size_t max, size_t count)
{
    if (!n)
        return count;
    if (n->op == PLAN_SCAN) {
        if (count < max)
            out[count] = n;
        count++;
    }
    count = scans_of(n->input, out, max, count);
    count = scans_of(n->left, out, max, count);
    return scans_of(n->right, out, max, count);
}

size_t planner_scans(const plan *p, const plan_node **out, size_t max)
{
    size_t n = scans_of(p->root, out, max, 0);
    return n < max ? n : max;
}

/* ---- text ----------------------------------------------------------------------------- */

static void put_numbers(strbuf *sb, const json_t *node)
{
    json_t *rows = json_object_get(node, "estimated_rows");
    json_t *startup = json_object_get(node, "startup_cost");
    json_t *total = json_object_get(node, "total_cost");
    json_t *actual = json_object_get(node, "actual_rows");
    json_t *time = json_object_get(node, "actual_time_ms");
    if (!rows && !actual)
        return;
    strbuf_puts(sb, "  (");
    if (rows)
        strbuf_printf(sb, "rows=%.0f", json_number_value(rows));
    if (startup && total)
        strbuf_printf(sb, " cost=%.2f..%.2f", json_number_value(startup), json_number_value(total));
    if (actual) {
        strbuf_printf(sb, "%sactual rows=%.0f", rows ? "; " : "", json_number_value(actual));
        if (time)
            strbuf_printf(sb, " time=%.3f ms", json_number_value(time));
    }
    strbuf_putc(sb, ')');
}

static void lines_of(const json_t *node, int depth, char ***lines, size_t *n)
{
    strbuf sb = {0};
    if (depth > 0)
        strbuf_printf(&sb, "%*s→ ", (depth - 1) * 4 + 2, "");
    strbuf_puts(&sb, json_string_value(json_object_get(node, "node")));
    const char *detail = json_string_value(json_object_get(node, "detail"));
    if (detail)
        strbuf_printf(&sb, ": %s", detail);
    put_numbers(&sb, node);
    const char *filter = json_string_value(json_object_get(node, "default_filter"));
    if (filter)
        strbuf_printf(&sb, "  [default filter: %s]", filter);
    *lines = xrealloc(*lines, (*n + 1) * sizeof **lines);
    (*lines)[(*n)++] = strbuf_detach(&sb);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(node, "references"), i, c)
    {
        char *line = xasprintf("%*sReference: %s", depth * 4 + 2, "",
                               json_string_value(json_object_get(c, "text")));
        *lines = xrealloc(*lines, (*n + 1) * sizeof **lines);
        (*lines)[(*n)++] = line;
    }
    json_array_foreach(json_object_get(node, "children"), i, c) lines_of(c, depth + 1, lines, n);
}

size_t planner_explain_lines(const json_t *tree, char ***lines)
{
    size_t n = 0;
    *lines = NULL;
    lines_of(tree, 0, lines, &n);
    return n;
}

/* ---- OF references -------------------------------------------------------------------- */

void planner_resolve_ref(plan *p, size_t i, double value, const char *status,
                         const char *measured_on, const char *checked_at)
{
    plan_ref *r = &p->refs[i];
    char text[64];
    snprintf(text, sizeof text, "%.17g", value);
    free(p->params.values[r->param - 1]);
    p->params.values[r->param - 1] = xstrdup(text);
    r->resolved = true;
    r->value = value;
    free(r->status);
    free(r->measured_on);
    free(r->checked_at);
    r->status = status ? xstrdup(status) : NULL;
    r->measured_on = measured_on ? xstrdup(measured_on) : NULL;
    r->checked_at = checked_at ? xstrdup(checked_at) : NULL;
}

char *planner_ref_text(const plan_ref *r)
{
    strbuf sb = {0};
    strbuf_printf(&sb, "%s OF \"%s\"", r->property, r->model);
    if (!r->resolved) {
        strbuf_puts(&sb, " (not looked up yet)");
        return strbuf_detach(&sb);
    }
    strbuf_printf(&sb, " = %.6g", r->value);
    if (r->measured_on)
        strbuf_printf(&sb, ", measured on %s", r->measured_on);
    else if (strcmp(r->property, "latency_ms") != 0)
        strbuf_puts(&sb, ", from the catalog");
    if (r->checked_at)
        strbuf_printf(&sb, " (checked %s)", r->checked_at);
    if (r->status)
        strbuf_printf(&sb, ", status %s", r->status);
    return strbuf_detach(&sb);
}
