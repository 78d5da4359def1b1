/* Catalog queries: plan with the session's variables, run the physical plan, assemble
 * the result; EXPLAIN [ANALYZE] [JSON] over PostgreSQL's own EXPLAIN of that plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/internal.h"

plan *exec_plan(exec_ctx *ctx, const ast_node *query, loaded_vars *vars, exec_error *err)
{
    if (!vars_load(ctx, query, vars, err))
        return NULL;
    /* Models whose check failed are left out unless the query names status. */
    plan_env env = {vars->vars, vars->n, true};
    plan_error pe = {0};
    plan *p = planner_plan(query, &env, &pe);
    if (!p)
        exec_from_plan_error(err, &pe);
    if (p && !exec_resolve_refs(ctx, p, err)) {
        plan_free(p);
        return NULL;
    }
    return p;
}

/* One cell: PostgreSQL's jsonb text → a JSON value. */
static json_t *cell(const PGresult *res, int r, int c)
{
    if (PQgetisnull(res, r, c))
        return json_null();
    const char *text = PQgetvalue(res, r, c);
    json_t *v = json_loadb(text, (size_t)PQgetlength(res, r, c), JSON_DECODE_ANY, NULL);
    return v ? v : json_string(text);
}

json_t *exec_run_plan(exec_ctx *ctx, const plan *p, json_t **ids, exec_error *err)
{
    PGresult *res = exec_sql(ctx, p->sql, (int)p->params.n, (const char *const *)p->params.values, err);
    if (!res)
        return NULL;
    int first = p->has_id ? 1 : 0;
    json_t *rows = json_array();
    if (ids)
        *ids = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *row = json_array();
        for (int c = first; c < PQnfields(res); c++)
            json_array_append_new(row, cell(res, r, c));
        json_array_append_new(rows, row);
        if (ids && p->has_id)
            json_array_append_new(*ids, json_integer(strtoll(PQgetvalue(res, r, 0), NULL, 10)));
    }
    PQclear(res);
    return rows;
}

static json_t *column_names(const plan *p)
{
    json_t *columns = json_array();
    for (size_t i = 0; i < p->ncolumns; i++)
        json_array_append_new(columns, json_string(p->columns[i]));
    return columns;
}

json_t *exec_query(exec_ctx *ctx, const ast_node *query, exec_error *err)
{
    if (task_query_applies(query))
        return exec_task_query(ctx, (const ast_select *)query, err);
    loaded_vars vars = {0};
    plan *p = exec_plan(ctx, query, &vars, err);
    json_t *rows = p ? exec_run_plan(ctx, p, NULL, err) : NULL;
    json_t *result = NULL;
    if (rows) {
        result = result_new("SELECT");
        result_set(result, column_names(p), rows);
        for (size_t i = 0; i < p->nnotices; i++)
            result_notice(result, "%s", p->notices[i]);
    }
    plan_free(p);
    vars_free(&vars);
    return result;
}

/* ---- EXPLAIN -------------------------------------------------------------------------- */

/* PostgreSQL's EXPLAIN (FORMAT JSON) of sql: the first element of its one-row array. */
static json_t *pg_explain(exec_ctx *ctx, const char *sql, const plan_params *params, bool analyze,
                          exec_error *err)
{
    char *text = xasprintf("EXPLAIN (%sFORMAT JSON) %s", analyze ? "ANALYZE, " : "", sql);
    PGresult *res = exec_sql(ctx, text, (int)params->n, (const char *const *)params->values, err);
    free(text);
    if (!res)
        return NULL;
    json_t *all = PQntuples(res) == 1 ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    PQclear(res);
    json_t *top = json_incref(json_array_get(all, 0));
    json_decref(all);
    if (!top)
        exec_fail(err, 500, "internal_error", (ast_pos){0, 0, 0},
                  "EXPLAIN: PostgreSQL's plan could not be read");
    return top;
}

enum { MAX_SCANS = 64 };

/* The row estimate of each scan on its own (what the table or variable holds). */
static size_t scan_estimates(exec_ctx *ctx, const plan *p, json_t **tops, json_t **plans,
                             exec_error *err, bool *ok)
{
    const plan_node *scans[MAX_SCANS];
    size_t n = planner_scans(p, scans, MAX_SCANS);
    *ok = true;
    for (size_t i = 0; i < n; i++) {
        tops[i] = pg_explain(ctx, scans[i]->scan_sql, &scans[i]->scan_params, false, err);
        if (!tops[i]) {
            *ok = false;
            return i;
        }
        plans[i] = json_object_get(tops[i], "Plan");
    }
    return n;
}

json_t *explain_rows(const json_t *tree)
{
    char **lines;
    size_t n = planner_explain_lines(tree, &lines);
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(rows, json_pack("[s]", lines[i]));
        free(lines[i]);
    }
    free(lines);
    return rows;
}

double explain_mark_run(json_t *tree, const json_t *run, const struct timespec *a,
                        const struct timespec *b)
{
    json_object_set(tree, "actual_jobs", json_object_get(run, "jobs"));
    json_object_set(tree, "status", json_object_get(run, "status"));
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

void explain_jobs_result(json_t *result, const ast_explain *e, json_t *tree, json_t *rows,
                         const json_t *run, double ms, bool with_failed)
{
    if (e->json) {
        json_decref(rows);
        json_t *doc = json_pack("{s:O}", "plan", tree);
        if (run)
            json_object_set_new(doc, "execution_time_ms", json_real(ms));
        result_set(result, json_pack("[s]", "QUERY PLAN"), json_pack("[[o]]", doc));
        json_object_set(result, "plan", tree);
        return;
    }
    if (run) {
        const json_t *j = json_object_get(run, "jobs");
        char failed[48] = "";
        if (with_failed)
            snprintf(failed, sizeof failed, "%lld failed, ",
                     (long long)json_integer_value(json_object_get(j, "failed")));
        char *line = xasprintf("Jobs run: %lld of %lld (%lld from the caches, %s%lld remaining), "
                               "status %s",
                               (long long)json_integer_value(json_object_get(j, "submitted")),
                               (long long)json_integer_value(json_object_get(j, "total")),
                               (long long)json_integer_value(json_object_get(j, "cached")), failed,
                               (long long)json_integer_value(json_object_get(j, "remaining")),
                               json_string_value(json_object_get(run, "status")));
        json_array_append_new(rows, json_pack("[s]", line));
        free(line);
        line = xasprintf("Execution time: %.3f ms", ms);
        json_array_append_new(rows, json_pack("[s]", line));
        free(line);
    }
    result_set(result, json_pack("[s]", "QUERY PLAN"), rows);
}

static json_t *explain_result(const ast_explain *e, const plan *p, json_t *tree, json_t *top)
{
    json_t *result = result_new("EXPLAIN");
    json_t *planning = json_object_get(top, "Planning Time");
    json_t *execution = json_object_get(top, "Execution Time");
    if (e->json) {
        json_t *doc = json_pack("{s:O, s:s, s:I}", "plan", tree, "sql", p->sql, "parameter_count",
                                (json_int_t)p->params.n);
        if (planning)
            json_object_set(doc, "planning_time_ms", planning);
        if (execution)
            json_object_set(doc, "execution_time_ms", execution);
        result_set(result, json_pack("[s]", "QUERY PLAN"), json_pack("[[O]]", doc));
        json_object_set(result, "plan", tree);
        json_decref(doc);
    } else {
        json_t *rows = explain_rows(tree);
        char buf[96];
        if (planning) {
            snprintf(buf, sizeof buf, "Planning time: %.3f ms", json_number_value(planning));
            json_array_append_new(rows, json_pack("[s]", buf));
        }
        if (execution) {
            snprintf(buf, sizeof buf, "Execution time: %.3f ms", json_number_value(execution));
            json_array_append_new(rows, json_pack("[s]", buf));
        }
        result_set(result, json_pack("[s]", "QUERY PLAN"), rows);
    }
    for (size_t i = 0; i < p->nnotices; i++)
        result_notice(result, "%s", p->notices[i]);
    if (!e->analyze)
        result_notice(result, "EXPLAIN did not run the query; EXPLAIN ANALYZE runs it");
    return result;
}

json_t *exec_explain(exec_ctx *ctx, const ast_explain *e, exec_error *err)
{
    if (task_query_applies(e->stmt))
        return exec_task_explain(ctx, e, err);
    loaded_vars vars = {0};
    plan *p = exec_plan(ctx, e->stmt, &vars, err);
    json_t *top = p ? pg_explain(ctx, p->sql, &p->params, e->analyze, err) : NULL;
    json_t *tops[MAX_SCANS] = {0}, *plans[MAX_SCANS] = {0};
    size_t nscans = 0;
    bool ok = top != NULL;
    if (ok)
        nscans = scan_estimates(ctx, p, tops, plans, err, &ok);
    json_t *result = NULL;
    if (ok) {
        json_t *tree = planner_explain_tree(p, json_object_get(top, "Plan"), plans, nscans);
        result = explain_result(e, p, tree, top);
        json_decref(tree);
    }
    for (size_t i = 0; i < nscans; i++)
        json_decref(tops[i]);
    json_decref(top);
    plan_free(p);
    vars_free(&vars);
    return result;
}
