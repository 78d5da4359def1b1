/* Who may talk to rankqld: loopback addresses, bearer tokens from --token-file, and the
 * identity (role, token) a request runs as; catalog tokens are server/tokens.c's. */
#ifndef RANKQL_SERVER_AUTH_H
#define RANKQL_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/hostport.h"

/* Is the address loopback (127.0.0.0/8, ::1, ::ffff:127.x.y.z, "localhost")? */
bool auth_is_loopback(const hostport *hp);

typedef struct auth_tokens auth_tokens;

/* Reads FILE: one token a line, blank lines and lines starting with '#' ignored, spaces
 * around a token trimmed. A token is 16 to 512 printable ASCII characters without spaces.
 * Returns NULL with a one-line reason in why when the file cannot be read, holds no token
 * or holds a bad one. */
auth_tokens *auth_load(const char *file, char *why, size_t whysize);
void auth_free(auth_tokens *t);
size_t auth_count(const auth_tokens *t);

/* Does an Authorization header value ("Bearer TOKEN") carry one of the tokens? The
 * comparison takes the same time whichever token, or how much of one, matches. */
bool auth_check(const auth_tokens *t, const char *authorization);

/* The token of an Authorization header value "Bearer TOKEN" (scheme in any case, blanks
 * around it ignored): *token points into authorization, *len bytes. False when it is
 * another scheme, empty, or longer than any token can be. */
bool auth_bearer(const char *authorization, const char **token, size_t *len);

/* Roles (docs/operations.md, "Security"): an admin may do everything; an analyst may
 * query, and cancel only its own queries' jobs. */
typedef enum auth_role { ROLE_ANALYST = 1, ROLE_ADMIN = 2 } auth_role;

const char *auth_role_name(auth_role r);
/* "admin" or "analyst" (exactly); false otherwise. */
bool auth_role_parse(const char *s, auth_role *out);

/* How a request was let in. */
typedef enum auth_source {
    AUTH_LOOPBACK,   /* no token, on a server bound to loopback without --token-file: admin */
    AUTH_FILE,       /* a token of --token-file: admin */
    AUTH_CATALOG,    /* a token of the api_tokens table: its role */
} auth_source;

typedef struct auth_identity {
    auth_source source;
    auth_role role;
    long long token_id;  /* api_tokens.id for AUTH_CATALOG, else 0 */
    char name[72];       /* the token's name; "loopback" or "token-file" otherwise */
} auth_identity;

/* "loopback", "token-file" or "token" (for messages and audit rows). */
const char *auth_source_name(auth_source s);

#endif
