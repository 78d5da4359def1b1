/* rankql-worker: claims and runs jobs from the rankql database (executor/workers/loop.h).
 * Any number of them, on any machine that reaches the database and sees the data directory
 * (docs/jobs.md, "Workers").
 *
 * Exit status: 0 ok (stopped by SIGINT/SIGTERM, or --once found nothing left), 1 runtime error
 * (database unreachable at start-up), 2 usage error. Every error is one line on stderr. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "executor/workers/loop.h"
#include "extensions/extensions.h"
#include "queue/queue.h"

#define RANKQL_WORKER_VERSION "0.1.0"
#define EXIT_USAGE 2

#ifdef HAVE_CUDA
#define BUILD_GPU "CUDA build (a GPU is used when present)"
#else
#define BUILD_GPU "CPU-only build (no CUDA)"
#endif

static atomic_int stop_flag;

static void on_signal(int sig)
{
    if (atomic_exchange(&stop_flag, 1) != 0) {
        /* Second signal: leave now; running jobs return to the queue when their lease runs
         * out. */
        static const char msg[] = "rankql-worker: second signal: exiting without giving "
                                  "jobs back (their leases will expire)\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(128 + sig);
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: rankql-worker --db URL --data-dir DIR [OPTION]...\n"
            "Claims jobs (embed, proxy) from the rankql database and runs them. Run any\n"
            "number of workers, on any machine that reaches the database and sees DIR.\n"
            "\n"
            "  --db URL           the rankql database (postgres://… or a libpq conninfo)\n"
            "  --data-dir DIR     where feature files live: the same directory for every\n"
            "                     worker and rankqld (a shared filesystem across machines)\n"
            "  --slots N          jobs run at once (default: online CPUs)\n"
            "  --lease SECONDS    job lease, renewed every SECONDS/3 (default %d); a worker\n"
            "                     that dies loses its jobs after at most this\n"
            "  --kinds K,K        job kinds to run (default: all this build has runners for;\n"
            "                     embed, proxy, strategy)\n"
            "  --once             exit when no job of those kinds is queued or running\n"
            "  --worker-id ID     lease owner prefix (default host:pid); slot i is ID:i\n"
            "  --extensions DIR   strategy plugins (docs/extensions.md; default\n"
            "                     $RANKQL_EXTENSIONS, else DATA_DIR/extensions if it exists;\n"
            "                     none = the builtin strategies only)\n"
            "  --help             show this help\n"
            "  --version          show the version\n"
            "\n"
            "SIGINT/SIGTERM: stop; running jobs are asked to stop and given back to the queue\n"
            "(a second signal exits at once). Exit status: 0 ok, 1 runtime error, 2 usage error.\n",
            QUEUE_DEFAULT_LEASE_SECONDS);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rankql-worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see rankql-worker --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* A decimal integer in [lo, hi], nothing else. */
static bool parse_int(const char *s, long lo, long hi, long *out)
{
    if (!*s || strlen(s) > 12 || s[0] == '+' || s[0] == '-' || s[0] == ' ')
        return false;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

enum { OPT_DB = 1, OPT_DATA_DIR, OPT_SLOTS, OPT_LEASE, OPT_KINDS, OPT_ONCE, OPT_ID, OPT_HELP,
       OPT_VERSION, OPT_EXTENSIONS };

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"lease", required_argument, NULL, OPT_LEASE},
        {"kinds", required_argument, NULL, OPT_KINDS},
        {"once", no_argument, NULL, OPT_ONCE},
        {"worker-id", required_argument, NULL, OPT_ID},
        {"extensions", required_argument, NULL, OPT_EXTENSIONS},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *data_dir = NULL, *kinds_arg = NULL, *worker_id = NULL;
    const char *ext_flag = NULL;
    long slots = 0, lease = QUEUE_DEFAULT_LEASE_SECONDS;
    bool once = false;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB: db = optarg; break;
        case OPT_EXTENSIONS: ext_flag = optarg; break;
        case OPT_DATA_DIR: data_dir = optarg; break;
        case OPT_SLOTS:
            if (!parse_int(optarg, 1, 1024, &slots))
                return usage_error("--slots: '%s' is not a number from 1 to 1024", optarg);
            break;
        case OPT_LEASE:
            if (!parse_int(optarg, 2, 86400, &lease))
                return usage_error("--lease: '%s' is not a number of seconds from 2 to 86400",
                                   optarg);
            break;
        case OPT_KINDS: kinds_arg = optarg; break;
        case OPT_ONCE: once = true; break;
        case OPT_ID:
            if (!*optarg || strlen(optarg) > 200)
                return usage_error("--worker-id: give 1 to 200 characters");
            worker_id = optarg;
            break;
        case OPT_HELP: usage(stdout); return 0;
        case OPT_VERSION: printf("rankql-worker %s\n", RANKQL_WORKER_VERSION); return 0;
        case ':': return usage_error("%s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!db || !*db)
        return usage_error("--db URL is required");
    if (!data_dir || !*data_dir)
        return usage_error("--data-dir DIR is required");
    struct stat st;
    if (stat(data_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return usage_error("--data-dir: '%s' is not a directory", data_dir);

    /* --kinds embed,proxy: each a known kind this build runs, none twice. */
    const char *kinds[16];
    size_t nkinds = 0;
    char *kinds_copy = kinds_arg ? xstrdup(kinds_arg) : NULL;
    if (kinds_copy) {
        char *save = NULL;
        for (char *k = strtok_r(kinds_copy, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            bool known = false;
            for (int i = 0; worker_known_kinds[i]; i++)
                known = known || strcmp(worker_known_kinds[i], k) == 0;
            int rc = 0;
            if (!known)
                rc = usage_error("--kinds: unknown job kind '%s' (kinds: embed, proxy, finetune, "
                                 "strategy, similarity, sh)",
                                 k);
            else if (!job_runner_find(k))
                rc = usage_error("--kinds: this build has no runner for '%s' jobs", k);
            for (size_t i = 0; !rc && i < nkinds; i++)
                if (strcmp(kinds[i], k) == 0)
                    rc = usage_error("--kinds: '%s' is named twice", k);
            if (rc) {
                free(kinds_copy);
                return rc;
            }
            kinds[nkinds++] = k;
        }
        if (nkinds == 0) {
            free(kinds_copy);
            return usage_error("--kinds: name at least one job kind");
        }
    }

    /* Strategy plugins: loaded once; strategy jobs run them (strategy_job.c). */
    char *ext_dir = NULL, *ext_err = NULL;
    if (ext_resolve_dir(ext_flag, data_dir, &ext_dir, &ext_err) != 0) {
        int rc = usage_error("%s", ext_err);
        free(ext_err);
        free(kinds_copy);
        return rc;
    }
    ext_registry *extensions = ext_registry_load(ext_dir, &ext_err);
    if (!extensions) {
        fprintf(stderr, "rankql-worker: %s\n", ext_err);
        free(ext_err);
        free(ext_dir);
        free(kinds_copy);
        return 1;
    }
    for (size_t i = 0; i < extensions->nwarnings; i++)
        fprintf(stderr, "rankql-worker: extensions: %s\n", extensions->warnings[i]);
    if (ext_dir)
        fprintf(stderr, "rankql-worker: %zu strategies (extensions from %s)\n", extensions->n,
                ext_dir);
    free(ext_dir);
    ext_set_default(extensions);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nslots = slots > 0 ? (int)slots : (int)(ncpu > 0 ? ncpu : 1);
    fprintf(stderr, "rankql-worker: %s %s; %d slot(s), lease %ld s, kinds %s%s; %s\n",
            RANKQL_WORKER_VERSION, worker_id ? worker_id : "(id host:pid)", nslots, lease,
            kinds_arg ? kinds_arg : "all", once ? ", --once" : "", BUILD_GPU);

    worker_stats stats = {0};
    worker_opts o = {
        .conninfo = db,
        .data_dir = data_dir,
        .slots = nslots,
        .lease_seconds = (int)lease,
        .kinds = nkinds ? kinds : NULL,
        .nkinds = nkinds,
        .worker_id = worker_id,
        .exit_when_idle = once,
        .stop = &stop_flag,
        .stats = &stats,
    };
    int rc = worker_run(&o);
    if (rc == 0)
        fprintf(stderr,
                "rankql-worker: stopped: %ld job(s) claimed, %ld done, %ld failed, %ld given "
                "back, %ld discarded\n",
                stats.claimed, stats.done, stats.failed, stats.released, stats.discarded);
    free(kinds_copy);
    ext_set_default(NULL);
    ext_registry_free(extensions);
    return rc == 0 ? 0 : 1;
}
