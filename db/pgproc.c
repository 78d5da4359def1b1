#include "db/pgproc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

/* What a child tells its parent through the close-on-exec pipe when it fails
 * before exec: the step and errno. Nothing arrives when exec succeeds. Only
 * async-signal-safe calls happen between fork and exec (rankqld may have
 * threads by then), so no formatting in the child. */
enum child_step { STEP_GROUPS = 1, STEP_SETGID, STEP_SETUID, STEP_CHDIR, STEP_EXEC, STEP_DUP };

struct child_failure {
    int step;
    int err;
};

static const char *step_name(int step)
{
    switch (step) {
    case STEP_GROUPS: return "setgroups";
    case STEP_SETGID: return "setgid";
    case STEP_SETUID: return "setuid";
    case STEP_CHDIR: return "chdir";
    case STEP_EXEC: return "exec";
    case STEP_DUP: return "redirect";
    default: return "start";
    }
}

/* The user's groups, looked up before fork (NSS is not fork-safe). */
typedef struct groups {
    gid_t *list;
    int n;
} groups;

static bool lookup_groups(const pgproc_user *as, groups *g, char **err)
{
    g->list = NULL;
    g->n = 0;
    if (!as->switch_user)
        return true;
    int n = 16;
    for (int tries = 0; tries < 8; tries++) {
        g->list = xrealloc(g->list, (size_t)n * sizeof(gid_t));
        int got = n;
        if (getgrouplist(as->name, as->gid, g->list, &got) >= 0) {
            g->n = got;
            return true;
        }
        n = got > n ? got : n * 2;
    }
    free(g->list);
    g->list = NULL;
    *err = xasprintf("cannot list the groups of user '%s'", as->name);
    return false;
}

static _Noreturn void child_fail(int pipe_fd, int step)
{
    struct child_failure f = {step, errno};
    ssize_t w = write(pipe_fd, &f, sizeof f);
    (void)w;
    _exit(127);
}

/* Becomes `as` for good: groups first, then gid, then uid (after setuid we
 * could no longer change the others). */
static void child_drop_privileges(const pgproc_user *as, const groups *g, int pipe_fd)
{
    if (!as->switch_user)
        return;
    if (setgroups((size_t)g->n, g->list) != 0)
        child_fail(pipe_fd, STEP_GROUPS);
    if (setgid(as->gid) != 0)
        child_fail(pipe_fd, STEP_SETGID);
    if (setuid(as->uid) != 0)
        child_fail(pipe_fd, STEP_SETUID);
}

/* rankqld blocks SIGINT/SIGTERM to wait for them; a child must not inherit
 * that (exec keeps the mask) or pg_ctl and the postmaster would ignore them. */
static void child_reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static void child_redirect(int out_fd, int err_fd, int pipe_fd)
{
    /* stdin last: out_fd may be descriptor 0 when we were started without one. */
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        child_fail(pipe_fd, STEP_DUP);
    if (dup2(out_fd >= 0 ? out_fd : null, STDOUT_FILENO) < 0)
        child_fail(pipe_fd, STEP_DUP);
    if (dup2(err_fd >= 0 ? err_fd : null, STDERR_FILENO) < 0)
        child_fail(pipe_fd, STEP_DUP);
    if (dup2(null, STDIN_FILENO) < 0)
        child_fail(pipe_fd, STEP_DUP);
    if (null > STDERR_FILENO)
        close(null);
}

/* Collects a child's pre-exec failure, if any, into *err. */
static bool read_child_failure(int pipe_fd, const char *prog, const pgproc_user *as, char **err)
{
    struct child_failure f;
    ssize_t n;
    do
        n = read(pipe_fd, &f, sizeof f);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof f)
        return true;
    if (as->switch_user && f.step <= STEP_SETUID)
        *err = xasprintf("cannot run %s as user '%s': %s failed: %s", prog, as->name,
                         step_name(f.step), strerror(f.err));
    else
        *err = xasprintf("cannot run %s: %s failed: %s", prog, step_name(f.step), strerror(f.err));
    return false;
}

static int wait_status(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* fork + exec with stdout/stderr going to out_fd/err_fd (-1: /dev/null).
 * Returns the child's pid, or -1 with *err set. */
static pid_t spawn(const pgproc_user *as, const char *cwd, char *const argv[], int out_fd,
                   int err_fd, char **err)
{
    groups g;
    if (!lookup_groups(as, &g, err))
        return -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        *err = xasprintf("cannot run %s: pipe: %s", argv[0], strerror(errno));
        free(g.list);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *err = xasprintf("cannot run %s: fork: %s", argv[0], strerror(errno));
        close(fds[0]);
        close(fds[1]);
        free(g.list);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child_reset_signals();
        child_redirect(out_fd, err_fd, fds[1]);
        child_drop_privileges(as, &g, fds[1]);
        if (cwd && chdir(cwd) != 0)
            child_fail(fds[1], STEP_CHDIR);
        execv(argv[0], argv);
        child_fail(fds[1], STEP_EXEC);
    }
    free(g.list);
    close(fds[1]);
    bool started = read_child_failure(fds[0], argv[0], as, err);
    close(fds[0]);
    if (!started) {
        wait_status(pid);
        return -1;
    }
    return pid;
}

int pgproc_run(const pgproc_user *as, const char *cwd, char *const argv[], int out_fd,
               char **err)
{
    pid_t pid = spawn(as, cwd, argv, out_fd < 0 ? STDOUT_FILENO : out_fd,
                      out_fd < 0 ? STDERR_FILENO : out_fd, err);
    if (pid < 0)
        return -1;
    int status = wait_status(pid);
    if (status < 0)
        *err = xasprintf("waiting for %s failed: %s", argv[0], strerror(errno));
    return status;
}

int pgproc_capture(const pgproc_user *as, const char *cwd, char *const argv[], char *out,
                   size_t size, char **err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        *err = xasprintf("cannot run %s: pipe: %s", argv[0], strerror(errno));
        return -1;
    }
    pid_t pid = spawn(as, cwd, argv, fds[1], -1, err);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    size_t len = 0;
    char discard[256];
    for (;;) {
        /* Keep reading past a full buffer so the child never blocks on us. */
        char *dst = len + 1 < size ? out + len : discard;
        size_t room = len + 1 < size ? size - 1 - len : sizeof discard;
        ssize_t n = read(fds[0], dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != discard)
            len += (size_t)n;
    }
    close(fds[0]);
    if (size > 0)
        out[len] = '\0';
    int status = wait_status(pid);
    if (status < 0)
        *err = xasprintf("waiting for %s failed: %s", argv[0], strerror(errno));
    return status;
}

bool pgproc_can_reach(const pgproc_user *as, const char *abs_path, char **blocked, char **err)
{
    *blocked = NULL;
    groups g;
    if (!lookup_groups(as, &g, err))
        return false;
    char *path = xstrdup(abs_path);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        *err = xasprintf("pipe: %s", strerror(errno));
        free(path);
        free(g.list);
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *err = xasprintf("fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        free(path);
        free(g.list);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        child_drop_privileges(as, &g, fds[1]);
        /* Walk "/a", "/a/b", … and report the length of the first prefix
         * this user cannot enter. */
        size_t len = strlen(path);
        for (size_t i = 1; i <= len; i++) {
            if (i < len && path[i] != '/')
                continue;
            char saved = path[i];
            path[i] = '\0';
            int ok = access(path, X_OK) == 0;
            path[i] = saved;
            if (!ok) {
                struct child_failure f = {0, (int)i};
                ssize_t w = write(fds[1], &f, sizeof f);
                (void)w;
                _exit(1);
            }
        }
        _exit(0);
    }
    free(g.list);
    close(fds[1]);
    struct child_failure f;
    ssize_t n;
    do
        n = read(fds[0], &f, sizeof f);
    while (n < 0 && errno == EINTR);
    close(fds[0]);
    int status = wait_status(pid);
    bool ok = status == 0;
    if (!ok && n == (ssize_t)sizeof f && f.step == 0) {
        *blocked = xstrndup(path, (size_t)f.err);
    } else if (!ok && n == (ssize_t)sizeof f) {
        *err = xasprintf("cannot become user '%s': %s failed: %s", as->name, step_name(f.step),
                         strerror(f.err));
    } else if (!ok) {
        *err = xasprintf("the access check as user '%s' failed (status %d)", as->name, status);
    }
    free(path);
    return ok;
}

/* The state letter from /proc/PID/stat ('R', 'S', 'Z', …), or 0 if gone. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S …": comm may hold ')' itself, so use the last one. */
    char *close_paren = strrchr(buf, ')');
    if (!close_paren || close_paren[1] != ' ')
        return 0;
    return close_paren[2];
}

bool pgproc_alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    if (kill(pid, 0) != 0 && errno != EPERM)
        return false;
    char st = proc_state(pid);
    /* Without /proc, kill() is all we know. A zombie is dead for our purposes:
     * a killed postmaster whose parent has not reaped it yet. */
    return st == 0 ? access("/proc/self", F_OK) != 0 : st != 'Z' && st != 'X';
}

bool pgproc_is_postgres(pid_t pid)
{
    if (!pgproc_alive(pid))
        return false;
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return true; /* alive but unknowable: assume the worst (a live server) */
    bool ok = fgets(comm, sizeof comm, f) != NULL;
    fclose(f);
    return !ok || strcmp(comm, "postgres\n") == 0;
}
