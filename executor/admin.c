/* SHOW, USE and PURGE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/internal.h"

/* ---- SHOW ----------------------------------------------------------------------------- */

/* SELECT * FROM table ORDER BY key [DESC] [LIMIT n], built as an AST so SHOW goes through
 * the same planner as a query. */
static ast_node *listing(arena *a, const char *table, const char *key, bool desc, int64_t limit)
{
    ast_pos pos = {0, 0, 0};
    ast_select *s = AST_NEW(a, ast_select, AST_SELECT, pos);
    ast_column *col = AST_NEW(a, ast_column, AST_COLUMN, pos);
    col->expr = &AST_NEW(a, ast_star, AST_STAR, pos)->h;
    s->columns = ast_list_append(a, NULL, &col->h);
    s->from = (ast_name){table, pos, false};
    ast_column_ref *ref = AST_NEW(a, ast_column_ref, AST_COLUMN_REF, pos);
    ref->nparts = 1;
    ref->parts = arena_alloc(a, sizeof *ref->parts);
    ref->parts[0] = (ast_name){key, pos, false};
    ast_order_item *o = AST_NEW(a, ast_order_item, AST_ORDER_ITEM, pos);
    o->key = &ref->h;
    o->desc = desc;
    s->order_by = ast_list_append(a, NULL, &o->h);
    s->has_limit = limit > 0;
    s->limit = limit;
    return &s->h;
}

enum { SHOW_JOBS_LIMIT = 1000 };

json_t *exec_show(exec_ctx *ctx, const ast_show *s, exec_error *err)
{
    if (s->what == SHOW_EXTENSIONS) {
        json_t *result = result_new("SHOW");
        result_set(result, json_pack("[s,s,s]", "name", "version", "parameters"), json_array());
        result_notice(result, "no extensions: strategy plugins are not implemented yet");
        return result;
    }
    arena *a = arena_new();
    ast_node *q = s->what == SHOW_MODELS   ? listing(a, "models", "name", false, 0)
                  : s->what == SHOW_DATASETS ? listing(a, "datasets", "name", false, 0)
                                             : listing(a, "jobs", "id", true, SHOW_JOBS_LIMIT);
    json_t *result = exec_query(ctx, q, err);
    arena_free(a);
    if (!result)
        return NULL;
    json_object_set_new(result, "statement", json_string("SHOW"));
    if (s->what == SHOW_JOBS &&
        json_integer_value(json_object_get(result, "row_count")) == SHOW_JOBS_LIMIT)
        result_notice(result, "showing the newest %d jobs; SELECT … FROM jobs WHERE … finds others",
                      SHOW_JOBS_LIMIT);
    return result;
}

/* ---- USE ------------------------------------------------------------------------------ */

json_t *exec_use(exec_ctx *ctx, const ast_use *u, exec_error *err)
{
    (void)ctx;
    (void)err;
    json_t *result = result_new("USE");
    json_object_set_new(result, "target", json_string(u->target.text));
    result_notice(result,
                  "USE is a client-side statement: the rankql shell switches to \"%.200s\"; the "
                  "server ignores it",
                  u->target.text);
    return result;
}

/* ---- PURGE ---------------------------------------------------------------------------- */

/* The caches PURGE empties, in an order that respects nothing but readability: none of
 * them is referenced by another table. */
static const char *const cache_tables[] = {"feature_cache", "proxy_results", "finetune_results",
                                           "strategy_results", "dataset_similarity", NULL};

static bool count_rows(exec_ctx *ctx, const char *table, long *count, exec_error *err)
{
    char *sql = xasprintf("SELECT count(*) FROM %s", table); /* table: from the list above */
    PGresult *res = exec_sql(ctx, sql, 0, NULL, err);
    free(sql);
    if (!res)
        return false;
    *count = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return true;
}

/* Finished jobs go too, except those an unfinished job still depends on (deleting a
 * failed dependency would make its dependent look ready). */
static const char delete_finished_jobs[] =
    "DELETE FROM jobs j WHERE j.status IN ('done', 'failed', 'cancelled') "
    "AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs w ON w.id = d.job_id "
    "                WHERE d.depends_on = j.id AND w.status IN ('queued', 'running'))";

json_t *exec_purge(exec_ctx *ctx, const ast_purge *p, exec_error *err)
{
    (void)p;
    json_t *rows = json_array();
    long count;
    for (size_t i = 0; cache_tables[i]; i++) {
        if (!count_rows(ctx, cache_tables[i], &count, err)) {
            json_decref(rows);
            return NULL;
        }
        json_array_append_new(rows, json_pack("[s,I]", cache_tables[i], (json_int_t)count));
    }
    if (exec_cmd(ctx,
                 "TRUNCATE feature_cache, proxy_results, finetune_results, strategy_results, "
                 "dataset_similarity",
                 0, NULL, err) < 0 ||
        (count = exec_cmd(ctx, delete_finished_jobs, 0, NULL, err)) < 0) {
        json_decref(rows);
        return NULL;
    }
    json_array_append_new(rows, json_pack("[s,I]", "jobs (finished)", (json_int_t)count));
    json_t *result = result_new("PURGE");
    result_set(result, json_pack("[s,s]", "table", "deleted"), rows);
    result_notice(result, "caches emptied; the catalog (models, datasets) and unfinished jobs are kept");
    return result;
}
