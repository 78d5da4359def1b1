/* Who may talk to rankqld: loopback addresses, and bearer tokens from --token-file. */
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

#endif
