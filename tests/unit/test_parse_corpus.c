/* The SHiFT-QL conformance corpus: every statement of every *.shiftql file in
 * ../shared/queries/shift-examples (or $RANKQL_SHARED/queries/shift-examples) must parse.
 * The test prints the file and statement counts and checks what a few statements mean.
 *
 * Tests run from the repository root (tests/run-tests.sh); CI has shared/ beside the
 * clone. A missing corpus is a failure, not a skip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "grammar/parse.h"

#define MIN_FILES 40
#define MIN_STATEMENTS 150

static char *g_dir;

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The corpus files, sorted; NULL when the folder cannot be read. */
static char **list_corpus(size_t *count)
{
    DIR *d = opendir(g_dir);
    if (!d)
        return NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 8 || strcmp(e->d_name + len - 8, ".shiftql") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), compare_names);
    *count = n;
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Parses one corpus file (which must parse without errors). */
static rq_script *parse_corpus_file(const char *name)
{
    char *path = xasprintf("%s/%s", g_dir, name);
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    rq_script *s = rq_parse_script(text, len);
    free(text);
    for (size_t i = 0; i < s->n; i++) {
        if (s->stmts[i].error) {
            char *m = rq_error_format(s, s->stmts[i].error, path);
            print_error("%s", m);
            free(m);
        }
    }
    if (s->nerrors)
        fail_msg("%s: %zu statement(s) do not parse", path, s->nerrors);
    free(path);
    return s;
}

static void test_every_statement_parses(void **state)
{
    (void)state;
    size_t nfiles = 0, nstatements = 0, nerrors = 0;
    char **names = list_corpus(&nfiles);
    if (!names)
        fail_msg("cannot open the SHiFT corpus %s: %s", g_dir, strerror(errno));
    for (size_t i = 0; i < nfiles; i++) {
        char *path = xasprintf("%s/%s", g_dir, names[i]);
        size_t len = 0;
        char *text = read_file(path, &len);
        if (!text)
            fail_msg("cannot read %s: %s", path, strerror(errno));
        rq_script *s = rq_parse_script(text, len);
        for (size_t k = 0; k < s->n; k++) {
            const rq_statement *st = &s->stmts[k];
            if (st->error) {
                char *m = rq_error_format(s, st->error, path);
                print_error("%s", m);
                free(m);
                continue;
            }
            /* every parsed statement prints, and its byte range ends with its ';' */
            char *json = ast_to_json(st->ast);
            assert_non_null(json);
            free(json);
            assert_true(st->end >= 1 && s->src[st->end - 1] == ';');
        }
        nstatements += s->n - s->nerrors;
        nerrors += s->nerrors;
        rq_script_free(s);
        free(text);
        free(path);
    }
    free_names(names, nfiles);
    print_message("[  CORPUS  ] %s: %zu files, %zu statements parsed, %zu errors\n", g_dir, nfiles,
                  nstatements, nerrors);
    assert_int_equal(nerrors, 0);
    if (nfiles < MIN_FILES)
        fail_msg("only %zu corpus files (at least %d expected): is %s complete?", nfiles, MIN_FILES,
                 g_dir);
    if (nstatements < MIN_STATEMENTS)
        fail_msg("only %zu corpus statements (at least %d expected)", nstatements, MIN_STATEMENTS);
}

/* ---- what some statements mean ------------------------------------------------------------ */

static const ast_select *as_select(const ast_node *n)
{
    assert_non_null(n);
    assert_int_equal(n->kind, AST_SELECT);
    return (const ast_select *)n;
}

static const ast_node *unexplain(const ast_node *n)
{
    assert_non_null(n);
    if (n->kind == AST_EXPLAIN)
        return ((const ast_explain *)n)->stmt;
    return n;
}

static const ast_dataset_ref *dataset_at(const ast_list *l, size_t i)
{
    assert_non_null(l);
    assert_true(i < l->n);
    assert_int_equal(l->items[i]->kind, AST_DATASET_REF);
    return (const ast_dataset_ref *)l->items[i];
}

static void assert_ints(const ast_int_list *l, const int64_t *want, size_t n)
{
    assert_int_equal(l->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(l->v[i], want[i]);
}

/* examples_specs__task_aware_wait: three CHANGE clauses, none with target indices (SHiFT's own
 * parser rejected this statement). */
static void test_multi_change_without_target_indices(void **state)
{
    (void)state;
    rq_script *s = parse_corpus_file("examples_specs__task_aware_wait.shiftql");
    assert_int_equal(s->n, 1);
    const ast_select *q = as_select(s->stmts[0].ast);
    assert_int_equal(q->trained_on->n, 1);
    const ast_dataset_ref *base = dataset_at(q->trained_on, 0);
    assert_string_equal(base->name.text, "glue/cola-train");
    assert_true(base->name.quoted);
    assert_non_null(base->changes);
    assert_int_equal(base->changes->n, 3);
    static const int64_t idx[3][4] = {{1, 2, 3, 4}, {9, 10, 11, 12}, {5, 6, 7, 8}};
    static const char *const targets[3] = {"glue/sst2:1.0.0-test", "glue/cola-train", "glue/cola-train"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(base->changes->items[i]->kind, AST_CHANGE);
        const ast_change *c = (const ast_change *)base->changes->items[i];
        assert_false(c->has_target_indices);
        assert_int_equal(c->target_indices.n, 0);
        assert_ints(&c->base_indices, idx[i], 4);
        assert_string_equal(c->target->name.text, targets[i]);
        assert_null(c->target->changes);
    }
    assert_int_equal(q->tested_kind, TESTED_TASK);
    assert_string_equal(dataset_at(q->tested_on, 0)->name.text, "glue/sst2:1.0.0-test");
    assert_int_equal(q->classifiers->n, 1);
    assert_string_equal(((const ast_call *)q->classifiers->items[0])->name.text, "Euclidean NN");
    assert_true(q->has_limit);
    assert_int_equal(q->limit, 8);
    assert_true(q->wait);
    rq_script_free(s);
}

/* The single-change form with target indices. */
static void test_change_with_target_indices(void **state)
{
    (void)state;
    rq_script *s = parse_corpus_file("examples_demos__2_2_task_aware_mutation.shiftql");
    const ast_select *q = as_select(s->stmts[0].ast);
    const ast_dataset_ref *base = dataset_at(q->trained_on, 0);
    assert_int_equal(base->changes->n, 1);
    const ast_change *c = (const ast_change *)base->changes->items[0];
    static const int64_t from[] = {2, 4, 6, 8}, to[] = {0, 1, 2, 5};
    assert_ints(&c->base_indices, from, 4);
    assert_true(c->has_target_indices);
    assert_ints(&c->target_indices, to, 4);
    assert_string_equal(c->target->name.text, "glue/sst2:1.0.0-test");
    /* ORDER BY err ASC, written explicitly */
    const ast_order_item *o = (const ast_order_item *)q->order_by->items[0];
    assert_false(o->desc);
    assert_true(o->explicit_direction);
    rq_script_free(s);
}

/* USE with an unquoted host:port is one target (SHiFT lexed it as numbers and failed). */
static void test_use_unquoted_host_port(void **state)
{
    (void)state;
    static const struct {
        const char *file, *target;
    } uses[] = {
        {"examples_specs__use.shiftql", "127.0.0.1:8081"},
        {"examples_experiments__q3_sh.shiftql", "127.0.0.1:8001"},
    };
    for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++) {
        rq_script *s = parse_corpus_file(uses[i].file);
        assert_int_equal(s->n, 2);
        assert_int_equal(s->stmts[0].ast->kind, AST_USE);
        const ast_use *u = (const ast_use *)s->stmts[0].ast;
        assert_string_equal(u->target.text, uses[i].target);
        assert_false(u->target.quoted);
        rq_script_free(s);
    }
    /* q3_sh's second statement: successive halving */
    rq_script *s = parse_corpus_file("examples_experiments__q3_sh.shiftql");
    const ast_node *n = s->stmts[1].ast;
    assert_int_equal(n->kind, AST_EXPLAIN);
    const ast_select *q = as_select(unexplain(n));
    assert_true(q->chunk.present && !q->chunk.is_auto);
    assert_int_equal(q->chunk.value, 64);
    assert_true(q->budget.present);
    assert_int_equal(q->budget.value, 160);
    assert_true(q->wait);
    assert_int_equal(q->where->kind, AST_BINARY);
    assert_int_equal(((const ast_binary *)q->where)->op, OP_OR);
    rq_script_free(s);
}

/* Linear(learning_rate=0.01, num_epochs=400) next to a named classifier. */
static void test_linear_classifier_parameters(void **state)
{
    (void)state;
    rq_script *s = parse_corpus_file("examples_demos__2_3_linear_classifier.shiftql");
    const ast_select *q = as_select(s->stmts[0].ast);
    assert_int_equal(q->classifiers->n, 2);
    const ast_call *lin = (const ast_call *)q->classifiers->items[0];
    assert_string_equal(lin->name.text, "Linear");
    assert_false(lin->name.quoted);
    assert_true(lin->has_parens);
    assert_int_equal(lin->params->n, 2);
    const ast_param *lr = (const ast_param *)lin->params->items[0];
    const ast_param *ep = (const ast_param *)lin->params->items[1];
    assert_string_equal(lr->key.text, "learning_rate");
    assert_int_equal(((const ast_literal *)lr->value)->type, LIT_FLOAT);
    assert_true(((const ast_literal *)lr->value)->fval == 0.01);
    assert_string_equal(ep->key.text, "num_epochs");
    assert_int_equal(((const ast_literal *)ep->value)->type, LIT_INT);
    assert_int_equal(((const ast_literal *)ep->value)->ival, 400);
    const ast_call *cos = (const ast_call *)q->classifiers->items[1];
    assert_string_equal(cos->name.text, "Cosine NN");
    assert_true(cos->name.quoted);
    assert_false(cos->has_parens);
    rq_script_free(s);
}

/* DECLARE, then a benchmark query ordered by an aggregate over a declared reader list. */
static void test_benchmark_aggregate(void **state)
{
    (void)state;
    rq_script *s = parse_corpus_file("examples_specs__meta-learned.shiftql");
    assert_int_equal(s->n, 3);
    assert_int_equal(s->stmts[0].ast->kind, AST_DECLARE);
    const ast_declare *d = (const ast_declare *)s->stmts[0].ast;
    assert_string_equal(d->name.text, "target_readers");
    const ast_select *readers = as_select(d->query);
    assert_string_equal(readers->from.text, "readers");
    /* name="a" OR name="b" OR name="c" OR name="d": a left-deep OR chain */
    const ast_node *w = readers->where;
    int ors = 0;
    while (w->kind == AST_BINARY && ((const ast_binary *)w)->op == OP_OR) {
        ors++;
        w = ((const ast_binary *)w)->left;
    }
    assert_int_equal(ors, 3);
    const ast_select *q = as_select(s->stmts[2].ast);
    assert_string_equal(q->from.text, "my_models");
    const ast_order_item *o = (const ast_order_item *)q->order_by->items[0];
    assert_int_equal(o->key->kind, AST_FUNC);
    assert_string_equal(((const ast_func *)o->key)->name, "AVG");
    assert_int_equal(q->tested_kind, TESTED_BENCHMARK);
    assert_string_equal(dataset_at(q->tested_on, 0)->name.text, "target_readers");
    assert_false(dataset_at(q->tested_on, 0)->name.quoted);
    rq_script_free(s);
}

/* REGISTER with arrays among the values; EXPLAIN JSON RANK … BY "strategy"; OTHER THAN;
 * NOT FINETUNED; FINETUNE; the Task2Vec form. */
static void test_other_statement_kinds(void **state)
{
    (void)state;
    rq_script *s = parse_corpus_file("examples_specs__register.shiftql");
    assert_int_equal(s->n, 4);
    const ast_register *r = (const ast_register *)s->stmts[0].ast;
    assert_int_equal(r->h.kind, AST_REGISTER);
    assert_int_equal(r->what, REGISTER_DATASET);
    assert_string_equal(r->name.text, "glue/sst2:1.0.0-train");
    assert_int_equal(r->ncolumns, 4);
    assert_int_equal(r->values->n, 4);
    assert_string_equal(r->columns[2].text, "embed_feature_path");
    assert_int_equal(r->values->items[2]->kind, AST_ARRAY);
    rq_script_free(s);

    s = parse_corpus_file("examples_extensions__rank_by_random.shiftql");
    const ast_explain *e = (const ast_explain *)s->stmts[0].ast;
    assert_int_equal(e->h.kind, AST_EXPLAIN);
    assert_true(e->json);
    assert_false(e->analyze);
    const ast_select *q = as_select(e->stmt);
    assert_true(q->is_rank);
    assert_string_equal(q->strategy->name.text, "random");
    assert_false(q->strategy->has_parens);
    assert_true(q->wait);
    rq_script_free(s);

    s = parse_corpus_file("examples_experiments__set.shiftql");
    q = as_select(s->stmts[1].ast);
    assert_string_equal(q->other_than.text, "my_model");
    assert_int_equal(q->limit, 1);
    assert_true(q->wait);
    rq_script_free(s);

    s = parse_corpus_file("examples_demos__5_1_finetune.shiftql");
    assert_int_equal(s->n, 5);
    q = as_select(((const ast_declare *)s->stmts[0].ast)->query);
    const ast_binary *conj = (const ast_binary *)q->where;
    assert_int_equal(conj->op, OP_AND);
    assert_int_equal(conj->right->kind, AST_UNARY);
    assert_int_equal(((const ast_unary *)conj->right)->operand->kind, AST_FINETUNED);
    assert_int_equal(s->stmts[1].ast->kind, AST_PRINT);
    const ast_finetune *f = (const ast_finetune *)s->stmts[4].ast;
    assert_int_equal(f->h.kind, AST_FINETUNE);
    assert_string_equal(f->models.text, "ft_model");
    assert_string_equal(dataset_at(f->datasets, 0)->name.text, "ft_reader");
    assert_null(f->strategy);
    rq_script_free(s);

    s = parse_corpus_file("examples_demos__4_meta_learned_task_aware.shiftql");
    assert_int_equal(s->n, 3); /* the '#' lines are comments */
    q = as_select(s->stmts[2].ast);
    assert_string_equal(((const ast_column_ref *)((const ast_column *)q->columns->items[0])->expr)->parts[0].text,
                        "vec");
    rq_script_free(s);
}

int main(void)
{
    const char *shared = getenv("RANKQL_SHARED");
    g_dir = shared && *shared ? xasprintf("%s/queries/shift-examples", shared)
                              : xstrdup("../shared/queries/shift-examples");
    DIR *d = opendir(g_dir);
    if (!d) {
        /* not a skip: the corpus is the conformance suite */
        fprintf(stderr,
                "test_parse_corpus: the SHiFT corpus is missing: cannot open %s: %s\n"
                "  (run from the repository root with shared/ beside it as ../shared, or set "
                "RANKQL_SHARED)\n",
                g_dir, strerror(errno));
        printf("[  FAILED  ] 1 test(s), listed below:\n[  FAILED  ] corpus folder missing\n");
        free(g_dir);
        return 1;
    }
    closedir(d);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_statement_parses),
        cmocka_unit_test(test_multi_change_without_target_indices),
        cmocka_unit_test(test_change_with_target_indices),
        cmocka_unit_test(test_use_unquoted_host_port),
        cmocka_unit_test(test_linear_classifier_parameters),
        cmocka_unit_test(test_benchmark_aggregate),
        cmocka_unit_test(test_other_statement_kinds),
    };
    int rc = cmocka_run_group_tests_name("parse_corpus", tests, NULL, NULL);
    free(g_dir);
    return rc;
}
