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
} server_config;

/* Fills cfg from argv. Returns -1 to go on, else the exit status to end with (--help,
 * --version: 0; a usage error, printed as one line: 2). */
int options_parse(int argc, char **argv, server_config *cfg);

/* A usage error: "rankqld: MESSAGE (see rankqld --help)" on stderr; returns EXIT_USAGE. */
int options_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
