/* The migrations compiled into the binary (scripts/embed-sql.sh): complete,
 * in order, and each fit to run inside db/migrate.c's own transaction. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "db/migrate.h"

static void test_versions_start_at_one_without_gaps(void **state)
{
    (void)state;
    assert_true(db_migrations_count >= 4);
    for (size_t i = 0; i < db_migrations_count; i++)
        assert_int_equal(db_migrations[i].version, (int)i + 1);
}

static void test_names_match_versions(void **state)
{
    (void)state;
    for (size_t i = 0; i < db_migrations_count; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "%03d_", db_migrations[i].version);
        assert_memory_equal(db_migrations[i].name, prefix, strlen(prefix));
    }
    assert_string_equal(db_migrations[0].name, "001_catalog");
    assert_string_equal(db_migrations[1].name, "002_jobs");
    assert_string_equal(db_migrations[2].name, "003_caches");
    assert_string_equal(db_migrations[3].name, "004_sessions");
}

/* Does `word` start a line (after blanks) anywhere in sql, case-insensitively? */
static bool line_starts_with(const char *sql, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = sql; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, word, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_')
            return true;
    }
    return false;
}

/* db/migrate.c wraps each migration in a transaction with its bookkeeping
 * row; a migration that commits by itself would break that. */
static void test_no_transaction_control(void **state)
{
    (void)state;
    for (size_t i = 0; i < db_migrations_count; i++) {
        const char *sql = db_migrations[i].sql;
        assert_true(strlen(sql) > 0);
        assert_false(line_starts_with(sql, "COMMIT;"));
        assert_false(line_starts_with(sql, "ROLLBACK;"));
        assert_false(line_starts_with(sql, "BEGIN;"));
        assert_false(line_starts_with(sql, "START TRANSACTION"));
        assert_null(strstr(sql, "CONCURRENTLY"));
    }
}

/* The embedding keeps the text byte for byte: spot-check what needs escapes. */
static void test_text_survives_embedding(void **state)
{
    (void)state;
    const char *catalog = db_migrations[0].sql;
    assert_non_null(strstr(catalog, "CREATE TABLE models ("));
    assert_non_null(strstr(catalog, "\xe2\x80\x94")); /* the em dash in its first line */
    assert_non_null(strstr(catalog, "'^[0-9a-f]{64}$'"));
    assert_int_equal(catalog[strlen(catalog) - 1], '\n');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions_start_at_one_without_gaps),
        cmocka_unit_test(test_names_match_versions),
        cmocka_unit_test(test_no_transaction_control),
        cmocka_unit_test(test_text_survives_embedding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
