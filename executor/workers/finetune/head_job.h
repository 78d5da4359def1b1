/* The trainers of fine-tune jobs that read data and write weights (finetune_job.c
 * dispatches to them by the payload's "runner"): head (head_job.c) and exec (exec_ft.c).
 * Same contract as job_runner.run (jobs.h); the result also carries "model_name",
 * "model_spec", "dimension" and "num_params" of the model that store() registers. */
#ifndef RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_JOB_H
#define RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_JOB_H

#include "executor/workers/jobs.h"

int finetune_head_run(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                      bool *permanent);
/* "finetune/<2 hex>/<hash>.<ext>", relative to the data directory (caller frees): ext "ckpt"
 * for a head's checkpoint, "head" for its weights, "weights" for an exec model's. */
char *finetune_file_relpath(const char *hash, const char *ext);

/* A model registered by a head fine-tune embeds as its parent's features through the
 * head (docs/language.md "FINETUNE"): embed_job.c runs the parent's embed payload
 * (finetune_head_parent_payload: the parent, the dataset, the fit the head was trained
 * with), then finetune_head_features rewrites the job's feature file with the head's hidden
 * layer (mlp) or logits (linear) and updates result's "dim" and "bytes". */
bool finetune_is_head_model(const json_t *spec);
json_t *finetune_head_parent_payload(const json_t *spec, const json_t *dataset);
int finetune_head_features(job_ctx *ctx, const json_t *spec, json_t *result, char **err,
                           bool *permanent);

int finetune_exec_run(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                      bool *permanent);

#endif
