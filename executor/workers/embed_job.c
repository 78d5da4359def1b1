/* Placeholder until the embed runner lands: fails every job with a clear message. */
#include "executor/workers/jobs.h"

#include "common/util.h"

static int run_embed(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                    bool *permanent)
{
    (void)ctx, (void)payload, (void)result;
    *permanent = true;
    *err = xstrdup("embed jobs are not implemented in this build");
    return -1;
}

const job_runner embed_job_runner = {"embed", run_embed, NULL};
