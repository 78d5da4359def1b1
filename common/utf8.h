/* UTF-8 validation for bytes that come from outside (HTTP bodies, query parameters). */
#ifndef RANKQL_COMMON_UTF8_H
#define RANKQL_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). NUL bytes are well-formed; callers that cannot take them check
 * separately. Otherwise false, with the offset of the first bad byte in *bad (if not NULL). */
bool utf8_valid(const char *s, size_t len, size_t *bad);

#endif
