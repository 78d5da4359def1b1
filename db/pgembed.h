/* The embedded PostgreSQL cluster: what rankqld runs under its data directory
 * when no --db is given. initdb once, a postmaster listening only on a Unix
 * socket inside the data directory, stopped on exit; a postmaster left running
 * by a killed rankqld is adopted. See docs/operations.md for the layout. */
#ifndef RANKQL_DB_PGEMBED_H
#define RANKQL_DB_PGEMBED_H

#include <stdbool.h>

/* Database and superuser that rankqld creates in its cluster. */
#define PG_EMBEDDED_DATABASE "rankql"
#define PG_EMBEDDED_SUPERUSER "rankql"

typedef struct pg_embedded_opts {
    const char *data_dir;  /* created if missing */
    const char *pg_user;   /* runs PostgreSQL when we are root; NULL = "postgres" */
    const char *bindir;    /* NULL: $RANKQL_PG_BINDIR, pg_config --bindir, /usr/lib/postgresql/N/bin */
    bool no_sync;          /* tests only: initdb --no-sync and fsync=off (unsafe on power loss) */
    void (*log)(const char *msg); /* progress lines ("created a cluster in …"); NULL = quiet */
} pg_embedded_opts;

typedef struct pg_embedded pg_embedded;

/* Creates (first time), starts or adopts the cluster and makes sure the
 * database exists. Holds DATA_DIR/rankqld.lock until pg_embedded_stop(), so
 * one data directory has one rankqld. Returns NULL with *err set to a
 * one-line message (caller frees) naming the cause. */
pg_embedded *pg_embedded_start(const pg_embedded_opts *opts, char **err);

/* libpq conninfo for the database, over the cluster's Unix socket. */
const char *pg_embedded_conninfo(const pg_embedded *pg);

/* The postmaster's pid, and whether it was already running (adopted). */
long pg_embedded_pid(const pg_embedded *pg);
bool pg_embedded_adopted(const pg_embedded *pg);

/* Is the postmaster still running? */
bool pg_embedded_alive(const pg_embedded *pg);

/* Starts the postmaster again after it died (see pg_embedded_alive). */
int pg_embedded_restart(pg_embedded *pg, char **err);

/* Stops the postmaster (pg_ctl -m fast), releases the lock and frees pg.
 * Returns 0, or -1 with *err set (pg is freed either way). */
int pg_embedded_stop(pg_embedded *pg, char **err);

#endif
