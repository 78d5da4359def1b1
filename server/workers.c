#include "server/workers.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

enum { RESTART_BACKOFF_SECONDS = 5, STOP_GRACE_MS = 10000 };

struct local_workers {
    char *program, *conninfo, *data_dir;
    int slots;
    pid_t pid;               /* 0 = not running */
    time_t started_at;
    unsigned restarts;
};

static char *worker_program(void)
{
    const char *env = getenv("RANKQL_WORKER");
    if (env && *env)
        return xstrdup(env);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return xstrdup("rankql-worker");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        slash[1] = '\0';
    return xasprintf("%srankql-worker", slash ? self : "");
}

static int spawn(local_workers *w, char **err)
{
    char slots[16];
    snprintf(slots, sizeof slots, "%d", w->slots);
    pid_t pid = fork();
    if (pid < 0) {
        *err = xasprintf("cannot start %s: %s", w->program, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* rankqld blocks SIGINT/SIGTERM to sigwait for them; the worker must see them. And
         * it must not outlive rankqld, whose embedded database it uses. */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        char *argv[] = {w->program, "--db", w->conninfo, "--data-dir", w->data_dir, "--slots",
                        slots, NULL};
        execv(w->program, argv);
        fprintf(stderr, "rankqld: cannot run %s: %s\n", w->program, strerror(errno));
        _exit(127);
    }
    w->pid = pid;
    w->started_at = time(NULL);
    return 0;
}

local_workers *local_workers_start(const char *conninfo, const char *data_dir, int slots,
                                   char **err)
{
    local_workers *w = xcalloc(1, sizeof *w);
    w->program = worker_program();
    w->conninfo = xstrdup(conninfo);
    w->data_dir = xstrdup(data_dir);
    w->slots = slots > 0 ? slots : 1;
    if (access(w->program, X_OK) != 0) {
        *err = xasprintf("cannot run the local worker %s: %s (build it with make, or set "
                         "RANKQL_WORKER, or start rankqld with --workers 0)",
                         w->program, strerror(errno));
        local_workers_stop(w);
        return NULL;
    }
    if (spawn(w, err) != 0) {
        local_workers_stop(w);
        return NULL;
    }
    fprintf(stderr, "rankqld: started local worker %s (pid %ld, %d slots)\n", w->program,
            (long)w->pid, w->slots);
    return w;
}

void local_workers_check(local_workers *w)
{
    if (!w)
        return;
    if (w->pid > 0) {
        int status;
        pid_t r = waitpid(w->pid, &status, WNOHANG);
        if (r != w->pid)
            return;
        if (WIFSIGNALED(status))
            fprintf(stderr, "rankqld: local worker (pid %ld) killed by signal %d\n", (long)w->pid,
                    WTERMSIG(status));
        else
            fprintf(stderr, "rankqld: local worker (pid %ld) exited with status %d\n",
                    (long)w->pid, WEXITSTATUS(status));
        w->pid = 0;
    }
    if (time(NULL) - w->started_at < RESTART_BACKOFF_SECONDS)
        return;
    char *err = NULL;
    if (spawn(w, &err) != 0) {
        fprintf(stderr, "rankqld: %s\n", err);
        free(err);
        w->started_at = time(NULL);
        return;
    }
    w->restarts++;
    fprintf(stderr, "rankqld: restarted the local worker (pid %ld, restart %u)\n", (long)w->pid,
            w->restarts);
}

void local_workers_stop(local_workers *w)
{
    if (!w)
        return;
    if (w->pid > 0) {
        kill(w->pid, SIGTERM);
        int status;
        for (int waited = 0; waited < STOP_GRACE_MS; waited += 50) {
            if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
                w->pid = 0;
                break;
            }
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (w->pid > 0) {
            kill(w->pid, SIGKILL);
            waitpid(w->pid, &status, 0);
        }
    }
    free(w->program);
    free(w->conninfo);
    free(w->data_dir);
    free(w);
}
