/* The `exec` model runner: an external command embeds the slice through files in a private
 * temporary directory (docs/runners.md "exec"):
 *
 *   <dir>/input.npy | input.txt   the examples (uint8/float32 images, float32 vectors, texts)
 *   <dir>/labels.npy              int32 labels, when the dataset has them
 *   <dir>/request.json            {"n", "kind", "shape", "dtype", "num_classes", "model", …}
 *   <dir>/features.npy            written by the command: float32 (n, d), C order
 *
 * The command runs without a shell (fork + execvpe) in its own process group, with
 * RANKQL_INPUT_DIR, RANKQL_OUTPUT and RANKQL_REQUEST added to the environment (and the
 * spec's "env"); its stdout goes to the worker's stderr, its stderr too, the tail of it kept
 * for the error message. A timeout or should_stop kills the whole group. The directory is
 * removed on every path. */
#include "executor/workers/runners/runners.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

extern char **environ;

#define DEFAULT_TIMEOUT 3600.0
#define TAIL_KEEP 4096
#define EX_TEMPFAIL_CODE 75 /* sysexits.h EX_TEMPFAIL: "try again later" → the job is retried */

/* ---- NPY ------------------------------------------------------------------------------ */

/* Writes a version 1.0 NPY file: descr ("|u1", "<f4", "<i4"), shape dims, data. */
static int npy_write(const char *path, const char *descr, const size_t *shape, int ndim,
                     const void *data, size_t nbytes, char **err)
{
    strbuf h = {0};
    strbuf_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++)
        strbuf_printf(&h, "%zu%s", shape[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    strbuf_puts(&h, "), }");
    while ((10 + h.len + 1) % 64 != 0)
        strbuf_putc(&h, ' ');
    strbuf_putc(&h, '\n');
    FILE *f = fopen(path, "wb");
    if (!f) {
        *err = xasprintf("cannot create %s: %s", path, strerror(errno));
        strbuf_free(&h);
        return -1;
    }
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(h.len & 0xff),
                             (unsigned char)(h.len >> 8)};
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(h.data, 1, h.len, f) == h.len &&
              (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
    strbuf_free(&h);
    if (fclose(f) != 0)
        ok = false;
    if (!ok) {
        *err = xasprintf("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads the command's output: a float32 or float64 (n, d) C-order NPY with exactly `rows`
 * rows. *out = rows × *dim floats, all finite. */
static int npy_read_features(const char *path, size_t rows, float **out, size_t *dim,
                             char **err)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) {
        if (errno == ENOENT)
            *err = xasprintf("the command exited with status 0 but wrote no features file "
                             "(RANKQL_OUTPUT=%s)", path);
        else
            *err = xasprintf("cannot read the command's features %s: %s", path,
                             strerror(errno));
        return -1;
    }
    const unsigned char *b = (const unsigned char *)buf;
    int rc = -1;
    size_t hlen, hoff;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
        *err = xasprintf("the command's features file is not an NPY file (bad magic)");
        goto out;
    }
    if (b[6] == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hoff = 10;
    } else if ((b[6] == 2 || b[6] == 3) && len >= 12) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hoff = 12;
    } else {
        *err = xasprintf("the command's features file has an unsupported NPY version %d",
                         b[6]);
        goto out;
    }
    if (hlen > len - hoff) {
        *err = xasprintf("the command's features file is truncated (header)");
        goto out;
    }
    char *hdr = xstrndup(buf + hoff, hlen);
    const char *d = strstr(hdr, "'descr'"), *fo = strstr(hdr, "'fortran_order'"),
               *sh = strstr(hdr, "'shape'");
    char descr[16] = "";
    if (d) {
        const char *q = strchr(d + 7, '\'');
        const char *e = q ? strchr(q + 1, '\'') : NULL;
        if (e && (size_t)(e - q - 1) < sizeof descr)
            memcpy(descr, q + 1, (size_t)(e - q - 1)), descr[e - q - 1] = '\0';
    }
    size_t elem = 0;
    if (strcmp(descr, "<f4") == 0)
        elem = 4;
    else if (strcmp(descr, "<f8") == 0)
        elem = 8;
    bool fortran = fo && strncmp(fo + 15 + strspn(fo + 15, ": "), "True", 4) == 0;
    size_t shape[3] = {0};
    int ndim = -1;
    if (sh) {
        const char *p = strchr(sh, '(');
        const char *e = p ? strchr(p, ')') : NULL;
        if (p && e) {
            ndim = 0;
            for (p++; p < e && ndim <= 2;) {
                p += strspn(p, " ,");
                if (p >= e)
                    break;
                char *end;
                errno = 0;
                unsigned long long v = strtoull(p, &end, 10);
                if (end == p || errno) {
                    ndim = -1;
                    break;
                }
                shape[ndim++] = (size_t)v;
                p = end;
            }
        }
    }
    free(hdr);
    if (!elem) {
        *err = xasprintf("the command's features have dtype '%s': float32 ('<f4') or "
                         "float64 ('<f8') expected", descr);
        goto out;
    }
    if (fortran) {
        *err = xasprintf("the command's features are in Fortran order: write a C-order array "
                         "(numpy.ascontiguousarray)");
        goto out;
    }
    if (ndim != 2) {
        *err = xasprintf("the command's features must be a 2-D array (n, d); got %d dimensions",
                         ndim < 0 ? 0 : ndim);
        goto out;
    }
    if (shape[0] != rows) {
        *err = xasprintf("the command wrote %zu rows of features for %zu examples", shape[0],
                         rows);
        goto out;
    }
    if (shape[1] == 0) {
        *err = xasprintf("the command's features have 0 columns");
        goto out;
    }
    if (shape[1] > SIZE_MAX / elem / (rows ? rows : 1)) {
        *err = xasprintf("the command's features are too large");
        goto out;
    }
    size_t count = rows * shape[1];
    if (len - hoff - hlen != count * elem) {
        *err = xasprintf("the command's features file holds %zu data bytes; (%zu, %zu) × %zu "
                         "needs %zu", len - hoff - hlen, rows, shape[1], elem, count * elem);
        goto out;
    }
    const unsigned char *data = b + hoff + hlen;
    float *x = xmalloc(count * sizeof(float) + 1);
    for (size_t i = 0; i < count; i++) {
        double v;
        if (elem == 4) {
            float f;
            memcpy(&f, data + i * 4, 4);
            v = f;
        } else {
            memcpy(&v, data + i * 8, 8);
        }
        if (!isfinite(v) || (elem == 8 && fabs(v) > 3.4028234663852886e38)) {
            *err = xasprintf("the command's features are not all finite (row %zu, column %zu "
                             "is %g)", i / shape[1], i % shape[1], v);
            free(x);
            goto out;
        }
        x[i] = (float)v;
    }
    *out = x;
    *dim = shape[1];
    rc = 0;
out:
    free(buf);
    return rc;
}

/* ---- the temporary directory ---------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Texts, one per line: backslash, newline and carriage return escaped as \\, \n, \r. */
static int write_texts(const char *path, const dataset *ds, char **err)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        *err = xasprintf("cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < ds->n; i++) {
        for (const char *p = ds->texts[i]; *p; p++) {
            if (*p == '\\')
                fputs("\\\\", f);
            else if (*p == '\n')
                fputs("\\n", f);
            else if (*p == '\r')
                fputs("\\r", f);
            else
                fputc(*p, f);
        }
        fputc('\n', f);
    }
    if (ferror(f) | (fclose(f) != 0)) {
        *err = xasprintf("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_inputs(const char *dir, const runner_call *call, char **err)
{
    const dataset *ds = call->ds;
    char *p = NULL;
    int rc = 0;
    json_t *shape = json_array();
    const char *kind = dataset_kind_name(ds->kind), *dtype = NULL, *input = "input.npy";
    if (ds->kind == DATASET_TEXTS) {
        input = "input.txt";
        p = xasprintf("%s/input.txt", dir);
        rc = write_texts(p, ds, err);
    } else if (ds->kind == DATASET_FEATURES) {
        size_t sh[2] = {ds->n, ds->dim};
        dtype = "float32";
        json_array_append_new(shape, json_integer((json_int_t)ds->dim));
        p = xasprintf("%s/input.npy", dir);
        rc = npy_write(p, "<f4", sh, 2, ds->features, ds->n * ds->dim * sizeof(float), err);
    } else {
        size_t sh[4] = {ds->n, ds->height, ds->width, ds->channels};
        size_t per = ds->height * ds->width * ds->channels;
        bool u8 = ds->pixel == DATASET_PIXEL_U8;
        dtype = u8 ? "uint8" : "float32";
        for (int i = 1; i < 4; i++)
            json_array_append_new(shape, json_integer((json_int_t)sh[i]));
        p = xasprintf("%s/input.npy", dir);
        rc = u8 ? npy_write(p, "|u1", sh, 4, ds->u8, ds->n * per, err)
                : npy_write(p, "<f4", sh, 4, ds->f32, ds->n * per * sizeof(float), err);
    }
    free(p);
    if (rc == 0 && ds->labels) {
        size_t sh[1] = {ds->n};
        p = xasprintf("%s/labels.npy", dir);
        rc = npy_write(p, "<i4", sh, 1, ds->labels, ds->n * sizeof(int32_t), err);
        free(p);
    }
    if (rc == 0) {
        json_t *req = json_pack("{s:I, s:s, s:o, s:s?, s:s, s:b, s:I, s:O, s:s}", "n",
                                (json_int_t)ds->n, "kind", kind, "shape", shape, "dtype", dtype,
                                "input", input, "labels", ds->labels != NULL, "num_classes",
                                (json_int_t)ds->num_classes, "model", call->model, "dataset",
                                call->dataset_name);
        shape = NULL;
        p = xasprintf("%s/request.json", dir);
        if (!req || json_dump_file(req, p, JSON_SORT_KEYS | JSON_INDENT(1)) != 0) {
            *err = xasprintf("cannot write %s", p);
            rc = -1;
        }
        json_decref(req);
        free(p);
    }
    json_decref(shape);
    return rc;
}

/* ---- the spec ------------------------------------------------------------------------- */

typedef struct exec_spec {
    char **argv;      /* NULL-terminated; strings borrowed from the spec */
    size_t argc;
    const json_t *env;
    double timeout;
} exec_spec;

static int parse_spec(const runner_call *call, exec_spec *s, char **err)
{
    memset(s, 0, sizeof *s);
    s->timeout = DEFAULT_TIMEOUT;
    const char *m = call->model_name;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)call->spec, key, v) {
        if (strcmp(key, "command") && strcmp(key, "env") && strcmp(key, "timeout_seconds"))
            return (*err = xasprintf("model %s: unknown exec spec key \"%s\" (command, env, "
                                     "timeout_seconds)", m, key)), -1;
    }
    const json_t *cmd = json_object_get(call->spec, "command");
    if (!json_is_array(cmd) || json_array_size(cmd) == 0)
        return (*err = xasprintf("model %s: exec spec \"command\" must be a non-empty array of "
                                 "strings", m)), -1;
    s->argc = json_array_size(cmd);
    s->argv = xcalloc(s->argc + 1, sizeof *s->argv);
    for (size_t i = 0; i < s->argc; i++) {
        v = json_array_get(cmd, i);
        if (!json_is_string(v) || (i == 0 && !*json_string_value(v))) {
            free(s->argv);
            s->argv = NULL;
            return (*err = xasprintf("model %s: exec spec \"command\"[%zu] must be a %sstring",
                                     m, i, i == 0 ? "non-empty " : "")), -1;
        }
        s->argv[i] = (char *)json_string_value(v);
    }
    s->env = json_object_get(call->spec, "env");
    if (s->env && !json_is_null(s->env)) {
        if (!json_is_object(s->env))
            goto bad_env;
        json_object_foreach((json_t *)s->env, key, v) {
            if (!json_is_string(v) || !*key || strchr(key, '='))
                goto bad_env;
        }
    } else {
        s->env = NULL;
    }
    v = json_object_get(call->spec, "timeout_seconds");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v) || !(json_number_value(v) > 0)) {
            free(s->argv);
            s->argv = NULL;
            return (*err = xasprintf("model %s: exec spec \"timeout_seconds\" must be a "
                                     "positive number", m)), -1;
        }
        s->timeout = json_number_value(v);
    }
    return 0;
bad_env:
    free(s->argv);
    s->argv = NULL;
    return (*err = xasprintf("model %s: exec spec \"env\" must be an object of string values "
                             "with names without '='", m)), -1;
}

static bool overridden(const char *entry, const json_t *env)
{
    static const char *const ours[] = {"RANKQL_INPUT_DIR=", "RANKQL_OUTPUT=",
                                       "RANKQL_REQUEST=", "RANKQL_OP=", "RANKQL_WEIGHTS="};
    for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
        if (strncmp(entry, ours[i], strlen(ours[i])) == 0)
            return true;
    if (env) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)env, key, v) {
            size_t k = strlen(key);
            if (strncmp(entry, key, k) == 0 && entry[k] == '=')
                return true;
        }
    }
    return false;
}

/* The child's environment: ours minus what is overridden, then the spec's env, then the
 * protocol's variables. Every string is allocated (freed by free_env). */
static char **build_env_op(const exec_spec *s, const char *dir, const char *op,
                           const char *output)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    size_t extra = 5 + (s->env ? json_object_size(s->env) : 0);
    char **env = xcalloc(n + extra + 1, sizeof *env);
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (!overridden(*e, s->env))
            env[k++] = xstrdup(*e);
    if (s->env) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)s->env, key, v)
            env[k++] = xasprintf("%s=%s", key, json_string_value(v));
    }
    env[k++] = xasprintf("RANKQL_INPUT_DIR=%s", dir);
    env[k++] = xasprintf("RANKQL_OUTPUT=%s/%s", dir, output);
    env[k++] = xasprintf("RANKQL_REQUEST=%s/request.json", dir);
    env[k++] = xasprintf("RANKQL_OP=%s", op);
    if (strcmp(op, "finetune") == 0)
        env[k++] = xasprintf("RANKQL_WEIGHTS=%s/weights", dir);
    env[k] = NULL;
    return env;
}

static char **build_env(const exec_spec *s, const char *dir)
{
    return build_env_op(s, dir, "embed", "features.npy");
}

static void free_env(char **env)
{
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

/* ---- running the command -------------------------------------------------------------- */

static void forward_stderr(const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, buf, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        buf += w;
        n -= (size_t)w;
    }
}

/* Reads what is there on the stderr pipe; false at EOF or error. */
static bool pump(int fd, strbuf *tail)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            forward_stderr(buf, (size_t)r);
            strbuf_append_tail(tail, buf, (size_t)r, TAIL_KEEP);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        return false;
    }
}

typedef struct child_outcome {
    int status;        /* waitpid status */
    bool timed_out, stopped;
} child_outcome;

static int run_command(const exec_spec *s, char **env, job_ctx *ctx, strbuf *tail,
                       child_outcome *oc, char **err, bool *permanent)
{
    memset(oc, 0, sizeof *oc);
    int errp[2], statp[2];
    if (pipe2(errp, O_CLOEXEC) != 0)
        return job_fail(err, permanent, false, "cannot create a pipe: %s", strerror(errno));
    if (pipe2(statp, O_CLOEXEC) != 0) {
        close(errp[0]), close(errp[1]);
        return job_fail(err, permanent, false, "cannot create a pipe: %s", strerror(errno));
    }
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(errp[0]), close(errp[1]), close(statp[0]), close(statp[1]);
        if (devnull >= 0)
            close(devnull);
        return job_fail(err, permanent, false, "cannot fork: %s", strerror(e));
    }
    if (pid == 0) {
        /* The child: async-signal-safe calls only (the worker has other threads). */
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &dfl, NULL);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(STDERR_FILENO, STDOUT_FILENO);  /* stdout → the worker's stderr */
        dup2(errp[1], STDERR_FILENO);        /* stderr → the pipe (tail for the message) */
        /* execvpe closes statp[1] (O_CLOEXEC) on success; on failure errno goes through. */
        execvpe(s->argv[0], s->argv, env);
        int e = errno;
        ssize_t w = write(statp[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    setpgid(pid, pid); /* also in the parent: no race with kill(-pid) below */
    close(errp[1]);
    close(statp[1]);
    if (devnull >= 0)
        close(devnull);
    int exec_errno = 0;
    ssize_t r;
    do
        r = read(statp[0], &exec_errno, sizeof exec_errno);
    while (r < 0 && errno == EINTR);
    close(statp[0]);
    if (r == (ssize_t)sizeof exec_errno) {
        close(errp[0]);
        while (waitpid(pid, &oc->status, 0) < 0 && errno == EINTR)
            ;
        return job_fail(err, permanent, true, "cannot run command '%s': %s", s->argv[0],
                    strerror(exec_errno));
    }
    fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);

    double deadline = now_seconds() + s->timeout;
    bool open_pipe = true, exited = false;
    while (!exited) {
        struct pollfd pfd = {errp[0], POLLIN, 0};
        int pr = poll(&pfd, open_pipe ? 1 : 0, 100);
        if (pr > 0 && open_pipe)
            open_pipe = pump(errp[0], tail);
        pid_t w = waitpid(pid, &oc->status, WNOHANG);
        if (w == pid) {
            exited = true;
            break;
        }
        if (!oc->timed_out && !oc->stopped) {
            if (now_seconds() > deadline)
                oc->timed_out = true;
            else if (ctx && ctx->should_stop && ctx->should_stop(ctx->stop_arg))
                oc->stopped = true;
            if (oc->timed_out || oc->stopped)
                kill(-pid, SIGKILL);
        }
    }
    /* Whatever the command left running in its group goes too; then drain the pipe. */
    kill(-pid, SIGKILL);
    double drain_until = now_seconds() + 1.0;
    while (open_pipe && now_seconds() < drain_until) {
        struct pollfd pfd = {errp[0], POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0)
            open_pipe = pump(errp[0], tail);
    }
    close(errp[0]);
    return 0;
}

/* How a command ended, as the job's error: stopped (cancelled or lease lost), timed out
 * (permanent), killed by a signal, or a non-zero exit (permanent but for EX_TEMPFAIL, 75).
 * line is the last line of its stderr (NULL: none); what names the job ("embed job"). True
 * when it failed (then *err and *permanent are set). */
static bool command_failed(const exec_spec *s, const child_outcome *oc, const char *line,
                           const char *what, char **err, bool *permanent)
{
    if (oc->stopped) {
        job_fail(err, permanent, false, "%s stopped (cancelled or lease lost): command '%s' "
                 "killed", what, s->argv[0]);
        return true;
    }
    if (oc->timed_out) {
        job_fail(err, permanent, true, "command '%s' timed out after %g s (timeout_seconds) and "
                 "was killed", s->argv[0], s->timeout);
        return true;
    }
    if (WIFSIGNALED(oc->status)) {
        job_fail(err, permanent, false, "command '%s' was killed by signal %d%s%s", s->argv[0],
                 WTERMSIG(oc->status), line ? ": " : "", line ? line : "");
        return true;
    }
    if (WEXITSTATUS(oc->status) != 0) {
        int st = WEXITSTATUS(oc->status);
        job_fail(err, permanent, st != EX_TEMPFAIL_CODE, "command '%s' exited with status %d: %s",
                 s->argv[0], st, line ? line : "(nothing on stderr)");
        return true;
    }
    return false;
}

/* ---- the runner ----------------------------------------------------------------------- */

/* What the embed and finetune operations both do first: parse the spec into *s and make a
 * fresh temporary directory (*dir); -1 with *err set (s released) when either fails. */
static int op_begin(const runner_call *call, exec_spec *s, char **dir, char **err,
                    bool *permanent)
{
    if (parse_spec(call, s, err) != 0) {
        *permanent = true;
        return -1;
    }
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    *dir = xasprintf("%s/rankql-exec-XXXXXX", base);
    if (!mkdtemp(*dir)) {
        int e = errno;
        free(*dir);
        *dir = NULL;
        free(s->argv);
        return job_fail(err, permanent, false, "cannot create a temporary directory in %s: %s",
                        base, strerror(e));
    }
    return 0;
}

/* Runs an operation's command (reported as "<doing> <script>" at progress fraction at) and
 * judges how it ended (command_failed, what names the job); 0 when it exited 0. */
static int op_run(const exec_spec *s, char **env, job_ctx *ctx, double at, const char *doing,
                  const char *what, char **err, bool *permanent)
{
    if (ctx && ctx->progress) {
        char note[160];
        snprintf(note, sizeof note, "%s %.120s", doing, s->argv[s->argc > 1 ? 1 : 0]);
        ctx->progress(ctx->progress_arg, at, note);
    }
    strbuf tail = {0};
    child_outcome oc;
    int rc = run_command(s, env, ctx, &tail, &oc, err, permanent);
    char *line = rc == 0 ? strbuf_last_line(&tail) : NULL;
    if (rc == 0 && command_failed(s, &oc, line, what, err, permanent))
        rc = -1;
    free(line);
    strbuf_free(&tail);
    return rc;
}

/* Both operations' clean-up: the environment, the temporary directory, the spec. */
static void op_end(exec_spec *s, char *dir, char **env)
{
    if (env)
        free_env(env);
    remove_tree(dir);
    free(dir);
    free(s->argv);
}

int exec_runner_embed(const runner_call *call, float **out, size_t *dim, char **err,
                      bool *permanent)
{
    *out = NULL;
    *dim = 0;
    *permanent = false;
    exec_spec s;
    char *dir;
    if (op_begin(call, &s, &dir, err, permanent) != 0)
        return -1;
    int rc = -1;
    char **env = NULL;
    char *outpath = NULL;
    if (write_inputs(dir, call, err) != 0) {
        *permanent = false;
        goto done;
    }
    env = build_env(&s, dir);
    if (op_run(&s, env, call->ctx, 0, "running", "embed job", err, permanent) != 0)
        goto done;
    outpath = xasprintf("%s/features.npy", dir);
    if (npy_read_features(outpath, call->ds->n, out, dim, err) != 0) {
        *permanent = true;
        if (call->output_fault)
            *call->output_fault = true;
        goto done;
    }
    rc = 0;
done:
    free(outpath);
    op_end(&s, dir, env);
    return rc;
}

/* ---- the finetune operation (docs/runners.md "exec: fine-tuning") ----------------------- */

/* Copies src to dst atomically (temp file, fsync, rename): the weights leave the temporary
 * directory, which may be on another file system than the data directory. */
static int copy_file(const char *src, const char *dst, char **err)
{
    size_t len = 0;
    char *buf = read_file(src, &len);
    if (!buf)
        return (*err = xasprintf("cannot read %s: %s", src, strerror(errno))), -1;
    char *tmp = xasprintf("%s.tmp.%ld", dst, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -1 : 0;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -1;
        else
            off += (size_t)w;
    }
    if (rc == 0)
        rc = fsync(fd);
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    if (rc == 0)
        rc = rename(tmp, dst);
    if (rc != 0) {
        *err = xasprintf("cannot write %s: %s", dst, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(buf);
    return rc;
}

int exec_runner_finetune(const runner_call *train, const dataset *test, const char *test_name,
                         const json_t *knobs, const char *weights_path, json_t **answer,
                         bool *weights_written, char **err, bool *permanent)
{
    *answer = NULL;
    *weights_written = false;
    *permanent = false;
    exec_spec s;
    char *dir;
    if (op_begin(train, &s, &dir, err, permanent) != 0)
        return -1;
    int rc = -1;
    char **env = NULL;
    char *p = NULL, *tdir = xasprintf("%s/train", dir), *sdir = xasprintf("%s/test", dir);
    runner_call tc = *train;
    tc.ds = test;
    tc.dataset_name = test_name;
    if (mkdir(tdir, 0700) != 0 || mkdir(sdir, 0700) != 0) {
        job_fail(err, permanent, false, "cannot create %s: %s", tdir, strerror(errno));
        goto done;
    }
    /* train/ and test/ as the embed operation's directory; request.json on top. */
    if (write_inputs(tdir, train, err) != 0 || write_inputs(sdir, &tc, err) != 0)
        goto done;
    json_t *req = json_pack("{s:s, s:s, s:s, s:O, s:O, s:I, s:I, s:I, s:s, s:s}", "op",
                            "finetune", "train", "train", "test", "test", "knobs", knobs,
                            "model", train->model, "num_classes",
                            (json_int_t)(train->ds->num_classes > test->num_classes
                                             ? train->ds->num_classes
                                             : test->num_classes),
                            "n_train", (json_int_t)train->ds->n, "n_test", (json_int_t)test->n,
                            "output", "result.json", "weights", "weights");
    p = xasprintf("%s/request.json", dir);
    int dumped = req ? json_dump_file(req, p, JSON_SORT_KEYS | JSON_INDENT(1)) : -1;
    json_decref(req);
    if (dumped != 0) {
        job_fail(err, permanent, false, "cannot write %s", p);
        goto done;
    }
    env = build_env_op(&s, dir, "finetune", "result.json");
    if (op_run(&s, env, train->ctx, 0.05, "fine-tuning with", "fine-tune", err, permanent) != 0)
        goto done;
    free(p);
    p = xasprintf("%s/result.json", dir);
    json_error_t je;
    json_t *res = json_load_file(p, 0, &je);
    const json_t *ta = json_object_get(res, "test_accuracy");
    const json_t *tr = json_object_get(res, "train_accuracy");
    if (!json_is_object(res) || !json_is_number(ta) || !(json_number_value(ta) >= 0) ||
        json_number_value(ta) > 1 ||
        (tr && !json_is_null(tr) &&
         (!json_is_number(tr) || !(json_number_value(tr) >= 0) || json_number_value(tr) > 1))) {
        job_fail(err, permanent, true, "command '%s' wrote no valid %s: it must be a JSON object "
                 "with test_accuracy (and optionally train_accuracy) in [0, 1]%s%s",
                 s.argv[0], "$RANKQL_OUTPUT", res ? "" : ": ", res ? "" : je.text);
        json_decref(res);
        goto done;
    }
    free(p);
    p = xasprintf("%s/weights", dir);
    struct stat st;
    if (weights_path && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
        if (copy_file(p, weights_path, err) != 0) {
            json_decref(res);
            goto done;
        }
        *weights_written = true;
    }
    *answer = res;
    rc = 0;
done:
    free(p);
    free(tdir);
    free(sdir);
    op_end(&s, dir, env);
    return rc;
}
