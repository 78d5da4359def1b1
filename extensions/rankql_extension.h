/* The C ABI of rankql strategy plugins (docs/extensions.md), version 1.
 *
 * A strategy ranks candidate models for a task: RANK … TRAINED ON "a" TESTED ON "b"
 * BY "name(k=v, …)". A C plugin is a shared object in the extensions directory that exports
 *
 *     const rankql_extension *rankql_extension_v1(void);
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

#define RANKQL_EXTENSION_ABI_VERSION 1u
/* The symbol the loader looks up (dlsym). */
#define RANKQL_EXTENSION_ENTRY "rankql_extension_v1"

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
    /* RESERVED: the host API (ask the engine for embeddings, proxy scores, fine-tunes)
     * comes in a later ABI version. NULL in version 1. */
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
    /* RESERVED for the host API of a later version: must be NULL in version 1. */
    const void *host_api;
    void *reserved[4];         /* must be NULL */
} rankql_extension;

typedef const rankql_extension *(*rankql_extension_entry_fn)(void);

/* What a plugin defines (and exports): its descriptor. */
const rankql_extension *rankql_extension_v1(void);

#ifdef __cplusplus
}
#endif

#endif
