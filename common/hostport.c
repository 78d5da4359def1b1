#include "common/hostport.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static bool parse_port(const char *s, int *port)
{
    if (!*s || strlen(s) > 5)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    long v = strtol(s, NULL, 10);
    *port = (int)v;
    return v >= 1 && v <= 65535;
}

/* Letters, digits and '-' in dot-separated labels of at most 63 bytes; the
 * last label is not all digits (so "1.2.3" or "300.1.1.1" is a bad address,
 * not a name). */
static bool valid_name(const char *s)
{
    size_t label = 0;
    bool digits_only = true;
    if (!*s || strlen(s) > 253)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return false;
            label = 0;
            digits_only = true;
        } else if (isalnum((unsigned char)*p) || *p == '-') {
            if (++label > 63)
                return false;
            digits_only = digits_only && isdigit((unsigned char)*p);
        } else {
            return false;
        }
    }
    return label > 0 && !digits_only;
}

bool hostport_parse(const char *s, hostport *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    const char *colon, *host = s;
    size_t hostlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errsize, "'%s': an IPv6 address must be written [ADDR]:PORT", s);
            return false;
        }
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errsize, "'%s': expected HOST:PORT, e.g. 127.0.0.1:8001", s);
            return false;
        }
        if (memchr(s, ':', (size_t)(colon - s))) {
            snprintf(err, errsize, "'%s': write an IPv6 address in brackets, [ADDR]:PORT", s);
            return false;
        }
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0 || hostlen >= sizeof out->host) {
        snprintf(err, errsize, "'%s': the host part is %s", s, hostlen ? "too long" : "empty");
        return false;
    }
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    if (!parse_port(colon + 1, &out->port)) {
        snprintf(err, errsize, "'%s': the port must be a number from 1 to 65535", s);
        return false;
    }
    unsigned char buf[16];
    if (*s == '[') {
        if (inet_pton(AF_INET6, out->host, buf) != 1) {
            snprintf(err, errsize, "'%s': '%s' is not an IPv6 address", s, out->host);
            return false;
        }
        out->family = AF_INET6;
    } else if (inet_pton(AF_INET, out->host, buf) == 1) {
        out->family = AF_INET;
    } else if (!valid_name(out->host)) {
        snprintf(err, errsize, "'%s': '%s' is neither an IPv4 address nor a host name", s,
                 out->host);
        return false;
    }
    return true;
}
