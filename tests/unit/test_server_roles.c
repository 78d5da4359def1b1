/* server/roles: what each statement kind needs — the role that may run it, its audit
 * action, whether it may submit jobs (the quota) — classified from parsed statements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "grammar/parse.h"
#include "server/roles.h"

typedef struct expect {
    const char *text;
    const char *label;
    const char *action;   /* NULL: none */
    bool admin_only, own_only, submits_jobs;
} expect;

#define RANKING "SELECT name FROM models ORDER BY err TRAINED ON \"tr\" TESTED ON TASK \"te\" " \
                "CLASSIFIED BY [\"Euclidean NN\"]"

static const expect cases[] = {
    {"SELECT name FROM models;", "SELECT", NULL, false, false, false},
    {RANKING ";", "SELECT", NULL, false, false, true},
    {RANKING " WAIT;", "SELECT", NULL, false, false, true},
    {"rank * from image_models trained on \"a\" tested on \"b\" by leep;", "RANK", NULL, false,
     false, true},
    {"(SELECT name FROM models) UNION (SELECT name FROM datasets);", "UNION", NULL, false, false,
     false},
    {"EXPLAIN SELECT name FROM models;", "EXPLAIN", NULL, false, false, false},
    {"EXPLAIN " RANKING ";", "EXPLAIN", NULL, false, false, false},
    {"EXPLAIN ANALYZE " RANKING ";", "EXPLAIN ANALYZE", NULL, false, false, true},
    {"EXPLAIN ANALYZE SELECT name FROM models;", "EXPLAIN ANALYZE", NULL, false, false, false},
    {"DECLARE v AS SELECT name FROM models;", "DECLARE", NULL, false, false, false},
    {"DECLARE v AS " RANKING ";", "DECLARE", NULL, false, false, true},
    {"PRINT v;", "PRINT", NULL, false, false, false},
    {"PRINT *;", "PRINT", NULL, false, false, false},
    {"SHOW MODELS;", "SHOW", NULL, false, false, false},
    {"SHOW JOBS;", "SHOW", NULL, false, false, false},
    {"SHOW EXTENSIONS;", "SHOW", NULL, false, false, false},
    {"USE 127.0.0.1:8001;", "USE", NULL, false, false, false},
    {"REGISTER MODEL \"m\" (runner) VALUES ('builtin');", "REGISTER MODEL", "register_model",
     true, false, false},
    {"REGISTER DATASET \"d\" (format) VALUES ('csv');", "REGISTER DATASET", "register_dataset",
     true, false, false},
    {"PURGE;", "PURGE", "purge", true, false, false},
    {"PURGE CACHE;", "PURGE", "purge", true, false, false},
    {"FINETUNE m WITH \"a\"[0:1000], b USING \"sgd(lr=0.01, epochs=50)\" WAIT;", "FINETUNE",
     "finetune", false, false, true},
    {"CHECK MODEL \"builtin/pca-32\";", "CHECK MODEL", "check_model", true, false, true},
    {"CHECK MODELS;", "CHECK MODELS", "check_model", true, false, true},
    {"CANCEL JOB 3;", "CANCEL JOB", "cancel_job", false, true, false},
    {"CANCEL QUERY '7f6c0e9a-3b1d-4c2e-9f00-1a2b3c4d5e6f';", "CANCEL QUERY", "cancel_query", false,
     true, false},
};

static void test_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const expect *e = &cases[i];
        rq_script *s = rq_parse_script(e->text, strlen(e->text));
        if (s->n != 1 || !s->stmts[0].ast)
            fail_msg("does not parse: %s", e->text);
        stmt_rule r = roles_classify(s->stmts[0].ast);
        if (strcmp(r.label, e->label) != 0 || (r.action == NULL) != (e->action == NULL) ||
            (r.action && strcmp(r.action, e->action) != 0) || r.admin_only != e->admin_only ||
            r.own_only != e->own_only || r.submits_jobs != e->submits_jobs)
            fail_msg("%s: got label %s, action %s, admin_only %d, own_only %d, submits_jobs %d",
                     e->text, r.label, r.action ? r.action : "-", r.admin_only, r.own_only,
                     r.submits_jobs);
        /* an admin may run everything; an analyst what is not admin_only */
        assert_true(roles_permits(ROLE_ADMIN, &r));
        assert_int_equal(roles_permits(ROLE_ANALYST, &r), !e->admin_only);
        rq_script_free(s);
    }
}

/* Each statement of a batch is classified on its own: a REGISTER after a SELECT is seen. */
static void test_batch(void **state)
{
    (void)state;
    const char *text = "SELECT name FROM models; REGISTER MODEL \"m\" (runner) VALUES ('x'); "
                       "SHOW JOBS;";
    rq_script *s = rq_parse_script(text, strlen(text));
    assert_int_equal(s->n, 3);
    bool admin[3];
    for (size_t i = 0; i < 3; i++) {
        stmt_rule r = roles_classify(s->stmts[i].ast);
        admin[i] = r.admin_only;
    }
    assert_false(admin[0]);
    assert_true(admin[1]);
    assert_false(admin[2]);
    rq_script_free(s);
}

static void test_nothing_permitted_without_role(void **state)
{
    (void)state;
    stmt_rule r = roles_classify(NULL);
    assert_true(r.admin_only); /* unknown: an admin's */
    assert_false(roles_permits((auth_role)0, &r));
    stmt_rule sel = {.label = "SELECT"};
    assert_false(roles_permits((auth_role)0, &sel));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_nothing_permitted_without_role),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
