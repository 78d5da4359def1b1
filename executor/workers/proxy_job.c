/* Placeholder until the proxy runner lands: fails every job with a clear message. */
#include "executor/workers/jobs.h"

#include "common/util.h"

static int run_proxy(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                    bool *permanent)
{
    (void)ctx, (void)payload, (void)result;
    *permanent = true;
    *err = xstrdup("proxy jobs are not implemented in this build");
    return -1;
}

const job_runner proxy_job_runner = {"proxy", run_proxy, NULL};
