#include "executor/workers/jobs.h"

#include <string.h>

static const job_runner *const runners[] = {&embed_job_runner, &proxy_job_runner};

const job_runner *job_runner_find(const char *kind)
{
    for (size_t i = 0; i < sizeof runners / sizeof runners[0]; i++)
        if (strcmp(runners[i]->kind, kind) == 0)
            return runners[i];
    return NULL;
}
