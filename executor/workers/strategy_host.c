/* The strategy host API, engine side (strategy_host.h). */
#include "executor/workers/strategy_host.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "db/pqutil.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/proxy_job.h"
#include "executor/workers/runners/replay.h"
#include "queue/queue.h"

struct strategy_host {
    job_ctx *ctx;
    const json_t *models, *datasets;
    const json_t *data;     /* {"train", "test"}: dataset objects as embed jobs name them */
    json_t *paid_embeds;    /* embed job hash → seconds, each embedding paid once */
    json_t *dataset_rows;   /* id text → catalog row (spec included), fetched once */
    json_t *records;        /* path → digest text (the records file read once) */
    replay_records **recs;  /* parallel to records' insertion order */
    char **rec_paths;
    size_t nrecs;
    json_t *finetuned, *proxied;
    long history_calls;
    char worker_id[256];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

strategy_host *strategy_host_new(job_ctx *ctx, const json_t *models, const json_t *datasets,
                                 const json_t *data)
{
    strategy_host *h = xcalloc(1, sizeof *h);
    h->ctx = ctx;
    h->models = models;
    h->datasets = datasets;
    h->data = json_is_object(data) ? data : NULL;
    h->paid_embeds = json_object();
    h->dataset_rows = json_object();
    h->records = json_object();
    h->finetuned = json_array();
    h->proxied = json_array();
    char host[128] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    /* The inline jobs' lease owner: distinct from the slot's, and saying whose they are. */
    snprintf(h->worker_id, sizeof h->worker_id, "%s:%ld:strategy-%lld", host, (long)getpid(),
             (long long)ctx->job_id);
    return h;
}

void strategy_host_free(strategy_host *h)
{
    if (!h)
        return;
    json_decref(h->dataset_rows);
    json_decref(h->records);
    json_decref(h->paid_embeds);
    for (size_t i = 0; i < h->nrecs; i++) {
        replay_records_free(h->recs[i]);
        free(h->rec_paths[i]);
    }
    free(h->recs);
    free(h->rec_paths);
    json_decref(h->finetuned);
    json_decref(h->proxied);
    free(h);
}

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", sb.data ? sb.data : "");
    strbuf_free(&sb);
    return o;
}

/* ---- the request's objects ---------------------------------------------------------------- */

static const json_t *find_model(const strategy_host *h, json_int_t id)
{
    for (size_t i = 0; i < json_array_size(h->models); i++) {
        const json_t *m = json_array_get(h->models, i);
        if (json_integer_value(json_object_get(m, "id")) == id)
            return m;
    }
    return NULL;
}

static bool is_train_dataset(const strategy_host *h, json_int_t id)
{
    const json_t *train = json_object_get(h->datasets, "train");
    for (size_t i = 0; i < json_array_size(train); i++)
        if (json_integer_value(json_object_get(json_array_get(train, i), "id")) == id)
            return true;
    return false;
}

/* The catalog row of dataset id (spec included), read once; NULL with *err. */
static const json_t *dataset_row(strategy_host *h, json_int_t id, char **err)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)id);
    const json_t *row = json_object_get(h->dataset_rows, key);
    if (row)
        return row;
    const char *p[1] = {key};
    PGresult *res = PQexecParams(h->ctx->conn,
                                 "SELECT (to_jsonb(d) - 'created_at' - 'updated_at')::text "
                                 "FROM datasets d WHERE id = $1::bigint",
                                 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char *m = pq_one_line(PQresultErrorMessage(res));
        *err = xasprintf("reading dataset %s: %s", key, m);
        free(m);
        PQclear(res);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        *err = xasprintf("dataset %s is no longer in the catalog", key);
        PQclear(res);
        return NULL;
    }
    json_t *o = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (!o) {
        *err = xasprintf("dataset %s: unreadable catalog row", key);
        return NULL;
    }
    json_object_set_new(h->dataset_rows, key, o);
    return o;
}

/* The first train dataset (a strategy's task). */
static const json_t *task_dataset(strategy_host *h, char **err)
{
    const json_t *d0 = json_array_get(json_object_get(h->datasets, "train"), 0);
    if (!d0) {
        *err = xstrdup("the strategy has no TRAINED ON dataset");
        return NULL;
    }
    return dataset_row(h, json_integer_value(json_object_get(d0, "id")), err);
}

/* A replay model's records file (its spec's, else the task dataset's), model identifier and
 * task name (each NULL when missing), as proxy_score and history both read them; the task
 * dataset, or NULL with *err. */
static const json_t *replay_names(strategy_host *h, const json_t *model, const char **records,
                                  const char **ident, const char **task, char **err)
{
    const json_t *ds = task_dataset(h, err);
    const json_t *mspec = json_object_get(model, "spec"), *dspec = json_object_get(ds, "spec");
    *records = json_string_value(json_object_get(mspec, "records"));
    if (!*records)
        *records = json_string_value(json_object_get(dspec, "records"));
    *ident = json_string_value(json_object_get(mspec, "model_identifier"));
    *task = json_string_value(json_object_get(dspec, "train_dataset_name"));
    return ds;
}

static replay_records *records_of(strategy_host *h, const char *path, char **err)
{
    for (size_t i = 0; i < h->nrecs; i++)
        if (strcmp(h->rec_paths[i], path) == 0)
            return h->recs[i];
    replay_records *r = NULL;
    if (replay_records_load(path, &r, err) != 0)
        return NULL;
    h->recs = xrealloc(h->recs, (h->nrecs + 1) * sizeof *h->recs);
    h->rec_paths = xrealloc(h->rec_paths, (h->nrecs + 1) * sizeof *h->rec_paths);
    h->recs[h->nrecs] = r;
    h->rec_paths[h->nrecs++] = xstrdup(path);
    return r;
}

/* ---- running a job through the queue ------------------------------------------------------ */

typedef struct inline_job {
    strategy_host *h;
    const queue_job *job;
    double last_beat;
    bool lost;
} inline_job;

/* The inline job's progress renews its lease (the slot's housekeeping only knows the
 * strategy job) and shows on the strategy job's note. */
static void inline_progress(void *arg, double fraction, const char *note)
{
    inline_job *ij = arg;
    double now = now_s();
    if (now - ij->last_beat >= QUEUE_DEFAULT_LEASE_SECONDS / 3.0) {
        bool ours = true;
        char *err = NULL;
        if (queue_heartbeat(ij->h->ctx->conn, ij->job->id, ij->h->worker_id,
                            QUEUE_DEFAULT_LEASE_SECONDS, fraction, note, &ours, &err) == 0 &&
            !ours)
            ij->lost = true;
        free(err);
        ij->last_beat = now;
    }
    (void)fraction;
}

static bool inline_should_stop(void *arg)
{
    inline_job *ij = arg;
    job_ctx *ctx = ij->h->ctx;
    return ij->lost || (ctx->should_stop && ctx->should_stop(ctx->stop_arg));
}

typedef struct store_arg {
    const job_runner *runner;
    const job_ctx *ctx;
    const json_t *payload, *result;
} store_arg;

static int store_cb(PGconn *conn, void *arg, char **err)
{
    store_arg *a = arg;
    return a->runner->store ? a->runner->store(conn, a->ctx, a->payload, a->result, err) : 0;
}

/* Runs a claimed job here. 0 with *result, or -1 with *err (the job failed, or was lost). */
static int run_inline(strategy_host *h, queue_job *job, json_t **result, char **err)
{
    const job_runner *runner = job_runner_find(job->kind);
    if (!runner) {
        char *e = NULL;
        queue_release(h->ctx->conn, job, h->worker_id, &e);
        free(e);
        *err = xasprintf("no runner for job kind %s in this worker", job->kind);
        return -1;
    }
    inline_job ij = {h, job, now_s(), false};
    job_ctx sub = {.data_dir = h->ctx->data_dir,
                   .job_id = job->id,
                   .hash = job->hash,
                   .conn = h->ctx->conn,
                   .progress = inline_progress,
                   .progress_arg = &ij,
                   .should_stop = inline_should_stop,
                   .stop_arg = &ij};
    json_t *res = NULL;
    bool permanent = false;
    char *rerr = NULL;
    if (runner->run(&sub, job->payload, &res, &rerr, &permanent) != 0) {
        char *e = NULL;
        if (inline_should_stop(&ij))
            queue_release(h->ctx->conn, job, h->worker_id, &e);
        else
            queue_fail(h->ctx->conn, job, h->worker_id, rerr ? rerr : "failed", permanent, &e);
        free(e);
        *err = xasprintf("job %lld (%s) failed: %s", (long long)job->id, job->kind,
                         rerr ? rerr : "no message");
        free(rerr);
        return -1;
    }
    if (!res)
        res = json_object();
    store_arg sa = {runner, &sub, job->payload, res};
    int c = queue_complete(h->ctx->conn, job, h->worker_id, res, store_cb, &sa, &rerr);
    if (c != 1) {
        *err = c == 0 ? xasprintf("job %lld was cancelled or its lease lost", (long long)job->id)
                      : xasprintf("job %lld: storing its result failed: %s", (long long)job->id,
                                  rerr ? rerr : "?");
        free(rerr);
        json_decref(res);
        return -1;
    }
    *result = res;
    return 0;
}

/* The table that holds a kind's results (by job hash), or NULL. */
static const char *result_table(const char *kind)
{
    return strcmp(kind, "embed") == 0      ? "feature_cache"
           : strcmp(kind, "proxy") == 0    ? "proxy_results"
           : strcmp(kind, "finetune") == 0 ? "finetune_results"
                                           : NULL;
}

/* A done job whose result row is gone (PURGE) would answer from nothing: queue it again, as
 * a ranking does (executor/task_jobs.c). Its status after that in status. */
static int requeue_if_stale(strategy_host *h, const char *kind, const json_t *payload,
                            int64_t id, char status[QUEUE_KIND_MAX], char **err)
{
    const char *table = result_table(kind);
    if (!table || strcmp(status, "done") != 0)
        return 0;
    char hex[HASH_HEX_LEN + 1], idtext[32];
    queue_job_hash(kind, payload, hex);
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    const char *p[2] = {hex, idtext};
    char *sql = xasprintf("UPDATE jobs SET status = 'queued', attempts = 0, result = NULL, "
                          "error = NULL, finished_at = NULL, started_at = NULL, progress = 0, "
                          "progress_note = NULL, run_after = now() WHERE id = $2::bigint AND "
                          "status = 'done' AND NOT EXISTS (SELECT 1 FROM %s WHERE hash = $1)",
                          table);
    PGresult *res = PQexecParams(h->ctx->conn, sql, 2, NULL, p, NULL, NULL, 0);
    free(sql);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char *m = pq_one_line(PQresultErrorMessage(res));
        *err = xasprintf("job %s: %s", idtext, m);
        free(m);
        rc = -1;
    } else if (strcmp(PQcmdTuples(res), "1") == 0) {
        snprintf(status, QUEUE_KIND_MAX, "queued");
    }
    PQclear(res);
    return rc;
}

/* Submits (kind, payload) — waiting for deps (ids of done jobs: the caller ran them first)
 * — and returns its result: from the cache, run here, or waited for. *cached: it was done
 * before this call. 0, or -1 with *err. */
static int through_queue_deps(strategy_host *h, const char *kind, const json_t *payload,
                              const int64_t *deps, size_t ndeps, json_t **result, bool *cached,
                              int64_t *job_id, char **err)
{
    *result = NULL;
    *cached = false;
    PGconn *conn = h->ctx->conn;
    char status[QUEUE_KIND_MAX];
    int64_t id;
    char *e = NULL;
    /* The ranking's priorities (task_jobs.c): embeddings before the jobs that read them. */
    int priority = strcmp(kind, "embed") == 0 ? 0 : 10;
    if (queue_submit(conn, kind, payload, deps, ndeps, priority, &id, status, &e) != 0) {
        *err = xasprintf("submitting the %s job: %s", kind, e ? e : "?");
        free(e);
        return -1;
    }
    *job_id = id;
    if (requeue_if_stale(h, kind, payload, id, status, err) != 0)
        return -1;
    bool first = true;
    int wait_ms = 20;
    for (;;) {
        if (h->ctx->should_stop && h->ctx->should_stop(h->ctx->stop_arg)) {
            *err = xstrdup("the strategy was cancelled (or its lease lost)");
            return -1;
        }
        if (!first && queue_job_state(conn, id, status, NULL, NULL, &e) != 0) {
            *err = xasprintf("job %lld: %s", (long long)id, e ? e : "?");
            free(e);
            return -1;
        }
        if (strcmp(status, "done") == 0) {
            *cached = first;
            json_t *res = NULL;
            if (queue_job_state(conn, id, status, &res, NULL, &e) != 0 || !res) {
                *err = xasprintf("job %lld: %s", (long long)id, e ? e : "no result");
                free(e);
                return -1;
            }
            *result = res;
            return 0;
        }
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            char *jerr = NULL;
            queue_job_state(conn, id, status, NULL, &jerr, &e);
            free(e);
            *err = xasprintf("job %lld (%s) %s: %s", (long long)id, kind, status,
                             jerr ? jerr : "no message");
            free(jerr);
            return -1;
        }
        first = false;
        if (strcmp(status, "queued") == 0) {
            queue_job job;
            int c = queue_claim_id(conn, id, h->worker_id, QUEUE_DEFAULT_LEASE_SECONDS, &job, &e);
            if (c < 0) {
                *err = xasprintf("claiming job %lld: %s", (long long)id, e ? e : "?");
                free(e);
                return -1;
            }
            if (c == 1) {
                int rc = run_inline(h, &job, result, err);
                queue_job_clear(&job);
                return rc;
            }
        }
        /* Running elsewhere, backing off, or waiting for a dependency: wait for it. */
        struct timespec ts = {0, (long)wait_ms * 1000000L};
        nanosleep(&ts, NULL);
        if (wait_ms < 500)
            wait_ms *= 2;
    }
}

static int through_queue(strategy_host *h, const char *kind, const json_t *payload,
                         json_t **result, bool *cached, int64_t *job_id, char **err)
{
    return through_queue_deps(h, kind, payload, NULL, 0, result, cached, job_id, err);
}

/* ---- file data: embed jobs ---------------------------------------------------------------- */

static bool runner_embeds(const char *runner)
{
    return runner && (strcmp(runner, "builtin") == 0 || strcmp(runner, "onnx") == 0 ||
                      strcmp(runner, "exec") == 0 || strcmp(runner, "noop") == 0);
}

/* The model as embed jobs name it (executor/task.c load_models): {"id", "name", "runner",
 * "modality", "spec", "batch_size"}, batch_size from the catalog row the payload carries. */
static json_t *embed_model(const json_t *model)
{
    const json_t *spec = json_object_get(model, "spec");
    const json_t *bs = json_object_get(json_object_get(model, "catalog"), "batch_size");
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(model, "id"), "name",
                     json_object_get(model, "name"), "runner", json_object_get(model, "runner"),
                     "modality", json_object_get(model, "modality"), "spec",
                     spec ? spec : json_object(), "batch_size",
                     json_is_integer(bs) ? bs : json_null());
}

/* The "fit" of the model's embed jobs: the first train dataset when a builtin extractor is
 * fitted (PCA, …), as a ranking's; else null. */
static json_t *embed_fit(const json_t *eobj, const json_t *train)
{
    embed_spec es;
    char *e = NULL;
    bool needs = strcmp(json_string_value(json_object_get(eobj, "runner")), "builtin") == 0 &&
                 embed_spec_from_json(json_object_get(eobj, "spec"), &es, &e) == 0 &&
                 embed_needs_fit(&es);
    free(e);
    const json_t *d0 = json_array_get(train, 0);
    return needs && d0 ? json_incref((json_t *)d0) : json_null();
}

/* The file data of the request, or NULL with *err. */
static bool file_data(const strategy_host *h, const char *call, const json_t *model,
                      const json_t **train, const json_t **test, char **err)
{
    const char *runner = json_string_value(json_object_get(model, "runner"));
    if (!runner_embeds(runner)) {
        *err = xasprintf("%s: model %s has runner %s, which has no features here (builtin, onnx, "
                         "exec and noop embed; replay models are scored on replay datasets)",
                         call, json_string_value(json_object_get(model, "name")),
                         runner ? runner : "?");
        return false;
    }
    *train = json_object_get(h->data, "train");
    *test = json_object_get(h->data, "test");
    if (!h->data || json_array_size(*train) == 0) {
        *err = xasprintf("%s: the strategy job carries no file datasets (a replay ranking, or "
                         "one planned by an older rankqld: run the RANK again)", call);
        return false;
    }
    return true;
}

/* Runs an embed job (payload stolen) through the queue; its id in *id, its hash in hex.
 * Its seconds are paid once per host. 0, or -1 with *err. */
static int run_embed(strategy_host *h, json_t *payload, int64_t *id, char hex[HASH_HEX_LEN + 1],
                     char **err)
{
    queue_job_hash("embed", payload, hex);
    json_t *res;
    bool cached;
    int rc = through_queue(h, "embed", payload, &res, &cached, id, err);
    json_decref(payload);
    if (rc != 0)
        return -1;
    if (!json_object_get(h->paid_embeds, hex)) {
        json_t *s = json_object_get(res, "seconds");
        json_object_set_new(h->paid_embeds, hex, json_real(json_number_value(s)));
    }
    json_decref(res);
    return 0;
}

/* The seconds of embed jobs among hashes not yet counted by a call's account; marks them
 * counted (a JSON true replaces the number). */
static double take_embed_seconds(strategy_host *h, const char *const *hashes, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(h->paid_embeds, hashes[i]);
        if (json_is_number(v)) {
            s += json_number_value(v);
            json_object_set_new(h->paid_embeds, hashes[i], json_true());
        }
    }
    return s;
}

json_t *strategy_host_proxy_jobs(const json_t *model, const json_t *data, const json_t *canon,
                                 char **err)
{
    const char *runner = json_string_value(json_object_get(model, "runner"));
    const json_t *train = json_object_get(data, "train"), *test = json_object_get(data, "test");
    if (!runner_embeds(runner)) {
        *err = xasprintf("proxy_score: model %s has runner %s, which has no features here "
                         "(builtin, onnx, exec and noop embed; replay models are scored on "
                         "replay datasets)",
                         json_string_value(json_object_get(model, "name")),
                         runner ? runner : "?");
        return NULL;
    }
    if (json_array_size(train) == 0) {
        *err = xstrdup("proxy_score: the strategy job carries no file datasets (a replay "
                       "ranking, or one planned by an older rankqld: run the RANK again)");
        return NULL;
    }
    json_t *eobj = embed_model(model), *fit = embed_fit(eobj, train);
    json_t *jobs = json_array(), *tr = json_array(), *te = json_array();
    size_t n = json_array_size(train) + json_array_size(test);
    for (size_t i = 0; i < n; i++) {
        bool is_train = i < json_array_size(train);
        const json_t *d = is_train ? json_array_get(train, i)
                                   : json_array_get(test, i - json_array_size(train));
        json_t *p = json_pack("{s:O, s:O, s:O}", "model", eobj, "dataset", d, "fit", fit);
        char hex[HASH_HEX_LEN + 1];
        queue_job_hash("embed", p, hex);
        json_array_append_new(jobs, json_pack("{s:s, s:o, s:s}", "kind", "embed", "payload", p,
                                              "hash", hex));
        json_array_append_new(is_train ? tr : te,
                              json_pack("{s:s, s:[]}", "features", hex, "changes"));
    }
    json_t *p = json_pack("{s:O, s:O, s:o, s:o}", "proxy", canon, "model_id",
                          json_object_get(model, "id"), "train", tr, "test", te);
    char hex[HASH_HEX_LEN + 1];
    queue_job_hash("proxy", p, hex);
    json_array_append_new(jobs, json_pack("{s:s, s:o, s:s}", "kind", "proxy", "payload", p,
                                          "hash", hex));
    json_decref(eobj);
    json_decref(fit);
    return jobs;
}

/* Runs jobs (embed payloads, then the kind job that reads their features) in order through
 * the queue, the last one waiting for the others: how proxy_score and finetune run on files.
 * Takes jobs. 0 with *res, or -1 with *err. */
static int run_chain(strategy_host *h, const char *kind, json_t *jobs, json_t **res,
                     bool *cached, int64_t *job_id, double *embed_secs, char **err)
{
    size_t last = json_array_size(jobs) - 1;
    int64_t *deps = xcalloc(last + 1, sizeof *deps);
    char (*hashes)[HASH_HEX_LEN + 1] = xcalloc(last + 1, sizeof *hashes);
    const char **hp = xcalloc(last + 1, sizeof *hp);
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < last; k++) {
        json_t *p = json_object_get(json_array_get(jobs, k), "payload");
        rc = run_embed(h, json_incref(p), &deps[k], hashes[k], err);
        hp[k] = hashes[k];
    }
    if (rc == 0)
        rc = through_queue_deps(h, kind,
                                json_object_get(json_array_get(jobs, last), "payload"), deps,
                                last, res, cached, job_id, err);
    *embed_secs = rc == 0 ? take_embed_seconds(h, hp, last) : 0;
    json_decref(jobs);
    free(deps);
    free(hashes);
    free(hp);
    return rc;
}

/* The proxy score of strategy_host_proxy_jobs, run through the queue (run_chain). 0 with
 * *res, or -1 with *err. */
static int proxy_on_files(strategy_host *h, const json_t *model, const json_t *canon,
                          json_t **res, bool *cached, int64_t *job_id, double *embed_secs,
                          char **err)
{
    json_t *jobs = h->data ? strategy_host_proxy_jobs(model, h->data, canon, err) : NULL;
    if (!jobs) {
        if (!h->data)
            *err = xstrdup("proxy_score: the strategy job carries no file datasets (a replay "
                           "ranking, or one planned by an older rankqld: run the RANK again)");
        return -1;
    }
    return run_chain(h, "proxy", jobs, res, cached, job_id, embed_secs, err);
}

/* The head fine-tune FINETUNE submits for this model on dataset (finetune_head_jobs: trained
 * on it, tested on the request's first TESTED ON dataset, else a held-out tail), its embed
 * jobs run first. 0 with *res, or -1 with *err. */
static int finetune_on_files(strategy_host *h, const json_t *model, json_int_t dataset_id,
                             const json_t *knobs, json_t **res, bool *cached, int64_t *job_id,
                             double *embed_secs, char **err)
{
    const json_t *train, *test;
    if (!file_data(h, "finetune", model, &train, &test, err))
        return -1;
    const json_t *d = NULL;
    for (size_t i = 0; i < json_array_size(train) && !d; i++)
        if (json_integer_value(json_object_get(json_array_get(train, i), "id")) == dataset_id)
            d = json_array_get(train, i);
    if (!d) {
        *err = xasprintf("finetune: dataset %lld is not among the strategy's file datasets",
                         (long long)dataset_id);
        return -1;
    }
    json_t *eobj = embed_model(model), *tr = json_pack("[O]", d);
    const char *bad = NULL;
    char *e = NULL;
    json_t *jobs = finetune_head_jobs(eobj, tr, json_array_get(test, 0), knobs, &e, &bad);
    json_decref(eobj);
    json_decref(tr);
    if (!jobs) {
        *err = xasprintf("finetune: %s", e ? e : "?");
        free(e);
        return -1;
    }
    return run_chain(h, "finetune", jobs, res, cached, job_id, embed_secs, err);
}

/* ---- the calls ---------------------------------------------------------------------------- */

static json_t *account(json_t *list, json_t *entry)
{
    json_array_append_new(list, entry);
    return entry;
}

static json_t *call_finetune(strategy_host *h, const json_t *req)
{
    json_t *mid = json_object_get(req, "model_id"), *did = json_object_get(req, "dataset_id");
    json_t *knobs = json_object_get(req, "knobs");
    if (!json_is_integer(mid) || !json_is_integer(did))
        return fail("finetune: model_id and dataset_id must be integers");
    if (knobs && !json_is_object(knobs))
        return fail("finetune: knobs must be an object");
    const json_t *model = find_model(h, json_integer_value(mid));
    if (!model)
        return fail("finetune: model %lld is not a candidate of this ranking",
                    (long long)json_integer_value(mid));
    if (!is_train_dataset(h, json_integer_value(did)))
        return fail("finetune: dataset %lld is not a TRAINED ON dataset of this ranking",
                    (long long)json_integer_value(did));
    const char *runner = json_string_value(json_object_get(model, "runner"));
    bool replay = runner && strcmp(runner, "replay") == 0;
    if (replay && knobs && json_object_size(knobs) > 0)
        return fail("finetune: replay fine-tunes take no knobs (the records fix them)");
    char *err = NULL;
    json_t *res = NULL;
    bool cached = false;
    int64_t job_id = 0;
    double embed_secs = 0;
    int rc;
    if (replay && h->data)
        return fail("finetune: model %s has runner replay: recorded runs answer on replay "
                    "datasets, and this ranking is on file data",
                    json_string_value(json_object_get(model, "name")));
    if (replay) {
        const json_t *ds = dataset_row(h, json_integer_value(did), &err);
        json_t *payload = ds ? finetune_replay_payload(model, ds, &err) : NULL;
        if (!payload) {
            json_t *o = fail("finetune: %s", err);
            free(err);
            return o;
        }
        rc = through_queue(h, "finetune", payload, &res, &cached, &job_id, &err);
        json_decref(payload);
    } else {
        /* A head on the model's features, as FINETUNE trains it (the fine-tuned model is
         * registered by the job's store, as FINETUNE's is). */
        rc = finetune_on_files(h, model, json_integer_value(did),
                               knobs && json_object_size(knobs) ? knobs : NULL, &res, &cached,
                               &job_id, &embed_secs, &err);
        if (rc != 0 && strncmp(err, "finetune: ", 10) == 0) {
            json_t *o = fail("%s", err);
            free(err);
            return o;
        }
    }
    if (rc != 0) {
        json_t *o = fail("finetune of model %lld: %s", (long long)json_integer_value(mid), err);
        free(err);
        return o;
    }
    double acc = json_number_value(json_object_get(res, "test_accuracy"));
    double secs = json_number_value(json_object_get(res, "elapsed_seconds")) + embed_secs;
    json_decref(res);
    /* One entry per (model, dataset): asking twice pays once. */
    bool seen = false;
    for (size_t i = 0; i < json_array_size(h->finetuned) && !seen; i++) {
        json_t *e = json_array_get(h->finetuned, i);
        seen = json_integer_value(json_object_get(e, "model_id")) == json_integer_value(mid) &&
               json_integer_value(json_object_get(e, "dataset_id")) == json_integer_value(did);
    }
    if (!seen)
        account(h->finetuned, json_pack("{s:O, s:O, s:f, s:f, s:b, s:I}", "model_id", mid,
                                        "dataset_id", did, "accuracy", acc, "seconds", secs,
                                        "cached", cached, "job_id", (json_int_t)job_id));
    return json_pack("{s:b, s:f, s:f, s:b, s:I}", "ok", 1, "accuracy", acc, "seconds", secs,
                     "cached", cached, "job_id", (json_int_t)job_id);
}

static json_t *proxy_answer(strategy_host *h, json_t *mid, json_t *canon, json_t *res,
                            bool cached, int64_t job_id, double embed_secs);

static json_t *call_proxy(strategy_host *h, const json_t *req)
{
    json_t *mid = json_object_get(req, "model_id"), *proxy = json_object_get(req, "proxy");
    if (!json_is_integer(mid))
        return fail("proxy_score: model_id must be an integer");
    if (json_is_string(proxy))
        proxy = json_pack("{s:O}", "name", proxy);
    else if (json_is_object(proxy))
        json_incref(proxy);
    else
        return fail("proxy_score: proxy must be a name or {\"name\", \"params\"}");
    const char *name = json_string_value(json_object_get(proxy, "name"));
    json_t *params = json_object_get(proxy, "params");
    json_t *p2 = params ? json_deep_copy(params) : json_object();
    if (name && strcmp(name, "cosine_nn") == 0) {
        name = "nn";
        json_object_set_new(p2, "metric", json_string("cosine"));
    }
    char *err = NULL;
    json_t *canon = name ? proxy_job_canonical(name, p2, &err) : NULL;
    json_decref(p2);
    if (!canon) {
        json_t *o = fail("proxy_score: %s", err ? err : "proxy has no name");
        free(err);
        json_decref(proxy);
        return o;
    }
    json_decref(proxy);
    const json_t *model = find_model(h, json_integer_value(mid));
    if (!model) {
        json_decref(canon);
        return fail("proxy_score: model %lld is not a candidate of this ranking",
                    (long long)json_integer_value(mid));
    }
    const char *runner = json_string_value(json_object_get(model, "runner"));
    json_t *res;
    bool cached;
    int64_t job_id = 0;
    double embed_secs = 0;
    if (!runner || strcmp(runner, "replay") != 0) {
        /* File data: the ranking's proxy job, after its embed jobs. */
        if (proxy_on_files(h, model, canon, &res, &cached, &job_id, &embed_secs, &err) != 0) {
            json_t *o = strncmp(err, "proxy_score: ", 13) == 0
                            ? fail("%s", err)
                            : fail("proxy_score of model %lld: %s",
                                   (long long)json_integer_value(mid), err);
            free(err);
            json_decref(canon);
            return o;
        }
        return proxy_answer(h, mid, canon, res, cached, job_id, embed_secs);
    }
    if (h->data) {
        json_decref(canon);
        return fail("proxy_score: model %s has runner replay: recorded runs answer on replay "
                    "datasets, and this ranking is on file data",
                    json_string_value(json_object_get(model, "name")));
    }
    /* The payload RANK … BY the proxy submits for a replay model (executor/task.c
     * replay_prepare): one job, one cache row, whoever asks. */
    const char *records, *ident, *task;
    const json_t *ds = replay_names(h, model, &records, &ident, &task, &err);
    char hex[HASH_HEX_LEN + 1];
    if (ds && (!records || !ident || !task))
        err = xstrdup("the model or the train dataset is not a replay one (spec.records, "
                      "model_identifier, train_dataset_name)");
    const char *digest = ds && !err ? json_string_value(json_object_get(h->records, records)) : NULL;
    if (ds && !err && !digest) {
        if (replay_file_digest(records, hex, &err) == 0) {
            json_object_set_new(h->records, records, json_string(hex));
            digest = json_string_value(json_object_get(h->records, records));
        }
    }
    if (!digest) {
        json_t *o = fail("proxy_score: %s", err ? err : "?");
        free(err);
        json_decref(canon);
        return o;
    }
    json_t *payload = json_pack("{s:O, s:O, s:{s:s, s:s, s:s, s:s}}", "proxy", canon, "model_id",
                                mid, "replay", "records", records, "model_identifier", ident,
                                "train_dataset_name", task, "digest", digest);
    int rc = through_queue(h, "proxy", payload, &res, &cached, &job_id, &err);
    json_decref(payload);
    if (rc != 0) {
        json_t *o = fail("proxy_score of model %lld: %s", (long long)json_integer_value(mid), err);
        free(err);
        json_decref(canon);
        return o;
    }
    return proxy_answer(h, mid, canon, res, cached, job_id, 0);
}

/* The answer (and account) of a proxy job's result res (stolen, as canon is). */
static json_t *proxy_answer(strategy_host *h, json_t *mid, json_t *canon, json_t *res,
                            bool cached, int64_t job_id, double embed_secs)
{
    double e = json_number_value(json_object_get(res, "err"));
    /* On replay data the score is the recorded fine-tune: it costs what the records say. */
    json_t *es = json_object_get(res, "elapsed_seconds");
    double secs = (json_is_number(es) ? json_number_value(es)
                                      : json_number_value(json_object_get(res, "seconds"))) +
                  embed_secs;
    json_decref(res);
    bool seen = false;
    for (size_t i = 0; i < json_array_size(h->proxied) && !seen; i++) {
        json_t *x = json_array_get(h->proxied, i);
        seen = json_integer_value(json_object_get(x, "model_id")) == json_integer_value(mid) &&
               json_equal(json_object_get(x, "proxy"), canon);
    }
    if (!seen)
        account(h->proxied, json_pack("{s:O, s:O, s:f, s:f, s:b, s:I}", "model_id", mid, "proxy",
                                      canon, "err", e, "seconds", secs, "cached", cached,
                                      "job_id", (json_int_t)job_id));
    json_decref(canon);
    return json_pack("{s:b, s:f, s:f, s:b, s:I}", "ok", 1, "err", e, "seconds", secs, "cached",
                     cached, "job_id", (json_int_t)job_id);
}

/* Known fine-tunes of a model on datasets other than the train datasets: a replay model's
 * recorded pairs (other train_dataset_names than the task's), else finished fine-tunes in
 * finetune_results (best test accuracy per dataset). Nothing is submitted or paid. */
static json_t *call_history(strategy_host *h, const json_t *req)
{
    json_t *mid = json_object_get(req, "model_id");
    if (!json_is_integer(mid))
        return fail("history: model_id must be an integer");
    const json_t *model = find_model(h, json_integer_value(mid));
    if (!model)
        return fail("history: model %lld is not a candidate of this ranking",
                    (long long)json_integer_value(mid));
    h->history_calls++;
    json_t *hist = json_array();
    const char *runner = json_string_value(json_object_get(model, "runner"));
    char *err = NULL;
    if (runner && strcmp(runner, "replay") == 0) {
        const char *records, *ident, *task;
        const json_t *ds = replay_names(h, model, &records, &ident, &task, &err);
        replay_records *r = ds && records ? records_of(h, records, &err) : NULL;
        if (!r) {
            json_decref(hist);
            json_t *o = fail("history: %s", err ? err : "no records file");
            free(err);
            return o;
        }
        for (size_t i = 0; ident && i < r->npairs; i++) {
            const replay_pair *p = &r->pairs[i];
            if (strcmp(p->model, ident) != 0 || (task && strcmp(p->dataset, task) == 0))
                continue;
            json_array_append_new(hist, json_pack("{s:s, s:f, s:f, s:s}", "dataset", p->dataset,
                                                  "accuracy", p->test_accuracy, "seconds",
                                                  p->elapsed_seconds, "source", "replay"));
        }
    } else {
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(mid));
        json_t *train_ids = json_array();
        const json_t *train = json_object_get(h->datasets, "train");
        for (size_t i = 0; i < json_array_size(train); i++)
            json_array_append(train_ids, json_object_get(json_array_get(train, i), "id"));
        char *ids = json_dumps(train_ids, JSON_COMPACT);
        json_decref(train_ids);
        const char *p[2] = {id, ids};
        PGresult *res = PQexecParams(
            h->ctx->conn,
            "SELECT d.name, max(f.test_accuracy), sum(f.elapsed_seconds) FROM finetune_results f "
            "JOIN datasets d ON d.id = f.dataset_id WHERE f.model_id = $1::bigint "
            "AND f.test_accuracy IS NOT NULL "
            "AND f.dataset_id <> ALL (translate($2, '[]', '{}')::bigint[]) "
            "GROUP BY d.name ORDER BY d.name",
            2, NULL, p, NULL, NULL, 0);
        free(ids);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            char *m = pq_one_line(PQresultErrorMessage(res));
            PQclear(res);
            json_decref(hist);
            json_t *o = fail("history: %s", m);
            free(m);
            return o;
        }
        for (int i = 0; i < PQntuples(res); i++)
            json_array_append_new(hist, json_pack("{s:s, s:f, s:f, s:s}", "dataset",
                                                  PQgetvalue(res, i, 0), "accuracy",
                                                  atof(PQgetvalue(res, i, 1)), "seconds",
                                                  PQgetisnull(res, i, 2) ? 0.0
                                                                         : atof(PQgetvalue(res, i, 2)),
                                                  "source", "finetune"));
        PQclear(res);
    }
    return json_pack("{s:b, s:o}", "ok", 1, "history", hist);
}

json_t *strategy_host_call(void *arg, const json_t *request)
{
    strategy_host *h = arg;
    const char *call = json_string_value(json_object_get(request, "call"));
    if (!call)
        return fail("host API: a request needs \"call\" (finetune, proxy_score, history)");
    if (strcmp(call, "finetune") == 0)
        return call_finetune(h, request);
    if (strcmp(call, "proxy_score") == 0)
        return call_proxy(h, request);
    if (strcmp(call, "history") == 0)
        return call_history(h, request);
    return fail("host API: unknown call \"%s\" (finetune, proxy_score, history)", call);
}

static double sum_seconds(const json_t *list)
{
    double s = 0;
    for (size_t i = 0; i < json_array_size(list); i++)
        s += json_number_value(json_object_get(json_array_get(list, i), "seconds"));
    return s;
}

double strategy_host_paid_seconds(const strategy_host *h)
{
    return sum_seconds(h->finetuned) + sum_seconds(h->proxied);
}

void strategy_host_report(const strategy_host *h, json_t *result)
{
    json_object_set(result, "finetuned", h->finetuned);
    json_object_set(result, "proxied", h->proxied);
    json_object_set_new(result, "history_calls", json_integer(h->history_calls));
    json_object_set_new(result, "finetune_seconds", json_real(sum_seconds(h->finetuned)));
    json_object_set_new(result, "proxy_seconds", json_real(sum_seconds(h->proxied)));
}
