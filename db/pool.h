/* A fixed-size pool of libpq connections, shared by the threads of the HTTP server.
 *
 *   db_pool *pool = db_pool_open(&(db_pool_opts){.conninfo = …, .size = 4,
 *                                                 .statement_timeout_ms = 30000}, &err);
 *   char why[256];
 *   db_pool_result r;
 *   PGconn *conn = db_pool_acquire(pool, 5000, &r, why, sizeof why);
 *   if (!conn) … r is DB_POOL_TIMEOUT (all busy) or DB_POOL_UNAVAILABLE (why says why) …
 *   … use conn, one thread at a time …
 *   db_pool_release(pool, conn);
 *
 * Every connection has statement_timeout (and idle_in_transaction_session_timeout) set to
 * the pool's limit. A connection found broken when it is handed out (PQstatus not OK, a
 * transaction left open, or the server's end of file or FATAL message waiting on its socket,
 * which costs a poll(), not a round trip) is reconnected with PQreset first; db_pool_reset
 * does the same on demand, after a query failed because the server went away. */
#ifndef RANKQL_DB_POOL_H
#define RANKQL_DB_POOL_H

#include <stddef.h>

#include <libpq-fe.h>

typedef struct db_pool_opts {
    const char *conninfo;     /* libpq conninfo or postgres:// URL */
    int size;                 /* number of connections, at least 1 */
    int statement_timeout_ms; /* 0 = none */
    int connect_timeout_s;    /* for each (re)connect; 0 = 10 s */
} db_pool_opts;

typedef enum db_pool_result {
    DB_POOL_OK,
    DB_POOL_TIMEOUT,     /* every connection stayed busy for the whole wait */
    DB_POOL_UNAVAILABLE, /* the connection could not be (re)established */
} db_pool_result;

typedef struct db_pool_stats {
    int size, idle, busy;
    unsigned long long waits; /* acquisitions that found no idle connection */
    unsigned long long resets; /* reconnections */
} db_pool_stats;

typedef struct db_pool db_pool;

/* Opens size connections. Returns NULL with *err set (one line, caller frees) when the
 * first one fails; later ones that fail are retried when handed out. */
db_pool *db_pool_open(const db_pool_opts *opts, char **err);

/* Waits at most wait_ms for an idle connection and returns it working, or NULL with *res
 * and a one-line reason in why (whysize bytes). */
PGconn *db_pool_acquire(db_pool *p, int wait_ms, db_pool_result *res, char *why, size_t whysize);

/* Reconnects conn (held by the caller) now. Returns 0, or -1 with a reason in why. */
int db_pool_reset(db_pool *p, PGconn *conn, char *why, size_t whysize);

/* Gives conn back; a transaction left open is rolled back first. */
void db_pool_release(db_pool *p, PGconn *conn);

void db_pool_get_stats(db_pool *p, db_pool_stats *out);

/* Closes every connection; none may be held. */
void db_pool_close(db_pool *p);

#endif
