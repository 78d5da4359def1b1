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

int finetune_exec_run(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                      bool *permanent);

#endif
