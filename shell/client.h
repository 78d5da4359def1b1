/* The shell's HTTP client for rankqld (libcurl): one server, one session.
 *
 *   sh_client *c = sh_client_new("127.0.0.1:8001", token, err, sizeof err);
 *   sh_reply r;
 *   if (sh_client_open_session(c, &r) == SH_OK) … sh_client_query(c, "SHOW MODELS;", 12, &r) …
 *   sh_reply_free(&r);
 */
#ifndef RANKQL_SHELL_CLIENT_H
#define RANKQL_SHELL_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct sh_client sh_client;

typedef enum sh_status {
    SH_OK,            /* a 2xx answer with a JSON body */
    SH_SERVER_ERROR,  /* the server answered with {"error": …} */
    SH_CONNECT,       /* no connection, or it was lost: refused, unknown host, timeout */
    SH_PROTOCOL,      /* an answer that is not the API's (not JSON, unexpected shape) */
    SH_CANCELED,      /* interrupted by the user */
} sh_status;

typedef struct sh_reply {
    sh_status status;
    long http_status;   /* 0 when there was no answer */
    json_t *body;       /* the parsed body, or NULL */
    char *message;      /* one line for everything but SH_OK; for SH_SERVER_ERROR the error's message */
    bool waiting;       /* SH_CANCELED while a WAIT reported progress (its jobs keep running) */
} sh_reply;

/* Call once before any client (libcurl's global set-up). */
void sh_client_global_init(void);
void sh_client_global_cleanup(void);

/* TARGET is "host:port", "[v6]:port", "host" (port 8001) or "http[s]://…" of those.
 * token may be NULL (no Authorization header). On a malformed target: NULL and a
 * one-line reason in err. */
sh_client *sh_client_new(const char *target, const char *token, char *err, size_t errsize);
void sh_client_free(sh_client *c);

/* "host:port" for messages. */
const char *sh_client_address(const sh_client *c);
/* The session id, or NULL before sh_client_open_session. */
const char *sh_client_session(const sh_client *c);

/* A request in progress stops (SH_CANCELED) when *flag becomes non-zero. */
void sh_client_set_cancel_flag(volatile sig_atomic_t *flag);

/* Show a WAIT's progress as a one-line bar on stderr (when it is a terminal). */
void sh_client_show_progress(bool on);

/* POST /v1/sessions: a new session for this client. */
sh_status sh_client_open_session(sh_client *c, sh_reply *r);
/* POST /v1/query {"query": stmt, "session": id}, streamed (Accept: application/x-ndjson): the
 * lines are read as they come, progress shown (sh_client_show_progress), and the reply is
 * the one a plain answer gives (r->body with "session", "results", "error"…). */
sh_status sh_client_query(sh_client *c, const char *stmt, size_t len, sh_reply *r);
/* GET path (e.g. "/v1/models?limit=1"). */
sh_status sh_client_get(sh_client *c, const char *path, sh_reply *r);
/* METHOD path with a JSON body (NULL: none), e.g. POST /v1/tokens, DELETE /v1/tokens/3. */
sh_status sh_client_request(sh_client *c, const char *method, const char *path,
                            const char *body, sh_reply *r);

void sh_reply_free(sh_reply *r);

#endif
