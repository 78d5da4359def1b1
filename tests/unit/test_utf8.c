/* common/utf8: the validator HTTP bodies and query parameters go through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/utf8.h"

static void valid(const char *s, size_t len)
{
    size_t bad = 12345;
    if (!utf8_valid(s, len, &bad))
        fail_msg("rejected a valid sequence at %zu", bad);
}

static void invalid(const char *s, size_t len, size_t at)
{
    size_t bad = 12345;
    assert_false(utf8_valid(s, len, &bad));
    assert_int_equal(bad, at);
}

static void test_valid(void **state)
{
    (void)state;
    valid("", 0);
    valid("plain ascii", 11);
    valid("a\0b", 3);                          /* NUL is well-formed */
    valid("\xc3\xbc", 2);                      /* ü */
    valid("\xe2\x98\x83", 3);                  /* ☃ U+2603 */
    valid("\xed\x9f\xbf", 3);                  /* U+D7FF, just below the surrogates */
    valid("\xee\x80\x80", 3);                  /* U+E000, just above */
    valid("\xf0\x9f\x98\x80", 4);              /* U+1F600 */
    valid("\xf4\x8f\xbf\xbf", 4);              /* U+10FFFF, the last */
}

static void test_invalid(void **state)
{
    (void)state;
    invalid("\xff", 1, 0);
    invalid("ab\xfe", 3, 2);
    invalid("\x80", 1, 0);                     /* a lone continuation byte */
    invalid("\xc0\xaf", 2, 0);                 /* overlong '/' */
    invalid("\xc1\xbf", 2, 0);                 /* overlong */
    invalid("\xe0\x80\xaf", 3, 0);             /* overlong */
    invalid("\xf0\x80\x80\xaf", 4, 0);         /* overlong */
    invalid("\xed\xa0\x80", 3, 0);             /* U+D800, a surrogate */
    invalid("\xed\xbf\xbf", 3, 0);             /* U+DFFF */
    invalid("\xf4\x90\x80\x80", 4, 0);         /* above U+10FFFF */
    invalid("\xf5\x80\x80\x80", 4, 0);
    invalid("x\xc3", 2, 1);                    /* cut short at the end */
    invalid("\xe2\x98", 2, 0);
    invalid("\xe2\x98x", 3, 0);                /* not a continuation byte */
    invalid("\xf0\x9f\x98", 3, 0);
    assert_false(utf8_valid("\xff", 1, NULL)); /* bad may be NULL */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
