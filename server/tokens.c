/* Request identities: the token file, catalog tokens by hash, and their cache. */
#include "server/tokens.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "db/pqutil.h"
#include "server/api.h"
#include "server/apitoken.h"

/* A lookup waits at most this long for a pooled connection. */
#define LOOKUP_WAIT_MS 5000

#define CACHE_SLOTS 256 /* a power of two */
#define CACHE_PROBE 8

/* What the catalog said about one token hash, a few seconds ago. Unknown hashes are kept
 * too, so that a client retrying a bad token does not cost a read per request. */
typedef struct cached_token {
    char hash[65];
    time_t verified;      /* CLOCK_MONOTONIC seconds + 1; 0 = empty */
    bool found, revoked;
    long long id;
    auth_role role;
    char name[72];
    long long expires;    /* Unix time; 0 = never */
} cached_token;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_token cache[CACHE_SLOTS];

static time_t monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1;
}

static uint32_t slot_of(const char *hash)
{
    uint32_t h = 0;
    for (int i = 0; i < 8; i++) /* the hash is uniform already */
        h = h << 4 | (uint32_t)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return h;
}

static bool cache_get(const char *hash, cached_token *out)
{
    time_t now = monotonic_seconds();
    uint32_t h = slot_of(hash);
    bool hit = false;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHE_PROBE && !hit; i++) {
        const cached_token *c = &cache[(h + (uint32_t)i) & (CACHE_SLOTS - 1)];
        if (c->verified && now - c->verified < TOKENS_CACHE_SECONDS &&
            strcmp(c->hash, hash) == 0) {
            *out = *c;
            hit = true;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

static void cache_put(const cached_token *t)
{
    time_t now = monotonic_seconds();
    uint32_t h = slot_of(t->hash);
    pthread_mutex_lock(&cache_lock);
    cached_token *victim = &cache[h & (CACHE_SLOTS - 1)];
    for (int i = 0; i < CACHE_PROBE; i++) {
        cached_token *c = &cache[(h + (uint32_t)i) & (CACHE_SLOTS - 1)];
        if (strcmp(c->hash, t->hash) == 0 || !c->verified ||
            now - c->verified >= TOKENS_CACHE_SECONDS) {
            victim = c;
            break;
        }
        if (c->verified < victim->verified)
            victim = c;
    }
    *victim = *t;
    victim->verified = now;
    pthread_mutex_unlock(&cache_lock);
}

void tokens_forget(long long id)
{
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].verified && cache[i].found && cache[i].id == id)
            cache[i].verified = 0;
    pthread_mutex_unlock(&cache_lock);
}

/* The catalog's row for hash into *t (t->found false when there is none); last_used_at
 * is written at most once a minute. False after answering 503. */
static bool lookup(server_ctx *ctx, const char *hash, cached_token *t, http_response *resp)
{
    PGconn *conn = api_db_acquire(ctx, LOOKUP_WAIT_MS, resp);
    if (!conn)
        return false;
    const char *params[] = {hash};
    PGresult *res = api_db_exec(
        ctx, conn,
        "WITH t AS (SELECT id, name, role, revoked_at IS NOT NULL AS revoked, "
        "    expires_at, last_used_at FROM api_tokens WHERE token_hash = $1), "
        "u AS (UPDATE api_tokens a SET last_used_at = now() FROM t "
        "    WHERE a.id = t.id AND NOT t.revoked "
        "    AND (t.expires_at IS NULL OR t.expires_at > now()) "
        "    AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')) "
        "SELECT id, name, role, revoked, "
        "    coalesce(floor(extract(epoch FROM expires_at))::bigint, 0) FROM t",
        1, params, resp);
    api_db_release(ctx, conn);
    if (!res)
        return false;
    memset(t, 0, sizeof *t);
    snprintf(t->hash, sizeof t->hash, "%s", hash);
    if (PQntuples(res) == 1) {
        t->found = true;
        t->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(t->name, sizeof t->name, "%s", PQgetvalue(res, 0, 1));
        if (!auth_role_parse(PQgetvalue(res, 0, 2), &t->role))
            t->role = ROLE_ANALYST; /* the table's CHECK allows no other */
        t->revoked = PQgetvalue(res, 0, 3)[0] == 't';
        t->expires = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    }
    PQclear(res);
    return true;
}

static bool unauthorized(http_response *resp, const char *message)
{
    http_reply_error(resp, 401, "unauthorized", "%s", message);
    return false;
}

bool tokens_identify(server_ctx *ctx, const char *authorization, bool required,
                     auth_identity *who, http_response *resp)
{
    memset(who, 0, sizeof *who);
    if (!authorization || !*authorization) {
        if (required)
            return unauthorized(resp, "this server needs a token: send Authorization: Bearer "
                                      "<token> (rankql token create makes one)");
        who->source = AUTH_LOOPBACK;
        who->role = ROLE_ADMIN;
        snprintf(who->name, sizeof who->name, "loopback");
        return true;
    }
    const char *tok;
    size_t len;
    if (!auth_bearer(authorization, &tok, &len))
        return unauthorized(resp, "the Authorization header is not 'Bearer <token>'");
    if (ctx->tokens && auth_check(ctx->tokens, authorization)) {
        who->source = AUTH_FILE;
        who->role = ROLE_ADMIN;
        snprintf(who->name, sizeof who->name, "token-file");
        return true;
    }
    if (!apitoken_wellformed(tok, len))
        return unauthorized(resp, "the bearer token is not valid");
    char hash[65];
    apitoken_hash(tok, len, hash);
    cached_token t;
    if (!cache_get(hash, &t)) {
        if (!lookup(ctx, hash, &t, resp))
            return false;
        cache_put(&t);
    }
    if (!t.found)
        return unauthorized(resp, "the bearer token is not valid");
    if (t.revoked) {
        http_reply_error(resp, 401, "unauthorized", "the token '%s' was revoked", t.name);
        return false;
    }
    if (t.expires && (long long)time(NULL) >= t.expires) {
        http_reply_error(resp, 401, "unauthorized",
                         "the token '%s' has expired (rankql token create makes a new one)",
                         t.name);
        return false;
    }
    who->source = AUTH_CATALOG;
    who->role = t.role;
    who->token_id = t.id;
    snprintf(who->name, sizeof who->name, "%s", t.name);
    return true;
}

long tokens_live_count(PGconn *conn, char *why, size_t whysize)
{
    PGresult *res = PQexec(conn, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL "
                                 "AND (expires_at IS NULL OR expires_at > now())");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char *line = pq_one_line(PQresultErrorMessage(res));
        snprintf(why, whysize, "cannot count the API tokens: %s", line);
        free(line);
        PQclear(res);
        return -1;
    }
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}
