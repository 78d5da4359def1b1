/* extensions/: the registry (builtins, C plugins, process plugins from tests/extensions/),
 * manifest and schema checks, parameter validation, the builtin random(seed), and running
 * plugins: a good answer, a timeout, a crash, malformed output. Run from the repository
 * root (tests/run-tests.sh does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "extensions/extensions.h"

#define PLUGINS "tests/extensions"

static json_t *models3(void)
{
    return json_pack("[{s:i, s:s, s:s, s:s, s:{}}, {s:i, s:s, s:s, s:s, s:{}}, "
                     "{s:i, s:s, s:s, s:s, s:{}}]",
                     "id", 3, "name", "ccc", "runner", "builtin", "modality", "image", "spec",
                     "id", 7, "name", "a", "runner", "builtin", "modality", "image", "spec",
                     "id", 9, "name", "bb", "runner", "onnx", "modality", "image", "spec");
}

static json_t *datasets1(void)
{
    return json_pack("{s:[{s:i, s:s, s:i, s:i}], s:[{s:i, s:s, s:i, s:n}]}", "train", "id", 1,
                     "name", "tr", "size", 100, "num_classes", 10, "test", "id", 2, "name",
                     "te", "size", 50, "num_classes");
}

static bool has_warning(const ext_registry *r, const char *needle)
{
    for (size_t i = 0; i < r->nwarnings; i++)
        if (strstr(r->warnings[i], needle))
            return true;
    return false;
}

static void expect_param_error(const ext_strategy *s, const char *given, const char *needle)
{
    json_t *g = json_loads(given, 0, NULL);
    assert_non_null(g);
    char *err = NULL;
    json_t *c = ext_params_canonical(s, g, &err);
    if (c || !err || !strstr(err, needle))
        fail_msg("%s: expected an error with '%s', got '%s'", given, needle, err ? err : "none");
    free(err);
    json_decref(g);
}

static void test_builtins_only(void **state)
{
    (void)state;
    char *err = NULL;
    ext_registry *r = ext_registry_load(NULL, &err);
    assert_non_null(r);
    assert_int_equal(r->n, 6); /* random, proxy, meta, finetune_all, hybrid, sh */
    const ext_strategy *s = ext_find(r, "RANDOM");
    assert_non_null(s);
    assert_int_equal(s->kind, EXT_BUILTIN);
    assert_null(ext_find(r, "nope"));
    ext_registry_free(r);
    assert_null(ext_registry_load("/nonexistent/dir", &err));
    assert_non_null(strstr(err, "/nonexistent/dir"));
    free(err);
    assert_non_null(ext_find(ext_default(), "random"));
}

static void test_params(void **state)
{
    (void)state;
    const ext_strategy *s = ext_find(ext_default(), "random");
    char *err = NULL;
    json_t *c = ext_params_canonical(s, NULL, &err);
    assert_non_null(c);
    assert_int_equal(json_integer_value(json_object_get(c, "seed")), 0);
    json_decref(c);
    json_t *g = json_pack("{s:i}", "SEED", 42);
    c = ext_params_canonical(s, g, &err);
    assert_int_equal(json_integer_value(json_object_get(c, "seed")), 42);
    json_decref(c);
    json_decref(g);
    expect_param_error(s, "{\"sed\": 1}", "unknown parameter \"sed\" (it takes seed)");
    expect_param_error(s, "{\"seed\": 1.5}", "expected an integer, got 1.5");
    expect_param_error(s, "{\"seed\": \"x\"}", "expected an integer");
    expect_param_error(s, "{\"seed\": -1}", "-1 is out of range (minimum 0)");
    json_t *p = ext_params_json(s);
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "seed"), "type")),
                        "int");
    json_decref(p);
}

static void test_schema_parse(void **state)
{
    (void)state;
    const char *bad[][2] = {
        {"{\"k\": {\"type\": \"int\"}}", "needs a \"default\""},
        {"{\"k\": {\"type\": \"complex\", \"default\": 1}}", "unknown type"},
        {"{\"k\": {\"type\": \"int\", \"default\": 5, \"max\": 3}}", "outside its own range"},
        {"{\"k\": {\"type\": \"int\", \"default\": 1.5}}", "must be integers"},
        {"{\"K\": {\"type\": \"bool\", \"default\": true}}", "parameter name"},
        {"{\"k\": {\"type\": \"string\", \"default\": \"z\", \"choices\": [\"a\"]}}", "choices"},
        {"{\"k\": {\"type\": \"bool\", \"default\": true, \"min\": 0}}", "min and max apply"},
        {"{\"k\": {\"type\": \"int\", \"default\": 1, \"dflt\": 2}}", "unknown key \"dflt\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = json_loads(bad[i][0], 0, NULL);
        rqx_param *p = NULL;
        size_t n = 0;
        char *err = NULL;
        if (ext_params_parse(j, &p, &n, &err) == 0 || !strstr(err, bad[i][1]))
            fail_msg("%s: expected '%s', got '%s'", bad[i][0], bad[i][1], err ? err : "ok");
        free(err);
        json_decref(j);
    }
    json_t *j = json_loads("{\"b\": {\"type\": \"string\", \"default\": \"rbf\", \"choices\": "
                           "[\"rbf\", \"linear\"]}, \"a\": {\"type\": \"float\", \"default\": 0.5, "
                           "\"min\": 0, \"max\": 1}}",
                           0, NULL);
    rqx_param *p = NULL;
    size_t n = 0;
    char *err = NULL;
    assert_int_equal(ext_params_parse(j, &p, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].name, "a"); /* sorted by name */
    ext_strategy s = {.name = "x", .params = p, .nparams = n};
    expect_param_error(&s, "{\"a\": 2}", "2 is out of range (maximum 1)");
    expect_param_error(&s, "{\"b\": \"poly\"}", "\"poly\" is not one of rbf, linear");
    expect_param_error(&s, "{\"b\": 3}", "expected a string");
    json_t *g = json_pack("{s:i}", "a", 1);
    json_t *c = ext_params_canonical(&s, g, &err);
    assert_true(json_is_real(json_object_get(c, "a")));   /* floats as reals */
    assert_string_equal(json_string_value(json_object_get(c, "b")), "rbf");
    json_decref(c);
    json_decref(g);
    ext_params_free(p, n);
    json_decref(j);
}

static json_t *run_ok(const ext_strategy *s, const char *params_text)
{
    json_t *given = json_loads(params_text, 0, NULL);
    char *err = NULL;
    json_t *params = ext_params_canonical(s, given, &err);
    assert_non_null(params);
    json_t *m = models3(), *d = datasets1();
    bool perm = false;
    json_t *r = ext_run(s, params, m, d, NULL, &err, &perm);
    if (!r)
        fail_msg("%s: %s", s->name, err);
    json_decref(m);
    json_decref(d);
    json_decref(params);
    json_decref(given);
    return r;
}

static char *run_err(const ext_strategy *s, const char *params_text, double *seconds)
{
    json_t *given = json_loads(params_text, 0, NULL);
    char *err = NULL;
    json_t *params = ext_params_canonical(s, given, &err);
    assert_non_null(params);
    json_t *m = models3(), *d = datasets1();
    bool perm = false;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    json_t *r = ext_run(s, params, m, d, NULL, &err, &perm);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (seconds)
        *seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_null(r);
    assert_true(perm);
    json_decref(m);
    json_decref(d);
    json_decref(params);
    json_decref(given);
    return err;
}

static char *ids_of(const json_t *ranking)
{
    strbuf sb = {0};
    for (size_t i = 0; i < json_array_size(ranking); i++)
        strbuf_printf(&sb, "%s%lld", i ? "," : "",
                      (long long)json_integer_value(
                          json_object_get(json_array_get(ranking, i), "model_id")));
    return strbuf_detach(&sb);
}

static void test_random(void **state)
{
    (void)state;
    const ext_strategy *s = ext_find(ext_default(), "random");
    json_t *a = run_ok(s, "{\"seed\": 1}"), *b = run_ok(s, "{\"seed\": 1}");
    assert_true(json_equal(a, b));
    assert_int_equal(json_array_size(a), 3);
    assert_true(json_number_value(json_object_get(json_array_get(a, 0), "err")) == -1.0);
    /* Some seed gives another order. */
    bool differs = false;
    for (int seed = 2; seed < 20 && !differs; seed++) {
        char p[32];
        snprintf(p, sizeof p, "{\"seed\": %d}", seed);
        json_t *c = run_ok(s, p);
        differs = !json_equal(a, c);
        json_decref(c);
    }
    assert_true(differs);
    json_decref(a);
    json_decref(b);
}

static void test_check_ranking(void **state)
{
    (void)state;
    json_t *m = models3();
    const char *bad[][2] = {
        {"{}", "expected a JSON array"},
        {"[{\"model_id\": 3, \"err\": 0}, {\"model_id\": 7, \"err\": 0}]", "model 9 (bb) is missing"},
        {"[{\"model_id\": 3, \"err\": 0}, {\"model_id\": 3, \"err\": 0}, {\"model_id\": 9, \"err\": 0}]",
         "model 3 appears twice"},
        {"[{\"model_id\": 4, \"err\": 0}]", "model 4 is not a candidate"},
        {"[{\"json_model\": {\"name\": \"a\"}, \"err\": 0}]", "entry 0 needs"},
        {"[{\"model_id\": 3, \"err\": \"low\"}]", "entry 0 needs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *o = json_loads(bad[i][0], 0, NULL);
        char *err = NULL;
        json_t *r = ext_check_ranking(m, o, &err);
        if (r || !strstr(err, bad[i][1]))
            fail_msg("%s: expected '%s', got '%s'", bad[i][0], bad[i][1], err ? err : "ok");
        free(err);
        json_decref(o);
    }
    json_t *o = json_loads("[{\"json_model\": {\"id\": 9, \"name\": \"bb\"}, \"err\": 1}, "
                           "{\"model_id\": 3, \"err\": 2.5}, {\"model_id\": 7, \"err\": -1}]",
                           0, NULL);
    char *err = NULL;
    json_t *r = ext_check_ranking(m, o, &err);
    assert_non_null(r);
    char *ids = ids_of(r);
    assert_string_equal(ids, "9,3,7");
    free(ids);
    json_decref(r);
    json_decref(o);
    json_decref(m);
}

static void test_process_plugins(void **state)
{
    (void)state;
    char *err = NULL;
    ext_registry *r = ext_registry_load(PLUGINS, &err);
    assert_non_null(r);
    assert_true(has_warning(r, "badparams.json skipped: parameter k: the default is outside"));
    assert_null(ext_find(r, "badparams"));
    const ext_strategy *good = ext_find(r, "namelen");
    assert_non_null(good);
    assert_int_equal(good->kind, EXT_PROCESS);
    assert_string_equal(good->version, "1.0");
    json_t *rk = run_ok(good, "{}");
    char *ids = ids_of(rk);
    assert_string_equal(ids, "7,9,3"); /* a, bb, ccc */
    free(ids);
    assert_true(json_number_value(json_object_get(json_array_get(rk, 2), "err")) == 3.0);
    json_decref(rk);
    rk = run_ok(good, "{\"reverse\": true, \"scale\": 2}");
    ids = ids_of(rk);
    assert_string_equal(ids, "3,9,7");
    free(ids);
    json_decref(rk);

    double secs = 0;
    char *e = run_err(ext_find(r, "slow"), "{}", &secs);
    assert_non_null(strstr(e, "timed out after 2 s"));
    assert_true(secs < 5);
    free(e);
    e = run_err(ext_find(r, "crash"), "{}", NULL);
    assert_non_null(strstr(e, "crashed: killed by signal 11"));
    assert_non_null(strstr(e, "about to die"));
    free(e);
    e = run_err(ext_find(r, "malformed"), "{}", NULL);
    assert_non_null(strstr(e, "malformed output: not JSON"));
    free(e);
    e = run_err(ext_find(r, "empty"), "{}", NULL);
    assert_non_null(strstr(e, "is missing"));
    free(e);
    ext_registry_free(r);
}

/* A scratch directory with the test .so (built next to this test: ../tests/extensions/). */
static char *plugin_so(void)
{
    const char *env = getenv("RANKQL_TEST_PLUGIN");
    if (env && *env)
        return xstrdup(env);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    return xasprintf("%s/extensions/test_plugin.so", self);
}

/* A scratch directory with the test plugin twice (a.so, b.so: the second is skipped) and a
 * junk.so: what test_so_plugin and test_so_described both load. Skips the test when the
 * plugin is not built. */
typedef struct so_dir {
    char dir[64];
    char *so, *abs, *a, *b, *junk;
} so_dir;

static void so_dir_make(so_dir *d, const char *prefix)
{
    memset(d, 0, sizeof *d);
    d->so = plugin_so();
    if (!d->so || access(d->so, R_OK) != 0) {
        printf("# skipped: no %s (make build/tests/extensions/test_plugin.so)\n",
               d->so ? d->so : "?");
        free(d->so);
        skip();
    }
    snprintf(d->dir, sizeof d->dir, "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(d->dir));
    d->a = xasprintf("%s/a.so", d->dir);
    d->b = xasprintf("%s/b.so", d->dir);
    d->junk = xasprintf("%s/junk.so", d->dir);
    d->abs = realpath(d->so, NULL);
    assert_int_equal(symlink(d->abs, d->a), 0);
    assert_int_equal(symlink(d->abs, d->b), 0);
    FILE *f = fopen(d->junk, "w");
    fputs("not an ELF file", f);
    fclose(f);
}

/* Removes what so_dir_make made (the test removes its own files first). */
static void so_dir_remove(so_dir *d)
{
    unlink(d->a), unlink(d->b), unlink(d->junk);
    rmdir(d->dir);
    free(d->a), free(d->b), free(d->junk), free(d->abs), free(d->so);
}

static void test_so_plugin(void **state)
{
    (void)state;
    so_dir d;
    so_dir_make(&d, "rankql-ext-test");
    char *proxy = xasprintf("%s/nn.json", d.dir);
    FILE *f = fopen(proxy, "w");
    fputs("{\"name\": \"Cosine-NN\", \"version\": \"1\", \"command\": \"/bin/true\"}", f);
    fclose(f);
    char *err = NULL;
    ext_registry *r = ext_registry_load(d.dir, &err);
    assert_non_null(r);
    assert_true(has_warning(r, "b.so: strategy \"testc\" skipped: the name is taken"));
    assert_true(has_warning(r, "junk.so skipped"));
    assert_true(has_warning(r, "its name is a proxy's"));
    const ext_strategy *s = ext_find(r, "TestC");
    assert_non_null(s);
    assert_int_equal(s->kind, EXT_SO);
    assert_int_equal(s->nparams, 3);
    json_t *rk = run_ok(s, "{\"reverse\": true, \"bias\": 1}");
    char *ids = ids_of(rk);
    assert_string_equal(ids, "9,7,3");
    free(ids);
    assert_true(json_number_value(json_object_get(json_array_get(rk, 0), "err")) == 1.0);
    json_decref(rk);
    char *e = run_err(s, "{\"mode\": \"fail\"}", NULL);
    assert_non_null(strstr(e, "testc refuses: mode=fail (3 models, 1 train datasets)"));
    free(e);
    e = run_err(s, "{\"mode\": \"crash\"}", NULL);
    assert_non_null(strstr(e, "crashed: killed by signal 11"));
    free(e);
    e = run_err(s, "{\"mode\": \"dup\"}", NULL);
    assert_non_null(strstr(e, "appears twice"));
    free(e);
    e = run_err(s, "{\"mode\": \"nan\"}", NULL);
    assert_non_null(strstr(e, "not finite"));
    free(e);
    double secs = 0;
    e = run_err(s, "{\"mode\": \"hang\"}", &secs);
    assert_non_null(strstr(e, "timed out after 3 s"));
    assert_true(secs < 6);
    free(e);
    expect_param_error(s, "{\"bias\": 11}", "out of range (maximum 10)");
    expect_param_error(s, "{\"mode\": \"x\"}", "not one of ok, crash");
    expect_param_error(s, "{\"reverse\": 1}", "expected true or false");
    ext_registry_free(r);
    unlink(proxy);
    free(proxy);
    so_dir_remove(&d);
}

/* Whether a file of that name is mapped into this process. */
static bool mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[8192];
    bool found = false;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, name))
            found = true;
    if (f)
        fclose(f);
    return found;
}

/* rankqld's registry (ext_registry_describe): the same strategies, names and schemas, with
 * the plugin dlopen'ed only in a child process, so none of its code is in this one. Runs
 * before test_so_plugin, which loads it here. */
static void test_so_described(void **state)
{
    (void)state;
    so_dir d;
    so_dir_make(&d, "rankql-ext-desc");
    char *err = NULL;
    ext_registry *r = ext_registry_describe(d.dir, &err);
    assert_non_null(r);
    assert_false(mapped("test_plugin.so"));
    assert_true(has_warning(r, "b.so: strategy \"testc\" skipped: the name is taken"));
    assert_true(has_warning(r, "junk.so skipped"));
    const ext_strategy *s = ext_find(r, "TestC");
    assert_non_null(s);
    assert_int_equal(s->kind, EXT_SO);
    assert_null(s->ext);
    assert_int_equal(s->abi_version, RANKQL_EXTENSION_ABI_VERSION); /* what its descriptor says */
    assert_int_equal(s->nparams, 3);
    assert_true(s->timeout_seconds == 3);
    /* The schema came through: validation works as on the loaded plugin. */
    expect_param_error(s, "{\"bias\": 11}", "out of range (maximum 10)");
    expect_param_error(s, "{\"mode\": \"x\"}", "not one of ok, crash");
    /* and it cannot be run from here. */
    char *e = run_err(s, "{}", NULL);
    assert_non_null(strstr(e, "only describes plugins"));
    free(e);
    ext_registry_free(r);
    so_dir_remove(&d);
}

static void test_resolve_dir(void **state)
{
    (void)state;
    char *dir = NULL, *err = NULL;
    unsetenv("RANKQL_EXTENSIONS");
    assert_int_equal(ext_resolve_dir("none", "/tmp", &dir, &err), 0);
    assert_null(dir);
    assert_int_equal(ext_resolve_dir(PLUGINS, NULL, &dir, &err), 0);
    assert_string_equal(dir, PLUGINS);
    free(dir);
    assert_int_equal(ext_resolve_dir("/nonexistent", NULL, &dir, &err), -1);
    assert_non_null(strstr(err, "is not a directory"));
    free(err);
    assert_int_equal(ext_resolve_dir(NULL, "/nonexistent-data", &dir, &err), 0);
    assert_null(dir);
    setenv("RANKQL_EXTENSIONS", PLUGINS, 1);
    assert_int_equal(ext_resolve_dir(NULL, NULL, &dir, &err), 0);
    assert_string_equal(dir, PLUGINS);
    free(dir);
    unsetenv("RANKQL_EXTENSIONS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins_only),   cmocka_unit_test(test_params),
        cmocka_unit_test(test_schema_parse),    cmocka_unit_test(test_random),
        cmocka_unit_test(test_check_ranking),   cmocka_unit_test(test_process_plugins),
        cmocka_unit_test(test_so_described),    cmocka_unit_test(test_so_plugin),       cmocka_unit_test(test_resolve_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
