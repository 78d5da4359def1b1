/* Dataset similarity: SELECT vec FROM <datasets> WHERE probe = <model> [AND …] [WAIT]
 * (docs/language.md "Dataset similarity"). Every dataset gets the probe's embed job and a
 * similarity job that turns the features into the dataset's embedding (similarity.h),
 * cached per (method, probe, dataset) in dataset_similarity; the pairwise distance matrix
 * is computed here from the stored embeddings, so a new dataset costs one embedding. While
 * jobs run, the entries of datasets without an embedding are null, in their own row and
 * column (SHiFT built the matrix over the finished embeddings only and misaligned it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/util.h"
#include "executor/similarity.h"
#include "executor/task.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/similarity.h"
#include "planner/cost.h"

/* ---- recognising the statement ------------------------------------------------------- */

static bool is_word(const ast_node *n, const char *word)
{
    return n && n->kind == AST_COLUMN_REF && ((const ast_column_ref *)n)->nparts == 1 &&
           strcasecmp(((const ast_column_ref *)n)->parts[0].text, word) == 0;
}

static bool mentions_probe(const ast_node *n)
{
    if (!n)
        return false;
    if (is_word(n, "probe"))
        return true;
    if (n->kind == AST_BINARY)
        return mentions_probe(((const ast_binary *)n)->left) ||
               mentions_probe(((const ast_binary *)n)->right);
    if (n->kind == AST_UNARY)
        return mentions_probe(((const ast_unary *)n)->operand);
    return false;
}

bool similarity_query_applies(const ast_node *query)
{
    if (!query || query->kind != AST_SELECT)
        return false;
    const ast_select *s = (const ast_select *)query;
    if (s->is_rank || !s->columns || s->columns->n != 1)
        return false;
    const ast_column *c = (const ast_column *)s->columns->items[0];
    return is_word(c->expr, "vec") && mentions_probe(s->where);
}

/* Splits WHERE into `probe = v` (one, in the top-level AND chain) and the rest, which
 * filters the datasets. */
static bool split_where(arena *a, const ast_node *n, const ast_node **probe, ast_node **rest,
                        exec_error *err)
{
    if (n->kind == AST_BINARY) {
        const ast_binary *b = (const ast_binary *)n;
        if (b->op == OP_AND) {
            ast_node *l = NULL, *r = NULL;
            if (!split_where(a, b->left, probe, &l, err) ||
                !split_where(a, b->right, probe, &r, err))
                return false;
            if (l && r) {
                ast_binary *both = AST_NEW(a, ast_binary, AST_BINARY, n->pos);
                both->op = OP_AND;
                both->left = l;
                both->right = r;
                *rest = &both->h;
            } else {
                *rest = l ? l : r;
            }
            return true;
        }
        if (b->op == OP_EQ && (is_word(b->left, "probe") || is_word(b->right, "probe"))) {
            if (*probe)
                return exec_failb(err, 400, "semantic_error", n->pos,
                                  "SELECT vec takes one probe: `probe = …` appears twice");
            *probe = is_word(b->left, "probe") ? b->right : b->left;
            *rest = NULL;
            return true;
        }
    }
    if (mentions_probe(n))
        return exec_failb(err, 400, "semantic_error", n->pos,
                          "probe must be compared with = and joined to the other conditions "
                          "by AND: WHERE probe = model_var [AND …]");
    *rest = (ast_node *)n;
    return true;
}

/* ---- the probe ------------------------------------------------------------------------ */

typedef struct probe_use {
    int64_t id;
    char *name;
    json_t *obj; /* as rankings name a model in embed jobs, so the features are shared */
} probe_use;

/* `probe = v`: a variable of models (its first, as in SHiFT), else a model named v; a
 * string literal names a model. */
static bool resolve_probe(exec_ctx *ctx, const ast_node *v, probe_use *out, json_t *result,
                          exec_error *err)
{
    const char *name = NULL;
    if (v->kind == AST_COLUMN_REF && ((const ast_column_ref *)v)->nparts == 1)
        name = ((const ast_column_ref *)v)->parts[0].text;
    else if (v->kind == AST_LITERAL && ((const ast_literal *)v)->type == LIT_STRING)
        name = ((const ast_literal *)v)->str;
    if (!name)
        return exec_failb(err, 400, "semantic_error", v->pos,
                          "probe = …: expected a variable of models or a model name");
    char idtext[32] = "";
    if (v->kind == AST_COLUMN_REF) {
        bool failed = false;
        json_t *var = var_fetch(ctx, name, err, &failed);
        if (failed)
            return false;
        if (var) {
            const char *table = json_string_value(json_object_get(var, "table"));
            json_t *ids = json_object_get(var, "ids");
            bool models = table && strstr(table, "models") != NULL;
            if (!models || json_array_size(ids) == 0) {
                json_decref(var);
                return exec_failb(err, 400, "semantic_error", v->pos,
                                  "probe variable \"%s\" holds %s: it must hold a model", name,
                                  models ? "no models" : table ? table : "nothing");
            }
            if (json_array_size(ids) > 1)
                result_notice(result, "probe variable \"%s\" holds %zu models: the first is the "
                                      "probe",
                              name, json_array_size(ids));
            snprintf(idtext, sizeof idtext, "%lld",
                     (long long)json_integer_value(json_array_get(ids, 0)));
            json_decref(var);
        }
    }
    const char *params[] = {idtext[0] ? idtext : NULL, name};
    PGresult *res = exec_sql(ctx,
                             TASK_MODEL_SELECT "WHERE CASE WHEN $1::bigint IS NULL THEN name = $2 "
                             "ELSE id = $1::bigint END",
                             2, params, err);
    if (!res)
        return false;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return exec_failb(err, 404, "not_found", v->pos,
                          "probe: no model%s named \"%s\" (DECLARE a variable of models, or "
                          "name a registered model)",
                          v->kind == AST_COLUMN_REF ? " or variable" : "", name);
    }
    const char *runner = PQgetvalue(res, 0, 2);
    bool needs_fit;
    json_t *obj = task_model_obj(res, 0, &needs_fit);
    out->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->name = xstrdup(PQgetvalue(res, 0, 1));
    bool ok = true;
    if (strcmp(runner, "builtin") != 0 && strcmp(runner, "onnx") != 0 &&
        strcmp(runner, "exec") != 0 && strcmp(runner, "noop") != 0)
        ok = exec_failb(err, 400, "semantic_error", v->pos,
                        "probe \"%s\" has runner %s, which cannot embed on this server (builtin, "
                        "onnx, exec and noop can)",
                        out->name, runner);
    else if (needs_fit)
        ok = exec_failb(err, 400, "semantic_error", v->pos,
                        "probe \"%s\" is fitted on each query's training data (%s): a probe "
                        "must embed every dataset the same way; choose a fixed extractor",
                        out->name,
                        json_string_value(json_object_get(json_object_get(obj, "spec"),
                                                          "extractor")));
    if (ok)
        out->obj = obj;
    else
        json_decref(obj);
    PQclear(res);
    return ok;
}

/* ---- the datasets --------------------------------------------------------------------- */

/* FROM and the WHERE conditions other than probe, planned like any catalog query; then
 * the datasets rankql can read (files, not labels-only), each once. */
static bool resolve_datasets(exec_ctx *ctx, const ast_select *s, ast_node *rest,
                             dataset_list *out, json_t *result, exec_error *err)
{
    arena *a = arena_new();
    ast_select *c = AST_NEW(a, ast_select, AST_SELECT, s->h.pos);
    ast_column *col = AST_NEW(a, ast_column, AST_COLUMN, s->h.pos);
    ast_column_ref *ref = AST_NEW(a, ast_column_ref, AST_COLUMN_REF, s->h.pos);
    ref->nparts = 1;
    ref->parts = arena_alloc(a, sizeof *ref->parts);
    ref->parts[0].text = "name";
    col->expr = &ref->h;
    c->columns = ast_list_append(a, NULL, &col->h);
    c->from = s->from;
    c->where = rest;
    c->other_than = s->other_than;
    c->order_by = s->order_by;
    c->has_limit = s->has_limit;
    c->limit = s->limit;
    loaded_vars vars = {0};
    plan *p = exec_plan(ctx, &c->h, &vars, err);
    json_t *ids = NULL;
    json_t *rows = p ? exec_run_plan(ctx, p, &ids, err) : NULL;
    bool ok = rows != NULL;
    if (ok && (p->entity != ENTITY_DATASETS || !p->has_id))
        ok = exec_failb(err, 400, "semantic_error", s->h.pos,
                        "SELECT vec compares datasets: FROM %s holds %s", s->from.text,
                        planner_entity_name(p->entity));
    char *idtext = ok ? json_dumps(ids, JSON_COMPACT) : NULL;
    PGresult *res = NULL;
    if (ok) {
        /* What the readers can embed; the rest is named in a notice. */
        const char *params[] = {idtext};
        res = exec_sql(ctx,
                       "SELECT coalesce(json_agg(id ORDER BY array_position(v.ids, id)) FILTER "
                       "(WHERE readable), '[]')::text, string_agg(name, ', ' ORDER BY "
                       "array_position(v.ids, id)) FILTER (WHERE NOT readable), "
                       "count(*) FILTER (WHERE NOT readable) "
                       "FROM (SELECT translate($1, '[]', '{}')::bigint[] AS ids) v, "
                       "LATERAL (SELECT id, name, format IN ('idx', 'csv', 'npy', 'npz', "
                       "'imagefolder', 'text') AND coalesce(spec->>'labels_only', 'false') "
                       "<> 'true' AS readable FROM datasets WHERE id = ANY (v.ids)) d",
                       1, params, err);
        ok = res != NULL;
    }
    if (ok && PQntuples(res) == 1) {
        long skipped = strtol(PQgetvalue(res, 0, 2), NULL, 10);
        if (skipped)
            result_notice(result,
                          "%ld dataset%s skipped: not a file rankql reads, or labels only (%s)",
                          skipped, skipped == 1 ? "" : "s", PQgetvalue(res, 0, 1));
        ok = task_resolve_dataset_ids(ctx, PQgetvalue(res, 0, 0), out, NULL, err);
    }
    PQclear(res);
    free(idtext);
    json_decref(ids);
    json_decref(rows);
    plan_free(p);
    vars_free(&vars);
    arena_free(a);
    return ok;
}

/* ---- the plan ------------------------------------------------------------------------- */

typedef struct sim {
    const ast_select *s;
    probe_use probe;
    dataset_list data;
    job_set jobs;
    size_t *embed_job, *sim_job; /* per dataset */
} sim;

static void sim_free(sim *q)
{
    free(q->probe.name);
    json_decref(q->probe.obj);
    task_dataset_list_free(&q->data);
    task_job_set_free(&q->jobs);
    free(q->embed_job);
    free(q->sim_job);
}

static const char *ds_name(const sim *q, size_t i)
{
    return json_string_value(json_object_get(q->data.items[i].obj, "name"));
}

static bool sim_plan(exec_ctx *ctx, sim *q, json_t *result, exec_error *err)
{
    const ast_select *s = q->s;
    arena *a = arena_new();
    const ast_node *probe = NULL;
    ast_node *rest = NULL;
    bool ok = split_where(a, s->where, &probe, &rest, err);
    if (ok && (s->trained_on || s->tested_on || s->classifiers || s->chunk.present ||
               s->budget.present || s->distinct))
        ok = exec_failb(err, 400, "semantic_error", s->h.pos,
                        "SELECT vec takes FROM, WHERE probe = … [AND …], ORDER BY, LIMIT and "
                        "WAIT only");
    ok = ok && resolve_probe(ctx, probe, &q->probe, result, err) &&
         resolve_datasets(ctx, s, rest, &q->data, result, err);
    arena_free(a);
    if (!ok)
        return false;
    q->embed_job = xcalloc(q->data.n + 1, sizeof *q->embed_job);
    q->sim_job = xcalloc(q->data.n + 1, sizeof *q->sim_job);
    for (size_t i = 0; i < q->data.n; i++) {
        const json_t *d = q->data.items[i].obj;
        size_t e = task_job_set_add(&q->jobs, "embed",
                                    json_pack("{s:O, s:O, s:n}", "model", q->probe.obj,
                                              "dataset", d, "fit"));
        json_t *payload = json_pack(
            "{s:s, s:{s:I, s:s}, s:{s:O, s:O}, s:s}", "method", SIMILARITY_METHOD, "probe",
            "id", (json_int_t)q->probe.id, "name", q->probe.name, "dataset", "id",
            json_object_get(d, "id"), "name", json_object_get(d, "name"), "features",
            q->jobs.items[e].hash);
        size_t j = task_job_set_add(&q->jobs, "similarity", payload);
        task_job_add_dep(&q->jobs, j, e);
        q->embed_job[i] = e;
        q->sim_job[i] = j;
    }
    if (!task_mark_cached(ctx, &q->jobs, "embed", "feature_cache", err) ||
        !task_forget_missing_features(ctx, &q->jobs, err) ||
        !task_mark_cached(ctx, &q->jobs, "similarity", "dataset_similarity", err))
        return false;
    /* An embedding only a known vector needed counts as cached. */
    for (size_t i = 0; i < q->data.n; i++)
        if (q->jobs.items[q->sim_job[i]].cached)
            q->jobs.items[q->embed_job[i]].cached = true;
    return true;
}

/* ---- the matrix ----------------------------------------------------------------------- */

/* "{1,2.5,-3}" (PostgreSQL's real[] text) → floats; NULL when malformed. */
static float *parse_real_array(const char *text, size_t *n)
{
    *n = 0;
    if (*text++ != '{')
        return NULL;
    size_t cap = 64;
    float *v = xmalloc(cap * sizeof *v);
    while (*text && *text != '}') {
        char *end;
        double x = strtod(text, &end);
        if (end == text) {
            free(v);
            return NULL;
        }
        if (*n == cap)
            v = xrealloc(v, (cap *= 2) * sizeof *v);
        v[(*n)++] = (float)x;
        text = *end == ',' ? end + 1 : end;
    }
    return v;
}

/* The stored vectors (NULL where unknown) and why a job failed. */
static bool load_vectors(exec_ctx *ctx, const sim *q, float **vecs, size_t *lens, char **errors,
                         exec_error *err)
{
    json_t *hashes = json_array();
    for (size_t i = 0; i < q->data.n; i++)
        json_array_append_new(hashes, json_string(q->jobs.items[q->sim_job[i]].hash));
    char *text = json_dumps(hashes, JSON_COMPACT);
    json_decref(hashes);
    const char *params[] = {text};
    PGresult *res = exec_sql(ctx,
                             "SELECT h, r.vec::text, j.status, j.error FROM "
                             "jsonb_array_elements_text($1::jsonb) AS h "
                             "LEFT JOIN dataset_similarity r ON r.hash = h "
                             "LEFT JOIN jobs j ON j.hash = h",
                             1, params, err);
    free(text);
    if (!res)
        return false;
    for (int r = 0; r < PQntuples(res); r++)
        for (size_t i = 0; i < q->data.n; i++) {
            if (strcmp(q->jobs.items[q->sim_job[i]].hash, PQgetvalue(res, r, 0)) != 0)
                continue;
            if (!PQgetisnull(res, r, 1) && !vecs[i]) {
                vecs[i] = parse_real_array(PQgetvalue(res, r, 1), &lens[i]);
                if (vecs[i] && (lens[i] == 0 || lens[i] % 2)) {
                    free(vecs[i]);
                    vecs[i] = NULL;
                }
            } else if (PQgetisnull(res, r, 1) && !PQgetisnull(res, r, 2) && !errors[i] &&
                       (strcmp(PQgetvalue(res, r, 2), "failed") == 0 ||
                        strcmp(PQgetvalue(res, r, 2), "cancelled") == 0)) {
                errors[i] = xstrdup(PQgetisnull(res, r, 3) ? PQgetvalue(res, r, 2)
                                                           : PQgetvalue(res, r, 3));
            }
        }
    PQclear(res);
    return true;
}

static void assemble(const sim *q, float **vecs, const size_t *lens, char **errors,
                     json_t *result)
{
    size_t n = q->data.n;
    json_t *cols = json_array(), *rows = json_array(), *names = json_array(),
           *known = json_array(), *failures = json_array();
    json_array_append_new(cols, json_string("dataset"));
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(cols, json_string(ds_name(q, i)));
        json_array_append_new(names, json_string(ds_name(q, i)));
        json_array_append_new(known, json_boolean(vecs[i] != NULL));
    }
    bool mismatch = false;
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array();
        json_array_append_new(row, json_string(ds_name(q, i)));
        for (size_t j = 0; j < n; j++) {
            if (!vecs[i] || !vecs[j]) {
                json_array_append_new(row, json_null());
            } else if (lens[i] != lens[j]) {
                mismatch = true; /* a runner whose dimension depends on the data */
                json_array_append_new(row, json_null());
            } else {
                json_array_append_new(row, json_real(i == j ? 0.0
                                                            : similarity_w2(vecs[i], vecs[j],
                                                                            lens[i] / 2)));
            }
        }
        json_array_append_new(rows, row);
        if (errors[i]) {
            json_array_append_new(failures, json_pack("{s:s, s:s}", "dataset", ds_name(q, i),
                                                      "error", errors[i]));
            result_notice(result, "dataset %s failed: %s", ds_name(q, i), errors[i]);
        }
    }
    if (mismatch)
        result_notice(result, "the probe gave features of different dimensions on some "
                              "datasets: their distances are null");
    result_set(result, cols, rows);
    json_object_set_new(result, "similarity",
                        json_pack("{s:s, s:s, s:s, s:o, s:o}", "probe", q->probe.name, "method",
                                  SIMILARITY_METHOD, "distance", SIMILARITY_DISTANCE,
                                  "datasets", names, "known", known));
    json_object_set_new(result, "failures", failures);
}

/* ---- statements ----------------------------------------------------------------------- */

json_t *exec_similarity_query(exec_ctx *ctx, const ast_select *s, exec_error *err)
{
    sim q = {.s = s};
    json_t *result = result_new("SELECT");
    task_run run = {0};
    float **vecs = NULL;
    size_t *lens = NULL;
    char **errors = NULL;
    if (!sim_plan(ctx, &q, result, err))
        goto fail;
    if (!task_run_jobs(ctx, &q.jobs, s->wait, s->h.pos, result, &run, err))
        goto fail;
    vecs = xcalloc(q.data.n + 1, sizeof *vecs);
    lens = xcalloc(q.data.n + 1, sizeof *lens);
    errors = xcalloc(q.data.n + 1, sizeof *errors);
    if (!load_vectors(ctx, &q, vecs, lens, errors, err))
        goto fail;
    assemble(&q, vecs, lens, errors, result);
    size_t nknown = 0;
    for (size_t i = 0; i < q.data.n; i++)
        nknown += vecs[i] != NULL;
    long remaining = task_report_jobs(ctx, &q.jobs, &run, s->wait, nknown < q.data.n, result, err);
    if (remaining < 0)
        goto fail;
    if (q.data.n == 0)
        result_notice(result, "no dataset matched the query");
    else if (run.submitted == 0 && remaining == 0 && nknown == q.data.n)
        result_notice(result, "all %zu dataset embeddings came from the cache: no job ran",
                      q.data.n);
    if (task_still_running(ctx, &run, remaining))
        result_notice(result,
                      "%zu of %zu dataset embeddings are known; the entries of the others are "
                      "null while %ld job%s run; run the query again, or add WAIT (CANCEL QUERY "
                      "'%s' cancels them)",
                      nknown, q.data.n, remaining, remaining == 1 ? "" : "s",
                      run.query_id ? run.query_id : "?");
    goto out;
fail:
    json_decref(result);
    result = NULL;
out:
    for (size_t i = 0; vecs && i < q.data.n; i++) {
        free(vecs[i]);
        free(errors[i]);
    }
    free(vecs);
    free(lens);
    free(errors);
    free(run.query_id);
    sim_free(&q);
    return result;
}

json_t *exec_similarity_explain(exec_ctx *ctx, const ast_explain *e, exec_error *err)
{
    const ast_select *s = (const ast_select *)e->stmt;
    sim q = {.s = s};
    json_t *result = result_new("EXPLAIN");
    if (!sim_plan(ctx, &q, result, err)) {
        sim_free(&q);
        json_decref(result);
        return NULL;
    }
    cost_rate rate;
    if (!task_model_rates(ctx, &q.probe.id, 1, &rate, NULL, err)) {
        sim_free(&q);
        json_decref(result);
        return NULL;
    }
    /* Estimated seconds: an embed job per uncached embedding, a similarity job (one pass
     * over the features: overhead) per uncached vector. */
    double embed_s = 0, sim_s = 0;
    long etotal = 0, ecached = 0, stotal = 0, scached = 0;
    json_t *data = json_array();
    for (size_t i = 0; i < q.data.n; i++) {
        int64_t rows = q.data.items[i].size;
        bool ec = q.jobs.items[q.embed_job[i]].cached, sc = q.jobs.items[q.sim_job[i]].cached;
        etotal++, ecached += ec, stotal++, scached += sc;
        if (!ec)
            embed_s += cost_embed_seconds(rate.seconds_per_row, rows);
        if (!sc)
            sim_s += COST_JOB_OVERHEAD_S;
        char *detail = xasprintf("\"%s\" (%s%s%lld rows)%s", ds_name(&q, i),
                                 json_string_value(json_object_get(q.data.items[i].obj, "format")),
                                 rows >= 0 ? ", " : "", (long long)(rows >= 0 ? rows : 0),
                                 sc ? ", vector cached" : "");
        json_array_append_new(data, json_pack("{s:s, s:s, s:[]}", "node", "Dataset", "detail",
                                              detail, "children"));
        free(detail);
    }
    char *d_embed = xasprintf("%ld (%ld cached, %ld to run) by probe %s; est. %.2f s %s "
                              "(%s rate %.3g s/row)",
                              etotal, ecached, etotal - ecached, q.probe.name, embed_s,
                              rate.gpu ? "GPU" : "CPU", cost_source_name(rate.source),
                              rate.seconds_per_row);
    char *d_sim = xasprintf("%ld (%ld cached, %ld to run), method %s; est. %.2f s CPU", stotal,
                            scached, stotal - scached, SIMILARITY_METHOD, sim_s);
    char *d_top = xasprintf("%zu × %zu %s distances between the datasets' vectors, computed "
                            "at query time; est. total %.2f s",
                            q.data.n, q.data.n, SIMILARITY_DISTANCE, embed_s + sim_s);
    json_t *tree = json_pack(
        "{s:s, s:s, s:f, s:[{s:s, s:s, s:f, s:[{s:s, s:s, s:f, s:o}]}]}", "node",
        "Similarity", "detail", d_top, "estimated_seconds", embed_s + sim_s, "children", "node",
        "Similarity jobs", "detail", d_sim, "estimated_seconds", sim_s, "children", "node",
        "Embed jobs", "detail", d_embed, "estimated_seconds", embed_s, "children", data);
    free(d_embed);
    free(d_sim);
    free(d_top);
    sim_free(&q);
    json_t *run = NULL;
    double ms = 0;
    if (e->analyze) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        run = exec_similarity_query(ctx, s, err);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (!run) {
            json_decref(tree);
            json_decref(result);
            return NULL;
        }
        ms = explain_mark_run(tree, run, &a, &b);
    }
    explain_jobs_result(result, e, tree, e->json ? NULL : explain_rows(tree), run, ms, false);
    if (!e->analyze)
        result_notice(result, "EXPLAIN did not run the query; EXPLAIN ANALYZE runs it");
    json_decref(tree);
    json_decref(run);
    return result;
}
