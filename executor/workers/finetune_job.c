/* The fine-tune job runner (kind 'finetune', docs/jobs.md "Fine-tune jobs"): one model ×
 * training data → a test accuracy, and for trainers that produce weights (head, exec) a new
 * model registered in the catalog (finetuned, with its parent). The payload's "runner"
 * selects the trainer (executor/workers/finetune/finetune.h):
 *
 *   replay  the recorded run of (model_identifier, train_dataset_name): its test_accuracy
 *           and elapsed time (docs/runners.md "replay"); nothing is trained or registered
 *   head    a linear or MLP head trained with SGD on the model's features (finetune/head.h),
 *           checkpointed under the data directory so a re-run after a dead worker resumes
 *   exec    the model's command, `finetune` operation of the exec protocol
 *
 * store() writes the finetune_results row (hash = the job's hash) and, for head and exec,
 * the new model, in the transaction that completes the job. */
#include "executor/workers/jobs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "common/util.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/finetune/head_job.h"
#include "executor/workers/runners/replay.h"

/* ---- replay ---------------------------------------------------------------------------- */

/* Every error is permanent: neither the records nor the payload change by retrying. */
static int run_replay(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                      bool *permanent)
{
    *permanent = true;
    double t0 = now_seconds();
    const json_t *rp = json_object_get(payload, "replay");
    static const char *const keys[] = {"records", "model_identifier", "train_dataset_name",
                                       "digest"};
    for (size_t i = 0; i < 4; i++) {
        const char *s = json_string_value(json_object_get(rp, keys[i]));
        if (!s || !*s)
            return job_fail(err, permanent, true,
                            "bad finetune payload: replay.%s must be a non-empty string "
                            "(build replay payloads with finetune_replay_payload)",
                            keys[i]);
    }
    const char *path = json_string_value(json_object_get(rp, "records"));
    const char *model = json_string_value(json_object_get(rp, "model_identifier"));
    const char *task = json_string_value(json_object_get(rp, "train_dataset_name"));
    const char *digest = json_string_value(json_object_get(rp, "digest"));
    if (!hash_is_hex(digest))
        return job_fail(err, permanent, true,
                        "bad finetune payload: replay.digest must be 64 lower-case hex digits");
    if (ctx->progress)
        ctx->progress(ctx->progress_arg, 0, "reading the recorded runs");
    replay_records *recs = NULL;
    if (replay_records_load(path, &recs, err) != 0)
        return -1;
    if (strcmp(recs->digest, digest) != 0) {
        replay_records_free(recs);
        return job_fail(err, permanent, true,
                        "records file %s changed since the fine-tune was planned (digest "
                        "%.12s…, now %.12s…): submit it again",
                        path, digest, recs->digest);
    }
    const replay_pair *p = replay_find(recs, model, task);
    if (!p) {
        replay_records_free(recs);
        return job_fail(err, permanent, true,
                        "no recorded fine-tune run of %s on %s in %s: a replay fine-tune can "
                        "only answer recorded pairs",
                        model, task, path);
    }
    *result = json_pack("{s:s, s:f, s:n, s:f, s:I, s:I, s:s?, s:s, s:s, s:{}, s:f}", "runner",
                        "replay", "test_accuracy", p->test_accuracy, "train_accuracy",
                        "elapsed_seconds", p->elapsed_seconds, "runs", (json_int_t)p->runs,
                        "line", (json_int_t)p->line, "configs", p->configs, "model_identifier",
                        model, "train_dataset_name", task, "knobs", "seconds",
                        now_seconds() - t0);
    replay_records_free(recs);
    if (ctx->progress)
        ctx->progress(ctx->progress_arg, 1, "answered from the records");
    return 0;
}

/* ---- dispatch -------------------------------------------------------------------------- */

static int run_finetune(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                        bool *permanent)
{
    const char *runner = json_string_value(json_object_get(payload, "runner"));
    const json_t *model = json_object_get(payload, "model");
    if (!json_is_object(payload) || !runner || !json_is_integer(json_object_get(model, "id")))
        return job_fail(err, permanent, true,
                        "bad finetune payload: needs \"runner\" (%s) and \"model\" with an "
                        "integer id",
                        finetune_trainer_names());
    if (strcmp(runner, "replay") == 0)
        return run_replay(ctx, payload, result, err, permanent);
    if (strcmp(runner, "head") == 0)
        return finetune_head_run(ctx, payload, result, err, permanent);
    if (strcmp(runner, "exec") == 0)
        return finetune_exec_run(ctx, payload, result, err, permanent);
    return job_fail(err, permanent, true, "bad finetune payload: unknown runner \"%s\" (%s)",
                    runner, finetune_trainer_names());
}

/* ---- store ----------------------------------------------------------------------------- */

static char *num_text(const json_t *v)
{
    if (!json_is_number(v))
        return NULL;
    return xasprintf("%.17g", json_number_value(v));
}

static int pq_fail(PGresult *res, char **err, const char *what)
{
    const char *m = PQresultErrorMessage(res);
    *err = xasprintf("%s: %.*s", what, (int)strcspn(m, "\n"), m);
    PQclear(res);
    return -1;
}

/* The new model of a head or exec fine-tune: "<parent>@ft-<first 8 hex of the job hash>",
 * the parent's modality, source and runner, finetuned, tagged 'finetuned' (and the
 * trainer), the spec naming the weights. Returns its id in idbuf, or -1. */
static int register_model(PGconn *conn, const job_ctx *ctx, const json_t *payload,
                          const json_t *result, char idbuf[24], char **err)
{
    const json_t *model = json_object_get(payload, "model");
    char parent[24];
    snprintf(parent, sizeof parent, "%" PRId64,
             (int64_t)json_integer_value(json_object_get(model, "id")));
    const char *name = json_string_value(json_object_get(result, "model_name"));
    const json_t *spec = json_object_get(result, "model_spec");
    if (!name || !json_is_object(spec))
        return job_fail(err, NULL, true, "bad finetune result: no model_name/model_spec");
    char *spectext = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    char *dim = num_text(json_object_get(result, "dimension"));
    char *nparams = num_text(json_object_get(result, "num_params"));
    const char *runner = json_string_value(json_object_get(payload, "runner"));
    const char *params[] = {name, spectext, parent, dim, nparams, runner};
    (void)ctx;
    /* The name is the job's: a re-run after PURGE finds its own earlier row. */
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO models (name, modality, source, runner, spec, dimension, num_params, "
        "image_size, token_length, batch_size, tags, finetuned, parent_model_id) "
        "SELECT $1, p.modality, p.source, p.runner, $2::jsonb, $4::integer, $5::float8::bigint, "
        "p.image_size, p.token_length, p.batch_size, ARRAY['finetuned', $6]::text[], true, "
        "p.id FROM models p WHERE p.id = $3::bigint "
        "ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, dimension = EXCLUDED.dimension, "
        "num_params = EXCLUDED.num_params, tags = EXCLUDED.tags, finetuned = true, "
        "parent_model_id = EXCLUDED.parent_model_id RETURNING id",
        6, NULL, params, NULL, NULL, 0);
    free(spectext);
    free(dim);
    free(nparams);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pq_fail(res, err, "registering the fine-tuned model");
    if (PQntuples(res) != 1) {
        PQclear(res);
        return job_fail(err, NULL, true, "registering the fine-tuned model: its parent #%s is "
                                         "gone from the catalog", parent);
    }
    snprintf(idbuf, 24, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static int store_finetune(PGconn *conn, const job_ctx *ctx, const json_t *payload,
                          const json_t *result, char **err)
{
    const char *runner = json_string_value(json_object_get(payload, "runner"));
    bool replay = runner && strcmp(runner, "replay") == 0;
    char newid[24] = "";
    if (!replay && register_model(conn, ctx, payload, result, newid, err) != 0)
        return -1;
    const json_t *model = json_object_get(payload, "model");
    /* The dataset of the row: replay's task, else the first training dataset. */
    const json_t *ds = replay ? json_object_get(payload, "dataset")
                              : json_array_get(json_object_get(payload, "datasets"), 0);
    const json_t *test_ds = replay ? NULL : json_object_get(payload, "test_dataset");
    char mid[24], did[24], tid[24], job[24];
    snprintf(mid, sizeof mid, "%" PRId64, (int64_t)json_integer_value(json_object_get(model, "id")));
    snprintf(did, sizeof did, "%" PRId64, (int64_t)json_integer_value(json_object_get(ds, "id")));
    snprintf(tid, sizeof tid, "%" PRId64,
             (int64_t)json_integer_value(json_object_get(test_ds, "id")));
    snprintf(job, sizeof job, "%" PRId64, ctx->job_id);
    char *knobs = json_dumps(json_object_get(result, "knobs"), JSON_COMPACT | JSON_SORT_KEYS);
    char *train = num_text(json_object_get(result, "train_accuracy"));
    char *test = num_text(json_object_get(result, "test_accuracy"));
    char *elapsed = num_text(json_object_get(result, "elapsed_seconds"));
    json_t *details = json_deep_copy(result);
    json_object_del(details, "model_spec");
    char *dtext = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(details);
    const char *params[] = {ctx->hash,
                            mid,
                            did,
                            json_is_integer(json_object_get(test_ds, "id")) ? tid : NULL,
                            runner,
                            knobs ? knobs : "{}",
                            newid[0] ? newid : NULL,
                            train,
                            test,
                            elapsed,
                            json_string_value(json_object_get(result, "path")),
                            dtext,
                            ctx->job_id > 0 ? job : NULL};
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO finetune_results (hash, model_id, dataset_id, test_dataset_id, strategy, "
        "params, result_model_id, train_accuracy, test_accuracy, elapsed_seconds, path, details, "
        "job_id) VALUES ($1, $2::bigint, $3::bigint, $4::bigint, $5, $6::jsonb, $7::bigint, "
        "$8::float8, $9::float8, $10::float8, $11, $12::jsonb, $13::bigint) "
        "ON CONFLICT (hash) DO NOTHING",
        13, NULL, params, NULL, NULL, 0);
    free(knobs);
    free(train);
    free(test);
    free(elapsed);
    free(dtext);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return pq_fail(res, err, "storing the fine-tune result");
    PQclear(res);
    return 0;
}

const job_runner finetune_job_runner = {"finetune", run_finetune, store_finetune};
