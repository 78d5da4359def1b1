/* Exec fine-tunes (head_job.h): the model's command, `finetune` operation. */
#include "executor/workers/finetune/head_job.h"

int finetune_exec_run(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                      bool *permanent)
{
    (void)ctx;
    (void)payload;
    (void)result;
    return job_fail(err, permanent, true, "exec fine-tunes are not built yet");
}
