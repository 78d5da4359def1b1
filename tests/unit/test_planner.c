/* Unit tests of the planner's SQL generation (no database): every operator, precedence
 * and parentheses, spec paths, the bare-word rule, set operations, variables, ORDER BY
 * and LIMIT, type and name errors with positions, 501s, and the EXPLAIN tree shape. */
#include "planner_test_util.h"

/* The WHERE part of a plan's SQL (up to ORDER BY). Caller frees. */
static char *where_of(const char *src)
{
    char *sql = sql_of(src);
    char *w = strstr(sql, " t WHERE "); /* the query's own, not the parent subquery's */
    char *o = strstr(sql, " ORDER BY ");
    char *out = w ? xstrndup(w + 9, (size_t)((o ? o : sql + strlen(sql)) - (w + 9))) : xstrdup("");
    free(sql);
    return out;
}

static void assert_where(const char *src, const char *expected)
{
    char *w = where_of(src);
    if (strcmp(w, expected) != 0)
        fail_msg("%s\nexpected WHERE: %s\nactual WHERE:   %s", src, expected, w);
    free(w);
}

static void assert_error(const char *src, int status, const char *code, int line, int col,
                         const char *needle)
{
    planned x = plan_src(src);
    if (x.p)
        fail_msg("expected an error for %s, got SQL %s", src, x.p->sql);
    assert_int_equal(x.err.http_status, status);
    assert_string_equal(x.err.code, code);
    if (line) {
        assert_int_equal(x.err.line, line);
        assert_int_equal(x.err.col, col);
    }
    if (needle && !strstr(x.err.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", x.err.message, needle);
    planned_free(&x);
}

/* ---- operators ------------------------------------------------------------------------ */

static void test_comparison_operators(void **state)
{
    (void)state;
    assert_where("SELECT * FROM models WHERE num_params = 5;", "(t.num_params = $1::bigint)");
    assert_where("SELECT * FROM models WHERE num_params == 5;", "(t.num_params = $1::bigint)");
    assert_where("SELECT * FROM models WHERE num_params != 5;", "(t.num_params <> $1::bigint)");
    assert_where("SELECT * FROM models WHERE num_params <> 5;", "(t.num_params <> $1::bigint)");
    assert_where("SELECT * FROM models WHERE num_params < 5;", "(t.num_params < $1::bigint)");
    assert_where("SELECT * FROM models WHERE num_params <= 5;", "(t.num_params <= $1::bigint)");
    assert_where("SELECT * FROM models WHERE num_params > 5;", "(t.num_params > $1::bigint)");
    assert_where("SELECT * FROM models WHERE num_params >= 5;", "(t.num_params >= $1::bigint)");
    assert_where("SELECT * FROM models WHERE up_acc > 0.5;", "(t.up_acc > $1::double precision)");
    assert_where("SELECT * FROM models WHERE 5 < num_params;", "($1::bigint < t.num_params)");
    assert_where("SELECT * FROM models WHERE name = 'x';", "(t.name = $1::text)");
    assert_where("SELECT * FROM models WHERE date_added < '2022-01-01';", "(t.date_added < $1::date)");
    assert_where("SELECT * FROM models WHERE created_at >= '2022-01-01 10:00';", "(t.created_at >= $1::timestamptz)");
    assert_where("SELECT * FROM models WHERE finetuned = TRUE;", "(t.finetuned = $1::boolean)");
}

static void test_other_operators(void **state)
{
    (void)state;
    assert_where("SELECT * FROM models WHERE num_params BETWEEN 1M AND 10M;",
                 "(t.num_params BETWEEN $1::bigint AND $2::bigint)");
    assert_where("SELECT * FROM models WHERE num_params NOT BETWEEN 1 AND 2;",
                 "(t.num_params NOT BETWEEN $1::bigint AND $2::bigint)");
    assert_where("SELECT * FROM models WHERE dimension IN (512, 768);",
                 "(t.dimension IN ($1::bigint, $2::bigint))");
    assert_where("SELECT * FROM models WHERE source NOT IN ('a', 'b');",
                 "(t.source NOT IN ($1::text, $2::text))");
    assert_where("SELECT * FROM models WHERE up_acc IS NULL;", "(t.up_acc IS NULL)");
    assert_where("SELECT * FROM models WHERE up_acc IS NOT NULL;", "(t.up_acc IS NOT NULL)");
    assert_where("SELECT * FROM models WHERE name LIKE 'res%';", "(t.name LIKE $1::text)");
    assert_where("SELECT * FROM models WHERE name NOT LIKE 'res%';", "(t.name NOT LIKE $1::text)");
    assert_where("SELECT * FROM models WHERE FINETUNED;", "t.finetuned");
    assert_where("SELECT * FROM models WHERE NOT FINETUNED;", "(NOT t.finetuned)");
    assert_where("SELECT * FROM text_models WHERE NOT FINETUNED;", "t.modality = 'text' AND (NOT t.finetuned)");
    assert_where("SELECT * FROM models WHERE num_params + 1 > 2 * dimension;",
                 "((t.num_params + $1::bigint) > ($2::bigint * t.dimension))");
    assert_where("SELECT * FROM models WHERE num_params - dimension / 2 > 0;",
                 "((t.num_params - ((t.dimension)::numeric / $1::bigint)) > $2::bigint)");
    assert_where("SELECT * FROM models WHERE -num_params < -5;", "((- t.num_params) < $1::bigint)");
    assert_where("SELECT * FROM models WHERE tags = 'demo';", "($1::text = ANY(t.tags))");
    assert_where("SELECT * FROM models WHERE tags != 'demo';", "(NOT ($1::text = ANY(t.tags)))");
    assert_where("SELECT * FROM models WHERE tags IN ('a', 'b');", "((t.tags && ARRAY[$1::text, $2::text]))");
    assert_where("SELECT * FROM models WHERE lower(name) = 'x';", "(lower(t.name) = $1::text)");
    assert_where("SELECT * FROM models WHERE length(tags) > 1;", "(cardinality(t.tags) > $1::bigint)");
    assert_where("SELECT * FROM models WHERE parent = 'p';",
                 "((SELECT p.name FROM models p WHERE p.id = t.parent_model_id) = $1::text)");
}

static void test_size_suffixes_are_numbers(void **state)
{
    (void)state;
    planned x = plan_src("SELECT * FROM models WHERE num_params < 10M AND num_params > 1.5K AND dimension < 2B;");
    assert_non_null(x.p);
    assert_string_equal(x.p->params.values[0], "10000000");
    assert_string_equal(x.p->params.values[1], "1500");
    assert_string_equal(x.p->params.values[2], "2000000000");
    planned_free(&x);
}

/* ---- precedence and parentheses ------------------------------------------------------- */

static void test_precedence(void **state)
{
    (void)state;
    assert_where("SELECT * FROM models WHERE source = 'a' OR source = 'b' AND dimension > 3;",
                 "((t.source = $1::text) OR ((t.source = $2::text) AND (t.dimension > $3::bigint)))");
    assert_where("SELECT * FROM models WHERE (source = 'a' OR source = 'b') AND dimension > 3;",
                 "(((t.source = $1::text) OR (t.source = $2::text)) AND (t.dimension > $3::bigint))");
    assert_where("SELECT * FROM models WHERE NOT source = 'a' AND dimension > 3;",
                 "((NOT (t.source = $1::text)) AND (t.dimension > $2::bigint))");
    assert_where("SELECT * FROM models WHERE NOT (source = 'a' OR dimension > 3);",
                 "(NOT ((t.source = $1::text) OR (t.dimension > $2::bigint)))");
    assert_where("SELECT * FROM models WHERE a = 1 OR b = 2 OR c = 3;",
                 "((((t.spec -> $1::text) = to_jsonb($2::numeric)) OR ((t.spec -> $3::text) = to_jsonb($4::numeric))) OR ((t.spec -> $5::text) = to_jsonb($6::numeric)))");
    assert_where("SELECT * FROM models WHERE num_params BETWEEN 1 AND 2 AND FINETUNED;",
                 "((t.num_params BETWEEN $1::bigint AND $2::bigint) AND t.finetuned)");
    assert_where("SELECT * FROM image_models WHERE source = 'a' OR FINETUNED;",
                 "t.modality = 'image' AND ((t.source = $1::text) OR t.finetuned)");
    assert_where("SELECT * FROM models WHERE (num_params + 1) * 2 > 3;",
                 "(((t.num_params + $1::bigint) * $2::bigint) > $3::bigint)");
}

/* ---- names: columns, spec paths, bare words -------------------------------------------- */

static void test_spec_paths(void **state)
{
    (void)state;
    planned x = plan_src("SELECT * FROM models WHERE spec.required_image_size.height = 224;");
    assert_non_null(x.p);
    assert_contains(x.p->sql, "((t.spec -> $1::text -> $2::text) = to_jsonb($3::numeric))");
    assert_string_equal(x.p->params.values[0], "required_image_size");
    assert_string_equal(x.p->params.values[1], "height");
    assert_string_equal(x.p->params.values[2], "224");
    planned_free(&x);
    assert_where("SELECT * FROM models WHERE torchvision_name = 'ResNet18';",
                 "((t.spec -> $1::text) = to_jsonb($2::text))");
    assert_where("SELECT * FROM models WHERE required_image_size.height = 224;",
                 "((t.spec -> $1::text -> $2::text) = to_jsonb($3::numeric))");
    assert_where("SELECT * FROM models WHERE hf_name LIKE 'google/%';", "((t.spec ->> $1::text) LIKE $2::text)");
    assert_where("SELECT * FROM models WHERE spec.a.b LIKE 'x';", "((t.spec -> $1::text ->> $2::text) LIKE $3::text)");
    assert_where("SELECT * FROM models WHERE spec.pooled = TRUE;", "((t.spec -> $1::text) = to_jsonb($2::boolean))");
    assert_where("SELECT * FROM models WHERE spec.k > 3;",
                 "((CASE WHEN jsonb_typeof((t.spec -> $1::text)) = 'number' THEN ((t.spec -> $1::text))::numeric END) > $2::numeric)");
    assert_where("SELECT * FROM models WHERE spec.k IS NULL;", "(COALESCE(jsonb_typeof((t.spec -> $1::text)), 'null') = 'null')");
    assert_where("SELECT * FROM models WHERE spec.flag;", "((t.spec -> $1::text) = 'true'::jsonb)");
    assert_where("SELECT * FROM models WHERE spec.k IN (1, 'x');", "((t.spec -> $1::text) IN (to_jsonb($2::numeric), to_jsonb($3::text)))");
    assert_where("SELECT * FROM jobs WHERE payload.model_id = 3;", "((t.payload -> $1::text) = to_jsonb($2::numeric))");
    assert_where("SELECT * FROM jobs WHERE result.err < 0.5;",
                 "((CASE WHEN jsonb_typeof((t.result -> $1::text)) = 'number' THEN ((t.result -> $1::text))::numeric END) < $2::numeric)");
    assert_where("SELECT * FROM datasets WHERE vtab_name = 'CIFAR-100';", "((t.spec -> $1::text) = to_jsonb($2::text))");
    assert_where("SELECT * FROM models WHERE models.name = 'x';", "(t.name = $1::text)");
    assert_where("SELECT * FROM models WHERE NAME = 'x';", "(t.name = $1::text)");
}

static void test_bare_word_rule(void **state)
{
    (void)state;
    planned x = plan_src("SELECT * FROM image_models WHERE source = TensorFlow;");
    assert_non_null(x.p);
    assert_contains(x.p->sql, "(t.source = $1::text)");
    assert_string_equal(x.p->params.values[0], "TensorFlow");
    assert_int_equal(x.p->nnotices, 1);
    assert_contains(x.p->notices[0], "read as the string 'TensorFlow'");
    planned_free(&x);
    /* a column on the right stays a column; a bare word in IN is a string too */
    assert_where("SELECT * FROM models WHERE num_params > dimension;", "(t.num_params > t.dimension)");
    assert_where("SELECT * FROM models WHERE source IN (torchvision, 'x');", "(t.source IN ($1::text, $2::text))");
    /* on the left, a non-column is a spec field */
    assert_where("SELECT * FROM models WHERE TensorFlow = source;", "((t.spec -> $1::text) = to_jsonb(t.source))");
    /* a near-miss of a column is read as a spec field, with a notice */
    x = plan_src("SELECT * FROM models WHERE num_param < 3;");
    assert_non_null(x.p);
    assert_int_equal(x.p->nnotices, 1);
    assert_contains(x.p->notices[0], "did you mean num_params");
    planned_free(&x);
}

/* ---- errors -------------------------------------------------------------------------- */

static void test_type_errors(void **state)
{
    (void)state;
    assert_error("SELECT * FROM models WHERE num_params LIKE 3;", 400, "semantic_error", 1, 28, "LIKE needs strings");
    assert_error("SELECT * FROM models WHERE name > TRUE;", 400, "semantic_error", 1, 35, "name is a string");
    assert_error("SELECT * FROM models WHERE num_params = 'x';", 400, "semantic_error", 1, 41, "num_params is a number");
    assert_error("SELECT * FROM models WHERE 'x' = num_params;", 400, "semantic_error", 1, 28, "num_params is a number");
    assert_error("SELECT * FROM models WHERE num_params = NULL;", 400, "semantic_error", 1, 41, "IS NULL");
    assert_error("SELECT * FROM models WHERE dimension IN (1, NULL);", 400, "semantic_error", 1, 45, "IS NULL");
    assert_error("SELECT * FROM models WHERE num_params;", 400, "semantic_error", 1, 28, "a condition is needed");
    assert_error("SELECT * FROM models WHERE NOT name;", 400, "semantic_error", 1, 32, "a condition is needed");
    assert_error("SELECT * FROM models WHERE name + 1 > 2;", 400, "semantic_error", 1, 28, "needs numbers");
    assert_error("SELECT * FROM models WHERE date_added > '2022-02-30';", 400, "semantic_error", 1, 41, "not a date");
    assert_error("SELECT * FROM models WHERE date_added > 5;", 400, "semantic_error", 1, 41, "date_added is a date");
    assert_error("SELECT * FROM models WHERE spec = 1;", 400, "semantic_error", 1, 28, "whole JSON object");
    assert_error("SELECT * FROM models WHERE tags > 'a';", 400, "semantic_error", 1, 28, "list of strings");
    assert_error("SELECT * FROM models WHERE num_params BETWEEN 'a' AND 3;", 400, "semantic_error", 1, 47, "num_params is a number");
}

static void test_name_errors(void **state)
{
    (void)state;
    assert_error("SELECT * FROM modelz;", 400, "semantic_error", 1, 15, "did you mean models");
    assert_error("SELECT * FROM nothing_like_it;", 400, "semantic_error", 1, 15, "unknown table or variable");
    assert_error("SELECT nme FROM models;", 400, "semantic_error", 1, 8, "did you mean name");
    assert_error("SELECT name, bogus FROM models;", 400, "semantic_error", 1, 14, "unknown column \"bogus\"");
    assert_error("SELECT image_size FROM text_models;", 400, "semantic_error", 1, 8, "does not exist in text_models");
    assert_error("SELECT * FROM text_models WHERE image_size > 3;", 400, "semantic_error", 1, 33, "does not exist in text_models");
    assert_error("SELECT name.x FROM models;", 400, "semantic_error", 1, 8, "not a JSON column");
    assert_error("SELECT * FROM models WHERE foo(name) = 1;", 400, "semantic_error", 1, 28, "unknown function foo");
    assert_error("SELECT * FROM models WHERE AVG(num_params) > 1;", 400, "semantic_error", 1, 28, "aggregate");
    assert_error("SELECT * FROM datasets WHERE FINETUNED;", 400, "semantic_error", 1, 30, "applies to models");
    assert_error("SELECT * FROM models ORDER BY bogus;", 400, "semantic_error", 1, 31, "unknown column");
    assert_error("SELECT * FROM models ORDER BY err;", 400, "semantic_error", 1, 31, "TRAINED ON");
    assert_error("SELECT name FROM models ORDER BY 3;", 400, "semantic_error", 1, 34, "has 1 column");
    assert_error("SELECT * FROM models OTHER THAN nope;", 400, "semantic_error", 1, 33, "unknown variable");
    assert_error("SELECT * FROM models OTHER THAN models;", 400, "semantic_error", 1, 33, "not the table");
    assert_error("SELECT * FROM models OTHER THAN ds;", 400, "semantic_error", 1, 33, "holds datasets");
    assert_error("SELECT * FROM models UNION SELECT * FROM jobs;", 400, "semantic_error", 1, 28, "same kind of rows");
    assert_error("SELECT DISTINCT source FROM models ORDER BY name;", 400, "semantic_error", 1, 45, "DISTINCT");
}

static void test_task_aware_is_501(void **state)
{
    (void)state;
    assert_error("SELECT * FROM image_models ORDER BY err ASC TRAINED ON 'a' TESTED ON 'b';", 501, "not_implemented", 1, 37, "task-aware");
    assert_error("SELECT * FROM image_models TRAINED ON 'a' TESTED ON 'b' CLASSIFIED BY ['Linear'];", 501, "not_implemented", 1, 39, "not implemented yet");
    assert_error("RANK * FROM image_models TRAINED ON 'a' TESTED ON 'b' BY random;", 501, "not_implemented", 1, 58, "strategy");
    assert_error("SELECT vec FROM ds WHERE probe = v;", 501, "not_implemented", 1, 8, "similarity");
    assert_error("SELECT * FROM image_models ORDER BY err CHUNK 10 BUDGET 5;", 400, "semantic_error", 1, 37, NULL);
    assert_error("SELECT * FROM models UNION SELECT * FROM image_models ORDER BY acc TRAINED ON 'a' TESTED ON 'b';", 501, "not_implemented", 0, 0, NULL);
    const ast_node *where = NULL;
    rq_script *s = rq_parse_script("SELECT * FROM models WHERE num_params > 1;", 42);
    assert_null(planner_task_aware_reason(s->stmts[0].ast, &where));
    rq_script_free(s);
}

/* ---- shapes --------------------------------------------------------------------------- */

static void test_projection(void **state)
{
    (void)state;
    planned x = plan_src("SELECT name, num_params AS n, spec.extractor, torchvision_name, num_params / 1M m FROM models;");
    assert_non_null(x.p);
    assert_int_equal(x.p->ncolumns, 5);
    assert_string_equal(x.p->columns[0], "name");
    assert_string_equal(x.p->columns[1], "n");
    assert_string_equal(x.p->columns[2], "spec.extractor");
    assert_string_equal(x.p->columns[3], "torchvision_name");
    assert_string_equal(x.p->columns[4], "m");
    assert_true(x.p->has_id);
    assert_contains(x.p->sql, "SELECT t.id, to_jsonb(t.name), to_jsonb(t.num_params), (t.spec -> $1::text), (t.spec -> $2::text), to_jsonb(((t.num_params)::numeric / $3::bigint)) FROM models t ORDER BY t.id");
    planned_free(&x);
    x = plan_src("SELECT all FROM image_models;");
    assert_int_equal(x.p->ncolumns, 13);
    assert_contains(x.p->sql, "FROM models t WHERE t.modality = 'image' ORDER BY t.id");
    planned_free(&x);
    x = plan_src("SELECT * FROM models;");
    assert_int_equal(x.p->ncolumns, 15);
    planned_free(&x);
    x = plan_src("SELECT * FROM readers;");
    assert_int_equal(x.p->ncolumns, 11);
    assert_int_equal(x.p->entity, ENTITY_DATASETS);
    planned_free(&x);
    x = plan_src("SELECT DISTINCT source FROM models ORDER BY source DESC;");
    assert_false(x.p->has_id);
    assert_string_equal(x.p->sql, "SELECT to_jsonb(d.c1) FROM (SELECT DISTINCT t.source AS c1 FROM models t) d ORDER BY d.c1 DESC NULLS LAST, d.c1");
    planned_free(&x);
}

static void test_order_and_limit(void **state)
{
    (void)state;
    char *sql = sql_of("SELECT name FROM models WHERE FINETUNED ORDER BY num_params DESC, name LIMIT 5;");
    assert_string_equal(sql, "SELECT t.id, to_jsonb(t.name) FROM models t WHERE t.finetuned ORDER BY t.num_params DESC NULLS LAST, t.name ASC NULLS LAST, t.id LIMIT $1::bigint");
    free(sql);
    sql = sql_of("SELECT name, num_params / 1M AS m FROM models ORDER BY m, 1 DESC;");
    assert_contains(sql, "ORDER BY ((t.num_params)::numeric / $1::bigint) ASC NULLS LAST, t.name DESC NULLS LAST, t.id");
    free(sql);
    sql = sql_of("SELECT name FROM models ORDER BY torchvision_name;");
    assert_contains(sql, "ORDER BY (t.spec -> $1::text) ASC NULLS LAST, t.id");
    free(sql);
    planned x = plan_src("SELECT name FROM models LIMIT 0;");
    assert_string_equal(x.p->params.values[0], "0");
    planned_free(&x);
}

static void test_set_operations(void **state)
{
    (void)state;
    planned x = plan_src("SELECT name FROM image_models WHERE source = 'a' UNION SELECT * FROM text_models ORDER BY name LIMIT 3;");
    assert_non_null(x.p);
    assert_string_equal(x.p->sql,
                        "SELECT t.id, to_jsonb(t.name) FROM models t WHERE t.id IN ((SELECT t.id FROM models t WHERE "
                        "t.modality = 'image' AND (t.source = $1::text)) UNION (SELECT t.id FROM models t WHERE "
                        "t.modality = 'text')) ORDER BY t.name ASC NULLS LAST, t.id LIMIT $2::bigint");
    assert_int_equal(x.p->table, TABLE_MODELS);
    planned_free(&x);
    char *sql = sql_of("(SELECT * FROM models ORDER BY num_params DESC LIMIT 2) INTERSECT SELECT * FROM models WHERE FINETUNED EXCEPT SELECT * FROM v;");
    assert_contains(sql, "t.id IN (((SELECT t.id FROM models t ORDER BY t.num_params DESC NULLS LAST, t.id LIMIT $1::bigint) INTERSECT (SELECT t.id FROM models t WHERE t.finetuned)) EXCEPT (SELECT t.id FROM models t WHERE t.modality = 'image' AND t.id = ANY($2::bigint[])))");
    free(sql);
    sql = sql_of("SELECT name FROM text_models EXCEPT (SELECT * FROM models WHERE FINETUNED UNION SELECT * FROM models WHERE num_params IS NULL);");
    assert_contains(sql, "(SELECT t.id FROM models t WHERE t.modality = 'text') EXCEPT ((SELECT t.id FROM models t WHERE t.finetuned) UNION (SELECT t.id FROM models t WHERE (t.num_params IS NULL)))");
    free(sql);
    x = plan_src("SELECT name FROM image_models UNION SELECT name FROM image_models;");
    assert_int_equal(x.p->table, TABLE_IMAGE_MODELS);
    planned_free(&x);
}

static void test_variables(void **state)
{
    (void)state;
    planned x = plan_src("SELECT name FROM v WHERE num_params > 1 OTHER THAN v;");
    assert_non_null(x.p);
    assert_string_equal(x.p->sql,
                        "SELECT t.id, to_jsonb(t.name) FROM models t WHERE t.modality = 'image' AND "
                        "t.id = ANY($1::bigint[]) AND (t.num_params > $2::bigint) AND t.id <> ALL($3::bigint[]) "
                        "ORDER BY array_position($1::bigint[], t.id), t.id");
    assert_string_equal(x.p->params.values[0], "{3,1,2}");
    assert_string_equal(x.p->params.values[2], "{3,1,2}");
    assert_int_equal(x.p->table, TABLE_IMAGE_MODELS);
    planned_free(&x);
    /* a variable's table decides which columns exist */
    assert_error("SELECT token_length FROM v;", 400, "semantic_error", 1, 8, NULL);
    const ast_name *names[4];
    rq_script *s = rq_parse_script("SELECT * FROM a OTHER THAN b UNION SELECT * FROM models OTHER THAN a;", 70);
    assert_int_equal(planner_referenced_vars(s->stmts[0].ast, names, 4), 2);
    assert_string_equal(names[0]->text, "a");
    assert_string_equal(names[1]->text, "b");
    rq_script_free(s);
}

static void test_reserved_names(void **state)
{
    (void)state;
    const char *reserved[] = {"models", "Models", "image_models", "TEXT_MODELS", "datasets", "readers",
                              "jobs", "query_type", "response", "remaining_tasks"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        assert_true(planner_name_reserved(reserved[i]));
    assert_false(planner_name_reserved("my_models"));
    assert_false(planner_name_reserved("pool"));
}

static void test_explain_tree(void **state)
{
    (void)state;
    planned x = plan_src("SELECT name FROM image_models WHERE source = 'TF' AND num_params < 10M ORDER BY num_params DESC LIMIT 5 OTHER THAN v;");
    json_t *tree = planner_explain_tree(x.p, NULL, NULL, 0);
    char **lines;
    size_t n = planner_explain_lines(tree, &lines);
    const char *expected[] = {
        "Limit: 5",
        "  → Sort: num_params DESC NULLS LAST",
        "      → Project: name",
        "          → Exclude: OTHER THAN v (3 models)",
        "              → Filter: source = 'TF' AND num_params < 10000000",
        "                  → Scan: image_models",
    };
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(lines[i], expected[i]);
        free(lines[i]);
    }
    free(lines);
    json_decref(tree);
    const plan_node *scans[4];
    assert_int_equal(planner_scans(x.p, scans, 4), 1);
    assert_string_equal(scans[0]->scan_sql, "SELECT t.id FROM models t WHERE t.modality = 'image'");
    planned_free(&x);

    /* PostgreSQL's numbers land on the matching nodes */
    x = plan_src("SELECT name FROM models WHERE FINETUNED ORDER BY name LIMIT 1;");
    json_t *pg = json_loads("{\"Node Type\": \"Limit\", \"Plan Rows\": 1, \"Startup Cost\": 1.5, \"Total Cost\": 1.6, \"Actual Rows\": 1,"
                            " \"Plans\": [{\"Node Type\": \"Sort\", \"Plan Rows\": 3, \"Startup Cost\": 1.4, \"Total Cost\": 1.5,"
                            " \"Plans\": [{\"Node Type\": \"Seq Scan\", \"Relation Name\": \"models\", \"Alias\": \"t\", \"Plan Rows\": 3,"
                            " \"Startup Cost\": 0, \"Total Cost\": 1.2, \"Actual Rows\": 3, \"Rows Removed by Filter\": 13}]}]}",
                            0, NULL);
    json_t *scan = json_loads("{\"Node Type\": \"Seq Scan\", \"Plan Rows\": 16, \"Startup Cost\": 0, \"Total Cost\": 1.16}", 0, NULL);
    tree = planner_explain_tree(x.p, pg, &scan, 1);
    json_t *filter = json_array_get(json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(tree, "children"), 0), "children"), 0), "children"), 0);
    assert_string_equal(json_string_value(json_object_get(filter, "node")), "Filter");
    assert_int_equal((int)json_number_value(json_object_get(filter, "estimated_rows")), 3);
    json_t *scan_node = json_array_get(json_object_get(filter, "children"), 0);
    assert_int_equal((int)json_number_value(json_object_get(scan_node, "estimated_rows")), 16);
    assert_int_equal((int)json_number_value(json_object_get(scan_node, "actual_rows")), 16);
    assert_int_equal((int)json_number_value(json_object_get(tree, "estimated_rows")), 1);
    n = planner_explain_lines(tree, &lines);
    assert_string_equal(lines[0], "Limit: 1  (rows=1 cost=1.50..1.60; actual rows=1)");
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    json_decref(tree);
    json_decref(pg);
    json_decref(scan);
    planned_free(&x);
}

static void test_deparse(void **state)
{
    (void)state;
    const char *src = "SELECT * FROM m WHERE (a = 1 OR b <> 'it\\'s') AND NOT c BETWEEN 1 AND 2 AND d IN (1, 2) AND e IS NOT NULL AND f NOT LIKE 'x%' AND FINETUNED AND (g + 1) * 2 > -h;";
    rq_script *s = rq_parse_script(src, strlen(src));
    char *d = planner_deparse(((const ast_select *)s->stmts[0].ast)->where);
    assert_string_equal(d, "(a = 1 OR b != 'it\\'s') AND NOT c BETWEEN 1 AND 2 AND d IN (1, 2) AND e IS NOT NULL AND f NOT LIKE 'x%' AND FINETUNED AND (g + 1) * 2 > -h");
    free(d);
    rq_script_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_comparison_operators),
        cmocka_unit_test(test_other_operators),
        cmocka_unit_test(test_size_suffixes_are_numbers),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_spec_paths),
        cmocka_unit_test(test_bare_word_rule),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_name_errors),
        cmocka_unit_test(test_task_aware_is_501),
        cmocka_unit_test(test_projection),
        cmocka_unit_test(test_order_and_limit),
        cmocka_unit_test(test_set_operations),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_reserved_names),
        cmocka_unit_test(test_explain_tree),
        cmocka_unit_test(test_deparse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
