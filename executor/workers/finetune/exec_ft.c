/* Exec fine-tunes (head_job.h): the model's own command fine-tunes it on the raw examples
 * through the exec protocol's finetune operation (runners/exec.c, docs/runners.md "exec:
 * fine-tuning"). The payload carries the dataset objects ("train_data": one, "test_data":
 * none or one); without a test dataset the last ⌈holdout · n⌉ rows of the training slice
 * are the test rows. A weights file the command writes is kept as
 * DATA/finetune/<2 hex>/<hash>.weights and named by the new model's spec. */
#include "executor/workers/finetune/head_job.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "datasets/dataset.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/runners/runners.h"

/* Loads rows [start + from, start + to) of a dataset object (to < 0: to its end). */
static int load_obj(const json_t *o, int64_t from, int64_t to, dataset **out, char **err)
{
    const char *fmt = json_string_value(json_object_get(o, "format"));
    const char *loc = json_string_value(json_object_get(o, "location"));
    const char *name = json_string_value(json_object_get(o, "name"));
    const json_t *spec = json_object_get(o, "spec");
    dataset_format format;
    if (!fmt || !loc || dataset_format_parse(fmt, &format) != 0)
        return (*err = xasprintf("bad finetune payload: dataset %s needs a known format and a "
                                 "location", name ? name : "?")), -1;
    dataset_spec ds;
    char *e = NULL;
    if (dataset_spec_from_json(format, loc, json_is_object(spec) ? spec : NULL, &ds, &e) != 0) {
        *err = xasprintf("dataset %s: %s", name ? name : "?", e);
        free(e);
        return -1;
    }
    const json_t *jstart = json_object_get(o, "start"), *jstop = json_object_get(o, "stop");
    int64_t start = json_is_integer(jstart) ? (int64_t)json_integer_value(jstart) : 0;
    ds.start = start + from;
    ds.stop = to >= 0 ? start + to
                      : (json_is_integer(jstop) ? (int64_t)json_integer_value(jstop) : DATASET_END);
    if (dataset_load(&ds, out, &e) != 0) {
        *err = xasprintf("cannot load dataset %s: %s", name ? name : "?", e);
        free(e);
        return -1;
    }
    return 0;
}

int finetune_exec_run(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                      bool *permanent)
{
    *permanent = true;
    double t0 = now_seconds();
    const json_t *model = json_object_get(payload, "model");
    const char *mname = json_string_value(json_object_get(model, "name"));
    const json_t *train_data = json_object_get(payload, "train_data");
    const json_t *test_data = json_object_get(payload, "test_data");
    if (!mname || !json_is_object(json_object_get(model, "spec")) ||
        json_array_size(train_data) != 1 || !json_is_array(test_data) ||
        json_array_size(test_data) > 1)
        return job_fail(err, permanent, true,
                        "bad finetune payload: an exec fine-tune needs model {name, spec}, "
                        "\"train_data\" with one dataset and \"test_data\" with none or one");
    const char *bad;
    json_t *knobs = finetune_knobs_resolve(finetune_knob_config("exec"),
                                           json_object_get(payload, "knobs"), err, &bad);
    if (!knobs)
        return -1;
    dataset *train = NULL, *test = NULL;
    char *wrel = NULL, *wpath = NULL, *dir = NULL;
    json_t *answer = NULL;
    int rc = -1;
    const json_t *tobj = json_array_get(train_data, 0);
    const char *tname = json_string_value(json_object_get(tobj, "name"));
    const char *sname = tname;
    bool held_out = json_array_size(test_data) == 0;
    if (held_out) {
        dataset *all = NULL;
        if (load_obj(tobj, 0, -1, &all, err) != 0)
            goto out;
        size_t n = all->n;
        dataset_free(all);
        double frac = json_real_value(json_object_get(knobs, "holdout"));
        size_t nt = (size_t)ceil(frac * (double)n);
        if (nt < 1 || nt >= n) {
            *err = xasprintf("%zu training rows cannot be split with holdout %g: give a test "
                             "dataset or more rows", n, frac);
            goto out;
        }
        if (load_obj(tobj, 0, (int64_t)(n - nt), &train, err) != 0 ||
            load_obj(tobj, (int64_t)(n - nt), (int64_t)n, &test, err) != 0)
            goto out;
    } else {
        const json_t *sobj = json_array_get(test_data, 0);
        sname = json_string_value(json_object_get(sobj, "name"));
        if (load_obj(tobj, 0, -1, &train, err) != 0 || load_obj(sobj, 0, -1, &test, err) != 0)
            goto out;
    }
    const char *data_dir = ctx->data_dir ? ctx->data_dir : ".";
    dir = xasprintf("%s/finetune/%.2s", data_dir, ctx->hash);
    char *top = xasprintf("%s/finetune", data_dir);
    if ((mkdir(top, 0755) != 0 && errno != EEXIST) || (mkdir(dir, 0755) != 0 && errno != EEXIST)) {
        *err = xasprintf("cannot create %s: %s", dir, strerror(errno));
        *permanent = false;
        free(top);
        goto out;
    }
    free(top);
    wrel = finetune_file_relpath(ctx->hash, "weights");
    wpath = xasprintf("%s/%s", data_dir, wrel);
    runner_call call = {.model = model, .spec = json_object_get(model, "spec"),
                        .model_name = mname, .ds = train, .dataset_name = tname, .ctx = ctx};
    bool weights = false;
    if (exec_runner_finetune(&call, test, sname ? sname : "?", knobs, wpath, &answer, &weights,
                             err, permanent) != 0)
        goto out;
    json_t *spec = json_pack("{s:O, s:O, s:s}", "command",
                             json_object_get(json_object_get(model, "spec"), "command"), "parent",
                             model, "job", ctx->hash);
    json_t *extra = json_object_get(json_object_get(model, "spec"), "env");
    if (extra)
        json_object_set(spec, "env", extra);
    if (weights)
        json_object_set_new(spec, "weights", json_string(wrel));
    char *newname = xasprintf("%s@ft-%.8s", mname, ctx->hash);
    const json_t *tr = json_object_get(answer, "train_accuracy");
    *result = json_pack("{s:s, s:O, s:O, s:f, s:o, s:s?, s:s, s:o, s:n, s:n, s:I, s:I, s:b, "
                        "s:O, s:f}",
                        "runner", "exec", "test_accuracy", json_object_get(answer, "test_accuracy"),
                        "train_accuracy", tr ? tr : json_null(), "elapsed_seconds",
                        now_seconds() - t0, "knobs", knobs, "path", weights ? wrel : NULL,
                        "model_name", newname, "model_spec", spec, "dimension", "num_params",
                        "train_size", (json_int_t)train->n, "test_size", (json_int_t)test->n,
                        "held_out", held_out, "answer", answer, "seconds", now_seconds() - t0);
    knobs = NULL;
    free(newname);
    rc = 0;
out:
    json_decref(knobs);
    json_decref(answer);
    dataset_free(train);
    dataset_free(test);
    free(wrel);
    free(wpath);
    free(dir);
    return rc;
}
