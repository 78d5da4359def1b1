/* The builtin search strategies on the host API (ABI version 2, docs/extensions.md
 * "Builtin strategies"): proxy, meta, finetune_all, hybrid and sh. Each is a ladder of
 * *tiers* evaluated on fewer and fewer candidates — a free signal (meta: recorded fine-tunes
 * on other datasets), a proxy score, a fine-tune — so one engine (ladder_rank) serves all:
 *
 *   proxy(name)          [name] on every candidate
 *   meta()               [meta] on every candidate
 *   finetune_all()       [finetune] on every candidate
 *   hybrid(proxy, k)     [proxy, finetune]: fine-tune the top k of the signal
 *   sh(tiers, eta, k)    successive halving over the tiers: each keeps ⌈n/eta⌉ (at least k)
 *
 * The answer ranks by the tier a model reached (the last first), then by its score there
 * (lower first, ties by id). err is that score: 1 − accuracy for a fine-tune, 1 − the mean
 * recorded accuracy for meta, the proxy's err; 1e6 when the model got no answer there (no
 * history, a failed call), which ranks it last of its tier. The host accounts the cost
 * (the strategy job's result: finetuned, cost_seconds). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "extensions/extensions.h"

enum { MAX_TIERS = 8 };

/* The err of a model that got no answer in the last tier it reached (no history, a failed
 * call): finite, as the ABI requires, and above any real score. */
#define NO_ANSWER 1e6

/* ---- parameters -------------------------------------------------------------------------- */

static const rqx_value *param(const rqx_request *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return &req->params[i];
    return NULL;
}

static const char *param_s(const rqx_request *req, const char *name, const char *dflt)
{
    const rqx_value *v = param(req, name);
    return v && v->type == RQX_STRING && v->s ? v->s : dflt;
}

static int64_t param_i(const rqx_request *req, const char *name, int64_t dflt)
{
    const rqx_value *v = param(req, name);
    return v && v->type == RQX_INT ? v->i : dflt;
}

/* ---- one tier ----------------------------------------------------------------------------- */

typedef struct cand {
    int64_t id;
    size_t index;      /* in req->models */
    double score;      /* of the last tier it was evaluated in; lower is better; INFINITY =
                          no answer (no history, a failed call) */
    double accuracy;   /* fine-tune tiers */
    int tier;          /* the last tier it reached */
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score < y->score)
        return -1;
    if (x->score > y->score)
        return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool known_tier(const char *t)
{
    static const char *const names[] = {"meta", "finetune", "nn", "cosine_nn", "linear",
                                        "logme", "hscore", "leep", NULL};
    for (size_t i = 0; names[i]; i++)
        if (strcmp(t, names[i]) == 0)
            return true;
    return false;
}

/* Mean of the accuracies of a history array text; false when it has none. */
static bool history_mean(const char *text, double *mean)
{
    json_error_t je;
    json_t *h = json_loads(text, 0, &je);
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(h); i++) {
        json_t *a = json_object_get(json_array_get(h, i), "accuracy");
        if (json_is_number(a)) {
            sum += json_number_value(a);
            n++;
        }
    }
    json_decref(h);
    if (n)
        *mean = sum / (double)n;
    return n > 0;
}

/* Scores the first n candidates with tier t. Calls that fail leave INFINITY (the model
 * ranks last in this tier); when every call of the tier fails the strategy fails with the
 * first message — nothing could be ranked. */
static int eval_tier(const rqx_request *req, const char *tier, const char *knobs, cand *c,
                     size_t n, char *err, size_t errlen)
{
    const rqx_host *h = req->host;
    if (!h) {
        snprintf(err, errlen, "%s needs the engine's host API (it runs in a worker)", tier);
        return -1;
    }
    bool finetune = strcmp(tier, "finetune") == 0, meta = strcmp(tier, "meta") == 0;
    if (finetune && req->ntrain != 1) {
        snprintf(err, errlen, "a fine-tune tier needs exactly one TRAINED ON dataset, not %zu",
                 req->ntrain);
        return -1;
    }
    char first[512] = "";
    size_t answered = 0;
    for (size_t i = 0; i < n; i++) {
        char msg[512] = "";
        double v = INFINITY, secs = 0;
        c[i].score = INFINITY;
        if (finetune) {
            double acc;
            if (h->finetune(h, c[i].id, req->train[0].id, knobs, &acc, &secs, msg, sizeof msg) == 0) {
                c[i].accuracy = acc;
                v = 1.0 - acc;
            }
        } else if (meta) {
            char *text = NULL;
            double mean;
            if (h->history(h, c[i].id, &text, msg, sizeof msg) == 0) {
                answered++; /* no history is an answer: "nothing known" */
                if (history_mean(text, &mean))
                    v = 1.0 - mean;
            }
            h->free(text);
        } else {
            double e;
            if (h->proxy_score(h, c[i].id, tier, &e, &secs, msg, sizeof msg) == 0 && isfinite(e))
                v = e;
        }
        if (!meta && isfinite(v))
            answered++;
        if (!meta && !isfinite(v) && !*first)
            snprintf(first, sizeof first, "model %lld: %s", (long long)c[i].id,
                     *msg ? msg : "no finite answer");
        if (meta && *msg && !*first)
            snprintf(first, sizeof first, "model %lld: %s", (long long)c[i].id, msg);
        c[i].score = v;
    }
    if (n > 0 && answered == 0) {
        snprintf(err, errlen, "%s: no candidate could be evaluated (%s)", tier, first);
        return -1;
    }
    return 0;
}

/* Splits "a,b,c" into tiers (checked). */
static int parse_tiers(const char *text, char tiers[MAX_TIERS][32], size_t *n, char *err,
                       size_t errlen)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",");
        while (len && *p == ' ')
            p++, len--;
        size_t l = len;
        while (l && p[l - 1] == ' ')
            l--;
        if (l == 0 || l >= 32 || *n == MAX_TIERS) {
            snprintf(err, errlen, "tiers: expected 1 to %d comma-separated names, got \"%s\"",
                     MAX_TIERS, text);
            return -1;
        }
        memcpy(tiers[*n], p, l);
        tiers[*n][l] = '\0';
        if (!known_tier(tiers[*n])) {
            snprintf(err, errlen,
                     "tiers: unknown tier \"%s\" (meta, finetune, nn, cosine_nn, linear, logme, "
                     "hscore, leep)",
                     tiers[*n]);
            return -1;
        }
        (*n)++;
        p += len;
        if (*p == ',')
            p++;
    }
    if (*n == 0) {
        snprintf(err, errlen, "tiers: give at least one tier");
        return -1;
    }
    return 0;
}

/* The ladder: tier t evaluates the survivors of tier t-1; keep[t] of them go on. */
static int ladder_rank(const rqx_request *req, char tiers[MAX_TIERS][32], size_t ntiers,
                       const size_t *keep, const char *knobs, rqx_ranked *out, char *err,
                       size_t errlen)
{
    size_t n = req->nmodels;
    cand *c = calloc(n + 1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        c[i] = (cand){req->models[i].id, i, INFINITY, 0, 0};
    size_t alive = n;
    for (size_t t = 0; t < ntiers && alive > 0; t++) {
        if (eval_tier(req, tiers[t], knobs, c, alive, err, errlen) != 0) {
            free(c);
            return -1;
        }
        for (size_t i = 0; i < alive; i++)
            c[i].tier = (int)t;
        qsort(c, alive, sizeof *c, cand_cmp);
        if (t + 1 < ntiers)
            alive = keep[t] < alive ? keep[t] : alive;
    }
    /* c is in answer order: each tier's sort kept the dropped ones behind the survivors,
     * latest tier first. err = the score where the model stopped; no answer: NO_ANSWER. */
    for (size_t i = 0; i < n; i++)
        out[i] = (rqx_ranked){c[i].id, isfinite(c[i].score) ? c[i].score : NO_ANSWER};
    free(c);
    return (int)n;
}

/* ---- the strategies ----------------------------------------------------------------------- */

static int proxy_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    char tiers[MAX_TIERS][32];
    snprintf(tiers[0], sizeof tiers[0], "%s", param_s(req, "name", "nn"));
    return ladder_rank(req, tiers, 1, NULL, NULL, out, err, errlen);
}

static int meta_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    char tiers[MAX_TIERS][32] = {"meta"};
    return ladder_rank(req, tiers, 1, NULL, NULL, out, err, errlen);
}

static int finetune_all_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    char tiers[MAX_TIERS][32] = {"finetune"};
    return ladder_rank(req, tiers, 1, NULL, param_s(req, "knobs", "{}"), out, err, errlen);
}

static int hybrid_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    char tiers[MAX_TIERS][32];
    snprintf(tiers[0], sizeof tiers[0], "%s", param_s(req, "proxy", "meta"));
    snprintf(tiers[1], sizeof tiers[1], "finetune");
    size_t keep[1] = {(size_t)param_i(req, "k", 5)};
    return ladder_rank(req, tiers, 2, keep, param_s(req, "knobs", "{}"), out, err, errlen);
}

static int sh_rank(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen)
{
    char tiers[MAX_TIERS][32];
    size_t ntiers;
    if (parse_tiers(param_s(req, "tiers", "meta,finetune"), tiers, &ntiers, err, errlen) != 0)
        return -1;
    size_t eta = (size_t)param_i(req, "eta", 16), kmin = (size_t)param_i(req, "k", 1);
    size_t keep[MAX_TIERS], alive = req->nmodels;
    for (size_t t = 0; t + 1 < ntiers; t++) {
        size_t next = (alive + eta - 1) / eta;
        if (next < kmin)
            next = kmin;
        keep[t] = next < alive ? next : alive;
        alive = keep[t];
    }
    return ladder_rank(req, tiers, ntiers, keep, param_s(req, "knobs", "{}"), out, err, errlen);
}

/* ---- descriptors -------------------------------------------------------------------------- */

static const char *const proxy_choices[] = {"nn", "cosine_nn", "linear", "logme", "hscore",
                                            "leep", NULL};
static const char *const signal_choices[] = {"meta", "nn", "cosine_nn", "linear", "logme",
                                             "hscore", "leep", NULL};

#define KNOBS_PARAM                                                                          \
    {.name = "knobs", .type = RQX_STRING,                                                    \
     .doc = "the fine-tunes' knobs, a JSON object text ({} = the trainer's defaults)",       \
     .string_default = "{}"}

static const rqx_param proxy_params[] = {
    {.name = "name", .type = RQX_STRING, .doc = "the proxy every candidate is scored with",
     .string_default = "nn", .string_choices = proxy_choices},
};

static const rqx_param finetune_all_params[] = {KNOBS_PARAM};

static const rqx_param hybrid_params[] = {
    {.name = "k", .type = RQX_INT, .doc = "how many of the signal's best are fine-tuned",
     .flags = RQX_HAS_MIN | RQX_HAS_MAX, .int_default = 5, .int_min = 1, .int_max = 100000},
    KNOBS_PARAM,
    {.name = "proxy", .type = RQX_STRING,
     .doc = "the cheap signal: meta (recorded fine-tunes on other datasets) or a proxy",
     .string_default = "meta", .string_choices = signal_choices},
};

static const rqx_param sh_params[] = {
    {.name = "eta", .type = RQX_INT, .doc = "each tier keeps 1/eta of the candidates",
     .flags = RQX_HAS_MIN | RQX_HAS_MAX, .int_default = 16, .int_min = 2, .int_max = 1000000},
    {.name = "k", .type = RQX_INT, .doc = "each tier keeps at least k",
     .flags = RQX_HAS_MIN | RQX_HAS_MAX, .int_default = 1, .int_min = 1, .int_max = 100000},
    KNOBS_PARAM,
    {.name = "tiers", .type = RQX_STRING,
     .doc = "comma-separated, cheapest first: meta, nn, cosine_nn, linear, logme, hscore, "
            "leep, finetune",
     .string_default = "meta,finetune"},
};

static const rankql_extension ext_builtin_proxy = {
    .abi_version = 2,
    .name = "proxy",
    .version = "1",
    .description = "every candidate scored by one proxy through the engine (cached proxy jobs)",
    .params = proxy_params,
    .nparams = 1,
    .rank = proxy_rank,
};

static const rankql_extension ext_builtin_meta = {
    .abi_version = 2,
    .name = "meta",
    .version = "1",
    .description = "mean recorded fine-tune accuracy on other datasets (nothing is paid); "
                   "models without history last",
    .rank = meta_rank,
};

static const rankql_extension ext_builtin_finetune_all = {
    .abi_version = 2,
    .name = "finetune_all",
    .version = "1",
    .description = "fine-tune every candidate on the train dataset, rank by test accuracy",
    .params = finetune_all_params,
    .nparams = 1,
    .rank = finetune_all_rank,
};

static const rankql_extension ext_builtin_hybrid = {
    .abi_version = 2,
    .name = "hybrid",
    .version = "1",
    .description = "rank by a cheap signal, fine-tune its top k; fine-tuned first by accuracy",
    .params = hybrid_params,
    .nparams = 3,
    .rank = hybrid_rank,
};

static const rankql_extension ext_builtin_sh = {
    .abi_version = 2,
    .name = "sh",
    .version = "1",
    .description = "successive halving over tiers of growing cost (signal, proxies, fine-tune)",
    .params = sh_params,
    .nparams = 4,
    .rank = sh_rank,
};

const rankql_extension *const ext_builtins[] = {
    &ext_builtin_random, &ext_builtin_proxy,  &ext_builtin_meta, &ext_builtin_finetune_all,
    &ext_builtin_hybrid, &ext_builtin_sh,     NULL,
};
