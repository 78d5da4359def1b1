/* The shell's HTTP client for rankqld, on libcurl. See client.h. */
#include "shell/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/hostport.h"
#include "common/util.h"
#include "shell/stream.h"

#define RANKQL_USER_AGENT "rankql/0.1.0"
#define DEFAULT_PORT "8001"
#define CONNECT_TIMEOUT_S 10L
#define MAX_BODY (1024L * 1024 * 1024)
#define NDJSON "application/x-ndjson"
#define PROGRESS_BAR_CELLS 20

struct sh_client {
    CURL *curl;
    char *base;        /* "http://host:port" */
    char *address;     /* "host:port" */
    char *auth;        /* "Authorization: Bearer …" or NULL */
    char *session;
    bool loopback;
};

static volatile sig_atomic_t *cancel_flag;
static bool show_progress;

void sh_client_show_progress(bool on)
{
    show_progress = on;
}

void sh_client_set_cancel_flag(volatile sig_atomic_t *flag)
{
    cancel_flag = flag;
}

void sh_client_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void sh_client_global_cleanup(void)
{
    curl_global_cleanup();
}

static bool is_loopback(const hostport *hp)
{
    return strncmp(hp->host, "127.", 4) == 0 || strcmp(hp->host, "::1") == 0 ||
           strcasecmp(hp->host, "localhost") == 0;
}

sh_client *sh_client_new(const char *target, const char *token, char *err, size_t errsize)
{
    const char *scheme = "http";
    const char *t = target;
    if (strncasecmp(t, "http://", 7) == 0) {
        t += 7;
    } else if (strncasecmp(t, "https://", 8) == 0) {
        scheme = "https";
        t += 8;
    }
    char *hostpart = xstrdup(t);
    size_t n = strlen(hostpart);
    while (n > 0 && hostpart[n - 1] == '/')
        hostpart[--n] = '\0';
    if (n == 0 || strchr(hostpart, '/')) {
        snprintf(err, errsize, "invalid server address \"%s\" (expected host:port)", target);
        free(hostpart);
        return NULL;
    }
    /* "host" alone (no port): the default port; a bare IPv6 literal needs brackets */
    bool has_port = hostpart[n - 1] != ']' && strrchr(hostpart, ':') != NULL;
    if (!has_port) {
        char *with_port = xasprintf("%s:" DEFAULT_PORT, hostpart);
        free(hostpart);
        hostpart = with_port;
    }
    hostport hp;
    char why[256];
    if (!hostport_parse(hostpart, &hp, why, sizeof(why))) {
        snprintf(err, errsize, "invalid server address %s", why);
        free(hostpart);
        return NULL;
    }
    free(hostpart);

    sh_client *c = xcalloc(1, sizeof(*c));
    c->curl = curl_easy_init();
    if (!c->curl) {
        snprintf(err, errsize, "cannot initialise libcurl");
        free(c);
        return NULL;
    }
    bool v6 = hp.family == AF_INET6 || strchr(hp.host, ':');
    c->address = v6 ? xasprintf("[%s]:%d", hp.host, hp.port) : xasprintf("%s:%d", hp.host, hp.port);
    c->base = xasprintf("%s://%s", scheme, c->address);
    c->auth = token && *token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    c->loopback = is_loopback(&hp);
    return c;
}

void sh_client_free(sh_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->address);
    free(c->auth);
    free(c->session);
    free(c);
}

const char *sh_client_address(const sh_client *c)
{
    return c->address;
}

const char *sh_client_session(const sh_client *c)
{
    return c->session;
}

void sh_reply_free(sh_reply *r)
{
    json_decref(r->body);
    free(r->message);
    memset(r, 0, sizeof(*r));
}

/* What the body is read into: the whole of a plain answer, or the lines of a streamed one. */
typedef struct body_sink {
    CURL *curl;
    int kind;            /* 0: not known yet, 1: plain, 2: NDJSON stream */
    size_t total;
    strbuf whole;
    sh_lines lines;
    sh_stream stream;
    bool bar_drawn;      /* a progress bar is on stderr */
    bool saw_progress;   /* a WAIT reported progress */
} body_sink;

static void erase_bar(body_sink *b)
{
    if (b->bar_drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        b->bar_drawn = false;
    }
}

static void on_line(const char *line, size_t len, void *arg)
{
    body_sink *b = arg;
    const json_t *event;
    if (sh_stream_line(&b->stream, line, len, &event) != SH_LINE_PROGRESS)
        return;
    b->saw_progress = true;
    if (!show_progress || !event)
        return;
    strbuf bar = {0};
    sh_format_progress(&bar, event, PROGRESS_BAR_CELLS);
    fprintf(stderr, "\r\033[K%s", bar.data);
    fflush(stderr);
    b->bar_drawn = true;
    strbuf_free(&bar);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    body_sink *b = user;
    size_t n = size * nmemb;
    if (b->total + n > (size_t)MAX_BODY)
        return 0; /* aborts the transfer */
    b->total += n;
    if (b->kind == 0) {
        const char *ct = NULL;
        long code = 0;
        curl_easy_getinfo(b->curl, CURLINFO_CONTENT_TYPE, &ct);
        curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &code);
        b->kind = code == 200 && ct && strncasecmp(ct, NDJSON, sizeof NDJSON - 1) == 0 ? 2 : 1;
    }
    if (b->kind == 2)
        sh_lines_feed(&b->lines, data, n, on_line, b);
    else
        strbuf_append(&b->whole, data, n);
    return n;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)user, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return cancel_flag && *cancel_flag ? 1 : 0;
}

/* One line for a transfer that failed. */
static void transport_error(sh_client *c, CURLcode rc, const char *errbuf, sh_reply *r)
{
    long os_errno = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
    r->status = SH_CONNECT;
    switch (rc) {
    case CURLE_ABORTED_BY_CALLBACK:
        r->status = SH_CANCELED;
        r->message = xstrdup("canceled by user");
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        r->message = xasprintf("cannot connect to %s: unknown host", c->address);
        return;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
        r->message = xasprintf("cannot connect to %s: %s", c->address,
                               os_errno ? strerror((int)os_errno)
                               : rc == CURLE_OPERATION_TIMEDOUT ? "Connection timed out"
                               : *errbuf ? errbuf : curl_easy_strerror(rc));
        return;
    case CURLE_WRITE_ERROR:
        r->status = SH_PROTOCOL;
        r->message = xasprintf("the answer of %s is too large", c->address);
        return;
    default:
        r->message = xasprintf("connection to %s failed: %s", c->address,
                               *errbuf ? errbuf : curl_easy_strerror(rc));
        return;
    }
}

/* A streamed answer that came to its end: the reply of the plain answer it stands for. */
static void stream_reply(sh_client *c, body_sink *b, sh_reply *r)
{
    sh_stream *st = &b->stream;
    if (st->bad || !st->ended) {
        r->status = st->bad ? SH_PROTOCOL : SH_CONNECT;
        r->message = st->bad ? xasprintf("%s answered a line that is not rankql's NDJSON",
                                         c->address)
                             : xasprintf("connection to %s failed: the answer ended early",
                                         c->address);
        return;
    }
    r->body = sh_stream_body(st);
    if (st->error) {
        r->http_status = st->status;
        r->status = SH_SERVER_ERROR;
        r->message = xstrdup(json_string_value(json_object_get(st->error, "message")));
    } else {
        r->status = SH_OK;
    }
}

/* The request; body NULL for GET. Fills r and returns its status. A query (stream) asks for
 * NDJSON and reads it line by line. */
static sh_status request(sh_client *c, const char *method, const char *path, const char *body,
                         bool stream, sh_reply *r)
{
    memset(r, 0, sizeof(*r));
    body_sink sink = {.curl = c->curl};
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url = xasprintf("%s%s", c->base, path);
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, stream ? "Accept: " NDJSON : "Accept: application/json");
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        headers = curl_slist_append(headers, "Expect:");
    }
    if (c->auth)
        headers = curl_slist_append(headers, c->auth);

    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, RANKQL_USER_AGENT);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    if (c->loopback)
        curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never send loopback requests to a proxy */
    if (body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    free(url);
    erase_bar(&sink);
    if (rc == CURLE_OK && sink.kind == 2)
        sh_lines_finish(&sink.lines, on_line, &sink);
    erase_bar(&sink);
    if (rc != CURLE_OK) {
        transport_error(c, rc, errbuf, r);
        if (r->status == SH_CANCELED && sink.saw_progress) {
            /* the server stops waiting when the connection goes; the jobs do not */
            r->waiting = true;
            free(r->message);
            r->message = xstrdup("cancelled (jobs keep running; SHOW JOBS to see them)");
        }
    }
    if (rc != CURLE_OK || sink.kind == 2) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->http_status);
        if (rc == CURLE_OK)
            stream_reply(c, &sink, r);
        strbuf_free(&sink.whole);
        sh_lines_free(&sink.lines);
        sh_stream_free(&sink.stream);
        return r->status;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->http_status);
    json_error_t jerr;
    r->body = sink.whole.len ? json_loadb(sink.whole.data, sink.whole.len, JSON_DECODE_ANY, &jerr)
                             : NULL;
    strbuf_free(&sink.whole);
    sh_lines_free(&sink.lines);
    sh_stream_free(&sink.stream);

    const json_t *error = json_object_get(r->body, "error");
    if (r->http_status >= 200 && r->http_status < 300 && json_is_object(r->body)) {
        r->status = SH_OK;
    } else if (json_is_object(error) && json_is_string(json_object_get(error, "message"))) {
        r->status = SH_SERVER_ERROR;
        r->message = xstrdup(json_string_value(json_object_get(error, "message")));
    } else if (json_is_string(error)) {
        r->status = SH_SERVER_ERROR;
        r->message = xstrdup(json_string_value(error));
    } else {
        r->status = SH_PROTOCOL;
        r->message = xasprintf("%s answered HTTP %ld without a JSON result%s", c->address,
                               r->http_status, r->http_status == 404 ? " (is it rankqld?)" : "");
    }
    return r->status;
}

static void adopt_session(sh_client *c, const json_t *body)
{
    const char *id = json_string_value(json_object_get(body, "session"));
    if (id && (!c->session || strcmp(id, c->session) != 0)) {
        free(c->session);
        c->session = xstrdup(id);
    }
}

sh_status sh_client_open_session(sh_client *c, sh_reply *r)
{
    if (request(c, "POST", "/v1/sessions", "{}", false, r) != SH_OK)
        return r->status;
    if (!json_is_string(json_object_get(r->body, "session"))) {
        r->status = SH_PROTOCOL;
        r->message = xasprintf("%s answered POST /v1/sessions without a session id", c->address);
        return r->status;
    }
    adopt_session(c, r->body);
    return SH_OK;
}

sh_status sh_client_query(sh_client *c, const char *stmt, size_t len, sh_reply *r)
{
    json_t *req = json_object();
    json_t *q = json_stringn(stmt, len);
    if (!q) {
        json_decref(req);
        memset(r, 0, sizeof(*r));
        r->status = SH_PROTOCOL;
        r->message = xstrdup("the statement is not valid UTF-8");
        return r->status;
    }
    json_object_set_new(req, "query", q);
    if (c->session)
        json_object_set_new(req, "session", json_string(c->session));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    sh_status st = request(c, "POST", "/v1/query", body, true, r);
    free(body);
    if (r->body)
        adopt_session(c, r->body);
    return st;
}

sh_status sh_client_get(sh_client *c, const char *path, sh_reply *r)
{
    return request(c, "GET", path, NULL, false, r);
}

sh_status sh_client_request(sh_client *c, const char *method, const char *path,
                            const char *body, sh_reply *r)
{
    return request(c, method, path, body, false, r);
}
