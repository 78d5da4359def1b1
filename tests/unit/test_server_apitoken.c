/* server/apitoken: the catalog token format (prefix + base64url of 32 random bytes), its
 * shape check, its SHA-256, durations and names. Expected encodings and hashes were
 * computed independently (Python's base64.urlsafe_b64encode, sha256sum). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/apitoken.h"

static void test_encode(void **state)
{
    (void)state;
    unsigned char raw[32];
    char out[APITOKEN_LEN + 1];
    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)i;
    apitoken_encode(raw, out);
    assert_string_equal(out, "rqt_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    memset(raw, 0xff, sizeof raw);
    apitoken_encode(raw, out);
    assert_string_equal(out, "rqt___________________________________________8");
    assert_int_equal(strlen(out), APITOKEN_LEN);
}

static void test_generate(void **state)
{
    (void)state;
    enum { N = 200 };
    static char tokens[N][APITOKEN_LEN + 1];
    char why[128];
    int ones = 0; /* bits set among the random characters' 6-bit values */
    for (int i = 0; i < N; i++) {
        assert_true(apitoken_generate(tokens[i], why, sizeof why));
        assert_int_equal(strlen(tokens[i]), APITOKEN_LEN);
        assert_memory_equal(tokens[i], "rqt_", 4);
        assert_true(apitoken_wellformed(tokens[i], APITOKEN_LEN));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(tokens[i], tokens[j]);
        for (int k = 4; k < APITOKEN_LEN - 1; k++) {
            const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            int v = (int)(strchr(a, tokens[i][k]) - a);
            ones += __builtin_popcount((unsigned)v);
        }
    }
    /* 200 tokens × 42 characters × 6 bits: half are ones, ± far less than 10 % */
    int bits = N * (APITOKEN_LEN - 5) * 6;
    assert_true(ones > bits * 45 / 100 && ones < bits * 55 / 100);
}

static void test_wellformed(void **state)
{
    (void)state;
    const char *good = "rqt_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    assert_true(apitoken_wellformed(good, strlen(good)));
    char t[APITOKEN_LEN + 2];
    strcpy(t, good);
    t[0] = 'R'; /* another prefix */
    assert_false(apitoken_wellformed(t, APITOKEN_LEN));
    strcpy(t, good);
    assert_false(apitoken_wellformed(t, APITOKEN_LEN - 1));
    strcat(t, "A");
    assert_false(apitoken_wellformed(t, APITOKEN_LEN + 1));
    const char *bad_chars = "+/= .\n";
    for (const char *c = bad_chars; *c; c++) {
        strcpy(t, good);
        t[10] = *c;
        assert_false(apitoken_wellformed(t, APITOKEN_LEN));
    }
    /* the last character encodes 4 bits: 'B' (1) has bits no 32-byte value gives */
    strcpy(t, good);
    t[APITOKEN_LEN - 1] = 'B';
    assert_false(apitoken_wellformed(t, APITOKEN_LEN));
    t[APITOKEN_LEN - 1] = 'E'; /* 4 */
    assert_true(apitoken_wellformed(t, APITOKEN_LEN));
    assert_false(apitoken_wellformed("tok-0123456789abcdef", 20)); /* a --token-file token */
}

static void test_hash(void **state)
{
    (void)state;
    char hex[65];
    apitoken_hash("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *t = "rqt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    apitoken_hash(t, strlen(t), hex);
    assert_string_equal(hex, "ad7bd80096c962a728bb29b3669c641eaaa221eefba918be96532984bd79a861");
}

static void test_duration(void **state)
{
    (void)state;
    long long s = 0;
    static const struct { const char *text; long long seconds; } good[] = {
        {"30d", 2592000}, {"12h", 43200}, {"90m", 5400}, {"3600s", 3600}, {"3600", 3600},
        {"1", 1}, {"3660d", 3660LL * 86400},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(apitoken_parse_duration(good[i].text, &s));
        assert_int_equal(s, good[i].seconds);
    }
    static const char *const bad[] = {"", "0", "0d", "-1", "+5", "1w", "10x", "d", "1.5h",
                                      "3661d", "12 h", "99999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(apitoken_parse_duration(bad[i], &s));
    assert_false(apitoken_parse_duration(NULL, &s));
}

static void test_names(void **state)
{
    (void)state;
    assert_true(apitoken_name_ok("ci-bot"));
    assert_true(apitoken_name_ok("alice@example.org"));
    assert_true(apitoken_name_ok("a.b_c-1"));
    assert_true(apitoken_name_ok("1a"));
    assert_false(apitoken_name_ok(NULL));
    assert_false(apitoken_name_ok(""));
    assert_false(apitoken_name_ok("123")); /* would read as an id */
    assert_false(apitoken_name_ok("with space"));
    assert_false(apitoken_name_ok("a/b"));
    assert_false(apitoken_name_ok("caf\xc3\xa9"));
    char long_name[66];
    memset(long_name, 'x', 65);
    long_name[65] = '\0';
    assert_false(apitoken_name_ok(long_name));
    long_name[64] = '\0';
    assert_true(apitoken_name_ok(long_name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),   cmocka_unit_test(test_generate),
        cmocka_unit_test(test_wellformed), cmocka_unit_test(test_hash),
        cmocka_unit_test(test_duration), cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
