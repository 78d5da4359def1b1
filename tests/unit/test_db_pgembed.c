/* db/pgembed: the checks that fail before any server is started. Each must
 * fail with a message naming the cause and leave nothing on disk. */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "db/pgembed.h"

/* As root, pg_embedded_start() first needs the postgres user. */
static bool can_run(void)
{
    return geteuid() != 0 || getpwnam("postgres") != NULL;
}

static int make_scratch(void **state)
{
    char tmpl[] = "/tmp/rankql-unit.XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    chmod(dir, 0755);
    *state = strdup(dir);
    return 0;
}

static int remove_scratch(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", (char *)*state);
    int rc = system(cmd);
    free(*state);
    return rc == 0 ? 0 : -1;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void expect_failure(const pg_embedded_opts *opts, const char *needle)
{
    char *err = NULL;
    pg_embedded *pg = pg_embedded_start(opts, &err);
    assert_null(pg);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
    assert_null(strchr(err, '\n'));
    free(err);
}

static void test_missing_binaries(void **state)
{
    if (!can_run())
        skip();
    char data[512];
    snprintf(data, sizeof data, "%s/data", (char *)*state);
    pg_embedded_opts opts = {.data_dir = data, .bindir = "/nonexistent/bin"};
    expect_failure(&opts, "/nonexistent/bin: the PostgreSQL server programs initdb, pg_ctl and "
                          "postgres are not all there");
    assert_false(exists(data));
}

static void test_missing_binaries_from_environment(void **state)
{
    if (!can_run())
        skip();
    char data[512];
    snprintf(data, sizeof data, "%s/data", (char *)*state);
    setenv("RANKQL_PG_BINDIR", "/nonexistent", 1);
    pg_embedded_opts opts = {.data_dir = data};
    expect_failure(&opts, "RANKQL_PG_BINDIR=/nonexistent");
    unsetenv("RANKQL_PG_BINDIR");
    assert_false(exists(data));
}

static void test_socket_path_too_long(void **state)
{
    if (!can_run())
        skip();
    char data[512];
    snprintf(data, sizeof data, "%s/%0100d/data", (char *)*state, 0);
    pg_embedded_opts opts = {.data_dir = data};
    expect_failure(&opts, "longer than the 107 a Unix socket path may have");
    assert_false(exists(data));
}

static void test_bad_characters(void **state)
{
    if (!can_run())
        skip();
    char data[512];
    snprintf(data, sizeof data, "%s/a\"b", (char *)*state);
    pg_embedded_opts opts = {.data_dir = data};
    expect_failure(&opts, "contains the character '\"'");
    assert_false(exists(data));
}

static void test_empty_data_dir(void **state)
{
    (void)state;
    pg_embedded_opts opts = {.data_dir = ""};
    expect_failure(&opts, "no data directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_binaries, make_scratch, remove_scratch),
        cmocka_unit_test_setup_teardown(test_missing_binaries_from_environment, make_scratch,
                                        remove_scratch),
        cmocka_unit_test_setup_teardown(test_socket_path_too_long, make_scratch, remove_scratch),
        cmocka_unit_test_setup_teardown(test_bad_characters, make_scratch, remove_scratch),
        cmocka_unit_test(test_empty_data_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
