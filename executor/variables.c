/* Session variables: DECLARE v AS query, PRINT v, PRINT *, and loading the variables a
 * query reads (FROM v, OTHER THAN v) for the planner.
 *
 * A variable is one row of session_variables whose value is
 *   {"table": "image_models", "entity": "models", "ids": [3, 1, …],
 *    "columns": [...], "rows": [[...], …]}
 * ids (in the query's order) are what FROM v and OTHER THAN v use: they read the live
 * catalog rows with those ids. columns/rows are the result as it was when declared,
 * which PRINT shows. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/internal.h"

bool session_require(exec_ctx *ctx, ast_pos pos, exec_error *err)
{
    if (!ctx->session_id)
        return exec_failb(err, 400, "semantic_error", pos,
                          "this statement needs a session (variables live in a session)");
    if (!text_is_uuid(ctx->session_id))
        return exec_failb(err, 404, "not_found", pos, "unknown session");
    const char *params[] = {ctx->session_id};
    PGresult *res = exec_sql(ctx, "SELECT 1 FROM sessions WHERE id = $1::uuid", 1, params, err);
    if (!res)
        return false;
    bool found = PQntuples(res) == 1;
    PQclear(res);
    return found ? true : exec_failb(err, 404, "not_found", pos, "unknown session %s", ctx->session_id);
}

json_t *var_fetch(exec_ctx *ctx, const char *name, exec_error *err, bool *failed)
{
    *failed = false;
    if (!ctx->session_id || !text_is_uuid(ctx->session_id))
        return NULL;
    const char *params[] = {ctx->session_id, name};
    PGresult *res = exec_sql(ctx,
                             "SELECT value FROM session_variables "
                             "WHERE session_id = $1::uuid AND name = $2",
                             2, params, err);
    if (!res) {
        *failed = true;
        return NULL;
    }
    json_t *value = NULL;
    if (PQntuples(res) == 1)
        value = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    return value;
}

/* A stored value → plan_var (false when it is not a variable this version wrote). */
static bool var_from_value(const char *name, json_t *value, plan_var *out)
{
    plan_table t;
    const char *table = json_string_value(json_object_get(value, "table"));
    json_t *ids = json_object_get(value, "ids");
    if (!table || !planner_table_lookup(table, &t) || !json_is_array(ids))
        return false;
    int64_t *v = xcalloc(json_array_size(ids) + 1, sizeof *v);
    for (size_t i = 0; i < json_array_size(ids); i++)
        v[i] = (int64_t)json_integer_value(json_array_get(ids, i));
    out->name = xstrdup(name);
    out->table = t;
    out->nids = json_array_size(ids);
    out->ids = v;
    return true;
}

enum { MAX_VARS_PER_QUERY = 64 };

bool vars_load(exec_ctx *ctx, const ast_node *query, loaded_vars *out, exec_error *err)
{
    const ast_name *names[MAX_VARS_PER_QUERY];
    size_t n = planner_referenced_vars(query, names, MAX_VARS_PER_QUERY);
    out->n = 0;
    out->vars = xcalloc(n + 1, sizeof *out->vars);
    for (size_t i = 0; i < n; i++) {
        bool failed;
        json_t *value = var_fetch(ctx, names[i]->text, err, &failed);
        if (failed)
            return false;
        if (value && var_from_value(names[i]->text, value, &out->vars[out->n]))
            out->n++;
        json_decref(value);
    }
    return true;
}

void vars_free(loaded_vars *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free((char *)v->vars[i].name);
        free((int64_t *)v->vars[i].ids);
    }
    free(v->vars);
    v->vars = NULL;
    v->n = 0;
}

/* ---- DECLARE -------------------------------------------------------------------------- */

static json_t *declare_value(const plan *p, json_t *ids, json_t *rows)
{
    json_t *columns = json_array();
    for (size_t i = 0; i < p->ncolumns; i++)
        json_array_append_new(columns, json_string(p->columns[i]));
    return json_pack("{s:s, s:s, s:O, s:o, s:O}", "table", planner_table_name(p->table), "entity",
                     planner_entity_name(p->entity), "ids", ids, "columns", columns, "rows", rows);
}

static bool store_var(exec_ctx *ctx, const char *name, json_t *value, exec_error *err)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_REAL_PRECISION(15));
    const char *params[] = {ctx->session_id, name, text};
    long n = exec_cmd(ctx,
                      "INSERT INTO session_variables (session_id, name, value) "
                      "VALUES ($1::uuid, $2, $3::jsonb) "
                      "ON CONFLICT (session_id, name) DO UPDATE SET value = EXCLUDED.value",
                      3, params, err);
    free(text);
    return n >= 0;
}

static void copy_notices(json_t *result, const plan *p)
{
    for (size_t i = 0; i < p->nnotices; i++)
        result_notice(result, "%s", p->notices[i]);
}

json_t *exec_declare(exec_ctx *ctx, const ast_declare *d, exec_error *err)
{
    if (planner_name_reserved(d->name.text))
        return exec_fail(err, 400, "semantic_error", d->name.pos,
                         "\"%s\" is a reserved name (a table name, or SHiFT's query_type, response, "
                         "remaining_tasks): choose another",
                         d->name.text);
    if (strlen(d->name.text) > 128)
        return exec_fail(err, 400, "semantic_error", d->name.pos,
                         "variable names are at most 128 bytes");
    if (!session_require(ctx, d->h.pos, err))
        return NULL;
    loaded_vars vars = {0};
    plan *p = exec_plan(ctx, d->query, &vars, err);
    json_t *result = NULL, *ids = NULL, *rows = NULL;
    if (p && !p->has_id) {
        exec_fail(err, 400, "semantic_error", d->query->pos,
                  "DECLARE keeps rows by identity, so its query cannot use DISTINCT");
    } else if (p && (rows = exec_run_plan(ctx, p, &ids, err))) {
        json_t *value = declare_value(p, ids, rows);
        if (store_var(ctx, d->name.text, value, err)) {
            result = result_new("DECLARE");
            json_object_set_new(result, "variable", json_string(d->name.text));
            copy_notices(result, p);
            size_t n = json_array_size(ids);
            result_notice(result, "%s: %zu %s", d->name.text, n,
                          n == 1 ? (p->entity == ENTITY_MODELS ? "model"
                                    : p->entity == ENTITY_DATASETS ? "dataset" : "job")
                                 : planner_entity_name(p->entity));
        }
        json_decref(value);
    }
    json_decref(ids);
    json_decref(rows);
    plan_free(p);
    vars_free(&vars);
    return result;
}

/* ---- PRINT ---------------------------------------------------------------------------- */

static json_t *print_one(exec_ctx *ctx, const ast_print *p, exec_error *err)
{
    bool failed;
    json_t *value = var_fetch(ctx, p->name.text, err, &failed);
    if (failed)
        return NULL;
    if (!value)
        return exec_fail(err, 400, "semantic_error", p->name.pos, "unknown variable \"%s\"",
                         p->name.text);
    json_t *result = result_new("PRINT");
    json_object_set_new(result, "variable", json_string(p->name.text));
    json_object_set(result, "table", json_object_get(value, "table"));
    json_t *columns = json_object_get(value, "columns"), *rows = json_object_get(value, "rows");
    result_set(result, json_is_array(columns) ? json_incref(columns) : json_array(),
               json_is_array(rows) ? json_incref(rows) : json_array());
    json_decref(value);
    return result;
}

/* The "name" column of a stored result, as a list. */
static json_t *stored_names(json_t *value)
{
    json_t *names = json_array(), *columns = json_object_get(value, "columns");
    size_t idx = (size_t)-1, i;
    json_t *c, *row;
    json_array_foreach(columns, i, c)
    {
        if (idx == (size_t)-1 && json_is_string(c) && strcmp(json_string_value(c), "name") == 0)
            idx = i;
    }
    if (idx == (size_t)-1)
        return names;
    json_array_foreach(json_object_get(value, "rows"), i, row)
        json_array_append(names, json_array_get(row, idx));
    return names;
}

static json_t *print_all(exec_ctx *ctx, exec_error *err)
{
    json_t *result = result_new("PRINT");
    json_t *columns = json_pack("[s,s,s,s]", "variable", "table", "row_count", "names");
    json_t *rows = json_array();
    if (ctx->session_id) {
        const char *params[] = {ctx->session_id};
        PGresult *res = exec_sql(ctx,
                                 "SELECT name, value::text FROM session_variables "
                                 "WHERE session_id = $1::uuid ORDER BY name",
                                 1, params, err);
        if (!res) {
            json_decref(result);
            json_decref(columns);
            json_decref(rows);
            return NULL;
        }
        for (int r = 0; r < PQntuples(res); r++) {
            json_t *value = json_loads(PQgetvalue(res, r, 1), 0, NULL);
            json_t *table = json_object_get(value, "table");
            json_array_append_new(rows, json_pack("[s,O,I,o]", PQgetvalue(res, r, 0),
                                                  table ? table : json_null(),
                                                  (json_int_t)json_array_size(json_object_get(value, "ids")),
                                                  stored_names(value)));
            json_decref(value);
        }
        PQclear(res);
    }
    if (json_array_size(rows) == 0)
        result_notice(result, "no variables are declared in this session");
    result_set(result, columns, rows);
    return result;
}

json_t *exec_print(exec_ctx *ctx, const ast_print *p, exec_error *err)
{
    if (p->all)
        return print_all(ctx, err);
    if (ctx->session_id && !text_is_uuid(ctx->session_id))
        return exec_fail(err, 404, "not_found", p->h.pos, "unknown session");
    return print_one(ctx, p, err);
}
