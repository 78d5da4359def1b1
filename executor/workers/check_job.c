/* The check job runner (check_job.h, docs/jobs.md "Check jobs"). */
#include "executor/workers/check_job.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "datasets/dataset.h"
#include "executor/workers/runners/replay.h"
#include "executor/workers/runners/runners.h"

/* Latency: builtin extractors are applied again and again until this much time has passed
 * (or MAX_REPS applications), so fast ones are not measured on a single tick of the clock. */
#define MIN_TIMING_SECONDS 0.05
#define MAX_REPS 200
#define DEFAULT_SAMPLES 16
#define MAX_SAMPLES 1024
#define FIT_SAMPLES 64
#define DEFAULT_SIDE 28

/* ---- the pure parts ---------------------------------------------------------------------- */

const char *check_status_name(check_status s)
{
    switch (s) {
    case CHECK_USABLE: return "USABLE";
    case CHECK_NONUSABLE: return "NONUSABLE";
    case CHECK_INVALID: return "INVALID";
    case CHECK_UNCHECKED: return "UNCHECKED";
    }
    return "INVALID";
}

check_status check_output(const float *x, size_t rows, size_t dim, int64_t want_dim, char **msg)
{
    *msg = NULL;
    if (dim == 0) {
        *msg = xstrdup("the output has 0 values per sample");
        return CHECK_NONUSABLE;
    }
    if (want_dim > 0 && (uint64_t)want_dim != dim) {
        *msg = xasprintf("the output has %zu values per sample, but the catalog's dimension is "
                         "%" PRId64, dim, want_dim);
        return CHECK_NONUSABLE;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < dim; j++) {
            float v = x[r * dim + j];
            if (!isfinite(v)) {
                *msg = xasprintf("the output is not finite: %s at sample %zu, value %zu",
                                 isnan(v) ? "NaN" : v > 0 ? "+Infinity" : "-Infinity", r, j);
                return CHECK_NONUSABLE;
            }
        }
    return CHECK_USABLE;
}

int64_t check_builtin_params(const embed_spec *spec, embed_shape in)
{
    int64_t d = (int64_t)(in.height * in.width * in.channels);
    switch (spec->kind) {
    case EMBED_PCA: return (int64_t)spec->k * d + d;
    case EMBED_RANDOM_PROJECTION: return d * spec->k;
    case EMBED_RANDOM_FOURIER: return d * spec->k + spec->k;
    case EMBED_RANDOM_CONV:
        return (int64_t)spec->width * spec->ksize * spec->ksize * (int64_t)in.channels;
    default: return 0;
    }
}

double check_latency_ms(double seconds, size_t samples)
{
    return samples ? seconds * 1000.0 / (double)samples : 0;
}

void check_synthetic_bytes(uint8_t *out, size_t n, uint64_t seed)
{
    uint64_t s = seed ? seed : 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out[i] = (uint8_t)((s * 0x2545f4914f6cdd1dULL) >> 56);
    }
}

const char *check_device(void)
{
    static char device[256];
    static int done;
    if (done) /* computed once per process; a benign race writes the same text */
        return device;
    char cpu[160] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0)
                continue;
            const char *v = strchr(line, ':');
            if (!v)
                break;
            v++;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(cpu, sizeof cpu, "%.*s", (int)strcspn(v, "\n"), v);
            break;
        }
        fclose(f);
    }
    char host[128] = "?";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    snprintf(device, sizeof device, "cpu: %s (%s)", cpu, host);
    done = 1;
    return device;
}

/* ---- running ----------------------------------------------------------------------------- */

/* What a check found, before it becomes the job's result. */
typedef struct verdict {
    check_status status;
    char *message;
    double latency_ms;       /* < 0: not measured */
    int64_t dimension;       /* 0: not measured */
    int64_t num_params;      /* 0: not known */
} verdict;

static int set_verdict(verdict *v, check_status s, char *message)
{
    v->status = s;
    free(v->message);
    v->message = message;
    return 0;
}

static int64_t int_field(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Synthetic images (n × side × side × channels bytes) or texts, labels none. */
typedef struct synthetic {
    dataset ds;
    uint8_t *pixels;
    char **texts;
    char *block;
} synthetic;

static void synthetic_images(synthetic *s, size_t n, size_t side, size_t channels, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->pixels = xmalloc(n * side * side * channels + 1);
    check_synthetic_bytes(s->pixels, n * side * side * channels, seed);
    s->ds.kind = DATASET_IMAGES;
    s->ds.n = s->ds.total = n;
    s->ds.height = s->ds.width = side;
    s->ds.channels = channels;
    s->ds.pixel = DATASET_PIXEL_U8;
    s->ds.u8 = s->pixels;
}

static void synthetic_texts(synthetic *s, size_t n)
{
    static const char *const words[] = {"model", "check", "sample", "ranking", "query",
                                        "dataset", "proxy", "embedding"};
    memset(s, 0, sizeof *s);
    s->block = xmalloc(n * 64);
    s->texts = xmalloc(n * sizeof *s->texts);
    for (size_t i = 0; i < n; i++) {
        char *t = s->block + i * 64;
        snprintf(t, 64, "a %s about %s number %zu", words[i % 8], words[(i * 3 + 1) % 8], i);
        s->texts[i] = t;
    }
    s->ds.kind = DATASET_TEXTS;
    s->ds.n = s->ds.total = n;
    s->ds.texts = s->texts;
}

static void synthetic_free(synthetic *s)
{
    free(s->pixels);
    free(s->texts);
    free(s->block);
}

/* builtin and noop: the extractor library, timed over repeated applications. */
static int check_builtin(const char *runner, const json_t *model, const json_t *spec, size_t n,
                         verdict *v)
{
    embed_spec es;
    char *e = NULL;
    if (strcmp(runner, "noop") == 0) {
        embed_spec_init(&es, EMBED_RAW);
    } else if (embed_spec_from_json(spec, &es, &e) != 0) {
        set_verdict(v, CHECK_INVALID, xasprintf("the spec cannot be loaded: %s", e));
        free(e);
        return 0;
    }
    const char *modality = json_string_value(json_object_get(model, "modality"));
    if (modality && strcmp(modality, "text") == 0)
        return set_verdict(v, CHECK_INVALID, xasprintf("builtin extractors cannot embed texts "
                           "(extractor %s on a text model)", embed_kind_name(es.kind)));
    int64_t side = int_field(model, "image_size");
    if (side <= 0)
        side = DEFAULT_SIDE;
    embed_shape in = {(size_t)side, (size_t)side, 1, false};
    embedder *emb = embedder_new(&es, in, &e);
    if (!emb) {
        set_verdict(v, CHECK_INVALID, xasprintf("extractor %s cannot be built for %" PRId64
                                                "x%" PRId64 "x1 images: %s",
                                                embed_kind_name(es.kind), side, side, e));
        free(e);
        return 0;
    }
    synthetic data, fit;
    synthetic_images(&data, n, (size_t)side, 1, 1);
    int rc = 0;
    if (embed_needs_fit(&es)) {
        synthetic_images(&fit, FIT_SAMPLES > n ? FIT_SAMPLES : n, (size_t)side, 1, 2);
        embed_input tr;
        if (embed_input_of(&fit.ds, 0, fit.ds.n, &tr, &e) != 0 || embedder_fit(emb, &tr, &e) != 0) {
            set_verdict(v, CHECK_INVALID, xasprintf("extractor %s cannot be fitted: %s",
                                                    embed_kind_name(es.kind), e));
            free(e);
            rc = 1;
        }
        synthetic_free(&fit);
    }
    size_t dim = embedder_dim(emb);
    float *x = rc ? NULL : xmalloc(n * (dim ? dim : 1) * sizeof(float));
    embed_input part;
    if (!rc && (embed_input_of(&data.ds, 0, n, &part, &e) != 0 ||
                embedder_apply(emb, &part, x, &e) != 0)) {
        set_verdict(v, CHECK_INVALID, xasprintf("extractor %s cannot run: %s",
                                                embed_kind_name(es.kind), e));
        free(e);
        rc = 1;
    }
    if (!rc) {
        /* the first application above was the warm-up; now the timed ones */
        int reps = 0;
        double t0 = now_seconds(), t = t0;
        while (reps < MAX_REPS && (reps == 0 || t - t0 < MIN_TIMING_SECONDS)) {
            if (embedder_apply(emb, &part, x, &e) != 0) {
                free(e);
                break;
            }
            reps++;
            t = now_seconds();
        }
        char *msg = NULL;
        check_status s = check_output(x, n, dim, int_field(model, "dimension"), &msg);
        v->latency_ms = check_latency_ms(t - t0, n * (size_t)reps);
        v->dimension = (int64_t)dim;
        v->num_params = check_builtin_params(&es, in);
        if (s == CHECK_USABLE)
            msg = xasprintf("%zu synthetic %" PRId64 "x%" PRId64 "x1 images: %zu values each, "
                            "%.4g ms per sample", n, side, side, dim, v->latency_ms);
        set_verdict(v, s, msg);
    }
    free(x);
    synthetic_free(&data);
    embedder_free(emb);
    return 0;
}

/* exec and onnx: through their runners; the latency includes starting the command or
 * loading the model, divided over the samples. Returns -1 (retry) for a transient error. */
static int check_runner(job_ctx *ctx, const char *runner, const json_t *model, const json_t *spec,
                        size_t n, verdict *v, char **err, bool *permanent)
{
    const char *modality = json_string_value(json_object_get(model, "modality"));
    const char *name = json_string_value(json_object_get(model, "name"));
    synthetic data;
    int64_t side = int_field(model, "image_size");
    if (side <= 0)
        side = int_field(spec, "image_size");
    if (side <= 0)
        side = DEFAULT_SIDE;
    int64_t channels = int_field(spec, "channels");
    if (channels != 1 && channels != 3)
        channels = 3;
    if (modality && strcmp(modality, "text") == 0)
        synthetic_texts(&data, n);
    else
        synthetic_images(&data, n, (size_t)side, (size_t)channels, 1);
    bool fault = false;
    runner_call call = {model, spec, name ? name : runner, &data.ds, "synthetic check samples",
                        ctx, &fault};
    float *x = NULL;
    size_t dim = 0;
    char *e = NULL;
    bool perm = false;
    double t0 = now_seconds();
    int rc = strcmp(runner, "exec") == 0 ? exec_runner_embed(&call, &x, &dim, &e, &perm)
                                         : onnx_runner_embed(&call, &x, &dim, &e, &perm);
    double seconds = now_seconds() - t0;
    if (rc != 0 && !perm && !fault) {
        *err = e;
        *permanent = false;
        synthetic_free(&data);
        return -1;
    }
    if (rc != 0) {
        set_verdict(v, fault ? CHECK_NONUSABLE : CHECK_INVALID, e);
    } else {
        char *msg = NULL;
        check_status s = check_output(x, n, dim, int_field(model, "dimension"), &msg);
        v->latency_ms = check_latency_ms(seconds, n);
        v->dimension = (int64_t)dim;
        if (s == CHECK_USABLE) {
            if (modality && strcmp(modality, "text") == 0)
                msg = xasprintf("%zu synthetic texts: %zu values each, %.4g ms per sample "
                                "(the command's start-up included)", n, dim, v->latency_ms);
            else
                msg = xasprintf("%zu synthetic %" PRId64 "x%" PRId64 "x%" PRId64 " images: %zu "
                                "values each, %.4g ms per sample (start-up included)",
                                n, side, side, channels, dim, v->latency_ms);
        }
        set_verdict(v, s, msg);
    }
    free(x);
    synthetic_free(&data);
    return 0;
}

/* replay: no inference; its records must be readable and hold the model. */
static void check_replay(const json_t *spec, verdict *v)
{
    const char *path = json_string_value(json_object_get(spec, "records"));
    const char *ident = json_string_value(json_object_get(spec, "model_identifier"));
    if (!path) {
        set_verdict(v, CHECK_USABLE, xstrdup("replay model without records of its own: it "
                                             "answers from the replay dataset's records"));
        return;
    }
    replay_records *r = NULL;
    char *e = NULL;
    if (replay_records_load(path, &r, &e) != 0) {
        set_verdict(v, CHECK_INVALID, xasprintf("records cannot be read: %s", e));
        free(e);
        return;
    }
    if (ident && !replay_has_model(r, ident))
        set_verdict(v, CHECK_INVALID, xasprintf("no run of %s is recorded in %s", ident, path));
    else
        set_verdict(v, CHECK_USABLE, xasprintf("records %s readable (no inference)", path));
    replay_records_free(r);
}

static int run_check(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                     bool *permanent)
{
    *result = NULL;
    *permanent = false;
    double t0 = now_seconds();
    const json_t *model = json_object_get(payload, "model");
    if (!json_is_object(model) || !json_is_integer(json_object_get(model, "id")))
        return job_fail(err, permanent, true, "bad check payload: \"model\" must be an object "
                        "with an integer \"id\"");
    const char *runner = json_string_value(json_object_get(model, "runner"));
    if (!runner)
        return job_fail(err, permanent, true, "bad check payload: \"model.runner\" must be a "
                        "string");
    const json_t *spec = json_object_get(model, "spec");
    json_t *empty = json_object();
    if (!json_is_object(spec))
        spec = empty;
    size_t n = DEFAULT_SAMPLES;
    const json_t *jn = json_object_get(payload, "samples");
    if (jn && (!json_is_integer(jn) || json_integer_value(jn) < 1 ||
               json_integer_value(jn) > MAX_SAMPLES)) {
        json_decref(empty);
        return job_fail(err, permanent, true, "bad check payload: \"samples\" must be an "
                        "integer from 1 to %d", MAX_SAMPLES);
    }
    if (jn)
        n = (size_t)json_integer_value(jn);

    verdict v = {CHECK_INVALID, NULL, -1, 0, 0};
    int rc = 0;
    if (strcmp(runner, "builtin") == 0 || strcmp(runner, "noop") == 0)
        rc = check_builtin(runner, model, spec, n, &v);
    else if (strcmp(runner, "exec") == 0 || strcmp(runner, "onnx") == 0)
        rc = check_runner(ctx, runner, model, spec, n, &v, err, permanent);
    else if (strcmp(runner, "replay") == 0)
        check_replay(spec, &v);
    else
        set_verdict(&v, CHECK_UNCHECKED, xasprintf("runner %s is not executed by rankql",
                                                   runner));
    json_decref(empty);
    if (rc != 0) {
        free(v.message);
        return -1;
    }
    if (ctx->should_stop && ctx->should_stop(ctx->stop_arg)) {
        free(v.message);
        return job_fail(err, permanent, false, "check job stopped (cancelled or lease lost)");
    }
    *result = json_pack("{s:s, s:s, s:s, s:I, s:f}", "status", check_status_name(v.status),
                        "message", v.message ? v.message : "", "device", check_device(),
                        "samples", (json_int_t)n, "seconds", now_seconds() - t0);
    json_object_set_new(*result, "latency_ms", v.latency_ms >= 0 ? json_real(v.latency_ms)
                                                                 : json_null());
    json_object_set_new(*result, "dimension", v.dimension > 0 ? json_integer(v.dimension)
                                                              : json_null());
    json_object_set_new(*result, "num_params", v.num_params > 0 ? json_integer(v.num_params)
                                                                : json_null());
    free(v.message);
    if (ctx->progress)
        ctx->progress(ctx->progress_arg, 1, "done");
    return 0;
}

/* The model's row, only while this job is its current check. A USABLE model's measured
 * dimension and parameter count fill the catalog's when those are empty; the latency is
 * kept whatever the verdict (a wrong output can still be timed). */
static int store_check(PGconn *conn, const job_ctx *ctx, const json_t *payload,
                       const json_t *result, char **err)
{
    const json_t *model = json_object_get(payload, "model");
    char id[24], job[24], lat[40], dim[24], params_n[24];
    snprintf(id, sizeof id, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(model, "id")));
    snprintf(job, sizeof job, "%" PRId64, ctx->job_id);
    const json_t *jl = json_object_get(result, "latency_ms");
    const json_t *jd = json_object_get(result, "dimension");
    const json_t *jp = json_object_get(result, "num_params");
    snprintf(lat, sizeof lat, "%.17g", json_number_value(jl));
    snprintf(dim, sizeof dim, "%" JSON_INTEGER_FORMAT, json_integer_value(jd));
    snprintf(params_n, sizeof params_n, "%" JSON_INTEGER_FORMAT, json_integer_value(jp));
    const char *status = json_string_value(json_object_get(result, "status"));
    bool usable = status && strcmp(status, "USABLE") == 0;
    const char *params[] = {
        id, job, status ? status : "INVALID",
        json_string_value(json_object_get(result, "message")),
        json_is_number(jl) ? lat : NULL,
        json_string_value(json_object_get(result, "device")),
        usable && json_is_integer(jd) ? dim : NULL,
        usable && json_is_integer(jp) ? params_n : NULL,
    };
    PGresult *res = PQexecParams(
        conn,
        "UPDATE models SET status = $3, status_message = $4, latency_ms = $5::double precision,"
        " measured_on = $6, checked_at = now(),"
        " dimension = COALESCE(dimension, $7::integer),"
        " num_params = COALESCE(num_params, $8::bigint)"
        " WHERE id = $1::bigint AND check_job_id = $2::bigint",
        8, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *m = PQresultErrorMessage(res);
        *err = xasprintf("cannot store the check of model %s: %.*s", id, (int)strcspn(m, "\n"), m);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

const job_runner check_job_runner = {"check", run_check, store_check};
