/* rankqld's command line (docs/operations.md, "Starting rankqld" and "Server"). */
#ifndef RANKQL_SERVER_OPTIONS_H
#define RANKQL_SERVER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/hostport.h"

#define RANKQL_VERSION "0.1.0"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct server_config {
    const char *data_dir;
    const char *db_url;
    const char *pg_user;
    hostport listen;
    const char *listen_text; /* --listen as given */
    bool loopback;           /* listen is a loopback address */
    bool migrate_only;
    bool pg_no_sync;
    bool verbose;            /* one line per request on stderr */
    const char *token_file;  /* NULL: no authentication */
    int threads;             /* HTTP worker threads */
    int db_pool;             /* database connections */
    size_t max_body;         /* bytes */
    int query_timeout_s;     /* per request, and statement_timeout */
    int connection_timeout_s; /* idle HTTP connections are closed after this */
    int max_wait_s;          /* longest WAIT of a query for its jobs; 0 = no limit */
    int workers;             /* slots of the local rankql-worker; 0 = none */
    const char *extensions;  /* --extensions DIR|none; NULL = not given (extensions/extensions.h) */
    bool auth_required;      /* every request but /healthz needs a token: --token-file, or
                                a non-loopback --listen (catalog tokens; checked at start) */
    size_t max_query;        /* bytes of a request's query text */
    size_t max_result;       /* bytes of a request's results (JSON) */
    int max_concurrent;      /* queries running at once per session; 0 = no limit */
    int quota_jobs;          /* jobs queued or running per catalog token; 0 = no limit */
} server_config;

/* Fills cfg from argv. Returns -1 to go on, else the exit status to end with (--help,
 * --version: 0; a usage error, printed as one line: 2). */
int options_parse(int argc, char **argv, server_config *cfg);

/* Is there an embedded PostgreSQL cluster under data_dir (DATA_DIR/pg)? */
bool options_cluster_exists(const char *data_dir);
/* The refusal of a non-loopback --listen with no token to check requests against. */
int options_exposure_error(const char *listen);

/* A usage error: "rankqld: MESSAGE (see rankqld --help)" on stderr; returns EXIT_USAGE. */
int options_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
