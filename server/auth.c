/* Bearer tokens (--token-file), the loopback test that decides whether they are needed, and
 * role names. */
#include "server/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/util.h"

#define TOKEN_MIN 16
#define TOKEN_MAX 512

struct auth_tokens {
    size_t n;
    char **tokens;
    size_t *lens;
};

bool auth_is_loopback(const hostport *hp)
{
    unsigned char a[16];
    if (hp->family == 0)
        return strcmp(hp->host, "localhost") == 0;
    if (hp->family == AF_INET)
        return inet_pton(AF_INET, hp->host, a) == 1 && a[0] == 127;
    if (inet_pton(AF_INET6, hp->host, a) != 1)
        return false;
    static const unsigned char one[16] = {[15] = 1};
    static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
    return memcmp(a, one, 16) == 0 || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
}

void auth_free(auth_tokens *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        /* Do not leave credentials in freed memory. */
        memset(t->tokens[i], 0, t->lens[i]);
        free(t->tokens[i]);
    }
    free(t->tokens);
    free(t->lens);
    free(t);
}

size_t auth_count(const auth_tokens *t)
{
    return t ? t->n : 0;
}

static bool token_char(char c)
{
    return c > ' ' && c < 127;
}

auth_tokens *auth_load(const char *file, char *why, size_t whysize)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(why, whysize, "--token-file %s: %s", file, strerror(errno));
        return NULL;
    }
    auth_tokens *t = xcalloc(1, sizeof *t);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0;
    bool bad = false;
    while (!bad && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)got;
        char *s = line;
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        if (n == 0 || *s == '#')
            continue;
        for (size_t i = 0; i < n && !bad; i++)
            if (!token_char(s[i])) {
                snprintf(why, whysize,
                         "--token-file %s, line %d: a token is printable ASCII without spaces",
                         file, lineno);
                bad = true;
            }
        if (!bad && (n < TOKEN_MIN || n > TOKEN_MAX)) {
            snprintf(why, whysize, "--token-file %s, line %d: a token must have %d to %d characters",
                     file, lineno, TOKEN_MIN, TOKEN_MAX);
            bad = true;
        }
        if (bad)
            break;
        t->tokens = xrealloc(t->tokens, (t->n + 1) * sizeof *t->tokens);
        t->lens = xrealloc(t->lens, (t->n + 1) * sizeof *t->lens);
        t->tokens[t->n] = xstrndup(s, n);
        t->lens[t->n] = n;
        t->n++;
    }
    if (line) {
        memset(line, 0, cap);
        free(line);
    }
    if (!bad && ferror(f)) {
        snprintf(why, whysize, "--token-file %s: %s", file, strerror(errno));
        bad = true;
    }
    fclose(f);
    if (!bad && t->n == 0) {
        snprintf(why, whysize, "--token-file %s holds no token", file);
        bad = true;
    }
    if (bad) {
        auth_free(t);
        return NULL;
    }
    return t;
}

/* Time depends on the length of the given token only, not on the stored one nor on how
 * many bytes match. */
static bool same(const char *given, size_t glen, const char *token, size_t tlen)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < glen; i++)
        diff |= (unsigned char)(given[i] ^ token[i % tlen]);
    size_t d = glen ^ tlen;
    return (diff | (d != 0)) == 0;
}

bool auth_bearer(const char *authorization, const char **token, size_t *len)
{
    if (!authorization)
        return false;
    const char *s = authorization;
    while (*s == ' ')
        s++;
    if (strncasecmp(s, "Bearer", 6) != 0 || (s[6] != ' ' && s[6] != '\t'))
        return false;
    s += 6;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n > TOKEN_MAX)
        return false;
    *token = s;
    *len = n;
    return true;
}

bool auth_check(const auth_tokens *t, const char *authorization)
{
    const char *s;
    size_t n;
    if (!t || !auth_bearer(authorization, &s, &n))
        return false;
    bool ok = false;
    for (size_t i = 0; i < t->n; i++) /* every token, also after a match */
        ok |= same(s, n, t->tokens[i], t->lens[i]);
    return ok;
}

const char *auth_role_name(auth_role r)
{
    return r == ROLE_ADMIN ? "admin" : r == ROLE_ANALYST ? "analyst" : "none";
}

bool auth_role_parse(const char *s, auth_role *out)
{
    if (s && strcmp(s, "admin") == 0)
        *out = ROLE_ADMIN;
    else if (s && strcmp(s, "analyst") == 0)
        *out = ROLE_ANALYST;
    else
        return false;
    return true;
}

const char *auth_source_name(auth_source s)
{
    return s == AUTH_LOOPBACK ? "loopback" : s == AUTH_FILE ? "token-file" : "token";
}
