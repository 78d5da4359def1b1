/* The C ABI of rankql strategy plugins (docs/extensions.md), version 2 (version 1 plugins
 * keep working unchanged).
 *
 * A strategy ranks candidate models for a task: RANK … TRAINED ON "a" TESTED ON "b"
 * BY "name(k=v, …)". A C plugin is a shared object in the extensions directory that exports
 *
 *     const rankql_extension *rankql_extension_v2(void);   (or _v1 for a version 1 plugin)
 *
 * returning a descriptor that lives as long as the library is loaded. The host checks
 * abi_version, the name (unique among the builtins and the directory's plugins, and not a
 * proxy name) and the parameter schema, then calls rank() in a worker process (never in
 * rankqld), in a child process of its own, under a time limit: a crash or a hang fails the
 * strategy's job and nothing else.
 *
 * This header has no dependency beyond the C standard library; a plugin needs no rankql
 * library to build (cc -shared -fPIC -o x.so x.c). */
#ifndef RANKQL_EXTENSION_H
#define RANKQL_EXTENSION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RANKQL_EXTENSION_ABI_VERSION 2u
/* The symbols the loader looks up (dlsym), the newest first. A version 1 plugin exports
 * rankql_extension_v1 and a descriptor with abi_version 1; it never sees the host API. */
#define RANKQL_EXTENSION_ENTRY "rankql_extension_v2"
#define RANKQL_EXTENSION_ENTRY_V1 "rankql_extension_v1"

/* ---- parameters ------------------------------------------------------------------------ */

typedef enum rqx_type {
    RQX_INT = 1,      /* 64-bit integer; an integer literal */
    RQX_FLOAT = 2,    /* double; an integer or real literal */
    RQX_STRING = 3,   /* a string literal or a bare word (kernel=rbf) */
    RQX_BOOL = 4,     /* true / false */
} rqx_type;

/* flags of rqx_param */
#define RQX_HAS_MIN 1u   /* int/float: value >= min */
#define RQX_HAS_MAX 2u   /* int/float: value <= max */

/* One parameter of the schema. Every parameter has a default: a query names only those it
 * changes, and the host passes every parameter (canonical: defaults filled in). */
typedef struct rqx_param {
    const char *name;        /* [a-z0-9_]+, unique in the schema */
    rqx_type type;
    const char *doc;         /* one line, may be NULL */
    unsigned flags;          /* RQX_HAS_MIN | RQX_HAS_MAX */
    int64_t int_default, int_min, int_max;
    double float_default, float_min, float_max;
    const char *string_default;
    const char *const *string_choices; /* NULL-terminated list of allowed values; NULL = any */
    int bool_default;        /* 0 or 1 */
} rqx_param;

/* A parameter's value, in schema order; the member of its type is set. */
typedef struct rqx_value {
    const char *name;
    rqx_type type;
    int64_t i;
    double f;
    const char *s;
    int b;
} rqx_value;

/* ---- what rank() receives -------------------------------------------------------------- */

/* A candidate model. The strings live until rank() returns. */
typedef struct rqx_model {
    int64_t id;                /* the catalog id: what rank() answers with */
    const char *name;          /* "org/model" */
    const char *runner;        /* builtin, onnx, exec, replay, … */
    const char *modality;      /* image | text */
    const char *spec_json;     /* the model's spec object, JSON text */
    const char *catalog_json;  /* the model's catalog row (every column), JSON text */
} rqx_model;

/* A dataset of the task (TRAINED ON / TESTED ON), after its slice. */
typedef struct rqx_dataset {
    int64_t id;
    const char *name;
    int64_t size;              /* examples; -1 when unknown */
    int32_t num_classes;       /* 0 when unknown */
} rqx_dataset;

/* ---- the host API (version 2) ----------------------------------------------------------
 *
 * What a strategy may ask the engine while it ranks. Every call goes through the job queue:
 * the engine submits the job (de-duplicated by its payload, so an answer computed before —
 * by this strategy, another one, or a RANK query — is reused), runs it in the strategy's own
 * worker slot when nobody else is, or waits for the worker that is running it. The host
 * accounts what the strategy paid (the job result's seconds, cached or not) and reports it
 * with the ranking (docs/extensions.md "Host API").
 *
 * Calls return 0, or -1 with a one-line message in err (errlen bytes, NUL-terminated): an
 * unknown model or dataset, a job that failed (its error), a cancelled strategy. A plugin
 * may carry on after a failed call (rank without that model's answer) or give up. The
 * functions are safe to call from rank()'s thread only. */
typedef struct rqx_host rqx_host;
struct rqx_host {
    size_t struct_size;        /* sizeof (rqx_host) of the host: newer hosts append calls */
    void *ctx;                 /* the host's; pass the host itself to every call */
    /* Fine-tunes model model_id (a candidate) on dataset dataset_id (one of req->train),
     * with knobs (a JSON object text of knob name → value; NULL or "{}" = the trainer's
     * defaults). *accuracy: the fine-tuned model's test accuracy in [0, 1]; *seconds: what
     * the fine-tune cost (recorded or measured). */
    int (*finetune)(const rqx_host *host, int64_t model_id, int64_t dataset_id,
                    const char *knobs_json, double *accuracy, double *seconds, char *err,
                    size_t errlen);
    /* The proxy score of model_id on the request's task: proxy_json is a JSON object text
     * {"name": "nn", "params": {…}} (or just a name: "nn", "logme"). *err_value: lower is
     * better, as in RANK … BY that proxy; *seconds: its cost. On replay data a proxy score
     * is the recorded fine-tune (docs/runners.md "replay") and costs what it recorded. */
    int (*proxy_score)(const rqx_host *host, int64_t model_id, const char *proxy_json,
                       double *err_value, double *seconds, char *err, size_t errlen);
    /* What is known about fine-tuning model_id on datasets other than the request's train
     * datasets, without paying for anything: *json_out = a JSON array text
     * [{"dataset": "name", "accuracy": a, "seconds": s, "source": "replay"|"finetune"}],
     * to free with host->free. */
    int (*history)(const rqx_host *host, int64_t model_id, char **json_out, char *err,
                   size_t errlen);
    void (*free)(void *p);
};

typedef struct rqx_request {
    size_t struct_size;        /* sizeof (rqx_request) of the host: newer hosts append fields */
    const char *strategy;      /* the plugin's name, as registered */
    const rqx_value *params;   /* every parameter of the schema, in schema order */
    size_t nparams;
    const rqx_model *models;   /* the candidates, ordered by id */
    size_t nmodels;
    const rqx_dataset *train, *test;
    size_t ntrain, ntest;
    /* The same request as one JSON document (the process-plugin input, docs/extensions.md):
     * {"strategy", "version", "params", "models": [...], "datasets": {"train", "test"}}. */
    const char *request_json;
    /* The host API (version 2 plugins; NULL for version 1 plugins): a const rqx_host *. */
    const void *host;
} rqx_request;

/* One entry of the answer. */
typedef struct rqx_ranked {
    int64_t model_id;          /* one of the request's models */
    double err;                /* finite; lower is better, as for proxies */
} rqx_ranked;

/* Ranks the models, best first: writes exactly req->nmodels entries to out (capacity
 * req->nmodels), each model once, and returns req->nmodels; or returns -1 with a one-line
 * message in err (errlen bytes, NUL-terminated). The host validates the answer (every
 * model once, finite errs) and fails the job otherwise. rank() may use the process freely
 * (it runs in a child process that exits afterwards) but must not write to stdout. */
typedef int (*rqx_rank_fn)(const rqx_request *req, rqx_ranked *out, char *err, size_t errlen);

/* ---- the descriptor -------------------------------------------------------------------- */

typedef struct rankql_extension {
    uint32_t abi_version;      /* RANKQL_EXTENSION_ABI_VERSION */
    const char *name;          /* [A-Za-z0-9_.-]+, compared case-insensitively */
    const char *version;       /* free text, e.g. "1.0.2": part of the cache key */
    const char *description;   /* one line, may be NULL */
    const rqx_param *params;   /* the schema (nparams entries; may be NULL when 0) */
    size_t nparams;
    rqx_rank_fn rank;
    double timeout_seconds;    /* limit of one rank() call; 0 = the default (300 s) */
    /* RESERVED: must be NULL. */
    const void *host_api;
    void *reserved[4];         /* must be NULL */
} rankql_extension;

typedef const rankql_extension *(*rankql_extension_entry_fn)(void);

/* What a plugin defines (and exports): its descriptor (one of the two). */
const rankql_extension *rankql_extension_v2(void);
const rankql_extension *rankql_extension_v1(void);

#ifdef __cplusplus
}
#endif

#endif
