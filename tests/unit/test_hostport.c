/* common/hostport: "HOST:PORT" as --listen and USE "host:port" take it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "common/hostport.h"

static void expect_ok(const char *s, const char *host, int port, int family)
{
    hostport hp;
    char err[256] = "";
    assert_true(hostport_parse(s, &hp, err, sizeof err));
    assert_string_equal(hp.host, host);
    assert_int_equal(hp.port, port);
    assert_int_equal(hp.family, family);
}

static void expect_error(const char *s, const char *needle)
{
    hostport hp;
    char err[256] = "";
    assert_false(hostport_parse(s, &hp, err, sizeof err));
    if (!strstr(err, needle))
        fail_msg("'%s': error '%s' lacks '%s'", s, err, needle);
}

static void test_accepts(void **state)
{
    (void)state;
    expect_ok("127.0.0.1:8001", "127.0.0.1", 8001, AF_INET);
    expect_ok("0.0.0.0:1", "0.0.0.0", 1, AF_INET);
    expect_ok("[::1]:65535", "::1", 65535, AF_INET6);
    expect_ok("[fe80::1:2]:80", "fe80::1:2", 80, AF_INET6);
    expect_ok("localhost:8001", "localhost", 8001, 0);
    expect_ok("db-1.example.org:5432", "db-1.example.org", 5432, 0);
}

static void test_rejects(void **state)
{
    (void)state;
    expect_error("127.0.0.1", "expected HOST:PORT");
    expect_error(":8001", "host part is empty");
    expect_error("127.0.0.1:", "port must be a number");
    expect_error("127.0.0.1:0", "port must be a number from 1 to 65535");
    expect_error("127.0.0.1:65536", "1 to 65535");
    expect_error("127.0.0.1:80x", "port must be");
    expect_error("127.0.0.1:-1", "port must be");
    expect_error("127.0.0.1:000080", "port must be");
    expect_error("::1:80", "IPv6 address in brackets");
    expect_error("[::1:80", "[ADDR]:PORT");
    expect_error("[::1]80", "[ADDR]:PORT");
    expect_error("[nonsense]:80", "not an IPv6 address");
    expect_error("1.2.3:80", "neither an IPv4 address nor a host name");
    expect_error("300.1.1.1:80", "neither");
    expect_error("bad_name:80", "neither");
    expect_error("a..b:80", "neither");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
