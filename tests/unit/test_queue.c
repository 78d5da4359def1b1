/* queue/: the job queue against a real (embedded, no-fsync) PostgreSQL, migrated with the
 * built-in migrations: de-duplication, resubmission, claim order, dependencies, leases,
 * completion with the store callback, failure with back-off, the reaper and cancel.
 * The cluster is started once for the group; every test starts from empty tables. */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "db/migrate.h"
#include "db/pgembed.h"
#include "queue/queue.h"

static char scratch[64];
static pg_embedded *pg;
static PGconn *conn;

/* ---- fixtures ----------------------------------------------------------------------------- */

static void exec_ok(const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

static void exec_okf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void exec_okf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf sb = {0};
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    exec_ok(sb.data);
    strbuf_free(&sb);
}

/* The single value of a query, as text ("" for NULL); caller frees. */
static char *value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *value(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf sb = {0};
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    PGresult *res = PQexec(conn, sb.data);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s (%d rows)", sb.data, PQresultErrorMessage(res), PQntuples(res));
    char *v = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    strbuf_free(&sb);
    return v;
}

#define assert_value(expected, ...)                                                           \
    do {                                                                                      \
        char *v_ = value(__VA_ARGS__);                                                        \
        assert_string_equal(v_, expected);                                                    \
        free(v_);                                                                             \
    } while (0)

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() == 0 && !getpwnam("postgres")) {
        fprintf(stderr, "test_queue: running as root without a postgres user\n");
        return -1;
    }
    snprintf(scratch, sizeof scratch, "/tmp/rankql-queue.XXXXXX");
    if (!mkdtemp(scratch))
        return -1;
    chmod(scratch, 0755);
    char *data = xasprintf("%s/data", scratch), *err = NULL;
    pg_embedded_opts opts = {.data_dir = data, .no_sync = true};
    pg = pg_embedded_start(&opts, &err);
    free(data);
    if (!pg) {
        fprintf(stderr, "test_queue: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    conn = PQconnectdb(pg_embedded_conninfo(pg));
    int applied = 0;
    if (PQstatus(conn) != CONNECTION_OK || db_migrate(conn, &applied, &err) != 0) {
        fprintf(stderr, "test_queue: %s\n", err ? err : PQerrorMessage(conn));
        free(err);
        return -1;
    }
    exec_ok("SET client_min_messages = warning");
    exec_ok("CREATE TABLE queue_test_store (hash text PRIMARY KEY, note text)");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(conn);
    char *err = NULL;
    int rc = pg ? pg_embedded_stop(pg, &err) : 0;
    free(err);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

static int empty_tables(void **state)
{
    (void)state;
    exec_ok("TRUNCATE jobs, job_deps, queue_test_store RESTART IDENTITY CASCADE");
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static json_t *payload_n(int n)
{
    return json_pack("{s:i, s:{s:s}}", "n", n, "model", "name", "builtin/pca-32");
}

static int64_t submit(const char *kind, int n, const int64_t *deps, size_t ndeps, int priority,
                      char status[QUEUE_KIND_MAX])
{
    json_t *p = payload_n(n);
    int64_t id = 0;
    char st[QUEUE_KIND_MAX], *err = NULL;
    if (queue_submit(conn, kind, p, deps, ndeps, priority, &id, st, &err) != 0)
        fail_msg("queue_submit: %s", err);
    json_decref(p);
    if (status)
        strcpy(status, st);
    return id;
}

/* Claims as worker; returns the id (0 when none). */
static int64_t claim(const char *worker, const char *const *kinds, size_t nkinds, queue_job *out)
{
    queue_job job;
    char *err = NULL;
    int rc = queue_claim(conn, worker, kinds, nkinds, 30, &job, &err);
    if (rc < 0)
        fail_msg("queue_claim: %s", err);
    int64_t id = rc == 1 ? job.id : 0;
    if (out && rc == 1)
        *out = job;
    else
        queue_job_clear(&job);
    return id;
}

static int complete(const queue_job *job, const char *worker, int (*store)(PGconn *, void *, char **),
                    void *arg, char **err)
{
    json_t *result = json_pack("{s:s}", "path", "features/x.rqf");
    int rc = queue_complete(conn, job, worker, result, store, arg, err);
    json_decref(result);
    return rc;
}

static void expire_lease(int64_t id)
{
    exec_okf("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %lld",
             (long long)id);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_hash_is_kind_and_payload(void **state)
{
    (void)state;
    json_t *p = payload_n(1), *whole = json_pack("{s:s, s:O}", "kind", "embed", "payload", p);
    char a[HASH_HEX_LEN + 1], b[HASH_HEX_LEN + 1], c[HASH_HEX_LEN + 1];
    queue_job_hash("embed", p, a);
    json_hash(whole, b);
    queue_job_hash("proxy", p, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    json_decref(p);
    json_decref(whole);
}

static void test_submit_dedupe(void **state)
{
    (void)state;
    char st[QUEUE_KIND_MAX];
    int64_t a = submit("embed", 1, NULL, 0, 0, st);
    assert_string_equal(st, "queued");
    int64_t a2 = submit("embed", 1, NULL, 0, 0, st);
    assert_int_equal(a, a2);
    assert_string_equal(st, "queued");
    int64_t b = submit("embed", 2, NULL, 0, 0, NULL);
    int64_t c = submit("proxy", 1, NULL, 0, 0, NULL);
    assert_int_not_equal(a, b);
    assert_int_not_equal(a, c);
    assert_int_not_equal(b, c);
    assert_value("3", "SELECT count(*) FROM jobs");
    json_t *p = payload_n(1);
    char hex[HASH_HEX_LEN + 1];
    queue_job_hash("embed", p, hex);
    json_decref(p);
    assert_value(hex, "SELECT hash FROM jobs WHERE id = %lld", (long long)a);
    /* The same payload with keys in another order is the same job. */
    json_t *q = json_pack("{s:{s:s}, s:i}", "model", "name", "builtin/pca-32", "n", 1);
    int64_t id = 0;
    char *err = NULL;
    assert_int_equal(queue_submit(conn, "embed", q, NULL, 0, 0, &id, st, &err), 0);
    json_decref(q);
    assert_int_equal(id, a);
    /* A running or done job is shared as it is. */
    queue_job job;
    assert_int_equal(claim("w1", NULL, 0, &job), a);
    assert_int_equal(submit("embed", 1, NULL, 0, 0, st), a);
    assert_string_equal(st, "running");
    assert_int_equal(complete(&job, "w1", NULL, NULL, &err), 1);
    assert_int_equal(submit("embed", 1, NULL, 0, 0, st), a);
    assert_string_equal(st, "done");
    assert_value("done|1", "SELECT status || '|' || attempts FROM jobs WHERE id = %lld",
                 (long long)a);
    queue_job_clear(&job);
}

static void test_submit_rejects_bad_input(void **state)
{
    (void)state;
    json_t *arr = json_array();
    int64_t id = 0;
    char st[QUEUE_KIND_MAX], *err = NULL;
    assert_int_equal(queue_submit(conn, "embed", arr, NULL, 0, 0, &id, st, &err), -1);
    assert_non_null(err);
    free(err);
    err = NULL;
    json_decref(arr);
    /* A kind outside the table's CHECK, and an unknown dependency: database errors, no row. */
    json_t *p = payload_n(1);
    assert_int_equal(queue_submit(conn, "nope", p, NULL, 0, 0, &id, st, &err), -1);
    assert_non_null(strstr(err, "jobs_kind_check"));
    assert_null(strchr(err, '\n'));
    free(err);
    err = NULL;
    int64_t missing = 999;
    assert_int_equal(queue_submit(conn, "embed", p, &missing, 1, 0, &id, st, &err), -1);
    assert_non_null(strstr(err, "job_deps"));
    free(err);
    json_decref(p);
    assert_value("0", "SELECT count(*) FROM jobs");
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
}

static void test_resubmit_failed_and_cancelled_resets(void **state)
{
    (void)state;
    char st[QUEUE_KIND_MAX], *err = NULL;
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    queue_job job;
    assert_int_equal(claim("w1", NULL, 0, &job), a);
    exec_okf("UPDATE jobs SET progress = 0.5, progress_note = 'half' WHERE id = %lld",
             (long long)a);
    assert_int_equal(queue_fail(conn, &job, "w1", "bad file", true, &err), 1);
    queue_job_clear(&job);
    assert_value("failed|bad file|1|t",
                 "SELECT concat_ws('|', status, error, attempts, finished_at IS NOT NULL) "
                 "FROM jobs WHERE id = %lld",
                 (long long)a);
    assert_int_equal(submit("embed", 1, NULL, 0, 7, st), a);
    assert_string_equal(st, "queued");
    assert_value("queued|0|t|t|t|t|t|0|7",
                 "SELECT concat_ws('|', status, attempts, error IS NULL, result IS NULL, "
                 "finished_at IS NULL, lease_owner IS NULL, lease_expires_at IS NULL, progress, "
                 "priority) FROM jobs WHERE id = %lld",
                 (long long)a);
    assert_int_equal(claim("w1", NULL, 0, NULL), a);
    /* Cancelled: reset the same way. */
    int64_t b = submit("embed", 2, NULL, 0, 0, NULL);
    assert_int_equal(queue_cancel(conn, b, &err), 1);
    assert_value("cancelled", "SELECT status FROM jobs WHERE id = %lld", (long long)b);
    assert_int_equal(submit("embed", 2, NULL, 0, 0, st), b);
    assert_string_equal(st, "queued");
    assert_value("2", "SELECT count(*) FROM jobs");
}

static void test_claim_order_and_kinds(void **state)
{
    (void)state;
    int64_t low = submit("embed", 1, NULL, 0, -1, NULL);
    int64_t zero = submit("embed", 2, NULL, 0, 0, NULL);
    int64_t hi1 = submit("embed", 3, NULL, 0, 5, NULL);
    int64_t hi2 = submit("embed", 4, NULL, 0, 5, NULL);
    int64_t prox = submit("proxy", 5, NULL, 0, 9, NULL);
    const char *embed[] = {"embed"};
    queue_job job;
    assert_int_equal(claim("w1", embed, 1, &job), hi1);
    assert_string_equal(job.kind, "embed");
    assert_string_equal(job.status, "running");
    assert_int_equal(job.attempts, 1);
    assert_int_equal(job.max_attempts, 3);
    assert_int_equal(json_integer_value(json_object_get(job.payload, "n")), 3);
    assert_value(job.hash, "SELECT hash FROM jobs WHERE id = %lld", (long long)hi1);
    assert_value("w1|t|t", "SELECT concat_ws('|', lease_owner, lease_expires_at > now(), "
                           "started_at IS NOT NULL) FROM jobs WHERE id = %lld",
                 (long long)hi1);
    queue_job_clear(&job);
    assert_int_equal(claim("w1", embed, 1, NULL), hi2);
    assert_int_equal(claim("w1", embed, 1, NULL), zero);
    assert_int_equal(claim("w1", embed, 1, NULL), low);
    assert_int_equal(claim("w1", embed, 1, NULL), 0);
    const char *both[] = {"proxy", "embed"};
    assert_int_equal(claim("w2", both, 2, NULL), prox);
    assert_int_equal(claim("w2", NULL, 0, NULL), 0);
}

static void test_deps_block_claim_until_done(void **state)
{
    (void)state;
    char *err = NULL;
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    int64_t b = submit("embed", 2, NULL, 0, 0, NULL);
    int64_t deps[] = {a, b};
    /* Higher priority, but blocked. */
    int64_t p = submit("proxy", 1, deps, 2, 10, NULL);
    assert_value("2", "SELECT count(*) FROM job_deps WHERE job_id = %lld", (long long)p);
    /* Submitting again adds no second dependency rows. */
    assert_int_equal(submit("proxy", 1, deps, 2, 10, NULL), p);
    assert_value("2", "SELECT count(*) FROM job_deps WHERE job_id = %lld", (long long)p);
    queue_job ja, jb;
    assert_int_equal(claim("w1", NULL, 0, &ja), a);
    assert_int_equal(claim("w1", NULL, 0, &jb), b);
    assert_int_equal(claim("w1", NULL, 0, NULL), 0);
    assert_int_equal(complete(&ja, "w1", NULL, NULL, &err), 1);
    assert_int_equal(claim("w1", NULL, 0, NULL), 0); /* b still running */
    /* Completing b notifies idle workers that p became claimable. */
    exec_ok("LISTEN rankql_jobs_queued");
    assert_int_equal(complete(&jb, "w1", NULL, NULL, &err), 1);
    PQconsumeInput(conn);
    PGnotify *n = PQnotifies(conn);
    assert_non_null(n);
    assert_string_equal(n->relname, "rankql_jobs_queued");
    assert_string_equal(n->extra, "proxy");
    PQfreemem(n);
    exec_ok("UNLISTEN *");
    assert_int_equal(claim("w1", NULL, 0, NULL), p);
    queue_job_clear(&ja);
    queue_job_clear(&jb);
}

static void test_failed_dependency_fails_dependents(void **state)
{
    (void)state;
    char st[QUEUE_KIND_MAX], *err = NULL;
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    int64_t b = submit("proxy", 1, &a, 1, 0, NULL);
    int64_t c = submit("proxy", 2, &b, 1, 0, NULL);
    int64_t other = submit("embed", 2, NULL, 0, -5, NULL);
    queue_job job;
    assert_int_equal(claim("w1", NULL, 0, &job), a);
    assert_int_equal(queue_fail(conn, &job, "w1", "dimension mismatch", true, &err), 1);
    queue_job_clear(&job);
    char *expect_b = xasprintf("failed|dependency %lld failed: dimension mismatch", (long long)a);
    char *expect_c = xasprintf("failed|dependency %lld failed: dependency %lld failed: "
                               "dimension mismatch",
                               (long long)b, (long long)a);
    assert_value(expect_b, "SELECT status || '|' || error FROM jobs WHERE id = %lld", (long long)b);
    assert_value(expect_c, "SELECT status || '|' || error FROM jobs WHERE id = %lld", (long long)c);
    assert_value("t", "SELECT finished_at IS NOT NULL FROM jobs WHERE id = %lld", (long long)c);
    free(expect_b);
    free(expect_c);
    /* A job submitted on top of the failed one fails at once. */
    int64_t d = submit("proxy", 3, &a, 1, 0, st);
    assert_string_equal(st, "failed");
    assert_int_not_equal(d, 0);
    /* The unrelated job is untouched and claimable. */
    assert_int_equal(claim("w1", NULL, 0, NULL), other);
    /* A failure found by claim: a dependency failed behind the queue's back (by hand). */
    int64_t e = submit("embed", 5, NULL, 0, 0, NULL);
    int64_t f = submit("proxy", 5, &e, 1, 0, NULL);
    exec_okf("UPDATE jobs SET status = 'failed', error = 'x', finished_at = now() "
             "WHERE id = %lld",
             (long long)e);
    assert_value("queued", "SELECT status FROM jobs WHERE id = %lld", (long long)f);
    assert_int_equal(claim("w1", NULL, 0, NULL), 0);
    assert_value("failed", "SELECT status FROM jobs WHERE id = %lld", (long long)f);
}

static void test_heartbeat_and_lease_loss(void **state)
{
    (void)state;
    char *err = NULL;
    bool ours = false;
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    queue_job job;
    assert_int_equal(claim("w1", NULL, 0, &job), a);
    exec_okf("UPDATE jobs SET lease_expires_at = now() + interval '1 second' WHERE id = %lld",
             (long long)a);
    assert_int_equal(queue_heartbeat(conn, a, "w1", 60, 0.25, "batch 1 of 4", &ours, &err), 0);
    assert_true(ours);
    assert_value("0.25|batch 1 of 4|t",
                 "SELECT concat_ws('|', progress, progress_note, "
                 "lease_expires_at > now() + interval '50 seconds') FROM jobs WHERE id = %lld",
                 (long long)a);
    /* Out-of-range fractions are clamped; a NULL note keeps the last one. */
    assert_int_equal(queue_heartbeat(conn, a, "w1", 60, 7.0, NULL, &ours, &err), 0);
    assert_true(ours);
    assert_value("1|batch 1 of 4",
                 "SELECT concat_ws('|', progress, progress_note) FROM jobs WHERE id = %lld",
                 (long long)a);
    /* Another worker's heartbeat changes nothing. */
    assert_int_equal(queue_heartbeat(conn, a, "w2", 60, 0.5, "x", &ours, &err), 0);
    assert_false(ours);
    /* Lease lost to the reaper and another worker: not ours any more, cannot complete. */
    expire_lease(a);
    int rq = 0, fl = 0;
    assert_int_equal(queue_reap(conn, &rq, &fl, &err), 0);
    assert_int_equal(rq, 1);
    assert_int_equal(claim("w2", NULL, 0, NULL), a);
    assert_int_equal(queue_heartbeat(conn, a, "w1", 60, 0.5, NULL, &ours, &err), 0);
    assert_false(ours);
    assert_int_equal(complete(&job, "w1", NULL, NULL, &err), 0);
    assert_int_equal(queue_fail(conn, &job, "w1", "late", true, &err), 0);
    assert_value("running|w2|2", "SELECT concat_ws('|', status, lease_owner, attempts) FROM jobs "
                                 "WHERE id = %lld",
                 (long long)a);
    queue_job_clear(&job);
}

typedef struct store_arg {
    const char *hash;
    int mode; /* 0 ok, 1 insert then return -1, 2 bad SQL */
    int calls;
} store_arg;

static int test_store(PGconn *c, void *arg, char **err)
{
    store_arg *s = arg;
    s->calls++;
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    const char *p[1] = {s->hash};
    PGresult *res = PQexecParams(c, "INSERT INTO queue_test_store (hash, note) VALUES ($1, 'x')",
                                 1, NULL, p, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        *err = xstrdup("insert failed");
        return -1;
    }
    if (s->mode == 1) {
        *err = xstrdup("disk full (test)");
        return -1;
    }
    if (s->mode == 2) {
        res = PQexec(c, "SELECT * FROM no_such_table");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        *err = xstrdup(PQresultErrorMessage(res));
        PQclear(res);
        return ok ? 0 : -1;
    }
    return 0;
}

static void test_complete_only_with_lease_and_store_rolls_back(void **state)
{
    (void)state;
    char *err = NULL;
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    queue_job job;
    assert_int_equal(claim("w1", NULL, 0, &job), a);
    store_arg s = {.hash = job.hash, .mode = 1};
    /* Not the lease holder: store is not even called. */
    assert_int_equal(complete(&job, "w2", test_store, &s, &err), 0);
    assert_int_equal(s.calls, 0);
    /* store fails after writing: nothing of it stays, the job is still running and ours. */
    assert_int_equal(complete(&job, "w1", test_store, &s, &err), -1);
    assert_string_equal(err, "disk full (test)");
    free(err);
    err = NULL;
    assert_int_equal(s.calls, 1);
    assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
    assert_value("0", "SELECT count(*) FROM queue_test_store");
    assert_value("running|w1|t", "SELECT concat_ws('|', status, lease_owner, result IS NULL) "
                                 "FROM jobs WHERE id = %lld",
                 (long long)a);
    /* An SQL error inside store: rolled back the same way. */
    s.mode = 2;
    assert_int_equal(complete(&job, "w1", test_store, &s, &err), -1);
    assert_non_null(strstr(err, "no_such_table"));
    free(err);
    err = NULL;
    assert_value("0", "SELECT count(*) FROM queue_test_store");
    assert_value("running", "SELECT status FROM jobs WHERE id = %lld", (long long)a);
    /* Then it works: cache row and done in one go. */
    s.mode = 0;
    assert_int_equal(complete(&job, "w1", test_store, &s, &err), 1);
    assert_value("1", "SELECT count(*) FROM queue_test_store WHERE hash = '%s'", job.hash);
    assert_value("done|features/x.rqf|t|1",
                 "SELECT concat_ws('|', status, result->>'path', finished_at IS NOT NULL, "
                 "progress) FROM jobs WHERE id = %lld",
                 (long long)a);
    /* Done is final: no second completion, fail or cancel. */
    s.calls = 0;
    assert_int_equal(complete(&job, "w1", test_store, &s, &err), 0);
    assert_int_equal(s.calls, 0);
    assert_int_equal(queue_fail(conn, &job, "w1", "x", true, &err), 0);
    assert_int_equal(queue_cancel(conn, a, &err), 0);
    assert_value("done", "SELECT status FROM jobs WHERE id = %lld", (long long)a);
    queue_job_clear(&job);
}

static void test_fail_backoff_then_permanent(void **state)
{
    (void)state;
    char *err = NULL;
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    queue_job job;
    assert_int_equal(claim("w1", NULL, 0, &job), a);
    assert_int_equal(queue_fail(conn, &job, "w1", "connection reset", false, &err), 1);
    queue_job_clear(&job);
    /* attempt 1 failed: back-off 2 s. */
    assert_value("queued|1|connection reset|t|t",
                 "SELECT concat_ws('|', status, attempts, error, lease_owner IS NULL, "
                 "run_after > now() + interval '1 second') FROM jobs WHERE id = %lld",
                 (long long)a);
    assert_int_equal(claim("w1", NULL, 0, NULL), 0);
    for (int attempt = 2; attempt <= 3; attempt++) {
        exec_okf("UPDATE jobs SET run_after = now() WHERE id = %lld", (long long)a);
        assert_int_equal(claim("w1", NULL, 0, &job), a);
        assert_int_equal(job.attempts, attempt);
        assert_int_equal(queue_fail(conn, &job, "w1", "connection reset", false, &err), 1);
        queue_job_clear(&job);
        if (attempt == 2)
            assert_value("queued|t", "SELECT concat_ws('|', status, run_after > now() + "
                                     "interval '3 seconds') FROM jobs WHERE id = %lld",
                         (long long)a);
    }
    /* No attempts left: failed, final. */
    assert_value("failed|3|connection reset|t",
                 "SELECT concat_ws('|', status, attempts, error, finished_at IS NOT NULL) "
                 "FROM jobs WHERE id = %lld",
                 (long long)a);
}

static void test_reaper_requeues_then_fails(void **state)
{
    (void)state;
    char *err = NULL;
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    int64_t dep = submit("proxy", 1, &a, 1, 0, NULL);
    int64_t b = submit("embed", 2, NULL, 0, 0, NULL);
    int rq = -1, fl = -1;
    assert_int_equal(queue_reap(conn, &rq, &fl, &err), 0);
    assert_int_equal(rq, 0);
    assert_int_equal(fl, 0);
    for (int attempt = 1; attempt <= 3; attempt++) {
        assert_int_equal(claim("w1", NULL, 0, NULL), a);
        assert_int_equal(claim("w2", NULL, 0, NULL), attempt == 1 ? b : 0);
        /* A live lease is not reaped. */
        assert_int_equal(queue_reap(conn, &rq, &fl, &err), 0);
        assert_int_equal(rq + fl, 0);
        expire_lease(a);
        assert_int_equal(queue_reap(conn, &rq, &fl, &err), 0);
        if (attempt < 3) {
            assert_int_equal(rq, 1);
            assert_int_equal(fl, 0);
            assert_value("queued|t|t|t", "SELECT concat_ws('|', status, lease_owner IS NULL, "
                                         "run_after <= now(), error LIKE 'lease of w1 expired') "
                                         "FROM jobs WHERE id = %lld",
                         (long long)a);
        } else {
            assert_int_equal(rq, 0);
            assert_int_equal(fl, 1);
        }
    }
    assert_value("failed|lease expired after 3 attempts",
                 "SELECT status || '|' || error FROM jobs WHERE id = %lld", (long long)a);
    char *expect = xasprintf("failed|dependency %lld failed: lease expired after 3 attempts",
                             (long long)a);
    assert_value(expect, "SELECT status || '|' || error FROM jobs WHERE id = %lld",
                 (long long)dep);
    free(expect);
    assert_value("running", "SELECT status FROM jobs WHERE id = %lld", (long long)b);
}

static void test_cancel(void **state)
{
    (void)state;
    char *err = NULL;
    bool ours = true;
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    int64_t b = submit("proxy", 1, &a, 1, 0, NULL);
    int64_t c = submit("proxy", 2, &b, 1, 0, NULL);
    int64_t x = submit("embed", 9, NULL, 0, -1, NULL);
    queue_job job;
    assert_int_equal(claim("w1", NULL, 0, &job), a);
    /* Cancel the running job: its dependents (transitively) go with it. */
    assert_int_equal(queue_cancel(conn, a, &err), 1);
    assert_value("cancelled|t|t", "SELECT concat_ws('|', status, lease_owner IS NULL, "
                                  "finished_at IS NOT NULL) FROM jobs WHERE id = %lld",
                 (long long)a);
    char *e = xasprintf("cancelled|dependency %lld cancelled", (long long)a);
    assert_value(e, "SELECT status || '|' || error FROM jobs WHERE id = %lld", (long long)b);
    assert_value(e, "SELECT status || '|' || error FROM jobs WHERE id = %lld", (long long)c);
    free(e);
    /* The worker finds out at its next heartbeat, and cannot complete. */
    assert_int_equal(queue_heartbeat(conn, a, "w1", 30, 0.5, NULL, &ours, &err), 0);
    assert_false(ours);
    assert_int_equal(complete(&job, "w1", NULL, NULL, &err), 0);
    queue_job_clear(&job);
    /* Already final; unknown ids. */
    assert_int_equal(queue_cancel(conn, a, &err), 0);
    assert_int_equal(queue_cancel(conn, 123456, &err), -1);
    assert_non_null(strstr(err, "job 123456 does not exist"));
    free(err);
    err = NULL;
    /* A queued job; the unrelated one stays. */
    assert_int_equal(queue_cancel(conn, x, &err), 1);
    assert_value("cancelled|queued",
                 "SELECT string_agg(status, '|' ORDER BY id) FROM jobs WHERE id IN (%lld, %lld)",
                 (long long)x, (long long)submit("embed", 10, NULL, 0, 0, NULL));
    assert_int_equal(claim("w1", NULL, 0, NULL), x + 1);
}

static void test_release_and_pending(void **state)
{
    (void)state;
    char *err = NULL;
    int64_t n = -1;
    const char *embed[] = {"embed"}, *proxy[] = {"proxy"};
    assert_int_equal(queue_pending(conn, NULL, 0, &n, &err), 0);
    assert_int_equal(n, 0);
    int64_t a = submit("embed", 1, NULL, 0, 0, NULL);
    submit("proxy", 1, &a, 1, 0, NULL);
    queue_job job;
    assert_int_equal(claim("w1", embed, 1, &job), a);
    assert_int_equal(queue_pending(conn, embed, 1, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(queue_pending(conn, NULL, 0, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(queue_release(conn, &job, "w2", &err), 0);
    assert_int_equal(queue_release(conn, &job, "w1", &err), 1);
    assert_value("queued|0|t", "SELECT concat_ws('|', status, attempts, lease_owner IS NULL) "
                               "FROM jobs WHERE id = %lld",
                 (long long)a);
    assert_int_equal(claim("w2", embed, 1, NULL), a);
    queue_job_clear(&job);
    exec_okf("UPDATE jobs SET status = 'done', result = '{}', finished_at = now() "
             "WHERE id = %lld",
             (long long)a);
    assert_int_equal(queue_pending(conn, embed, 1, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(queue_pending(conn, proxy, 1, &n, &err), 0);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_hash_is_kind_and_payload, empty_tables),
        cmocka_unit_test_setup(test_submit_dedupe, empty_tables),
        cmocka_unit_test_setup(test_submit_rejects_bad_input, empty_tables),
        cmocka_unit_test_setup(test_resubmit_failed_and_cancelled_resets, empty_tables),
        cmocka_unit_test_setup(test_claim_order_and_kinds, empty_tables),
        cmocka_unit_test_setup(test_deps_block_claim_until_done, empty_tables),
        cmocka_unit_test_setup(test_failed_dependency_fails_dependents, empty_tables),
        cmocka_unit_test_setup(test_heartbeat_and_lease_loss, empty_tables),
        cmocka_unit_test_setup(test_complete_only_with_lease_and_store_rolls_back, empty_tables),
        cmocka_unit_test_setup(test_fail_backoff_then_permanent, empty_tables),
        cmocka_unit_test_setup(test_reaper_requeues_then_fails, empty_tables),
        cmocka_unit_test_setup(test_cancel, empty_tables),
        cmocka_unit_test_setup(test_release_and_pending, empty_tables),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
