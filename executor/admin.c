/* SHOW, USE and PURGE. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "executor/internal.h"
#include "extensions/extensions.h"

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

/* SHOW MODELS: every model whatever its check found (a WHERE naming status replaces the
 * default filter), with the check's columns after the usual ones. */
static ast_node *models_listing(arena *a)
{
    static const char *const extra[] = {"status", "status_message", "latency_ms", "measured_on",
                                        "checked_at"};
    ast_pos pos = {0, 0, 0};
    ast_select *s = (ast_select *)listing(a, "models", "name", false, 0);
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        ast_column_ref *ref = AST_NEW(a, ast_column_ref, AST_COLUMN_REF, pos);
        ref->nparts = 1;
        ref->parts = arena_alloc(a, sizeof *ref->parts);
        ref->parts[0] = (ast_name){extra[i], pos, false};
        ast_column *col = AST_NEW(a, ast_column, AST_COLUMN, pos);
        col->expr = &ref->h;
        s->columns = ast_list_append(a, s->columns, &col->h);
        if (i == 0) {
            ast_is_null *nn = AST_NEW(a, ast_is_null, AST_IS_NULL, pos);
            nn->negated = true;
            nn->value = &ref->h;
            s->where = &nn->h;
        }
    }
    return &s->h;
}

enum { SHOW_JOBS_LIMIT = 1000 };

json_t *exec_show(exec_ctx *ctx, const ast_show *s, exec_error *err)
{
    if (s->what == SHOW_EXTENSIONS) {
        /* The strategies rankqld knows (builtins and its --extensions directory). */
        const ext_registry *reg = ext_default();
        json_t *result = result_new("SHOW");
        json_t *rows = json_array();
        for (size_t i = 0; reg && i < reg->n; i++) {
            const ext_strategy *x = &reg->items[i];
            json_array_append_new(rows, json_pack("[s,s,s,o,s,s?]", x->name, x->version,
                                                  ext_kind_name(x->kind), ext_params_json(x),
                                                  x->description, x->path));
        }
        result_set(result,
                   json_pack("[s,s,s,s,s,s]", "name", "version", "kind", "parameters",
                             "description", "path"),
                   rows);
        if (reg && !reg->dir)
            result_notice(result, "no extensions directory: only the builtin strategies "
                                  "(start rankqld with --extensions DIR)");
        for (size_t i = 0; reg && i < reg->nwarnings; i++)
            result_notice(result, "%s", reg->warnings[i]);
        return result;
    }
    arena *a = arena_new();
    ast_node *q = s->what == SHOW_MODELS   ? models_listing(a)
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
 * them is referenced by another table. feature_cache is emptied apart (see below). */
static const char *const cache_tables[] = {"proxy_results", "finetune_results",
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

/* Feature rows go, except those of embed jobs that an unfinished job still depends on
 * (those jobs are kept below, and their dependents read the files). */
static const char delete_features[] =
    "DELETE FROM feature_cache f WHERE NOT EXISTS ("
    "  SELECT 1 FROM jobs e JOIN job_deps d ON d.depends_on = e.id JOIN jobs w ON w.id = d.job_id"
    "  WHERE e.hash = f.hash AND w.status IN ('queued', 'running'))";

/* Finished jobs go too, except those an unfinished job still depends on (deleting a
 * failed dependency would make its dependent look ready). */
static const char delete_finished_jobs[] =
    "DELETE FROM jobs j WHERE j.status IN ('done', 'failed', 'cancelled') "
    "AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs w ON w.id = d.job_id "
    "                WHERE d.depends_on = j.id AND w.status IN ('queued', 'running'))";

/* The feature files still wanted after the purge: those of the remaining feature_cache
 * rows, and the (temporary) files of unfinished jobs. */
static const char kept_hashes[] =
    "SELECT hash FROM feature_cache UNION SELECT hash FROM jobs "
    "WHERE status IN ('queued', 'running') ORDER BY 1";

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int cmp_hash(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What one features/<2 hex>/ entry is: a feature file "<64 hex>.rqf" (or its temporary
 * "<64 hex>.rqf.tmp…") named after hash, another temporary file "*.tmp*" (hash ""), or
 * something PURGE leaves alone (false). */
static bool purgeable(const char *dir2, const char *name, char hash[65])
{
    size_t n = strlen(name);
    hash[0] = '\0';
    if (n >= 68 && is_hex(name, 64) && strncmp(name, dir2, 2) == 0 &&
        strncmp(name + 64, ".rqf", 4) == 0 && (n == 68 || strncmp(name + 68, ".tmp", 4) == 0)) {
        memcpy(hash, name, 64);
        hash[64] = '\0';
        return true;
    }
    return strstr(name, ".tmp") != NULL;
}

static bool newer(const struct stat *st, const struct timespec *t0)
{
    return st->st_mtim.tv_sec > t0->tv_sec ||
           (st->st_mtim.tv_sec == t0->tv_sec && st->st_mtim.tv_nsec >= t0->tv_nsec);
}

/* Deletes the feature files (and temporary files) under data_dir/features that no kept
 * hash names and that were last written before t0. Returns the number deleted; *failed
 * counts those that could not be. */
static long delete_feature_files(const char *data_dir, char **kept, size_t nkept,
                                 const struct timespec *t0, long *failed)
{
    char *root = xasprintf("%s/features", data_dir);
    DIR *top = opendir(root);
    long deleted = 0;
    struct dirent *d;
    while (top && (d = readdir(top)) != NULL) {
        if (strlen(d->d_name) != 2 || !is_hex(d->d_name, 2))
            continue;
        char *sub = xasprintf("%s/%s", root, d->d_name);
        DIR *dir = opendir(sub);
        struct dirent *f;
        while (dir && (f = readdir(dir)) != NULL) {
            char hash[65];
            if (!purgeable(d->d_name, f->d_name, hash))
                continue;
            const char *key = hash;
            if (hash[0] && bsearch(&key, kept, nkept, sizeof *kept, cmp_hash))
                continue;
            char *path = xasprintf("%s/%s", sub, f->d_name);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && !newer(&st, t0)) {
                if (unlink(path) == 0)
                    deleted++;
                else if (errno != ENOENT)
                    (*failed)++;
            }
            free(path);
        }
        if (dir)
            closedir(dir);
        free(sub);
    }
    if (top)
        closedir(top);
    free(root);
    return deleted;
}

/* After the rows are committed (executor_run calls it then, so a rolled-back PURGE keeps
 * its files): the files of what is no longer cached. A failure only costs disk space, so
 * it becomes a notice. */
void exec_purge_files(exec_ctx *ctx, json_t *result)
{
    long files = 0, failed = 0;
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    exec_error err = {0};
    PGresult *res = ctx->data_dir ? exec_sql(ctx, kept_hashes, 0, NULL, &err) : NULL;
    if (res) {
        size_t n = (size_t)PQntuples(res);
        char **kept = xcalloc(n ? n : 1, sizeof *kept);
        for (size_t i = 0; i < n; i++)
            kept[i] = xstrdup(PQgetvalue(res, (int)i, 0));
        PQclear(res);
        qsort(kept, n, sizeof *kept, cmp_hash); /* bytewise, whatever the collation */
        files = delete_feature_files(ctx->data_dir, kept, n, &t0, &failed);
        for (size_t i = 0; i < n; i++)
            free(kept[i]);
        free(kept);
    } else if (ctx->data_dir) {
        result_notice(result, "feature files were not deleted: %s", err.message);
    }
    if (failed)
        result_notice(result, "%ld feature files under %s/features could not be deleted", failed,
                      ctx->data_dir);
    json_array_append_new(json_object_get(result, "rows"),
                          json_pack("[s,I]", "feature files", (json_int_t)files));
    json_object_set_new(result, "row_count",
                        json_integer((json_int_t)json_array_size(json_object_get(result, "rows"))));
}

json_t *exec_purge(exec_ctx *ctx, const ast_purge *p, exec_error *err)
{
    (void)p;
    json_t *rows = json_array();
    long count;
    if ((count = exec_cmd(ctx, delete_features, 0, NULL, err)) < 0) {
        json_decref(rows);
        return NULL;
    }
    json_array_append_new(rows, json_pack("[s,I]", "feature_cache", (json_int_t)count));
    for (size_t i = 0; cache_tables[i]; i++) {
        if (!count_rows(ctx, cache_tables[i], &count, err)) {
            json_decref(rows);
            return NULL;
        }
        json_array_append_new(rows, json_pack("[s,I]", cache_tables[i], (json_int_t)count));
    }
    if (exec_cmd(ctx, "TRUNCATE proxy_results, finetune_results, strategy_results, "
                      "dataset_similarity", 0, NULL, err) < 0 ||
        (count = exec_cmd(ctx, delete_finished_jobs, 0, NULL, err)) < 0) {
        json_decref(rows);
        return NULL;
    }
    json_array_append_new(rows, json_pack("[s,I]", "jobs (finished)", (json_int_t)count));
    /* Rankings whose jobs are all gone have nothing left to CANCEL QUERY. */
    if (exec_cmd(ctx, "DELETE FROM queries q WHERE NOT EXISTS "
                      "(SELECT 1 FROM query_jobs j WHERE j.query_id = q.id)", 0, NULL, err) < 0) {
        json_decref(rows);
        return NULL;
    }
    json_t *result = result_new("PURGE");
    result_set(result, json_pack("[s,s]", "table", "deleted"), rows);
    result_notice(result, "caches emptied; the catalog (models, datasets), unfinished jobs and "
                  "the features they need are kept");
    return result;
}
