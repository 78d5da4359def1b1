/* Content hashes: SHA-256 in lower-case hex, and the hash of a JSON value in its canonical
 * form (keys sorted, no whitespace, jansson's number printing), which is every cache key
 * and job identity in rankql (docs/jobs.md). */
#ifndef RANKQL_COMMON_HASH_H
#define RANKQL_COMMON_HASH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define HASH_HEX_LEN 64

void sha256_hex(const void *data, size_t len, char hex[HASH_HEX_LEN + 1]);

/* Whether s (NULL: no) is a hash as sha256_hex writes it, 64 lower-case hex digits: the
 * one check for digests that payloads and REGISTER carry. */
bool hash_is_hex(const char *s);

/* The canonical text of a value (caller frees). */
char *json_canonical(const json_t *value);

/* sha256_hex of json_canonical(value). */
void json_hash(const json_t *value, char hex[HASH_HEX_LEN + 1]);

#endif
