#include "common/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

void sha256_hex(const void *data, size_t len, char hex[HASH_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        /* Only an OpenSSL misconfiguration gets here; a wrong key would corrupt caches. */
        fprintf(stderr, "rankql: SHA-256 failed (OpenSSL)\n");
        abort();
    }
    for (unsigned i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * mdlen] = '\0';
}

char *json_canonical(const json_t *value)
{
    char *text = json_dumps(value, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY |
                                       JSON_REAL_PRECISION(17));
    if (!text) {
        fprintf(stderr, "rankql: out of memory\n");
        abort();
    }
    return text;
}

void json_hash(const json_t *value, char hex[HASH_HEX_LEN + 1])
{
    char *text = json_canonical(value);
    sha256_hex(text, strlen(text), hex);
    free(text);
}

bool hash_is_hex(const char *s)
{
    if (!s || strlen(s) != HASH_HEX_LEN)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}
