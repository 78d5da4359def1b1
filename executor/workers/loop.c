/* The worker loop (loop.h): slots that claim and run jobs, and one housekeeping thread for
 * heartbeats, progress and reaping. */
#include "executor/workers/loop.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/util.h"
#include "db/pqutil.h"
#include "queue/queue.h"

/* In libopenblas (every program links it); declared here so this file needs no cblas.h. */
extern void openblas_set_num_threads(int num_threads);

#define IDLE_POLL_MS_DEFAULT 5000
#define RECONNECT_MIN_MS 500
#define RECONNECT_MAX_MS 10000
#define NOTE_MAX 256

const char *const worker_known_kinds[] = {"embed",    "proxy",      "finetune",
                                          "strategy", "similarity", "sh",
                                          "check",    NULL};

typedef struct worker worker;

typedef struct slot {
    worker *w;
    int index;
    char id[320];
    PGconn *conn;
    int backoff_ms;
    pthread_t thread;
    /* What the housekeeping thread reads: the running job and its latest progress. */
    pthread_mutex_t mu;
    bool busy;
    int64_t job_id;
    double progress;
    char note[NOTE_MAX];
    bool note_set;
    atomic_bool lost; /* cancelled or lease taken: should_stop() */
} slot;

struct worker {
    const worker_opts *o;
    char prefix[256];
    const char *kinds[16];
    size_t nkinds;
    int lease;
    int poll_ms;
    slot *slots;
    int nslots;
    atomic_bool quit;      /* the slots are done: housekeeping ends */
    atomic_int self_stop; /* set when start-up failed half-way */
    pthread_mutex_t stats_mu;
    worker_stats stats;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static void wlog(const worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wlog(const worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf sb = {0};
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    if (w->o->log)
        w->o->log(sb.data);
    else
        fprintf(stderr, "rankql-worker: %s\n", sb.data);
    strbuf_free(&sb);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool stopping(const worker *w)
{
    return atomic_load(&w->self_stop) != 0 || (w->o->stop && atomic_load(w->o->stop) != 0);
}

/* Sleeps ms, in short steps so that a stop is noticed; false when stopped meanwhile. */
static bool nap(const worker *w, int ms, bool for_housekeeping)
{
    while (ms > 0) {
        if (for_housekeeping ? atomic_load(&w->quit) : stopping(w))
            return false;
        int step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return true;
}

static void count(worker *w, long *field, long n)
{
    pthread_mutex_lock(&w->stats_mu);
    *field += n;
    pthread_mutex_unlock(&w->stats_mu);
}

static const job_runner *find_runner(const worker *w, const char *kind)
{
    if (!w->o->runners)
        return job_runner_find(kind);
    for (size_t i = 0; i < w->o->nrunners; i++)
        if (w->o->runners[i] && strcmp(w->o->runners[i]->kind, kind) == 0)
            return w->o->runners[i];
    return NULL;
}

static char *conn_error(PGconn *conn)
{
    return pq_one_line(conn ? PQerrorMessage(conn) : "out of memory");
}

/* Server messages outside a query (NOTICEs, the FATAL of a shutdown): one log line each. */
static void on_notice(void *arg, const char *message)
{
    char *line = pq_one_line(message);
    wlog(arg, "database: %s", line);
    free(line);
}

static PGconn *connect_db(const worker *w)
{
    /* application_name first, so the caller's conninfo may override it. */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "rankql-worker", w->o->conninfo, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

/* Makes sure *conn is usable (connecting or resetting it, then LISTEN when listen is set).
 * On failure logs (once per outage), sleeps the back-off and returns false. */
static bool ensure_conn(worker *w, PGconn **conn, int *backoff_ms, bool listen, const char *who,
                        bool for_housekeeping)
{
    if (*conn && PQstatus(*conn) == CONNECTION_OK)
        return true;
    bool was_down = *backoff_ms > 0;
    if (*conn)
        PQreset(*conn);
    else
        *conn = connect_db(w);
    if (*conn)
        PQsetNoticeProcessor(*conn, on_notice, w);
    if (PQstatus(*conn) == CONNECTION_OK && listen) {
        PGresult *res = PQexec(*conn, "LISTEN rankql_jobs_queued");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            PQclear(res);
            char *e = conn_error(*conn);
            wlog(w, "%s: LISTEN failed: %s", who, e);
            free(e);
            PQfinish(*conn);
            *conn = NULL;
            goto down;
        }
        PQclear(res);
    }
    if (*conn && PQstatus(*conn) == CONNECTION_OK) {
        if (was_down)
            wlog(w, "%s: reconnected to the database", who);
        *backoff_ms = 0;
        return true;
    }
    if (!was_down) {
        char *e = conn_error(*conn);
        wlog(w, "%s: database connection lost: %s (retrying)", who, e);
        free(e);
    }
down:
    *backoff_ms = *backoff_ms ? *backoff_ms * 2 : RECONNECT_MIN_MS;
    if (*backoff_ms > RECONNECT_MAX_MS)
        *backoff_ms = RECONNECT_MAX_MS;
    nap(w, *backoff_ms, for_housekeeping);
    return false;
}

/* ---- job callbacks ------------------------------------------------------------------------ */

static void on_progress(void *arg, double fraction, const char *note)
{
    slot *s = arg;
    pthread_mutex_lock(&s->mu);
    s->progress = fraction;
    if (note) {
        snprintf(s->note, sizeof s->note, "%s", note);
        s->note_set = true;
    }
    pthread_mutex_unlock(&s->mu);
}

static bool on_should_stop(void *arg)
{
    slot *s = arg;
    return atomic_load(&s->lost) || stopping(s->w);
}

typedef struct store_arg {
    const job_runner *runner;
    const job_ctx *ctx;
    const json_t *payload;
    const json_t *result;
} store_arg;

static int store_cb(PGconn *conn, void *arg, char **err)
{
    store_arg *a = arg;
    if (!a->runner->store)
        return 0;
    return a->runner->store(conn, a->ctx, a->payload, a->result, err);
}

/* ---- one job ------------------------------------------------------------------------------ */

/* After an operation failed: when the connection broke, reconnect (for at most the lease,
 * after which the job is not ours any more anyway) and say whether to try again. */
static bool retry_after_reconnect(slot *s, double deadline)
{
    if (PQstatus(s->conn) == CONNECTION_OK)
        return false;
    while (now_s() < deadline && !stopping(s->w))
        if (ensure_conn(s->w, &s->conn, &s->backoff_ms, true, s->id, false))
            return true;
    return false;
}

static void run_job(slot *s, queue_job *job)
{
    worker *w = s->w;
    double t0 = now_s();
    count(w, &w->stats.claimed, 1);
    wlog(w, "%s: claimed job %lld (%s, attempt %d of %d)", s->id, (long long)job->id, job->kind,
         job->attempts, job->max_attempts);
    const job_runner *runner = find_runner(w, job->kind);
    char *err = NULL;
    if (!runner) {
        char *msg = xasprintf("no runner for job kind '%s' in this worker", job->kind);
        if (queue_fail(s->conn, job, s->id, msg, true, &err) < 0)
            wlog(w, "%s: job %lld: cannot record its failure: %s", s->id, (long long)job->id, err);
        wlog(w, "%s: job %lld failed after 0.0 s (permanent): %s", s->id, (long long)job->id, msg);
        count(w, &w->stats.failed, 1);
        free(msg);
        free(err);
        return;
    }

    pthread_mutex_lock(&s->mu);
    s->busy = true;
    s->job_id = job->id;
    s->progress = 0;
    s->note_set = false;
    atomic_store(&s->lost, false);
    pthread_mutex_unlock(&s->mu);

    job_ctx ctx = {
        .data_dir = w->o->data_dir,
        .job_id = job->id,
        .hash = job->hash,
        .conn = s->conn,
        .progress = on_progress,
        .progress_arg = s,
        .should_stop = on_should_stop,
        .stop_arg = s,
    };
    json_t *result = NULL;
    bool permanent = false;
    int rc = runner->run(&ctx, job->payload, &result, &err, &permanent);
    double deadline = now_s() + w->lease;

    if (rc == 0) {
        if (!result)
            result = json_object();
        store_arg sa = {runner, &ctx, job->payload, result};
        int c;
        for (;;) {
            ctx.conn = s->conn; /* store() gets the connection; a reconnect keeps the pointer */
            free(err);
            err = NULL;
            c = queue_complete(s->conn, job, s->id, result, store_cb,
                               &sa, &err);
            if (c >= 0 || !retry_after_reconnect(s, deadline))
                break;
        }
        double secs = now_s() - t0;
        if (c == 1) {
            count(w, &w->stats.done, 1);
            wlog(w, "%s: job %lld done in %.1f s", s->id, (long long)job->id, secs);
        } else if (c == 0) {
            count(w, &w->stats.discarded, 1);
            wlog(w, "%s: job %lld finished in %.1f s but was cancelled or its lease lost: "
                    "result discarded",
                 s->id, (long long)job->id, secs);
        } else {
            char *msg = xasprintf("storing the result failed: %s", err ? err : "?");
            char *ferr = NULL;
            int f = queue_fail(s->conn, job, s->id, msg, false, &ferr);
            count(w, &w->stats.failed, 1);
            wlog(w, "%s: job %lld failed after %.1f s (%s): %s", s->id, (long long)job->id, secs,
                 f < 0 ? "left to lease expiry" : "will retry", msg);
            free(msg);
            free(ferr);
        }
    } else {
        const char *msg = err && *err ? err : "the job failed (no message)";
        double secs = now_s() - t0;
        if (atomic_load(&s->lost)) {
            count(w, &w->stats.discarded, 1);
            wlog(w, "%s: job %lld stopped after %.1f s: cancelled or lease lost", s->id,
                 (long long)job->id, secs);
        } else if (stopping(w) && !permanent) {
            char *rerr = NULL;
            int r = queue_release(s->conn, job, s->id, &rerr);
            count(w, &w->stats.released, 1);
            wlog(w, "%s: job %lld given back after %.1f s: the worker is stopping%s%s", s->id,
                 (long long)job->id, secs, r < 0 ? " (left to lease expiry: " : "",
                 r < 0 ? (rerr ? rerr : "?") : "");
            free(rerr);
        } else {
            char *ferr = NULL;
            int f;
            for (;;) {
                f = queue_fail(s->conn, job, s->id, msg, permanent, &ferr);
                if (f >= 0 || !retry_after_reconnect(s, deadline))
                    break;
            }
            count(w, &w->stats.failed, 1);
            const char *what = f < 0                                  ? "left to lease expiry"
                               : f == 0                               ? "no longer ours"
                               : permanent                            ? "permanent"
                               : job->attempts >= job->max_attempts ? "no attempts left"
                                                                      : "will retry";
            wlog(w, "%s: job %lld failed after %.1f s (%s): %s", s->id, (long long)job->id, secs,
                 what, msg);
            if (f < 0)
                wlog(w, "%s: job %lld: cannot record its failure: %s", s->id,
                     (long long)job->id, ferr ? ferr : "?");
            free(ferr);
        }
    }
    json_decref(result);
    free(err);

    pthread_mutex_lock(&s->mu);
    s->busy = false;
    pthread_mutex_unlock(&s->mu);
}

/* ---- idle wait ---------------------------------------------------------------------------- */

/* Drains notifications already read; true if there was one. */
static bool drain_notifies(PGconn *conn)
{
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

/* Waits up to ms for a notification on the slot's connection (or a stop). */
static void wait_for_work(slot *s, int ms)
{
    if (!PQconsumeInput(s->conn) || drain_notifies(s->conn))
        return;
    int sock = PQsocket(s->conn);
    if (sock < 0) {
        nap(s->w, ms, false);
        return;
    }
    double end = now_s() + ms / 1000.0;
    while (!stopping(s->w)) {
        double left = end - now_s();
        if (left <= 0)
            return;
        int step = left > 0.25 ? 250 : (int)(left * 1000) + 1;
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        int r = poll(&pfd, 1, step);
        if (r < 0 && errno != EINTR)
            return;
        if (r > 0) {
            /* A failed read means the connection broke: the next claim sees it. */
            if (!PQconsumeInput(s->conn) || drain_notifies(s->conn))
                return;
            if (PQstatus(s->conn) != CONNECTION_OK)
                return;
        }
    }
}

/* ---- threads ------------------------------------------------------------------------------ */

static void *slot_main(void *arg)
{
    slot *s = arg;
    worker *w = s->w;
    while (!stopping(w)) {
        if (!ensure_conn(w, &s->conn, &s->backoff_ms, true, s->id, false))
            continue;
        queue_job job;
        char *err = NULL;
        int rc = queue_claim(s->conn, s->id, w->kinds, w->nkinds, w->lease, &job, &err);
        if (rc < 0) {
            if (PQstatus(s->conn) == CONNECTION_OK) {
                wlog(w, "%s: claiming a job failed: %s", s->id, err ? err : "?");
                nap(w, 1000, false);
            }
            free(err);
            continue;
        }
        if (rc == 1) {
            run_job(s, &job);
            queue_job_clear(&job);
            continue;
        }
        if (w->o->exit_when_idle) {
            int64_t pending = 1;
            if (queue_pending(s->conn, w->kinds, w->nkinds, &pending, &err) < 0) {
                free(err);
                err = NULL;
            } else if (pending == 0) {
                break;
            }
        }
        wait_for_work(s, w->poll_ms);
    }
    PQfinish(s->conn);
    s->conn = NULL;
    return NULL;
}

/* Heartbeats for every running job, then reaps expired leases; every lease/3 seconds. */
static void *housekeeping_main(void *arg)
{
    worker *w = arg;
    PGconn *conn = NULL;
    int backoff = 0;
    int tick_ms = w->lease * 1000 / 3;
    if (tick_ms < 200)
        tick_ms = 200;
    const char *who = "heartbeat";
    while (!atomic_load(&w->quit)) {
        if (!ensure_conn(w, &conn, &backoff, false, who, true))
            continue;
        for (int i = 0; i < w->nslots; i++) {
            slot *s = &w->slots[i];
            pthread_mutex_lock(&s->mu);
            bool busy = s->busy;
            int64_t id = s->job_id;
            double progress = s->progress;
            char note[NOTE_MAX];
            bool note_set = s->note_set;
            snprintf(note, sizeof note, "%s", s->note);
            pthread_mutex_unlock(&s->mu);
            if (!busy)
                continue;
            bool ours = true;
            char *err = NULL;
            if (queue_heartbeat(conn, id, s->id, w->lease, progress, note_set ? note : NULL,
                                &ours, &err) < 0) {
                if (PQstatus(conn) == CONNECTION_OK)
                    wlog(w, "%s: heartbeat of job %lld failed: %s", s->id, (long long)id,
                         err ? err : "?");
                free(err);
                continue;
            }
            if (!ours) {
                pthread_mutex_lock(&s->mu);
                if (s->busy && s->job_id == id && !atomic_load(&s->lost)) {
                    atomic_store(&s->lost, true);
                    wlog(w, "%s: job %lld was cancelled or its lease taken: stopping it", s->id,
                         (long long)id);
                }
                pthread_mutex_unlock(&s->mu);
            }
        }
        int requeued = 0, failed = 0;
        char *err = NULL;
        if (queue_reap(conn, &requeued, &failed, &err) < 0) {
            if (PQstatus(conn) == CONNECTION_OK)
                wlog(w, "reaping expired leases failed: %s", err ? err : "?");
            free(err);
        } else if (requeued + failed > 0) {
            count(w, &w->stats.reaped, requeued + failed);
            wlog(w, "reaper: %d job(s) with an expired lease re-queued, %d failed (no attempts "
                    "left)",
                 requeued, failed);
        }
        nap(w, tick_ms, true);
    }
    PQfinish(conn);
    return NULL;
}

/* ---- worker_run --------------------------------------------------------------------------- */

static bool known_kind(const char *kind)
{
    for (int i = 0; worker_known_kinds[i]; i++)
        if (strcmp(worker_known_kinds[i], kind) == 0)
            return true;
    return false;
}

int worker_run(const worker_opts *opts)
{
    worker w = {.o = opts};
    pthread_mutex_init(&w.stats_mu, NULL);
    if (!opts->conninfo || !*opts->conninfo || !opts->data_dir || !*opts->data_dir) {
        wlog(&w, "a database (conninfo) and a data directory are required");
        return 1;
    }
    /* Kinds: as asked, each with a runner; else every known kind that has one. */
    if (opts->nkinds > 0) {
        for (size_t i = 0; i < opts->nkinds; i++) {
            const char *k = opts->kinds[i];
            if (!k || !known_kind(k)) {
                wlog(&w, "unknown job kind '%s'", k ? k : "");
                return 1;
            }
            if (!find_runner(&w, k)) {
                wlog(&w, "no runner for job kind '%s' in this worker", k);
                return 1;
            }
            if (w.nkinds < sizeof w.kinds / sizeof w.kinds[0])
                w.kinds[w.nkinds++] = k;
        }
    } else {
        for (int i = 0; worker_known_kinds[i]; i++)
            if (find_runner(&w, worker_known_kinds[i]))
                w.kinds[w.nkinds++] = worker_known_kinds[i];
        if (w.nkinds == 0) {
            wlog(&w, "no job runners: nothing to do");
            return 1;
        }
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    w.nslots = opts->slots > 0 ? opts->slots : (int)ncpu;
    w.lease = opts->lease_seconds > 0 ? opts->lease_seconds : QUEUE_DEFAULT_LEASE_SECONDS;
    w.poll_ms = opts->idle_poll_ms > 0 ? opts->idle_poll_ms : IDLE_POLL_MS_DEFAULT;
    if (opts->worker_id && *opts->worker_id) {
        snprintf(w.prefix, sizeof w.prefix, "%s", opts->worker_id);
    } else {
        char host[200] = "localhost";
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
        snprintf(w.prefix, sizeof w.prefix, "%s:%ld", host, (long)getpid());
    }
    /* The slots share the cores: OpenBLAS in each job gets its share. */
    int blas = (int)(ncpu / w.nslots);
    openblas_set_num_threads(blas > 0 ? blas : 1);

    /* Fail at start-up on a database we cannot reach (later outages are waited out). */
    PGconn *probe = connect_db(&w);
    if (PQstatus(probe) != CONNECTION_OK) {
        char *e = conn_error(probe);
        wlog(&w, "cannot connect to the database: %s", e);
        free(e);
        PQfinish(probe);
        return 1;
    }
    PQfinish(probe);

    w.slots = xcalloc((size_t)w.nslots, sizeof *w.slots);
    for (int i = 0; i < w.nslots; i++) {
        slot *s = &w.slots[i];
        s->w = &w;
        s->index = i;
        snprintf(s->id, sizeof s->id, "%s:%d", w.prefix, i);
        pthread_mutex_init(&s->mu, NULL);
        atomic_init(&s->lost, false);
    }
    atomic_init(&w.quit, false);
    atomic_init(&w.self_stop, 0);

    /* The threads leave SIGINT/SIGTERM to the caller's thread (its handler sets *stop). */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    pthread_t hk;
    int started = 0;
    bool hk_ok = pthread_create(&hk, NULL, housekeeping_main, &w) == 0;
    for (int i = 0; hk_ok && i < w.nslots; i++) {
        if (pthread_create(&w.slots[i].thread, NULL, slot_main, &w.slots[i]) != 0)
            break;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    int rc = 0;
    if (!hk_ok || started < w.nslots) {
        wlog(&w, "cannot start threads: %s", strerror(errno));
        rc = 1;
        atomic_store(&w.self_stop, 1);
    }
    for (int i = 0; i < started; i++)
        pthread_join(w.slots[i].thread, NULL);
    atomic_store(&w.quit, true);
    if (hk_ok)
        pthread_join(hk, NULL);
    for (int i = 0; i < w.nslots; i++)
        pthread_mutex_destroy(&w.slots[i].mu);
    free(w.slots);
    if (opts->stats)
        *opts->stats = w.stats;
    pthread_mutex_destroy(&w.stats_mu);
    return rc;
}
