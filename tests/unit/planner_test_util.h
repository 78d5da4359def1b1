/* Helpers shared by the planner's unit tests (header-only; each test includes it once). */
#ifndef RANKQL_TESTS_PLANNER_TEST_UTIL_H
#define RANKQL_TESTS_PLANNER_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "grammar/parse.h"
#include "planner/planner.h"

typedef struct planned {
    rq_script *script;
    plan *p;          /* NULL when planning failed: see err */
    plan_error err;
} planned;

static const int64_t test_var_ids[] = {3, 1, 2};
static const int64_t test_ds_ids[] = {7};
static const plan_var test_vars[] = {
    {"v", TABLE_IMAGE_MODELS, 3, test_var_ids},
    {"ds", TABLE_DATASETS, 1, test_ds_ids},
};
static const plan_env test_env = {test_vars, 2, false};

/* Parses one statement (which must parse) and plans it (or its EXPLAIN's query) in env:
 * tests that plan with another environment share the parsing. */
static inline planned plan_src_env(const char *src, const plan_env *env)
{
    planned x;
    memset(&x, 0, sizeof x);
    x.script = rq_parse_script(src, strlen(src));
    assert_int_equal(x.script->n, 1);
    if (!x.script->stmts[0].ast)
        fail_msg("does not parse: %s: %s", src, x.script->stmts[0].error->message);
    const ast_node *q = x.script->stmts[0].ast;
    if (q->kind == AST_EXPLAIN)
        q = ((const ast_explain *)q)->stmt;
    x.p = planner_plan(q, env, &x.err);
    return x;
}

/* The same in test_env. */
static inline planned plan_src(const char *src)
{
    return plan_src_env(src, &test_env);
}

static inline void planned_free(planned *x)
{
    plan_free(x->p);
    rq_script_free(x->script);
}

/* The SQL of a statement that must plan. Caller frees. */
static inline char *sql_of(const char *src)
{
    planned x = plan_src(src);
    if (!x.p)
        fail_msg("does not plan: %s: %s", src, x.err.message);
    char *sql = xstrdup(x.p->sql);
    planned_free(&x);
    return sql;
}

static inline void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected to contain:\n  %s\nactual:\n  %s", needle, haystack);
}

/* The SQL text holds no quoting, comment or statement-separator characters except the
 * planner's own constants, and every $n it uses has a parameter (and vice versa). */
static inline void assert_sql_structural(const plan *p)
{
    static const char *const constants[] = {"'image'", "'text'", "'number'", "'string'",
                                            "'boolean'", "'null'", "'true'", "'{}'",
                                            "'INVALID'", "'NONUSABLE'", NULL};
    char *s = xstrdup(p->sql);
    for (size_t i = 0; constants[i]; i++) {
        size_t n = strlen(constants[i]);
        for (char *c = strstr(s, constants[i]); c; c = strstr(c, constants[i]))
            memset(c, 'K', n);
    }
    for (const char *bad = "'\";\\"; *bad; bad++)
        if (strchr(s, *bad))
            fail_msg("SQL contains %c outside the planner's constants: %s", *bad, p->sql);
    if (strstr(s, "--") || strstr(s, "/*"))
        fail_msg("SQL contains a comment: %s", p->sql);
    free(s);
    size_t max = 0;
    bool *used = calloc(p->params.n + 1, sizeof *used);
    for (const char *c = strchr(p->sql, '$'); c; c = strchr(c + 1, '$')) {
        size_t n = strtoul(c + 1, NULL, 10);
        assert_true(n >= 1);
        if (n > max)
            max = n;
        if (n <= p->params.n)
            used[n] = true;
    }
    assert_true(max <= p->params.n);
    for (size_t i = 1; i <= p->params.n; i++)
        if (!used[i])
            fail_msg("parameter $%zu is never used: %s", i, p->sql);
    free(used);
}

static inline bool has_param(const plan *p, const char *value)
{
    for (size_t i = 0; i < p->params.n; i++)
        if (p->params.values[i] && strcmp(p->params.values[i], value) == 0)
            return true;
    return false;
}

#endif
