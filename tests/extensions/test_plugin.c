/* A C strategy plugin for the tests (docs/extensions.md): "testc" ranks the candidates by
 * id (ascending, or descending with reverse=true), err = bias + position. mode=crash
 * dereferences NULL, mode=hang never returns (timeout_seconds 3), mode=fail returns an
 * error, mode=dup answers one model twice, mode=nan answers a NaN err. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "extensions/rankql_extension.h"

static int testc_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    const char *mode = "ok";
    int reverse = 0;
    double bias = 0;
    for (size_t i = 0; i < req->nparams; i++) {
        if (strcmp(req->params[i].name, "mode") == 0)
            mode = req->params[i].s;
        else if (strcmp(req->params[i].name, "reverse") == 0)
            reverse = req->params[i].b;
        else if (strcmp(req->params[i].name, "bias") == 0)
            bias = req->params[i].f;
    }
    if (strcmp(mode, "crash") == 0) {
        volatile int *p = NULL;
        *p = 1;
        raise(SIGSEGV);
    }
    if (strcmp(mode, "hang") == 0)
        for (;;)
            pause();
    if (strcmp(mode, "fail") == 0) {
        snprintf(err, errlen, "testc refuses: mode=fail (%zu models, %zu train datasets)",
                 req->nmodels, req->ntrain);
        return -1;
    }
    size_t n = req->nmodels;
    for (size_t i = 0; i < n; i++) {
        const rqx_model *m = &req->models[reverse ? n - 1 - i : i];
        out[i].model_id = m->id;
        out[i].err = bias + (double)i;
    }
    if (strcmp(mode, "dup") == 0 && n > 1)
        out[1].model_id = out[0].model_id;
    if (strcmp(mode, "nan") == 0 && n > 0)
        out[0].err = NAN;
    return (int)n;
}

static const char *const modes[] = {"ok", "crash", "hang", "fail", "dup", "nan", NULL};

static const rqx_param testc_params[] = {
    {.name = "mode", .type = RQX_STRING, .doc = "what to do", .string_default = "ok",
     .string_choices = modes},
    {.name = "reverse", .type = RQX_BOOL, .doc = "highest id first", .bool_default = 0},
    {.name = "bias", .type = RQX_FLOAT, .doc = "added to every err", .flags = RQX_HAS_MIN | RQX_HAS_MAX,
     .float_default = 0, .float_min = -10, .float_max = 10},
};

static const rankql_extension testc = {
    .abi_version = RANKQL_EXTENSION_ABI_VERSION,
    .name = "testc",
    .version = "0.1",
    .description = "test plugin: models by id",
    .params = testc_params,
    .nparams = sizeof testc_params / sizeof testc_params[0],
    .rank = testc_rank,
    .timeout_seconds = 3,
};

const rankql_extension *rankql_extension_v1(void)
{
    return &testc;
}
