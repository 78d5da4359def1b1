/* rankqld: the rankql server.
 *
 * Brings up the database (with no --db it starts, or adopts, the embedded PostgreSQL cluster
 * under the data directory), applies the schema migrations, then serves the HTTP API
 * (server/http.c, docs/http-api.md) until SIGINT/SIGTERM, which stop the HTTP server, then the
 * connection pool, then the embedded cluster.
 *
 * Exit status: 0 ok, 1 runtime error, 2 usage error. Every error is one line on stderr. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "common/hostport.h"
#include "common/util.h"
#include "db/migrate.h"
#include "db/pgembed.h"
#include "server/workers.h"
#include "db/pool.h"
#include "db/pqutil.h"
#include "extensions/extensions.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/options.h"
#include "server/server.h"
#include "server/tokens.h"

/* How often the embedded postmaster is checked while we wait for a signal. */
#define WATCH_SECONDS 2

/* What main() sets up before the database: tokens and the listening socket. */
typedef struct startup {
    const server_config *cfg;
    auth_tokens *tokens;
    int listen_fd;
    const sigset_t *signals;
} startup;

static void log_line(const char *msg)
{
    fprintf(stderr, "rankqld: %s\n", msg);
}

/* "database rankql at /path/socket" or "database x at host:5432". */
static char *describe_db(PGconn *conn)
{
    const char *host = PQhost(conn);
    if (host && host[0] == '/')
        return xasprintf("database %s at %s", PQdb(conn), host);
    return xasprintf("database %s at %s:%s", PQdb(conn), host ? host : "?", PQport(conn));
}

/* Connects and applies migrations; prints the ready line. */
static int connect_and_migrate(const char *conninfo, const char *what, bool migrate_only)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        char *line = pq_one_line(PQerrorMessage(conn));
        fprintf(stderr, "rankqld: cannot connect to %s: %s\n", what, line);
        free(line);
        PQfinish(conn);
        return EXIT_RUNTIME;
    }
    int applied = 0;
    char *err = NULL;
    if (db_migrate(conn, &applied, &err) != 0) {
        fprintf(stderr, "rankqld: %s\n", err);
        free(err);
        PQfinish(conn);
        return EXIT_RUNTIME;
    }
    char *db = describe_db(conn);
    fprintf(stderr, "rankqld: %s (%s, %d migration%s applied)\n",
            migrate_only ? "schema up to date" : "ready", db, applied, applied == 1 ? "" : "s");
    free(db);
    PQfinish(conn);
    return EXIT_OK;
}

/* Restarts a postmaster that died under us; false if that fails too. */
static bool keep_alive(pg_embedded *pg)
{
    if (!pg || pg_embedded_alive(pg))
        return true;
    fprintf(stderr, "rankqld: the embedded PostgreSQL (pid %ld) exited unexpectedly; starting "
                    "it again\n",
            pg_embedded_pid(pg));
    char *err = NULL;
    if (pg_embedded_restart(pg, &err) == 0)
        return true;
    fprintf(stderr, "rankqld: %s\n", err);
    free(err);
    return false;
}

/* Waits for SIGINT/SIGTERM (blocked since start-up, so one that arrived
 * early is not lost), watching the embedded postmaster meanwhile. */
static int wait_for_signal(const sigset_t *set, pg_embedded *pg, local_workers *workers)
{
    for (;;) {
        struct timespec timeout = {WATCH_SECONDS, 0};
        int sig = sigtimedwait(set, NULL, &timeout);
        if (sig > 0) {
            fprintf(stderr, "rankqld: %s received, stopping\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM");
            return EXIT_OK;
        }
        if (errno != EAGAIN && errno != EINTR) {
            fprintf(stderr, "rankqld: waiting for signals failed: %s\n", strerror(errno));
            return EXIT_RUNTIME;
        }
        if (!keep_alive(pg))
            return EXIT_RUNTIME;
        local_workers_check(workers);
    }
}

/* "http://127.0.0.1:8001", "http://[::1]:8001". */
static char *listen_url(const hostport *hp)
{
    return hp->family == AF_INET6 ? xasprintf("http://[%s]:%d", hp->host, hp->port)
                                  : xasprintf("http://%s:%d", hp->host, hp->port);
}

/* The pool, the metrics and the HTTP server on the migrated database; returns at a signal
 * (or when the embedded postmaster cannot be kept alive), after stopping them in order. */
static int serve(startup *su, const char *conninfo, pg_embedded *pg)
{
    const server_config *cfg = su->cfg;
    char *err = NULL;
    db_pool_opts popts = {
        .conninfo = conninfo,
        .size = cfg->db_pool,
        .statement_timeout_ms = cfg->query_timeout_s * 1000,
    };
    db_pool *pool = db_pool_open(&popts, &err);
    if (!pool) {
        fprintf(stderr, "rankqld: %s\n", err);
        free(err);
        return EXIT_RUNTIME;
    }
    /* Exposed without --token-file: only catalog tokens can let anyone in. */
    if (!cfg->loopback && !su->tokens) {
        char why[512];
        db_pool_result pr;
        PGconn *conn = db_pool_acquire(pool, 10000, &pr, why, sizeof why);
        long live = conn ? tokens_live_count(conn, why, sizeof why) : -1;
        if (conn)
            db_pool_release(pool, conn);
        if (live <= 0) {
            if (live < 0)
                fprintf(stderr, "rankqld: %s\n", why);
            else
                options_exposure_error(cfg->listen_text);
            db_pool_close(pool);
            return live < 0 ? EXIT_RUNTIME : EXIT_USAGE;
        }
        fprintf(stderr, "rankqld: every request but /healthz needs a bearer token (%ld in the "
                        "catalog)\n", live);
    }
    metrics *m = metrics_new();
    server_ctx ctx = {.cfg = cfg, .pool = pool, .tokens = su->tokens, .metrics = m};
    http_server *http = http_server_start(&ctx, su->listen_fd, &err);
    su->listen_fd = -1; /* the HTTP server's now (closed by it, also on failure) */
    int rc = EXIT_RUNTIME;
    if (http) {
        char *url = listen_url(&cfg->listen);
        fprintf(stderr, "rankqld: listening on %s\n", url);
        if (su->tokens)
            fprintf(stderr, "rankqld: every request but /healthz needs a bearer token (%zu in %s)\n",
                    auth_count(su->tokens), cfg->token_file);
        free(url);
        local_workers *workers = NULL;
        if (cfg->workers > 0) {
            workers = local_workers_start(conninfo, cfg->data_dir, cfg->workers, &err);
            if (!workers) {
                /* The server still answers catalog queries; rankings wait for a worker. */
                fprintf(stderr, "rankqld: %s\n", err);
                free(err);
                err = NULL;
            }
        }
        rc = wait_for_signal(su->signals, pg, workers);
        local_workers_stop(workers);
        http_server_stop(http);
    } else {
        fprintf(stderr, "rankqld: %s\n", err);
        free(err);
    }
    db_pool_close(pool);
    metrics_free(m);
    return rc;
}

static int run_external(startup *su)
{
    const server_config *cfg = su->cfg;
    int rc = connect_and_migrate(cfg->db_url, "the --db server", cfg->migrate_only);
    if (rc == EXIT_OK && !cfg->migrate_only)
        rc = serve(su, cfg->db_url, NULL);
    return rc;
}

static int run_embedded(startup *su)
{
    const server_config *cfg = su->cfg;
    pg_embedded_opts opts = {
        .data_dir = cfg->data_dir,
        .pg_user = cfg->pg_user,
        .no_sync = cfg->pg_no_sync,
        .log = log_line,
    };
    char *err = NULL;
    pg_embedded *pg = pg_embedded_start(&opts, &err);
    if (!pg) {
        fprintf(stderr, "rankqld: %s\n", err);
        free(err);
        return EXIT_RUNTIME;
    }
    int rc = connect_and_migrate(pg_embedded_conninfo(pg), "the embedded PostgreSQL",
                                 cfg->migrate_only);
    if (rc == EXIT_OK && !cfg->migrate_only)
        rc = serve(su, pg_embedded_conninfo(pg), pg);
    if (pg_embedded_stop(pg, &err) != 0) {
        fprintf(stderr, "rankqld: %s\n", err);
        free(err);
        rc = EXIT_RUNTIME;
    }
    return rc;
}

/* The tokens of --token-file; a file others can read gets a warning. */
static int load_tokens(const server_config *cfg, auth_tokens **out)
{
    *out = NULL;
    if (!cfg->token_file || cfg->migrate_only)
        return -1;
    char why[600];
    *out = auth_load(cfg->token_file, why, sizeof why);
    if (!*out)
        return options_usage_error("%s", why);
    struct stat st;
    if (stat(cfg->token_file, &st) == 0 && (st.st_mode & 044))
        fprintf(stderr, "rankqld: warning: --token-file %s can be read by other users "
                        "(chmod 600 it)\n",
                cfg->token_file);
    return -1;
}

int main(int argc, char **argv)
{
    server_config cfg;
    int rc = options_parse(argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    startup su = {.cfg = &cfg, .listen_fd = -1};
    if ((rc = load_tokens(&cfg, &su.tokens)) >= 0)
        return rc;
    /* Strategy plugins: rankqld reads their names and parameter schemas (RANK … BY
     * validation, SHOW EXTENSIONS) — C plugins described by a child process, so none of
     * their code runs here — and never runs one; the local worker, which inherits
     * RANKQL_EXTENSIONS, loads the same directory and runs them (docs/extensions.md). */
    char *ext_dir = NULL, *ext_err = NULL;
    if (ext_resolve_dir(cfg.extensions, cfg.data_dir, &ext_dir, &ext_err) != 0) {
        rc = options_usage_error("%s", ext_err);
        free(ext_err);
        auth_free(su.tokens);
        return rc;
    }
    ext_registry *extensions = cfg.migrate_only ? NULL : ext_registry_describe(ext_dir, &ext_err);
    if (!cfg.migrate_only && !extensions) {
        fprintf(stderr, "rankqld: %s\n", ext_err);
        free(ext_err);
        free(ext_dir);
        auth_free(su.tokens);
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; extensions && i < extensions->nwarnings; i++)
        fprintf(stderr, "rankqld: extensions: %s\n", extensions->warnings[i]);
    if (extensions && ext_dir)
        fprintf(stderr, "rankqld: %zu strategies (extensions from %s)\n", extensions->n, ext_dir);
    setenv("RANKQL_EXTENSIONS", ext_dir ? ext_dir : "none", 1);
    free(ext_dir);
    ext_set_default(extensions);
    /* Blocked from the start, in every thread made later: a signal during start-up waits for
     * sigtimedwait instead of killing us with the cluster half up. Children get their own
     * mask back (db/pgproc.c). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    su.signals = &set;
    /* The address first: when it is taken there is no point starting the database. */
    if (!cfg.migrate_only) {
        char why[512];
        su.listen_fd = http_listen_socket(&cfg.listen, why, sizeof why);
        if (su.listen_fd < 0) {
            fprintf(stderr, "rankqld: %s\n", why);
            auth_free(su.tokens);
            ext_set_default(NULL);
            ext_registry_free(extensions);
            return EXIT_RUNTIME;
        }
    }
    json_object_seed(0); /* before any thread uses jansson */
    rc = cfg.db_url ? run_external(&su) : run_embedded(&su);
    if (su.listen_fd >= 0)
        close(su.listen_fd);
    auth_free(su.tokens);
    ext_set_default(NULL);
    ext_registry_free(extensions);
    return rc;
}
