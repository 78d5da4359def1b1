/* Strategy plugins: the registry of the builtin strategies and the plugins of an extensions
 * directory (C shared objects and process plugins), parameter validation, and running a
 * strategy with its answer checked (docs/extensions.md). rankqld loads the registry to know
 * the names and schemas (validation, SHOW EXTENSIONS) and never calls a plugin; workers run
 * them (executor/workers/strategy_job.c). */
#ifndef RANKQL_EXTENSIONS_H
#define RANKQL_EXTENSIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "extensions/rankql_extension.h"

typedef enum ext_kind { EXT_BUILTIN, EXT_SO, EXT_PROCESS } ext_kind;

enum { EXT_DEFAULT_TIMEOUT_SECONDS = 300 };

typedef struct ext_strategy {
    char *name;                  /* lower case */
    char *version;
    char *description;           /* "" when none */
    ext_kind kind;
    char *path;                  /* the .so or the manifest; NULL for builtins */
    rqx_param *params;           /* owned copy of the schema */
    size_t nparams;
    double timeout_seconds;
    unsigned abi_version;        /* of the descriptor (EXT_BUILTIN, EXT_SO); 0 = unknown */
    /* EXT_BUILTIN, EXT_SO; NULL for a described C plugin (ext_registry_describe) */
    const rankql_extension *ext;
    void *dl;                    /* dlopen handle (EXT_SO) */
    /* EXT_PROCESS */
    char **argv;                 /* NULL-terminated; argv[0] resolved against dir */
    char *dir;                   /* the working directory of the command */
} ext_strategy;

typedef struct ext_registry {
    size_t n;
    ext_strategy *items;
    char *dir;                   /* the scanned directory, NULL when none */
    size_t nwarnings;
    char **warnings;             /* plugins skipped, and why (one line each) */
} ext_registry;

/* The builtins plus the plugins of dir (NULL: builtins only). A plugin that cannot be
 * loaded (bad manifest, wrong ABI, duplicate name, …) is skipped with a warning. Returns
 * NULL with *err when dir cannot be read. */
ext_registry *ext_registry_load(const char *dir, char **err);

/* The same registry for a process that never runs plugins (rankqld): each C plugin is
 * dlopen'ed and described in a child process (10 s limit), so none of its code runs in the
 * caller; its strategy has ext = NULL and cannot be run from this registry. */
ext_registry *ext_registry_describe(const char *dir, char **err);
void ext_registry_free(ext_registry *r);

/* The extensions directory of rankqld and rankql-worker: flag (--extensions; NULL when not
 * given), else $RANKQL_EXTENSIONS, else DATA_DIR/extensions when it is a directory, else
 * none. "none" means none (builtins only). *dir = the directory (caller frees) or NULL.
 * -1 with *err when the named directory is not one. */
int ext_resolve_dir(const char *flag, const char *data_dir, char **dir, char **err);

/* By name, case-insensitively; NULL when unknown. */
const ext_strategy *ext_find(const ext_registry *r, const char *name);

/* The registry of this process (set once at start-up by rankqld / rankql-worker); when none
 * was set, a registry of the builtins. */
void ext_set_default(ext_registry *r);
const ext_registry *ext_default(void);

/* "builtin", "so", "process". */
const char *ext_kind_name(ext_kind k);

/* The canonical parameters: every parameter of the schema with its default, given values
 * checked (unknown parameter, wrong type, out of range, not one of the choices), floats as
 * reals. NULL with *err (one line, caller frees). */
json_t *ext_params_canonical(const ext_strategy *s, const json_t *given, char **err);

/* The schema as JSON: {"name": {"type", "default", "min"?, "max"?, "choices"?, "doc"?}}. */
json_t *ext_params_json(const ext_strategy *s);

/* Parses a schema written as JSON (the "parameters" of a process manifest, same shape as
 * ext_params_json); *out is an owned array. 0, or -1 with *err. */
int ext_params_parse(const json_t *schema, rqx_param **out, size_t *n, char **err);
void ext_params_free(rqx_param *p, size_t n);

/* Checks a strategy's answer against its models (array of objects with "id"): out is an
 * array of {"model_id": id, "err": e} or {"json_model": {"id": id, …}, "err": e}; every
 * model exactly once, errs finite. Returns [{"model_id", "err"}] in the answer's order, or
 * NULL with *err. */
json_t *ext_check_ranking(const json_t *models, const json_t *out, char **err);

/* Runs strategy s on a request {"params", "models", "datasets"} (the job payload's parts):
 * a builtin in this process; a C plugin and a process plugin in a child process (its own
 * process group, killed at the time limit or when should_stop says so). Returns the checked
 * ranking (ext_check_ranking), or NULL with *err and *permanent (a crash, a timeout, a bad
 * answer are permanent: running it again would do the same). */
/* The engine side of the host API (rankql_extension.h, rqx_host): answers one call, a JSON
 * object {"call": "finetune"|"proxy_score"|"history", …} (the process protocol's request
 * line, docs/extensions.md "Host API"), with a new JSON object {"ok": true, …} or {"ok":
 * false, "error": "…"}. Called on the thread that called ext_run: in-process for builtins,
 * relayed from the child process for C and process plugins. */
typedef struct ext_host_ops {
    json_t *(*call)(void *arg, const json_t *request);
    void *arg;
} ext_host_ops;

typedef struct ext_run_opts {
    double timeout_seconds;             /* 0 = the strategy's */
    bool (*should_stop)(void *arg);     /* may be NULL */
    void *stop_arg;
    /* NULL: no host API (calls answer "no host API here"). Time spent answering host calls
     * does not count against the strategy's time limit (the engine's jobs are not the
     * plugin's time). */
    const ext_host_ops *host;
    double host_seconds;                /* out: wall time spent in host calls */
} ext_run_opts;
json_t *ext_run(const ext_strategy *s, const json_t *params, const json_t *models,
                const json_t *datasets, ext_run_opts *opts, char **err, bool *permanent);

/* The ABI version a strategy speaks: a C descriptor's abi_version (1 or 2); 2 for process
 * plugins (they always get the host socket, docs/extensions.md). Version 1 C plugins get
 * req->host = NULL. */
unsigned ext_abi_of(const ext_strategy *s);

/* The builtin strategies (extensions/builtin.c, extensions/strategies.c), NULL-terminated. */
extern const rankql_extension *const ext_builtins[];
extern const rankql_extension ext_builtin_random;

#endif
