/* queue/: the job queue — rows of the jobs table (sql/002_jobs.sql) claimed with
 * FOR UPDATE SKIP LOCKED, leased, heart-beaten, reaped, de-duplicated by content hash.
 * The contract (payloads, states, what a failed dependency does) is docs/jobs.md.
 *
 * Every function takes a connection that is not inside a transaction (each call is its own
 * transaction, except queue_complete, which wraps the caller's store callback in the
 * transaction that marks the job done). Functions return -1 with *err (one line, caller
 * frees) on a database error.
 */
#ifndef RANKQL_QUEUE_QUEUE_H
#define RANKQL_QUEUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "common/hash.h"

#define QUEUE_KIND_MAX 16
#define QUEUE_DEFAULT_LEASE_SECONDS 30

typedef struct queue_job {
    int64_t id;
    char hash[HASH_HEX_LEN + 1];
    char kind[QUEUE_KIND_MAX];
    char status[QUEUE_KIND_MAX];   /* queued, running, done, failed, cancelled */
    json_t *payload;               /* owned */
    int attempts, max_attempts;
} queue_job;

void queue_job_clear(queue_job *job);

/* The identity of a job: json_hash({"kind": kind, "payload": payload}). */
void queue_job_hash(const char *kind, const json_t *payload, char hex[HASH_HEX_LEN + 1]);

/* Submits a job, or shares the existing row with the same hash (a failed or cancelled one is
 * reset to queued: attempts 0, error, result, lease and finished_at cleared, priority taken
 * from this call; a queued, running or done one is left as it is). deps are ids of jobs it
 * waits for (recorded in job_deps; an unknown id is an error). Returns 0 with *id and status
 * set: the row's status after the call, queued, running or done — or failed when one of deps
 * had already failed or been cancelled ("dependency N failed: …"). */
int queue_submit(PGconn *conn, const char *kind, const json_t *payload, const int64_t *deps,
                 size_t ndeps, int priority, int64_t *id, char status[QUEUE_KIND_MAX], char **err);

/* Claims the best claimable job of one of `kinds` (all kinds when nkinds == 0) for
 * worker_id with a lease of lease_seconds (<= 0: QUEUE_DEFAULT_LEASE_SECONDS): queued,
 * run_after passed, attempts < max_attempts, every dependency done; highest priority, then
 * lowest id; FOR UPDATE SKIP LOCKED, so concurrent claims never wait for or double a job.
 * Queued jobs with a failed or cancelled dependency are failed first (transitively).
 * Returns 1 and fills *job (attempts counts this claim; free with queue_job_clear), 0 when
 * none, -1. */
int queue_claim(PGconn *conn, const char *worker_id, const char *const *kinds, size_t nkinds,
                int lease_seconds, queue_job *job, char **err);

/* Renews the lease of job id and records progress (fraction clamped to [0,1]; note NULL keeps
 * the previous note), only while worker_id holds it and it is running. Returns 0 with
 * *still_ours = false when the job was cancelled, reaped or taken by another worker (stop
 * working), -1 on a database error (*still_ours unchanged: the lease may still be ours). */
int queue_heartbeat(PGconn *conn, int64_t id, const char *worker_id, int lease_seconds,
                    double fraction, const char *note, bool *still_ours, char **err);

/* Marks job done with result, in one transaction with store(conn, arg, err) (which writes the
 * cache rows; may be NULL), only while worker_id still holds the lease (the row is locked
 * first, so a concurrent cancel or reap waits, then finds it done). Returns 1 done, 0 lease
 * lost or cancelled (nothing written), -1 error (nothing written; store's error in *err).
 * Idle workers are notified of the queued dependents this completion unblocks. */
int queue_complete(PGconn *conn, const queue_job *job, const char *worker_id,
                   const json_t *result,
                   int (*store)(PGconn *conn, void *arg, char **err), void *arg, char **err);

/* Records a failure of a job worker_id holds. permanent, or no attempts left: failed with
 * message as its error; else re-queued (message kept in error) and not claimable for
 * 2^attempts seconds (at most 300). Queued jobs that depend on a failed job fail too,
 * transitively, in the same transaction ("dependency N failed: <message>"). Returns 1 when
 * recorded, 0 when worker_id no longer holds the job (nothing changed), -1. */
int queue_fail(PGconn *conn, const queue_job *job, const char *worker_id, const char *message,
               bool permanent, char **err);

/* Gives a running job back without counting the attempt (a worker that stops): queued again,
 * claimable at once, attempts - 1. Returns 1, 0 when worker_id no longer holds it, -1. */
int queue_release(PGconn *conn, const queue_job *job, const char *worker_id, char **err);

/* Re-queues running jobs whose lease expired, claimable at once (error: "lease of W
 * expired"); a job with no attempts left fails with "lease expired after N attempts" and its
 * queued dependents with it. Counts are optional. Returns 0 or -1. */
int queue_reap(PGconn *conn, int *requeued, int *failed, char **err);

/* Cancels a queued or running job and the queued jobs that depend on it. Returns 1 when
 * something was cancelled, 0 when the job was already final, -1 (unknown id: *err says so). */
int queue_cancel(PGconn *conn, int64_t id, char **err);

/* How many jobs of `kinds` (all when nkinds == 0) are queued or running — waiting for a
 * dependency or a back-off included. 0 means nothing is left for a worker of those kinds
 * (rankql-worker --once). Returns 0 or -1. */
int queue_pending(PGconn *conn, const char *const *kinds, size_t nkinds, int64_t *count,
                  char **err);

/* Claims job id itself for worker_id (a strategy that needs that job's answer now runs it in
 * its own worker slot instead of waiting for a free one: extensions/host). The rules of
 * queue_claim: queued, run_after passed, attempts left, every dependency done. Returns 1 with
 * *job filled, 0 when the job is not claimable (running elsewhere, done, failed, backing off,
 * waiting for a dependency), -1. */
int queue_claim_id(PGconn *conn, int64_t id, const char *worker_id, int lease_seconds,
                   queue_job *job, char **err);

/* The status of job id, and (each optional, caller frees) its result (NULL when none) and
 * error (NULL when none). -1 with *err also when the job does not exist. */
int queue_job_state(PGconn *conn, int64_t id, char status[QUEUE_KIND_MAX], json_t **result,
                    char **error, char **err);

#endif
