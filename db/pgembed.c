#include "db/pgembed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common/util.h"
#include "db/pgproc.h"
#include "db/pqutil.h"

/* The socket lives in a private directory, so the port only names the socket
 * file; it never collides with another server. */
#define PG_PORT "5432"
#define SOCKET_FILE ".s.PGSQL." PG_PORT
/* gen_random_uuid() is in core from 13 on; 15 is what rankql is tested with. */
#define MIN_MAJOR 13
#define PG_CTL_TIMEOUT "60"
#define ADOPT_WAIT_SECONDS 60
#define DEFAULT_PG_USER "postgres"
#define SOCKET_DIR "pg-socket"
#define CONF_FILE "rankql.conf"
#define CONF_INCLUDE "include = '" CONF_FILE "'"

struct pg_embedded {
    char *data_dir; /* absolute, symlinks resolved */
    char *pgdata;   /* DATA_DIR/pg */
    char *sockdir;  /* DATA_DIR/pg-socket */
    char *logfile;  /* DATA_DIR/pg.log */
    char *bindir;
    char *conninfo;       /* the rankql database */
    char *admin_conninfo; /* the postgres database, to create rankql */
    char *user_name;
    pgproc_user as; /* who runs PostgreSQL's programs */
    uid_t owner;    /* who must own pgdata */
    int major;
    int lock_fd;
    long pid;
    bool adopted;
    bool no_sync;
    void (*log)(const char *msg);
};

/* The fields of postmaster.pid / .s.PGSQL.5432.lock that we use. */
typedef struct lockfile {
    long pid;
    char datadir[PATH_MAX];
    char port[16];
    char sockdir[PATH_MAX];
} lockfile;

static void note(const pg_embedded *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(const pg_embedded *pg, const char *fmt, ...)
{
    if (!pg->log)
        return;
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    pg->log(sb.data);
    strbuf_free(&sb);
}

static char *path_join(const char *dir, const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_binaries(const char *dir)
{
    static const char *const progs[] = {"initdb", "pg_ctl", "postgres"};
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        char *p = path_join(dir, progs[i]);
        bool ok = access(p, X_OK) == 0;
        free(p);
        if (!ok)
            return false;
    }
    return true;
}

/* ---- who runs PostgreSQL ------------------------------------------------------------ */

/* PostgreSQL refuses to run as root, so a root rankqld runs it as pg_user. */
static bool resolve_user(pg_embedded *pg, const char *pg_user, char **err)
{
    if (geteuid() != 0) {
        pg->as.switch_user = false;
        pg->owner = geteuid();
        return true;
    }
    const char *name = pg_user && *pg_user ? pg_user : DEFAULT_PG_USER;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        *err = xasprintf("running as root, rankqld must run PostgreSQL as an unprivileged "
                         "user, but user '%s' does not exist; create it (useradd -r %s) or "
                         "pass --pg-user NAME",
                         name, name);
        return false;
    }
    if (pw->pw_uid == 0) {
        *err = xasprintf("--pg-user '%s' is root (uid 0), and PostgreSQL refuses to run as "
                         "root; name an unprivileged user such as postgres",
                         name);
        return false;
    }
    pg->user_name = xstrdup(name);
    pg->as.switch_user = true;
    pg->as.name = pg->user_name;
    pg->as.uid = pw->pw_uid;
    pg->as.gid = pw->pw_gid;
    pg->owner = pw->pw_uid;
    return true;
}

/* ---- the data directory ----------------------------------------------------------- */

/* mkdir -p: parents get 0755 (less the umask), like mkdir -p does. */
static bool mkdir_p(const char *path, char **err)
{
    char *p = xstrdup(path);
    bool ok = true;
    for (char *s = p + 1; ok; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            *err = xasprintf("cannot create directory %s: %s", p, strerror(errno));
            ok = false;
        } else if (!is_dir(p)) {
            *err = xasprintf("%s exists and is not a directory", p);
            ok = false;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    free(p);
    return ok;
}

/* pg_ctl runs the postmaster through a shell with paths in double quotes, and
 * unix_socket_directories is a comma-separated list: refuse what they break. */
static bool check_path_chars(const char *path, char **err)
{
    for (const char *p = path; *p; p++) {
        if (strchr("\"\\$`,", *p) || (unsigned char)*p < 0x20) {
            *err = xasprintf("data directory %s contains the character '%c', which PostgreSQL's "
                             "tools cannot take in a path; choose another --data-dir",
                             path, (unsigned char)*p < 0x20 ? '?' : *p);
            return false;
        }
    }
    return true;
}

/* One rankqld per data directory: two would start, adopt and stop the same
 * postmaster under each other. flock is released by the kernel when a
 * rankqld dies, so a kill -9 never leaves the directory locked. */
static bool take_lock(pg_embedded *pg, char **err)
{
    char *path = path_join(pg->data_dir, "rankqld.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        *err = xasprintf("cannot open lock file %s: %s", path, strerror(errno));
        free(path);
        return false;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        *err = xasprintf("another rankqld (pid %s) is using data directory %s; stop it first "
                         "or use another --data-dir",
                         *buf ? buf : "unknown", pg->data_dir);
        close(fd);
        free(path);
        return false;
    }
    /* The PostgreSQL user may run rankqld itself later, on the same directory. */
    if (pg->as.switch_user && fchown(fd, pg->as.uid, pg->as.gid) != 0) {
        *err = xasprintf("cannot give %s to user '%s': %s", path, pg->as.name, strerror(errno));
        close(fd);
        free(path);
        return false;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        *err = xasprintf("cannot write lock file %s: %s", path, strerror(errno));
        close(fd);
        free(path);
        return false;
    }
    free(path);
    pg->lock_fd = fd;
    return true;
}

/* As root, PostgreSQL's user must be able to walk down to the data
 * directory; check `dir` (the data directory, or its deepest existing
 * ancestor before it is created) as that user. */
static bool check_reachable(const pg_embedded *pg, const char *dir, const char *data_dir,
                            char **err)
{
    if (!pg->as.switch_user)
        return true;
    char *blocked = NULL, *why = NULL;
    if (pgproc_can_reach(&pg->as, dir, &blocked, &why))
        return true;
    if (!blocked) {
        *err = xasprintf("cannot check that user '%s' can reach %s: %s", pg->as.name, dir, why);
        free(why);
        return false;
    }
    struct stat st;
    char detail[64] = "";
    if (stat(blocked, &st) == 0)
        snprintf(detail, sizeof detail, " (mode %04o, owner uid %ld)",
                 (unsigned)(st.st_mode & 07777), (long)st.st_uid);
    *err = xasprintf("running as root, rankqld runs PostgreSQL as user '%s', who cannot enter "
                     "%s%s on the way to the data directory %s; use a --data-dir that '%s' "
                     "can reach (e.g. under /var/lib or /srv), or let it through "
                     "(chmod o+x %s)",
                     pg->as.name, blocked, detail, data_dir, pg->as.name, blocked);
    free(blocked);
    return false;
}

/* sun_path holds 108 bytes with its NUL on Linux; the server fails obscurely
 * when the socket path is longer, so say so up front. */
static bool check_socket_length(const char *data_dir, char **err)
{
    size_t len = strlen(data_dir) + strlen("/" SOCKET_DIR "/" SOCKET_FILE);
    size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
    if (len > max) {
        *err = xasprintf("the PostgreSQL socket path %s/" SOCKET_DIR "/" SOCKET_FILE " would be "
                         "%zu bytes, longer than the %zu a Unix socket path may have; use a "
                         "shorter --data-dir",
                         data_dir, len, max);
        return false;
    }
    return true;
}

/* Where `requested` will be once created: the real path of its deepest
 * existing ancestor plus the components still to be made, so that every
 * check runs before anything is created. Sets *existing to that ancestor. */
static char *prospective_path(const char *requested, char **existing, char **err)
{
    char cwd[PATH_MAX];
    if (requested[0] != '/' && !getcwd(cwd, sizeof cwd)) {
        *err = xasprintf("cannot resolve %s: getcwd: %s", requested, strerror(errno));
        return NULL;
    }
    char *abs = requested[0] == '/' ? xstrdup(requested) : xasprintf("%s/%s", cwd, requested);
    size_t cut = strlen(abs);
    for (;;) {
        char saved = abs[cut];
        abs[cut] = '\0';
        bool found = cut == 0 || is_dir(abs);
        abs[cut] = saved;
        if (found)
            break;
        while (cut > 0 && abs[--cut] != '/')
            ;
    }
    char resolved[PATH_MAX];
    char saved = abs[cut];
    abs[cut] = '\0';
    bool ok = realpath(cut == 0 ? "/" : abs, resolved) != NULL;
    abs[cut] = saved;
    if (!ok) {
        *err = xasprintf("cannot resolve data directory %s: %s", requested, strerror(errno));
        free(abs);
        return NULL;
    }
    *existing = xstrdup(resolved);
    strbuf out = {0};
    strbuf_puts(&out, strcmp(resolved, "/") == 0 ? "" : resolved);
    /* The rest does not exist yet, so no symlinks: only "." and ".." need care. */
    char *save = NULL;
    for (char *c = strtok_r(abs + cut, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            char *slash = out.len ? strrchr(out.data, '/') : NULL;
            if (slash) {
                out.len = (size_t)(slash - out.data);
                out.data[out.len] = '\0';
            }
            continue;
        }
        strbuf_printf(&out, "/%s", c);
    }
    free(abs);
    if (out.len == 0)
        strbuf_puts(&out, "/");
    return strbuf_detach(&out);
}

/* Checks the path, creates it if needed (root: 0711, so PostgreSQL's user
 * can pass through but not list; else 0700) and sets the layout paths. */
static bool make_data_dir(pg_embedded *pg, const char *requested, char **err)
{
    char *existing = NULL;
    char *target = prospective_path(requested, &existing, err);
    if (!target)
        return false;
    bool existed = strcmp(existing, target) == 0;
    bool ok = check_path_chars(target, err) && check_socket_length(target, err) &&
              check_reachable(pg, existing, target, err);
    if (ok && !existed) {
        ok = mkdir_p(target, err);
        if (ok && chmod(target, pg->as.switch_user ? 0711 : 0700) != 0) {
            *err = xasprintf("cannot set permissions on %s: %s", target, strerror(errno));
            ok = false;
        }
        ok = ok && check_reachable(pg, target, target, err);
    }
    free(existing);
    if (!ok) {
        free(target);
        return false;
    }
    pg->data_dir = target;
    pg->pgdata = path_join(target, "pg");
    pg->sockdir = path_join(target, SOCKET_DIR);
    pg->logfile = path_join(target, "pg.log");
    return true;
}

/* Creates path as a directory for the PostgreSQL user (or fixes its owner). */
static bool make_owned_dir(const pg_embedded *pg, const char *path, char **err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        *err = xasprintf("cannot create directory %s: %s", path, strerror(errno));
        return false;
    }
    if (!is_dir(path)) {
        *err = xasprintf("%s exists and is not a directory", path);
        return false;
    }
    if (pg->as.switch_user && chown(path, pg->as.uid, pg->as.gid) != 0) {
        *err = xasprintf("cannot give %s to user '%s': %s", path, pg->as.name, strerror(errno));
        return false;
    }
    return true;
}

/* ---- the binaries ----------------------------------------------------------------- */

/* Newest /usr/lib/postgresql/N/bin with the server programs, or NULL. */
static char *newest_debian_bindir(void)
{
    DIR *d = opendir("/usr/lib/postgresql");
    if (!d)
        return NULL;
    long best = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || v <= best)
            continue;
        char *dir = xasprintf("/usr/lib/postgresql/%s/bin", e->d_name);
        if (has_binaries(dir))
            best = v;
        free(dir);
    }
    closedir(d);
    return best < 0 ? NULL : xasprintf("/usr/lib/postgresql/%ld/bin", best);
}

/* `pg_config --bindir`, or NULL when pg_config is not on PATH or fails. */
static char *pg_config_bindir(void)
{
    const char *path = getenv("PATH");
    char *copy = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *found = NULL;
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
        char *p = path_join(dir, "pg_config");
        if (access(p, X_OK) == 0)
            found = p;
        else
            free(p);
    }
    free(copy);
    if (!found)
        return NULL;
    char out[PATH_MAX] = "", *err = NULL;
    char *argv[] = {found, "--bindir", NULL};
    pgproc_user self = {.switch_user = false};
    int st = pgproc_capture(&self, NULL, argv, out, sizeof out, &err);
    free(err);
    free(found);
    if (st != 0)
        return NULL;
    out[strcspn(out, "\n")] = '\0';
    return *out ? xstrdup(out) : NULL;
}

static bool find_bindir(pg_embedded *pg, const char *bindir, char **err)
{
    const char *env = getenv("RANKQL_PG_BINDIR");
    if (!bindir && env && *env)
        bindir = env;
    if (bindir) {
        if (!has_binaries(bindir)) {
            *err = xasprintf("%s%s: the PostgreSQL server programs initdb, pg_ctl and postgres "
                             "are not all there; point it at the directory that holds them "
                             "(e.g. /usr/lib/postgresql/15/bin) or unset it",
                             bindir == env ? "RANKQL_PG_BINDIR=" : "", bindir);
            return false;
        }
        pg->bindir = xstrdup(bindir);
        return true;
    }
    char *dir = pg_config_bindir();
    if (dir && has_binaries(dir)) {
        pg->bindir = dir;
        return true;
    }
    free(dir);
    pg->bindir = newest_debian_bindir();
    if (pg->bindir)
        return true;
    *err = xstrdup("cannot find the PostgreSQL server programs (initdb, pg_ctl, postgres): "
                   "neither `pg_config --bindir` nor /usr/lib/postgresql/*/bin has them; "
                   "install PostgreSQL 15 (apt-get install postgresql-15), set "
                   "RANKQL_PG_BINDIR to their directory, or use --db URL");
    return false;
}

/* Major version of the binaries, from `postgres --version`. */
static bool read_major(pg_embedded *pg, char **err)
{
    char *prog = path_join(pg->bindir, "postgres");
    char *argv[] = {prog, "--version", NULL};
    char out[256] = "", *why = NULL;
    int st = pgproc_capture(&pg->as, pg->data_dir, argv, out, sizeof out, &why);
    const char *num = strstr(out, "(PostgreSQL) ");
    if (st != 0 || !num) {
        *err = xasprintf("`%s --version` failed%s%s", prog, why ? ": " : "", why ? why : "");
        free(why);
        free(prog);
        return false;
    }
    free(prog);
    pg->major = atoi(num + strlen("(PostgreSQL) "));
    if (pg->major < MIN_MAJOR) {
        *err = xasprintf("the PostgreSQL in %s is version %d; rankql needs %d or newer "
                         "(15 is what it is tested with); set RANKQL_PG_BINDIR",
                         pg->bindir, pg->major, MIN_MAJOR);
        return false;
    }
    return true;
}

/* ---- the server log: where the programs write, and where errors come from --------- */

static int open_log(const pg_embedded *pg, char **err)
{
    int fd = open(pg->logfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        *err = xasprintf("cannot open %s: %s", pg->logfile, strerror(errno));
        return -1;
    }
    /* pg_ctl -l opens it again as the PostgreSQL user. */
    if (pg->as.switch_user && fchown(fd, pg->as.uid, pg->as.gid) != 0) {
        *err = xasprintf("cannot give %s to user '%s': %s", pg->logfile, pg->as.name,
                         strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool line_is_error(const char *line)
{
    static const char *const marks[] = {"FATAL:", "PANIC:", "ERROR:", "error", "could not",
                                        "cannot"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (strstr(line, marks[i]))
            return true;
    return false;
}

/* The most telling line the log gained since offset `from`: the last one that
 * looks like an error, else the last one. NULL if none. */
static char *log_excerpt(const pg_embedded *pg, off_t from)
{
    FILE *f = fopen(pg->logfile, "re");
    if (!f)
        return NULL;
    if (fseeko(f, from, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char line[1024], *last = NULL, *last_error = NULL;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!*line)
            continue;
        free(last);
        last = xstrdup(line);
        if (line_is_error(line)) {
            free(last_error);
            last_error = xstrdup(line);
        }
    }
    fclose(f);
    if (last_error) {
        free(last);
        return last_error;
    }
    return last;
}

static off_t log_size(const pg_embedded *pg)
{
    struct stat st;
    return stat(pg->logfile, &st) == 0 ? st.st_size : 0;
}

/* Runs one of PostgreSQL's programs with its output in the log; on failure
 * *err says what failed and quotes the log. */
static bool run_pg_tool(const pg_embedded *pg, char *const argv[], const char *what, char **err)
{
    char *why = NULL;
    int fd = open_log(pg, err);
    if (fd < 0)
        return false;
    off_t from = log_size(pg);
    int st = pgproc_run(&pg->as, pg->data_dir, argv, fd, &why);
    close(fd);
    if (st == 0)
        return true;
    if (st < 0) {
        *err = xasprintf("%s: %s", what, why);
        free(why);
        return false;
    }
    char *excerpt = log_excerpt(pg, from);
    *err = xasprintf("%s (exit status %d): %s (log: %s)", what, st,
                     excerpt ? excerpt : "no output", pg->logfile);
    free(excerpt);
    free(why);
    return false;
}

/* ---- the cluster ------------------------------------------------------------------ */

static int read_cluster_major(const pg_embedded *pg)
{
    char *p = path_join(pg->pgdata, "PG_VERSION");
    FILE *f = fopen(p, "re");
    free(p);
    if (!f)
        return 0;
    int v = 0;
    if (fscanf(f, "%d", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return true;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

static bool init_cluster(const pg_embedded *pg, char **err)
{
    if (!dir_is_empty(pg->pgdata)) {
        *err = xasprintf("%s exists but holds no PostgreSQL cluster (no PG_VERSION), probably "
                         "from an interrupted first start; remove it and start again",
                         pg->pgdata);
        return false;
    }
    if (!make_owned_dir(pg, pg->pgdata, err))
        return false;
    note(pg, "creating a PostgreSQL %d cluster in %s", pg->major, pg->pgdata);
    char *prog = path_join(pg->bindir, "initdb");
    char *argv[] = {prog, "-D", pg->pgdata, "-U", PG_EMBEDDED_SUPERUSER,
                    /* Trust is safe only because the socket directory is private (0700)
                     * and there is no TCP listener; TCP is rejected outright anyway. */
                    "--auth-local=trust", "--auth-host=reject", "-E", "UTF8",
                    "--locale=C.UTF-8", "--data-checksums", pg->no_sync ? "--no-sync" : NULL,
                    NULL};
    bool ok = run_pg_tool(pg, argv, "initdb failed", err);
    free(prog);
    return ok;
}

/* An existing cluster must match the binaries and belong to the user that
 * will run it; otherwise the server fails with messages far from the cause. */
static bool check_cluster(const pg_embedded *pg, int cluster_major, char **err)
{
    if (cluster_major != pg->major) {
        *err = xasprintf("%s was created by PostgreSQL %d but the programs in %s are "
                         "PostgreSQL %d; set RANKQL_PG_BINDIR to PostgreSQL %d's bin directory "
                         "(or pg_upgrade the cluster)",
                         pg->pgdata, cluster_major, pg->bindir, pg->major, cluster_major);
        return false;
    }
    struct stat st;
    if (stat(pg->pgdata, &st) != 0) {
        *err = xasprintf("cannot stat %s: %s", pg->pgdata, strerror(errno));
        return false;
    }
    if (st.st_uid != pg->owner) {
        struct passwd *pw = getpwuid(st.st_uid);
        *err = xasprintf("%s belongs to %s (uid %ld) but PostgreSQL would run as uid %ld; run "
                         "rankqld as that user, or as root with --pg-user %s",
                         pg->pgdata, pw ? pw->pw_name : "an unknown user", (long)st.st_uid,
                         (long)pg->owner, pw ? pw->pw_name : "NAME");
        return false;
    }
    return true;
}

static bool ensure_cluster(const pg_embedded *pg, char **err)
{
    int cluster_major = read_cluster_major(pg);
    if (cluster_major < 0) {
        *err = xasprintf("%s/PG_VERSION is unreadable; the cluster is damaged", pg->pgdata);
        return false;
    }
    if (cluster_major > 0)
        return check_cluster(pg, cluster_major, err);
    return init_cluster(pg, err);
}

/* postgresql.conf must include rankql.conf (added once; checked every start,
 * since without it the server would listen on TCP). */
static bool ensure_include(const pg_embedded *pg, char **err)
{
    char *conf = path_join(pg->pgdata, "postgresql.conf");
    FILE *f = fopen(conf, "re");
    if (!f) {
        *err = xasprintf("cannot read %s: %s", conf, strerror(errno));
        free(conf);
        return false;
    }
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        found = strcmp(line, CONF_INCLUDE) == 0;
    }
    fclose(f);
    bool ok = true;
    if (!found) {
        f = fopen(conf, "ae");
        ok = f && fputs("\n# Added by rankqld: the settings it manages (Unix socket only).\n"
                        CONF_INCLUDE "\n", f) >= 0;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok)
            *err = xasprintf("cannot append to %s: %s", conf, strerror(errno));
    }
    free(conf);
    return ok;
}

/* A postgresql.conf string value: '…' with ' doubled. */
static void conf_quote(strbuf *sb, const char *value)
{
    strbuf_putc(sb, '\'');
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            strbuf_putc(sb, '\'');
        strbuf_putc(sb, *p);
    }
    strbuf_putc(sb, '\'');
}

/* Rewritten at every start, so a moved data directory gets its new socket
 * path; written to a temporary file and renamed, never half-written. */
static bool write_conf(const pg_embedded *pg, char **err)
{
    strbuf sb = {0};
    strbuf_puts(&sb, "# Written by rankqld at every start; edits here are lost.\n"
                     "# Put your own settings above the include line in postgresql.conf.\n"
                     "listen_addresses = ''\n"
                     "port = " PG_PORT "\n"
                     "unix_socket_permissions = 0700\n"
                     "unix_socket_directories = ");
    conf_quote(&sb, pg->sockdir);
    strbuf_putc(&sb, '\n');
    if (pg->no_sync)
        /* Not synchronous_commit = off: that loses commits when the processes
         * are killed, which tests do on purpose. */
        strbuf_puts(&sb, "# --pg-no-sync (tests only): a power loss can corrupt the cluster.\n"
                         "fsync = off\nfull_page_writes = off\n");
    char *tmp = path_join(pg->pgdata, CONF_FILE ".tmp");
    char *dst = path_join(pg->pgdata, CONF_FILE);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, sb.data, sb.len) == (ssize_t)sb.len &&
              (!pg->as.switch_user || fchown(fd, pg->as.uid, pg->as.gid) == 0);
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, dst) != 0) {
        *err = xasprintf("cannot write %s: %s", dst, strerror(errno));
        unlink(tmp);
        ok = false;
    }
    free(tmp);
    free(dst);
    strbuf_free(&sb);
    return ok;
}

/* ---- finding a running server --------------------------------------------------------- */

/* Copies src into dst, truncated to fit. */
static void copy_field(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Reads a PostgreSQL lock file (postmaster.pid or the socket's .lock): line 1
 * pid, 2 data directory, 4 port, 5 socket directory. False if absent. */
static bool read_lockfile(const char *path, lockfile *lf)
{
    memset(lf, 0, sizeof *lf);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char line[PATH_MAX];
    for (int n = 1; n <= 5 && fgets(line, sizeof line, f); n++) {
        line[strcspn(line, "\n")] = '\0';
        if (n == 1)
            lf->pid = atol(line);
        else if (n == 2)
            copy_field(lf->datadir, sizeof lf->datadir, line);
        else if (n == 4)
            copy_field(lf->port, sizeof lf->port, line);
        else if (n == 5)
            copy_field(lf->sockdir, sizeof lf->sockdir, line);
    }
    fclose(f);
    return true;
}

/* Waits until the postmaster answers on our socket. 1: ready; 0: it died;
 * -1: it is alive but still silent after ADOPT_WAIT_SECONDS. */
static int wait_ready(const pg_embedded *pg, long pid)
{
    time_t deadline = time(NULL) + ADOPT_WAIT_SECONDS;
    for (;;) {
        if (PQping(pg->admin_conninfo) == PQPING_OK)
            return 1;
        if (!pgproc_alive((pid_t)pid))
            return 0;
        if (time(NULL) > deadline)
            return -1;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static bool pg_ctl(const pg_embedded *pg, const char *action, const char *what, char **err)
{
    char *prog = path_join(pg->bindir, "pg_ctl");
    bool start = strcmp(action, "start") == 0;
    char *argv[] = {prog, "-D", pg->pgdata, "-w", "-t", PG_CTL_TIMEOUT, "-s",
                    start ? "-l" : "-m", start ? pg->logfile : "fast", (char *)action, NULL};
    bool ok = run_pg_tool(pg, argv, what, err);
    free(prog);
    return ok;
}

/* A postmaster from an earlier rankqld (killed before it could stop it) is
 * still running on this cluster: use it. *adopted says whether we did. */
static bool try_adopt(pg_embedded *pg, const lockfile *pm, bool *adopted, char **err)
{
    *adopted = false;
    if (strcmp(pm->sockdir, pg->sockdir) != 0 || strcmp(pm->port, PG_PORT) != 0) {
        /* Started with another socket (the data directory moved): restart it
         * so it listens where our conninfo points. */
        note(pg, "restarting the PostgreSQL server (pid %ld) that listens on %s, not on %s",
             pm->pid, pm->sockdir, pg->sockdir);
        return pg_ctl(pg, "stop", "stopping the old PostgreSQL server failed", err);
    }
    int ready = wait_ready(pg, pm->pid);
    if (ready > 0) {
        note(pg, "adopted the PostgreSQL server (pid %ld) left running by an earlier rankqld",
             pm->pid);
        pg->pid = pm->pid;
        *adopted = true;
        return true;
    }
    if (ready < 0) {
        *err = xasprintf("a PostgreSQL server (pid %ld) runs on %s but does not answer on %s "
                         "within %d s; stop it (%s/pg_ctl -D %s -m fast stop) and start again",
                         pm->pid, pg->pgdata, pg->sockdir, ADOPT_WAIT_SECONDS, pg->bindir,
                         pg->pgdata);
        return false;
    }
    return true; /* it died while we waited: start a new one */
}

/* A lock file whose pid is not a live postgres is stale. PostgreSQL removes
 * most of these itself, but not when the pid has been reused by another
 * process (common after a reboot or in containers), so remove them here. */
static void remove_stale(const pg_embedded *pg, const char *path, long pid)
{
    if (unlink(path) == 0)
        note(pg, "removed stale %s (pid %ld is not a running PostgreSQL)", path, pid);
}

/* Adopts a running postmaster of this cluster, or clears what a dead one left
 * behind; fails if another server owns our socket. */
static bool adopt_or_clean(pg_embedded *pg, bool *adopted, char **err)
{
    *adopted = false;
    char *pidfile = path_join(pg->pgdata, "postmaster.pid");
    lockfile pm;
    bool ok = true;
    if (read_lockfile(pidfile, &pm)) {
        /* A negative pid is a standalone backend (postgres --single), e.g.
         * an operator's repair session: never take the cluster from it. */
        if (pm.pid < 0 && pgproc_is_postgres((pid_t)-pm.pid)) {
            *err = xasprintf("a standalone PostgreSQL backend (pid %ld) is using %s; wait for "
                             "it to finish",
                             -pm.pid, pg->pgdata);
            ok = false;
        } else if (pgproc_is_postgres((pid_t)pm.pid)) {
            ok = try_adopt(pg, &pm, adopted, err);
        }
        if (ok && !*adopted && !pgproc_is_postgres((pid_t)pm.pid))
            remove_stale(pg, pidfile, pm.pid);
    }
    free(pidfile);
    if (!ok || *adopted)
        return ok;

    char *socklock = xasprintf("%s/%s.lock", pg->sockdir, SOCKET_FILE);
    lockfile sl;
    if (read_lockfile(socklock, &sl)) {
        if (pgproc_is_postgres((pid_t)sl.pid)) {
            *err = xasprintf("the socket %s/%s is in use by another PostgreSQL server (pid %ld, "
                             "data directory %s); stop that server or use another --data-dir",
                             pg->sockdir, SOCKET_FILE, sl.pid, sl.datadir);
            ok = false;
        } else {
            remove_stale(pg, socklock, sl.pid);
        }
    }
    free(socklock);
    return ok;
}

static long read_postmaster_pid(const pg_embedded *pg)
{
    char *pidfile = path_join(pg->pgdata, "postmaster.pid");
    lockfile pm;
    long pid = read_lockfile(pidfile, &pm) ? pm.pid : 0;
    free(pidfile);
    return pid;
}

/* Everything from "cluster exists" to "postmaster answers". */
static bool bring_up(pg_embedded *pg, char **err)
{
    if (!make_owned_dir(pg, pg->sockdir, err) || !ensure_include(pg, err) ||
        !write_conf(pg, err))
        return false;
    bool adopted;
    if (!adopt_or_clean(pg, &adopted, err))
        return false;
    pg->adopted = adopted;
    if (adopted)
        return true;
    if (!pg_ctl(pg, "start", "starting PostgreSQL failed", err))
        return false;
    pg->pid = read_postmaster_pid(pg);
    note(pg, "started PostgreSQL %d (pid %ld) on %s", pg->major, pg->pid, pg->sockdir);
    return true;
}

/* ---- the database ------------------------------------------------------------------- */

static bool ensure_database(const pg_embedded *pg, char **err)
{
    PGconn *conn = PQconnectdb(pg->admin_conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        char *line = pq_one_line(PQerrorMessage(conn));
        *err = xasprintf("cannot connect to the embedded PostgreSQL: %s", line);
        free(line);
        PQfinish(conn);
        return false;
    }
    const char *params[1] = {PG_EMBEDDED_DATABASE};
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    bool exists = ok && PQntuples(res) > 0;
    if (ok && !exists) {
        PQclear(res);
        /* An identifier, and a constant one: nothing here comes from a user. */
        res = PQexec(conn, "CREATE DATABASE " PG_EMBEDDED_DATABASE);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
             (state && strcmp(state, "42P04") == 0); /* created meanwhile: fine */
    }
    if (!ok) {
        char *line = pq_one_line(PQresultErrorMessage(res));
        *err = xasprintf("cannot create database %s: %s", PG_EMBEDDED_DATABASE, line);
        free(line);
    }
    PQclear(res);
    PQfinish(conn);
    return ok;
}

static void build_conninfo(pg_embedded *pg)
{
    char *host = pq_conninfo_quote(pg->sockdir);
    pg->conninfo = xasprintf("host=%s port=%s user=%s dbname=%s", host, PG_PORT,
                             PG_EMBEDDED_SUPERUSER, PG_EMBEDDED_DATABASE);
    pg->admin_conninfo = xasprintf("host=%s port=%s user=%s dbname=postgres", host, PG_PORT,
                                   PG_EMBEDDED_SUPERUSER);
    free(host);
}

/* ---- public ------------------------------------------------------------------------- */

static void release(pg_embedded *pg)
{
    if (pg->lock_fd >= 0)
        close(pg->lock_fd); /* drops the flock */
    free(pg->data_dir);
    free(pg->pgdata);
    free(pg->sockdir);
    free(pg->logfile);
    free(pg->bindir);
    free(pg->conninfo);
    free(pg->admin_conninfo);
    free(pg->user_name);
    free(pg);
}

pg_embedded *pg_embedded_start(const pg_embedded_opts *opts, char **err)
{
    *err = NULL;
    if (!opts->data_dir || !*opts->data_dir) {
        *err = xstrdup("no data directory given");
        return NULL;
    }
    pg_embedded *pg = xcalloc(1, sizeof *pg);
    pg->lock_fd = -1;
    pg->no_sync = opts->no_sync;
    pg->log = opts->log;
    /* Nothing is created on disk until the binaries are found. */
    bool ok = resolve_user(pg, opts->pg_user, err) && find_bindir(pg, opts->bindir, err) &&
              make_data_dir(pg, opts->data_dir, err) && take_lock(pg, err) &&
              read_major(pg, err);
    if (ok) {
        build_conninfo(pg);
        ok = ensure_cluster(pg, err) && bring_up(pg, err) && ensure_database(pg, err);
    }
    if (!ok) {
        release(pg);
        return NULL;
    }
    return pg;
}

const char *pg_embedded_conninfo(const pg_embedded *pg)
{
    return pg->conninfo;
}

long pg_embedded_pid(const pg_embedded *pg)
{
    return pg->pid;
}

bool pg_embedded_adopted(const pg_embedded *pg)
{
    return pg->adopted;
}

bool pg_embedded_alive(const pg_embedded *pg)
{
    return pgproc_alive((pid_t)pg->pid);
}

int pg_embedded_restart(pg_embedded *pg, char **err)
{
    *err = NULL;
    return bring_up(pg, err) ? 0 : -1;
}

int pg_embedded_stop(pg_embedded *pg, char **err)
{
    *err = NULL;
    int rc = 0;
    long pid = read_postmaster_pid(pg);
    if (pid > 0 && pgproc_is_postgres((pid_t)pid)) {
        if (pg_ctl(pg, "stop", "stopping PostgreSQL failed", err))
            note(pg, "stopped PostgreSQL (pid %ld)", pid);
        else
            rc = -1;
    }
    release(pg);
    return rc;
}
