/* Running PostgreSQL's programs for the embedded cluster: as an unprivileged
 * user when rankqld is root (PostgreSQL refuses to run as root), and asking
 * whether a PID from a lock file is still a live postgres process. */
#ifndef RANKQL_DB_PGPROC_H
#define RANKQL_DB_PGPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Who a child runs as. switch_user false: as ourselves (uid/gid unused). */
typedef struct pgproc_user {
    bool switch_user;
    const char *name;
    uid_t uid;
    gid_t gid;
} pgproc_user;

/* Runs argv[0] (an absolute path) with argv in directory cwd, stdin from
 * /dev/null, stdout and stderr to out_fd (or inherited when out_fd < 0),
 * signals at their defaults, as `as`. Returns its exit status (0-255), 128+N
 * when killed by signal N, or -1 with *err set when it could not be started. */
int pgproc_run(const pgproc_user *as, const char *cwd, char *const argv[], int out_fd,
               char **err);

/* pgproc_run() with stdout captured into out (NUL-terminated, truncated to
 * size - 1); stderr is discarded. */
int pgproc_capture(const pgproc_user *as, const char *cwd, char *const argv[], char *out,
                   size_t size, char **err);

/* Checks as `as` that every directory on the way to abs_path (itself
 * included) can be entered. Returns true, or false with *blocked set to the
 * first one that cannot (caller frees); *blocked stays NULL when the check
 * itself could not run, and *err says why. */
bool pgproc_can_reach(const pgproc_user *as, const char *abs_path, char **blocked, char **err);

/* Is pid a live (not zombie) process whose command name is "postgres"? */
bool pgproc_is_postgres(pid_t pid);

/* Is pid a live (not zombie) process at all? */
bool pgproc_alive(pid_t pid);

#endif
