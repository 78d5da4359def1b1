/* Integration test of the job queue and the worker loop with real worker processes.
 *
 *   itest_queue SCRATCH_DIR [RANKQL_WORKER_BINARY]
 *
 * Starts an embedded PostgreSQL in SCRATCH_DIR/data (no fsync), migrates, and:
 *   1. forks 4 worker processes (worker_run, 2 slots each, lease 2 s, exit when idle) with a
 *      test runner table: 'embed' sleeps payload.sleep_ms, 'proxy' also checks that its
 *      dependencies are done; every run() records itself in queue_test_execs (no key: a job
 *      run twice shows up twice) and every store() in queue_test_runs (hash primary key).
 *      41 jobs (32 embed, 8 proxy on top of them, one long "victim"); the worker running the
 *      victim is killed with SIGKILL mid-job: its job must be re-queued by a reaper and done by
 *      another worker, every other job run exactly once, every result stored once;
 *   2. a worker survives a PostgreSQL restart (jobs submitted after it are done);
 *   3. a cancelled running job stops at the next heartbeat and is not stored;
 *   4. SIGTERM during a job gives it back (queued, attempt not counted) and exits 0;
 *   5. the rankql-worker program (when given) runs --once against the database and exits 0.
 * Prints one "ok - …" / "not ok - …" line per check; stops the cluster on every exit path. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "common/util.h"
#include "db/migrate.h"
#include "db/pgembed.h"
#include "executor/workers/loop.h"
#include "queue/queue.h"
#include "tests/integration/itest_check.h"

#define LEASE_SECONDS 2
#define NWORKERS 4

static PGconn *conn;
static pg_embedded *pg;
static const char *scratch;

/* ---- reporting -------------------------------------------------------------------------- */

/* check() and diag(): tests/integration/itest_check.h */

/* ---- SQL helpers -------------------------------------------------------------------------- */

static bool sql_exec(const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        diag("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

/* The single value of a query ("" for NULL or an error); caller frees. */
static char *sql_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *sql_value(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf sb = {0};
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    PGresult *res = PQexec(conn, sb.data);
    char *v;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        diag("%s: %s", sb.data, PQresultErrorMessage(res));
        v = xstrdup("");
    } else {
        v = xstrdup(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    strbuf_free(&sb);
    return v;
}

static long sql_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static long sql_long(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf sb = {0};
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    char *v = sql_value("%s", sb.data);
    long n = *v ? strtol(v, NULL, 10) : -1;
    free(v);
    strbuf_free(&sb);
    return n;
}

static int64_t submit(const char *kind, json_t *payload, const int64_t *deps, size_t ndeps)
{
    int64_t id = 0;
    char st[QUEUE_KIND_MAX], *err = NULL;
    if (queue_submit(conn, kind, payload, deps, ndeps, 0, &id, st, &err) != 0) {
        diag("queue_submit: %s", err ? err : "?");
        free(err);
        id = 0;
    }
    json_decref(payload);
    return id;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Polls a count query until it reaches want or timeout_s passes; the last count. */
static long wait_count(long want, double timeout_s, const char *sql)
{
    double end = now_s() + timeout_s;
    long n = -1;
    for (;;) {
        n = sql_long("%s", sql);
        if (n == want || now_s() > end)
            return n;
        sleep_ms(100);
    }
}

/* ---- the test runners (run in the worker processes) --------------------------------------- */

static bool exec_param(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok;
}

/* Records this execution; returns how many executions of the job there were, this one
 * included (-1 on error). */
static long record_exec(job_ctx *ctx, const char *deps_ok)
{
    char id[24], pid[24];
    snprintf(id, sizeof id, "%lld", (long long)ctx->job_id);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    const char *p[4] = {ctx->hash, id, pid, deps_ok};
    if (!exec_param(ctx->conn,
                    "INSERT INTO queue_test_execs (job_hash, job_id, pid, deps_ok)"
                    " VALUES ($1, $2::bigint, $3::integer, $4::boolean)",
                    4, p))
        return -1;
    PGresult *res = PQexecParams(ctx->conn,
                                 "SELECT count(*) FROM queue_test_execs WHERE job_hash = $1", 1,
                                 NULL, p, NULL, NULL, 0);
    long n = PQresultStatus(res) == PGRES_TUPLES_OK ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return n;
}

/* Sleeps ms in 20 ms steps, reporting progress; false when told to stop. */
static bool busy_sleep(job_ctx *ctx, long ms)
{
    for (long t = 0; t < ms; t += 20) {
        if (ctx->should_stop(ctx->stop_arg))
            return false;
        ctx->progress(ctx->progress_arg, (double)t / (double)ms, "sleeping");
        sleep_ms(20);
    }
    return true;
}

static int run_test_job(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                        bool *permanent, const char *deps_ok)
{
    long n = record_exec(ctx, deps_ok);
    if (n < 0) {
        *err = xstrdup("cannot record the execution");
        return -1;
    }
    long ms = (long)json_integer_value(json_object_get(payload, "sleep_ms"));
    /* The victim runs long the first time (it is killed then), briefly after. */
    if (json_is_true(json_object_get(payload, "victim")))
        ms = n == 1 ? 60000 : 100;
    if (json_is_true(json_object_get(payload, "fail"))) {
        *err = xstrdup("told to fail");
        *permanent = true;
        return -1;
    }
    if (!busy_sleep(ctx, ms)) {
        *err = xstrdup("stopped");
        return -1;
    }
    *result = json_pack("{s:i, s:I}", "slept_ms", (int)ms, "pid", (json_int_t)getpid());
    return 0;
}

static int run_embed(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                     bool *permanent)
{
    return run_test_job(ctx, payload, result, err, permanent, "true");
}

static int run_proxy(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                     bool *permanent)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)ctx->job_id);
    const char *p[1] = {id};
    PGresult *res = PQexecParams(ctx->conn,
                                 "SELECT count(*) = 0 FROM job_deps d JOIN jobs j"
                                 " ON j.id = d.depends_on"
                                 " WHERE d.job_id = $1::bigint AND j.status <> 'done'",
                                 1, NULL, p, NULL, NULL, 0);
    const char *ok = PQresultStatus(res) == PGRES_TUPLES_OK &&
                             strcmp(PQgetvalue(res, 0, 0), "t") == 0
                         ? "true"
                         : "false";
    PQclear(res);
    return run_test_job(ctx, payload, result, err, permanent, ok);
}

static int store_test(PGconn *c, const job_ctx *ctx, const json_t *payload,
                      const json_t *result, char **err)
{
    (void)payload;
    (void)result;
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    const char *p[2] = {ctx->hash, pid};
    PGresult *res = PQexecParams(c,
                                 "INSERT INTO queue_test_runs (job_hash, pid) VALUES ($1, $2::integer)",
                                 2, NULL, p, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        *err = xasprintf("store: %s", PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

static const job_runner test_embed = {"embed", run_embed, store_test};
static const job_runner test_proxy = {"proxy", run_proxy, store_test};
static const job_runner *const test_runners[] = {&test_embed, &test_proxy};

static atomic_int child_stop;

static void child_on_term(int sig)
{
    (void)sig;
    atomic_store(&child_stop, 1);
}

/* Forks a worker process; it exits with worker_run's status. */
static pid_t start_worker(const char *id, int slots, bool exit_when_idle)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* The child: never touch the parent's connection (PQfinish would end its session). */
    struct sigaction sa = {0};
    sa.sa_handler = child_on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    char *dir = xasprintf("%s/features", scratch);
    worker_opts o = {
        .conninfo = pg_embedded_conninfo(pg),
        .data_dir = dir,
        .slots = slots,
        .lease_seconds = LEASE_SECONDS,
        .runners = test_runners,
        .nrunners = 2,
        .worker_id = id,
        .exit_when_idle = exit_when_idle,
        .stop = &child_stop,
        .idle_poll_ms = 300,
    };
    int rc = worker_run(&o);
    free(dir);
    /* exit, not _exit: the sanitizer build checks the child for leaks (stdout was flushed
     * before fork, and nothing registered with atexit touches the parent's resources). */
    exit(rc);
}

/* Waits for pid up to timeout_s; its wait status, or -1 (then it is killed). */
static int wait_child(pid_t pid, double timeout_s)
{
    double end = now_s() + timeout_s;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        if (now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(50);
    }
}

/* ---- 1. many workers, one killed ---------------------------------------------------------- */

static void many_workers_test(void)
{
    int64_t embed_ids[32];
    for (int i = 0; i < 32; i++)
        embed_ids[i] = submit("embed", json_pack("{s:i, s:i}", "i", i, "sleep_ms", 50 + 37 * (i % 7)),
                              NULL, 0);
    for (int i = 0; i < 8; i++)
        submit("proxy", json_pack("{s:i, s:i}", "i", i, "sleep_ms", 80), &embed_ids[4 * i], 4);
    int64_t victim = submit("embed", json_pack("{s:b, s:i}", "victim", 1, "sleep_ms", 0), NULL, 0);
    check(sql_long("SELECT count(*) FROM jobs WHERE status = 'queued'") == 41,
          "41 jobs queued (32 embed, 8 proxy depending on 4 embeds each, 1 victim)");

    double t0 = now_s();
    pid_t pids[NWORKERS];
    for (int i = 0; i < NWORKERS; i++) {
        char id[16];
        snprintf(id, sizeof id, "w%d", i);
        pids[i] = start_worker(id, 2, true);
    }
    /* Find the worker that runs the victim and kill it mid-job. */
    char *owner = NULL;
    double end = now_s() + 20;
    while (now_s() < end) {
        owner = sql_value("SELECT coalesce((SELECT lease_owner FROM jobs WHERE id = %lld "
                          "AND status = 'running'), '')",
                          (long long)victim);
        if (*owner)
            break;
        free(owner);
        owner = NULL;
        sleep_ms(50);
    }
    int killed = -1;
    if (check(owner != NULL && owner[0] == 'w', "the victim job is claimed by a worker (%s)",
              owner ? owner : "none")) {
        killed = atoi(owner + 1);
        sleep_ms(300);
        kill(pids[killed], SIGKILL);
        int st = wait_child(pids[killed], 10);
        check(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "worker w%d is killed with SIGKILL while it runs the victim", killed);
    }
    free(owner);
    bool all_exit_ok = true;
    for (int i = 0; i < NWORKERS; i++) {
        if (i == killed)
            continue;
        int st = wait_child(pids[i], 45);
        if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            all_exit_ok = false;
            diag("worker w%d: wait status %d", i, st);
        }
    }
    double secs = now_s() - t0;
    check(all_exit_ok, "the other workers exit 0 once nothing is left (%.1f s)", secs);
    check(sql_long("SELECT count(*) FROM jobs WHERE status = 'done'") == 41,
          "every job is done");
    char *bad = sql_value("SELECT coalesce(string_agg(id || ':' || status || ':' || "
                          "coalesce(error, ''), ', '), '') FROM jobs WHERE status <> 'done'");
    if (*bad)
        diag("not done: %s", bad);
    free(bad);
    check(sql_long("SELECT count(*) FROM queue_test_runs") == 41 &&
              sql_long("SELECT count(*) FROM jobs j JOIN queue_test_runs r ON r.job_hash = "
                       "j.hash") == 41,
          "every result is stored exactly once");
    /* The killed process's other slot may have been running a job too: that one ran twice as
     * well, legitimately. Any other double execution is a bug. */
    long killed_pid = killed >= 0 ? (long)pids[killed] : 0;
    check(sql_long("SELECT count(*) FROM (SELECT job_hash FROM queue_test_execs "
                   "GROUP BY job_hash HAVING count(*) <> 1 AND NOT bool_or(pid = %ld)) x",
                   killed_pid) == 0 &&
              sql_long("SELECT count(DISTINCT job_hash) FROM queue_test_execs") == 41,
          "every job ran, and none twice but those the killed worker was running");
    check(sql_long("SELECT count(*) FROM jobs WHERE attempts > 1 AND hash NOT IN "
                   "(SELECT job_hash FROM queue_test_execs WHERE pid = %ld)",
                   killed_pid) == 0,
          "no other job needed a second attempt");
    check(sql_long("SELECT count(*) FROM queue_test_execs e JOIN jobs j ON j.hash = e.job_hash "
                   "WHERE j.id = %lld",
                   (long long)victim) == 2 &&
              sql_long("SELECT count(DISTINCT pid) FROM queue_test_execs e JOIN jobs j "
                       "ON j.hash = e.job_hash WHERE j.id = %lld",
                       (long long)victim) == 2,
          "the victim ran twice, in two different processes");
    check(sql_long("SELECT attempts FROM jobs WHERE id = %lld", (long long)victim) == 2 &&
              sql_long("SELECT count(*) FROM jobs WHERE id = %lld AND lease_owner LIKE 'w%d:%%'",
                       (long long)victim, killed) == 0,
          "the victim was re-queued by a reaper and completed by another worker (attempt 2)");
    check(sql_long("SELECT count(*) FROM queue_test_runs r JOIN jobs j ON j.hash = r.job_hash "
                   "WHERE (j.result->>'pid')::integer <> r.pid") == 0,
          "each result was stored by the process that computed it");
    check(sql_long("SELECT count(*) FROM queue_test_execs WHERE NOT deps_ok") == 0,
          "no proxy job ran before its dependencies were done");
    long workers_used = sql_long("SELECT count(DISTINCT pid) FROM queue_test_runs");
    check(workers_used >= 2, "the work was shared (%ld processes stored results)", workers_used);
    check(secs < 40, "done in bounded time (%.1f s)", secs);
}

/* ---- 2. PostgreSQL restart ---------------------------------------------------------------- */

static void restart_test(void)
{
    pid_t w = start_worker("restart", 2, false);
    int64_t a = submit("embed", json_pack("{s:s, s:i}", "phase", "before", "sleep_ms", 10), NULL, 0);
    long n = wait_count(1, 10, "SELECT count(*) FROM jobs WHERE status = 'done' AND "
                               "payload->>'phase' = 'before'");
    check(n == 1, "a long-running worker completes a job (job %lld)", (long long)a);

    /* Stop the postmaster (fast shutdown), then start it again. */
    long pmpid = pg_embedded_pid(pg);
    kill((pid_t)pmpid, SIGINT);
    double end = now_s() + 20;
    while (pg_embedded_alive(pg) && now_s() < end)
        sleep_ms(100);
    check(!pg_embedded_alive(pg), "PostgreSQL is stopped under the worker");
    sleep_ms(1500); /* the worker notices and backs off */
    char *err = NULL;
    bool up = check(pg_embedded_restart(pg, &err) == 0, "PostgreSQL starts again");
    if (!up) {
        diag("%s", err ? err : "?");
        free(err);
    }
    PQreset(conn);
    sql_exec("SET client_min_messages = warning");
    for (int i = 0; i < 3; i++)
        submit("embed", json_pack("{s:s, s:i, s:i}", "phase", "after", "i", i, "sleep_ms", 10),
               NULL, 0);
    n = wait_count(3, 25, "SELECT count(*) FROM jobs WHERE status = 'done' AND "
                          "payload->>'phase' = 'after'");
    check(n == 3, "the same worker process completes jobs submitted after the restart (%ld of 3)",
          n);
    kill(w, SIGTERM);
    int st = wait_child(w, 15);
    check(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "it stops on SIGTERM with status 0");
}

/* ---- 3 and 4. cancel and SIGTERM mid-job -------------------------------------------------- */

static void stop_tests(void)
{
    pid_t w = start_worker("stopper", 1, false);
    int64_t a = submit("embed", json_pack("{s:s, s:i}", "phase", "cancel", "sleep_ms", 60000), NULL,
                       0);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %lld AND status = 'running'",
             (long long)a);
    check(wait_count(1, 10, sql) == 1, "a long job is running");
    /* The heartbeat publishes progress. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %lld AND progress > 0 "
                              "AND progress_note = 'sleeping'",
             (long long)a);
    check(wait_count(1, 5, sql) == 1, "its progress is published by the heartbeat");
    char *err = NULL;
    check(queue_cancel(conn, a, &err) == 1, "CANCEL of the running job");
    free(err);
    err = NULL;
    /* The worker sees it at its next heartbeat, stops the job and is free for the next. */
    int64_t b = submit("embed", json_pack("{s:s, s:i}", "phase", "after-cancel", "sleep_ms", 10),
                       NULL, 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %lld AND status = 'done'",
             (long long)b);
    check(wait_count(1, 10, sql) == 1,
          "the single-slot worker stops the cancelled job and runs the next one");
    check(sql_long("SELECT count(*) FROM jobs j JOIN queue_test_runs r ON r.job_hash = j.hash "
                   "WHERE j.id = %lld",
                   (long long)a) == 0 &&
              sql_long("SELECT count(*) FROM jobs WHERE id = %lld AND status = 'cancelled'",
                       (long long)a) == 1,
          "the cancelled job stays cancelled and stores nothing");

    int64_t c = submit("embed", json_pack("{s:s, s:i}", "phase", "sigterm", "sleep_ms", 60000), NULL,
                       0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %lld AND status = 'running'",
             (long long)c);
    check(wait_count(1, 10, sql) == 1, "another long job is running");
    double t0 = now_s();
    kill(w, SIGTERM);
    int st = wait_child(w, 15);
    check(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && now_s() - t0 < 5,
          "SIGTERM mid-job: the worker exits 0 promptly (%.1f s)", now_s() - t0);
    check(sql_long("SELECT count(*) FROM jobs WHERE id = %lld AND status = 'queued' "
                   "AND attempts = 0 AND lease_owner IS NULL",
                   (long long)c) == 1,
          "its job is given back: queued, attempt not counted");
    queue_cancel(conn, c, &err);
    free(err);
}

/* ---- 5. the program ----------------------------------------------------------------------- */

static void program_test(const char *bin)
{
    char *dir = xasprintf("%s/features", scratch);
    int64_t a = submit("embed", json_pack("{s:s}", "phase", "program-noop"), NULL, 0);
    /* A job kind with no runner in a real worker: --kinds proxy leaves it alone, and --once
     * exits because no proxy job is pending. */
    pid_t pid = fork();
    if (pid == 0) {
        execl(bin, bin, "--db", pg_embedded_conninfo(pg), "--data-dir", dir, "--once",
              "--kinds", "proxy", "--slots", "2", "--lease", "5", "--worker-id", "prog",
              (char *)NULL);
        _exit(127);
    }
    int st = wait_child(pid, 20);
    check(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "rankql-worker --once --kinds proxy exits 0 when no proxy job is pending");
    check(sql_long("SELECT count(*) FROM jobs WHERE id = %lld AND status = 'queued'",
                   (long long)a) == 1,
          "and leaves the embed job alone");
    free(dir);
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: itest_queue SCRATCH_DIR [RANKQL_WORKER_BINARY]\n");
        return 2;
    }
    scratch = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    char *data = xasprintf("%s/data", scratch), *features = xasprintf("%s/features", scratch);
    char *err = NULL;
    mkdir(features, 0755);
    pg_embedded_opts opts = {.data_dir = data, .no_sync = true};
    pg = pg_embedded_start(&opts, &err);
    if (!check(pg != NULL, "embedded PostgreSQL starts")) {
        diag("%s", err ? err : "?");
        free(err);
        return 1;
    }
    conn = PQconnectdb(pg_embedded_conninfo(pg));
    int applied = 0;
    bool ready = check(PQstatus(conn) == CONNECTION_OK, "connects") &&
                 check(db_migrate(conn, &applied, &err) == 0, "migrations apply") &&
                 sql_exec("SET client_min_messages = warning") &&
                 check(sql_exec("CREATE TABLE queue_test_runs (job_hash text PRIMARY KEY, "
                                "pid integer NOT NULL)") &&
                           sql_exec("CREATE TABLE queue_test_execs (job_hash text NOT NULL, "
                                    "job_id bigint, pid integer, deps_ok boolean)"),
                       "test tables");
    if (err) {
        diag("%s", err);
        free(err);
        err = NULL;
    }
    if (ready) {
        many_workers_test();
        restart_test();
        stop_tests();
        if (argc == 3)
            program_test(argv[2]);
    }
    PQfinish(conn);
    if (pg_embedded_stop(pg, &err) != 0) {
        check(false, "embedded PostgreSQL stops");
        diag("%s", err ? err : "?");
        free(err);
    }
    free(data);
    free(features);
    printf("# %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
