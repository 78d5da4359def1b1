/* rankqld: the rankql server.
 *
 * For now it brings up the database: with no --db it starts (or adopts) the
 * embedded PostgreSQL cluster under the data directory, applies the schema
 * migrations, reports ready, and on SIGINT/SIGTERM stops the cluster and
 * exits. The HTTP API (--listen) comes later; the address is already
 * validated here.
 *
 * Exit status: 0 ok, 1 runtime error, 2 usage error. Every error is one line
 * on stderr. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "common/hostport.h"
#include "common/util.h"
#include "db/migrate.h"
#include "db/pgembed.h"
#include "db/pqutil.h"

#define RANKQL_VERSION "0.1.0"
#define DEFAULT_LISTEN "127.0.0.1:8001"
#define DEFAULT_DATA_DIR "./rankql-data"
/* How often the embedded postmaster is checked while we wait for a signal. */
#define WATCH_SECONDS 2

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct options {
    const char *data_dir;
    const char *db_url;
    const char *pg_user;
    hostport listen;
    bool migrate_only;
    bool pg_no_sync;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: rankqld [OPTION]...\n"
            "The rankql server. Without --db it runs a private PostgreSQL cluster in its\n"
            "data directory (created on first start).\n"
            "\n"
            "  --data-dir DIR   data directory (default $RANKQL_DATA_DIR, else " DEFAULT_DATA_DIR
            ")\n"
            "  --db URL         use this PostgreSQL server (postgres://… or a conninfo string)\n"
            "                   instead of the embedded one\n"
            "  --listen A:P     HTTP address (default " DEFAULT_LISTEN ")\n"
            "  --pg-user NAME   when run as root, the user that runs the embedded PostgreSQL\n"
            "                   (default postgres)\n"
            "  --pg-no-sync     tests only: the embedded PostgreSQL skips fsync (a power\n"
            "                   loss can corrupt it)\n"
            "  --migrate-only   start the database, apply migrations, stop, exit\n"
            "  --help           show this help\n"
            "  --version        show the version\n"
            "\n"
            "Environment: RANKQL_DATA_DIR, RANKQL_PG_BINDIR (PostgreSQL's bin directory).\n"
            "Exit status: 0 ok, 1 runtime error, 2 usage error.\n");
}

static void log_line(const char *msg)
{
    fprintf(stderr, "rankqld: %s\n", msg);
}

/* A usage error: one line, then a pointer to --help. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rankqld: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see rankqld --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* Returns -1 to go on, else the exit status (help, version, usage error). */
static int parse_args(int argc, char **argv, options *o)
{
    enum { OPT_DATA_DIR = 1000, OPT_DB, OPT_LISTEN, OPT_PG_USER, OPT_PG_NO_SYNC,
           OPT_MIGRATE_ONLY, OPT_HELP, OPT_VERSION };
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"db", required_argument, NULL, OPT_DB},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"pg-user", required_argument, NULL, OPT_PG_USER},
        {"pg-no-sync", no_argument, NULL, OPT_PG_NO_SYNC},
        {"migrate-only", no_argument, NULL, OPT_MIGRATE_ONLY},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *env_dir = getenv("RANKQL_DATA_DIR");
    const char *listen = DEFAULT_LISTEN;
    memset(o, 0, sizeof *o);
    o->data_dir = env_dir && *env_dir ? env_dir : DEFAULT_DATA_DIR;
    opterr = 0; /* our own one-line messages */
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DATA_DIR: o->data_dir = optarg; break;
        case OPT_DB: o->db_url = optarg; break;
        case OPT_LISTEN: listen = optarg; break;
        case OPT_PG_USER: o->pg_user = optarg; break;
        case OPT_PG_NO_SYNC: o->pg_no_sync = true; break;
        case OPT_MIGRATE_ONLY: o->migrate_only = true; break;
        case OPT_HELP: usage(stdout); return EXIT_OK;
        case OPT_VERSION: printf("rankqld %s\n", RANKQL_VERSION); return EXIT_OK;
        case ':': return usage_error("option %s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!*o->data_dir)
        return usage_error("--data-dir is empty");
    if (o->db_url && !*o->db_url)
        return usage_error("--db is empty");
    if (o->db_url && (o->pg_user || o->pg_no_sync))
        return usage_error("%s only applies to the embedded PostgreSQL, not with --db",
                           o->pg_user ? "--pg-user" : "--pg-no-sync");
    if (o->pg_user && !*o->pg_user)
        return usage_error("--pg-user is empty");
    char why[512];
    if (!hostport_parse(listen, &o->listen, why, sizeof why))
        return usage_error("--listen %s", why);
    /* Binding needs an address; a name other than localhost would need DNS. */
    if (o->listen.family == 0 && strcmp(o->listen.host, "localhost") != 0)
        return usage_error("--listen '%s': give a numeric address (127.0.0.1, 0.0.0.0, [::1]) "
                           "or localhost",
                           listen);
    return -1;
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
static int wait_for_signal(const sigset_t *set, pg_embedded *pg)
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
    }
}

static int run_external(const options *o, const sigset_t *set)
{
    int rc = connect_and_migrate(o->db_url, "the --db server", o->migrate_only);
    if (rc == EXIT_OK && !o->migrate_only)
        rc = wait_for_signal(set, NULL);
    return rc;
}

static int run_embedded(const options *o, const sigset_t *set)
{
    pg_embedded_opts opts = {
        .data_dir = o->data_dir,
        .pg_user = o->pg_user,
        .no_sync = o->pg_no_sync,
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
                                 o->migrate_only);
    if (rc == EXIT_OK && !o->migrate_only)
        rc = wait_for_signal(set, pg);
    if (pg_embedded_stop(pg, &err) != 0) {
        fprintf(stderr, "rankqld: %s\n", err);
        free(err);
        rc = EXIT_RUNTIME;
    }
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    /* Blocked from the start: a signal during start-up waits for sigtimedwait
     * instead of killing us with the cluster half up. Children get their own
     * mask back (db/pgproc.c). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return o.db_url ? run_external(&o, &set) : run_embedded(&o, &set);
}
