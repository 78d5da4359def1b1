#include "executor/workers/jobs.h"

#include <stdarg.h>
#include <string.h>

#include "common/util.h"

static const job_runner *const runners[] = {&embed_job_runner, &proxy_job_runner,
                                            &strategy_job_runner, &finetune_job_runner,
                                            &similarity_job_runner, &check_job_runner};

const job_runner *job_runner_find(const char *kind)
{
    for (size_t i = 0; i < sizeof runners / sizeof runners[0]; i++)
        if (strcmp(runners[i]->kind, kind) == 0)
            return runners[i];
    return NULL;
}

int job_fail(char **err, bool *permanent, bool perm, const char *fmt, ...)
{
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    *err = strbuf_detach(&sb);
    if (permanent)
        *permanent = perm;
    return -1;
}
