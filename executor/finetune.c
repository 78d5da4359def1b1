/* FINETUNE v WITH d [USING "trainer(k=v, …)"] [WAIT] (docs/language.md "FINETUNE"): one
 * fine-tune job per model of v (a model name, or a session variable of models) on the
 * training data d (registered datasets, slices, variables of datasets; concatenated), with
 * the trainer's knobs resolved and checked before anything is submitted
 * (executor/workers/finetune/finetune.h). A head fine-tune depends on the embed jobs of its
 * data, like a proxy job; replay fine-tunes are answered from recorded runs. Known results
 * come from finetune_results (the job's hash), the rest are queued; WAIT blocks until they
 * are final. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "executor/internal.h"
#include "executor/task.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/finetune/finetune.h"
#include "queue/queue.h"

typedef struct ft_model {
    int64_t id;
    char *name, *runner;
    json_t *obj;             /* {"id","name","runner","modality","spec","batch_size"} as embed jobs name it */
    bool needs_fit;
    size_t job;              /* index of its finetune job in the job set; SIZE_MAX = none */
} ft_model;

typedef struct ft_task {
    const ast_finetune *f;
    size_t nmodels;
    ft_model *models;
    part_list train, test;
    char *modality;
    const char *trainer;     /* head, exec, replay; NULL = by runner */
    json_t *given;           /* knob name → value as written */
    json_t *given_pos;       /* knob name → [line, col] */
    json_t *knobs;           /* resolved (one trainer for all models) */
    job_set jobs;
} ft_task;

static void ft_free(ft_task *t)
{
    for (size_t i = 0; i < t->nmodels; i++) {
        free(t->models[i].name);
        free(t->models[i].runner);
        json_decref(t->models[i].obj);
    }
    free(t->models);
    task_part_list_free(&t->train);
    task_part_list_free(&t->test);
    free(t->modality);
    json_decref(t->given);
    json_decref(t->given_pos);
    json_decref(t->knobs);
    task_job_set_free(&t->jobs);
}

/* ---- models ----------------------------------------------------------------------------- */

/* The models of v: a session variable of models, else a model of that name. */
static bool load_models(exec_ctx *ctx, ft_task *t, exec_error *err)
{
    const ast_name *v = &t->f->models;
    bool failed = false;
    json_t *var = ctx->session_id ? var_fetch(ctx, v->text, err, &failed) : NULL;
    if (failed)
        return false;
    PGresult *res;
    if (var) {
        const char *entity = json_string_value(json_object_get(var, "entity"));
        if (!entity || strcmp(entity, "models") != 0) {
            exec_failb(err, 400, "semantic_error", v->pos,
                       "variable \"%s\" holds %s, not models: FINETUNE takes a model or a "
                       "variable of models",
                       v->text, entity ? entity : "no rows");
            json_decref(var);
            return false;
        }
        char *ids = json_dumps(json_object_get(var, "ids"), JSON_COMPACT);
        json_decref(var);
        const char *p[] = {ids};
        char *sql = xasprintf("%sWHERE id = ANY (translate($1, '[]', '{}')::bigint[]) "
                              "ORDER BY array_position(translate($1, '[]', '{}')::bigint[], id)",
                              TASK_MODEL_SELECT);
        res = exec_sql(ctx, sql, 1, p, err);
        free(sql);
        free(ids);
    } else {
        const char *p[] = {v->text};
        char *sql = xasprintf("%sWHERE name = $1", TASK_MODEL_SELECT);
        res = exec_sql(ctx, sql, 1, p, err);
        free(sql);
    }
    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return exec_failb(err, 404, "not_found", v->pos,
                          "no model or variable of models named \"%s\" (SHOW MODELS lists the "
                          "models; DECLARE v AS SELECT … FROM models … makes a variable)",
                          v->text);
    }
    t->models = xcalloc((size_t)PQntuples(res), sizeof *t->models);
    for (int r = 0; r < PQntuples(res); r++) {
        ft_model *m = &t->models[t->nmodels++];
        m->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        m->name = xstrdup(PQgetvalue(res, r, 1));
        m->runner = xstrdup(PQgetvalue(res, r, 2));
        m->job = SIZE_MAX;
        m->obj = task_model_obj(res, r, &m->needs_fit);
    }
    PQclear(res);
    return true;
}

/* ---- USING: the trainer and its knobs ------------------------------------------------- */

static json_t *param_value(const ast_node *v)
{
    if (v->kind == AST_LITERAL) {
        const ast_literal *l = (const ast_literal *)v;
        switch (l->type) {
        case LIT_INT: return json_integer(l->ival);
        case LIT_FLOAT: return json_real(l->fval);
        case LIT_STRING: return json_stringn(l->str, l->len);
        case LIT_BOOL: return json_boolean(l->bval);
        default: return NULL;
        }
    }
    if (v->kind == AST_COLUMN_REF) { /* a bare word: head=mlp */
        const ast_column_ref *c = (const ast_column_ref *)v;
        if (c->nparts == 1)
            return json_string(c->parts[0].text);
    }
    return NULL;
}

/* The trainer's name and the knobs as written; `test` is taken out (a dataset, not a knob). */
static bool read_using(ft_task *t, char **test_name, ast_pos *test_pos, exec_error *err)
{
    const ast_call *u = t->f->strategy;
    t->given = json_object();
    t->given_pos = json_object();
    if (!u)
        return true;
    t->trainer = u->name.text;
    if (!finetune_knob_config(t->trainer))
        return exec_failb(err, 400, "semantic_error", u->name.pos,
                          "unknown fine-tune strategy \"%s\" (strategies: %s)", t->trainer,
                          finetune_trainer_names());
    for (size_t i = 0; u->params && i < u->params->n; i++) {
        const ast_param *p = (const ast_param *)u->params->items[i];
        json_t *v = param_value(p->value);
        if (!v)
            return exec_failb(err, 400, "semantic_error", p->value->pos,
                              "knob %s: expected a number, a word or a string", p->key.text);
        if (json_object_get(t->given, p->key.text) ||
            (strcmp(p->key.text, "test") == 0 && *test_name)) {
            json_decref(v);
            return exec_failb(err, 400, "semantic_error", p->key.pos, "knob %s is given twice",
                              p->key.text);
        }
        if (strcmp(p->key.text, "test") == 0) {
            if (!json_is_string(v)) {
                json_decref(v);
                return exec_failb(err, 400, "semantic_error", p->value->pos,
                                  "test: expected a dataset name ('name' or 'name[start:stop]')");
            }
            *test_name = xstrdup(json_string_value(v));
            *test_pos = p->value->pos;
            json_decref(v);
            continue;
        }
        json_object_set_new(t->given, p->key.text, v);
        json_object_set_new(t->given_pos, p->key.text,
                            json_pack("[i, i]", p->key.pos.line, p->key.pos.col));
    }
    return true;
}

/* Resolves the knobs of the trainer: a bad one is a 422 naming it, at its position. */
static bool resolve_knobs(ft_task *t, exec_error *err)
{
    char *e = NULL;
    const char *bad = NULL;
    t->knobs = finetune_knobs_resolve(finetune_knob_config(t->trainer), t->given, &e, &bad);
    if (t->knobs)
        return true;
    const json_t *pos = bad ? json_object_get(t->given_pos, bad) : NULL;
    ast_pos p = t->f->strategy ? t->f->strategy->h.pos : t->f->h.pos;
    if (pos) {
        p.line = (int)json_integer_value(json_array_get(pos, 0));
        p.col = (int)json_integer_value(json_array_get(pos, 1));
    }
    exec_invalid(err, bad ? bad : "knobs", p, "%s", e);
    free(e);
    return false;
}

/* "name" or "name[start:stop]" (either bound optional) → a dataset reference. */
static ast_list *test_ref(arena *a, const char *text, ast_pos pos)
{
    ast_dataset_ref *r = AST_NEW(a, ast_dataset_ref, AST_DATASET_REF, pos);
    r->name.pos = pos;
    r->name.quoted = true;
    const char *br = strrchr(text, '[');
    size_t len = strlen(text);
    if (br && len > 0 && text[len - 1] == ']' && strchr(br, ':')) {
        const char *colon = strchr(br, ':');
        char *end;
        r->has_slice = true;
        if (colon > br + 1) {
            r->slice_start = strtoll(br + 1, &end, 10);
            r->has_slice_start = end == colon;
        }
        if (text + len - 1 > colon + 1) {
            r->slice_stop = strtoll(colon + 1, &end, 10);
            r->has_slice_stop = end == text + len - 1;
        }
        if ((colon > br + 1 && !r->has_slice_start) ||
            (text + len - 1 > colon + 1 && !r->has_slice_stop))
            return NULL;
        r->name.text = arena_strndup(a, text, (size_t)(br - text));
    } else {
        r->name.text = arena_strdup(a, text);
    }
    return ast_list_append(a, NULL, &r->h);
}

/* ---- jobs ------------------------------------------------------------------------------- */

static json_t *dataset_refs(const part_list *parts)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < parts->n; i++) {
        const json_t *o = parts->items[i].data.obj;
        json_array_append_new(arr, json_pack("{s:O, s:O, s:O?, s:O?}", "id",
                                             json_object_get(o, "id"), "name",
                                             json_object_get(o, "name"), "start",
                                             json_object_get(o, "start"), "stop",
                                             json_object_get(o, "stop")));
    }
    return arr;
}

static bool plan_jobs(ft_task *t, exec_error *err)
{
    const ast_pos pos = t->f->h.pos;
    bool replay_data = t->train.n > 0 && t->train.items[0].data.replay;
    for (size_t i = 0; i < t->train.n; i++) {
        if (t->train.items[i].data.replay != replay_data)
            return exec_failb(err, 400, "semantic_error", pos,
                              "replay datasets (recorded runs) cannot be mixed with file "
                              "datasets in one FINETUNE");
        if (t->train.items[i].nchanges)
            return exec_failb(err, 400, "semantic_error", pos,
                              "FINETUNE trains on datasets as registered: CHANGE is for "
                              "rankings");
        if (t->train.items[i].data.labels_only)
            return exec_failb(err, 400, "semantic_error", pos,
                              "dataset \"%s\" holds labels only: FINETUNE needs examples",
                              json_string_value(json_object_get(t->train.items[i].data.obj, "name")));
    }
    if (replay_data && t->train.n != 1)
        return exec_failb(err, 400, "semantic_error", pos,
                          "a replay FINETUNE takes one replay dataset (the task of the "
                          "recorded runs), not %zu", t->train.n);
    if (!t->trainer)
        t->trainer = replay_data ? "replay" : "head";
    if (replay_data != (strcmp(t->trainer, "replay") == 0))
        return exec_failb(err, 400, "semantic_error",
                          t->f->strategy ? t->f->strategy->name.pos : pos,
                          replay_data ? "replay datasets are fine-tuned with the replay "
                                        "strategy (recorded runs), not %s"
                                      : "the replay strategy answers from recorded runs: "
                                        "FINETUNE … WITH a replay dataset (not %s data)",
                          replay_data ? t->trainer : "file");
    for (size_t i = 0; i < t->test.n; i++)
        if (t->test.items[i].data.replay || t->test.items[i].data.labels_only ||
            t->test.items[i].nchanges)
            return exec_failb(err, 400, "semantic_error", pos,
                              "test dataset \"%s\" must be a registered file dataset with "
                              "examples (not replay, not labels only)",
                              json_string_value(json_object_get(t->test.items[i].data.obj, "name")));
    if (t->test.n > 1)
        return exec_failb(err, 400, "semantic_error", pos,
                          "test names one dataset, not %zu", t->test.n);
    if (t->test.n && replay_data)
        return exec_failb(err, 400, "semantic_error", pos,
                          "a replay fine-tune is tested on its task's own test split: drop test");
    if (!resolve_knobs(t, err))
        return false;
    for (size_t i = 0; i < t->nmodels; i++) {
        ft_model *m = &t->models[i];
        json_t *payload = NULL;
        size_t ndeps = 0;
        size_t *deps = xcalloc(t->train.n + t->test.n + 1, sizeof *deps);
        if (strcmp(t->trainer, "replay") == 0) {
            if (strcmp(m->runner, "replay") != 0) {
                free(deps);
                return exec_failb(err, 400, "semantic_error", t->f->models.pos,
                                  "model \"%s\" has runner %s: only replay models have recorded "
                                  "runs", m->name, m->runner);
            }
            char *e = NULL;
            payload = finetune_replay_payload(m->obj, t->train.items[0].data.obj, &e);
            if (!payload) {
                exec_failb(err, 422, "validation_error", t->f->models.pos, "%s", e);
                free(e);
                free(deps);
                return false;
            }
        } else {
            if (strcmp(m->runner, "replay") == 0 ||
                (strcmp(t->trainer, "exec") == 0 && strcmp(m->runner, "exec") != 0)) {
                free(deps);
                return exec_failb(err, 400, "semantic_error", t->f->models.pos,
                                  "model \"%s\" (runner %s) cannot be fine-tuned with %s%s",
                                  m->name, m->runner, t->trainer,
                                  strcmp(t->trainer, "exec") == 0
                                      ? ": exec fine-tunes run the model's own command"
                                      : ": it has no features (use the replay strategy on "
                                        "replay data)");
            }
            if (strcmp(t->trainer, "exec") == 0) {
                /* The command reads the data itself: the dataset objects, no embed jobs. */
                json_t *tarr = dataset_refs(&t->test);
                payload = json_pack("{s:s, s:O, s:o, s:O?, s:O}", "runner", t->trainer,
                                    "model", m->obj, "datasets", dataset_refs(&t->train),
                                    "test_dataset", json_array_get(tarr, 0), "knobs",
                                    t->knobs);
                json_decref(tarr);
                json_t *src = json_array(), *tsrc = json_array();
                for (size_t k = 0; k < t->train.n; k++)
                    json_array_append(src, t->train.items[k].data.obj);
                for (size_t k = 0; k < t->test.n; k++)
                    json_array_append(tsrc, t->test.items[k].data.obj);
                json_object_set_new(payload, "train_data", src);
                json_object_set_new(payload, "test_data", tsrc);
            } else {
                /* One builder for FINETUNE and strategies (finetune.h), so one fine-tune
                 * is one job whoever asks. */
                json_t *train = json_array();
                for (size_t k = 0; k < t->train.n; k++)
                    json_array_append(train, t->train.items[k].data.obj);
                char *e = NULL;
                const char *bad;
                json_t *jobs = finetune_head_jobs(m->obj, train,
                                                  t->test.n ? t->test.items[0].data.obj : NULL,
                                                  t->knobs, &e, &bad);
                json_decref(train);
                if (!jobs) {
                    exec_fail(err, 500, "internal_error", pos, "%s", e);
                    free(e);
                    free(deps);
                    return false;
                }
                size_t last = json_array_size(jobs) - 1;
                for (size_t k = 0; k < last; k++)
                    deps[ndeps++] = task_job_set_add(
                        &t->jobs, "embed",
                        json_incref(json_object_get(json_array_get(jobs, k), "payload")));
                payload = json_incref(json_object_get(json_array_get(jobs, last), "payload"));
                json_decref(jobs);
            }
        }
        m->job = task_job_set_add(&t->jobs, "finetune", payload);
        for (size_t d = 0; d < ndeps; d++)
            task_job_add_dep(&t->jobs, m->job, deps[d]);
        free(deps);
    }
    return true;
}

/* ---- results ---------------------------------------------------------------------------- */

static json_t *result_rows(exec_ctx *ctx, const ft_task *t, long *failed, exec_error *err)
{
    json_t *hashes = json_array();
    for (size_t i = 0; i < t->nmodels; i++)
        json_array_append_new(hashes, json_string(t->jobs.items[t->models[i].job].hash));
    char *htext = json_dumps(hashes, JSON_COMPACT);
    json_decref(hashes);
    const char *p[] = {htext};
    PGresult *res = exec_sql(
        ctx,
        "SELECT h, f.strategy, f.params::text, f.train_accuracy, f.test_accuracy, "
        "f.elapsed_seconds, f.result_model_id, m.name, j.id, j.status, j.error, j.attempts, "
        "f.details->'resumed_from_epoch', j.progress_note "
        "FROM jsonb_array_elements_text($1::jsonb) AS h "
        "LEFT JOIN finetune_results f ON f.hash = h "
        "LEFT JOIN models m ON m.id = f.result_model_id "
        "LEFT JOIN jobs j ON j.hash = h",
        1, p, err);
    free(htext);
    if (!res)
        return NULL;
    json_t *rows = json_array();
    for (size_t i = 0; i < t->nmodels; i++) {
        const ft_model *m = &t->models[i];
        const job_ref *j = &t->jobs.items[m->job];
        int r = 0;
        while (r < PQntuples(res) && strcmp(PQgetvalue(res, r, 0), j->hash) != 0)
            r++;
        bool found = r < PQntuples(res);
        bool have = found && !PQgetisnull(res, r, 1);
#define NUM(c) (found && !PQgetisnull(res, r, c) ? json_real(strtod(PQgetvalue(res, r, c), NULL)) : json_null())
#define INT(c) (found && !PQgetisnull(res, r, c) ? json_integer(strtoll(PQgetvalue(res, r, c), NULL, 10)) : json_null())
#define STR(c) (found && !PQgetisnull(res, r, c) ? json_string(PQgetvalue(res, r, c)) : json_null())
        json_t *knobs = have ? json_loads(PQgetvalue(res, r, 2), 0, NULL)
                             : json_deep_copy(json_object_get(j->payload, "knobs"));
        const char *jstatus = found && !PQgetisnull(res, r, 9) ? PQgetvalue(res, r, 9) : NULL;
        const char *status = have ? (j->cached ? "cached" : "done") : jstatus ? jstatus : "queued";
        if (!have && jstatus && (strcmp(jstatus, "failed") == 0 || strcmp(jstatus, "cancelled") == 0))
            (*failed)++;
        json_t *row = json_pack("[s, s, o, o, o, o, o, o, o, s, o, o, o]", m->name, t->trainer,
                                knobs ? knobs : json_object(), NUM(3), NUM(4), NUM(5), INT(6),
                                STR(7), INT(8), status, INT(11), have ? INT(12) : json_null(),
                                have ? json_null() : STR(10));
#undef NUM
#undef INT
#undef STR
        json_array_append_new(rows, row);
    }
    PQclear(res);
    return rows;
}

json_t *exec_finetune(exec_ctx *ctx, const ast_finetune *f, exec_error *err)
{
    ft_task t = {.f = f};
    json_t *result = result_new("FINETUNE");
    char *test_name = NULL;
    task_run run = {0};
    ast_pos test_pos = f->h.pos;
    arena *a = arena_new();
    if (!read_using(&t, &test_name, &test_pos, err) || !load_models(ctx, &t, err) ||
        !task_resolve_parts(ctx, f->datasets, &t.train, &t.modality, err))
        goto fail;
    if (test_name) {
        ast_list *refs = test_ref(a, test_name, test_pos);
        if (!refs) {
            exec_failb(err, 400, "semantic_error", test_pos,
                       "test: \"%s\" is not 'name' or 'name[start:stop]'", test_name);
            goto fail;
        }
        if (!task_resolve_parts(ctx, refs, &t.test, &t.modality, err))
            goto fail;
    }
    for (size_t i = 0; i < t.nmodels; i++) {
        const char *mod = json_string_value(json_object_get(t.models[i].obj, "modality"));
        if (t.modality && mod && strcmp(mod, t.modality) != 0) {
            exec_failb(err, 400, "semantic_error", f->models.pos,
                       "model \"%s\" is a %s model, the data is %s", t.models[i].name, mod,
                       t.modality);
            goto fail;
        }
    }
    if (!plan_jobs(&t, err) ||
        !task_mark_cached(ctx, &t.jobs, "embed", "feature_cache", err) ||
        !task_forget_missing_features(ctx, &t.jobs, err) ||
        !task_mark_cached(ctx, &t.jobs, "finetune", "finetune_results", err))
        goto fail;
    /* An embedding that only a known fine-tune needed is not computed again. */
    bool *needed = xcalloc(t.jobs.n + 1, sizeof *needed);
    for (size_t i = 0; i < t.jobs.n; i++)
        if (strcmp(t.jobs.items[i].kind, "finetune") == 0 && !t.jobs.items[i].cached) {
            needed[i] = true;
            for (size_t d = 0; d < t.jobs.items[i].ndeps; d++)
                needed[t.jobs.items[i].deps[d]] = true;
        }
    for (size_t i = 0; i < t.jobs.n; i++)
        if (!needed[i])
            t.jobs.items[i].cached = true;
    free(needed);
    if (!task_run_jobs(ctx, &t.jobs, f->wait, f->h.pos, result, &run, err))
        goto fail;
    long failed = 0;
    json_t *rows = result_rows(ctx, &t, &failed, err);
    if (!rows)
        goto fail;
    result_set(result,
               json_pack("[s, s, s, s, s, s, s, s, s, s, s, s, s]", "model", "strategy", "knobs",
                         "train_accuracy", "test_accuracy", "elapsed_seconds", "new_model_id",
                         "new_model", "job_id", "status", "attempts", "resumed_from_epoch",
                         "error"),
               rows);
    long remaining = task_report_jobs(ctx, &t.jobs, &run, f->wait, failed > 0, result, err);
    if (remaining < 0)
        goto fail;
    if (run.submitted == 0 && remaining == 0 && !failed)
        result_notice(result, "all %zu fine-tune%s came from the caches: no job ran", t.nmodels,
                      t.nmodels == 1 ? "" : "s");
    if (task_still_running(ctx, &run, remaining))
        result_notice(result, "%ld job%s still running: run the statement again, or add WAIT, "
                              "for the results (CANCEL QUERY '%s' cancels them)",
                      remaining, remaining == 1 ? " is" : "s are",
                      run.query_id ? run.query_id : "?");
    free(run.query_id);
    free(test_name);
    arena_free(a);
    ft_free(&t);
    return result;
fail:
    free(run.query_id);
    free(test_name);
    arena_free(a);
    ft_free(&t);
    json_decref(result);
    return NULL;
}
