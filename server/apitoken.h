/* Catalog bearer tokens as text (docs/operations.md, "Security"): "rqt_" and the base64url of
 * 32 random bytes from getrandom(2), 47 characters. Only the SHA-256 (lower-case hex) of the
 * whole token is stored (api_tokens.token_hash, sql/004_sessions.sql). */
#ifndef RANKQL_SERVER_APITOKEN_H
#define RANKQL_SERVER_APITOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define APITOKEN_PREFIX "rqt_"
#define APITOKEN_RANDOM_BYTES 32
#define APITOKEN_LEN (4 + 43) /* the prefix, then 32 bytes as unpadded base64url */

/* A new token into out. False (with the reason in why) when the kernel gives no randomness. */
bool apitoken_generate(char out[APITOKEN_LEN + 1], char *why, size_t whysize);

/* The token of 32 given bytes: the prefix and their unpadded base64url. */
void apitoken_encode(const unsigned char raw[APITOKEN_RANDOM_BYTES], char out[APITOKEN_LEN + 1]);

/* Has text the shape of a token this server makes (prefix, length, base64url alphabet, a
 * last character that encodes 4 bits)? */
bool apitoken_wellformed(const char *text, size_t len);

/* The SHA-256 of the token's bytes, lower-case hex: what api_tokens stores. */
void apitoken_hash(const char *text, size_t len, char hex[65]);

/* "30d", "12h", "90m", "3600s" or "3600" (seconds) → seconds, 1 second to 10 years. False on
 * anything else. */
bool apitoken_parse_duration(const char *text, long long *seconds);

/* The name of a token: 1 to 64 bytes of letters, digits and ._@- (no spaces, so a name
 * never looks like an id: it must not be all digits either). */
bool apitoken_name_ok(const char *name);

#endif
