/* "HOST:PORT" as given on command lines (--listen) and in USE "host:port". */
#ifndef RANKQL_COMMON_HOSTPORT_H
#define RANKQL_COMMON_HOSTPORT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hostport {
    char host[256]; /* without the brackets of an IPv6 literal */
    int port;       /* 1-65535 */
    int family;     /* AF_INET or AF_INET6 for a numeric address, 0 for a name */
} hostport;

/* Parses "1.2.3.4:80", "[::1]:80" or "name:80" (a DNS-style name). Returns
 * true, or false with a one-line reason in err (errsize bytes). */
bool hostport_parse(const char *s, hostport *out, char *err, size_t errsize);

#endif
