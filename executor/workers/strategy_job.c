/* Strategy jobs (kind 'strategy', docs/extensions.md): one strategy plugin ranks a set of
 * candidate models for a task. The payload carries everything (docs/jobs.md style):
 *
 *   {"strategy": {"name", "version", "params"}, "models": [{"id", "name", "runner",
 *    "modality", "spec", "catalog"}…] (by id), "datasets": {"train": [...], "test": [...]}}
 *
 * The worker finds the strategy in its registry (rankql-worker --extensions), checks the
 * version and the parameters, runs it (C and process plugins in a child process with a time
 * limit) and stores the checked ranking in strategy_results (hash = the job's hash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "common/util.h"
#include "executor/workers/jobs.h"
#include "executor/workers/strategy_host.h"
#include "extensions/extensions.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool stop_cb(void *arg)
{
    job_ctx *ctx = arg;
    return ctx->should_stop && ctx->should_stop(ctx->stop_arg);
}

static int run_strategy(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                        bool *permanent)
{
    const json_t *st = json_object_get(payload, "strategy");
    const char *name = json_string_value(json_object_get(st, "name"));
    const char *version = json_string_value(json_object_get(st, "version"));
    const json_t *params = json_object_get(st, "params");
    const json_t *models = json_object_get(payload, "models");
    const json_t *datasets = json_object_get(payload, "datasets");
    if (!name || !version || !json_is_object(params) || !json_is_array(models) ||
        json_array_size(models) == 0 || !json_is_object(datasets))
        return job_fail(err, permanent, true,
                        "bad strategy payload: needs strategy {name, version, params}, a "
                        "non-empty models array and datasets {train, test}");
    const ext_registry *reg = ext_default();
    const ext_strategy *s = ext_find(reg, name);
    if (!s)
        return job_fail(err, permanent, true,
                        "strategy %s is not installed on this worker (extensions directory: "
                        "%s)",
                        name, reg && reg->dir ? reg->dir : "none");
    if (strcmp(s->version, version) != 0)
        return job_fail(err, permanent, true,
                        "strategy %s: this worker has version %s, the job asks for %s", name,
                        s->version, version);
    char *perr = NULL;
    json_t *canon = ext_params_canonical(s, params, &perr);
    if (!canon) {
        int rc = job_fail(err, permanent, true, "%s", perr);
        free(perr);
        return rc;
    }
    if (ctx->progress) {
        char note[160];
        snprintf(note, sizeof note, "strategy %s (%s) on %zu models", s->name,
                 ext_kind_name(s->kind), json_array_size(models));
        ctx->progress(ctx->progress_arg, 0, note);
    }
    /* The host API: the strategy's fine-tunes and proxy scores go through the queue, run
     * inline in this slot when nobody else runs them (strategy_host.h). */
    strategy_host *host = ctx->conn ? strategy_host_new(ctx, models, datasets,
                                                         json_object_get(payload, "data"))
                                     : NULL;
    ext_host_ops ops = {strategy_host_call, host};
    ext_run_opts opts = {.should_stop = stop_cb, .stop_arg = ctx, .host = host ? &ops : NULL};
    double t0 = now_s();
    json_t *ranking = ext_run(s, canon, models, datasets, &opts, err, permanent);
    double secs = now_s() - t0;
    if (!ranking) {
        strategy_host_free(host);
        json_decref(canon);
        return -1;
    }
    /* Cost: what the strategy paid for (recorded fine-tune and proxy seconds, cached or
     * not) plus its own search time (the run less the time spent answering host calls). */
    double search = secs - opts.host_seconds;
    if (search < 0)
        search = 0;
    double paid = host ? strategy_host_paid_seconds(host) : 0;
    *result = json_pack("{s:o, s:s, s:s, s:o, s:s, s:f, s:f, s:f, s:f}", "ranking", ranking,
                        "strategy", s->name, "version", s->version, "params", canon, "kind",
                        ext_kind_name(s->kind), "seconds", secs, "search_seconds", search,
                        "host_seconds", opts.host_seconds, "cost_seconds", paid + search);
    if (host)
        strategy_host_report(host, *result);
    else
        json_object_set_new(*result, "finetuned", json_array());
    strategy_host_free(host);
    return 0;
}

static int store_strategy(PGconn *conn, const job_ctx *ctx, const json_t *payload,
                          const json_t *result, char **err)
{
    const json_t *st = json_object_get(payload, "strategy");
    const json_t *models = json_object_get(payload, "models");
    const json_t *datasets = json_object_get(payload, "datasets");
    strbuf ids = {0};
    strbuf_putc(&ids, '{');
    for (size_t i = 0; i < json_array_size(models); i++)
        strbuf_printf(&ids, "%s%lld", i ? "," : "",
                      (long long)json_integer_value(json_object_get(json_array_get(models, i), "id")));
    strbuf_putc(&ids, '}');
    char train_key[HASH_HEX_LEN + 1], test_key[HASH_HEX_LEN + 1];
    json_t *train = json_object_get(datasets, "train"), *test = json_object_get(datasets, "test");
    json_t *empty = json_array();
    json_hash(train ? train : empty, train_key);
    json_hash(test ? test : empty, test_key);
    json_decref(empty);
    char *params = json_dumps(json_object_get(st, "params"), JSON_COMPACT | JSON_SORT_KEYS);
    char *ranking = json_dumps(json_object_get(result, "ranking"), JSON_COMPACT);
    char secs[64], job[32];
    snprintf(secs, sizeof secs, "%.17g", json_number_value(json_object_get(result, "seconds")));
    snprintf(job, sizeof job, "%lld", (long long)ctx->job_id);
    const char *values[10] = {ctx->hash,
                              json_string_value(json_object_get(st, "name")),
                              json_string_value(json_object_get(st, "version")),
                              params,
                              ids.data,
                              train_key,
                              test_key,
                              ranking,
                              secs,
                              ctx->job_id > 0 ? job : NULL};
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO strategy_results (hash, strategy, version, params, model_ids, train_key, "
        "test_key, ranking, elapsed_seconds, job_id) "
        "VALUES ($1, $2, $3, $4::jsonb, $5::bigint[], $6, $7, $8::jsonb, $9::float8, "
        "$10::bigint) ON CONFLICT (hash) DO NOTHING",
        10, NULL, values, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *m = PQresultErrorMessage(res);
        *err = xasprintf("storing the strategy result: %.*s", (int)strcspn(m, "\n"), m);
        rc = -1;
    }
    PQclear(res);
    free(params);
    free(ranking);
    strbuf_free(&ids);
    return rc;
}

const job_runner strategy_job_runner = {"strategy", run_strategy, store_strategy};
