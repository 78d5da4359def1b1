/* server/auth: the loopback test behind --listen's token rule, the token file, the
 * Authorization check and bearer extraction, and role names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/hostport.h"
#include "server/auth.h"

static bool loopback(const char *listen)
{
    hostport hp;
    char err[256];
    assert_true(hostport_parse(listen, &hp, err, sizeof err));
    return auth_is_loopback(&hp);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(loopback("127.0.0.1:8001"));
    assert_true(loopback("127.1.2.3:8001"));
    assert_true(loopback("127.255.255.255:1"));
    assert_true(loopback("[::1]:8001"));
    assert_true(loopback("[::ffff:127.0.0.1]:8001"));
    assert_true(loopback("localhost:8001"));
    assert_false(loopback("0.0.0.0:8001"));
    assert_false(loopback("10.0.0.1:8001"));
    assert_false(loopback("128.0.0.1:8001"));
    assert_false(loopback("[::]:8001"));
    assert_false(loopback("[::2]:8001"));
    assert_false(loopback("[::ffff:10.0.0.1]:8001"));
    assert_false(loopback("example.org:8001"));
}

/* Writes text to a temporary file; returns its path (static buffer). */
static const char *token_file(const char *text)
{
    static char path[] = "/tmp/rankql-auth-test.XXXXXX";
    strcpy(path, "/tmp/rankql-auth-test.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static auth_tokens *load(const char *text, char *why, size_t size)
{
    const char *path = token_file(text);
    auth_tokens *t = auth_load(path, why, size);
    unlink(path);
    return t;
}

static void test_load(void **state)
{
    (void)state;
    char why[512] = "";
    auth_tokens *t = load("# tokens\n\n  first-token-0123456789  \r\nsecond-token-0123456789\n", why,
                          sizeof why);
    assert_non_null(t);
    assert_int_equal(auth_count(t), 2);
    auth_free(t);

    assert_null(load("", why, sizeof why));
    assert_non_null(strstr(why, "holds no token"));
    assert_null(load("# only a comment\n", why, sizeof why));
    assert_null(load("short\n", why, sizeof why));
    assert_non_null(strstr(why, "line 1"));
    assert_null(load("ok-token-0123456789\nwith space inside 0123456789\n", why, sizeof why));
    assert_non_null(strstr(why, "line 2"));
    assert_null(auth_load("/nonexistent/rankql-tokens", why, sizeof why));
    assert_non_null(strstr(why, "/nonexistent/rankql-tokens"));
}

static void test_check(void **state)
{
    (void)state;
    char why[512] = "";
    auth_tokens *t = load("first-token-0123456789\nsecond-token-0123456789\n", why, sizeof why);
    assert_non_null(t);
    assert_true(auth_check(t, "Bearer first-token-0123456789"));
    assert_true(auth_check(t, "Bearer second-token-0123456789"));
    assert_true(auth_check(t, "bearer   first-token-0123456789  "));
    assert_true(auth_check(t, "BEARER\tsecond-token-0123456789"));
    assert_false(auth_check(t, NULL));
    assert_false(auth_check(t, ""));
    assert_false(auth_check(t, "Bearer"));
    assert_false(auth_check(t, "Bearer "));
    assert_false(auth_check(t, "Bearerfirst-token-0123456789"));
    assert_false(auth_check(t, "Basic first-token-0123456789"));
    assert_false(auth_check(t, "Bearer first-token-012345678"));   /* a prefix */
    assert_false(auth_check(t, "Bearer first-token-01234567890")); /* one more */
    assert_false(auth_check(t, "Bearer first-token-0123456788"));  /* last byte differs */
    assert_false(auth_check(t, "Bearer xfirst-token-0123456789"));
    assert_false(auth_check(t, "Bearer first-token-0123456789first-token-0123456789"));
    assert_false(auth_check(NULL, "Bearer first-token-0123456789"));
    auth_free(t);
}

static void test_bearer(void **state)
{
    (void)state;
    const char *tok;
    size_t len;
    const char *h = "  bearer \t rqt_abc  \t";
    assert_true(auth_bearer(h, &tok, &len));
    assert_int_equal(tok - h, 11);
    assert_int_equal(len, 7);
    assert_memory_equal(tok, "rqt_abc", 7);
    assert_false(auth_bearer(NULL, &tok, &len));
    assert_false(auth_bearer("Bearer", &tok, &len));
    assert_false(auth_bearer("Bearer   ", &tok, &len));
    assert_false(auth_bearer("Basic abc", &tok, &len));
    assert_false(auth_bearer("Bearerabc", &tok, &len));
    char big[600] = "Bearer ";
    memset(big + 7, 'x', 513);
    assert_false(auth_bearer(big, &tok, &len)); /* longer than any token */
    big[7 + 512] = '\0';
    assert_true(auth_bearer(big, &tok, &len));
    assert_int_equal(len, 512);
}

static void test_roles(void **state)
{
    (void)state;
    auth_role r = 0;
    assert_true(auth_role_parse("admin", &r));
    assert_int_equal(r, ROLE_ADMIN);
    assert_true(auth_role_parse("analyst", &r));
    assert_int_equal(r, ROLE_ANALYST);
    assert_false(auth_role_parse("Admin", &r));
    assert_false(auth_role_parse("root", &r));
    assert_false(auth_role_parse(NULL, &r));
    assert_string_equal(auth_role_name(ROLE_ADMIN), "admin");
    assert_string_equal(auth_role_name(ROLE_ANALYST), "analyst");
    assert_string_equal(auth_source_name(AUTH_LOOPBACK), "loopback");
    assert_string_equal(auth_source_name(AUTH_FILE), "token-file");
    assert_string_equal(auth_source_name(AUTH_CATALOG), "token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
