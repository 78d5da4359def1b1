/* The planner's side of model checks and constraints (docs/language.md "Model checks",
 * "Constraints"): the default filter that hides failed checks, and `property OF "model"`
 * references (their parameters, errors, provenance in EXPLAIN). */
#include "tests/unit/planner_test_util.h"

#define FILTER "t.status NOT IN ('INVALID', 'NONUSABLE')"

static const plan_env checked_env = {test_vars, 2, true};

/* Plans src with the executor's environment (hide_failed_checks). */
static planned plan_checked(const char *src)
{
    planned x = plan_src_env(src, &checked_env);
    if (!x.p)
        fail_msg("does not plan: %s: %s", src, x.err.message);
    assert_sql_structural(x.p);
    return x;
}

static size_t count(const char *haystack, const char *needle)
{
    size_t n = 0;
    for (const char *c = strstr(haystack, needle); c; c = strstr(c + 1, needle))
        n++;
    return n;
}

static void test_default_filter(void **state)
{
    (void)state;
    planned x = plan_checked("SELECT name FROM models;");
    assert_string_equal(x.p->sql, "SELECT t.id, to_jsonb(t.name) FROM models t WHERE " FILTER
                                  " ORDER BY t.id");
    planned_free(&x);
    x = plan_checked("SELECT name FROM image_models WHERE num_params < 10M;");
    assert_contains(x.p->sql, "WHERE t.modality = 'image' AND " FILTER " AND (t.num_params < $1::");
    planned_free(&x);
    /* each member of a set operation has its own */
    x = plan_checked("SELECT name FROM image_models UNION SELECT name FROM text_models;");
    assert_int_equal(count(x.p->sql, FILTER), 2);
    planned_free(&x);
    /* without the executor's flag, nothing is added (what was written is planned) */
    char *sql = sql_of("SELECT name FROM models;");
    assert_null(strstr(sql, "status"));
    free(sql);
}

static void test_status_in_where_replaces_default(void **state)
{
    (void)state;
    const char *naming[] = {
        "SELECT name FROM models WHERE status = 'INVALID';",
        "SELECT name FROM models WHERE status IS NOT NULL;",
        "SELECT name FROM models WHERE NOT (status IN ('USABLE', 'PENDING')) OR num_params > 1;",
        "SELECT name FROM models WHERE lower(models.status) LIKE 'in%';",
    };
    for (size_t i = 0; i < sizeof naming / sizeof naming[0]; i++) {
        planned x = plan_checked(naming[i]);
        if (strstr(x.p->sql, FILTER))
            fail_msg("default filter kept for: %s", naming[i]);
        assert_contains(x.p->sql, "t.status");
        planned_free(&x);
    }
    /* status_message or a spec field named like it is not status */
    planned x = plan_checked("SELECT name FROM models WHERE status_message IS NULL;");
    assert_contains(x.p->sql, FILTER);
    planned_free(&x);
    /* only the member that names it loses the default */
    x = plan_checked("SELECT name FROM models WHERE status = 'INVALID' UNION SELECT name FROM models;");
    assert_int_equal(count(x.p->sql, FILTER), 1);
    planned_free(&x);
}

static void test_variables_and_other_tables(void **state)
{
    (void)state;
    planned x = plan_checked("SELECT name FROM v;"); /* a variable keeps what it was declared with */
    assert_null(strstr(x.p->sql, FILTER));
    planned_free(&x);
    x = plan_checked("SELECT name FROM datasets;");
    assert_null(strstr(x.p->sql, "status"));
    planned_free(&x);
    x = plan_checked("SELECT id FROM jobs WHERE kind = 'check';");
    assert_null(strstr(x.p->sql, FILTER));
    planned_free(&x);
    /* models' new columns resolve; status is also the jobs' column */
    x = plan_checked("SELECT name, status, status_message, latency_ms, measured_on, checked_at FROM models;");
    assert_contains(x.p->sql, "to_jsonb(t.latency_ms), to_jsonb(t.measured_on), to_jsonb(t.checked_at)");
    planned_free(&x);
}

static void test_explain_shows_default(void **state)
{
    (void)state;
    planned x = plan_checked("SELECT name FROM image_models WHERE source = 'TF';");
    json_t *tree = planner_explain_tree(x.p, NULL, NULL, 0);
    char **lines;
    size_t n = planner_explain_lines(tree, &lines);
    assert_int_equal(n, 3);
    assert_string_equal(lines[2], "      → Scan: image_models  [default filter: status NOT IN "
                                  "('INVALID', 'NONUSABLE')]");
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    json_decref(tree);
    planned_free(&x);
}

static void test_of_references(void **state)
{
    (void)state;
    planned x = plan_checked("SELECT name FROM models WHERE latency_ms < 0.6 * latency_ms OF \"resnet50\";");
    assert_int_equal(x.p->nrefs, 1);
    const plan_ref *r = &x.p->refs[0];
    assert_string_equal(r->property, "latency_ms");
    assert_string_equal(r->model, "resnet50");
    assert_int_equal(r->pos.line, 1);
    assert_int_equal(r->pos.col, 50);
    assert_false(r->resolved);
    assert_null(x.p->params.values[r->param - 1]); /* the executor fills it in */
    char *want = xasprintf("(t.latency_ms < ($1::double precision * $%zu::double precision))", r->param);
    assert_contains(x.p->sql, want);
    free(want);
    assert_non_null(r->node);
    assert_int_equal(r->node->op, PLAN_FILTER);

    planner_resolve_ref(x.p, 0, 2.5, "USABLE", "cpu: Test CPU (h1)", "2025-06-01 12:00:00 UTC");
    assert_string_equal(x.p->params.values[r->param - 1], "2.5");
    char *text = planner_ref_text(r);
    assert_string_equal(text, "latency_ms OF \"resnet50\" = 2.5, measured on cpu: Test CPU (h1) "
                              "(checked 2025-06-01 12:00:00 UTC), status USABLE");
    free(text);
    json_t *tree = planner_explain_tree(x.p, NULL, NULL, 0);
    char **lines;
    size_t n = planner_explain_lines(tree, &lines);
    assert_int_equal(n, 4);
    assert_string_equal(lines[1], "  → Filter: latency_ms < 0.6 * latency_ms OF \"resnet50\"");
    assert_string_equal(lines[2], "      Reference: latency_ms OF \"resnet50\" = 2.5, measured on "
                                  "cpu: Test CPU (h1) (checked 2025-06-01 12:00:00 UTC), status USABLE");
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    json_decref(tree);
    planned_free(&x);

    /* two references, num_params from the catalog (no device) */
    x = plan_checked("SELECT name FROM models WHERE num_params <= num_params OF a AND dimension IN (dimension OF 'b', 768);");
    assert_int_equal(x.p->nrefs, 2);
    assert_string_equal(x.p->refs[0].model, "a");
    assert_string_equal(x.p->refs[1].property, "dimension");
    planner_resolve_ref(x.p, 0, 25e6, "UNCHECKED", NULL, NULL);
    text = planner_ref_text(&x.p->refs[0]);
    assert_string_equal(text, "num_params OF \"a\" = 2.5e+07, from the catalog, status UNCHECKED");
    free(text);
    planned_free(&x);
}

static void test_of_errors(void **state)
{
    (void)state;
    planned x = plan_src("SELECT name FROM models WHERE latency_ms < name OF \"m\";");
    assert_null(x.p);
    assert_int_equal(x.err.http_status, 400);
    assert_non_null(strstr(x.err.message, "OF takes a numeric model property"));
    assert_int_equal(x.err.col, 44);
    planned_free(&x);
    x = plan_src("SELECT name FROM datasets WHERE size < latency_ms OF \"m\";");
    assert_null(x.p);
    assert_non_null(strstr(x.err.message, "compares models, not datasets"));
    planned_free(&x);
    x = plan_src("SELECT name FROM models WHERE source < latency_ms OF \"m\";");
    assert_null(x.p); /* text compared with a number */
    assert_int_equal(x.err.http_status, 400);
    planned_free(&x);
    /* deparsed as written */
    rq_script *s = rq_parse_script("SELECT 1 FROM models WHERE a < 2 * latency_ms OF \"x y\";", 56);
    char *d = planner_deparse(((const ast_select *)s->stmts[0].ast)->where);
    assert_string_equal(d, "a < 2 * latency_ms OF \"x y\"");
    free(d);
    rq_script_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_filter),
        cmocka_unit_test(test_status_in_where_replaces_default),
        cmocka_unit_test(test_variables_and_other_tables),
        cmocka_unit_test(test_explain_shows_default),
        cmocka_unit_test(test_of_references),
        cmocka_unit_test(test_of_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
