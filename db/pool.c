/* The libpq connection pool (db/pool.h): a fixed array of slots under one mutex, a condition
 * variable for threads waiting for a free slot, and (re)connection outside the lock. */
#include "db/pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "db/pqutil.h"

typedef struct slot {
    PGconn *conn; /* NULL until connected */
    bool busy;
} slot;

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    char *conninfo;
    int size;
    int busy;
    int statement_timeout_ms;
    int connect_timeout_s;
    unsigned long long waits, resets;
    slot *slots;
};

static void set_why(char *why, size_t whysize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whysize, const char *fmt, ...)
{
    if (!why || whysize == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whysize, fmt, ap);
    va_end(ap);
}

static void set_why_conn(char *why, size_t whysize, const char *what, PGconn *conn)
{
    char *line = pq_one_line(conn ? PQerrorMessage(conn) : "out of memory");
    set_why(why, whysize, "%s: %s", what, line);
    free(line);
}

/* The per-connection settings, after every (re)connect. */
static int apply_settings(db_pool *p, PGconn *conn, char *why, size_t whysize)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d",
             p->statement_timeout_ms, p->statement_timeout_ms);
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        char *line = pq_one_line(PQresultErrorMessage(res));
        set_why(why, whysize, "setting up a database connection failed: %s", line);
        free(line);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

static PGconn *connect_new(db_pool *p, char *why, size_t whysize)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", p->connect_timeout_s);
    /* dbname last and expanded: whatever the conninfo itself sets wins. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *const values[] = {timeout, "rankqld", p->conninfo, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        set_why_conn(why, whysize, "cannot connect to the database", conn);
        PQfinish(conn);
        return NULL;
    }
    if (apply_settings(p, conn, why, whysize) != 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static int reconnect(db_pool *p, slot *s, char *why, size_t whysize)
{
    pthread_mutex_lock(&p->lock);
    p->resets++;
    pthread_mutex_unlock(&p->lock);
    if (!s->conn) {
        s->conn = connect_new(p, why, whysize);
        return s->conn ? 0 : -1;
    }
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        set_why_conn(why, whysize, "cannot reconnect to the database", s->conn);
        return -1;
    }
    return apply_settings(p, s->conn, why, whysize);
}

db_pool *db_pool_open(const db_pool_opts *opts, char **err)
{
    db_pool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &attr);
    pthread_condattr_destroy(&attr);
    p->conninfo = xstrdup(opts->conninfo);
    p->size = opts->size > 0 ? opts->size : 1;
    p->statement_timeout_ms = opts->statement_timeout_ms > 0 ? opts->statement_timeout_ms : 0;
    p->connect_timeout_s = opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 10;
    p->slots = xcalloc((size_t)p->size, sizeof *p->slots);
    char why[512];
    for (int i = 0; i < p->size; i++) {
        p->slots[i].conn = connect_new(p, why, sizeof why);
        if (!p->slots[i].conn && i == 0) {
            *err = xstrdup(why);
            db_pool_close(p);
            return NULL;
        }
    }
    return p;
}

/* Usable as it is? A connection the server closed while it sat idle in the pool (restart,
 * pg_terminate_backend, idle timeout) has its end of file, or a FATAL message, waiting on the
 * socket: reading it costs no round trip and turns PQstatus bad. */
static bool looks_alive(PGconn *conn)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
        return false;
    /* A terminated backend sends its FATAL message, then closes: read until nothing is
     * left, so that the end of file behind the message is seen too. */
    for (int i = 0; i < 8; i++) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(conn))
            return false;
        PGnotify *n;
        while ((n = PQnotifies(conn)) != NULL)
            PQfreemem(n);
    }
    return PQstatus(conn) == CONNECTION_OK;
}

static slot *slot_of(db_pool *p, PGconn *conn)
{
    for (int i = 0; i < p->size; i++)
        if (p->slots[i].conn == conn)
            return &p->slots[i];
    return NULL;
}

static void give_back(db_pool *p, slot *s)
{
    pthread_mutex_lock(&p->lock);
    s->busy = false;
    p->busy--;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

PGconn *db_pool_acquire(db_pool *p, int wait_ms, db_pool_result *res, char *why, size_t whysize)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    bool waited = false;
    slot *s = NULL;
    for (;;) {
        for (int i = 0; i < p->size && !s; i++)
            if (!p->slots[i].busy)
                s = &p->slots[i];
        if (s)
            break;
        if (!waited) {
            waited = true;
            p->waits++;
        }
        int rc = pthread_cond_timedwait(&p->freed, &p->lock, &deadline);
        if (rc == ETIMEDOUT) {
            for (int i = 0; i < p->size && !s; i++)
                if (!p->slots[i].busy)
                    s = &p->slots[i];
            if (!s) {
                pthread_mutex_unlock(&p->lock);
                *res = DB_POOL_TIMEOUT;
                set_why(why, whysize, "all %d database connections stayed busy for %d ms",
                        p->size, wait_ms);
                return NULL;
            }
            break;
        }
    }
    s->busy = true;
    p->busy++;
    pthread_mutex_unlock(&p->lock);

    /* Ours now: check and repair it outside the lock. */
    if (!looks_alive(s->conn)) {
        if (reconnect(p, s, why, whysize) != 0) {
            give_back(p, s);
            *res = DB_POOL_UNAVAILABLE;
            return NULL;
        }
    }
    *res = DB_POOL_OK;
    return s->conn;
}

int db_pool_reset(db_pool *p, PGconn *conn, char *why, size_t whysize)
{
    slot *s = slot_of(p, conn);
    if (!s) {
        set_why(why, whysize, "db_pool_reset: not a connection of this pool");
        return -1;
    }
    return reconnect(p, s, why, whysize);
}

void db_pool_release(db_pool *p, PGconn *conn)
{
    slot *s = slot_of(p, conn);
    if (!s)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    if (PQstatus(conn) == CONNECTION_OK && (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR))
        PQclear(PQexec(conn, "ROLLBACK"));
    give_back(p, s);
}

void db_pool_get_stats(db_pool *p, db_pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    out->size = p->size;
    out->busy = p->busy;
    out->idle = p->size - p->busy;
    out->waits = p->waits;
    out->resets = p->resets;
    pthread_mutex_unlock(&p->lock);
}

void db_pool_close(db_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        if (p->slots[i].conn)
            PQfinish(p->slots[i].conn);
    free(p->slots);
    free(p->conninfo);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
