/* Head fine-tunes (head_job.h, docs/jobs.md "Fine-tune jobs"): the features of the model's
 * embed jobs (train parts, test parts or a held-out tail of the training rows), a head
 * trained on them (head.h), checkpointed under DATA/finetune/<2 hex>/<hash>.ckpt at most
 * every RANKQL_FT_CHECKPOINT_SECONDS (default 1) so a re-run after the worker died resumes
 * where the last checkpoint left off with the same final weights; the weights are written to
 * DATA/finetune/<2 hex>/<hash>.head and the checkpoint removed. */
#include "executor/workers/finetune/head_job.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "executor/workers/featstore.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/finetune/head.h"
#include "executor/workers/finetune/head_cuda.h"

/* DATA/finetune/<2 hex>/ exists (created as needed). 0 or -1 with *err. */
static int ensure_dir(const char *data_dir, const char *hash, char **err)
{
    char *a = xasprintf("%s/finetune", data_dir);
    char *b = xasprintf("%s/finetune/%.2s", data_dir, hash);
    int rc = 0;
    if ((mkdir(a, 0755) != 0 && errno != EEXIST) || (mkdir(b, 0755) != 0 && errno != EEXIST)) {
        *err = xasprintf("cannot create %s: %s", b, strerror(errno));
        rc = -1;
    }
    free(a);
    free(b);
    return rc;
}

char *finetune_file_relpath(const char *hash, const char *ext)
{
    return xasprintf("finetune/%.2s/%s.%s", hash, hash, ext);
}

/* Loaded features of one side: rows × dim, labels, classes. */
typedef struct side {
    float *x;
    int32_t *y;
    size_t n;
    uint32_t dim;
    int32_t nc;
} side;

static void side_free(side *s)
{
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

/* Concatenates the feature files of parts ([{"features": hash}, …]). */
static int load_side(const char *data_dir, const json_t *parts, const char *what, side *out,
                     char **err)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < json_array_size(parts); i++) {
        const char *hash = json_string_value(json_object_get(json_array_get(parts, i), "features"));
        if (!hash) {
            *err = xasprintf("bad finetune payload: %s part %zu needs \"features\" (an embed job "
                             "hash)", what, i);
            return -1;
        }
        featfile f;
        char *e = NULL;
        if (featstore_read(data_dir, hash, &f, &e) != 0) {
            *err = xasprintf("%s part %zu: %s", what, i, e);
            free(e);
            return -1;
        }
        if (!f.y) {
            *err = xasprintf("%s part %zu (features %.12s…) has no labels: a fine-tune needs "
                             "labelled data", what, i, hash);
            featfile_free(&f);
            return -1;
        }
        if (i > 0 && f.dim != out->dim) {
            *err = xasprintf("dimension mismatch: %s part 0 has %u, part %zu has %u", what,
                             out->dim, i, f.dim);
            featfile_free(&f);
            return -1;
        }
        out->dim = f.dim;
        out->x = xrealloc(out->x, (out->n + f.rows) * f.dim * sizeof *out->x + sizeof *out->x);
        out->y = xrealloc(out->y, (out->n + f.rows + 1) * sizeof *out->y);
        memcpy(out->x + out->n * f.dim, f.x, f.rows * f.dim * sizeof *f.x);
        memcpy(out->y + out->n, f.y, f.rows * sizeof *f.y);
        out->n += f.rows;
        if (f.num_classes > out->nc)
            out->nc = f.num_classes;
        featfile_free(&f);
    }
    return 0;
}

typedef struct epoch_arg {
    job_ctx *ctx;
    const char *ckpt;
    int epochs;
    double interval, last_write;
    uint32_t written_epoch;
    char *err;
    bool stopped;
} epoch_arg;

static int on_epoch(void *argp, const head_net *net, const head_state *st, double loss)
{
    epoch_arg *a = argp;
    if (a->ctx->should_stop && a->ctx->should_stop(a->ctx->stop_arg)) {
        a->stopped = true;
        return 1;
    }
    double now = now_seconds();
    if ((int)st->epoch < a->epochs && now - a->last_write >= a->interval) {
        if (head_file_write(a->ckpt, a->ctx->hash, net, st, &a->err) != 0)
            return 1;
        a->last_write = now;
        a->written_epoch = st->epoch;
    }
    if (a->ctx->progress) {
        char note[96];
        snprintf(note, sizeof note, "epoch %u of %d, loss %.4f", st->epoch, a->epochs, loss);
        a->ctx->progress(a->ctx->progress_arg, 0.05 + 0.9 * st->epoch / (double)a->epochs, note);
    }
    return 0;
}

static bool gpu_wanted(void)
{
    const char *d = getenv("RANKQL_DEVICE");
    return !(d && strcmp(d, "cpu") == 0) && head_cuda_available();
}

static double checkpoint_interval(void)
{
    const char *e = getenv("RANKQL_FT_CHECKPOINT_SECONDS");
    char *end;
    double v = e ? strtod(e, &end) : 1.0;
    return e && (end == e || *end || !(v >= 0)) ? 1.0 : v;
}

int finetune_head_run(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                      bool *permanent)
{
    *permanent = true;
    double t0 = now_seconds();
    const char *data_dir = ctx->data_dir ? ctx->data_dir : ".";
    const json_t *model = json_object_get(payload, "model");
    const char *mname = json_string_value(json_object_get(model, "name"));
    const json_t *train_parts = json_object_get(payload, "train");
    const json_t *test_parts = json_object_get(payload, "test");
    if (!mname || !json_is_array(train_parts) || json_array_size(train_parts) == 0 ||
        !json_is_array(test_parts))
        return job_fail(err, permanent, true,
                        "bad finetune payload: a head fine-tune needs model.name, \"train\" "
                        "(non-empty) and \"test\" (possibly empty) arrays of feature parts");
    const char *bad;
    json_t *knobs = finetune_knobs_resolve(finetune_knob_config("head"),
                                           json_object_get(payload, "knobs"), err, &bad);
    if (!knobs)
        return -1;
    head_knobs k;
    side train = {0}, test = {0};
    head_net net = {0};
    head_state st = {0};
    char *ckpt = NULL, *wpath = NULL, *rel = NULL, *gpu_note = NULL;
    int rc = -1;
    if (head_knobs_from_json(knobs, &k, err) != 0)
        goto out;
    if (ctx->progress)
        ctx->progress(ctx->progress_arg, 0, "loading features");
    if (load_side(data_dir, train_parts, "train", &train, err) != 0 ||
        load_side(data_dir, test_parts, "test", &test, err) != 0)
        goto out;
    if (test.n > 0 && test.dim != train.dim) {
        *err = xasprintf("dimension mismatch: train features have %u, test features %u",
                         train.dim, test.dim);
        goto out;
    }
    bool held_out = test.n == 0;
    if (held_out) { /* the last ⌈holdout·n⌉ training rows */
        double frac = json_real_value(json_object_get(knobs, "holdout"));
        size_t nt = (size_t)ceil(frac * (double)train.n);
        if (nt < 1 || nt >= train.n) {
            *err = xasprintf("%zu training rows cannot be split with holdout %g: give a test "
                             "dataset or more rows", train.n, frac);
            goto out;
        }
        test.dim = train.dim;
        test.n = nt;
        train.n -= nt;
        test.x = xmalloc(nt * train.dim * sizeof *test.x);
        test.y = xmalloc(nt * sizeof *test.y);
        memcpy(test.x, train.x + train.n * train.dim, nt * train.dim * sizeof *test.x);
        memcpy(test.y, train.y + train.n, nt * sizeof *test.y);
        test.nc = train.nc;
    }
    uint32_t classes = (uint32_t)(train.nc > test.nc ? train.nc : test.nc);
    if (classes < 2) {
        *err = xasprintf("the training data has %u class: a classifier needs at least 2", classes);
        goto out;
    }
    *permanent = false; /* from here on, file system trouble may pass */
    if (ensure_dir(data_dir, ctx->hash, err) != 0)
        goto out;
    rel = finetune_file_relpath(ctx->hash, "ckpt");
    ckpt = xasprintf("%s/%s", data_dir, rel);
    free(rel);
    rel = finetune_file_relpath(ctx->hash, "head");
    wpath = xasprintf("%s/%s", data_dir, rel);
    /* Resume from the checkpoint of an earlier attempt when it fits this job. */
    uint32_t resumed = 0;
    const char *ckpt_note = NULL;
    bool missing;
    char *cerr = NULL;
    if (head_file_read(ckpt, ctx->hash, &net, &st, &missing, &cerr) == 0) {
        if (net.dim == train.dim && net.classes == classes && net.kind == k.kind &&
            (k.kind == HEAD_LINEAR || net.hidden == (uint32_t)k.hidden) &&
            st.epoch <= (uint32_t)k.epochs) {
            resumed = st.epoch;
        } else {
            ckpt_note = "checkpoint did not fit the job: started over";
            head_net_free(&net);
            head_state_free(&st);
        }
    } else if (!missing) {
        ckpt_note = "unreadable checkpoint ignored: started over";
    }
    free(cerr);
    if (!net.theta)
        head_init(&net, &st, &k, train.x, train.n, train.dim, classes);
    epoch_arg ea = {.ctx = ctx, .ckpt = ckpt, .epochs = k.epochs,
                    .interval = checkpoint_interval(), .last_write = now_seconds()};
    /* The GPU when the build has CUDA, a GPU answers and RANKQL_DEVICE is not "cpu"; the
     * CPU otherwise, and also from the last completed epoch on when the GPU fails midway
     * (head_cuda.h: same training, rounding apart). */
    const char *device = "cpu";
    int trc = HEAD_CUDA_ENOGPU;
    if (gpu_wanted()) {
        trc = head_train_cuda(&net, &st, &k, train.x, train.y, train.n, on_epoch, &ea, err);
        if (trc == HEAD_CUDA_ENOGPU) {
            gpu_note = *err;
            *err = NULL;
        } else {
            device = "cuda";
        }
    }
    if (trc == HEAD_CUDA_ENOGPU)
        trc = head_train(&net, &st, &k, train.x, train.y, train.n, on_epoch, &ea, err);
    if (trc < 0) {
        *permanent = true; /* diverged or bad labels: the same again */
        goto out;
    }
    if (trc > 0) {
        if (ea.err) {
            *err = ea.err;
            ea.err = NULL;
        } else {
            *err = xstrdup("fine-tune stopped (cancelled or lease lost); its checkpoint stays "
                           "for the next attempt");
        }
        goto out;
    }
    double train_acc = head_accuracy(&net, train.x, train.y, train.n);
    double test_acc = head_accuracy(&net, test.x, test.y, test.n);
    if (head_file_write(wpath, ctx->hash, &net, NULL, err) != 0)
        goto out;
    unlink(ckpt);
    char digest[65];
    head_digest(&net, digest);
    const char *kind = k.kind == HEAD_MLP ? "mlp" : "linear";
    uint32_t outdim = k.kind == HEAD_MLP ? net.hidden : net.classes;
    const json_t *fit = json_object_get(payload, "fit");
    json_t *spec = json_pack(
        "{s:{s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:O}, s:O, s:s}", "head", "path", rel, "kind",
        kind, "dim", (int)net.dim, "hidden", (int)net.hidden, "classes", (int)net.classes,
        "output", k.kind == HEAD_MLP ? "hidden" : "logits", "digest", digest, "fit",
        fit ? fit : json_null(), "parent", model, "job", ctx->hash);
    char *newname = xasprintf("%s@ft-%.8s", mname, ctx->hash);
    *result = json_pack(
        "{s:s, s:f, s:f, s:f, s:o, s:s, s:s, s:s, s:o, s:i, s:I, s:I, s:I, s:I, s:i, s:b, "
        "s:s?, s:I, s:f, s:s, s:s?}",
        "runner", "head", "train_accuracy", train_acc, "test_accuracy", test_acc,
        "elapsed_seconds", now_seconds() - t0, "knobs", knobs, "path", rel, "weights_digest",
        digest, "model_name", newname, "model_spec", spec, "dimension", (int)outdim,
        "num_params", (json_int_t)net.nparams, "train_size", (json_int_t)train.n, "test_size",
        (json_int_t)test.n, "epochs_run", (json_int_t)(st.epoch - resumed),
        "resumed_from_epoch", (int)resumed, "held_out", held_out, "checkpoint_note", ckpt_note,
        "classes", (json_int_t)classes, "seconds", now_seconds() - t0, "device", device,
        "device_note", gpu_note);
    knobs = NULL;
    free(newname);
    if (ctx->progress)
        ctx->progress(ctx->progress_arg, 1, "trained");
    rc = 0;
out:
    json_decref(knobs);
    side_free(&train);
    side_free(&test);
    head_net_free(&net);
    head_state_free(&st);
    free(ckpt);
    free(wpath);
    free(rel);
    free(gpu_note);
    return rc;
}

/* ---- embedding a fine-tuned head model -------------------------------------------------- */

bool finetune_is_head_model(const json_t *spec)
{
    const json_t *head = json_object_get(spec, "head");
    return json_is_object(head) && json_is_string(json_object_get(head, "path")) &&
           json_is_object(json_object_get(spec, "parent")) &&
           json_is_string(json_object_get(spec, "job"));
}

json_t *finetune_head_parent_payload(const json_t *spec, const json_t *dataset)
{
    const json_t *fit = json_object_get(json_object_get(spec, "head"), "fit");
    return json_pack("{s:O, s:O, s:O}", "model", json_object_get(spec, "parent"), "dataset",
                     dataset, "fit", fit ? fit : json_null());
}

int finetune_head_features(job_ctx *ctx, const json_t *spec, json_t *result, char **err,
                           bool *permanent)
{
    *permanent = true;
    const char *data_dir = ctx->data_dir ? ctx->data_dir : ".";
    const json_t *head = json_object_get(spec, "head");
    const char *rel = json_string_value(json_object_get(head, "path"));
    const char *job = json_string_value(json_object_get(spec, "job"));
    const char *want = json_string_value(json_object_get(head, "digest"));
    bool hidden = json_is_string(json_object_get(head, "output")) &&
                  strcmp(json_string_value(json_object_get(head, "output")), "hidden") == 0;
    char *path = xasprintf("%s/%s", data_dir, rel);
    head_net net = {0};
    featfile f = {0};
    bool missing;
    int rc = -1;
    if (head_file_read(path, job, &net, NULL, &missing, err) != 0)
        goto out;
    char digest[65];
    head_digest(&net, digest);
    if (want && strcmp(want, digest) != 0) {
        *err = xasprintf("the head weights %s changed since the fine-tune (digest %.12s…, now "
                         "%.12s…)", rel, want, digest);
        goto out;
    }
    if (featstore_read(data_dir, ctx->hash, &f, err) != 0)
        goto out;
    if (f.dim != net.dim) {
        *err = xasprintf("the parent's features have %u dimensions, the head was trained on %u",
                         f.dim, net.dim);
        goto out;
    }
    uint32_t out_dim = hidden && net.kind == HEAD_MLP ? net.hidden : net.classes;
    float *y = xmalloc(((size_t)f.rows * out_dim + 1) * sizeof *y);
    float *tmp = xmalloc((net.dim + net.hidden + 1) * sizeof *tmp);
    for (uint64_t i = 0; i < f.rows; i++)
        head_apply(&net, f.x + i * f.dim, hidden, y + i * out_dim, tmp);
    free(tmp);
    uint64_t bytes = 0;
    rc = featstore_write(data_dir, ctx->hash, y, f.y, f.rows, out_dim, f.num_classes, &bytes, err);
    free(y);
    if (rc != 0) {
        *permanent = false;
        goto out;
    }
    json_object_set_new(result, "dim", json_integer((json_int_t)out_dim));
    json_object_set_new(result, "bytes", json_integer((json_int_t)bytes));
out:
    free(path);
    head_net_free(&net);
    featfile_free(&f);
    return rc;
}
