/* The embed job runner (docs/jobs.md "Embed jobs"): one model × one dataset slice → one
 * feature file under the data directory, plus its feature_cache row. Dispatches on the
 * model's runner: builtin (executor/workers/embed/), noop (raw pixels), exec and onnx
 * (executor/workers/runners/, docs/runners.md); the others cannot embed. */
#include "executor/workers/jobs.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "datasets/dataset.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/featstore.h"
#include "executor/workers/finetune/head_job.h"
#include "executor/workers/runners/runners.h"

#define DEFAULT_BATCH 1024

static bool stopped(job_ctx *ctx)
{
    return ctx->should_stop && ctx->should_stop(ctx->stop_arg);
}

static void progress(job_ctx *ctx, double fraction, const char *note)
{
    if (ctx->progress)
        ctx->progress(ctx->progress_arg, fraction, note);
}

/* ---- payload ------------------------------------------------------------------------- */

/* A dataset object of the payload ("dataset" or "fit"), checked. */
typedef struct ds_ref {
    const char *name;      /* for messages; "#id" or "?" when absent */
    dataset_format format;
    const char *location;
    const json_t *spec;    /* object or NULL */
    int64_t start, stop;   /* stop = DATASET_END for null */
    char name_buf[32];
} ds_ref;

static int parse_ds_ref(const json_t *o, const char *field, ds_ref *r, char **err)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(o))
        return job_fail(err, NULL, true, "bad embed payload: \"%s\" must be an object", field);
    const json_t *v = json_object_get(o, "name");
    if (json_is_string(v)) {
        r->name = json_string_value(v);
    } else {
        const json_t *id = json_object_get(o, "id");
        if (json_is_integer(id))
            snprintf(r->name_buf, sizeof r->name_buf, "#%" PRId64, (int64_t)json_integer_value(id));
        else
            snprintf(r->name_buf, sizeof r->name_buf, "?");
        r->name = r->name_buf;
    }
    v = json_object_get(o, "format");
    if (!json_is_string(v))
        return job_fail(err, NULL, true, "bad embed payload: \"%s.format\" must be a string", field);
    if (dataset_format_parse(json_string_value(v), &r->format) != 0)
        return job_fail(err, NULL, true, "bad embed payload: \"%s.format\": unknown format '%s'",
                    field, json_string_value(v));
    v = json_object_get(o, "location");
    if (!json_is_string(v) || !*json_string_value(v))
        return job_fail(err, NULL, true, "bad embed payload: \"%s.location\" must be a non-empty "
                    "string", field);
    r->location = json_string_value(v);
    v = json_object_get(o, "spec");
    if (v && !json_is_null(v) && !json_is_object(v))
        return job_fail(err, NULL, true, "bad embed payload: \"%s.spec\" must be an object", field);
    r->spec = json_is_object(v) ? v : NULL;
    v = json_object_get(o, "start");
    r->start = 0;
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return job_fail(err, NULL, true, "bad embed payload: \"%s.start\" must be an integer "
                        "≥ 0", field);
        r->start = (int64_t)json_integer_value(v);
    }
    v = json_object_get(o, "stop");
    r->stop = DATASET_END;
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < r->start)
            return job_fail(err, NULL, true, "bad embed payload: \"%s.stop\" must be null or an "
                        "integer ≥ start", field);
        r->stop = (int64_t)json_integer_value(v);
    }
    return 0;
}

/* Loads the slice of a dataset object; errors are permanent (a bad or missing file). */
static int load_ref(const ds_ref *r, const char *field, dataset **out, char **err)
{
    dataset_spec spec;
    char *e = NULL;
    if (dataset_spec_from_json(r->format, r->location, r->spec, &spec, &e) != 0) {
        job_fail(err, NULL, true, "bad embed payload: \"%s.spec\": %s", field, e);
        free(e);
        return -1;
    }
    spec.start = r->start;
    spec.stop = r->stop;
    if (dataset_load(&spec, out, &e) != 0) {
        job_fail(err, NULL, true, "cannot load dataset %s: %s", r->name, e);
        free(e);
        return -1;
    }
    return 0;
}

/* ---- builtin ------------------------------------------------------------------------- */

static int run_builtin(job_ctx *ctx, const char *model_name, const embed_spec *spec,
                       const ds_ref *dref, const dataset *ds, const json_t *fit_obj,
                       size_t batch, float **out, size_t *dim, char **err, bool *permanent)
{
    char *e = NULL;
    embed_input in;
    if (embed_input_of(ds, 0, ds->n, &in, &e) != 0 ||
        embed_check(spec, embed_shape_of(ds), &e) != 0) {
        job_fail(err, permanent, true, "model %s cannot embed dataset %s: %s", model_name,
             dref->name, e);
        free(e);
        return -1;
    }
    embedder *emb = embedder_new(spec, in.shape, &e);
    if (!emb) {
        job_fail(err, permanent, true, "model %s cannot embed dataset %s: %s", model_name,
             dref->name, e);
        free(e);
        return -1;
    }
    if (embed_needs_fit(spec)) {
        if (!fit_obj || json_is_null(fit_obj)) {
            embedder_free(emb);
            return job_fail(err, permanent, true, "bad embed payload: model %s must be fitted: "
                        "\"fit\" (the training dataset) is required", model_name);
        }
        ds_ref fref;
        dataset *fds = NULL;
        if (parse_ds_ref(fit_obj, "fit", &fref, err) != 0 ||
            load_ref(&fref, "fit", &fds, err) != 0) {
            embedder_free(emb);
            *permanent = true;
            return -1;
        }
        progress(ctx, 0, "fitting");
        embed_input tr;
        int rc = embed_input_of(fds, 0, fds->n, &tr, &e);
        if (rc == 0)
            rc = embedder_fit(emb, &tr, &e);
        dataset_free(fds);
        if (rc != 0) {
            job_fail(err, permanent, true, "model %s cannot be fitted on dataset %s: %s",
                 model_name, fref.name, e);
            free(e);
            embedder_free(emb);
            return -1;
        }
    }
    size_t d = embedder_dim(emb);
    if (d && ds->n > SIZE_MAX / sizeof(float) / d) {
        embedder_free(emb);
        return job_fail(err, permanent, true, "%zu × %zu features are too many", ds->n, d);
    }
    float *x = xmalloc(ds->n * d * sizeof(float) + 1);
    size_t nbatch = (ds->n + batch - 1) / batch;
    for (size_t b = 0; b < nbatch; b++) {
        if (stopped(ctx)) {
            free(x);
            embedder_free(emb);
            return job_fail(err, permanent, false, "embed job stopped (cancelled or lease lost)");
        }
        size_t start = b * batch, count = ds->n - start < batch ? ds->n - start : batch;
        embed_input part;
        if (embed_input_of(ds, start, count, &part, &e) != 0 ||
            embedder_apply(emb, &part, x + start * d, &e) != 0) {
            job_fail(err, permanent, true, "model %s cannot embed dataset %s: %s", model_name,
                 dref->name, e);
            free(e);
            free(x);
            embedder_free(emb);
            return -1;
        }
        char note[64];
        snprintf(note, sizeof note, "batch %zu of %zu", b + 1, nbatch);
        progress(ctx, (double)(b + 1) / (double)nbatch, note);
    }
    embedder_free(emb);
    *out = x;
    *dim = d;
    return 0;
}

/* ---- run ----------------------------------------------------------------------------- */

static int run_embed(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                     bool *permanent)
{
    *permanent = false;
    *result = NULL;
    double t0 = now_seconds();
    if (!json_is_object(payload))
        return job_fail(err, permanent, true, "bad embed payload: not an object");
    const json_t *model = json_object_get(payload, "model");
    if (!json_is_object(model))
        return job_fail(err, permanent, true, "bad embed payload: \"model\" must be an object");
    const json_t *v = json_object_get(model, "runner");
    if (!json_is_string(v))
        return job_fail(err, permanent, true, "bad embed payload: \"model.runner\" must be a "
                    "string");
    const char *runner = json_string_value(v);
    v = json_object_get(model, "name");
    if (v && !json_is_string(v))
        return job_fail(err, permanent, true, "bad embed payload: \"model.name\" must be a string");
    const char *model_name = v ? json_string_value(v) : runner;
    const json_t *mspec = json_object_get(model, "spec");
    if (mspec && !json_is_null(mspec) && !json_is_object(mspec))
        return job_fail(err, permanent, true, "bad embed payload: \"model.spec\" must be an "
                    "object");
    json_t *empty = json_object();
    if (!json_is_object(mspec))
        mspec = empty;
    size_t batch = DEFAULT_BATCH;
    v = json_object_get(model, "batch_size");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            json_decref(empty);
            return job_fail(err, permanent, true, "bad embed payload: \"model.batch_size\" must be "
                        "a positive integer");
        }
        batch = (size_t)json_integer_value(v);
    }
    const json_t *fit_obj = json_object_get(payload, "fit");
    if (fit_obj && !json_is_null(fit_obj) && !json_is_object(fit_obj)) {
        json_decref(empty);
        return job_fail(err, permanent, true, "bad embed payload: \"fit\" must be null or a "
                    "dataset object");
    }

    /* The runner must be known before any file is read; spec errors come first too. */
    bool builtin = strcmp(runner, "builtin") == 0, noop = strcmp(runner, "noop") == 0;
    bool exec = strcmp(runner, "exec") == 0, onnx = strcmp(runner, "onnx") == 0;
    embed_spec espec;
    if (builtin || noop) {
        char *e = NULL;
        int rc;
        if (noop) {
            embed_spec_init(&espec, EMBED_RAW);
            rc = 0;
        } else {
            rc = embed_spec_from_json(mspec, &espec, &e);
        }
        if (rc != 0) {
            job_fail(err, permanent, true, "bad embed payload: \"model.spec\" of %s: %s",
                 model_name, e);
            free(e);
            json_decref(empty);
            return -1;
        }
    } else if (!exec && !onnx) {
        json_decref(empty);
        if (strcmp(runner, "replay") == 0)
            return job_fail(err, permanent, true, "runner replay cannot embed: model %s answers "
                        "from recorded runs, not from features", model_name);
        return job_fail(err, permanent, true, "runner %s cannot embed: model %s has no runner "
                    "rankql executes (use builtin, onnx or exec; see docs/runners.md)", runner,
                    model_name);
    }

    ds_ref dref;
    dataset *ds = NULL;
    if (parse_ds_ref(json_object_get(payload, "dataset"), "dataset", &dref, err) != 0 ||
        load_ref(&dref, "dataset", &ds, err) != 0) {
        json_decref(empty);
        *permanent = true;
        return -1;
    }

    float *x = NULL;
    size_t dim = 0;
    int rc;
    if (builtin || noop) {
        rc = run_builtin(ctx, model_name, &espec, &dref, ds, fit_obj, batch, &x, &dim, err,
                         permanent);
    } else {
        runner_call call = {model, mspec, model_name, ds, dref.name, ctx, NULL};
        rc = exec ? exec_runner_embed(&call, &x, &dim, err, permanent)
                  : onnx_runner_embed(&call, &x, &dim, err, permanent);
    }
    json_decref(empty);
    if (rc == 0 && stopped(ctx)) {
        rc = job_fail(err, permanent, false, "embed job stopped (cancelled or lease lost)");
    }
    if (rc == 0 && dim == 0)
        rc = job_fail(err, permanent, true, "model %s gave 0-dimensional features", model_name);
    if (rc == 0 && dim > UINT32_MAX)
        rc = job_fail(err, permanent, true, "model %s gave %zu-dimensional features (too many)",
                  model_name, dim);
    if (rc != 0) {
        free(x);
        dataset_free(ds);
        return -1;
    }

    uint64_t bytes = 0;
    char *e = NULL;
    rc = featstore_write(ctx->data_dir, ctx->hash, x, ds->labels, ds->n, (uint32_t)dim,
                         ds->labels ? ds->num_classes : 0, &bytes, &e);
    size_t rows = ds->n;
    free(x);
    dataset_free(ds);
    if (rc != 0) {
        job_fail(err, permanent, false, "cannot write the features: %s", e);
        free(e);
        return -1;
    }
    char *rel = featstore_relpath(ctx->hash);
    *result = json_pack("{s:s, s:I, s:I, s:I, s:f}", "path", rel, "rows", (json_int_t)rows,
                        "dim", (json_int_t)dim, "bytes", (json_int_t)bytes, "seconds",
                        now_seconds() - t0);
    free(rel);
    progress(ctx, 1, "done");
    return 0;
}

/* ---- store --------------------------------------------------------------------------- */

/* The feature_cache row. The slice columns are NULL when the whole source was embedded
 * (start 0, stop null); otherwise both are set, stop being the end actually embedded
 * (start + rows), so a clamped or open-ended slice is recorded as what it is. */
static int store_embed(PGconn *conn, const job_ctx *ctx, const json_t *payload,
                       const json_t *result, char **err)
{
    const json_t *model = json_object_get(payload, "model");
    const json_t *dsobj = json_object_get(payload, "dataset");
    const json_t *mid = json_object_get(model, "id"), *did = json_object_get(dsobj, "id");
    if (!json_is_integer(mid) || !json_is_integer(did))
        return job_fail(err, NULL, true, "bad embed payload: \"model.id\" and \"dataset.id\" must "
                    "be integers");
    const json_t *path = json_object_get(result, "path");
    const json_t *rows = json_object_get(result, "rows"), *dim = json_object_get(result, "dim");
    const json_t *bytes = json_object_get(result, "bytes");
    if (!json_is_string(path) || !json_is_integer(rows) || !json_is_integer(dim))
        return job_fail(err, NULL, true, "bad embed result: \"path\", \"rows\" and \"dim\" are "
                    "required");
    const json_t *jstart = json_object_get(dsobj, "start"), *jstop = json_object_get(dsobj, "stop");
    int64_t start = json_is_integer(jstart) ? (int64_t)json_integer_value(jstart) : 0;
    bool whole = start == 0 && (!jstop || json_is_null(jstop));
    char b_mid[24], b_did[24], b_start[24], b_stop[24], b_rows[24], b_dim[24], b_bytes[24],
        b_job[24];
    snprintf(b_mid, sizeof b_mid, "%" PRId64, (int64_t)json_integer_value(mid));
    snprintf(b_did, sizeof b_did, "%" PRId64, (int64_t)json_integer_value(did));
    snprintf(b_start, sizeof b_start, "%" PRId64, start);
    snprintf(b_stop, sizeof b_stop, "%" PRId64, start + (int64_t)json_integer_value(rows));
    snprintf(b_rows, sizeof b_rows, "%" PRId64, (int64_t)json_integer_value(rows));
    snprintf(b_dim, sizeof b_dim, "%" PRId64, (int64_t)json_integer_value(dim));
    snprintf(b_bytes, sizeof b_bytes, "%" PRId64,
             json_is_integer(bytes) ? (int64_t)json_integer_value(bytes) : 0);
    snprintf(b_job, sizeof b_job, "%" PRId64, ctx->job_id);
    const char *params[10] = {
        ctx->hash, b_mid, b_did, whole ? NULL : b_start, whole ? NULL : b_stop,
        json_string_value(path), b_rows, b_dim, json_is_integer(bytes) ? b_bytes : NULL,
        ctx->job_id > 0 ? b_job : NULL,
    };
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO feature_cache (hash, model_id, dataset_id, slice_start, slice_stop, path, "
        "rows, dim, bytes, job_id) VALUES ($1, $2::bigint, $3::bigint, $4::bigint, $5::bigint, "
        "$6, $7::bigint, $8::integer, $9::bigint, $10::bigint) ON CONFLICT (hash) DO NOTHING",
        10, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *m = PQresultErrorMessage(res);
        size_t len = strcspn(m, "\n");
        *err = xasprintf("cannot store the feature_cache row: %.*s", (int)len, m);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* A fine-tuned head model (finetune/head_job.h): the parent's features, through the head. */
static int run_embed_any(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                         bool *permanent)
{
    const json_t *spec = json_object_get(json_object_get(payload, "model"), "spec");
    if (!finetune_is_head_model(spec))
        return run_embed(ctx, payload, result, err, permanent);
    json_t *parent = finetune_head_parent_payload(spec, json_object_get(payload, "dataset"));
    int rc = run_embed_any(ctx, parent, result, err, permanent);
    json_decref(parent);
    if (rc == 0 && finetune_head_features(ctx, spec, *result, err, permanent) != 0) {
        json_decref(*result);
        *result = NULL;
        rc = -1;
    }
    return rc;
}

const job_runner embed_job_runner = {"embed", run_embed_any, store_embed};
