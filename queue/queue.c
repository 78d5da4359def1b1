/* queue/: the job queue on the jobs and job_deps tables (sql/002_jobs.sql, docs/jobs.md).
 *
 * Every statement is parameterised. Statements that change several rows (a failure and the
 * dependents it fails, a cancel and its dependents, a completion and the caller's cache rows)
 * run in one transaction, so another worker sees all of it or none. */
#include "queue/queue.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "db/pqutil.h"

/* Back-off between attempts of a job that failed with a retryable error: 2^attempts
 * seconds, at most this. */
#define QUEUE_BACKOFF_MAX_SECONDS 300
/* Dependency chains longer than this are not followed (the DAGs rankql builds are 2 or 3
 * deep; the bound only keeps a cycle made by hand from recursing for ever). */
#define QUEUE_DEP_DEPTH_MAX "64"

/* ---- helpers ------------------------------------------------------------------------------ */

static void set_err(char **err, PGconn *conn, const PGresult *res)
{
    if (!err)
        return;
    free(*err);
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(conn);
    *err = pq_one_line(msg);
}

/* Runs sql with text parameters; NULL (with *err) unless the result has status `want`. */
static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params,
                     ExecStatusType want, char **err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (!res || PQresultStatus(res) != want) {
        set_err(err, conn, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

static int command(PGconn *conn, const char *sql, char **err)
{
    PGresult *res = run(conn, sql, 0, NULL, PGRES_COMMAND_OK, err);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

/* Ends a transaction that failed; the first error is the one reported. */
static void rollback(PGconn *conn)
{
    PGresult *res = PQexec(conn, "ROLLBACK");
    PQclear(res);
}

static int commit(PGconn *conn, char **err)
{
    if (command(conn, "COMMIT", err) != 0) {
        rollback(conn);
        return -1;
    }
    return 0;
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* Fails, transitively, the queued jobs whose dependency failed or was cancelled, with
 * "dependency N failed: <its error>" (N the direct dependency). Rows another transaction
 * holds are skipped (the next pass gets them), so concurrent passes never wait or deadlock. */
static const char FAIL_DEPENDENTS_SQL[] =
    "WITH RECURSIVE bad(id, msg, depth) AS ("
    "    SELECT d.job_id, 'dependency ' || p.id || ' failed: ' || coalesce(p.error, p.status), 1"
    "      FROM jobs j JOIN job_deps d ON d.job_id = j.id JOIN jobs p ON p.id = d.depends_on"
    "     WHERE j.status = 'queued' AND p.status IN ('failed', 'cancelled')"
    "  UNION ALL"
    "    SELECT d.job_id, 'dependency ' || b.id || ' failed: ' || b.msg, b.depth + 1"
    "      FROM bad b JOIN job_deps d ON d.depends_on = b.id JOIN jobs j ON j.id = d.job_id"
    "     WHERE j.status = 'queued' AND b.depth < " QUEUE_DEP_DEPTH_MAX "),"
    " first AS (SELECT DISTINCT ON (id) id, msg FROM bad ORDER BY id, depth, msg),"
    " locked AS (SELECT j.id FROM jobs j WHERE j.id IN (SELECT id FROM first)"
    "               AND j.status = 'queued' ORDER BY j.id FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs SET status = 'failed', error = f.msg, finished_at = now(),"
    "        lease_owner = NULL, lease_expires_at = NULL"
    "   FROM first f WHERE jobs.id = f.id AND jobs.id IN (SELECT id FROM locked)";

static int fail_dependents(PGconn *conn, char **err)
{
    return command(conn, FAIL_DEPENDENTS_SQL, err);
}

/* ---- jobs --------------------------------------------------------------------------------- */

void queue_job_clear(queue_job *job)
{
    if (!job)
        return;
    json_decref(job->payload);
    memset(job, 0, sizeof *job);
}

void queue_job_hash(const char *kind, const json_t *payload, char hex[HASH_HEX_LEN + 1])
{
    json_t *identity = json_object();
    json_object_set_new(identity, "kind", json_string(kind));
    /* json_object_set takes a non-const value; the payload is not changed. */
    json_object_set(identity, "payload", (json_t *)payload);
    json_hash(identity, hex);
    json_decref(identity);
}

/* ---- submit ------------------------------------------------------------------------------- */

static const char SUBMIT_SQL[] =
    "INSERT INTO jobs (hash, kind, payload, priority) VALUES ($1, $2, $3::jsonb, $4::integer)"
    " ON CONFLICT (hash) DO UPDATE"
    "    SET status = 'queued', attempts = 0, error = NULL, result = NULL, finished_at = NULL,"
    "        started_at = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = 0,"
    "        progress_note = NULL, run_after = now(), priority = EXCLUDED.priority"
    "  WHERE jobs.status IN ('failed', 'cancelled')"
    " RETURNING id, status";

int queue_submit(PGconn *conn, const char *kind, const json_t *payload, const int64_t *deps,
                 size_t ndeps, int priority, int64_t *id, char status[QUEUE_KIND_MAX], char **err)
{
    if (!kind || strlen(kind) >= QUEUE_KIND_MAX || !json_is_object(payload)) {
        if (err) {
            free(*err);
            *err = xstrdup("queue_submit: a job needs a kind and a JSON object as payload");
        }
        return -1;
    }
    char hash[HASH_HEX_LEN + 1];
    queue_job_hash(kind, payload, hash);
    char *text = json_canonical(payload);
    char prio[16];
    snprintf(prio, sizeof prio, "%d", priority);

    if (command(conn, "BEGIN", err) != 0) {
        free(text);
        return -1;
    }
    const char *p[4] = {hash, kind, text, prio};
    PGresult *res = run(conn, SUBMIT_SQL, 4, p, PGRES_TUPLES_OK, err);
    free(text);
    if (res && PQntuples(res) == 0) {
        /* The row exists and was shared, not reset. It was committed by then (ON CONFLICT
         * waits for the inserting transaction), so this statement's snapshot sees it. */
        PQclear(res);
        const char *q[1] = {hash};
        res = run(conn, "SELECT id, status FROM jobs WHERE hash = $1", 1, q, PGRES_TUPLES_OK,
                  err);
        if (res && PQntuples(res) != 1) {
            PQclear(res);
            res = NULL;
            if (err) {
                free(*err);
                *err = xasprintf("queue_submit: job %s vanished while it was submitted", hash);
            }
        }
    }
    if (!res) {
        rollback(conn);
        return -1;
    }
    int64_t job_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    char st[QUEUE_KIND_MAX];
    copy_field(st, sizeof st, PQgetvalue(res, 0, 1));
    PQclear(res);

    if (ndeps > 0) {
        strbuf arr = {0};
        strbuf_putc(&arr, '{');
        for (size_t i = 0; i < ndeps; i++)
            strbuf_printf(&arr, "%s%lld", i ? "," : "", (long long)deps[i]);
        strbuf_putc(&arr, '}');
        char idtext[24];
        snprintf(idtext, sizeof idtext, "%lld", (long long)job_id);
        const char *q[2] = {idtext, arr.data};
        res = run(conn,
                  "INSERT INTO job_deps (job_id, depends_on)"
                  " SELECT $1::bigint, d FROM unnest($2::bigint[]) AS d"
                  " ON CONFLICT DO NOTHING",
                  2, q, PGRES_COMMAND_OK, err);
        strbuf_free(&arr);
        if (!res) {
            rollback(conn);
            return -1;
        }
        PQclear(res);
        /* A dependency that already failed fails this job now, not at the next claim. */
        if (strcmp(st, "queued") == 0) {
            if (fail_dependents(conn, err) != 0) {
                rollback(conn);
                return -1;
            }
            const char *r[1] = {idtext};
            res = run(conn, "SELECT status FROM jobs WHERE id = $1::bigint", 1, r,
                      PGRES_TUPLES_OK, err);
            if (!res) {
                rollback(conn);
                return -1;
            }
            if (PQntuples(res) == 1)
                copy_field(st, sizeof st, PQgetvalue(res, 0, 0));
            PQclear(res);
        }
    }
    if (commit(conn, err) != 0)
        return -1;
    if (id)
        *id = job_id;
    if (status)
        copy_field(status, QUEUE_KIND_MAX, st);
    return 0;
}

/* ---- claim -------------------------------------------------------------------------------- */

static const char CLAIM_SQL[] =
    "UPDATE jobs SET status = 'running', attempts = attempts + 1,"
    "       lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2::integer),"
    "       started_at = now(), progress = 0, progress_note = NULL"
    " WHERE id = (SELECT j.id FROM jobs j"
    "              WHERE j.status = 'queued' AND j.run_after <= now()"
    "                AND j.attempts < j.max_attempts"
    "                AND ($3::text IS NULL OR j.kind = ANY (string_to_array($3::text, ',')))"
    "                AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs p ON p.id = d.depends_on"
    "                                 WHERE d.job_id = j.id AND p.status <> 'done')"
    "              ORDER BY j.priority DESC, j.id"
    "              LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id, hash, kind, status, payload::text, attempts, max_attempts";

/* "embed,proxy", or NULL for every kind; kinds cannot hold commas (sql/002_jobs.sql). */
static char *kinds_list(const char *const *kinds, size_t nkinds)
{
    if (nkinds == 0)
        return NULL;
    strbuf sb = {0};
    for (size_t i = 0; i < nkinds; i++) {
        if (i)
            strbuf_putc(&sb, ',');
        strbuf_puts(&sb, kinds[i]);
    }
    return strbuf_detach(&sb);
}

/* The job a claim statement returned (id, hash, kind, status, payload, attempts,
 * max_attempts): 1 with *job, 0 when it returned no row, -1 with *err when it failed or the
 * payload cannot be read (that job is failed for good). Clears res. */
static int claimed(PGconn *conn, PGresult *res, const char *worker_id, queue_job *job,
                   char **err)
{
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    job->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    copy_field(job->hash, sizeof job->hash, PQgetvalue(res, 0, 1));
    copy_field(job->kind, sizeof job->kind, PQgetvalue(res, 0, 2));
    copy_field(job->status, sizeof job->status, PQgetvalue(res, 0, 3));
    json_error_t jerr;
    job->payload = json_loads(PQgetvalue(res, 0, 4), 0, &jerr);
    job->attempts = atoi(PQgetvalue(res, 0, 5));
    job->max_attempts = atoi(PQgetvalue(res, 0, 6));
    PQclear(res);
    if (!job->payload) {
        /* jsonb always prints valid JSON; only a jansson limit (depth) gets here. */
        char *why = xasprintf("payload is not readable JSON: %s", jerr.text);
        char *ignored = NULL;
        queue_fail(conn, job, worker_id, why, true, &ignored);
        free(ignored);
        if (err) {
            free(*err);
            *err = xasprintf("job %lld: %s", (long long)job->id, why);
        }
        free(why);
        queue_job_clear(job);
        return -1;
    }
    return 1;
}

int queue_claim(PGconn *conn, const char *worker_id, const char *const *kinds, size_t nkinds,
                int lease_seconds, queue_job *job, char **err)
{
    memset(job, 0, sizeof *job);
    if (lease_seconds <= 0)
        lease_seconds = QUEUE_DEFAULT_LEASE_SECONDS;
    for (size_t i = 0; i < nkinds; i++)
        if (!kinds[i] || !*kinds[i] || strchr(kinds[i], ',')) {
            if (err) {
                free(*err);
                *err = xasprintf("queue_claim: bad job kind '%s'", kinds[i] ? kinds[i] : "");
            }
            return -1;
        }
    /* Jobs that can never run (a dependency failed) become final first. */
    if (fail_dependents(conn, err) != 0)
        return -1;
    char lease[16];
    snprintf(lease, sizeof lease, "%d", lease_seconds);
    char *list = kinds_list(kinds, nkinds);
    const char *p[3] = {worker_id, lease, list};
    PGresult *res = run(conn, CLAIM_SQL, 3, p, PGRES_TUPLES_OK, err);
    free(list);
    return claimed(conn, res, worker_id, job, err);
}

/* ---- heartbeat ---------------------------------------------------------------------------- */

int queue_heartbeat(PGconn *conn, int64_t id, const char *worker_id, int lease_seconds,
                    double fraction, const char *note, bool *still_ours, char **err)
{
    if (lease_seconds <= 0)
        lease_seconds = QUEUE_DEFAULT_LEASE_SECONDS;
    if (isnan(fraction) || fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    char idtext[24], lease[16], frac[32];
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    snprintf(lease, sizeof lease, "%d", lease_seconds);
    snprintf(frac, sizeof frac, "%.6f", fraction);
    const char *p[5] = {idtext, worker_id, lease, frac, note};
    PGresult *res = run(conn,
                        "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3::integer),"
                        "       progress = $4::double precision,"
                        "       progress_note = coalesce($5, progress_note)"
                        " WHERE id = $1::bigint AND lease_owner = $2 AND status = 'running'"
                        " RETURNING 1",
                        5, p, PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    if (still_ours)
        *still_ours = PQntuples(res) == 1;
    PQclear(res);
    return 0;
}

/* ---- complete ----------------------------------------------------------------------------- */

int queue_complete(PGconn *conn, const queue_job *job, const char *worker_id,
                   const json_t *result,
                   int (*store)(PGconn *conn, void *arg, char **err), void *arg, char **err)
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%lld", (long long)job->id);
    char *text = result ? json_canonical(result) : xstrdup("{}");
    if (command(conn, "BEGIN", err) != 0) {
        free(text);
        return -1;
    }
    const char *p[2] = {idtext, worker_id};
    PGresult *res = run(conn,
                        "SELECT 1 FROM jobs WHERE id = $1::bigint AND lease_owner = $2"
                        "   AND status = 'running' FOR UPDATE",
                        2, p, PGRES_TUPLES_OK, err);
    if (!res)
        goto fail;
    int held = PQntuples(res);
    PQclear(res);
    if (!held) {
        rollback(conn);
        free(text);
        return 0;
    }
    if (store) {
        char *serr = NULL;
        if (store(conn, arg, &serr) != 0) {
            if (err) {
                free(*err);
                *err = serr ? serr : xstrdup("storing the result failed");
            } else {
                free(serr);
            }
            goto fail;
        }
        free(serr);
    }
    const char *q[2] = {idtext, text};
    res = run(conn,
              "UPDATE jobs SET status = 'done', result = $2::jsonb, error = NULL,"
              "       finished_at = now(), lease_expires_at = NULL, progress = 1"
              " WHERE id = $1::bigint",
              2, q, PGRES_COMMAND_OK, err);
    if (!res)
        goto fail;
    PQclear(res);
    /* Dependents this completion unblocks get no 'queued' transition (they already are), so
     * wake the idle workers here; the notifications are delivered at commit. */
    const char *r[1] = {idtext};
    res = run(conn,
              "SELECT pg_notify('rankql_jobs_queued', k.kind)"
              "  FROM (SELECT DISTINCT j.kind FROM job_deps d JOIN jobs j ON j.id = d.job_id"
              "         WHERE d.depends_on = $1::bigint AND j.status = 'queued') k",
              1, r, PGRES_TUPLES_OK, err);
    if (!res)
        goto fail;
    PQclear(res);
    free(text);
    return commit(conn, err) == 0 ? 1 : -1;

fail:
    rollback(conn);
    free(text);
    return -1;
}

/* ---- fail, release ------------------------------------------------------------------------ */

static const char FAIL_SQL[] =
    "UPDATE jobs SET"
    "  status = CASE WHEN $4::boolean OR attempts >= max_attempts THEN 'failed' ELSE 'queued' END,"
    "  error = $3,"
    "  finished_at = CASE WHEN $4::boolean OR attempts >= max_attempts THEN now() END,"
    "  run_after = CASE WHEN $4::boolean OR attempts >= max_attempts THEN run_after"
    "              ELSE now() + make_interval(secs => least(power(2, attempts), $5::integer)) END,"
    "  lease_owner = NULL, lease_expires_at = NULL"
    " WHERE id = $1::bigint AND lease_owner = $2 AND status = 'running'"
    " RETURNING status";

int queue_fail(PGconn *conn, const queue_job *job, const char *worker_id, const char *message,
               bool permanent, char **err)
{
    char idtext[24], cap[16];
    snprintf(idtext, sizeof idtext, "%lld", (long long)job->id);
    snprintf(cap, sizeof cap, "%d", QUEUE_BACKOFF_MAX_SECONDS);
    const char *msg = message && *message ? message : "failed (no message)";
    if (command(conn, "BEGIN", err) != 0)
        return -1;
    const char *p[5] = {idtext, worker_id, msg, permanent ? "true" : "false", cap};
    PGresult *res = run(conn, FAIL_SQL, 5, p, PGRES_TUPLES_OK, err);
    if (!res) {
        rollback(conn);
        return -1;
    }
    int changed = PQntuples(res);
    bool failed = changed && strcmp(PQgetvalue(res, 0, 0), "failed") == 0;
    PQclear(res);
    if (failed && fail_dependents(conn, err) != 0) {
        rollback(conn);
        return -1;
    }
    if (commit(conn, err) != 0)
        return -1;
    return changed ? 1 : 0;
}

int queue_release(PGconn *conn, const queue_job *job, const char *worker_id, char **err)
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%lld", (long long)job->id);
    const char *p[2] = {idtext, worker_id};
    PGresult *res = run(conn,
                        "UPDATE jobs SET status = 'queued', attempts = greatest(attempts - 1, 0),"
                        "       lease_owner = NULL, lease_expires_at = NULL, run_after = now(),"
                        "       started_at = NULL, progress = 0, progress_note = NULL"
                        " WHERE id = $1::bigint AND lease_owner = $2 AND status = 'running'"
                        " RETURNING 1",
                        2, p, PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    int n = PQntuples(res);
    PQclear(res);
    return n ? 1 : 0;
}

/* ---- reap --------------------------------------------------------------------------------- */

static const char REAP_SQL[] =
    "WITH r AS ("
    "  UPDATE jobs SET"
    "    status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,"
    "    error = CASE WHEN attempts >= max_attempts"
    "                 THEN 'lease expired after ' || attempts || ' attempts'"
    "                 ELSE 'lease of ' || lease_owner || ' expired' END,"
    "    finished_at = CASE WHEN attempts >= max_attempts THEN now() END,"
    "    lease_owner = NULL, lease_expires_at = NULL, run_after = now()"
    "   WHERE status = 'running' AND lease_expires_at < now()"
    "  RETURNING status)"
    " SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'failed')"
    "   FROM r";

int queue_reap(PGconn *conn, int *requeued, int *failed, char **err)
{
    if (command(conn, "BEGIN", err) != 0)
        return -1;
    PGresult *res = run(conn, REAP_SQL, 0, NULL, PGRES_TUPLES_OK, err);
    if (!res) {
        rollback(conn);
        return -1;
    }
    int nq = atoi(PQgetvalue(res, 0, 0)), nf = atoi(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (nf > 0 && fail_dependents(conn, err) != 0) {
        rollback(conn);
        return -1;
    }
    if (commit(conn, err) != 0)
        return -1;
    if (requeued)
        *requeued = nq;
    if (failed)
        *failed = nf;
    return 0;
}

/* ---- cancel ------------------------------------------------------------------------------- */

int queue_cancel(PGconn *conn, int64_t id, char **err)
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    const char *p[1] = {idtext};
    if (command(conn, "BEGIN", err) != 0)
        return -1;
    PGresult *res = run(conn, "SELECT status FROM jobs WHERE id = $1::bigint FOR UPDATE", 1, p,
                        PGRES_TUPLES_OK, err);
    if (!res) {
        rollback(conn);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        rollback(conn);
        if (err) {
            free(*err);
            *err = xasprintf("job %lld does not exist", (long long)id);
        }
        return -1;
    }
    bool live = strcmp(PQgetvalue(res, 0, 0), "queued") == 0 ||
                strcmp(PQgetvalue(res, 0, 0), "running") == 0;
    PQclear(res);
    if (!live) {
        rollback(conn);
        return 0;
    }
    res = run(conn,
              "UPDATE jobs SET status = 'cancelled', finished_at = now(),"
              "       lease_owner = NULL, lease_expires_at = NULL"
              " WHERE id = $1::bigint",
              1, p, PGRES_COMMAND_OK, err);
    if (!res) {
        rollback(conn);
        return -1;
    }
    PQclear(res);
    /* UNION (not ALL) ends the recursion on a cycle: a row already found adds nothing. */
    res = run(conn,
              "WITH RECURSIVE dep(id) AS ("
              "    SELECT job_id FROM job_deps WHERE depends_on = $1::bigint"
              "  UNION"
              "    SELECT d.job_id FROM dep JOIN job_deps d ON d.depends_on = dep.id)"
              " UPDATE jobs SET status = 'cancelled', finished_at = now(),"
              "        error = 'dependency ' || $1::bigint || ' cancelled'"
              "  WHERE id IN (SELECT id FROM dep) AND status = 'queued'",
              1, p, PGRES_COMMAND_OK, err);
    if (!res) {
        rollback(conn);
        return -1;
    }
    PQclear(res);
    return commit(conn, err) == 0 ? 1 : -1;
}

/* ---- pending ------------------------------------------------------------------------------ */

int queue_pending(PGconn *conn, const char *const *kinds, size_t nkinds, int64_t *count,
                  char **err)
{
    char *list = kinds_list(kinds, nkinds);
    const char *p[1] = {list};
    PGresult *res = run(conn,
                        "SELECT count(*) FROM jobs"
                        " WHERE status IN ('queued', 'running')"
                        "   AND ($1::text IS NULL OR kind = ANY (string_to_array($1::text, ',')))",
                        1, p, PGRES_TUPLES_OK, err);
    free(list);
    if (!res)
        return -1;
    if (count)
        *count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

/* ---- claim one job by id ------------------------------------------------------------------ */

/* The claim of CLAIM_SQL restricted to one id: the same claimability rules, no SKIP LOCKED
 * (a row locked by a concurrent claim is waited for, then found running). */
static const char CLAIM_ID_SQL[] =
    "UPDATE jobs SET status = 'running', attempts = attempts + 1,"
    "       lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2::integer),"
    "       started_at = now(), progress = 0, progress_note = NULL"
    " WHERE id = $3::bigint AND status = 'queued' AND run_after <= now()"
    "   AND attempts < max_attempts"
    "   AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs p ON p.id = d.depends_on"
    "                    WHERE d.job_id = jobs.id AND p.status <> 'done')"
    " RETURNING id, hash, kind, status, payload::text, attempts, max_attempts";

int queue_claim_id(PGconn *conn, int64_t id, const char *worker_id, int lease_seconds,
                   queue_job *job, char **err)
{
    memset(job, 0, sizeof *job);
    if (lease_seconds <= 0)
        lease_seconds = QUEUE_DEFAULT_LEASE_SECONDS;
    if (fail_dependents(conn, err) != 0)
        return -1;
    char lease[16], idtext[24];
    snprintf(lease, sizeof lease, "%d", lease_seconds);
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    const char *p[3] = {worker_id, lease, idtext};
    PGresult *res = run(conn, CLAIM_ID_SQL, 3, p, PGRES_TUPLES_OK, err);
    return claimed(conn, res, worker_id, job, err);
}

/* ---- a job's state ------------------------------------------------------------------------ */

int queue_job_state(PGconn *conn, int64_t id, char status[QUEUE_KIND_MAX], json_t **result,
                    char **error, char **err)
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    const char *p[1] = {idtext};
    PGresult *res = run(conn, "SELECT status, result::text, error FROM jobs WHERE id = $1::bigint",
                        1, p, PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        if (err) {
            free(*err);
            *err = xasprintf("job %lld does not exist", (long long)id);
        }
        return -1;
    }
    copy_field(status, QUEUE_KIND_MAX, PQgetvalue(res, 0, 0));
    if (result)
        *result = PQgetisnull(res, 0, 1) ? NULL : json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    if (error)
        *error = PQgetisnull(res, 0, 2) ? NULL : xstrdup(PQgetvalue(res, 0, 2));
    PQclear(res);
    return 0;
}
