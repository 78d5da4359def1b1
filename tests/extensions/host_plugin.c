/* A version 2 C strategy plugin for the host API tests (tests/unit/test_strategies.c):
 * "hostc" fine-tunes every candidate through req->host and ranks by accuracy.
 * mode=badcall asks to fine-tune a model that is not a candidate (id -1) and fails with the
 * host's message; mode=crash fine-tunes one model, then dereferences NULL; mode=history
 * ranks by the number of datasets of each model's history (most first). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extensions/rankql_extension.h"

static int hostc_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    const rqx_host *h = req->host;
    const char *mode = req->params[0].s;
    if (!h) {
        snprintf(err, errlen, "hostc: no host API");
        return -1;
    }
    double acc, secs;
    if (strcmp(mode, "badcall") == 0) {
        char msg[256];
        if (h->finetune(h, -1, req->train[0].id, NULL, &acc, &secs, msg, sizeof msg) == 0) {
            snprintf(err, errlen, "hostc: fine-tuning model -1 succeeded");
            return -1;
        }
        snprintf(err, errlen, "hostc: host said: %s", msg);
        return -1;
    }
    for (size_t i = 0; i < req->nmodels; i++) {
        out[i].model_id = req->models[i].id;
        if (strcmp(mode, "history") == 0) {
            char *text = NULL;
            if (h->history(h, req->models[i].id, &text, err, errlen) != 0)
                return -1;
            int n = 0; /* entries: count the "dataset" keys */
            for (const char *p = text; (p = strstr(p, "\"dataset\"")); p++)
                n++;
            h->free(text);
            out[i].err = -n;
        } else {
            if (h->finetune(h, req->models[i].id, req->train[0].id, "{}", &acc, &secs, err,
                            errlen) != 0)
                return -1;
            out[i].err = 1 - acc;
        }
        if (strcmp(mode, "crash") == 0) {
            volatile int *p = NULL;
            *p = 1;
            raise(SIGSEGV);
        }
    }
    /* best first: insertion sort by err, then id */
    for (size_t i = 1; i < req->nmodels; i++)
        for (size_t j = i; j > 0 && (out[j].err < out[j - 1].err ||
                                     (out[j].err == out[j - 1].err &&
                                      out[j].model_id < out[j - 1].model_id));
             j--) {
            rqx_ranked t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return (int)req->nmodels;
}

static const char *const modes[] = {"ok", "badcall", "crash", "history", NULL};

static const rqx_param hostc_params[] = {
    {.name = "mode", .type = RQX_STRING, .doc = "what to do", .string_default = "ok",
     .string_choices = modes},
};

static const rankql_extension hostc = {
    .abi_version = 2,
    .name = "hostc",
    .version = "1",
    .description = "test plugin: fine-tunes every candidate through the host API",
    .params = hostc_params,
    .nparams = 1,
    .rank = hostc_rank,
    .timeout_seconds = 10,
};

const rankql_extension *rankql_extension_v2(void)
{
    return &hostc;
}
