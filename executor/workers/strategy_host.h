/* The engine side of the strategy host API (extensions/rankql_extension.h rqx_host,
 * docs/extensions.md "Host API"): answers a running strategy's finetune / proxy_score /
 * history calls through the job queue, on the strategy job's worker thread and connection.
 *
 * A call builds the job payload the rest of the engine builds for the same work (a replay
 * proxy job as RANK … BY "nn" submits it; a fine-tune with finetune_replay_payload, as
 * FINETUNE does), submits it (de-duplicated by hash: an answer computed before is reused),
 * and, when it is not done yet, claims that very job (queue_claim_id) and runs it inline in
 * this slot — a strategy holding a worker slot never waits for a free one — or, when another
 * worker holds it, waits for that worker. The host keeps the accounts: what was fine-tuned
 * and proxied, and their recorded seconds (paid whether the answer was cached or not: the
 * cost of the strategy, not of this run). */
#ifndef RANKQL_EXECUTOR_WORKERS_STRATEGY_HOST_H
#define RANKQL_EXECUTOR_WORKERS_STRATEGY_HOST_H

#include <jansson.h>

#include "executor/workers/jobs.h"

typedef struct strategy_host strategy_host;

/* For the strategy job ctx with payload's models and datasets (borrowed; they outlive the
 * host). */
strategy_host *strategy_host_new(job_ctx *ctx, const json_t *models, const json_t *datasets);
void strategy_host_free(strategy_host *h);

/* ext_host_ops.call: one request object → a new answer object {"ok": true, …} or
 * {"ok": false, "error"}. */
json_t *strategy_host_call(void *h, const json_t *request);

/* The accounts, added to the strategy job's result: "finetuned" [{"model_id", "dataset_id",
 * "accuracy", "seconds", "cached", "job_id"}], "proxied" [{"model_id", "proxy", "err",
 * "seconds", "cached", "job_id"}], "history_calls", "finetune_seconds", "proxy_seconds"
 * (each model/proxy counted once). */
void strategy_host_report(const strategy_host *h, json_t *result);

/* finetune_seconds + proxy_seconds. */
double strategy_host_paid_seconds(const strategy_host *h);

#endif
