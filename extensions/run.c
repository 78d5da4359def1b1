/* Running a strategy and checking its answer (docs/extensions.md). Builtins run in this
 * process; C plugins and process plugins in a child process with its own process group, so
 * that a crash, a hang or a plugin's own children cannot take the worker with them: the
 * whole group is killed at the time limit, when the job is cancelled, and when it ends. */
#include "extensions/extensions.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

enum { TAIL_KEEP = 4096, MAX_OUTPUT = 64 * 1024 * 1024, MAX_HOST_LINE = 16 * 1024 * 1024 };

/* The fds a process plugin finds the host socket on: it writes requests to HOST_FD_REQ and
 * reads answers from HOST_FD_ANS (both the same socket; docs/extensions.md "Host API"). */
enum { HOST_FD_REQ = 3, HOST_FD_ANS = 4 };

/* ---- the answer ----------------------------------------------------------------------- */

json_t *ext_check_ranking(const json_t *models, const json_t *out, char **err)
{
    if (!json_is_array(out)) {
        *err = xstrdup("malformed output: expected a JSON array of {\"json_model\" or "
                       "\"model_id\", \"err\"}");
        return NULL;
    }
    size_t n = json_array_size(models);
    bool *seen = xcalloc(n + 1, sizeof *seen);
    json_t *ranking = json_array();
    for (size_t i = 0; i < json_array_size(out); i++) {
        json_t *e = json_array_get(out, i);
        json_t *id = NULL;
        if (json_is_object(e)) {
            id = json_object_get(e, "model_id");
            json_t *jm = json_object_get(e, "json_model");
            if (!id && json_is_object(jm))
                id = json_object_get(jm, "id");
        }
        json_t *ev = json_is_object(e) ? json_object_get(e, "err") : NULL;
        if (!json_is_integer(id) || !json_is_number(ev)) {
            *err = xasprintf("malformed output: entry %zu needs \"json_model\": {\"id\": …} (or "
                             "\"model_id\") and a number \"err\"",
                             i);
            goto fail;
        }
        double v = json_number_value(ev);
        if (!isfinite(v)) {
            *err = xasprintf("malformed output: entry %zu: err is not finite", i);
            goto fail;
        }
        json_int_t mid = json_integer_value(id);
        size_t k = n;
        for (size_t j = 0; j < n; j++)
            if (json_integer_value(json_object_get(json_array_get(models, j), "id")) == mid) {
                k = j;
                break;
            }
        if (k == n) {
            *err = xasprintf("malformed output: entry %zu: model %lld is not a candidate", i,
                             (long long)mid);
            goto fail;
        }
        if (seen[k]) {
            *err = xasprintf("malformed output: model %lld appears twice", (long long)mid);
            goto fail;
        }
        seen[k] = true;
        json_array_append_new(ranking, json_pack("{s:I, s:f}", "model_id", mid, "err", v));
    }
    for (size_t j = 0; j < n; j++)
        if (!seen[j]) {
            *err = xasprintf("malformed output: model %lld (%s) is missing: answer every "
                             "model once",
                             (long long)json_integer_value(
                                 json_object_get(json_array_get(models, j), "id")),
                             json_string_value(json_object_get(json_array_get(models, j), "name")));
            goto fail;
        }
    free(seen);
    return ranking;
fail:
    free(seen);
    json_decref(ranking);
    return NULL;
}


/* ---- the host API: the plugin side ---------------------------------------------------- */

unsigned ext_abi_of(const ext_strategy *s)
{
    if (s->kind == EXT_PROCESS)
        return 2;
    if (s->abi_version)
        return s->abi_version;
    return s->ext ? s->ext->abi_version : 1;
}

/* How rqx_host calls reach the engine: directly (a builtin, in the worker) or as JSON lines
 * over a socket to the worker thread that runs the child (C plugins). */
typedef struct host_link {
    const ext_host_ops *direct;
    int fd;
    strbuf in;            /* bytes read past the last answer (none in a strict exchange) */
} host_link;

static int write_all(int fd, const char *s, size_t n);

static void set_msg(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Sends one request (stolen) and returns the answer when it says ok; NULL with err. */
static json_t *link_call(host_link *l, json_t *req, char *err, size_t errlen)
{
    json_t *ans = NULL;
    if (l->direct) {
        ans = l->direct->call(l->direct->arg, req);
    } else if (l->fd >= 0) {
        char *text = json_dumps(req, JSON_COMPACT);
        int w = text ? write_all(l->fd, text, strlen(text)) : -1;
        if (w == 0)
            w = write_all(l->fd, "\n", 1);
        free(text);
        if (w != 0) {
            json_decref(req);
            set_msg(err, errlen, "host API: cannot send the request: %s", strerror(errno));
            return NULL;
        }
        for (;;) {
            char *nl = l->in.data ? memchr(l->in.data, '\n', l->in.len) : NULL;
            if (nl) {
                size_t n = (size_t)(nl - l->in.data);
                json_error_t je;
                ans = json_loadb(l->in.data, n, 0, &je);
                memmove(l->in.data, nl + 1, l->in.len - n - 1);
                l->in.len -= n + 1;
                break;
            }
            char buf[4096];
            ssize_t r = read(l->fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                json_decref(req);
                set_msg(err, errlen, "host API: the engine closed the connection");
                return NULL;
            }
            strbuf_append(&l->in, buf, (size_t)r);
        }
    } else {
        json_decref(req);
        set_msg(err, errlen, "host API: not available here");
        return NULL;
    }
    json_decref(req);
    if (!json_is_object(ans)) {
        json_decref(ans);
        set_msg(err, errlen, "host API: malformed answer from the engine");
        return NULL;
    }
    if (!json_is_true(json_object_get(ans, "ok"))) {
        const char *m = json_string_value(json_object_get(ans, "error"));
        set_msg(err, errlen, "%s", m ? m : "host call failed");
        json_decref(ans);
        return NULL;
    }
    return ans;
}

static int h_finetune(const rqx_host *h, int64_t model_id, int64_t dataset_id,
                      const char *knobs_json, double *accuracy, double *seconds, char *err,
                      size_t errlen)
{
    json_t *knobs = NULL;
    if (knobs_json && *knobs_json) {
        json_error_t je;
        knobs = json_loads(knobs_json, 0, &je);
        if (!json_is_object(knobs)) {
            json_decref(knobs);
            set_msg(err, errlen, "finetune: knobs must be a JSON object text, e.g. {\"lr\": 0.01}");
            return -1;
        }
    }
    json_t *req = json_pack("{s:s, s:I, s:I, s:o}", "call", "finetune", "model_id",
                            (json_int_t)model_id, "dataset_id", (json_int_t)dataset_id, "knobs",
                            knobs ? knobs : json_object());
    json_t *ans = link_call(h->ctx, req, err, errlen);
    if (!ans)
        return -1;
    if (accuracy)
        *accuracy = json_number_value(json_object_get(ans, "accuracy"));
    if (seconds)
        *seconds = json_number_value(json_object_get(ans, "seconds"));
    json_decref(ans);
    return 0;
}

static int h_proxy_score(const rqx_host *h, int64_t model_id, const char *proxy_json,
                         double *err_value, double *seconds, char *err, size_t errlen)
{
    if (!proxy_json || !*proxy_json) {
        set_msg(err, errlen, "proxy_score: name a proxy (\"nn\" or {\"name\": \"nn\", \"params\": {}})");
        return -1;
    }
    json_t *proxy;
    if (proxy_json[0] == '{') {
        json_error_t je;
        proxy = json_loads(proxy_json, 0, &je);
        if (!proxy) {
            set_msg(err, errlen, "proxy_score: not JSON: %s", je.text);
            return -1;
        }
    } else {
        proxy = json_pack("{s:s}", "name", proxy_json);
    }
    json_t *req = json_pack("{s:s, s:I, s:o}", "call", "proxy_score", "model_id",
                            (json_int_t)model_id, "proxy", proxy);
    json_t *ans = link_call(h->ctx, req, err, errlen);
    if (!ans)
        return -1;
    if (err_value)
        *err_value = json_number_value(json_object_get(ans, "err"));
    if (seconds)
        *seconds = json_number_value(json_object_get(ans, "seconds"));
    json_decref(ans);
    return 0;
}

static int h_history(const rqx_host *h, int64_t model_id, char **json_out, char *err,
                     size_t errlen)
{
    json_t *req = json_pack("{s:s, s:I}", "call", "history", "model_id", (json_int_t)model_id);
    json_t *ans = link_call(h->ctx, req, err, errlen);
    if (!ans)
        return -1;
    json_t *hist = json_object_get(ans, "history");
    *json_out = json_dumps(json_is_array(hist) ? hist : json_array(), JSON_COMPACT);
    json_decref(ans);
    return *json_out ? 0 : -1;
}

static void h_free(void *p)
{
    free(p);
}

static void host_init(rqx_host *h, host_link *l)
{
    memset(h, 0, sizeof *h);
    h->struct_size = sizeof *h;
    h->ctx = l;
    h->finetune = h_finetune;
    h->proxy_score = h_proxy_score;
    h->history = h_history;
    h->free = h_free;
}

/* ---- the C request -------------------------------------------------------------------- */

typedef struct c_request {
    rqx_request req;
    rqx_value *values;
    rqx_model *models;
    rqx_dataset *train, *test;
    char **strings;           /* dumped JSON texts to free */
    size_t nstrings;
    rqx_host host;
    host_link link;
} c_request;

static const char *keep(c_request *c, char *s)
{
    c->strings = xrealloc(c->strings, (c->nstrings + 1) * sizeof *c->strings);
    c->strings[c->nstrings++] = s;
    return s;
}

static const char *str_or_empty(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static rqx_dataset *datasets_of(const json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    rqx_dataset *d = xcalloc(*n + 1, sizeof *d);
    for (size_t i = 0; i < *n; i++) {
        const json_t *o = json_array_get(arr, i);
        json_t *sz = json_object_get(o, "size"), *nc = json_object_get(o, "num_classes");
        d[i] = (rqx_dataset){json_integer_value(json_object_get(o, "id")), str_or_empty(o, "name"),
                             json_is_integer(sz) ? json_integer_value(sz) : -1,
                             json_is_integer(nc) ? (int32_t)json_integer_value(nc) : 0};
    }
    return d;
}

static void c_request_build(c_request *c, const ext_strategy *s, const json_t *params,
                            const json_t *models, const json_t *datasets, const char *request_json)
{
    memset(c, 0, sizeof *c);
    c->values = xcalloc(s->nparams + 1, sizeof *c->values);
    for (size_t i = 0; i < s->nparams; i++) {
        const rqx_param *p = &s->params[i];
        json_t *v = json_object_get(params, p->name);
        rqx_value *x = &c->values[i];
        x->name = p->name;
        x->type = p->type;
        switch (p->type) {
        case RQX_INT: x->i = v ? json_integer_value(v) : p->int_default; break;
        case RQX_FLOAT: x->f = v ? json_number_value(v) : p->float_default; break;
        case RQX_STRING: x->s = v ? json_string_value(v) : p->string_default; break;
        case RQX_BOOL: x->b = v ? json_is_true(v) : p->bool_default; break;
        }
    }
    size_t nm = json_array_size(models);
    c->models = xcalloc(nm + 1, sizeof *c->models);
    for (size_t i = 0; i < nm; i++) {
        const json_t *m = json_array_get(models, i);
        json_t *spec = json_object_get(m, "spec"), *cat = json_object_get(m, "catalog");
        c->models[i] = (rqx_model){
            json_integer_value(json_object_get(m, "id")), str_or_empty(m, "name"),
            str_or_empty(m, "runner"), str_or_empty(m, "modality"),
            keep(c, json_dumps(spec ? spec : json_object(), JSON_COMPACT | JSON_SORT_KEYS)),
            keep(c, cat ? json_dumps(cat, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("{}"))};
    }
    c->train = datasets_of(json_object_get(datasets, "train"), &c->req.ntrain);
    c->test = datasets_of(json_object_get(datasets, "test"), &c->req.ntest);
    c->req.struct_size = sizeof c->req;
    c->req.strategy = s->name;
    c->req.params = c->values;
    c->req.nparams = s->nparams;
    c->req.models = c->models;
    c->req.nmodels = nm;
    c->req.train = c->train;
    c->req.test = c->test;
    c->req.request_json = request_json;
    /* Version 1 plugins see no host; the link is set up where rank() runs. */
    c->link.fd = -1;
    host_init(&c->host, &c->link);
    c->req.host = ext_abi_of(s) >= 2 ? &c->host : NULL;
}

static void c_request_free(c_request *c)
{
    strbuf_free(&c->link.in);
    for (size_t i = 0; i < c->nstrings; i++)
        free(c->strings[i]);
    free(c->strings);
    free(c->values);
    free(c->models);
    free(c->train);
    free(c->test);
}

/* Calls rank() and encodes its answer as the process protocol's output. NULL with *err. */
static char *call_rank(const ext_strategy *s, c_request *c, char **err)
{
    size_t n = c->req.nmodels;
    rqx_ranked *out = xcalloc(n + 1, sizeof *out);
    char msg[1024] = "";
    int got = s->ext->rank(&c->req, out, msg, sizeof msg);
    char *text = NULL;
    if (got < 0) {
        msg[sizeof msg - 1] = '\0';
        *err = xasprintf("strategy %s failed: %s", s->name, *msg ? msg : "(no message)");
    } else if ((size_t)got != n) {
        *err = xasprintf("strategy %s answered %d models of %zu: answer every model once",
                         s->name, got, n);
    } else {
        for (size_t i = 0; i < n; i++)
            if (!isfinite(out[i].err)) {
                *err = xasprintf("strategy %s: malformed output: entry %zu: err is not finite",
                                 s->name, i);
                free(out);
                return NULL;
            }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:I, s:f}", "model_id",
                                                 (json_int_t)out[i].model_id, "err", out[i].err));
        text = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
    }
    free(out);
    return text;
}

/* ---- child processes ------------------------------------------------------------------ */

static bool pump(int fd, strbuf *tail)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            ssize_t w = write(STDERR_FILENO, buf, (size_t)r); /* the worker's log */
            (void)w;
            strbuf_append_tail(tail, buf, (size_t)r, TAIL_KEEP);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct outcome {
    int status;
    bool timed_out, stopped;
    int exec_errno;
    char *host_error;   /* the child broke the host protocol (a line too long) */
} outcome;

/* ---- the host API: the engine side of the socket --------------------------------------- */


/* Answers the complete request lines in buf (consumed); false when the child broke the
 * protocol (then *why). Time spent is added to *spent. */
static bool serve_lines(const ext_run_opts *opts, int fd, strbuf *buf, double *spent,
                        char **why)
{
    for (;;) {
        char *nl = buf->data ? memchr(buf->data, '\n', buf->len) : NULL;
        if (!nl) {
            if (buf->len > MAX_HOST_LINE) {
                *why = xasprintf("a host API request longer than %d bytes", MAX_HOST_LINE);
                return false;
            }
            return true;
        }
        size_t n = (size_t)(nl - buf->data);
        double t0 = now_seconds();
        json_error_t je;
        json_t *req = json_loadb(buf->data, n, 0, &je);
        memmove(buf->data, nl + 1, buf->len - n - 1);
        buf->len -= n + 1;
        json_t *ans;
        if (!json_is_object(req))
            ans = json_pack("{s:b, s:s+}", "ok", 0, "error",
                            "bad host API request: expected one JSON object per line: ",
                            req ? "not an object" : je.text);
        else if (!opts || !opts->host)
            ans = json_pack("{s:b, s:s}", "ok", 0, "error",
                            "host API: not available here (no engine behind this run)");
        else
            ans = opts->host->call(opts->host->arg, req);
        json_decref(req);
        if (!ans)
            ans = json_pack("{s:b, s:s}", "ok", 0, "error", "host API: no answer");
        char *text = json_dumps(ans, JSON_COMPACT);
        json_decref(ans);
        strbuf line = {0};
        strbuf_puts(&line, text ? text : "{\"ok\":false,\"error\":\"out of memory\"}");
        strbuf_putc(&line, '\n');
        free(text);
        /* MSG_NOSIGNAL: a child that died must not take the worker with a SIGPIPE. */
        size_t off = 0;
        while (off < line.len) {
            ssize_t w = send(fd, line.data + off, line.len - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break; /* the child is gone: its exit status tells */
            off += (size_t)w;
        }
        strbuf_free(&line);
        *spent += now_seconds() - t0;
    }
}

/* Forks a child in its own process group: stdin from in_fd, stdout to out_fd, stderr to a
 * pipe kept as the tail. The child execs argv (cwd dir), or, with argv NULL, runs the C
 * plugin's rank() and writes its answer to out_fd. Host API calls come over a socket pair
 * (fds 3 and 4 of a process plugin) and are answered here, on the caller's thread. Waits
 * for it, killing the group at the deadline (extended by the time spent in host calls) or
 * when should_stop says so. */
static int run_child(const ext_strategy *s, c_request *c, int in_fd, int out_fd,
                     ext_run_opts *opts, double timeout, strbuf *tail, outcome *oc,
                     char **err)
{
    memset(oc, 0, sizeof *oc);
    int errp[2], statp[2], sv[2] = {-1, -1};
    bool with_host = ext_abi_of(s) >= 2;
    if (pipe2(errp, O_CLOEXEC) != 0) {
        *err = xasprintf("cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(statp, O_CLOEXEC) != 0) {
        close(errp[0]), close(errp[1]);
        *err = xasprintf("cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    if (with_host && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        close(errp[0]), close(errp[1]), close(statp[0]), close(statp[1]);
        *err = xasprintf("cannot create a socket pair: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(errp[0]), close(errp[1]), close(statp[0]), close(statp[1]);
        if (with_host)
            close(sv[0]), close(sv[1]);
        *err = xasprintf("cannot fork: %s", strerror(e));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* Default dispositions: a crash must end the child, whatever handlers the worker
         * (or a test harness) installed. */
        static const int fatal[] = {SIGPIPE, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM};
        for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
            signal(fatal[i], SIG_DFL);
        /* Out of the way of fds 0-4 first: the dup2s below must not clobber them. */
        int stat_fd = fcntl(statp[1], F_DUPFD_CLOEXEC, 10);
        int host_fd = with_host ? fcntl(sv[1], F_DUPFD_CLOEXEC, 10) : -1;
        dup2(in_fd, STDIN_FILENO);
        dup2(errp[1], STDERR_FILENO);
        if (s->kind == EXT_PROCESS) {
            dup2(out_fd, STDOUT_FILENO);
            if (host_fd >= 0) {
                dup2(host_fd, HOST_FD_REQ);
                dup2(host_fd, HOST_FD_ANS);
                setenv("RANKQL_HOST_FDS", "3 4", 1);
            } else {
                unsetenv("RANKQL_HOST_FDS");
            }
            if (s->dir && chdir(s->dir) != 0) {
                int e = errno;
                ssize_t w = write(stat_fd, &e, sizeof e);
                (void)w;
                _exit(127);
            }
            execvp(s->argv[0], s->argv);
            int e = errno;
            ssize_t w = write(stat_fd, &e, sizeof e);
            (void)w;
            _exit(127);
        }
        /* A C plugin: its stdout goes to the log, its answer to out_fd, host calls to the
         * socket. */
        close(stat_fd);
        close(statp[1]);
        dup2(errp[1], STDOUT_FILENO);
        c->link.fd = host_fd;
        char *perr = NULL;
        char *text = call_rank(s, c, &perr);
        if (!text) {
            fprintf(stderr, "%s\n", perr);
            fflush(stderr);
            _exit(1);
        }
        _exit(write_all(out_fd, text, strlen(text)) == 0 ? 0 : 1);
    }
    setpgid(pid, pid);
    close(errp[1]);
    close(statp[1]);
    if (with_host)
        close(sv[1]);
    ssize_t r;
    do
        r = read(statp[0], &oc->exec_errno, sizeof oc->exec_errno);
    while (r < 0 && errno == EINTR);
    close(statp[0]);
    if (r != (ssize_t)sizeof oc->exec_errno)
        oc->exec_errno = 0;
    fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);
    double deadline = now_seconds() + timeout;
    bool open_pipe = true, open_host = with_host;
    strbuf hostbuf = {0};
    for (;;) {
        struct pollfd pfd[2] = {{errp[0], POLLIN, 0}, {sv[0], POLLIN, 0}};
        struct pollfd *p = open_pipe ? pfd : pfd + 1;
        nfds_t np = (nfds_t)(open_pipe ? 1 : 0) + (nfds_t)(open_host ? 1 : 0);
        if (!open_pipe && !open_host)
            p = NULL;
        int pr = poll(p, np, 50);
        if (pr > 0 && open_pipe && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
            open_pipe = pump(errp[0], tail);
        if (pr > 0 && open_host && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[65536];
            ssize_t got = recv(sv[0], buf, sizeof buf, MSG_DONTWAIT);
            if (got > 0) {
                strbuf_append(&hostbuf, buf, (size_t)got);
                double spent = 0;
                char *why = NULL;
                if (!serve_lines(opts, sv[0], &hostbuf, &spent, &why) && !oc->host_error) {
                    oc->host_error = why;
                    kill(-pid, SIGKILL);
                } else {
                    free(why);
                }
                deadline += spent;
                if (opts)
                    opts->host_seconds += spent;
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                open_host = false;
            }
        }
        if (waitpid(pid, &oc->status, WNOHANG) == pid)
            break;
        if (!oc->timed_out && !oc->stopped) {
            if (now_seconds() > deadline)
                oc->timed_out = true;
            else if (opts && opts->should_stop && opts->should_stop(opts->stop_arg))
                oc->stopped = true;
            if (oc->timed_out || oc->stopped)
                kill(-pid, SIGKILL);
        }
    }
    kill(-pid, SIGKILL); /* whatever it left behind in its group */
    strbuf_free(&hostbuf);
    if (with_host)
        close(sv[0]);
    double drain_until = now_seconds() + 1.0;
    while (open_pipe && now_seconds() < drain_until) {
        struct pollfd pfd = {errp[0], POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0)
            open_pipe = pump(errp[0], tail);
    }
    close(errp[0]);
    return 0;
}

static char *read_fd(int fd, size_t *len, bool *too_big)
{
    strbuf sb = {0};
    char buf[65536];
    *too_big = false;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return NULL;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (sb.len + (size_t)r > MAX_OUTPUT) {
            *too_big = true;
            break;
        }
        strbuf_append(&sb, buf, (size_t)r);
    }
    *len = sb.len;
    if (!sb.data)
        return xstrdup("");
    return strbuf_detach(&sb);
}

static int temp_file(char **err)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *path = xasprintf("%s/rankql-strategy-XXXXXX", base);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        *err = xasprintf("cannot create a temporary file in %s: %s", base, strerror(errno));
    else
        unlink(path);
    free(path);
    return fd;
}

/* A builtin's host calls: to the engine when there is one, timed. */
typedef struct timed_host {
    const ext_host_ops *ops;
    ext_run_opts *opts;
} timed_host;

static json_t *timed_call(void *arg, const json_t *req)
{
    timed_host *th = arg;
    if (!th->ops)
        return json_pack("{s:b, s:s}", "ok", 0, "error",
                         "host API: not available here (no engine behind this run)");
    double t0 = now_seconds();
    json_t *ans = th->ops->call(th->ops->arg, req);
    th->opts->host_seconds += now_seconds() - t0;
    return ans;
}

json_t *ext_run(const ext_strategy *s, const json_t *params, const json_t *models,
                const json_t *datasets, ext_run_opts *opts, char **err, bool *permanent)
{
    *permanent = true;
    if ((s->kind == EXT_BUILTIN || s->kind == EXT_SO) && !s->ext) {
        /* A strategy of ext_registry_describe: rankqld knows it, only workers run it. */
        *err = xasprintf("strategy %s: this process only describes plugins (a worker runs them)",
                         s->name);
        return NULL;
    }
    json_t *request = json_pack("{s:s, s:s, s:O, s:O, s:O}", "strategy", s->name, "version",
                                s->version, "params", params, "models", models, "datasets",
                                datasets);
    char *request_text = json_dumps(request, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(request);
    c_request c;
    c_request_build(&c, s, params, models, datasets, request_text);
    json_t *ranking = NULL, *answer = NULL;
    char *out_text = NULL, *line = NULL;
    strbuf tail = {0};
    int in_fd = -1, out_fd = -1;
    if (s->kind == EXT_BUILTIN) {
        /* In-process: host calls go straight to the engine (timed for host_seconds). */
        timed_host th = {opts && opts->host ? opts->host : NULL, opts};
        ext_host_ops direct = {timed_call, &th};
        c.link.direct = &direct;
        out_text = call_rank(s, &c, err);
        c.link.direct = NULL;
        if (!out_text)
            goto done;
    } else {
        in_fd = temp_file(err);
        out_fd = in_fd >= 0 ? temp_file(err) : -1;
        if (out_fd < 0) {
            *permanent = false;
            goto done;
        }
        if (write_all(in_fd, request_text, strlen(request_text)) != 0 ||
            write_all(in_fd, "\n", 1) != 0 || lseek(in_fd, 0, SEEK_SET) < 0) {
            *err = xasprintf("cannot write the request: %s", strerror(errno));
            *permanent = false;
            goto done;
        }
        double timeout = opts && opts->timeout_seconds > 0 ? opts->timeout_seconds
                                                           : s->timeout_seconds;
        outcome oc;
        if (run_child(s, &c, in_fd, out_fd, opts, timeout, &tail, &oc, err) != 0) {
            *permanent = false;
            goto done;
        }
        line = strbuf_last_line(&tail);
        if (oc.host_error) {
            *err = xasprintf("strategy %s broke the host protocol: %s", s->name, oc.host_error);
            free(oc.host_error);
            goto done;
        }
        if (oc.exec_errno) {
            *err = xasprintf("strategy %s: cannot run %s: %s", s->name, s->argv[0],
                             strerror(oc.exec_errno));
            goto done;
        }
        if (oc.stopped) {
            *err = xasprintf("strategy %s stopped (cancelled or lease lost)", s->name);
            *permanent = false;
            goto done;
        }
        if (oc.timed_out) {
            *err = xasprintf("strategy %s timed out after %g s and was killed", s->name, timeout);
            goto done;
        }
        if (WIFSIGNALED(oc.status)) {
            *err = xasprintf("strategy %s crashed: killed by signal %d (%s)%s%s", s->name,
                             WTERMSIG(oc.status), strsignal(WTERMSIG(oc.status)),
                             line ? ": " : "", line ? line : "");
            goto done;
        }
        if (WEXITSTATUS(oc.status) != 0) {
            if (s->kind == EXT_SO && line)
                *err = xstrdup(line);
            else
                *err = xasprintf("strategy %s exited with status %d: %s", s->name,
                                 WEXITSTATUS(oc.status), line ? line : "(nothing on stderr)");
            goto done;
        }
        size_t len;
        bool too_big;
        out_text = read_fd(out_fd, &len, &too_big);
        if (!out_text || too_big) {
            *err = too_big ? xasprintf("malformed output: more than %d bytes", MAX_OUTPUT)
                           : xasprintf("cannot read the output: %s", strerror(errno));
            goto done;
        }
    }
    json_error_t je;
    answer = json_loads(out_text, JSON_DECODE_ANY, &je);
    if (!answer) {
        *err = xasprintf("strategy %s: malformed output: not JSON (line %d: %s)", s->name,
                         je.line, je.text);
        goto done;
    }
    char *cerr = NULL;
    ranking = ext_check_ranking(models, answer, &cerr);
    if (!ranking) {
        *err = xasprintf("strategy %s: %s", s->name, cerr);
        free(cerr);
    }
done:
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    json_decref(answer);
    free(out_text);
    free(line);
    strbuf_free(&tail);
    c_request_free(&c);
    free(request_text);
    return ranking;
}
