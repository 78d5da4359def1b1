/* db/pqutil: one-line libpq errors and conninfo quoting (no server needed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "db/pqutil.h"

static void check_one_line(const char *in, const char *want)
{
    char *got = pq_one_line(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_one_line_joins_and_trims(void **state)
{
    (void)state;
    check_one_line("connection to server on socket \"/x/.s.PGSQL.5432\" failed: No such file\n"
                   "\tIs the server running locally?\n",
                   "connection to server on socket \"/x/.s.PGSQL.5432\" failed: No such file; "
                   "Is the server running locally?");
    check_one_line("ERROR:  relation \"x\" does not exist\nLINE 1: select * from x\n",
                   "ERROR:  relation \"x\" does not exist; LINE 1: select * from x");
    check_one_line("single", "single");
    check_one_line("  padded  \n\n\n", "padded");
}

static void test_one_line_empty(void **state)
{
    (void)state;
    check_one_line("", "(no message from libpq)");
    check_one_line("\n \n", "(no message from libpq)");
    check_one_line(NULL, "(no message from libpq)");
}

/* The quoted value must come back unchanged through libpq's own parser. */
static void check_round_trip(const char *value)
{
    char *quoted = pq_conninfo_quote(value);
    size_t n = strlen(quoted) + 32;
    char *conninfo = malloc(n);
    assert_non_null(conninfo);
    snprintf(conninfo, n, "host=%s port=5432", quoted);
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    assert_non_null(opts);
    const char *host = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
    assert_non_null(host);
    assert_string_equal(host, value);
    PQconninfoFree(opts);
    free(conninfo);
    free(quoted);
}

static void test_conninfo_quote(void **state)
{
    (void)state;
    char *q = pq_conninfo_quote("/tmp/a b");
    assert_string_equal(q, "'/tmp/a b'");
    free(q);
    q = pq_conninfo_quote("it's\\here");
    assert_string_equal(q, "'it\\'s\\\\here'");
    free(q);
    check_round_trip("/tmp/plain/pg-socket");
    check_round_trip("/tmp/with space/and 'quotes'/pg-socket");
    check_round_trip("/tmp/back\\slash");
    check_round_trip("");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_line_joins_and_trims),
        cmocka_unit_test(test_one_line_empty),
        cmocka_unit_test(test_conninfo_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
