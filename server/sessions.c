/* Sessions: creating, finding and touching rows of the sessions table, and POST /v1/sessions. */
#include "server/sessions.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/util.h"
#include "server/api.h"
#include "server/request.h"

/* The catalog token a session of who belongs to (0: none, for loopback and --token-file). */
static long long session_token(const auth_identity *who)
{
    return who && who->source == AUTH_CATALOG ? who->token_id : 0;
}

/* How long a session lives after its last use; matches the column default. */
#define SESSION_TTL "7 days"

/* Sessions seen alive lately, so that a busy client's requests skip the database check. A
 * session is only ever removed by expiry after days without use, so trusting a check for a
 * few seconds cannot resurrect one that is gone for good. */
#define CACHE_SLOTS 1024 /* a power of two */
#define CACHE_PROBE 8
#define CACHE_SECONDS 30

typedef struct cached_session {
    char id[SESSION_ID_SIZE];
    long long token;  /* the catalog token it belongs to; 0 = none */
    time_t verified; /* CLOCK_MONOTONIC seconds; 0 = empty */
} cached_session;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_session cache[CACHE_SLOTS];

static time_t monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1; /* never 0 */
}

static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h;
}

static bool cache_fresh(const char *id, long long token)
{
    time_t now = monotonic_seconds();
    uint32_t h = id_hash(id);
    bool hit = false;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHE_PROBE && !hit; i++) {
        const cached_session *c = &cache[(h + (uint32_t)i) & (CACHE_SLOTS - 1)];
        hit = c->verified && now - c->verified < CACHE_SECONDS && strcmp(c->id, id) == 0 &&
              c->token == token;
    }
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

static void cache_put(const char *id, long long token)
{
    time_t now = monotonic_seconds();
    uint32_t h = id_hash(id);
    pthread_mutex_lock(&cache_lock);
    cached_session *victim = &cache[h & (CACHE_SLOTS - 1)];
    for (int i = 0; i < CACHE_PROBE; i++) {
        cached_session *c = &cache[(h + (uint32_t)i) & (CACHE_SLOTS - 1)];
        if (strcmp(c->id, id) == 0 || !c->verified || now - c->verified >= CACHE_SECONDS) {
            victim = c;
            break;
        }
        if (c->verified < victim->verified)
            victim = c;
    }
    memcpy(victim->id, id, SESSION_ID_SIZE);
    victim->token = token;
    victim->verified = now;
    pthread_mutex_unlock(&cache_lock);
}

bool session_create(server_ctx *ctx, PGconn *conn, const http_request *req,
                    char id[SESSION_ID_SIZE], http_response *resp)
{
    char *client = session_client_label(http_header(req, "User-Agent"));
    long long token = session_token(req->who);
    char token_text[24];
    snprintf(token_text, sizeof token_text, "%lld", token);
    const char *params[] = {client, req->remote && *req->remote ? req->remote : NULL,
                            token ? token_text : NULL};
    PGresult *res = api_db_exec(ctx, conn,
                                "INSERT INTO sessions (client, remote_addr, token_id) "
                                "VALUES ($1, $2, $3::bigint) RETURNING id::text",
                                3, params, resp);
    free(client);
    if (!res)
        return false;
    bool ok = PQntuples(res) == 1 && PQgetlength(res, 0, 0) == SESSION_ID_SIZE - 1;
    if (ok) {
        memcpy(id, PQgetvalue(res, 0, 0), SESSION_ID_SIZE);
        cache_put(id, token);
    }
    else
        http_reply_error(resp, 500, "internal_error", "creating a session returned no id");
    PQclear(res);
    return ok;
}

bool session_open(server_ctx *ctx, PGconn *conn, const auth_identity *who, const char *given,
                  char id[SESSION_ID_SIZE], http_response *resp)
{
    long long token = session_token(who);
    char token_text[24];
    snprintf(token_text, sizeof token_text, "%lld", token);
    if (!text_is_uuid(given)) {
        http_reply_error(resp, 404, "not_found",
                         "unknown session (a session id looks like "
                         "7f6c0e9a-3b1d-4c2e-9f00-1a2b3c4d5e6f; POST /v1/sessions makes one)");
        return false;
    }
    /* PostgreSQL writes a uuid in lower case: so does the cache. */
    char lower[SESSION_ID_SIZE];
    for (size_t i = 0; i < SESSION_ID_SIZE; i++)
        lower[i] = (char)tolower((unsigned char)given[i]);
    if (cache_fresh(lower, token)) {
        memcpy(id, lower, SESSION_ID_SIZE);
        return true;
    }
    /* Find it; touch it only when it was last seen over a minute ago, so that a busy session
     * costs one read per request, not a write. */
    /* A session belongs to the token that made it: another token does not see it. */
    const char *params[] = {given, token ? token_text : NULL};
    PGresult *res = api_db_exec(ctx, conn,
                                "SELECT id::text, last_seen_at < now() - interval '1 minute' "
                                "FROM sessions WHERE id = $1::uuid AND expires_at > now() "
                                "AND token_id IS NOT DISTINCT FROM $2::bigint",
                                2, params, resp);
    if (!res)
        return false;
    bool found = PQntuples(res) == 1 && PQgetlength(res, 0, 0) == SESSION_ID_SIZE - 1;
    bool stale = found && PQgetvalue(res, 0, 1)[0] == 't';
    if (found)
        memcpy(id, PQgetvalue(res, 0, 0), SESSION_ID_SIZE);
    else
        http_reply_error(resp, 404, "not_found", "unknown session %s (it may have expired; "
                                                 "POST /v1/sessions makes a new one)",
                         given);
    PQclear(res);
    if (found)
        cache_put(id, token);
    if (stale) {
        const char *touch[] = {id};
        PGresult *t = api_db_exec(ctx, conn,
                                  "UPDATE sessions SET last_seen_at = now(), expires_at = "
                                  "greatest(expires_at, now() + interval '" SESSION_TTL "') "
                                  "WHERE id = $1::uuid",
                                  1, touch, resp);
        if (!t)
            return false;
        PQclear(t);
    }
    return found;
}

void api_sessions_create(server_ctx *ctx, const http_request *req, http_response *resp)
{
    if (!api_sessions_read_body(req, req->body_len > 0 ? http_header(req, "Content-Type") : NULL,
                                resp))
        return;
    PGconn *conn = api_db_acquire(ctx, ctx->cfg->query_timeout_s * 1000, resp);
    if (!conn)
        return;
    char id[SESSION_ID_SIZE];
    if (session_create(ctx, conn, req, id, resp))
        http_reply_json(resp, 201, json_pack("{s:s}", "session", id));
    api_db_release(ctx, conn);
}
