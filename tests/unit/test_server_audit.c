/* server/audit: statement texts are cut to AUDIT_STATEMENT_MAX bytes at a character
 * boundary, never inside a UTF-8 sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/audit.h"

static void test_cut(void **state)
{
    (void)state;
    assert_int_equal(audit_cut("abc", 3, 10), 3);
    assert_int_equal(audit_cut("abcdef", 6, 4), 4);
    /* "é" is c3 a9: a cut after c3 backs off to before it */
    const char *e = "ab\xc3\xa9z";
    assert_int_equal(audit_cut(e, 5, 3), 2);
    assert_int_equal(audit_cut(e, 5, 4), 4);
    /* "€" is e2 82 ac: cuts at 1 or 2 bytes into it back off to its start */
    const char *euro = "x\xe2\x82\xacy";
    assert_int_equal(audit_cut(euro, 5, 2), 1);
    assert_int_equal(audit_cut(euro, 5, 3), 1);
    assert_int_equal(audit_cut(euro, 5, 4), 4);
    /* a 4-byte character (U+1F600, f0 9f 98 80) at the limit */
    char big[AUDIT_STATEMENT_MAX + 8];
    memset(big, 'a', sizeof big);
    memcpy(big + AUDIT_STATEMENT_MAX - 2, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(audit_cut(big, sizeof big, AUDIT_STATEMENT_MAX), AUDIT_STATEMENT_MAX - 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cut)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
