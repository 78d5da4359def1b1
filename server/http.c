/* libmicrohttpd glue: the listening socket, the daemon (a thread per connection), per-request
 * state, routing, the checks every request gets before its handler (token, path, method,
 * Content-Type, body size), responses (streamed ones too), metrics and the request log.
 *
 * Threads: every connection has its own thread, which runs the handler. A handler may block
 * for a long time (a query that WAITs for its jobs) without holding up any other client; a
 * thread pool would stall every connection that shares the blocked thread. While a handler
 * runs, or a streamed answer is being made, the connection's idle timeout is off. */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/util.h"
#include "server/api.h"
#include "server/request.h"
#include "server/tokens.h"

/* Something to cancel when the server stops: a running handler or a streamed answer. */
typedef struct cancel_entry {
    volatile int *flag;
    struct cancel_entry *prev, *next;
} cancel_entry;

struct http_server {
    struct MHD_Daemon *daemon;
    server_ctx *ctx;
    pthread_mutex_t mu;      /* guards what follows */
    pthread_cond_t idle;     /* signalled when producers or streams go down */
    cancel_entry *running;   /* handlers and streams in flight */
    int producers;           /* stream threads running (each may hold a database connection) */
    int streams;             /* streamed answers not yet freed (not yet all sent) */
    bool stopping;
};

/* A streamed answer: the stream's thread appends to buf, the connection's thread (the MHD
 * content reader) sends it. Freed when the response, the request and the thread are done
 * with it. */
struct http_stream {
    pthread_mutex_t mu;
    pthread_cond_t more;     /* data added, or done */
    strbuf buf;
    size_t off;              /* sent so far of buf */
    bool done;               /* the stream's function returned */
    volatile int cancelled;  /* the client went away, or the server stops: end a WAIT */
    bool client_left;        /* nothing more can be sent */
    int refs;
    int fd;                  /* the client's socket, watched for a hang-up while idle */
    struct timespec last_sent;
    const char *heartbeat;
    unsigned idle_timeout_s; /* put back on the connection when the answer is complete */
    struct MHD_Connection *conn;
    http_server *srv;
    cancel_entry entry;
    http_stream_fn *fn;
    void *arg;
};

typedef struct route {
    const char *path;    /* ending in '/': the prefix of paths with one more segment */
    const char *method;  /* GET routes also answer HEAD */
    bool json_body;      /* a POST whose body must be application/json */
    api_handler *handler;
} route;

/* A path may have a route per method (/v1/tokens). */
static const route routes[] = {
    {"/v1/query", "POST", true, api_query},
    {"/v1/sessions", "POST", false, api_sessions_create},
    {"/v1/models", "GET", false, api_models},
    {"/v1/datasets", "GET", false, api_datasets},
    {"/v1/tokens", "GET", false, api_tokens_list},
    {"/v1/tokens", "POST", true, api_tokens_create},
    {"/v1/tokens/", "DELETE", false, api_tokens_revoke},
    {"/healthz", "GET", false, api_healthz},
    {"/metrics", "GET", false, api_metrics},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* What one request carries between libmicrohttpd's calls (its con_cls). */
typedef struct request_state {
    struct timespec start;
    const route *route;        /* NULL: unknown path */
    const char *method_label;  /* bounded label values for the metrics */
    const char *path_label;
    char path[200];            /* for the log, control characters replaced */
    strbuf body;
    bool too_large;
    bool answered;
    int status;
    char code[32];
    volatile int cancelled;    /* the server stops: a handler that waits may end early */
    http_stream *stream;       /* a streamed answer, held until the request completes */
    auth_identity who;         /* set by early_checks */
    char allow[64];            /* the methods of the path, for a 405 */
} request_state;

const char *http_header(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* ---- cancellation and streamed answers ----------------------------------------------------- */

/* Registers something to cancel at shutdown; when the server already stops, it is cancelled
 * at once. */
static void running_add(http_server *srv, cancel_entry *e, volatile int *flag)
{
    e->flag = flag;
    e->prev = NULL;
    pthread_mutex_lock(&srv->mu);
    e->next = srv->running;
    if (e->next)
        e->next->prev = e;
    srv->running = e;
    if (srv->stopping)
        *flag = 1;
    pthread_mutex_unlock(&srv->mu);
}

static void running_remove(http_server *srv, cancel_entry *e)
{
    pthread_mutex_lock(&srv->mu);
    if (e->prev)
        e->prev->next = e->next;
    else
        srv->running = e->next;
    if (e->next)
        e->next->prev = e->prev;
    pthread_mutex_unlock(&srv->mu);
}

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void stream_unref(http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last)
        return;
    http_server *srv = s->srv;
    running_remove(srv, &s->entry);
    strbuf_free(&s->buf);
    pthread_cond_destroy(&s->more);
    pthread_mutex_destroy(&s->mu);
    free(s);
    pthread_mutex_lock(&srv->mu);
    srv->streams--;
    pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->mu);
}

/* The client is gone (or the connection ends): stop waiting, stop writing. */
static void stream_cancel(http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->done)
        s->cancelled = 1;
    s->client_left = true;
    pthread_cond_broadcast(&s->more);
    pthread_mutex_unlock(&s->mu);
}

bool http_stream_write(http_stream *s, const char *data, size_t len)
{
    pthread_mutex_lock(&s->mu);
    bool ok = !s->client_left;
    if (ok) {
        strbuf_append(&s->buf, data, len);
        pthread_cond_broadcast(&s->more);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

const volatile int *http_stream_cancelled(const http_stream *s)
{
    return &s->cancelled;
}

/* The client hung up (or the server shut the socket down): nothing more can reach it. */
static bool client_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* MHD's content reader, on the connection's thread: what the stream's thread wrote, a
 * heartbeat after HTTP_HEARTBEAT_SECONDS of silence, the end once it is done. It waits in
 * short steps, looking for a client that went away in between. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    http_stream *s = cls;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->off < s->buf.len) {
            size_t n = s->buf.len - s->off;
            if (n > max)
                n = max;
            memcpy(out, s->buf.data + s->off, n);
            s->off += n;
            if (s->off == s->buf.len)
                s->off = s->buf.len = 0;
            clock_gettime(CLOCK_MONOTONIC, &s->last_sent);
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        if (s->done) {
            pthread_mutex_unlock(&s->mu);
            /* the connection may idle again (keep-alive) */
            MHD_set_connection_option(s->conn, MHD_CONNECTION_OPTION_TIMEOUT, s->idle_timeout_s);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (s->client_left) {
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        double quiet = seconds_since(&s->last_sent);
        if (s->heartbeat && quiet >= HTTP_HEARTBEAT_SECONDS) {
            strbuf_puts(&s->buf, s->heartbeat);
            continue;
        }
        double wait = HTTP_HEARTBEAT_SECONDS - quiet;
        if (wait > 0.25)
            wait = 0.25;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long ns = until.tv_nsec + (long)(wait * 1e9);
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&s->more, &s->mu, &until);
        if (s->off == s->buf.len && !s->done && client_gone(s->fd)) {
            s->cancelled = 1;
            s->client_left = true;
        }
    }
}

/* MHD is done with the response (sent, or the connection closed). */
static void stream_response_done(void *cls)
{
    http_stream *s = cls;
    stream_cancel(s);
    stream_unref(s);
}

static void stream_finish(http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->done = true;
    pthread_cond_broadcast(&s->more);
    pthread_mutex_unlock(&s->mu);
    http_server *srv = s->srv;
    stream_unref(s);
    pthread_mutex_lock(&srv->mu);
    srv->producers--;
    pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->mu);
}

static void *stream_thread(void *arg)
{
    http_stream *s = arg;
    s->fn(s, s->arg);
    stream_finish(s);
    return NULL;
}

/* The streamed answer of resp, queued on conn; its thread started. */
static enum MHD_Result answer_stream(http_server *srv, struct MHD_Connection *conn,
                                     request_state *st, http_response *resp)
{
    http_stream *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->more, NULL);
    s->refs = 3; /* the response, the request, the thread */
    s->heartbeat = resp->heartbeat;
    s->conn = conn;
    s->srv = srv;
    s->fn = resp->stream;
    s->arg = resp->stream_arg;
    s->idle_timeout_s = (unsigned)srv->ctx->cfg->connection_timeout_s;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = info ? info->connect_fd : -1;
    clock_gettime(CLOCK_MONOTONIC, &s->last_sent);
    running_add(srv, &s->entry, &s->cancelled);
    pthread_mutex_lock(&srv->mu);
    srv->producers++;
    srv->streams++;
    pthread_mutex_unlock(&srv->mu);
    st->stream = s;

    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                               stream_read, s,
                                                               stream_response_done);
    if (!r) {
        stream_cancel(s);
        stream_unref(s); /* the response's */
    } else {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: pass lines on */
    }
    /* The answer takes as long as its statements; the idle timeout comes back at its end. */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0U);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t tid;
    if (pthread_create(&tid, &attr, stream_thread, s) != 0)
        stream_thread(s); /* no thread to be had: make the whole body now */
    pthread_attr_destroy(&attr);
    st->answered = true;
    st->status = 200;
    st->code[0] = '\0';
    if (!r)
        return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- the listening socket ---------------------------------------------------------------- */

int http_listen_socket(const hostport *hp, char *why, size_t whysize)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    int family = hp->family ? hp->family : AF_INET;
    const char *host = hp->family ? hp->host : "127.0.0.1"; /* "localhost" */
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)hp->port);
        inet_pton(AF_INET6, host, &a->sin6_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)hp->port);
        inet_pton(AF_INET, host, &a->sin_addr);
        len = sizeof *a;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, whysize, "cannot make a socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        snprintf(why, whysize, "cannot listen on %s%s%s:%d: %s", family == AF_INET6 ? "[" : "",
                 hp->host, family == AF_INET6 ? "]" : "", hp->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- per-request checks ------------------------------------------------------------------ */

static bool path_matches(const route *r, const char *path)
{
    size_t n = strlen(r->path);
    if (r->path[n - 1] != '/')
        return strcmp(r->path, path) == 0;
    return strncmp(r->path, path, n) == 0 && path[n] && !strchr(path + n, '/');
}

static bool method_allowed(const route *r, const char *method)
{
    return strcmp(r->method, method) == 0 ||
           (strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* The route of path and method; else one of path's (a 405, with its methods in allow);
 * else NULL. */
static const route *find_route(const char *path, const char *method, char *allow,
                               size_t allowsize)
{
    const route *any = NULL;
    allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_matches(&routes[i], path))
            continue;
        if (method_allowed(&routes[i], method))
            return &routes[i];
        any = any ? any : &routes[i];
        size_t n = strlen(allow);
        snprintf(allow + n, allowsize - n, "%s%s%s", n ? ", " : "", routes[i].method,
                 strcmp(routes[i].method, "GET") == 0 ? ", HEAD" : "");
    }
    return any;
}

static const char *method_label(const char *method)
{
    static const char *const known[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i], method) == 0)
            return known[i];
    return "other";
}

/* The checks that need only the headers. True when they answered. */
static bool early_checks(http_server *srv, request_state *st, struct MHD_Connection *conn,
                         const char *url, const char *method, http_response *resp)
{
    server_ctx *ctx = srv->ctx;
    /* Who it is, before anything else: an unknown path without a token is 401, not 404.
     * /healthz needs no token (a load balancer's probe). */
    if (strcmp(url, "/healthz") != 0 &&
        !tokens_identify(ctx,
                         MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION),
                         ctx->cfg->auth_required, &st->who, resp))
        return true;
    if (!st->route) {
        http_reply_error(resp, 404, "not_found", "no such endpoint: %s (see docs/http-api.md)",
                         st->path);
        return true;
    }
    if (!method_allowed(st->route, method)) {
        http_reply_error(resp, 405, "method_not_allowed", "%s takes %s, not %s", st->path,
                         st->allow, st->method_label);
        resp->allow = st->allow;
        return true;
    }
    if (st->route->json_body &&
        !http_json_content_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_CONTENT_TYPE))) {
        http_reply_error(resp, 415, "unsupported_media_type",
                         "send the body as Content-Type: application/json");
        return true;
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && n > ctx->cfg->max_body) {
            http_reply_error(resp, 413, "body_too_large",
                             "the body has %llu bytes; this server takes at most %zu (--max-body)",
                             n, ctx->cfg->max_body);
            return true;
        }
    }
    return false;
}

/* ---- libmicrohttpd callbacks ------------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *conn, request_state *st, http_response *resp)
{
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(
        resp->body_len, resp->body ? resp->body : xstrdup(""), free);
    resp->body = NULL;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (resp->allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
    if (resp->status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"rankql\"");
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    st->answered = true;
    st->status = resp->status;
    snprintf(st->code, sizeof st->code, "%s", resp->code);
    return ok;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    http_request *req = cls;
    if (req->nargs == HTTP_MAX_ARGS) {
        req->too_many_args = true;
        return MHD_NO;
    }
    req->args[req->nargs].key = key;
    req->args[req->nargs].value = value;
    req->nargs++;
    return MHD_YES;
}

static void client_address(struct MHD_Connection *conn, char *out, size_t size)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

static void dispatch(http_server *srv, request_state *st, struct MHD_Connection *conn,
                     const char *url, const char *method, http_response *resp)
{
    if (st->too_large) {
        http_reply_error(resp, 413, "body_too_large",
                         "the body is over the %zu bytes this server takes (--max-body)",
                         srv->ctx->cfg->max_body);
        return;
    }
    char remote[INET6_ADDRSTRLEN];
    client_address(conn, remote, sizeof remote);
    http_request req = {
        .conn = conn,
        .method = method,
        .path = st->route->path[strlen(st->route->path) - 1] == '/' ? url : st->route->path,
        .body = st->body.data ? st->body.data : "",
        .body_len = st->body.len,
        .remote = remote,
    };
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &req);
    req.cancelled = &st->cancelled;
    req.who = &st->who;
    cancel_entry entry;
    running_add(srv, &entry, &st->cancelled);
    /* A handler may run long (a query that WAITs): no idle timeout meanwhile. */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0U);
    st->route->handler(srv->ctx, &req, resp);
    if (!resp->stream)
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)srv->ctx->cfg->connection_timeout_s);
    running_remove(srv, &entry);
    if (resp->status == 0) /* a handler that forgot to answer is a bug */
        http_reply_error(resp, 500, "internal_error", "the handler gave no answer");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_server *srv = cls;
    request_state *st = *con_cls;
    if (!st) {
        st = xcalloc(1, sizeof *st);
        clock_gettime(CLOCK_MONOTONIC, &st->start);
        *con_cls = st;
        st->route = find_route(url, method, st->allow, sizeof st->allow);
        st->method_label = method_label(method);
        st->path_label = st->route ? st->route->path : "other";
        size_t i = 0;
        for (; url[i] && i + 1 < sizeof st->path; i++)
            st->path[i] = (unsigned char)url[i] < 0x20 || url[i] == 0x7f ? '?' : url[i];
        st->path[i] = '\0';
        http_response resp = {0};
        if (early_checks(srv, st, conn, url, method, &resp))
            return answer(conn, st, &resp);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->answered || st->too_large)
            return MHD_YES;
        if (st->body.len + n > srv->ctx->cfg->max_body) {
            st->too_large = true; /* read and drop the rest, then answer 413 */
            strbuf_free(&st->body);
        } else {
            strbuf_append(&st->body, upload_data, n);
        }
        return MHD_YES;
    }
    if (st->answered)
        return MHD_YES;
    http_response resp = {0};
    dispatch(srv, st, conn, url, method, &resp);
    if (resp.stream)
        return answer_stream(srv, conn, st, &resp);
    return answer(conn, st, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    request_state *st = *con_cls;
    if (!st)
        return;
    *con_cls = NULL;
    if (st->stream) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            stream_cancel(st->stream); /* the client went away: stop waiting for its jobs */
        stream_unref(st->stream);
    }
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - st->start.tv_sec) +
                     (double)(end.tv_nsec - st->start.tv_nsec) / 1e9;
    if (st->answered)
        metrics_observe(srv->ctx->metrics, st->method_label, st->path_label, st->status, st->code,
                        seconds);
    if (srv->ctx->cfg->verbose) {
        char remote[INET6_ADDRSTRLEN];
        client_address(conn, remote, sizeof remote);
        const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                          : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timed out)"
                          : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client went away)"
                          : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " (shutdown)"
                          : st->stream ? " (stream cut short)"
                                                                         : " (not sent)";
        fprintf(stderr, "rankqld: %s %s %s %d %.3f ms%s%s%s\n", remote[0] ? remote : "-",
                st->method_label, st->path, st->status, seconds * 1e3, st->code[0] ? " " : "",
                st->code, how);
    }
    strbuf_free(&st->body);
    free(st);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    /* A streamed answer whose client went away (or the server stops) ends with an error:
     * nothing to report. */
    if (strcmp(msg, "Closing connection (application error generating response).") == 0)
        return;
    fprintf(stderr, "rankqld: http: %s\n", msg);
}

/* ---- the daemon -------------------------------------------------------------------------- */

http_server *http_server_start(server_ctx *ctx, int listen_fd, char **err)
{
    http_server *s = xcalloc(1, sizeof *s);
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    /* A thread per connection (see the top of this file); poll(), so no FD_SETSIZE limit. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ctx->cfg->listen.family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)ctx->cfg->connection_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        *err = xasprintf("cannot start the HTTP server (libmicrohttpd %s)", MHD_get_version());
        close(listen_fd);
        pthread_cond_destroy(&s->idle);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    /* Queries that wait for their jobs stop waiting (the jobs keep running), so that the
     * requests in flight finish soon. */
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (cancel_entry *e = s->running; e; e = e->next)
        *e->flag = 1;
    pthread_mutex_unlock(&s->mu);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon); /* no new connections */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    /* Streamed answers finish (their statements end, like those of the other requests in
     * flight, which MHD_stop_daemon waits for); their last lines get a moment to be sent
     * before the connections are shut. Stream threads may hold database connections: the
     * pool is closed after them. */
    pthread_mutex_lock(&s->mu);
    while (s->producers > 0)
        pthread_cond_wait(&s->idle, &s->mu);
    struct timespec grace;
    clock_gettime(CLOCK_REALTIME, &grace);
    grace.tv_sec += 2;
    while (s->streams > 0 && pthread_cond_timedwait(&s->idle, &s->mu, &grace) == 0)
        ;
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
