/* The worker loop: what rankql-worker (and tests) run. N slots, each a thread with its own
 * PostgreSQL connection, claim jobs (queue/queue.h), run them with the job runner of their
 * kind (executor/workers/jobs.h) and complete or fail them; one housekeeping thread with its
 * own connection renews the leases of the running jobs every lease/3 seconds, publishes their
 * progress, tells a slot to stop when its job was cancelled or its lease lost, and reaps
 * expired leases (any worker's) on the same tick.
 *
 *   atomic_int stop = 0;     // a SIGTERM handler sets it
 *   worker_opts o = {.conninfo = url, .data_dir = dir, .slots = 4, .stop = &stop};
 *   int rc = worker_run(&o);
 *
 * Idle slots LISTEN rankql_jobs_queued and wait on the connection's socket, waking for a
 * notification or every idle_poll_ms (back-off expiries send none). A connection that
 * breaks (PostgreSQL restarted) is re-established with PQreset, backing off from 0.5 s to
 * 10 s; a job whose completion failed because the connection broke is completed again on the
 * new connection (the lease is still ours if the restart was shorter than the lease).
 *
 * Stopping (*stop set, e.g. SIGTERM): idle slots return at once; running jobs see
 * should_stop() and are expected to return early; a job whose run() then fails is given back
 * with queue_release (queued again, attempt not counted), one whose run() succeeded anyway is
 * completed. A job whose run() ignores should_stop delays the stop until it returns; a process
 * killed outright (kill -9) leaves its jobs to lease expiry, after which the reaper of any
 * worker re-queues them.
 *
 * Log: one line when a job is claimed and one when it ends (done / failed / given back /
 * discarded, with seconds), plus connection trouble and reaped jobs. */
#ifndef RANKQL_EXECUTOR_WORKERS_LOOP_H
#define RANKQL_EXECUTOR_WORKERS_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "executor/workers/jobs.h"

/* What a run did (filled when worker_run returns). */
typedef struct worker_stats {
    long claimed;   /* jobs claimed */
    long done;      /* completed (result stored) */
    long failed;    /* queue_fail'ed: failed for good or re-queued with back-off */
    long released;  /* given back because the worker stopped */
    long discarded; /* finished but the lease was lost or the job cancelled meanwhile */
    long reaped;    /* expired leases (any worker's) re-queued or failed by this worker */
} worker_stats;

typedef struct worker_opts {
    const char *conninfo;  /* libpq conninfo or postgres:// URL (required) */
    const char *data_dir;  /* job_ctx.data_dir: where feature files live (required) */
    int slots;             /* jobs at once; <= 0: online CPUs */
    int lease_seconds;     /* <= 0: QUEUE_DEFAULT_LEASE_SECONDS */
    /* Kinds to claim; nkinds == 0: every kind that has a runner. A kind without a runner is
     * an error. */
    const char *const *kinds;
    size_t nkinds;
    /* Runner table; NULL: job_runner_find (the built-in embed and proxy runners). */
    const job_runner *const *runners;
    size_t nrunners;
    /* Worker id prefix; NULL: "host:pid". Slot i leases as "<prefix>:<i>". */
    const char *worker_id;
    /* Return once no job of our kinds is queued or running (queue_pending == 0), checked
     * whenever a claim finds nothing (rankql-worker --once, tests). */
    bool exit_when_idle;
    /* Non-zero: stop (see above). May be set from a signal handler. NULL: never. */
    atomic_int *stop;
    int idle_poll_ms;      /* how long an idle slot waits for a notification; <= 0: 5000 */
    /* One log line without newline; NULL: stderr, "rankql-worker: " prefixed. */
    void (*log)(const char *line);
    worker_stats *stats;   /* optional: what the run did */
} worker_opts;

/* Every job kind of sql/002_jobs.sql, NULL-terminated (for checking --kinds). */
extern const char *const worker_known_kinds[];

/* Runs until *stop is set (or idle, with exit_when_idle). Returns 0, or 1 when it could not
 * start (bad options, a kind without runner, the database unreachable at start-up: logged). */
int worker_run(const worker_opts *opts);

#endif
