/* Who a request is (docs/http-api.md, "Authentication"): no token on a loopback server, a
 * --token-file token, or a catalog token (api_tokens) found by its SHA-256, with a small
 * in-process cache so that a busy client costs no database read per request. A revoked
 * token is refused by this server at once and by others within TOKENS_CACHE_SECONDS. */
#ifndef RANKQL_SERVER_TOKENS_H
#define RANKQL_SERVER_TOKENS_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "server/auth.h"
#include "server/http.h"

#define TOKENS_CACHE_SECONDS 5

/* Fills *who from the Authorization header value (NULL when absent). required: a request
 * without a token is refused (--token-file, or a non-loopback address). False after
 * answering 401 unauthorized (no token when one is required, a bad, revoked or expired
 * token) or 503 (the catalog cannot be read). */
bool tokens_identify(server_ctx *ctx, const char *authorization, bool required,
                     auth_identity *who, http_response *resp);

/* Drops what the cache knows of token id (after a revocation). */
void tokens_forget(long long id);

/* Live (not revoked, not expired) catalog tokens; -1 with a one-line reason in why. */
long tokens_live_count(PGconn *conn, char *why, size_t whysize);

#endif
