/* The token endpoints (docs/http-api.md, "Tokens"), for an admin (or loopback without a
 * token, which is how the first token is made):
 *   POST   /v1/tokens          {"name", "role", "expires_in"?}  → 201 with the token, once
 *   GET    /v1/tokens          → {"tokens": [...]} without hashes
 *   DELETE /v1/tokens/ID|NAME  → the revoked token
 * Each create and revoke (and each refused one) gets an audit row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "server/api.h"
#include "server/apitoken.h"
#include "server/audit.h"
#include "server/tokens.h"

static void audit(server_ctx *ctx, PGconn *conn, const http_request *req, const char *action,
                  const char *outcome, json_t *detail)
{
    (void)ctx;
    char line[300];
    snprintf(line, sizeof line, "%s %s", req->method, req->path);
    audit_entry e = {
        .who = req->who,
        .remote = req->remote,
        .action = action,
        .statement = line,
        .statement_len = strlen(line),
        .outcome = outcome,
        .detail = detail,
    };
    audit_write(conn, &e);
}

/* Only an admin; a refusal is answered 403 and audited. */
static bool admin_only(server_ctx *ctx, const http_request *req, const char *action,
                       http_response *resp)
{
    if (req->who && req->who->role == ROLE_ADMIN)
        return true;
    http_reply_error(resp, 403, "forbidden",
                     "managing tokens needs the admin role; token '%s' has the role %s",
                     req->who ? req->who->name : "?",
                     req->who ? auth_role_name(req->who->role) : "none");
    http_response probe = {0};
    PGconn *conn = api_db_acquire(ctx, ctx->cfg->query_timeout_s * 1000, &probe);
    if (conn) {
        audit(ctx, conn, req, action, "denied", NULL);
        api_db_release(ctx, conn);
    }
    free(probe.body);
    return false;
}

void api_tokens_create(server_ctx *ctx, const http_request *req, http_response *resp)
{
    if (!admin_only(ctx, req, "token_create", resp))
        return;
    json_t *body;
    if (!api_json_body(req, false, &body, resp))
        return;
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value) {
        if (strcmp(key, "name") != 0 && strcmp(key, "role") != 0 &&
            strcmp(key, "expires_in") != 0) {
            http_reply_error_at(resp, 422, "invalid_request",
                                "unknown field (a token takes name, role and expires_in)", 0, 0,
                                key, NULL);
            json_decref(body);
            return;
        }
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *role_text = json_string_value(json_object_get(body, "role"));
    json_t *expires = json_object_get(body, "expires_in");
    auth_role role;
    long long seconds = 0;
    const char *bad = NULL, *why = NULL;
    if (!apitoken_name_ok(name))
        bad = "name", why = "a token's name is 1 to 64 letters, digits and . _ @ -, not only "
                            "digits";
    else if (!auth_role_parse(role_text, &role))
        bad = "role", why = "the role is \"admin\" or \"analyst\"";
    else if (expires && !json_is_null(expires) &&
             !(json_is_string(expires) &&
               apitoken_parse_duration(json_string_value(expires), &seconds)) &&
             !(json_is_integer(expires) && json_integer_value(expires) > 0 &&
               (seconds = json_integer_value(expires)) <= 10LL * 366 * 86400))
        bad = "expires_in", why = "expires_in is a duration such as \"30d\", \"12h\", \"90m\" "
                                  "or seconds, at most 10 years (or null: never)";
    if (bad) {
        http_reply_error_at(resp, 422, "invalid_request", why, 0, 0, bad, NULL);
        json_decref(body);
        return;
    }
    char token[APITOKEN_LEN + 1], err[200], hash[65];
    if (!apitoken_generate(token, err, sizeof err)) {
        http_reply_error(resp, 500, "internal_error", "cannot make a token: %s", err);
        json_decref(body);
        return;
    }
    apitoken_hash(token, strlen(token), hash);
    PGconn *conn = api_db_acquire(ctx, ctx->cfg->query_timeout_s * 1000, resp);
    if (!conn) {
        json_decref(body);
        return;
    }
    char secs[24];
    snprintf(secs, sizeof secs, "%lld", seconds);
    const char *params[] = {hash, name, auth_role_name(role), seconds ? secs : NULL};
    PGresult *res = api_db_exec(
        ctx, conn,
        "INSERT INTO api_tokens (token_hash, name, role, expires_at) "
        "VALUES ($1, $2, $3, now() + make_interval(secs => $4::double precision)) "
        "ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING "
        "RETURNING id, to_json(created_at)#>>'{}', to_json(expires_at)#>>'{}'",
        4, params, resp);
    if (res && PQntuples(res) == 0) {
        http_reply_error_at(resp, 409, "conflict",
                            "a live token already has this name: revoke it first, or choose "
                            "another name",
                            0, 0, "name", NULL);
        audit(ctx, conn, req, "token_create", "error",
              json_pack("{s:s, s:s}", "created_token_name", name, "error", "name taken"));
    } else if (res) {
        long long id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        json_t *out = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "id", (json_int_t)id, "name",
                                name, "role", auth_role_name(role), "token", token, "created_at",
                                PQgetvalue(res, 0, 1), "expires_at",
                                PQgetisnull(res, 0, 2) ? json_null()
                                                       : json_string(PQgetvalue(res, 0, 2)));
        json_object_set_new(out, "notice",
                            json_string("the token is shown once: keep it now (only its "
                                        "SHA-256 is stored)"));
        http_reply_json(resp, 201, out);
        audit(ctx, conn, req, "token_create", "ok",
              json_pack("{s:I, s:s, s:s}", "created_token_id", (json_int_t)id,
                        "created_token_name", name, "created_token_role", auth_role_name(role)));
    }
    memset(token, 0, sizeof token);
    PQclear(res);
    api_db_release(ctx, conn);
    json_decref(body);
}

void api_tokens_list(server_ctx *ctx, const http_request *req, http_response *resp)
{
    if (!admin_only(ctx, req, "token_list", resp))
        return;
    PGconn *conn = api_db_acquire(ctx, ctx->cfg->query_timeout_s * 1000, resp);
    if (!conn)
        return;
    PGresult *res = api_db_exec(
        ctx, conn,
        "SELECT coalesce(json_agg(json_build_object('id', id, 'name', name, 'role', role, "
        "'created_at', created_at, 'expires_at', expires_at, 'last_used_at', last_used_at, "
        "'revoked_at', revoked_at, 'status', CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
        "WHEN expires_at <= now() THEN 'expired' ELSE 'live' END) ORDER BY id), '[]') "
        "FROM api_tokens",
        0, NULL, resp);
    api_db_release(ctx, conn);
    if (!res)
        return;
    json_error_t je;
    json_t *tokens = json_loads(PQgetvalue(res, 0, 0), 0, &je);
    PQclear(res);
    if (!tokens) {
        http_reply_error(resp, 500, "internal_error", "the token list is not JSON: %s", je.text);
        return;
    }
    http_reply_json(resp, 200, json_pack("{s:o}", "tokens", tokens));
}

void api_tokens_revoke(server_ctx *ctx, const http_request *req, http_response *resp)
{
    if (!admin_only(ctx, req, "token_revoke", resp))
        return;
    const char *which = req->path + strlen("/v1/tokens/");
    bool by_id = which[0] != '\0' && strspn(which, "0123456789") == strlen(which) &&
                 strlen(which) <= 18;
    if (!by_id && !apitoken_name_ok(which)) {
        http_reply_error(resp, 404, "not_found",
                         "no token '%.80s': give a token's id or name (rankql token list)", which);
        return;
    }
    PGconn *conn = api_db_acquire(ctx, ctx->cfg->query_timeout_s * 1000, resp);
    if (!conn)
        return;
    const char *params[] = {which};
    /* By name: the live token of that name (revoked ones may share it). */
    PGresult *res = api_db_exec(
        ctx, conn,
        by_id ? "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
                "WHERE id = $1::bigint RETURNING id, name, role, to_json(revoked_at)#>>'{}'"
              : "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
                "RETURNING id, name, role, to_json(revoked_at)#>>'{}'",
        1, params, resp);
    if (res && PQntuples(res) == 0) {
        http_reply_error(resp, 404, "not_found", "no %stoken %s%s%s (rankql token list)",
                         by_id ? "" : "live ", by_id ? "" : "'", which, by_id ? "" : "'");
        audit(ctx, conn, req, "token_revoke", "error",
              json_pack("{s:s, s:s}", "which", which, "error", "no such token"));
    } else if (res) {
        long long id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        tokens_forget(id); /* at once here; other rankqlds within TOKENS_CACHE_SECONDS */
        http_reply_json(resp, 200,
                        json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "name",
                                  PQgetvalue(res, 0, 1), "role", PQgetvalue(res, 0, 2),
                                  "revoked_at", PQgetvalue(res, 0, 3)));
        audit(ctx, conn, req, "token_revoke", "ok",
              json_pack("{s:I, s:s}", "revoked_token_id", (json_int_t)id, "revoked_token_name",
                        PQgetvalue(res, 0, 1)));
    }
    PQclear(res);
    api_db_release(ctx, conn);
}
