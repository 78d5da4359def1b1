/* Task-aware queries: SELECT … ORDER BY err … TRAINED ON … TESTED ON … CLASSIFIED BY … and
 * RANK … BY "proxy". The candidate models come from the catalog part of the query (planned
 * like any SELECT); every (model, dataset slice) becomes an embed job and every (model,
 * proxy[, test dataset]) a proxy job (docs/jobs.md). Known results are looked up by hash,
 * the rest are submitted to the queue; WAIT blocks until they are final, reporting progress.
 * One ranking per proxy (and per test dataset for TESTED ON BENCHMARK without an
 * aggregate), LIMIT applied to each. On replay datasets, replay models get one proxy job
 * each and no embed job: the worker answers it from recorded fine-tune runs
 * (docs/runners.md "replay"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>

#include "common/hash.h"
#include "common/util.h"
#include "executor/internal.h"
#include "executor/task.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/featstore.h"
#include "executor/workers/proxy_job.h"
#include "executor/workers/runners/replay.h"
#include "planner/sh.h"
#include "extensions/extensions.h"
#include "queue/queue.h"

/* ---- is it task-aware? ---------------------------------------------------------------- */

static bool names_metric(const ast_node *key)
{
    if (key->kind == AST_FUNC) {
        const ast_func *f = (const ast_func *)key;
        return f->args && f->args->n == 1 && names_metric(f->args->items[0]);
    }
    if (key->kind != AST_COLUMN_REF)
        return false;
    const ast_column_ref *c = (const ast_column_ref *)key;
    return c->nparts == 1 &&
           (strcasecmp(c->parts[0].text, "err") == 0 || strcasecmp(c->parts[0].text, "acc") == 0);
}

static bool is_acc(const ast_node *key)
{
    if (key->kind == AST_FUNC)
        return is_acc(((const ast_func *)key)->args->items[0]);
    return strcasecmp(((const ast_column_ref *)key)->parts[0].text, "acc") == 0;
}

bool task_query_applies(const ast_node *query)
{
    if (!query || query->kind != AST_SELECT)
        return false;
    const ast_select *s = (const ast_select *)query;
    if (s->trained_on || s->tested_on || s->classifiers || s->is_rank)
        return true;
    for (size_t i = 0; s->order_by && i < s->order_by->n; i++)
        if (names_metric(((const ast_order_item *)s->order_by->items[i])->key))
            return s->trained_on != NULL;
    return false;
}

/* ---- proxies -------------------------------------------------------------------------- */

typedef struct proxy_choice {
    char *label;       /* as the user wrote it: "Euclidean NN", "linear(lr=0.01)" */
    json_t *proxy;     /* canonical {"name", "params"} */
    bool is_score;     /* err is a negated score (logme, hscore, leep): no acc */
} proxy_choice;

/* SHiFT's spellings and ours → a proxy_job name and the parameters written. */
static const char *proxy_name_of(const char *written, json_t *params)
{
    char lower[64];
    size_t n = 0;
    for (const char *p = written; *p && n + 1 < sizeof lower; p++)
        if (*p != ' ' && *p != '-' && *p != '_')
            lower[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    lower[n] = '\0';
    if (strcmp(lower, "euclideannn") == 0 || strcmp(lower, "nn") == 0 ||
        strcmp(lower, "1nn") == 0 || strcmp(lower, "knn") == 0)
        return "nn";
    if (strcmp(lower, "cosinenn") == 0 || strcmp(lower, "cosine") == 0) {
        json_object_set_new(params, "metric", json_string("cosine"));
        return "nn";
    }
    if (strcmp(lower, "linear") == 0 || strcmp(lower, "linearprobe") == 0)
        return "linear";
    if (strcmp(lower, "logme") == 0)
        return "logme";
    if (strcmp(lower, "hscore") == 0)
        return "hscore";
    if (strcmp(lower, "leep") == 0)
        return "leep";
    return NULL;
}

static json_t *literal_json(const ast_node *v)
{
    if (v->kind == AST_COLUMN_REF) /* a bare word: metric=cosine */
        return json_string(((const ast_column_ref *)v)->parts[0].text);
    if (v->kind != AST_LITERAL)
        return NULL;
    const ast_literal *l = (const ast_literal *)v;
    switch (l->type) {
    case LIT_INT: return json_integer(l->ival);
    case LIT_FLOAT: return json_real(l->fval);
    case LIT_STRING: return json_stringn(l->str, l->len);
    case LIT_BOOL: return json_boolean(l->bval);
    default: return NULL;
    }
}

/* Parameter aliases: SHiFT's Linear(learning_rate, num_epochs) and the short forms. */
static const char *param_alias(const char *key)
{
    if (strcmp(key, "lr") == 0)
        return "learning_rate";
    if (strcmp(key, "epochs") == 0)
        return "num_epochs";
    return key;
}

/* The label of a call as written: name(k=v, …), numbers as written. */
static char *call_label(const ast_call *call)
{
    strbuf sb = {0};
    strbuf_puts(&sb, call->name.text);
    if (call->params && call->params->n) {
        strbuf_putc(&sb, '(');
        for (size_t i = 0; i < call->params->n; i++) {
            const ast_param *p = (const ast_param *)call->params->items[i];
            const ast_literal *lit = (const ast_literal *)p->value;
            bool number = p->value->kind == AST_LITERAL &&
                          (lit->type == LIT_INT || lit->type == LIT_FLOAT) && lit->text;
            json_t *v = literal_json(p->value);
            char *text = number ? xstrdup(lit->text)
                         : v    ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT)
                                : xstrdup("?");
            strbuf_printf(&sb, "%s%s=%s", i ? ", " : "", p->key.text, text);
            free(text);
            json_decref(v);
        }
        strbuf_putc(&sb, ')');
    }
    return strbuf_detach(&sb);
}

static bool proxy_from_call(const ast_call *call, proxy_choice *out, exec_error *err)
{
    json_t *params = json_object();
    const char *name = proxy_name_of(call->name.text, params);
    if (!name) {
        json_decref(params);
        return exec_failb(err, 400, "semantic_error", call->h.pos,
                          "unknown proxy \"%s\": use one of Euclidean NN, Cosine NN, Linear, "
                          "nn, cosine_nn, knn(k=…), linear(lr=…, epochs=…), logme, hscore, leep",
                          call->name.text);
    }
    for (size_t i = 0; call->params && i < call->params->n; i++) {
        const ast_param *p = (const ast_param *)call->params->items[i];
        json_t *v = literal_json(p->value);
        if (!v) {
            json_decref(params);
            return exec_failb(err, 400, "semantic_error", p->h.pos,
                              "parameter %s of %s: expected a number, string or boolean",
                              p->key.text, call->name.text);
        }
        json_object_set_new(params, param_alias(p->key.text), v);
    }
    char *perr = NULL;
    json_t *canon = proxy_job_canonical(name, params, &perr);
    json_decref(params);
    if (!canon) {
        exec_failb(err, 400, "semantic_error", call->h.pos, "%s: %s", call->name.text,
                   perr ? perr : "invalid parameters");
        free(perr);
        return false;
    }
    out->proxy = canon;
    out->is_score = strcmp(name, "nn") != 0 && strcmp(name, "linear") != 0;
    out->label = call_label(call);
    return true;
}

/* ---- models --------------------------------------------------------------------------- */

typedef struct model_use {
    int64_t id;
    char *name;
    json_t *obj;          /* {"id","name","runner","modality","spec","batch_size"} */
    json_t *cells;        /* the user's select-list values */
    bool needs_fit;
    bool replay;          /* runner replay: answered from recorded runs, no embed job */
    json_t *replay_job;   /* its payload's "replay" object (replay_prepare) */
} model_use;

typedef struct model_list {
    size_t n;
    model_use *items;
    json_t *columns;      /* the user's select-list names */
} model_list;

static void model_list_free(model_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        json_decref(l->items[i].obj);
        json_decref(l->items[i].cells);
        json_decref(l->items[i].replay_job);
    }
    free(l->items);
    json_decref(l->columns);
    memset(l, 0, sizeof *l);
}

static bool runner_can_embed(const char *runner)
{
    return strcmp(runner, "builtin") == 0 || strcmp(runner, "onnx") == 0 ||
           strcmp(runner, "exec") == 0 || strcmp(runner, "noop") == 0;
}

/* Which models a ranking takes: on file datasets, those whose runner embeds here; on replay
 * datasets, the replay models (their proxy jobs are answered from the recorded fine-tune
 * runs, docs/runners.md "replay"). Each kind is skipped with a notice on the other data. */
static bool runner_can_rank(const char *runner, bool replay_data)
{
    return replay_data ? strcmp(runner, "replay") == 0 : runner_can_embed(runner);
}

/* The select list without err/acc/proxy (they are added by the ranking). */
static ast_list *catalog_columns(arena *a, const ast_list *cols)
{
    ast_list *out = NULL;
    for (size_t i = 0; cols && i < cols->n; i++) {
        const ast_column *c = (const ast_column *)cols->items[i];
        if (c->expr->kind == AST_COLUMN_REF && names_metric(c->expr))
            continue;
        if (c->expr->kind == AST_COLUMN_REF &&
            ((const ast_column_ref *)c->expr)->nparts == 1 &&
            (strcasecmp(((const ast_column_ref *)c->expr)->parts[0].text, "proxy") == 0 ||
             strcasecmp(((const ast_column_ref *)c->expr)->parts[0].text, "classifier") == 0))
            continue;
        out = ast_list_append(a, out, cols->items[i]);
    }
    if (!out) { /* SELECT err FROM … : name the models */
        ast_column *c = AST_NEW(a, ast_column, AST_COLUMN, no_pos);
        ast_column_ref *r = AST_NEW(a, ast_column_ref, AST_COLUMN_REF, no_pos);
        r->nparts = 1;
        r->parts = arena_alloc(a, sizeof *r->parts);
        r->parts[0].text = "name";
        c->expr = &r->h;
        out = ast_list_append(a, out, &c->h);
    }
    return out;
}

/* Plans and runs the catalog part of s (FROM, WHERE, OTHER THAN, the select list). */
static bool load_models(exec_ctx *ctx, const ast_select *s, const char *data_modality,
                        bool replay_data, bool any_runner, model_list *out, json_t *result,
                        exec_error *err)
{
    arena *a = arena_new();
    ast_select *c = AST_NEW(a, ast_select, AST_SELECT, s->h.pos);
    c->columns = catalog_columns(a, s->columns);
    c->from = s->from;
    c->where = s->where;
    c->other_than = s->other_than;
    loaded_vars vars = {0};
    plan *p = exec_plan(ctx, &c->h, &vars, err);
    json_t *ids = NULL;
    json_t *rows = p ? exec_run_plan(ctx, p, &ids, err) : NULL;
    bool ok = rows != NULL;
    if (ok && p->entity != ENTITY_MODELS)
        ok = exec_failb(err, 400, "semantic_error", s->h.pos,
                        "a ranking needs models: FROM %s holds %s", s->from.text,
                        planner_entity_name(p->entity));
    if (ok && !p->has_id)
        ok = exec_failb(err, 400, "semantic_error", s->h.pos,
                        "SELECT DISTINCT cannot be ranked: drop DISTINCT");
    if (ok) {
        out->columns = json_array();
        for (size_t i = 0; i < p->ncolumns; i++)
            json_array_append_new(out->columns, json_string(p->columns[i]));
        for (size_t i = 0; i < p->nnotices; i++)
            result_notice(result, "%s", p->notices[i]);
    }
    char *idtext = ok ? json_dumps(ids, JSON_COMPACT) : NULL;
    PGresult *res = NULL;
    if (ok) {
        const char *params[] = {idtext};
        res = exec_sql(ctx,
                       TASK_MODEL_SELECT "WHERE id = ANY (translate($1, '[]', '{}')::bigint[]) "
                       "ORDER BY array_position(translate($1, '[]', '{}')::bigint[], id)",
                       1, params, err);
        ok = res != NULL;
    }
    size_t skipped_runner = 0, skipped_modality = 0;
    char skipped_runner_name[32] = "";
    if (ok) {
        out->items = xcalloc((size_t)PQntuples(res) + 1, sizeof *out->items);
        for (int r = 0; r < PQntuples(res); r++) {
            const char *runner = PQgetvalue(res, r, 2), *modality = PQgetvalue(res, r, 3);
            if (!any_runner && !runner_can_rank(runner, replay_data)) {
                if (!skipped_runner++)
                    snprintf(skipped_runner_name, sizeof skipped_runner_name, "%s", runner);
                continue;
            }
            if (data_modality && strcmp(modality, data_modality) != 0) {
                skipped_modality++;
                continue;
            }
            model_use *m = &out->items[out->n++];
            m->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
            m->name = xstrdup(PQgetvalue(res, r, 1));
            m->obj = task_model_obj(res, r, &m->needs_fit);
            m->replay = strcmp(runner, "replay") == 0;
            /* The catalog row of this id (rows are in the same order as ids). */
            for (size_t k = 0; k < json_array_size(ids); k++)
                if (json_integer_value(json_array_get(ids, k)) == m->id) {
                    m->cells = json_incref(json_array_get(rows, k));
                    break;
                }
        }
    }
    if (skipped_runner && replay_data)
        result_notice(result,
                      "%zu model%s skipped: runner %s%s cannot answer on replay datasets "
                      "(recorded fine-tune runs rank replay models only)",
                      skipped_runner, skipped_runner == 1 ? "" : "s", skipped_runner_name,
                      skipped_runner > 1 ? " and others" : "");
    else if (skipped_runner)
        result_notice(result,
                      "%zu model%s skipped: runner %s%s cannot embed on this server (builtin, "
                      "onnx, exec and noop can; replay only on replay datasets)",
                      skipped_runner, skipped_runner == 1 ? "" : "s", skipped_runner_name,
                      skipped_runner > 1 ? " and others" : "");
    if (skipped_modality)
        result_notice(result, "%zu model%s skipped: not %s models", skipped_modality,
                      skipped_modality == 1 ? "" : "s", data_modality);
    PQclear(res);
    free(idtext);
    json_decref(ids);
    json_decref(rows);
    plan_free(p);
    vars_free(&vars);
    arena_free(a);
    return ok;
}

/* ---- the job DAG of a query ---------------------------------------------------------- */

static size_t embed_job(job_set *s, const model_use *m, const dataset_use *d, const json_t *fit)
{
    json_t *payload = json_pack("{s:O, s:O, s:O}", "model", m->obj, "dataset", d->obj, "fit",
                                m->needs_fit && fit ? fit : json_null());
    return task_job_set_add(s, "embed", payload);
}

/* The parts of train or test for one model, as a proxy payload names them; embed jobs are
 * added to s and recorded as dependencies of *deps. */
static json_t *parts_payload(job_set *s, const model_use *m, const part *parts, size_t nparts,
                             const json_t *fit, size_t **deps, size_t *ndeps)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < nparts; i++) {
        const part *p = &parts[i];
        size_t e = embed_job(s, m, &p->data, fit);
        *deps = xrealloc(*deps, (*ndeps + 1 + p->nchanges) * sizeof **deps);
        (*deps)[(*ndeps)++] = e;
        json_t *changes = json_array();
        for (size_t c = 0; c < p->nchanges; c++) {
            const change_use *cu = &p->changes[c];
            if (cu->target.labels_only) {
                json_array_append_new(changes, json_pack("{s:O, s:O, s:O}", "labels_from",
                                                         cu->target.obj, "base", cu->base,
                                                         "other", cu->other));
            } else {
                size_t t = embed_job(s, m, &cu->target, fit);
                (*deps)[(*ndeps)++] = t;
                json_array_append_new(changes, json_pack("{s:s, s:O, s:O}", "features",
                                                         s->items[t].hash, "base", cu->base,
                                                         "other", cu->other));
            }
        }
        json_array_append_new(arr, json_pack("{s:s, s:o}", "features", s->items[e].hash,
                                             "changes", changes));
    }
    return arr;
}

/* One cell of the result grid: model × proxy × test group. */
typedef struct cell_ref {
    size_t model, proxy, group;
    size_t job;               /* index of the proxy job */
} cell_ref;

/* ---- results -------------------------------------------------------------------------- */

typedef struct cell_value {
    bool known;
    double err;
    char *error;             /* the job failed: why */
} cell_value;

static bool load_values(exec_ctx *ctx, const job_set *s, const cell_ref *cells, size_t ncells,
                        cell_value *values, exec_error *err)
{
    json_t *hashes = json_array();
    for (size_t i = 0; i < ncells; i++)
        json_array_append_new(hashes, json_string(s->items[cells[i].job].hash));
    char *text = json_dumps(hashes, JSON_COMPACT);
    json_decref(hashes);
    const char *params[] = {text};
    /* One row per cell, numbered (hashes are unique in both tables), so each row finds its
     * cell directly. */
    PGresult *res = exec_sql(ctx,
                             "SELECT e.i, r.err, j.status, j.error FROM "
                             "jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS e(h, i) "
                             "LEFT JOIN proxy_results r ON r.hash = e.h "
                             "LEFT JOIN jobs j ON j.hash = e.h",
                             1, params, err);
    free(text);
    if (!res)
        return false;
    for (int r = 0; r < PQntuples(res); r++) {
        long i = strtol(PQgetvalue(res, r, 0), NULL, 10) - 1;
        if (i < 0 || (size_t)i >= ncells)
            continue;
        if (!PQgetisnull(res, r, 1)) {
            values[i].known = true;
            values[i].err = strtod(PQgetvalue(res, r, 1), NULL);
        } else if (!PQgetisnull(res, r, 2) &&
                   (strcmp(PQgetvalue(res, r, 2), "failed") == 0 ||
                    strcmp(PQgetvalue(res, r, 2), "cancelled") == 0) &&
                   !values[i].error) {
            values[i].error = xstrdup(PQgetisnull(res, r, 3) ? PQgetvalue(res, r, 2)
                                                             : PQgetvalue(res, r, 3));
        }
    }
    PQclear(res);
    return true;
}

typedef struct sort_spec {
    bool ascending_err;     /* best first when true */
    bool has_aggregate;
    char aggregate[8];      /* AVG, SUM, MIN, MAX */
} sort_spec;

static bool order_spec(const ast_select *s, sort_spec *out, exec_error *err)
{
    out->ascending_err = true;
    out->has_aggregate = false;
    for (size_t i = 0; s->order_by && i < s->order_by->n; i++) {
        const ast_order_item *o = (const ast_order_item *)s->order_by->items[i];
        if (!names_metric(o->key))
            return exec_failb(err, 400, "semantic_error", o->key->pos,
                              "a ranking is ordered by err or acc (or AVG/SUM/MIN/MAX of them "
                              "with TESTED ON BENCHMARK); other keys are not supported here");
        bool acc = is_acc(o->key);
        out->ascending_err = acc ? (o->explicit_direction ? o->desc : true) : !o->desc;
        if (o->key->kind == AST_FUNC) {
            const char *f = ((const ast_func *)o->key)->name;
            if (strcasecmp(f, "AVG") && strcasecmp(f, "SUM") && strcasecmp(f, "MIN") &&
                strcasecmp(f, "MAX"))
                return exec_failb(err, 400, "semantic_error", o->key->pos,
                                  "%s(err) is not an aggregate: use AVG, SUM, MIN or MAX", f);
            if (s->tested_kind != TESTED_BENCHMARK)
                return exec_failb(err, 400, "semantic_error", o->key->pos,
                                  "%s(err) aggregates over datasets: it needs TESTED ON BENCHMARK",
                                  f);
            out->has_aggregate = true;
            snprintf(out->aggregate, sizeof out->aggregate, "%s", f);
            for (char *p = out->aggregate; *p; p++)
                *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        }
    }
    return true;
}

typedef struct ranked {
    size_t model;
    double err;
    const char *name;
} ranked;

static bool ascending_sort;

static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->err != y->err)
        return (x->err < y->err) == ascending_sort ? -1 : 1;
    return strcmp(x->name, y->name);
}

static double aggregate(const char *f, const double *v, size_t n)
{
    double acc = strcmp(f, "MIN") == 0 ? INFINITY : strcmp(f, "MAX") == 0 ? -INFINITY : 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f, "MIN") == 0)
            acc = v[i] < acc ? v[i] : acc;
        else if (strcmp(f, "MAX") == 0)
            acc = v[i] > acc ? v[i] : acc;
        else
            acc += v[i];
    }
    return strcmp(f, "AVG") == 0 && n ? acc / (double)n : acc;
}

/* ---- the query ------------------------------------------------------------------------ */

typedef struct task {
    const ast_select *s;
    bool replay;              /* the data are replay datasets (docs/runners.md "replay") */
    size_t nproxies;
    proxy_choice *proxies;
    part_list train, test;
    char *modality;
    model_list models;
    job_set jobs;
    size_t ncells;
    cell_ref *cells;
    size_t ngroups;           /* test groups: 1, or one per test dataset for BENCHMARK */
    sort_spec sort;
    /* RANK … BY a strategy plugin (docs/extensions.md): one strategy job ranks them all. */
    const ext_strategy *strategy;
    json_t *strategy_params;  /* canonical */
    char *strategy_label;     /* as written: "random(seed=1)" */
    size_t strategy_job;      /* its index in jobs */
    /* Successive halving: run_sh plans its rounds. CHUNK AUTO without BUDGET lets the cost
     * model decide (plan_auto); sh_choice says what it weighed. */
    bool use_sh;
    char *sh_choice;          /* "Plan choice: …", or NULL */
    json_t *sh_estimate;      /* {"full_seconds", "sh_seconds", "chose", "rounds", …} or NULL */
} task;

static void task_free(task *t)
{
    for (size_t i = 0; i < t->nproxies; i++) {
        free(t->proxies[i].label);
        json_decref(t->proxies[i].proxy);
    }
    free(t->proxies);
    task_part_list_free(&t->train);
    task_part_list_free(&t->test);
    free(t->modality);
    model_list_free(&t->models);
    task_job_set_free(&t->jobs);
    free(t->cells);
    json_decref(t->strategy_params);
    free(t->strategy_label);
    free(t->sh_choice);
    json_decref(t->sh_estimate);
}

/* RANK … BY "name(k=v)" where name is not a proxy: a strategy of the registry (builtins and
 * the extensions directory), its parameters checked against its schema. */
static bool choose_strategy(task *t, exec_error *err)
{
    const ast_call *call = t->s->strategy;
    const ext_registry *reg = ext_default();
    const ext_strategy *st = ext_find(reg, call->name.text);
    if (!st) {
        strbuf names = {0};
        for (size_t i = 0; reg && i < reg->n; i++)
            strbuf_printf(&names, "%s%s", i ? ", " : "", reg->items[i].name);
        exec_failb(err, 400, "semantic_error", call->h.pos,
                   "unknown strategy \"%s\": RANK … BY takes a proxy (nn, cosine_nn, linear, "
                   "logme, hscore, leep) or a strategy (%s; SHOW EXTENSIONS lists them)",
                   call->name.text, names.data ? names.data : "none");
        strbuf_free(&names);
        return false;
    }
    json_t *given = json_object();
    for (size_t i = 0; call->params && i < call->params->n; i++) {
        const ast_param *p = (const ast_param *)call->params->items[i];
        json_t *v = literal_json(p->value);
        if (!v) {
            json_decref(given);
            return exec_failb(err, 400, "semantic_error", p->h.pos,
                              "parameter %s of %s: expected a number, string or boolean",
                              p->key.text, call->name.text);
        }
        json_object_set_new(given, p->key.text, v);
    }
    char *perr = NULL;
    t->strategy_params = ext_params_canonical(st, given, &perr);
    json_decref(given);
    if (!t->strategy_params) {
        exec_failb(err, 400, "semantic_error", call->h.pos, "%s", perr);
        free(perr);
        return false;
    }
    t->strategy = st;
    t->strategy_label = call_label(call);
    return true;
}

static bool choose_proxies(task *t, json_t *result, exec_error *err)
{
    const ast_select *s = t->s;
    if (s->is_rank && s->classifiers)
        return exec_failb(err, 400, "semantic_error", s->classifiers->items[0]->pos,
                          "RANK … BY names the proxy: drop CLASSIFIED BY");
    size_t n = s->is_rank ? 1 : s->classifiers ? s->classifiers->n : 1;
    t->proxies = xcalloc(n, sizeof *t->proxies);
    if (s->is_rank) {
        json_t *dummy = json_object();
        bool known = proxy_name_of(s->strategy->name.text, dummy) != NULL;
        json_decref(dummy);
        if (!known)
            return choose_strategy(t, err);
        if (!proxy_from_call(s->strategy, &t->proxies[0], err))
            return false;
        t->nproxies = 1;
        return true;
    }
    if (!s->classifiers) {
        ast_call def = {.h = {AST_CALL, s->h.pos, 0}, .name = {"Euclidean NN", s->h.pos, true}};
        result_notice(result, "no CLASSIFIED BY: ranking by \"Euclidean NN\" (1-NN error)");
        if (!proxy_from_call(&def, &t->proxies[0], err))
            return false;
        t->nproxies = 1;
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (!proxy_from_call((const ast_call *)s->classifiers->items[i], &t->proxies[i], err))
            return false;
        t->nproxies++;
    }
    return true;
}

static bool check_clauses(const ast_select *s, exec_error *err)
{
    if (!s->trained_on)
        return exec_failb(err, 400, "semantic_error", s->h.pos,
                          "a ranking needs TRAINED ON \"dataset\" (the data the proxies train on)");
    if (!s->tested_on)
        return exec_failb(err, 400, "semantic_error", s->h.pos,
                          "a ranking needs TESTED ON \"dataset\" (the data its error is measured "
                          "on)");
    return true;
}

/* ---- replay: rankings answered from recorded fine-tune runs -------------------------- */

static const char *replay_task_of(const part *p)
{
    return json_string_value(
        json_object_get(json_object_get(p->data.obj, "spec"), "train_dataset_name"));
}

/* Replay datasets rank among themselves: one TRAINED ON dataset (the task), every TESTED ON
 * dataset a replay dataset of the same task (the records measured the test accuracy on that
 * task's own test split, so nothing else can be answered). Mixing them with file datasets
 * is an error. Sets t->replay. */
static bool replay_check_data(task *t, exec_error *err)
{
    size_t nreplay = 0, total = t->train.n + t->test.n;
    for (size_t i = 0; i < total; i++) {
        const part *p = i < t->train.n ? &t->train.items[i] : &t->test.items[i - t->train.n];
        nreplay += p->data.replay;
    }
    t->replay = nreplay > 0;
    if (nreplay == 0)
        return true;
    if (nreplay != total)
        return exec_failb(err, 400, "semantic_error", t->s->h.pos,
                          "replay datasets (recorded fine-tune runs) cannot be mixed with "
                          "file datasets in one ranking: train and test on replay datasets "
                          "only, or on files only");
    if (t->train.n != 1)
        return exec_failb(err, 400, "semantic_error", t->s->h.pos,
                          "a replay ranking is TRAINED ON one replay dataset (the task of the "
                          "recorded runs), not %zu", t->train.n);
    const char *task_name = replay_task_of(&t->train.items[0]);
    for (size_t i = 0; i < t->test.n; i++) {
        const char *other = replay_task_of(&t->test.items[i]);
        if (strcmp(other, task_name) != 0)
            return exec_failb(
                err, 400, "semantic_error", t->s->h.pos,
                "replay dataset \"%s\" records task %s, but the ranking is trained on %s: a "
                "replay ranking is tested on the task it is trained on (the records hold "
                "its test accuracy)",
                json_string_value(json_object_get(t->test.items[i].data.obj, "name")), other,
                task_name);
    }
    return true;
}

/* The "replay" object of each replay model's proxy payload: the model's records file (its
 * spec.records, else the train dataset's), its identifier, the task, and the file's SHA-256
 * as it is now, so that a changed file makes other jobs (and misses the cache). */
static bool replay_prepare(task *t, exec_error *err)
{
    if (!t->replay)
        return true;
    const json_t *dspec = json_object_get(t->train.items[0].data.obj, "spec");
    const char *task_name = replay_task_of(&t->train.items[0]);
    json_t *digests = json_object(); /* path → digest, each file read once */
    bool ok = true;
    for (size_t m = 0; ok && m < t->models.n; m++) {
        model_use *mu = &t->models.items[m];
        const json_t *mspec = json_object_get(mu->obj, "spec");
        const char *records = json_string_value(json_object_get(mspec, "records"));
        if (!records)
            records = json_string_value(json_object_get(dspec, "records"));
        const char *ident = json_string_value(json_object_get(mspec, "model_identifier"));
        if (!ident) {
            ok = exec_failb(err, 422, "validation_error", t->s->h.pos,
                            "replay model \"%s\" has no spec.model_identifier: REGISTER it "
                            "again",
                            mu->name);
            break;
        }
        const char *digest = json_string_value(json_object_get(digests, records));
        if (!digest) {
            char hex[HASH_HEX_LEN + 1];
            char *e = NULL;
            if (replay_file_digest(records, hex, &e) != 0) {
                ok = exec_failb(err, 422, "validation_error", t->s->h.pos,
                                "replay model \"%s\": %s", mu->name, e);
                free(e);
                break;
            }
            json_object_set_new(digests, records, json_string(hex));
            digest = json_string_value(json_object_get(digests, records));
        }
        mu->replay_job = json_pack("{s:s, s:s, s:s, s:s}", "records", records,
                                   "model_identifier", ident, "train_dataset_name", task_name,
                                   "digest", digest);
    }
    json_decref(digests);
    return ok;
}

/* Builds the DAG: per model, the proxy jobs of every proxy and test group. */
static void build_jobs(task *t)
{
    bool bench = t->s->tested_kind == TESTED_BENCHMARK;
    t->ngroups = bench ? t->test.n : 1;
    t->cells = xcalloc(t->models.n * t->nproxies * t->ngroups + 1, sizeof *t->cells);
    /* Embed jobs first, dataset-major, so that different models' jobs interleave. */
    const json_t *fit = t->train.n ? t->train.items[0].data.obj : NULL;
    for (size_t m = 0; m < t->models.n; m++)
        for (size_t p = 0; p < t->nproxies; p++)
            for (size_t g = 0; g < t->ngroups; g++) {
                const model_use *mu = &t->models.items[m];
                if (mu->replay_job) {
                    /* No embed job: the records answer it, whatever the test group. */
                    json_t *payload = json_pack("{s:O, s:I, s:O}", "proxy",
                                                t->proxies[p].proxy, "model_id",
                                                (json_int_t)mu->id, "replay", mu->replay_job);
                    size_t j = task_job_set_add(&t->jobs, "proxy", payload);
                    t->cells[t->ncells++] = (cell_ref){m, p, g, j};
                    continue;
                }
                size_t *deps = NULL, ndeps = 0;
                json_t *train = parts_payload(&t->jobs, mu, t->train.items, t->train.n, fit,
                                              &deps, &ndeps);
                json_t *test = parts_payload(&t->jobs, mu, bench ? &t->test.items[g] : t->test.items,
                                             bench ? 1 : t->test.n, fit, &deps, &ndeps);
                json_t *payload = json_pack("{s:O, s:I, s:o, s:o}", "proxy", t->proxies[p].proxy,
                                            "model_id", (json_int_t)mu->id, "train", train,
                                            "test", test);
                size_t j = task_job_set_add(&t->jobs, "proxy", payload);
                for (size_t d = 0; d < ndeps; d++)
                    task_job_add_dep(&t->jobs, j, deps[d]);
                free(deps);
                t->cells[t->ncells++] = (cell_ref){m, p, g, j};
            }
}

static json_t *row_for(const task *t, size_t model, size_t proxy, const char *dsname,
                       double err, long rank)
{
    json_t *row = json_array();
    json_array_append_new(row, json_integer(rank));
    json_t *cells = t->models.items[model].cells;
    for (size_t i = 0; i < json_array_size(cells); i++)
        json_array_append(row, json_array_get(cells, i));
    json_array_append_new(row, json_string(t->proxies[proxy].label));
    if (t->s->tested_kind == TESTED_BENCHMARK)
        json_array_append_new(row, dsname ? json_string(dsname) : json_null());
    json_array_append_new(row, json_real(err));
    /* A replay ranking's err is 1 − the recorded fine-tune accuracy, whatever the proxy. */
    json_array_append_new(row, t->proxies[proxy].is_score && !t->replay ? json_null()
                                                                       : json_real(1 - err));
    return row;
}

static json_t *result_columns(const task *t)
{
    json_t *cols = json_array();
    json_array_append_new(cols, json_string("rank"));
    json_array_extend(cols, t->models.columns);
    json_array_append_new(cols, json_string("proxy"));
    if (t->s->tested_kind == TESTED_BENCHMARK)
        json_array_append_new(cols, json_string(t->sort.has_aggregate ? "datasets" : "dataset"));
    json_array_append_new(cols, json_string(t->sort.has_aggregate ? t->sort.aggregate : "err"));
    json_array_append_new(cols, json_string("acc"));
    return cols;
}

/* The test datasets an aggregate ranking averages over, for its "datasets" column:
 * "a, b". */
static char *aggregated_names(const task *t)
{
    strbuf sb = {0};
    for (size_t g = 0; g < t->test.n; g++)
        strbuf_printf(&sb, "%s%s", g ? ", " : "",
                      json_string_value(json_object_get(t->test.items[g].data.obj, "name")));
    return strbuf_detach(&sb);
}

/* Sorts, limits and appends one ranking; records it in rankings. dsname is the test
 * dataset of a per-dataset BENCHMARK ranking, NULL otherwise; an aggregate ranking's rows
 * name the datasets it aggregates (its "datasets" column would be null otherwise). */
static void emit_ranking(const task *t, size_t proxy, const char *dsname, ranked *items,
                         size_t n, json_t *rows, json_t *rankings, size_t pending)
{
    ascending_sort = t->sort.ascending_err;
    qsort(items, n, sizeof *items, ranked_cmp);
    size_t limit = t->s->has_limit && (size_t)t->s->limit < n ? (size_t)t->s->limit : n;
    bool aggregated = t->sort.has_aggregate && t->s->tested_kind == TESTED_BENCHMARK;
    char *names = aggregated ? aggregated_names(t) : NULL;
    for (size_t i = 0; i < limit; i++)
        json_array_append_new(rows, row_for(t, items[i].model, proxy, names ? names : dsname,
                                            items[i].err, (long)i + 1));
    json_t *r = json_pack("{s:s, s:O, s:I, s:I}", "proxy", t->proxies[proxy].label, "params",
                          t->proxies[proxy].proxy, "rows", (json_int_t)limit, "pending",
                          (json_int_t)pending);
    if (dsname)
        json_object_set_new(r, "dataset", json_string(dsname));
    if (aggregated) {
        json_t *list = json_array();
        for (size_t g = 0; g < t->test.n; g++)
            json_array_append(list, json_object_get(t->test.items[g].data.obj, "name"));
        json_object_set_new(r, "datasets", list);
    }
    free(names);
    json_array_append_new(rankings, r);
}

static void assemble(const task *t, const cell_value *values, json_t *result)
{
    json_t *rows = json_array(), *rankings = json_array(), *failures = json_array();
    ranked *items = xcalloc(t->models.n + 1, sizeof *items);
    /* One value per test group at most (any number of BENCHMARK datasets). */
    double *vals = xcalloc(t->ngroups + 1, sizeof *vals);
    bool aggregate_groups = t->sort.has_aggregate;
    for (size_t p = 0; p < t->nproxies; p++) {
        for (size_t g = 0; g < (aggregate_groups ? 1 : t->ngroups); g++) {
            size_t n = 0, pending = 0;
            for (size_t m = 0; m < t->models.n; m++) {
                size_t nv = 0, want = aggregate_groups ? t->ngroups : 1;
                for (size_t c = 0; c < t->ncells; c++) {
                    const cell_ref *cr = &t->cells[c];
                    if (cr->model != m || cr->proxy != p || (!aggregate_groups && cr->group != g))
                        continue;
                    if (values[c].known && nv < t->ngroups)
                        vals[nv++] = values[c].err;
                }
                if (nv == want && nv > 0)
                    items[n++] = (ranked){m, aggregate_groups
                                                 ? aggregate(t->sort.aggregate, vals, nv)
                                                 : vals[0],
                                          t->models.items[m].name};
                else
                    pending++;
            }
            const char *dsname =
                t->s->tested_kind == TESTED_BENCHMARK && !aggregate_groups
                    ? json_string_value(json_object_get(t->test.items[g].data.obj, "name"))
                    : NULL;
            emit_ranking(t, p, dsname, items, n, rows, rankings, pending);
        }
    }
    for (size_t c = 0; c < t->ncells; c++)
        if (values[c].error)
            json_array_append_new(
                failures, json_pack("{s:s, s:s, s:s}", "model",
                                    t->models.items[t->cells[c].model].name, "proxy",
                                    t->proxies[t->cells[c].proxy].label, "error", values[c].error));
    free(items);
    free(vals);
    result_set(result, result_columns(t), rows);
    json_object_set_new(result, "rankings", rankings);
    if (json_array_size(failures)) {
        for (size_t i = 0; i < json_array_size(failures) && i < 5; i++) {
            json_t *f = json_array_get(failures, i);
            result_notice(result, "model %s, proxy %s failed: %s",
                          json_string_value(json_object_get(f, "model")),
                          json_string_value(json_object_get(f, "proxy")),
                          json_string_value(json_object_get(f, "error")));
        }
        if (json_array_size(failures) > 5)
            result_notice(result, "… and %zu more failures (see \"failures\")",
                          json_array_size(failures) - 5);
    }
    json_object_set_new(result, "failures", failures);
}

/* ---- strategies ------------------------------------------------------------------------- */

/* The datasets of a strategy payload: {"id", "name", "size", "num_classes"} per part. */
static json_t *strategy_datasets(const part_list *parts, const json_t *classes)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < parts->n; i++) {
        const json_t *o = parts->items[i].data.obj;
        json_t *id = json_object_get(o, "id");
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(id));
        json_t *nc = json_object_get(classes, key);
        json_array_append_new(
            arr, json_pack("{s:O, s:O, s:o, s:O}", "id", id, "name", json_object_get(o, "name"),
                           "size",
                           parts->items[i].data.size >= 0
                               ? json_integer(parts->items[i].data.size)
                               : json_null(),
                           "num_classes", nc ? nc : json_null()));
    }
    return arr;
}

/* The strategy job: {"strategy": {name, version, params}, "models": [...by id],
 * "datasets": {"train", "test"}} (docs/extensions.md); cached by its hash. */
static bool strategy_plan(exec_ctx *ctx, task *t, json_t *result, exec_error *err)
{
    const ast_select *s = t->s;
    for (size_t i = 0; i < t->train.n + t->test.n; i++) {
        const part *p = i < t->train.n ? &t->train.items[i] : &t->test.items[i - t->train.n];
        if (p->nchanges)
            return exec_failb(err, 501, "not_implemented", s->strategy->h.pos,
                              "strategy %s: CHANGE mutations are not passed to strategies yet: "
                              "rank the mutated data with a proxy",
                              t->strategy->name);
    }
    if (t->sort.has_aggregate)
        return exec_failb(err, 400, "semantic_error", s->strategy->h.pos,
                          "a strategy answers one ranking: drop the aggregate of err");
    if (!load_models(ctx, s, t->modality, t->replay, true, &t->models, result, err))
        return false;
    t->ngroups = 1;
    if (t->models.n == 0)
        return true;
    /* Every catalog field of the candidates, and num_classes of the datasets. */
    json_t *ids = json_array(), *dsids = json_array();
    for (size_t i = 0; i < t->models.n; i++)
        json_array_append_new(ids, json_integer(t->models.items[i].id));
    for (size_t i = 0; i < t->train.n + t->test.n; i++) {
        const part *p = i < t->train.n ? &t->train.items[i] : &t->test.items[i - t->train.n];
        json_array_append(dsids, json_object_get(p->data.obj, "id"));
    }
    char *idtext = json_dumps(ids, JSON_COMPACT), *dstext = json_dumps(dsids, JSON_COMPACT);
    json_decref(ids);
    json_decref(dsids);
    const char *params[] = {idtext, dstext};
    PGresult *res = exec_sql(
        ctx,
        "SELECT 'm', id, (to_jsonb(m) - 'created_at' - 'updated_at')::text FROM models m "
        "WHERE id = ANY (translate($1, '[]', '{}')::bigint[]) "
        "UNION ALL SELECT 'd', id, num_classes::text FROM datasets "
        "WHERE id = ANY (translate($2, '[]', '{}')::bigint[])",
        2, params, err);
    free(idtext);
    free(dstext);
    if (!res)
        return false;
    json_t *catalog = json_object(), *classes = json_object();
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 1);
        if (PQgetvalue(res, r, 0)[0] == 'm')
            json_object_set_new(catalog, id, json_loads(PQgetvalue(res, r, 2), 0, NULL));
        else if (!PQgetisnull(res, r, 2))
            json_object_set_new(classes, id, json_integer(strtoll(PQgetvalue(res, r, 2), NULL, 10)));
    }
    PQclear(res);
    /* Models by id: the same candidates are the same job whatever the query's order. */
    int64_t *order = xcalloc(t->models.n + 1, sizeof *order);
    for (size_t i = 0; i < t->models.n; i++)
        order[i] = t->models.items[i].id;
    for (size_t i = 1; i < t->models.n; i++)
        for (size_t j = i; j > 0 && order[j - 1] > order[j]; j--) {
            int64_t x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    json_t *models = json_array();
    for (size_t i = 0; i < t->models.n; i++)
        for (size_t m = 0; m < t->models.n; m++) {
            const model_use *mu = &t->models.items[m];
            if (mu->id != order[i])
                continue;
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)mu->id);
            json_t *o = json_pack("{s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(mu->obj, "id"),
                                  "name", json_object_get(mu->obj, "name"), "runner",
                                  json_object_get(mu->obj, "runner"), "modality",
                                  json_object_get(mu->obj, "modality"), "spec",
                                  json_object_get(mu->obj, "spec"));
            json_t *c = json_object_get(catalog, key);
            json_object_set(o, "catalog", c ? c : json_object());
            json_array_append_new(models, o);
        }
    free(order);
    json_t *payload = json_pack(
        "{s:{s:s, s:s, s:O}, s:o, s:{s:o, s:o}}", "strategy", "name", t->strategy->name,
        "version", t->strategy->version, "params", t->strategy_params, "models", models,
        "datasets", "train", strategy_datasets(&t->train, classes), "test",
        strategy_datasets(&t->test, classes));
    json_decref(catalog);
    json_decref(classes);
    /* On file data, the datasets as embed jobs name them (slices resolved): the host API
     * builds from them the very embed, proxy and fine-tune jobs a ranking or FINETUNE of
     * the same data submits (executor/workers/strategy_host.c). */
    if (!t->replay) {
        json_t *dtrain = json_array(), *dtest = json_array();
        for (size_t i = 0; i < t->train.n; i++)
            json_array_append(dtrain, t->train.items[i].data.obj);
        for (size_t i = 0; i < t->test.n; i++)
            json_array_append(dtest, t->test.items[i].data.obj);
        json_object_set_new(payload, "data", json_pack("{s:o, s:o}", "train", dtrain, "test",
                                                       dtest));
    }
    t->strategy_job = task_job_set_add(&t->jobs, "strategy", payload);
    if (!t->models.n) /* nothing to rank: nothing to submit */
        t->jobs.items[t->strategy_job].cached = true;
    return task_mark_cached(ctx, &t->jobs, "strategy", "strategy_results", err);
}

/* The ranking of a strategy job: its stored result, or why its job failed. */
static void strategy_assemble(exec_ctx *ctx, const task *t, json_t *result, exec_error *err,
                              bool *ok)
{
    json_t *rows = json_array(), *rankings = json_array(), *failures = json_array();
    json_t *cols = json_array();
    json_array_append_new(cols, json_string("rank"));
    json_array_extend(cols, t->models.columns);
    json_array_append_new(cols, json_string("proxy"));
    json_array_append_new(cols, json_string("err"));
    json_array_append_new(cols, json_string("acc"));
    *ok = true;
    json_t *ranking = NULL;
    char *failure = NULL;
    if (t->models.n) {
        const char *h = t->jobs.items[t->strategy_job].hash;
        const char *params[] = {h};
        PGresult *res = exec_sql(ctx,
                                 "SELECT r.ranking::text, j.status, j.error FROM "
                                 "(SELECT $1::text AS h) q "
                                 "LEFT JOIN strategy_results r ON r.hash = q.h "
                                 "LEFT JOIN jobs j ON j.hash = q.h",
                                 1, params, err);
        if (!res) {
            *ok = false;
        } else if (PQntuples(res) == 1) {
            if (!PQgetisnull(res, 0, 0))
                ranking = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
            else if (!PQgetisnull(res, 0, 1) && (strcmp(PQgetvalue(res, 0, 1), "failed") == 0 ||
                                                 strcmp(PQgetvalue(res, 0, 1), "cancelled") == 0))
                failure = xstrdup(PQgetisnull(res, 0, 2) ? PQgetvalue(res, 0, 1)
                                                        : PQgetvalue(res, 0, 2));
        }
        PQclear(res);
    }
    size_t n = json_array_size(ranking);
    size_t limit = t->s->has_limit && (size_t)t->s->limit < n ? (size_t)t->s->limit : n;
    for (size_t i = 0; i < limit; i++) {
        json_t *e = json_array_get(ranking, i);
        json_int_t id = json_integer_value(json_object_get(e, "model_id"));
        for (size_t m = 0; m < t->models.n; m++) {
            if (t->models.items[m].id != id)
                continue;
            json_t *row = json_pack("[I]", (json_int_t)i + 1);
            json_t *cells = t->models.items[m].cells;
            for (size_t c = 0; c < json_array_size(cells); c++)
                json_array_append(row, json_array_get(cells, c));
            json_array_append_new(row, json_string(t->strategy_label));
            json_array_append_new(row, json_real(json_number_value(json_object_get(e, "err"))));
            json_array_append_new(row, json_null());
            json_array_append_new(rows, row);
        }
    }
    json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:O, s:I, s:I}", "proxy", t->strategy_label,
                          "strategy", t->strategy->name, "kind", ext_kind_name(t->strategy->kind),
                          "version", t->strategy->version, "params", t->strategy_params, "rows",
                          (json_int_t)limit, "pending",
                          (json_int_t)(ranking || failure ? 0 : t->models.n));
    json_array_append_new(rankings, r);
    if (failure) {
        json_array_append_new(failures, json_pack("{s:n, s:s, s:s}", "model", "proxy",
                                                  t->strategy_label, "error", failure));
        result_notice(result, "strategy %s failed: %s", t->strategy_label, failure);
    }
    free(failure);
    json_decref(ranking);
    result_set(result, cols, rows);
    json_object_set_new(result, "rankings", rankings);
    json_object_set_new(result, "failures", failures);
}

/* ---- successive halving (CHUNK / BUDGET) -------------------------------------------------
 * Rounds of proxy jobs over growing training prefixes (planner/sh.h has the schedule and the
 * selection). Round k's prefix is made of the chunks of rounds 0..k — each an embed job of
 * its own slice — so every round reuses the embeddings of the ones before. A query without
 * WAIT advances as far as the known results allow and submits the next round's missing
 * jobs; asking again continues. */

static bool sh_check(const task *t, exec_error *err)
{
    const ast_select *s = t->s;
    ast_pos pos = s->chunk.present ? s->chunk.pos : s->budget.pos;
    if (t->strategy)
        return exec_failb(err, 400, "semantic_error", pos,
                          "successive halving ranks by proxies, not by a strategy");
    if (s->tested_kind == TESTED_BENCHMARK)
        return exec_failb(err, 400, "semantic_error", pos,
                          "successive halving needs one test task: use TESTED ON TASK");
    if (t->replay)
        return exec_failb(err, 400, "semantic_error", pos,
                          "successive halving needs embeddings: replay data cannot be chunked");
    for (size_t i = 0; i < t->train.n; i++) {
        const part *p = &t->train.items[i];
        const char *name = json_string_value(json_object_get(p->data.obj, "name"));
        if (p->nchanges)
            return exec_failb(err, 501, "not_implemented", pos,
                              "CHANGE on a TRAINED ON dataset with CHUNK/BUDGET is not "
                              "implemented yet (\"%s\")",
                              name);
        if (p->data.size <= 0)
            return exec_failb(err, 422, "validation_error", pos,
                              "successive halving needs the size of \"%s\": register it with "
                              "its file (or a size)",
                              name);
    }
    return true;
}

/* η as the query gives it (ETA n, ≥ 2 by the grammar), else SH_ETA_DEFAULT. */
static int sh_eta(const ast_select *s)
{
    return s->eta.present ? (int)s->eta.value : SH_ETA_DEFAULT;
}

static sh_bound bound_of(const ast_amount *a)
{
    sh_bound b = {SH_BOUND_ABSENT, 0};
    if (a->present) {
        b.kind = a->is_auto ? SH_BOUND_AUTO : SH_BOUND_VALUE;
        b.value = a->value;
    }
    return b;
}

/* The chunks of rounds 0..k of the training data: per dataset, one slice per round that
 * added rows to it. */
static void sh_round_parts(const task *t, const sh_schedule *sched, int k, part_list *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < t->train.n; i++) {
        const dataset_use *d = &t->train.items[i].data;
        int64_t base = json_integer_value(json_object_get(d->obj, "start"));
        int64_t prev = 0;
        for (int j = 0; j <= k; j++) {
            int64_t upto = sched->rounds[j].prefix[i];
            if (upto <= prev)
                continue;
            if (out->n == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 8;
                out->items = xrealloc(out->items, out->cap * sizeof *out->items);
            }
            part *p = &out->items[out->n++];
            memset(p, 0, sizeof *p);
            p->data = *d;
            p->data.obj = json_deep_copy(d->obj);
            json_object_set_new(p->data.obj, "start", json_integer(base + prev));
            json_object_set_new(p->data.obj, "stop", json_integer(base + upto));
            p->data.size = upto - prev;
            prev = upto;
        }
    }
}

/* Adds round k's job of proxy p for every alive model to t->jobs; cells[m].job is its index.
 * The embed jobs of a chunk are the same for every proxy (one job each, by hash). */
static void sh_build_round(task *t, const sh_schedule *sched, int k, size_t p, const bool *alive,
                           cell_ref *cells)
{
    part_list parts;
    sh_round_parts(t, sched, k, &parts);
    /* PCA and other fitted extractors fit on the whole first training dataset, as without
     * SH, so every round's features share one basis. */
    const json_t *fit = t->train.items[0].data.obj;
    for (size_t m = 0; m < t->models.n; m++) {
        cells[m] = (cell_ref){m, p, 0, SIZE_MAX};
        if (!alive[m])
            continue;
        const model_use *mu = &t->models.items[m];
        size_t *deps = NULL, ndeps = 0;
        json_t *train = parts_payload(&t->jobs, mu, parts.items, parts.n, fit, &deps, &ndeps);
        json_t *test = parts_payload(&t->jobs, mu, t->test.items, t->test.n, fit, &deps, &ndeps);
        json_t *payload = json_pack("{s:O, s:I, s:o, s:o}", "proxy", t->proxies[p].proxy,
                                    "model_id", (json_int_t)mu->id, "train", train, "test", test);
        size_t j = task_job_set_add(&t->jobs, "proxy", payload);
        for (size_t d = 0; d < ndeps; d++)
            task_job_add_dep(&t->jobs, j, deps[d]);
        free(deps);
        cells[m].job = j;
    }
    task_part_list_free(&parts);
}

/* Looks round k's jobs up in the caches; only the jobs this round still needs stay
 * un-cached (and so get submitted). */
static bool sh_mark_round(exec_ctx *ctx, task *t, const cell_ref *cells, size_t ncells,
                          exec_error *err)
{
    if (!task_mark_cached(ctx, &t->jobs, "embed", "feature_cache", err) ||
        !task_forget_missing_features(ctx, &t->jobs, err) ||
        !task_mark_cached(ctx, &t->jobs, "proxy", "proxy_results", err))
        return false;
    bool *needed = xcalloc(t->jobs.n + 1, sizeof *needed);
    for (size_t m = 0; m < ncells; m++) {
        size_t j = cells[m].job;
        if (j == SIZE_MAX || t->jobs.items[j].cached)
            continue;
        needed[j] = true;
        for (size_t d = 0; d < t->jobs.items[j].ndeps; d++)
            needed[t->jobs.items[j].deps[d]] = true;
    }
    for (size_t i = 0; i < t->jobs.n; i++)
        if (!needed[i])
            t->jobs.items[i].cached = true;
    free(needed);
    return true;
}

/* Appends proxy p's ranking to rows; returns how many rows it gave. */
static size_t sh_rows(const task *t, size_t p, const sh_ranked *order, json_t *rows)
{
    size_t n = t->models.n;
    size_t limit = t->s->has_limit && (size_t)t->s->limit < n ? (size_t)t->s->limit : n;
    for (size_t i = 0; i < limit; i++) {
        const sh_ranked *r = &order[i];
        json_t *row = json_array();
        json_array_append_new(row, json_integer((json_int_t)i + 1));
        json_t *cells = t->models.items[r->model].cells;
        for (size_t c = 0; c < json_array_size(cells); c++)
            json_array_append(row, json_array_get(cells, c));
        json_array_append_new(row, json_string(t->proxies[p].label));
        json_array_append_new(row, json_integer(r->survived));
        json_array_append_new(row, r->last_round >= 0 ? json_integer(r->train_rows)
                                                      : json_null());
        bool has = r->last_round >= 0 && !isnan(r->err);
        json_array_append_new(row, has ? json_real(r->err) : json_null());
        json_array_append_new(row, has && !t->proxies[p].is_score ? json_real(1 - r->err)
                                                                  : json_null());
        json_array_append_new(rows, row);
    }
    return limit;
}

static json_t *sh_schedule_json(const sh_schedule *sched, int rounds_done)
{
    json_t *rounds = json_array();
    for (int k = 0; k < sched->n_rounds; k++)
        json_array_append_new(rounds,
                              json_pack("{s:i, s:I, s:I, s:I, s:b}", "round", k, "models",
                                        (json_int_t)sched->rounds[k].models, "keep",
                                        (json_int_t)sched->rounds[k].keep, "train_rows",
                                        (json_int_t)sched->rounds[k].prefix_total, "done",
                                        k < rounds_done));
    return json_pack("{s:I, s:I, s:i, s:i, s:o}", "chunk", (json_int_t)sched->chunk, "budget",
                     (json_int_t)sched->budget, "eta", sched->eta, "rounds_done", rounds_done,
                     "rounds", rounds);
}

/* Runs (or advances) the SH search of a planned task; fills result. Several proxies run one
 * SH each (one ranking per proxy, as without SH) in step: round k of every proxy is built,
 * submitted and waited for together, so a chunk's embed jobs serve all of them. A proxy whose
 * round is pending stops there; the others go on as far as their results allow. */
static bool run_sh(exec_ctx *ctx, task *t, json_t *result, exec_error *err)
{
    const ast_select *s = t->s;
    size_t M = t->models.n, P = t->nproxies;
    if (M < 2) {
        result_set(result, json_array(), json_array());
        result_notice(result, "successive halving needs at least 2 models; %zu matched", M);
        return true;
    }
    int64_t sizes[SH_MAX_DATASETS], total = 0;
    if (t->train.n > SH_MAX_DATASETS)
        return exec_failb(err, 400, "semantic_error", s->chunk.pos,
                          "successive halving takes at most %d TRAINED ON datasets",
                          SH_MAX_DATASETS);
    for (size_t i = 0; i < t->train.n; i++)
        total += sizes[i] = t->train.items[i].data.size;
    int64_t chunk, budget;
    char msg[256];
    sh_schedule sched;
    if (sh_auto_bounds(total, (int64_t)M, sh_eta(s), bound_of(&s->chunk),
                       bound_of(&s->budget), &chunk, &budget, msg, sizeof msg) != 0 ||
        sh_schedule_make(&sched, (int64_t)M, sizes, t->train.n, chunk, budget, sh_eta(s), msg,
                         sizeof msg) != 0)
        return exec_failb(err, 400, "semantic_error",
                          s->chunk.present ? s->chunk.pos : s->budget.pos,
                          "successive halving: %s", msg);
    int L = sched.n_rounds;
    /* Per proxy p: errs [p][round][model], alive and order [p][model], cells [p][model]. */
    double *errs = xcalloc((size_t)L * M * P, sizeof *errs);
    bool *alive = xcalloc(M * P, sizeof *alive);
    cell_ref *cells = xcalloc(M * P, sizeof *cells);
    sh_ranked *order = xcalloc(M * P, sizeof *order);
    int *done = xcalloc(P, sizeof *done);
    bool *stuck = xcalloc(P, sizeof *stuck);
    json_t *failures = json_array();
    for (size_t i = 0; i < M * P; i++)
        alive[i] = true;
    long submitted_total = 0, remaining = 0;
    char *query_id = NULL;
    bool ok = true;
    double waited_total = 0;
    while (ok) {
        bool any = false;
        for (size_t p = 0; p < P; p++) {
            if (done[p] < L && !stuck[p]) {
                sh_build_round(t, &sched, done[p], p, alive + p * M, cells + p * M);
                any = true;
            } else {
                for (size_t m = 0; m < M; m++)
                    cells[p * M + m] = (cell_ref){m, p, 0, SIZE_MAX};
            }
        }
        if (!any)
            break;
        ok = sh_mark_round(ctx, t, cells, M * P, err);
        long submitted = ok && !ctx->dry ? task_submit_jobs(ctx, &t->jobs, err) : 0;
        ok = ok && submitted >= 0;
        if (ok && submitted > 0) {
            submitted_total += submitted;
            free(query_id);
            ok = (query_id = task_record_query(ctx, &t->jobs, err)) != NULL;
            if (ok && s->wait) {
                double waited = 0;
                wait_end end = task_wait_for_jobs(ctx, &t->jobs, query_id, err, &waited);
                waited_total += waited;
                ok = end != WAIT_ERROR;
                if (end == WAIT_CANCELLED)
                    ok = exec_failb(err, 499, "cancelled", s->h.pos,
                                    "the WAIT was cancelled; its jobs keep running (CANCEL "
                                    "QUERY '%s' cancels them)",
                                    query_id);
            }
        }
        if (!ok)
            break;
        /* load_values reads only the cells of models that ran this round. */
        size_t n = 0;
        cell_ref *ran = xcalloc(M * P, sizeof *ran);
        for (size_t c = 0; c < M * P; c++)
            if (cells[c].job != SIZE_MAX)
                ran[n++] = cells[c];
        cell_value *got = xcalloc(n + 1, sizeof *got);
        ok = load_values(ctx, &t->jobs, ran, n, got, err);
        long *pending = xcalloc(P, sizeof *pending);
        for (size_t i = 0; ok && i < n; i++) {
            size_t m = ran[i].model, p = ran[i].proxy;
            errs[((size_t)p * L + (size_t)done[p]) * M + m] = got[i].known ? got[i].err : NAN;
            if (!got[i].known && got[i].error)
                json_array_append_new(failures,
                                      json_pack("{s:s, s:s, s:i, s:s}", "model",
                                                t->models.items[m].name, "proxy",
                                                t->proxies[p].label, "round", done[p], "error",
                                                got[i].error));
            else if (!got[i].known)
                pending[p]++;
        }
        for (size_t i = 0; i < n; i++)
            free(got[i].error);
        free(got);
        free(ran);
        for (size_t p = 0; ok && p < P; p++) {
            if (done[p] >= L || stuck[p])
                continue;
            if (pending[p]) {
                remaining += pending[p];
                stuck[p] = true;
                continue;
            }
            done[p]++;
            ok = sh_select(&sched, done[p], errs + (size_t)p * L * M, order + p * M,
                           alive + p * M, msg, sizeof msg) == 0 ||
                 exec_failb(err, 500, "internal_error", s->h.pos, "successive halving: %s", msg);
        }
        free(pending);
    }
    int min_done = L;
    for (size_t p = 0; ok && p < P; p++) {
        min_done = done[p] < min_done ? done[p] : min_done;
        ok = sh_select(&sched, done[p], errs + (size_t)p * L * M, order + p * M, NULL, msg,
                       sizeof msg) == 0 ||
             exec_failb(err, 500, "internal_error", s->h.pos, "successive halving: %s", msg);
    }
    if (ok) {
        json_t *cols = json_array();
        json_array_append_new(cols, json_string("rank"));
        json_array_extend(cols, t->models.columns);
        json_array_append_new(cols, json_string("proxy"));
        json_array_append_new(cols, json_string("rounds"));
        json_array_append_new(cols, json_string("train_rows"));
        json_array_append_new(cols, json_string("err"));
        json_array_append_new(cols, json_string("acc"));
        json_t *rows = json_array(), *rankings = json_array();
        for (size_t p = 0; p < P; p++) {
            size_t nrows = sh_rows(t, p, order + p * M, rows);
            json_array_append_new(rankings,
                                  json_pack("{s:s, s:O, s:I, s:i}", "proxy", t->proxies[p].label,
                                            "params", t->proxies[p].proxy, "rows",
                                            (json_int_t)nrows, "rounds_done", done[p]));
        }
        result_set(result, cols, rows);
        json_object_set_new(result, "rankings", rankings);
        json_object_set_new(result, "sh", sh_schedule_json(&sched, min_done));
        json_object_set(result, "failures", failures);
        if (query_id)
            json_object_set_new(result, "query_id", json_string(query_id));
        json_object_set_new(result, "remaining_jobs", json_integer(remaining));
        json_object_set_new(result, "jobs", json_pack("{s:I, s:I}", "submitted",
                                                      (json_int_t)submitted_total, "remaining",
                                                      (json_int_t)remaining));
        json_object_set_new(result, "status",
                            json_string(min_done == L ? (json_array_size(failures) ? "partial"
                                                                                  : "complete")
                                        : ctx->dry ? "dry"
                                                   : "running"));
        if (s->wait && submitted_total)
            json_object_set_new(result, "wait_seconds", json_real(waited_total));
        if (min_done < L)
            result_notice(result,
                          "successive halving: %d of %d rounds done%s; ask again (or add WAIT) "
                          "to go on",
                          min_done, L,
                          remaining ? ", the next round's jobs are running" : "");
        else
            result_notice(result,
                          "successive halving: %d rounds, chunk %lld, budget %lld, eta %d%s; "
                          "ranked by rounds survived, then err",
                          L, (long long)sched.chunk, (long long)sched.budget, sched.eta,
                          P > 1 ? ", one search per proxy" : "");
    }
    free(query_id);
    json_decref(failures);
    free(order);
    free(cells);
    free(alive);
    free(errs);
    free(done);
    free(stuck);
    sh_schedule_free(&sched);
    return ok;
}

/* ---- cost estimates (planner/cost.h) ---------------------------------------------------
 * EXPLAIN prints the estimated seconds of the jobs a ranking would run (cached ones cost 0);
 * CHUNK AUTO without BUDGET runs successive halving only when its estimate is lower than
 * the full ranking's. */

typedef struct plan_cost {
    double embed_cpu, embed_gpu, proxy, other; /* seconds of the jobs to run */
    size_t n;
    int64_t *ids;
    cost_rate *rates;
    int64_t *dims;
    bool unknown_rows;        /* an embed job of a dataset of unknown size (counted as 0) */
} plan_cost;

static void plan_cost_free(plan_cost *pc)
{
    free(pc->ids);
    free(pc->rates);
    free(pc->dims);
    memset(pc, 0, sizeof *pc);
}

static bool load_rates(exec_ctx *ctx, const task *t, plan_cost *pc, exec_error *err)
{
    pc->n = t->models.n;
    pc->ids = xcalloc(pc->n + 1, sizeof *pc->ids);
    pc->rates = xcalloc(pc->n + 1, sizeof *pc->rates);
    pc->dims = xcalloc(pc->n + 1, sizeof *pc->dims);
    for (size_t i = 0; i < pc->n; i++)
        pc->ids[i] = t->models.items[i].id;
    return task_model_rates(ctx, pc->ids, pc->n, pc->rates, pc->dims, err);
}

static size_t rate_index(const plan_cost *pc, int64_t model_id)
{
    for (size_t i = 0; i < pc->n; i++)
        if (pc->ids[i] == model_id)
            return i;
    return SIZE_MAX;
}

static int64_t part_rows(const part_list *l, json_int_t id, json_int_t start)
{
    for (size_t i = 0; i < l->n; i++) {
        const dataset_use *d = &l->items[i].data;
        if (json_integer_value(json_object_get(d->obj, "id")) == id &&
            json_integer_value(json_object_get(d->obj, "start")) == start)
            return d->size;
        for (size_t c = 0; c < l->items[i].nchanges; c++) {
            const dataset_use *g = &l->items[i].changes[c].target;
            if (json_integer_value(json_object_get(g->obj, "id")) == id &&
                json_integer_value(json_object_get(g->obj, "start")) == start)
                return g->size;
        }
    }
    return -1;
}

/* Rows an embed job embeds: its slice, or the size of the dataset it came from; -1 unknown. */
static int64_t embed_job_rows(const task *t, const json_t *payload)
{
    const json_t *d = json_object_get(payload, "dataset");
    json_t *start = json_object_get(d, "start"), *stop = json_object_get(d, "stop");
    json_int_t a = json_is_integer(start) ? json_integer_value(start) : 0;
    if (json_is_integer(stop))
        return json_integer_value(stop) - a;
    json_int_t id = json_integer_value(json_object_get(d, "id"));
    int64_t n = part_rows(&t->train, id, a);
    return n >= 0 ? n : part_rows(&t->test, id, a);
}

/* Σ rows of the embed jobs a proxy payload's train or test names. */
static int64_t parts_rows(const task *t, const json_t *parts)
{
    int64_t rows = 0;
    for (size_t i = 0; i < json_array_size(parts); i++) {
        size_t j = task_job_find(&t->jobs,
                                 json_string_value(json_object_get(json_array_get(parts, i),
                                                                   "features")));
        int64_t n = j == SIZE_MAX ? -1 : embed_job_rows(t, t->jobs.items[j].payload);
        rows += n > 0 ? n : 0;
    }
    return rows;
}

/* The estimated seconds of every job of t->jobs that is not cached. */
static void estimate_jobs(const task *t, plan_cost *pc)
{
    pc->embed_cpu = pc->embed_gpu = pc->proxy = pc->other = 0;
    for (size_t i = 0; i < t->jobs.n; i++) {
        const job_ref *j = &t->jobs.items[i];
        if (j->cached)
            continue;
        if (strcmp(j->kind, "embed") == 0) {
            json_int_t mid = json_integer_value(
                json_object_get(json_object_get(j->payload, "model"), "id"));
            size_t r = rate_index(pc, mid);
            cost_rate rate = r == SIZE_MAX ? cost_rate_of(-1, NULL, -1, 0) : pc->rates[r];
            int64_t rows = embed_job_rows(t, j->payload);
            pc->unknown_rows |= rows < 0;
            /* A fitted extractor fits on the "fit" dataset in every embed job. */
            const json_t *fit = json_object_get(j->payload, "fit");
            if (json_is_object(fit) && rows >= 0) {
                json_t *fp = json_pack("{s:O}", "dataset", fit);
                int64_t f = embed_job_rows(t, fp);
                json_decref(fp);
                rows += f > 0 ? f : 0;
            }
            double sec = cost_embed_job_seconds(rate.seconds_per_row, rate.job_seconds, rows);
            *(rate.gpu ? &pc->embed_gpu : &pc->embed_cpu) += sec;
        } else if (strcmp(j->kind, "proxy") == 0) {
            const json_t *proxy = json_object_get(j->payload, "proxy");
            cost_proxy kind;
            if (json_object_get(j->payload, "replay") ||
                !cost_proxy_of(json_string_value(json_object_get(proxy, "name")), &kind)) {
                pc->proxy += COST_JOB_OVERHEAD_S; /* answered from records */
                continue;
            }
            size_t r = rate_index(pc, json_integer_value(json_object_get(j->payload, "model_id")));
            const json_t *epochs = json_object_get(json_object_get(proxy, "params"), "num_epochs");
            pc->proxy += cost_proxy_seconds(kind, parts_rows(t, json_object_get(j->payload, "train")),
                                            parts_rows(t, json_object_get(j->payload, "test")),
                                            r == SIZE_MAX ? 0 : pc->dims[r], 0,
                                            json_is_integer(epochs) ? json_integer_value(epochs) : 0);
        } else {
            pc->other += COST_JOB_OVERHEAD_S; /* a strategy: its own work is not modelled */
        }
    }
}

static double plan_cost_total(const plan_cost *pc)
{
    return pc->embed_cpu + pc->embed_gpu + pc->proxy + pc->other;
}

/* "1.23 s CPU", "0.50 s CPU + 2.00 s GPU" (a static buffer: use it at once) */
static const char *seconds_text_buf(double cpu, double gpu)
{
    static _Thread_local char buf[96];
    if (gpu > 0 && cpu > 0)
        snprintf(buf, sizeof buf, "%.2f s CPU + %.2f s GPU", cpu, gpu);
    else if (gpu > 0)
        snprintf(buf, sizeof buf, "%.2f s GPU", gpu);
    else
        snprintf(buf, sizeof buf, "%.2f s CPU", cpu);
    return buf;
}

/* The SH estimate of t with the AUTO (or given) bounds; -1 with *why when SH cannot run. */
static int sh_estimate(const task *t, const plan_cost *pc, const bool *test_cached,
                       sh_schedule *sched, cost_sh *est, char *why, size_t whylen)
{
    const ast_select *s = t->s;
    size_t M = t->models.n;
    if (M < 2) {
        snprintf(why, whylen, "fewer than 2 models");
        return -1;
    }
    if (t->train.n > SH_MAX_DATASETS) {
        snprintf(why, whylen, "more than %d TRAINED ON datasets", SH_MAX_DATASETS);
        return -1;
    }
    int64_t sizes[SH_MAX_DATASETS], total = 0, n_test = 0, chunk, budget;
    for (size_t i = 0; i < t->train.n; i++)
        total += sizes[i] = t->train.items[i].data.size;
    for (size_t i = 0; i < t->test.n; i++)
        n_test += t->test.items[i].data.size > 0 ? t->test.items[i].data.size : 0;
    if (sh_auto_bounds(total, (int64_t)M, sh_eta(s), bound_of(&s->chunk),
                       bound_of(&s->budget), &chunk, &budget, why, whylen) != 0 ||
        sh_schedule_make(sched, (int64_t)M, sizes, t->train.n, chunk, budget, sh_eta(s), why,
                         whylen) != 0)
        return -1;
    double *spr = xcalloc(M, sizeof *spr), *job_s = xcalloc(M, sizeof *job_s);
    int64_t *fit = xcalloc(M, sizeof *fit);
    for (size_t m = 0; m < M; m++) {
        size_t r = rate_index(pc, t->models.items[m].id);
        spr[m] = r == SIZE_MAX ? COST_DEFAULT_SECONDS_PER_ROW : pc->rates[r].seconds_per_row;
        job_s[m] = r == SIZE_MAX ? COST_JOB_OVERHEAD_S : pc->rates[r].job_seconds;
        fit[m] = t->models.items[m].needs_fit ? sizes[0] : 0;
    }
    /* One SH per proxy: the test embeddings count once; each proxy's rounds count their
     * embed jobs again (an upper bound: a chunk embeds once for the survivors they share). */
    bool *all_cached = xcalloc(M, sizeof *all_cached);
    for (size_t m = 0; m < M; m++)
        all_cached[m] = true;
    int rc = 0;
    for (size_t p = 0; rc == 0 && p < t->nproxies; p++) {
        cost_proxy kind = COST_PROXY_NN;
        const json_t *proxy = t->proxies[p].proxy;
        cost_proxy_of(json_string_value(json_object_get(proxy, "name")), &kind);
        const json_t *epochs = json_object_get(json_object_get(proxy, "params"), "num_epochs");
        cost_task ct = {M, spr, pc->dims, p ? all_cached : test_cached, fit, total, n_test, 0,
                        json_is_integer(epochs) ? json_integer_value(epochs) : 0, kind, job_s};
        cost_sh one;
        rc = cost_sh_seconds(&ct, sched, p ? &one : est);
        if (rc == 0 && p) {
            est->rounds_s += one.rounds_s;
            est->total_s += one.rounds_s;
            for (int k = 0; k < sched->n_rounds; k++)
                est->round_s[k] += one.round_s[k];
        }
    }
    free(all_cached);
    free(job_s);
    free(spr);
    free(fit);
    if (rc != 0) {
        sh_schedule_free(sched);
        snprintf(why, whylen, "the schedule does not match the models");
    }
    return rc;
}

/* CHUNK AUTO without BUDGET: t's full plan is built and marked; SH runs instead only if its
 * estimate is lower. test_cached[m]: model m's test embeddings exist. */
static bool plan_auto(exec_ctx *ctx, task *t, const bool *test_cached, exec_error *err)
{
    plan_cost pc = {0};
    if (!load_rates(ctx, t, &pc, err)) {
        plan_cost_free(&pc);
        return false;
    }
    estimate_jobs(t, &pc);
    double full = plan_cost_total(&pc);
    exec_error why = {0};
    char msg[256] = "";
    sh_schedule sched;
    cost_sh est;
    if (!sh_check(t, &why) ||
        sh_estimate(t, &pc, test_cached, &sched, &est, msg, sizeof msg) != 0) {
        t->sh_choice = xasprintf("Plan choice: full ranking (est. %.2f s): successive halving "
                                 "does not apply (%s)",
                                 full, why.message[0] ? why.message : msg);
        t->sh_estimate = json_pack("{s:s, s:f, s:n, s:s}", "chose", "full", "full_seconds", full,
                                   "sh_seconds", "reason", why.message[0] ? why.message : msg);
        plan_cost_free(&pc);
        return true;
    }
    t->use_sh = cost_sh_pays(full, est.total_s);
    const char *chosen = t->use_sh ? "successive halving" : "full ranking";
    const char *other = t->use_sh ? "full ranking" : "successive halving";
    t->sh_choice = xasprintf("Plan choice: %s (est. %.2f s) over %s (est. %.2f s); SH would "
                             "run %d rounds, chunk %lld, budget %lld",
                             chosen, t->use_sh ? est.total_s : full, other,
                             t->use_sh ? full : est.total_s, sched.n_rounds,
                             (long long)sched.chunk, (long long)sched.budget);
    t->sh_estimate = json_pack("{s:s, s:f, s:f, s:f, s:i, s:I, s:I, s:i}", "chose",
                               t->use_sh ? "sh" : "full", "full_seconds", full, "sh_seconds",
                               est.total_s, "sh_test_seconds", est.test_s, "rounds",
                               sched.n_rounds, "chunk", (json_int_t)sched.chunk, "budget",
                               (json_int_t)sched.budget, "eta", sched.eta);
    sh_schedule_free(&sched);
    plan_cost_free(&pc);
    if (t->use_sh) { /* run_sh plans its own rounds */
        task_job_set_free(&t->jobs);
        free(t->cells);
        t->cells = NULL;
        t->ncells = 0;
    }
    return true;
}

/* Everything before submission: the data, the models, the job DAG, and which jobs the
 * caches make unnecessary (an embedding only a known proxy result needed counts as cached). */
static bool plan_task(exec_ctx *ctx, task *t, json_t *result, exec_error *err)
{
    const ast_select *s = t->s;
    bool ok = check_clauses(s, err) && order_spec(s, &t->sort, err) &&
              choose_proxies(t, result, err) &&
              task_resolve_parts(ctx, s->trained_on, &t->train, &t->modality, err) &&
              task_resolve_parts(ctx, s->tested_on, &t->test, &t->modality, err) &&
              replay_check_data(t, err);
    if (ok && t->strategy)
        return strategy_plan(ctx, t, result, err);
    ok = ok && load_models(ctx, s, t->modality, t->replay, false, &t->models, result, err) &&
         replay_prepare(t, err);
    if (!ok)
        return false;
    if (s->eta.present && !s->chunk.present)
        return exec_failb(err, 400, "semantic_error", s->eta.pos,
                          "ETA is successive halving's η: it needs CHUNK (CHUNK n BUDGET m ETA "
                          "%lld, or CHUNK AUTO)",
                          (long long)s->eta.value);
    if (s->eta.present && s->eta.value > SH_ETA_MAX)
        return exec_failb(err, 400, "semantic_error", s->eta.pos,
                          "ETA %lld is too large: successive halving takes 2 ≤ η ≤ %d",
                          (long long)s->eta.value, SH_ETA_MAX);
    bool sh_auto = s->chunk.present && s->chunk.is_auto && !s->budget.present;
    if ((s->chunk.present || s->budget.present) && !sh_auto) {
        t->use_sh = true;
        return sh_check(t, err); /* its jobs are built round by round (run_sh) */
    }
    build_jobs(t);
    if (!task_mark_cached(ctx, &t->jobs, "embed", "feature_cache", err) ||
        !task_forget_missing_features(ctx, &t->jobs, err) ||
        !task_mark_cached(ctx, &t->jobs, "proxy", "proxy_results", err))
        return false;
    /* Which models' test embeddings exist (before the caches of proxy results hide it). */
    bool *test_cached = NULL;
    if (sh_auto) {
        test_cached = xcalloc(t->models.n + 1, sizeof *test_cached);
        const json_t *fit = t->train.n ? t->train.items[0].data.obj : NULL;
        for (size_t m = 0; m < t->models.n; m++) {
            test_cached[m] = !t->models.items[m].replay_job;
            for (size_t i = 0; test_cached[m] && i < t->test.n; i++)
                test_cached[m] = t->jobs.items[embed_job(&t->jobs, &t->models.items[m],
                                                         &t->test.items[i].data, fit)]
                                     .cached;
        }
    }
    bool *needed = xcalloc(t->jobs.n + 1, sizeof *needed);
    for (size_t i = 0; i < t->jobs.n; i++)
        if (strcmp(t->jobs.items[i].kind, "proxy") == 0 && !t->jobs.items[i].cached) {
            needed[i] = true;
            for (size_t d = 0; d < t->jobs.items[i].ndeps; d++)
                needed[t->jobs.items[i].deps[d]] = true;
        }
    for (size_t i = 0; i < t->jobs.n; i++)
        if (!needed[i])
            t->jobs.items[i].cached = true;
    free(needed);
    ok = !sh_auto || plan_auto(ctx, t, test_cached, err);
    free(test_cached);
    return ok;
}

/* Runs a ranking. With actual (EXPLAIN ANALYZE), *actual receives the seconds of its jobs
 * that finished since `since` (task_actual_seconds). */
static json_t *run_task(exec_ctx *ctx, const ast_select *s, const char *since, json_t **actual,
                        exec_error *err)
{
    task t = {.s = s};
    json_t *result = result_new(s->is_rank ? "RANK" : "SELECT");
    cell_value *values = NULL;
    task_run run = {0};
    if (!plan_task(ctx, &t, result, err))
        goto fail;
    if (t.sh_choice)
        result_notice(result, "CHUNK AUTO: %s", t.sh_choice + strlen("Plan choice: "));
    if (t.sh_estimate)
        json_object_set(result, "plan_choice", t.sh_estimate);
    if (t.use_sh) {
        if (!run_sh(ctx, &t, result, err) ||
            (actual && !task_actual_seconds(ctx, &t.jobs, since, actual, err)))
            goto fail;
        task_free(&t);
        return result;
    }
    if (!task_run_jobs(ctx, &t.jobs, s->wait, s->h.pos, result, &run, err))
        goto fail;
    values = xcalloc(t.ncells + 1, sizeof *values);
    if (t.strategy) {
        bool assembled;
        strategy_assemble(ctx, &t, result, err, &assembled);
        if (!assembled)
            goto fail;
    } else {
        if (!load_values(ctx, &t.jobs, t.cells, t.ncells, values, err))
            goto fail;
        assemble(&t, values, result);
    }
    long remaining = task_report_jobs(ctx, &t.jobs, &run, s->wait, false, result, err);
    if (remaining < 0)
        goto fail;
    if (t.models.n == 0)
        result_notice(result, "no model matched the query");
    else if (run.submitted == 0 && remaining == 0)
        result_notice(result, "all %ld results came from the caches: no job ran", run.total);
    else if (s->wait && remaining == 0 && run.submitted < run.total)
        result_notice(result, "%ld of %ld jobs ran (%.1f s); the other %ld came from the caches",
                      run.submitted, run.total, run.waited, run.total - run.submitted);
    else if (s->wait && remaining == 0)
        result_notice(result, "%ld jobs ran (%.1f s)", run.submitted, run.waited);
    if (task_still_running(ctx, &run, remaining))
        result_notice(result,
                      "%ld job%s still running: these are the known results; run the query again, "
                      "or add WAIT, for the rest (CANCEL QUERY '%s' cancels them)",
                      remaining, remaining == 1 ? " is" : "s are", run.query_id ? run.query_id : "?");
    if (actual && !task_actual_seconds(ctx, &t.jobs, since, actual, err))
        goto fail;
    for (size_t i = 0; values && i < t.ncells; i++)
        free(values[i].error);
    free(values);
    free(run.query_id);
    task_free(&t);
    return result;
fail:
    for (size_t i = 0; values && i < t.ncells; i++)
        free(values[i].error);
    free(values);
    free(run.query_id);
    task_free(&t);
    json_decref(result);
    return NULL;
}

json_t *exec_task_query(exec_ctx *ctx, const ast_select *s, exec_error *err)
{
    return run_task(ctx, s, NULL, NULL, err);
}

/* ---- EXPLAIN -------------------------------------------------------------------------- */

static void count_kind(const job_set *s, const char *kind, long *total, long *cached)
{
    *total = *cached = 0;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].kind, kind) == 0) {
            ++*total;
            *cached += s->items[i].cached;
        }
}

static json_t *explain_node(const char *node, char *detail, json_t *children)
{
    json_t *n = json_pack("{s:s, s:s, s:o}", "node", node, "detail", detail, "children",
                          children ? children : json_array());
    free(detail);
    return n;
}

static json_t *data_nodes(const char *role, const part_list *parts)
{
    json_t *out = json_array();
    for (size_t i = 0; i < parts->n; i++) {
        const json_t *o = parts->items[i].data.obj;
        json_t *stop = json_object_get(o, "stop");
        json_t *start = json_object_get(o, "start");
        char range[64] = "", rows[48] = "";
        if (json_is_integer(start) && json_is_integer(stop))
            snprintf(range, sizeof range, " [%lld:%lld]", (long long)json_integer_value(start),
                     (long long)json_integer_value(stop));
        else if (json_is_integer(start))
            snprintf(range, sizeof range, " [%lld:]", (long long)json_integer_value(start));
        if (parts->items[i].data.size >= 0)
            snprintf(rows, sizeof rows, ", %lld rows", (long long)parts->items[i].data.size);
        char *detail = xasprintf("\"%s\"%s (%s%s%s)",
                                 json_string_value(json_object_get(o, "name")), range,
                                 json_string_value(json_object_get(o, "format")), rows,
                                 parts->items[i].nchanges ? ", with CHANGE" : "");
        json_array_append_new(out, explain_node(role, detail, NULL));
    }
    return out;
}

/* The Train and Test nodes of a plan. */
static json_t *data_tree(const task *t)
{
    json_t *nodes = data_nodes("Train", &t->train);
    json_t *test = data_nodes("Test", &t->test);
    json_array_extend(nodes, test);
    json_decref(test);
    return nodes;
}

/* Adds "estimated_seconds" and "estimated" ("1.20 s CPU") to a plan node; the detail stays
 * as it was (clients match it), the text lines get "; est. …" (estimate_lines). */
static json_t *with_estimate(json_t *node, double cpu, double gpu)
{
    json_object_set_new(node, "estimated_seconds", json_real(cpu + gpu));
    json_object_set_new(node, "estimated", json_string_nocheck(seconds_text_buf(cpu, gpu)));
    return node;
}

/* A copy of tree whose details end with "; est. …" where a node has an estimate. */
static json_t *estimate_lines(const json_t *tree)
{
    json_t *copy = json_deep_copy(tree);
    const char *est = json_string_value(json_object_get(copy, "estimated"));
    if (est) {
        char *detail = xasprintf("%s; est. %s",
                                 json_string_value(json_object_get(copy, "detail")), est);
        json_object_set_new(copy, "detail", json_string(detail));
        free(detail);
    }
    json_t *children = json_object_get(copy, "children");
    for (size_t i = 0; i < json_array_size(children); i++)
        json_array_set_new(children, i, estimate_lines(json_array_get(children, i)));
    return copy;
}

/* The plan of a ranking: Rank → Proxy jobs → Embed jobs → the data, and the models; each
 * job node with the estimated seconds of its jobs to run (pc). */
static json_t *task_tree(const task *t, const plan_cost *pc)
{
    if (t->strategy) {
        long total, cached;
        count_kind(&t->jobs, "strategy", &total, &cached);
        json_t *children = data_tree(t);
        json_array_append_new(children, explain_node("Models",
                                                     xasprintf("%zu from %s", t->models.n,
                                                               t->s->from.text),
                                                     NULL));
        json_t *job = explain_node("Strategy job",
                                   xasprintf("%s %s (%s): %ld (%ld cached, %ld to run)",
                                             t->strategy->name, t->strategy->version,
                                             ext_kind_name(t->strategy->kind), total, cached,
                                             total - cached),
                                   children);
        char limit[48] = "";
        if (t->s->has_limit)
            snprintf(limit, sizeof limit, ", LIMIT %lld", (long long)t->s->limit);
        with_estimate(job, pc->other, 0);
        return with_estimate(explain_node("Rank",
                                          xasprintf("1 ranking by %s, the strategy's order%s",
                                                    t->strategy_label, limit),
                                          json_pack("[o]", job)),
                             pc->other, 0);
    }
    long ptotal, pcached, etotal, ecached;
    count_kind(&t->jobs, "proxy", &ptotal, &pcached);
    count_kind(&t->jobs, "embed", &etotal, &ecached);
    strbuf names = {0};
    for (size_t i = 0; i < t->nproxies; i++)
        strbuf_printf(&names, "%s%s", i ? ", " : "", t->proxies[i].label);
    json_t *embed_children = data_tree(t);
    json_t *embed = explain_node("Embed jobs",
                              xasprintf("%ld (%ld cached, %ld to run)%s", etotal, ecached,
                                        etotal - ecached,
                                        t->replay ? "; replay models need none" : ""),
                              embed_children);
    with_estimate(embed, pc->embed_cpu, pc->embed_gpu);
    json_t *models = explain_node("Models", xasprintf("%zu from %s", t->models.n, t->s->from.text),
                               NULL);
    json_t *proxy = explain_node("Proxy jobs",
                              xasprintf("%ld (%ld cached, %ld to run)", ptotal, pcached,
                                        ptotal - pcached),
                              json_pack("[o, o]", embed, models));
    with_estimate(proxy, pc->proxy, 0);
    char limit[48] = "";
    if (t->s->has_limit)
        snprintf(limit, sizeof limit, ", LIMIT %lld each", (long long)t->s->limit);
    size_t nrankings = t->nproxies * (t->sort.has_aggregate ? 1 : t->ngroups);
    char *detail = xasprintf("%zu ranking%s by %s%s, %s first%s", nrankings,
                             nrankings == 1 ? "" : "s", names.data ? names.data : "",
                             t->sort.has_aggregate ? " (aggregated)" : "",
                             t->sort.ascending_err ? "lowest err" : "highest err", limit);
    strbuf_free(&names);
    return with_estimate(explain_node("Rank", detail, json_pack("[o]", proxy)),
                         pc->embed_cpu + pc->proxy + pc->other, pc->embed_gpu);
}

json_t *exec_task_explain(exec_ctx *ctx, const ast_explain *e, exec_error *err)
{
    const ast_select *s = (const ast_select *)e->stmt;
    task t = {.s = s};
    json_t *result = result_new("EXPLAIN");
    json_t *run = NULL;
    if (!plan_task(ctx, &t, result, err)) {
        task_free(&t);
        json_decref(result);
        return NULL;
    }
    plan_cost pc = {0};
    if (!load_rates(ctx, &t, &pc, err)) {
        plan_cost_free(&pc);
        task_free(&t);
        json_decref(result);
        return NULL;
    }
    estimate_jobs(&t, &pc);
    json_t *tree = task_tree(&t, &pc);
    /* Estimates the rows below print: the plan's jobs, and SH's rounds when it runs. */
    char *estimate_line = NULL, *sh_line = NULL;
    double estimated = plan_cost_total(&pc);
    if (t.use_sh) {
        sh_schedule sched;
        cost_sh est;
        char msg[256];
        if (sh_estimate(&t, &pc, NULL, &sched, &est, msg, sizeof msg) == 0) {
            /* CHUNK AUTO credited the cached test embeddings: print what it decided on. */
            json_t *decided = json_object_get(t.sh_estimate, "sh_seconds");
            if (json_is_number(decided)) {
                est.rounds_s = json_number_value(decided) - (est.total_s - est.rounds_s);
                est.test_s = json_number_value(decided) - est.rounds_s;
                est.total_s = json_number_value(decided);
            }
            estimated = est.total_s;
            sh_line = xasprintf("Successive halving: %d rounds, chunk %lld, budget %lld, eta "
                                "%d; est. %.2f s (test embeddings %.2f s, rounds %.2f s; "
                                "survivors at the pool's average cost)",
                                sched.n_rounds, (long long)sched.chunk, (long long)sched.budget,
                                sched.eta, est.total_s, est.test_s, est.rounds_s);
            json_object_set_new(tree, "sh_estimate",
                                json_pack("{s:i, s:I, s:I, s:i, s:f, s:f}", "rounds",
                                          sched.n_rounds, "chunk", (json_int_t)sched.chunk,
                                          "budget", (json_int_t)sched.budget, "eta", sched.eta,
                                          "seconds", est.total_s, "test_seconds", est.test_s));
            sh_schedule_free(&sched);
        }
        result_notice(result, "successive halving plans each round's jobs from the results of "
                              "the one before: EXPLAIN ANALYZE shows what ran");
    }
    estimate_line = xasprintf("Estimated: %.2f s of work (%s rates%s; cached jobs cost 0)",
                              estimated, pc.n ? "model" : "no", pc.unknown_rows
                                                                ? ", datasets of unknown size "
                                                                  "count 0 rows"
                                                                : "");
    json_object_set_new(tree, "total_estimated_seconds", json_real(estimated));
    json_t *rates = json_array();
    for (size_t i = 0; i < pc.n; i++)
        json_array_append_new(rates, json_pack("{s:s, s:f, s:f, s:b, s:s, s:s}", "model",
                                               t.models.items[i].name, "seconds_per_row",
                                               pc.rates[i].seconds_per_row, "job_seconds",
                                               pc.rates[i].job_seconds, "job_seconds_measured",
                                               pc.rates[i].fitted, "source",
                                               cost_source_name(pc.rates[i].source), "device",
                                               pc.rates[i].gpu ? "gpu" : "cpu"));
    json_object_set_new(tree, "model_rates", rates);
    if (t.sh_estimate)
        json_object_set(tree, "plan_choice", t.sh_estimate);
    char *choice = t.sh_choice ? xstrdup(t.sh_choice) : NULL;
    plan_cost_free(&pc);
    task_free(&t);
    double ms = 0;
    json_t *actual = NULL;
    if (e->analyze) {
        /* ANALYZE runs the ranking as written (WAIT included) and reports what it did. */
        char *since = task_db_now(ctx, err);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        run = since ? run_task(ctx, s, since, &actual, err) : NULL;
        clock_gettime(CLOCK_MONOTONIC, &b);
        free(since);
        if (!run) {
            free(estimate_line);
            free(sh_line);
            free(choice);
            json_decref(tree);
            json_decref(result);
            return NULL;
        }
        ms = explain_mark_run(tree, run, &a, &b);
        json_object_set(tree, "actual_seconds", actual);
    }
    json_t *rows = NULL;
    if (!e->json) {
        json_t *lines = estimate_lines(tree);
        rows = explain_rows(lines);
        json_decref(lines);
        const char *extra[] = {choice, sh_line, estimate_line};
        for (size_t i = 0; i < 3; i++)
            if (extra[i])
                json_array_append_new(rows, json_pack("[s]", extra[i]));
        if (actual) {
            strbuf sb = {0};
            strbuf_puts(&sb, "Actual:");
            const char *kind;
            json_t *v;
            bool any = false;
            json_object_foreach(actual, kind, v) {
                if (!json_is_object(v))
                    continue;
                strbuf_printf(&sb, "%s %s %lld job%s %.2f s", any ? "," : "", kind,
                              (long long)json_integer_value(json_object_get(v, "jobs")),
                              json_integer_value(json_object_get(v, "jobs")) == 1 ? "" : "s",
                              json_number_value(json_object_get(v, "seconds")));
                any = true;
            }
            strbuf_printf(&sb, "%s; total %.2f s of work (jobs that finished during this run; "
                               "cache hits 0)",
                          any ? "" : " no job ran",
                          json_number_value(json_object_get(actual, "total_seconds")));
            json_array_append_new(rows, json_pack("[s]", sb.data));
            strbuf_free(&sb);
        }
    }
    explain_jobs_result(result, e, tree, rows, run, ms, true);
    if (!e->analyze)
        result_notice(result, "EXPLAIN did not run the ranking; EXPLAIN ANALYZE runs it");
    free(estimate_line);
    free(sh_line);
    free(choice);
    json_decref(actual);
    json_decref(tree);
    json_decref(run);
    return result;
}
