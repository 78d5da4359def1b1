/* Catalog bearer tokens as text: making one, checking its shape, hashing it. */
#include "server/apitoken.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/hash.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of n bytes; out gets 4n/3 rounded up characters and a NUL. */
static void base64url(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

bool apitoken_generate(char out[APITOKEN_LEN + 1], char *why, size_t whysize)
{
    unsigned char raw[APITOKEN_RANDOM_BYTES];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whysize, "getrandom: %s", n < 0 ? strerror(errno) : "no bytes");
            return false;
        }
        got += (size_t)n;
    }
    apitoken_encode(raw, out);
    memset(raw, 0, sizeof raw);
    return true;
}

void apitoken_encode(const unsigned char raw[APITOKEN_RANDOM_BYTES], char out[APITOKEN_LEN + 1])
{
    memcpy(out, APITOKEN_PREFIX, 4);
    base64url(raw, APITOKEN_RANDOM_BYTES, out + 4);
}

bool apitoken_wellformed(const char *text, size_t len)
{
    if (len != APITOKEN_LEN || memcmp(text, APITOKEN_PREFIX, 4) != 0)
        return false;
    for (size_t i = 4; i < len; i++)
        if (!memchr(b64url, text[i], 64) || text[i] == '\0')
            return false;
    /* 32 bytes = 256 bits: the last of 43 characters carries 4 bits, its low 2 are zero. */
    const char *last = memchr(b64url, text[len - 1], 64);
    return ((last - b64url) & 3) == 0;
}

void apitoken_hash(const char *text, size_t len, char hex[65])
{
    sha256_hex(text, len, hex);
}

bool apitoken_parse_duration(const char *text, long long *seconds)
{
    if (!text || !*text || strlen(text) > 12)
        return false;
    long long v = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    if (p == text)
        return false;
    long long unit = 1;
    if (*p) {
        switch (*p) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: return false;
        }
        if (p[1])
            return false;
    }
    long long total = v * unit;
    if (total < 1 || total > 10LL * 366 * 86400)
        return false;
    *seconds = total;
    return true;
}

bool apitoken_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64)
        return false;
    bool digits_only = true;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !strchr("._@-", c))
            return false;
        if (c < '0' || c > '9')
            digits_only = false;
    }
    return !digits_only;
}
