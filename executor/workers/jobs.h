/* The job runners a worker dispatches to, one per job kind (docs/jobs.md): embed (model ×
 * dataset → feature file) and proxy (proxy × features → err). The worker loop (loop.c)
 * claims a job, calls run() with heartbeats going on, then queue_complete() with store() as
 * the callback that writes the cache rows in the completing transaction. */
#ifndef RANKQL_EXECUTOR_WORKERS_JOBS_H
#define RANKQL_EXECUTOR_WORKERS_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

typedef struct job_ctx {
    const char *data_dir;   /* feature files live under it (features/…) */
    int64_t job_id;
    const char *hash;       /* the job's hash: the key of the cache rows it writes */
    PGconn *conn;           /* for read-only lookups during run(); not in a transaction */
    /* Reports progress (fraction in [0,1], a short note); cheap, call it as often as useful. */
    void (*progress)(void *arg, double fraction, const char *note);
    void *progress_arg;
    /* True once the job was cancelled or its lease lost: return early (any error). */
    bool (*should_stop)(void *arg);
    void *stop_arg;
} job_ctx;

typedef struct job_runner {
    const char *kind;
    /* Does the work. Returns 0 with *result (a new object), or -1 with *err (one line, caller
     * frees) and *permanent = true when retrying cannot help (bad file, bad payload, missing
     * runtime). Leaves no partial files behind. */
    int (*run)(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
               bool *permanent);
    /* Writes the job's cache rows; conn is inside the completing transaction. 0 or -1. */
    int (*store)(PGconn *conn, const job_ctx *ctx, const json_t *payload, const json_t *result,
                 char **err);
} job_runner;

extern const job_runner embed_job_runner;  /* embed_job.c */
extern const job_runner proxy_job_runner;  /* proxy_job.c */
extern const job_runner strategy_job_runner; /* strategy_job.c: strategy plugins */
extern const job_runner check_job_runner;    /* check_job.c: registration checks */
extern const job_runner finetune_job_runner; /* finetune_job.c: head, exec, replay */
extern const job_runner similarity_job_runner; /* similarity_job.c: dataset embeddings */

/* For runners' error paths: *err = the formatted message, *permanent (when not NULL) =
 * perm; returns -1. */
int job_fail(char **err, bool *permanent, bool perm, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The runner of a kind, or NULL. */
const job_runner *job_runner_find(const char *kind);

#endif
