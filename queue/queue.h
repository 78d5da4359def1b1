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
 * reset to queued). deps are ids of jobs it waits for (recorded in job_deps). On success *id
 * and status (the row's status after the call: queued, running or done) are set. */
int queue_submit(PGconn *conn, const char *kind, const json_t *payload, const int64_t *deps,
                 size_t ndeps, int priority, int64_t *id, char status[QUEUE_KIND_MAX], char **err);

/* Claims the best claimable job of one of `kinds` (all kinds when nkinds == 0) for
 * worker_id with a lease of lease_seconds. Returns 1 and fills *job, 0 when none, -1. */
int queue_claim(PGconn *conn, const char *worker_id, const char *const *kinds, size_t nkinds,
                int lease_seconds, queue_job *job, char **err);

/* Renews the lease of job id and records progress (fraction in [0,1], note may be NULL).
 * *still_ours = false when the job was cancelled or its lease was taken (stop working). */
int queue_heartbeat(PGconn *conn, int64_t id, const char *worker_id, int lease_seconds,
                    double fraction, const char *note, bool *still_ours, char **err);

/* Marks job done with result, in one transaction with store(conn, arg, err) (which writes the
 * cache rows), only while worker_id still holds the lease. Returns 1 done, 0 lease lost or
 * cancelled (nothing written), -1 error (nothing written; store's error in *err). */
int queue_complete(PGconn *conn, const queue_job *job, const char *worker_id,
                   const json_t *result,
                   int (*store)(PGconn *conn, void *arg, char **err), void *arg, char **err);

/* Records a failure. permanent: failed at once; else re-queued with back-off while attempts
 * remain, failed after. Jobs that depend on a failed job fail too ("dependency N failed: …"). */
int queue_fail(PGconn *conn, const queue_job *job, const char *worker_id, const char *message,
               bool permanent, char **err);

/* Re-queues running jobs whose lease expired (failed after max_attempts). Counts are
 * optional. */
int queue_reap(PGconn *conn, int *requeued, int *failed, char **err);

/* Cancels a queued or running job and the queued jobs that depend on it. Returns 1 when
 * something was cancelled, 0 when the job was already final, -1 (unknown id: *err says so). */
int queue_cancel(PGconn *conn, int64_t id, char **err);

#endif
