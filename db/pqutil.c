#include "db/pqutil.h"

#include <ctype.h>
#include <string.h>

#include "common/util.h"

char *pq_one_line(const char *msg)
{
    strbuf sb = {0};
    const char *p = msg ? msg : "";
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (n > 0 && isspace((unsigned char)*s)) {
            s++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            n--;
        if (n > 0) {
            if (sb.len > 0)
                strbuf_puts(&sb, "; ");
            strbuf_append(&sb, s, n);
        }
        if (!end)
            break;
        p = end + 1;
    }
    if (sb.len == 0)
        strbuf_puts(&sb, "(no message from libpq)");
    return strbuf_detach(&sb);
}

char *pq_conninfo_quote(const char *value)
{
    strbuf sb = {0};
    strbuf_putc(&sb, '\'');
    for (const char *p = value; *p; p++) {
        if (*p == '\'' || *p == '\\')
            strbuf_putc(&sb, '\\');
        strbuf_putc(&sb, *p);
    }
    strbuf_putc(&sb, '\'');
    return strbuf_detach(&sb);
}
