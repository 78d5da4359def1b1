/* rankqld's command line: flags, defaults and their checks. */
#include "server/options.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "server/auth.h"

#define DEFAULT_LISTEN "127.0.0.1:8001"
#define DEFAULT_DATA_DIR "./rankql-data"
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_QUERY_TIMEOUT 30
#define DEFAULT_CONNECTION_TIMEOUT 60
#define DEFAULT_MAX_WAIT 3600
#define MAX_MAX_WAIT (30 * 86400)
#define DEFAULT_MAX_QUERY (256 * 1024)
#define DEFAULT_MAX_RESULT (64 * 1024 * 1024)
#define DEFAULT_MAX_CONCURRENT 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: rankqld [OPTION]...\n"
            "The rankql server: the HTTP API (docs/http-api.md) over a PostgreSQL catalog.\n"
            "Without --db it runs a private PostgreSQL cluster in its data directory\n"
            "(created on first start).\n"
            "\n"
            "  --data-dir DIR        data directory (default $RANKQL_DATA_DIR, else " DEFAULT_DATA_DIR
            ")\n"
            "  --db URL              use this PostgreSQL server (postgres://… or a conninfo\n"
            "                        string) instead of the embedded one\n"
            "  --listen A:P          HTTP address (default " DEFAULT_LISTEN "); an address\n"
            "                        other than loopback needs tokens: --token-file, or a\n"
            "                        token made by `rankql token create` on loopback first\n"
            "  --token-file FILE     bearer tokens, one a line, role admin: every request but\n"
            "                        /healthz must carry one (on any address, loopback too)\n"
            "  --threads N           default of --db-pool (default: CPU cores, at least 2);\n"
            "                        every HTTP connection has a thread of its own\n"
            "  --db-pool N           database connections (default: --threads)\n"
            "  --max-body SIZE       largest request body, e.g. 1M, 64K (default 1M)\n"
            "  --query-timeout SECS  time limit of one request's statements (default 30)\n"
            "  --idle-timeout SECS   an idle HTTP connection is closed after this (default 60)\n"
            "  --max-wait SECS       longest a query's WAIT waits for its jobs (default 3600;\n"
            "                        0 = no limit); the jobs keep running after it\n"
            "  --max-query SIZE      longest query text of a request (default 256K)\n"
            "  --max-result SIZE     largest results of a request, as JSON (default 64M)\n"
            "  --max-concurrent-queries N  queries one session runs at once (default 64;\n"
            "                        0 = no limit)\n"
            "  --quota-jobs N        jobs queued or running per catalog token (default 0 =\n"
            "                        no limit); a ranking that would pass it is refused (429)\n"
            "  --workers N           job slots of the local worker that rankqld starts\n"
            "                        (rankql-worker on the same database and data directory;\n"
            "                        default: CPU cores; 0 = none, run workers yourself)\n"
            "  --extensions DIR      strategy plugins (docs/extensions.md): rankqld reads their\n"
            "                        names and parameters, its local worker runs them\n"
            "                        (default $RANKQL_EXTENSIONS, else DATA_DIR/extensions\n"
            "                        if it exists; none = the builtin strategies only)\n"
            "  --verbose             log one line per request to stderr\n"
            "  --pg-user NAME        when run as root, the user that runs the embedded\n"
            "                        PostgreSQL (default postgres)\n"
            "  --pg-no-sync          tests only: the embedded PostgreSQL skips fsync (a power\n"
            "                        loss can corrupt it)\n"
            "  --migrate-only        start the database, apply migrations, stop, exit\n"
            "  --help                show this help\n"
            "  --version             show the version\n"
            "\n"
            "Environment: RANKQL_DATA_DIR, RANKQL_PG_BINDIR (PostgreSQL's bin directory).\n"
            "Exit status: 0 ok, 1 runtime error, 2 usage error.\n");
}

int options_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rankqld: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see rankqld --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* A decimal integer in [lo, hi], nothing else. */
static bool parse_int(const char *s, long lo, long hi, long *out)
{
    if (!*s || strlen(s) > 12)
        return false;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi || s[0] == '+' || s[0] == '-' || s[0] == ' ')
        return false;
    *out = v;
    return true;
}

/* "1048576", "64K", "1M", "1G" (binary units). */
static bool parse_size(const char *s, size_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return false;
    unsigned long mult = 1;
    char digits[17];
    memcpy(digits, s, n + 1);
    switch (digits[n - 1]) {
    case 'k': case 'K': mult = 1024UL; break;
    case 'm': case 'M': mult = 1024UL * 1024; break;
    case 'g': case 'G': mult = 1024UL * 1024 * 1024; break;
    default: break;
    }
    if (mult != 1)
        digits[n - 1] = '\0';
    long v;
    if (!parse_int(digits, 1, 1L << 30, &v))
        return false;
    unsigned long long total = (unsigned long long)v * mult;
    if (total < 1024 || total > (1ULL << 30))
        return false;
    *out = (size_t)total;
    return true;
}

bool options_cluster_exists(const char *data_dir)
{
    char *path = xasprintf("%s/pg/PG_VERSION", data_dir);
    bool there = access(path, F_OK) == 0;
    free(path);
    return there;
}

int options_exposure_error(const char *listen)
{
    return options_usage_error("--listen %s is not a loopback address: serving it needs "
                               "--token-file FILE or a token in the catalog; make the first one "
                               "on loopback: rankqld --listen 127.0.0.1:PORT, then rankql -H "
                               "127.0.0.1:PORT token create --name NAME --role admin",
                               listen);
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 2 ? 2 : n > 256 ? 256 : (int)n;
}

static int default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

int options_parse(int argc, char **argv, server_config *o)
{
    enum { OPT_DATA_DIR = 1000, OPT_DB, OPT_LISTEN, OPT_PG_USER, OPT_PG_NO_SYNC,
           OPT_MIGRATE_ONLY, OPT_HELP, OPT_VERSION, OPT_TOKEN_FILE, OPT_THREADS, OPT_DB_POOL,
           OPT_MAX_BODY, OPT_QUERY_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_VERBOSE, OPT_MAX_WAIT,
           OPT_WORKERS, OPT_EXTENSIONS, OPT_MAX_QUERY, OPT_MAX_RESULT, OPT_MAX_CONCURRENT,
           OPT_QUOTA_JOBS };
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"db", required_argument, NULL, OPT_DB},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"pg-user", required_argument, NULL, OPT_PG_USER},
        {"pg-no-sync", no_argument, NULL, OPT_PG_NO_SYNC},
        {"migrate-only", no_argument, NULL, OPT_MIGRATE_ONLY},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"db-pool", required_argument, NULL, OPT_DB_POOL},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"query-timeout", required_argument, NULL, OPT_QUERY_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"max-wait", required_argument, NULL, OPT_MAX_WAIT},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"extensions", required_argument, NULL, OPT_EXTENSIONS},
        {"max-query", required_argument, NULL, OPT_MAX_QUERY},
        {"max-result", required_argument, NULL, OPT_MAX_RESULT},
        {"max-concurrent-queries", required_argument, NULL, OPT_MAX_CONCURRENT},
        {"quota-jobs", required_argument, NULL, OPT_QUOTA_JOBS},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *env_dir = getenv("RANKQL_DATA_DIR");
    const char *listen = DEFAULT_LISTEN;
    memset(o, 0, sizeof *o);
    o->data_dir = env_dir && *env_dir ? env_dir : DEFAULT_DATA_DIR;
    o->threads = default_threads();
    o->max_body = DEFAULT_MAX_BODY;
    o->query_timeout_s = DEFAULT_QUERY_TIMEOUT;
    o->connection_timeout_s = DEFAULT_CONNECTION_TIMEOUT;
    o->max_wait_s = DEFAULT_MAX_WAIT;
    o->workers = default_workers();
    o->max_query = DEFAULT_MAX_QUERY;
    o->max_result = DEFAULT_MAX_RESULT;
    o->max_concurrent = DEFAULT_MAX_CONCURRENT;
    opterr = 0; /* our own one-line messages */
    int c;
    long v;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DATA_DIR: o->data_dir = optarg; break;
        case OPT_DB: o->db_url = optarg; break;
        case OPT_LISTEN: listen = optarg; break;
        case OPT_PG_USER: o->pg_user = optarg; break;
        case OPT_PG_NO_SYNC: o->pg_no_sync = true; break;
        case OPT_MIGRATE_ONLY: o->migrate_only = true; break;
        case OPT_TOKEN_FILE: o->token_file = optarg; break;
        case OPT_VERBOSE: o->verbose = true; break;
        case OPT_EXTENSIONS: o->extensions = optarg; break;
        case OPT_THREADS:
            if (!parse_int(optarg, 1, 256, &v))
                return options_usage_error("--threads '%s': give a number from 1 to 256", optarg);
            o->threads = (int)v;
            break;
        case OPT_DB_POOL:
            if (!parse_int(optarg, 1, 256, &v))
                return options_usage_error("--db-pool '%s': give a number from 1 to 256", optarg);
            o->db_pool = (int)v;
            break;
        case OPT_MAX_BODY:
            if (!parse_size(optarg, &o->max_body))
                return options_usage_error("--max-body '%s': give a size from 1K to 1G "
                                           "(bytes, or with K, M or G)",
                                           optarg);
            break;
        case OPT_QUERY_TIMEOUT:
            if (!parse_int(optarg, 1, 86400, &v))
                return options_usage_error("--query-timeout '%s': give seconds, 1 to 86400",
                                           optarg);
            o->query_timeout_s = (int)v;
            break;
        case OPT_IDLE_TIMEOUT:
            if (!parse_int(optarg, 1, 86400, &v))
                return options_usage_error("--idle-timeout '%s': give seconds, 1 to 86400",
                                           optarg);
            o->connection_timeout_s = (int)v;
            break;
        case OPT_MAX_WAIT:
            if (!parse_int(optarg, 0, MAX_MAX_WAIT, &v))
                return options_usage_error("--max-wait '%s': give seconds, 0 (no limit) to %d",
                                           optarg, MAX_MAX_WAIT);
            o->max_wait_s = (int)v;
            break;
        case OPT_WORKERS:
            if (!parse_int(optarg, 0, 256, &v))
                return options_usage_error("--workers '%s': give a number from 0 to 256", optarg);
            o->workers = (int)v;
            break;
        case OPT_MAX_QUERY:
            if (!parse_size(optarg, &o->max_query))
                return options_usage_error("--max-query '%s': give a size from 1K to 1G "
                                           "(bytes, or with K, M or G)",
                                           optarg);
            break;
        case OPT_MAX_RESULT:
            if (!parse_size(optarg, &o->max_result))
                return options_usage_error("--max-result '%s': give a size from 1K to 1G "
                                           "(bytes, or with K, M or G)",
                                           optarg);
            break;
        case OPT_MAX_CONCURRENT:
            if (!parse_int(optarg, 0, 100000, &v))
                return options_usage_error("--max-concurrent-queries '%s': give a number from 0 "
                                           "(no limit) to 100000",
                                           optarg);
            o->max_concurrent = (int)v;
            break;
        case OPT_QUOTA_JOBS:
            if (!parse_int(optarg, 0, 100000000, &v))
                return options_usage_error("--quota-jobs '%s': give a number from 0 (no limit) "
                                           "to 100000000",
                                           optarg);
            o->quota_jobs = (int)v;
            break;
        case OPT_HELP: usage(stdout); return EXIT_OK;
        case OPT_VERSION: printf("rankqld %s\n", RANKQL_VERSION); return EXIT_OK;
        case ':': return options_usage_error("option %s needs a value", argv[optind - 1]);
        default: return options_usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return options_usage_error("unexpected argument '%s'", argv[optind]);
    if (!*o->data_dir)
        return options_usage_error("--data-dir is empty");
    if (o->db_url && !*o->db_url)
        return options_usage_error("--db is empty");
    if (o->db_url && (o->pg_user || o->pg_no_sync))
        return options_usage_error("%s only applies to the embedded PostgreSQL, not with --db",
                                   o->pg_user ? "--pg-user" : "--pg-no-sync");
    if (o->pg_user && !*o->pg_user)
        return options_usage_error("--pg-user is empty");
    if (o->extensions && !*o->extensions)
        return options_usage_error("--extensions is empty (give a directory, or none)");
    if (o->token_file && !*o->token_file)
        return options_usage_error("--token-file is empty");
    char why[512];
    if (!hostport_parse(listen, &o->listen, why, sizeof why))
        return options_usage_error("--listen %s", why);
    /* Binding needs an address; a name other than localhost would need DNS. */
    if (o->listen.family == 0 && strcmp(o->listen.host, "localhost") != 0)
        return options_usage_error("--listen '%s': give a numeric address (127.0.0.1, 0.0.0.0, "
                                   "[::1]) or localhost",
                                   listen);
    o->loopback = auth_is_loopback(&o->listen);
    o->listen_text = listen;
    o->auth_required = o->token_file || !o->loopback;
    /* A non-loopback address without --token-file needs a live token in the catalog:
     * main.c checks that once the database is up. With no database yet there is none. */
    if (!o->loopback && !o->token_file && !o->migrate_only && !o->db_url &&
        !options_cluster_exists(o->data_dir))
        return options_exposure_error(listen);
    if (o->db_pool == 0)
        o->db_pool = o->threads;
    return -1;
}
