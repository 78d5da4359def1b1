/* Injection safety of the planner's SQL: hostile strings (quotes, ';', '--', '$1',
 * backslashes, comment openers, 10 KB strings) in every string slot of a query reach the
 * SQL only as parameters, byte for byte, and the SQL text stays structurally clean. */
#include "planner_test_util.h"

/* raw as a RankQL literal in the given quote ('…' or "…"), with \ escapes. */
static char *quoted(const char *raw, char q)
{
    strbuf sb = {0};
    strbuf_putc(&sb, q);
    for (const char *c = raw; *c; c++) {
        if (*c == '\\' || *c == q)
            strbuf_putc(&sb, '\\');
        strbuf_putc(&sb, *c);
    }
    strbuf_putc(&sb, q);
    return strbuf_detach(&sb);
}

/* Statement templates: each %1$s is a string literal, each %2$s a quoted name. */
static const char *const templates[] = {
    "SELECT name FROM models WHERE name = %1$s;",
    "SELECT name FROM models WHERE source <> %1$s OR name LIKE %1$s;",
    "SELECT name FROM models WHERE name NOT LIKE %1$s AND source IN (%1$s, 'x');",
    "SELECT name FROM models WHERE name BETWEEN %1$s AND %1$s;",
    "SELECT name FROM models WHERE hf_name = %1$s OR torchvision_name LIKE %1$s;",
    "SELECT name FROM models WHERE spec.%2$s = %1$s;",
    "SELECT name FROM models WHERE spec.%2$s.%2$s IS NULL;",
    "SELECT spec.%2$s FROM models ORDER BY spec.%2$s;",
    "SELECT name FROM models WHERE tags = %1$s OR tags IN (%1$s);",
    "SELECT name FROM models WHERE lower(name) = %1$s;",
    "SELECT name, %1$s AS c FROM models;",
    "SELECT name FROM datasets WHERE vtab_name = %1$s AND location LIKE %1$s;",
    "SELECT name FROM jobs WHERE payload.%2$s = %1$s;",
    "SELECT name FROM image_models WHERE name = %1$s UNION SELECT name FROM text_models WHERE source = %1$s;",
    "SELECT name FROM v WHERE name = %1$s OTHER THAN v;",
    "SELECT DISTINCT source FROM models WHERE source = %1$s;",
};

static char *hostile_long(char fill_kind)
{
    char *s = xmalloc(10241);
    for (int i = 0; i < 10240; i++)
        s[i] = fill_kind == 'q' ? '\'' : "';--$1\\\"/* "[i % 11];
    s[10240] = '\0';
    return s;
}

static void check_one(const char *hostile)
{
    char *lit = quoted(hostile, '\''), *name = quoted(hostile, '"');
    for (size_t t = 0; t < sizeof templates / sizeof templates[0]; t++) {
        if (strstr(templates[t], "%2$s") && strlen(hostile) > 2000)
            continue; /* names of 10 KB are covered by the literal slots */
        char *src = xasprintf(templates[t], lit, name);
        planned x = plan_src(src);
        if (!x.p) {
            /* a clean refusal is fine (jobs have no name column): never a crash */
            assert_string_equal(x.err.code, "semantic_error");
        } else {
            assert_sql_structural(x.p);
            assert_true(has_param(x.p, hostile));
            /* the hostile text itself never appears in the SQL (unless it is a
             * substring of ordinary SQL, like "$1" or " ") */
            if (strlen(hostile) > 3 && strstr(x.p->sql, hostile))
                fail_msg("hostile string in SQL: %s", x.p->sql);
        }
        planned_free(&x);
        free(src);
    }
    free(lit);
    free(name);
}

static void test_hostile_strings(void **state)
{
    (void)state;
    const char *hostile[] = {
        "x'; DROP TABLE models; --",
        "' OR '1'='1",
        "$1",
        "$2::text); DELETE FROM datasets; --",
        "\\'; TRUNCATE models; --",
        "\"; DROP TABLE models; --",
        "a\\b\\\\c\\",
        "/* comment */ name",
        "%_%",
        ") OR (1=1",
        "é ünïcödé ✓",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
        check_one(hostile[i]);
    char *longq = hostile_long('q'), *longm = hostile_long('m');
    check_one(longq);
    check_one(longm);
    free(longq);
    free(longm);
}

/* Every planned statement of the shapes the planner produces is structurally clean. */
static void test_structure_of_many_shapes(void **state)
{
    (void)state;
    const char *stmts[] = {
        "SELECT * FROM models WHERE num_params < 10M AND (source = 'a' OR NOT FINETUNED);",
        "SELECT * FROM image_models WHERE spec.a.b.c = 1 ORDER BY spec.a DESC LIMIT 3;",
        "SELECT name FROM models WHERE date_added BETWEEN '2022-01-01' AND '2022-12-31';",
        "SELECT * FROM v UNION SELECT * FROM text_models INTERSECT SELECT * FROM models WHERE tags = 'x';",
        "SELECT DISTINCT runner, modality FROM models ORDER BY 2, runner;",
        "SELECT * FROM ds WHERE size > 3 OTHER THAN ds;",
        "SELECT id, status FROM jobs WHERE result.err < 0.5 ORDER BY created_at DESC;",
        "SELECT name FROM models WHERE source = 'TensorFlow' AND hf_name LIKE 'google%' AND date_added > '2021-01-01';",
        "SELECT name FROM models WHERE name IN ('alexnet', 'resnet18') OR tags = 'demo' OR parent = 'vit_base';",
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        planned x = plan_src(stmts[i]);
        if (!x.p)
            fail_msg("%s: %s", stmts[i], x.err.message);
        assert_sql_structural(x.p);
        /* no value the query wrote is pasted into the SQL */
        for (size_t k = 0; k < x.p->params.n; k++)
            if (strlen(x.p->params.values[k]) >= 4 && strstr(x.p->sql, x.p->params.values[k]))
                fail_msg("parameter %s appears in the SQL: %s", x.p->params.values[k], x.p->sql);
        planned_free(&x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_strings),
        cmocka_unit_test(test_structure_of_many_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
