/* The engine side of the strategy host API (extensions/rankql_extension.h rqx_host,
 * docs/extensions.md "Host API"): answers a running strategy's finetune / proxy_score /
 * history calls through the job queue, on the strategy job's worker thread and connection.
 *
 * A call builds the job payload the rest of the engine builds for the same work — a proxy job
 * as RANK … BY "nn" submits it (on file data with its embed jobs, the same payloads as
 * executor/task.c's), a fine-tune as FINETUNE does (finetune_replay_payload on replay data,
 * finetune_head_jobs with its embed jobs on file data) — submits it (de-duplicated by hash:
 * an answer computed before is reused), and, when it is not done yet, claims that very job
 * (queue_claim_id) and runs it inline in this slot — dependencies first, embed jobs before
 * the proxy or fine-tune that reads them, so a strategy holding a worker slot never waits for
 * a free one — or, when another worker holds it, waits for that worker. The host keeps the
 * accounts: what was fine-tuned and proxied, and their recorded seconds (paid whether the
 * answer was cached or not: the cost of the strategy, not of this run; on file data a proxy
 * score or fine-tune also pays the embed jobs it needed, each embedding once). */
#ifndef RANKQL_EXECUTOR_WORKERS_STRATEGY_HOST_H
#define RANKQL_EXECUTOR_WORKERS_STRATEGY_HOST_H

#include <jansson.h>

#include "executor/workers/jobs.h"

typedef struct strategy_host strategy_host;

/* For the strategy job ctx with payload's models, datasets and data (borrowed; they outlive
 * the host). data is the payload's {"train": [...], "test": [...]} of dataset objects as embed
 * jobs name them (file data; NULL on replay data or a payload planned without it): proxy
 * scores and fine-tunes of models that embed here are built from it. */
strategy_host *strategy_host_new(job_ctx *ctx, const json_t *models, const json_t *datasets,
                                 const json_t *data);
void strategy_host_free(strategy_host *h);

/* ext_host_ops.call: one request object → a new answer object {"ok": true, …} or
 * {"ok": false, "error"}. */
json_t *strategy_host_call(void *h, const json_t *request);

/* The accounts, added to the strategy job's result: "finetuned" [{"model_id", "dataset_id",
 * "accuracy", "seconds", "cached", "job_id"}], "proxied" [{"model_id", "proxy", "err",
 * "seconds", "cached", "job_id"}], "history_calls", "finetune_seconds", "proxy_seconds"
 * (each model/proxy counted once). */
void strategy_host_report(const strategy_host *h, json_t *result);

/* The jobs of a proxy score on file data, in the order they run: one embed job per dataset
 * of data's train then test, then the proxy job reading them —
 *   [{"kind": "embed", "payload": {"model", "dataset", "fit"}, "hash"}, …,
 *    {"kind": "proxy", "payload": {"proxy", "model_id", "train", "test"}, "hash"}]
 * — the payloads RANK … BY the proxy submits (executor/task.c build_jobs; no CHANGE).
 * model is a strategy payload's model entry (id, name, runner, modality, spec, catalog);
 * data its "data"; canon a canonical proxy (proxy_job_canonical). A new array, or NULL with
 * *err (a runner without features here, no train dataset; caller frees). */
json_t *strategy_host_proxy_jobs(const json_t *model, const json_t *data, const json_t *canon,
                                 char **err);

/* finetune_seconds + proxy_seconds. */
double strategy_host_paid_seconds(const strategy_host *h);

#endif
