/* Client sessions (sessions table, sql/004_sessions.sql): made by POST /v1/sessions or by a
 * query that names none; a session holds the variables DECLARE makes. */
#ifndef RANKQL_SERVER_SESSIONS_H
#define RANKQL_SERVER_SESSIONS_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "server/http.h"

#define SESSION_ID_SIZE 37 /* a uuid's text and its NUL */

/* A new session for the client of req (and its catalog token); its id into id. False after answering 503/500. */
bool session_create(server_ctx *ctx, PGconn *conn, const http_request *req,
                    char id[SESSION_ID_SIZE], http_response *resp);

/* The live session named by given (any case) that belongs to who's token (a session made
 * with a catalog token is that token's; one made without is nobody's); its canonical id
 * into id, and its use is recorded (last_seen_at, expiry pushed back, at most once a
 * minute). False after answering 404 not_found (no such session for who, or expired) or
 * 503/500. */
bool session_open(server_ctx *ctx, PGconn *conn, const auth_identity *who, const char *given,
                  char id[SESSION_ID_SIZE], http_response *resp);

#endif
