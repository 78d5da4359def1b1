/* The proxy job runner (executor/workers/proxy_job.c): payload validation and canonical
 * proxies, feature files and mutations, every proxy against the numerical core called
 * directly (or a brute-force reference), permanent errors, and label-only rescoring from a
 * stored nn result in an embedded PostgreSQL. */
#include <math.h>
#include <pwd.h>
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
#include <jansson.h>
#include <libpq-fe.h>

#include "common/hash.h"
#include "common/util.h"
#include "db/migrate.h"
#include "db/pgembed.h"
#include "executor/workers/featstore.h"
#include "executor/workers/jobs.h"
#include "executor/workers/proxies/proxy_cuda.h"
#include "executor/workers/proxy_job.h"
#include "queue/queue.h"
#include "tests/unit/proxy_test.h"

/* ---- fixtures ------------------------------------------------------------------------ */

static char data_dir[256];

static int make_data_dir(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/rankql-proxyjob.XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    chmod(dir, 0755);
    snprintf(data_dir, sizeof data_dir, "%s", dir);
    return 0;
}

static int remove_data_dir(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A feature file under a hash derived from name; returns the hash (static storage per call
 * site is not enough: callers keep a copy). */
static void put_features(const char *name, const float *x, const int32_t *y, size_t n,
                         size_t d, int32_t nc, char hash[HASH_HEX_LEN + 1])
{
    sha256_hex(name, strlen(name), hash);
    char *err = NULL;
    uint64_t bytes;
    if (featstore_write(data_dir, hash, x, y, n, (uint32_t)d, nc, &bytes, &err) != 0)
        fail_msg("featstore_write: %s", err);
}

static json_t *part(const char *hash, json_t *changes)
{
    return json_pack("{s:s, s:o}", "features", hash, "changes", changes ? changes : json_array());
}

static json_t *payload(json_t *proxy, json_t *train, json_t *test)
{
    return json_pack("{s:o, s:i, s:o, s:o}", "proxy", proxy, "model_id", 1, "train", train,
                     "test", test);
}

static json_t *one(json_t *p)
{
    json_t *a = json_array();
    json_array_append_new(a, p);
    return a;
}

typedef struct run_out {
    int rc;
    json_t *result;
    char *err;
    bool permanent;
} run_out;

static int progress_calls;
static void on_progress(void *arg, double fraction, const char *note)
{
    (void)arg, (void)note;
    assert_true(fraction >= 0 && fraction <= 1);
    progress_calls++;
}

static run_out run_conn(json_t *p, PGconn *conn)
{
    job_ctx ctx = {.data_dir = data_dir, .job_id = 0, .conn = conn, .progress = on_progress};
    run_out o = {0};
    o.rc = proxy_job_runner.run(&ctx, p, &o.result, &o.err, &o.permanent);
    if (o.rc == 0)
        assert_non_null(o.result);
    else {
        assert_non_null(o.err);
        assert_null(strchr(o.err, '\n'));
    }
    return o;
}

static run_out run_p(json_t *p)
{
    return run_conn(p, NULL);
}

static double result_err(const run_out *o)
{
    if (o->rc != 0)
        fail_msg("run failed: %s", o->err);
    return json_number_value(json_object_get(o->result, "err"));
}

static void run_out_free(run_out *o)
{
    json_decref(o->result);
    free(o->err);
}

static void expect_error(json_t *p, const char *needle)
{
    run_out o = run_p(p);
    if (o.rc == 0)
        fail_msg("expected an error containing '%s'", needle);
    if (!strstr(o.err, needle))
        fail_msg("error '%s' lacks '%s'", o.err, needle);
    assert_true(o.permanent);
    run_out_free(&o);
    json_decref(p);
}

static json_t *nn_proxy(int k, const char *metric)
{
    return json_pack("{s:s, s:{s:i, s:s}}", "name", "nn", "params", "k", k, "metric", metric);
}

/* A small labelled problem: n rows, d dims, C classes, class means apart. */
typedef struct problem {
    float *x;
    int32_t *y;
    size_t n, d;
} problem;

static problem make_problem(uint64_t seed, size_t n, size_t d, int C)
{
    trng r = {seed};
    problem p = {t_gauss(&r, n, d), t_labels(&r, n, C), n, d};
    for (size_t i = 0; i < n; i++)
        p.x[i * d + (size_t)p.y[i] % d] += 1.5f;
    return p;
}

static void problem_free(problem *p)
{
    free(p->x);
    free(p->y);
}

/* Brute-force 1-NN error in double (lowest index among equal distances). */
static double brute_1nn(const problem *tr, const problem *te, int cosine, size_t *wrong_out)
{
    size_t wrong = 0;
    for (size_t i = 0; i < te->n; i++) {
        int64_t idx;
        double dist;
        t_ref_knn(tr->x, tr->n, te->x + i * te->d, te->d, 1, cosine, &idx, &dist);
        wrong += tr->y[idx] != te->y[i];
    }
    if (wrong_out)
        *wrong_out = wrong;
    return (double)wrong / (double)te->n;
}

/* ---- canonical proxies ----------------------------------------------------------------- */

static void expect_canonical(const char *name, const char *params, const char *want)
{
    json_t *p = params ? json_loads(params, 0, NULL) : NULL;
    char *err = NULL;
    json_t *c = proxy_job_canonical(name, p, &err);
    if (!c)
        fail_msg("%s %s: %s", name, params ? params : "", err);
    char *got = json_canonical(c);
    if (strcmp(got, want) != 0)
        fail_msg("canonical %s %s: got %s, want %s", name, params ? params : "", got, want);
    free(got);
    json_decref(c);
    json_decref(p);
}

static void expect_canonical_error(const char *name, const char *params, const char *needle)
{
    json_t *p = params ? json_loads(params, 0, NULL) : NULL;
    char *err = NULL;
    json_t *c = proxy_job_canonical(name, p, &err);
    assert_null(c);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
    free(err);
    json_decref(p);
}

static void test_canonical(void **state)
{
    (void)state;
    expect_canonical("nn", NULL, "{\"name\":\"nn\",\"params\":{\"k\":1,\"metric\":\"euclidean\"}}");
    expect_canonical("NN", "{\"k\": 3.0, \"metric\": \"Cosine\"}",
                     "{\"name\":\"nn\",\"params\":{\"k\":3,\"metric\":\"cosine\"}}");
    expect_canonical("linear", "{}",
                     "{\"name\":\"linear\",\"params\":{\"learning_rate\":0.10000000000000001,\"num_epochs\":100,"
                     "\"standardize\":true}}");
    expect_canonical("Linear", "{\"learning_rate\": 1, \"num_epochs\": 20.0, \"standardize\": false}",
                     "{\"name\":\"linear\",\"params\":{\"learning_rate\":1.0,\"num_epochs\":20,"
                     "\"standardize\":false}}");
    expect_canonical("logme", "{}", "{\"name\":\"logme\",\"params\":{}}");
    expect_canonical("hscore", NULL, "{\"name\":\"hscore\",\"params\":{}}");
    expect_canonical("leep", "null", "{\"name\":\"leep\",\"params\":{}}");
    /* spelled differently, hashed the same */
    char *e = NULL;
    json_t *a = proxy_job_canonical("nn", NULL, &e);
    json_t *pb = json_loads("{\"k\": 1, \"metric\": \"euclidean\"}", 0, NULL);
    json_t *b = proxy_job_canonical("NN", pb, &e);
    char ha[HASH_HEX_LEN + 1], hb[HASH_HEX_LEN + 1];
    json_hash(a, ha);
    json_hash(b, hb);
    assert_string_equal(ha, hb);
    json_decref(a);
    json_decref(b);
    json_decref(pb);

    expect_canonical_error("knn", NULL, "unknown proxy \"knn\" (known: nn, linear, logme, hscore, leep)");
    expect_canonical_error("nn", "{\"kk\": 1}", "unknown parameter \"kk\" of proxy nn (known: k, metric)");
    expect_canonical_error("logme", "{\"k\": 1}", "unknown parameter \"k\" of proxy logme");
    expect_canonical_error("nn", "{\"k\": \"3\"}", "parameter k of proxy nn must be an integer");
    expect_canonical_error("nn", "{\"k\": 0}", "parameter k of proxy nn must be an integer");
    expect_canonical_error("nn", "{\"k\": 2.5}", "parameter k of proxy nn must be an integer");
    expect_canonical_error("nn", "{\"metric\": \"manhattan\"}", "parameter metric of proxy nn");
    expect_canonical_error("linear", "{\"learning_rate\": -1}", "learning_rate of proxy linear");
    expect_canonical_error("linear", "{\"num_epochs\": 0}", "num_epochs of proxy linear");
    expect_canonical_error("linear", "{\"standardize\": 1}", "standardize of proxy linear");
    expect_canonical_error("nn", "[1]", "parameters of proxy nn must be an object");
    assert_string_equal(proxy_job_names(), "nn, linear, logme, hscore, leep");
}

/* ---- nn -------------------------------------------------------------------------------- */

static void test_nn_euclidean(void **state)
{
    (void)state;
    problem tr = make_problem(1, 300, 12, 4), te = make_problem(2, 80, 12, 4);
    char htr[65], hte[65];
    put_features("train", tr.x, tr.y, tr.n, tr.d, 4, htr);
    put_features("test", te.x, te.y, te.n, te.d, 4, hte);
    size_t wrong;
    double want = brute_1nn(&tr, &te, 0, &wrong);
    progress_calls = 0;
    json_t *p = payload(json_pack("{s:s}", "name", "nn"), one(part(htr, NULL)), one(part(hte, NULL)));
    run_out o = run_p(p);
    assert_true(progress_calls >= 2);
    assert_true(fabs(result_err(&o) - want) < 1e-15);
    json_t *res = o.result;
    assert_int_equal(json_integer_value(json_object_get(res, "raw_error")), (json_int_t)wrong);
    assert_int_equal(json_integer_value(json_object_get(res, "test_size")), 80);
    assert_int_equal(json_integer_value(json_object_get(res, "train_size")), 300);
    /* Which device ran it: the GPU only in a CUDA build with a GPU. */
    assert_string_equal(json_string_value(json_object_get(res, "device")),
                        proxy_cuda_available() ? "cuda" : "cpu");
    assert_true(json_number_value(json_object_get(res, "seconds")) >= 0);
    assert_null(json_object_get(res, "rescored"));
    char *proxy = json_canonical(json_object_get(res, "proxy"));
    assert_string_equal(proxy, "{\"name\":\"nn\",\"params\":{\"k\":1,\"metric\":\"euclidean\"}}");
    free(proxy);
    /* details: the neighbour of every test row */
    json_t *det = json_object_get(res, "details");
    assert_int_equal(json_integer_value(json_object_get(det, "k")), 1);
    json_t *nbr = json_object_get(det, "nbr");
    assert_int_equal(json_array_size(nbr), 80);
    for (size_t i = 0; i < te.n; i++) {
        int64_t idx;
        double dist;
        t_ref_knn(tr.x, tr.n, te.x + i * te.d, te.d, 1, 0, &idx, &dist);
        json_t *row = json_array_get(nbr, i);
        assert_int_equal(json_array_size(row), 1);
        assert_int_equal(json_integer_value(json_array_get(row, 0)), idx);
    }
    run_out_free(&o);
    json_decref(p);
    problem_free(&tr);
    problem_free(&te);
}

static void test_nn_cosine(void **state)
{
    (void)state;
    problem tr = make_problem(3, 250, 10, 5), te = make_problem(4, 60, 10, 5);
    /* scale some rows: cosine ignores it, Euclidean does not */
    for (size_t i = 0; i < tr.n; i += 3)
        for (size_t j = 0; j < tr.d; j++)
            tr.x[i * tr.d + j] *= 7.0f;
    char htr[65], hte[65];
    put_features("ctrain", tr.x, tr.y, tr.n, tr.d, 5, htr);
    put_features("ctest", te.x, te.y, te.n, te.d, 5, hte);
    double want = brute_1nn(&tr, &te, 1, NULL);
    json_t *p = payload(nn_proxy(1, "cosine"), one(part(htr, NULL)), one(part(hte, NULL)));
    run_out o = run_p(p);
    assert_true(fabs(result_err(&o) - want) < 1e-15);
    run_out_free(&o);
    json_decref(p);
    problem_free(&tr);
    problem_free(&te);
}

static void test_nn_k3(void **state)
{
    (void)state;
    problem tr = make_problem(5, 200, 6, 3), te = make_problem(6, 70, 6, 3);
    char htr[65], hte[65];
    put_features("ktrain", tr.x, tr.y, tr.n, tr.d, 3, htr);
    put_features("ktest", te.x, te.y, te.n, te.d, 3, hte);
    /* brute force 3-NN vote */
    size_t wrong = 0;
    for (size_t i = 0; i < te.n; i++) {
        int64_t idx[3];
        double dist[3];
        t_ref_knn(tr.x, tr.n, te.x + i * te.d, te.d, 3, 0, idx, dist);
        int32_t lab[3] = {tr.y[idx[0]], tr.y[idx[1]], tr.y[idx[2]]};
        wrong += t_ref_vote(lab, 3) != te.y[i];
    }
    json_t *p = payload(nn_proxy(3, "euclidean"), one(part(htr, NULL)), one(part(hte, NULL)));
    run_out o = run_p(p);
    assert_true(fabs(result_err(&o) - (double)wrong / (double)te.n) < 1e-15);
    json_t *nbr = json_object_get(json_object_get(o.result, "details"), "nbr");
    assert_int_equal(json_array_size(json_array_get(nbr, 0)), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o.result, "details"), "k")), 3);
    run_out_free(&o);
    json_decref(p);
    /* k beyond the train rows: a permanent error from proxy_nn */
    problem small = make_problem(7, 2, 6, 3);
    char hs[65];
    put_features("small", small.x, small.y, small.n, small.d, 3, hs);
    expect_error(payload(nn_proxy(3, "euclidean"), one(part(hs, NULL)), one(part(hte, NULL))),
                 "proxy nn:");
    problem_free(&small);
    problem_free(&tr);
    problem_free(&te);
}

/* ---- linear and scores -------------------------------------------------------------------- */

static void test_linear(void **state)
{
    (void)state;
    problem tr = make_problem(8, 200, 8, 4), te = make_problem(9, 50, 8, 4);
    char htr[65], hte[65];
    put_features("ltrain", tr.x, tr.y, tr.n, tr.d, 4, htr);
    put_features("ltest", te.x, te.y, te.n, te.d, 4, hte);
    proxy_data dtr = {tr.x, tr.y, tr.n, tr.d}, dte = {te.x, te.y, te.n, te.d};
    for (int standardize = 0; standardize < 2; standardize++) {
        proxy_linear_opts opts = {.learning_rate = 0.05, .num_epochs = 30,
                                  .no_standardize = !standardize};
        proxy_linear_result r = {0};
        char msg[256];
        assert_int_equal(proxy_linear(&dtr, &dte, &opts, &r, msg, sizeof msg), PROXY_OK);
        json_t *proxy = json_pack("{s:s, s:{s:f, s:i, s:b}}", "name", "linear", "params",
                                  "learning_rate", 0.05, "num_epochs", 30, "standardize",
                                  standardize);
        json_t *p = payload(proxy, one(part(htr, NULL)), one(part(hte, NULL)));
        run_out o = run_p(p);
        assert_true(result_err(&o) == r.err);
        assert_int_equal(json_integer_value(json_object_get(o.result, "raw_error")), r.wrong);
        assert_null(json_object_get(o.result, "details"));
        run_out_free(&o);
        json_decref(p);
        proxy_linear_result_free(&r);
    }
    /* defaults: learning_rate 0.1, num_epochs 100, standardize true */
    proxy_linear_result r = {0};
    char msg[256];
    assert_int_equal(proxy_linear(&dtr, &dte, NULL, &r, msg, sizeof msg), PROXY_OK);
    json_t *p = payload(json_pack("{s:s}", "name", "linear"), one(part(htr, NULL)),
                        one(part(hte, NULL)));
    run_out o = run_p(p);
    assert_true(result_err(&o) == r.err);
    run_out_free(&o);
    json_decref(p);
    proxy_linear_result_free(&r);
    problem_free(&tr);
    problem_free(&te);
}

static void test_scores(void **state)
{
    (void)state;
    problem tr = make_problem(10, 150, 6, 3), te = make_problem(11, 40, 6, 3);
    char htr[65], hte[65];
    put_features("strain", tr.x, tr.y, tr.n, tr.d, 3, htr);
    put_features("stest", te.x, te.y, te.n, te.d, 3, hte);
    proxy_data dtr = {tr.x, tr.y, tr.n, tr.d};
    char msg[256];
    double logme, hscore;
    assert_int_equal(proxy_logme(&dtr, NULL, &logme, msg, sizeof msg), PROXY_OK);
    assert_int_equal(proxy_hscore(&dtr, NULL, &hscore, msg, sizeof msg), PROXY_OK);
    const char *names[2] = {"logme", "hscore"};
    double want[2] = {-logme, -hscore};
    for (int i = 0; i < 2; i++) {
        json_t *p = payload(json_pack("{s:s, s:{}}", "name", names[i], "params"),
                            one(part(htr, NULL)), one(part(hte, NULL)));
        run_out o = run_p(p);
        assert_true(result_err(&o) == want[i]);
        assert_true(json_is_null(json_object_get(o.result, "raw_error")));
        assert_int_equal(json_integer_value(json_object_get(o.result, "train_size")), 150);
        run_out_free(&o);
        json_decref(p);
        /* the score uses train only: an empty test list is fine */
        p = payload(json_pack("{s:s}", "name", names[i]), one(part(htr, NULL)), json_array());
        o = run_p(p);
        assert_true(result_err(&o) == want[i]);
        run_out_free(&o);
        json_decref(p);
    }
    /* LEEP on probability rows */
    float *theta = malloc(tr.n * 5 * sizeof *theta);
    trng r = {99};
    for (size_t i = 0; i < tr.n; i++) {
        double s = 0, v[5];
        for (int z = 0; z < 5; z++)
            s += v[z] = trng_unif(&r) + (z == tr.y[i] ? 2.0 : 0.0);
        for (int z = 0; z < 5; z++)
            theta[i * 5 + (size_t)z] = (float)(v[z] / s);
    }
    char hth[65];
    put_features("theta", theta, tr.y, tr.n, 5, 3, hth);
    proxy_data dth = {theta, tr.y, tr.n, 5};
    double leep;
    assert_int_equal(proxy_leep(&dth, &leep, msg, sizeof msg), PROXY_OK);
    json_t *p = payload(json_pack("{s:s}", "name", "leep"), one(part(hth, NULL)), json_array());
    run_out o = run_p(p);
    assert_true(result_err(&o) == -leep);
    run_out_free(&o);
    json_decref(p);
    /* nn needs a test set */
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(htr, NULL)), json_array()),
                 "\"test\" must be a non-empty array");
    free(theta);
    problem_free(&tr);
    problem_free(&te);
}

/* ---- parts and mutations ------------------------------------------------------------------ */

static void test_multi_part(void **state)
{
    (void)state;
    problem tr = make_problem(12, 240, 7, 4), te = make_problem(13, 60, 7, 4);
    char hall[65], ha[65], hb[65], hc[65], hte[65], hta[65], htb[65];
    put_features("all", tr.x, tr.y, tr.n, tr.d, 4, hall);
    put_features("a", tr.x, tr.y, 100, tr.d, 4, ha);
    put_features("b", tr.x + 100 * tr.d, tr.y + 100, 90, tr.d, 4, hb);
    put_features("c", tr.x + 190 * tr.d, tr.y + 190, 50, tr.d, 4, hc);
    put_features("mtest", te.x, te.y, te.n, te.d, 4, hte);
    put_features("mta", te.x, te.y, 25, te.d, 4, hta);
    put_features("mtb", te.x + 25 * te.d, te.y + 25, 35, te.d, 4, htb);
    const char *proxies[] = {"nn", "linear", "logme"};
    for (int i = 0; i < 3; i++) {
        json_t *p1 = payload(json_pack("{s:s}", "name", proxies[i]), one(part(hall, NULL)),
                             one(part(hte, NULL)));
        json_t *train = json_array(), *test = json_array();
        json_array_append_new(train, part(ha, NULL));
        json_array_append_new(train, part(hb, NULL));
        json_array_append_new(train, part(hc, NULL));
        json_array_append_new(test, part(hta, NULL));
        json_array_append_new(test, part(htb, NULL));
        json_t *p2 = payload(json_pack("{s:s}", "name", proxies[i]), train, test);
        run_out o1 = run_p(p1), o2 = run_p(p2);
        assert_true(result_err(&o1) == result_err(&o2));
        assert_int_equal(json_integer_value(json_object_get(o2.result, "train_size")), 240);
        assert_int_equal(json_integer_value(json_object_get(o2.result, "test_size")), 60);
        assert_true(json_equal(json_object_get(o1.result, "details"),
                               json_object_get(o2.result, "details")) ||
                    !json_object_get(o1.result, "details"));
        run_out_free(&o1);
        run_out_free(&o2);
        json_decref(p1);
        json_decref(p2);
    }
    problem_free(&tr);
    problem_free(&te);
}

static json_t *change_feat(const char *hash, const int *base, const int *other, size_t n)
{
    json_t *b = json_array(), *o = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(b, json_integer(base[i]));
        json_array_append_new(o, json_integer(other[i]));
    }
    return json_pack("{s:s, s:o, s:o}", "features", hash, "base", b, "other", o);
}

static json_t *csv_dataset(const char *path)
{
    return json_pack("{s:i, s:s, s:s, s:s, s:{}, s:n, s:i, s:n}", "id", 7, "name", "relabel",
                     "format", "csv", "location", path, "spec", "digest", "start", 0, "stop");
}

static json_t *change_labels(const char *path, const int *base, const int *other, size_t n)
{
    json_t *b = json_array(), *o = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(b, json_integer(base[i]));
        json_array_append_new(o, json_integer(other[i]));
    }
    return json_pack("{s:o, s:o, s:o}", "labels_from", csv_dataset(path), "base", b, "other", o);
}

/* A CSV with one feature column and labels `labels`, as the labels_from dataset. */
static void write_labels_csv(const char *path, const int32_t *labels, size_t n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "f,label\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%zu,%d\n", i, labels[i]);
    fclose(f);
}

static void test_feature_mutation(void **state)
{
    (void)state;
    problem tr = make_problem(14, 120, 5, 3), other = make_problem(15, 40, 5, 3),
            other2 = make_problem(16, 30, 5, 3), te = make_problem(17, 50, 5, 3);
    char htr[65], ho[65], ho2[65], hte[65], hnl[65], hmut[65], htmut[65];
    put_features("base", tr.x, tr.y, tr.n, tr.d, 3, htr);
    put_features("other", other.x, other.y, other.n, other.d, 3, ho);
    put_features("other2", other2.x, other2.y, other2.n, other2.d, 3, ho2);
    put_features("mtest2", te.x, te.y, te.n, te.d, 3, hte);
    put_features("nolabels", other2.x, NULL, other2.n, other2.d, 0, hnl);
    /* changes: train rows 3, 10, 50 ← other 0, 7, 39; then 10, 11 ← other2 5, 6 (the second
     * overrides row 10); then 0 ← features only of nolabels row 2; test row 4 ← other 1 */
    int b1[] = {3, 10, 50}, o1[] = {0, 7, 39}, b2[] = {10, 11}, o2[] = {5, 6}, b3[] = {0},
        o3[] = {2}, b4[] = {4}, o4[] = {1};
    json_t *ch = json_array();
    json_array_append_new(ch, change_feat(ho, b1, o1, 3));
    json_array_append_new(ch, change_feat(ho2, b2, o2, 2));
    json_array_append_new(ch, change_feat(hnl, b3, o3, 1));
    json_t *tch = json_array();
    json_array_append_new(tch, change_feat(ho, b4, o4, 1));
    /* by hand */
    float *x = malloc(tr.n * tr.d * sizeof *x);
    int32_t *y = malloc(tr.n * sizeof *y);
    memcpy(x, tr.x, tr.n * tr.d * sizeof *x);
    memcpy(y, tr.y, tr.n * sizeof *y);
    const problem *srcs[] = {&other, &other, &other, &other2, &other2};
    int bs[] = {3, 10, 50, 10, 11}, os[] = {0, 7, 39, 5, 6};
    for (int i = 0; i < 5; i++) {
        memcpy(x + (size_t)bs[i] * tr.d, srcs[i]->x + (size_t)os[i] * tr.d, tr.d * sizeof *x);
        y[bs[i]] = srcs[i]->y[os[i]];
    }
    memcpy(x, other2.x + 2 * tr.d, tr.d * sizeof *x); /* label of row 0 kept */
    float *tx = malloc(te.n * te.d * sizeof *tx);
    int32_t *ty = malloc(te.n * sizeof *ty);
    memcpy(tx, te.x, te.n * te.d * sizeof *tx);
    memcpy(ty, te.y, te.n * sizeof *ty);
    memcpy(tx + 4 * te.d, other.x + 1 * te.d, te.d * sizeof *tx);
    ty[4] = other.y[1];
    put_features("mutated", x, y, tr.n, tr.d, 3, hmut);
    put_features("tmutated", tx, ty, te.n, te.d, 3, htmut);
    const char *proxies[] = {"nn", "linear", "hscore"};
    for (int i = 0; i < 3; i++) {
        json_t *p1 = payload(json_pack("{s:s}", "name", proxies[i]),
                             one(part(htr, json_incref(ch))), one(part(hte, json_incref(tch))));
        json_t *p2 = payload(json_pack("{s:s}", "name", proxies[i]), one(part(hmut, NULL)),
                             one(part(htmut, NULL)));
        run_out r1 = run_p(p1), r2 = run_p(p2);
        assert_true(result_err(&r1) == result_err(&r2));
        if (i == 0)
            assert_true(json_equal(json_object_get(r1.result, "details"),
                                   json_object_get(r2.result, "details")));
        run_out_free(&r1);
        run_out_free(&r2);
        json_decref(p1);
        json_decref(p2);
    }
    json_decref(ch);
    json_decref(tch);
    free(x);
    free(y);
    free(tx);
    free(ty);
    problem_free(&tr);
    problem_free(&other);
    problem_free(&other2);
    problem_free(&te);
}

/* Builds the label-change fixture: base train/test features, a labels CSV, and the
 * relabelled features by hand. */
typedef struct label_fixture {
    problem tr, te;
    char htr[65], hte[65], hmut[65], htmut[65];
    char csv[300];
    json_t *train_changes, *test_changes;
} label_fixture;

static void label_fixture_make(label_fixture *f)
{
    f->tr = make_problem(20, 150, 6, 4);
    f->te = make_problem(21, 60, 6, 4);
    put_features("lbase", f->tr.x, f->tr.y, f->tr.n, f->tr.d, 4, f->htr);
    put_features("ltest2", f->te.x, f->te.y, f->te.n, f->te.d, 4, f->hte);
    int32_t labels[20];
    for (int i = 0; i < 20; i++)
        labels[i] = (i * 7 + 1) % 5; /* class 4 is new */
    snprintf(f->csv, sizeof f->csv, "%s/relabel.csv", data_dir);
    write_labels_csv(f->csv, labels, 20);
    /* relabel many train rows (so the error changes) and a few test rows */
    int tb[60];
    size_t nt = 0;
    for (int i = 0; i < 150 && nt < 60; i += 2, nt++)
        tb[nt] = i;
    /* "other" indices must be strictly increasing too: use two changes of ≤ 20 rows */
    f->train_changes = json_array();
    int32_t *y = malloc(f->tr.n * sizeof *y);
    memcpy(y, f->tr.y, f->tr.n * sizeof *y);
    for (size_t c = 0; c < 3; c++) {
        int b[20], o[20];
        for (int i = 0; i < 20; i++) {
            b[i] = tb[c * 20 + (size_t)i];
            o[i] = i;
            y[b[i]] = labels[i];
        }
        json_array_append_new(f->train_changes, change_labels(f->csv, b, o, 20));
    }
    int eb[] = {1, 5, 9, 33}, eo[] = {2, 3, 11, 19};
    f->test_changes = json_array();
    json_array_append_new(f->test_changes, change_labels(f->csv, eb, eo, 4));
    int32_t *ty = malloc(f->te.n * sizeof *ty);
    memcpy(ty, f->te.y, f->te.n * sizeof *ty);
    for (int i = 0; i < 4; i++)
        ty[eb[i]] = labels[eo[i]];
    put_features("lmut", f->tr.x, y, f->tr.n, f->tr.d, 5, f->hmut);
    put_features("ltmut", f->te.x, ty, f->te.n, f->te.d, 5, f->htmut);
    free(y);
    free(ty);
}

static void label_fixture_free(label_fixture *f)
{
    json_decref(f->train_changes);
    json_decref(f->test_changes);
    problem_free(&f->tr);
    problem_free(&f->te);
}

static void test_label_change(void **state)
{
    (void)state;
    label_fixture f;
    label_fixture_make(&f);
    const char *proxies[] = {"nn", "linear", "logme"};
    for (int i = 0; i < 3; i++) {
        json_t *p1 = payload(json_pack("{s:s}", "name", proxies[i]),
                             one(part(f.htr, json_incref(f.train_changes))),
                             one(part(f.hte, json_incref(f.test_changes))));
        json_t *p2 = payload(json_pack("{s:s}", "name", proxies[i]), one(part(f.hmut, NULL)),
                             one(part(f.htmut, NULL)));
        run_out r1 = run_p(p1), r2 = run_p(p2);
        assert_true(result_err(&r1) == result_err(&r2));
        assert_null(json_object_get(r1.result, "rescored")); /* no database: from scratch */
        run_out_free(&r1);
        run_out_free(&r2);
        json_decref(p1);
        json_decref(p2);
    }
    /* a labels-only source (spec.labels_only: the label column alone) gives the same */
    char lo_csv[300];
    snprintf(lo_csv, sizeof lo_csv, "%s/labels-only.csv", data_dir);
    FILE *fp = fopen(lo_csv, "w");
    assert_non_null(fp);
    fprintf(fp, "label\n");
    for (int i = 0; i < 20; i++)
        fprintf(fp, "%d\n", (i * 7 + 1) % 5);
    fclose(fp);
    json_t *lo_train = json_deep_copy(f.train_changes), *lo_test = json_deep_copy(f.test_changes);
    json_t *lo_changes[2] = {lo_train, lo_test};
    for (int s = 0; s < 2; s++)
        for (size_t c = 0; c < json_array_size(lo_changes[s]); c++) {
            json_t *ds = json_object_get(json_array_get(lo_changes[s], c), "labels_from");
            json_object_set_new(ds, "location", json_string(lo_csv));
            json_object_set_new(ds, "spec", json_pack("{s:b, s:b}", "labels_only", 1, "header", 1));
        }
    json_t *p1 = payload(nn_proxy(1, "euclidean"), one(part(f.htr, lo_train)),
                         one(part(f.hte, lo_test)));
    json_t *p2 = payload(nn_proxy(1, "euclidean"), one(part(f.hmut, NULL)), one(part(f.htmut, NULL)));
    run_out r1 = run_p(p1), r2 = run_p(p2);
    assert_true(result_err(&r1) == result_err(&r2));
    run_out_free(&r1);
    run_out_free(&r2);
    json_decref(p1);
    json_decref(p2);
    /* a labels dataset whose digest changed since registration */
    int b[] = {0}, o[] = {0};
    json_t *ch = change_labels(f.csv, b, o, 1);
    json_object_set_new(json_object_get(ch, "labels_from"), "digest",
                        json_string("0000000000000000000000000000000000000000000000000000000000000000"));
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(f.htr, one(ch))), one(part(f.hte, NULL))),
                 "changed since it was registered");
    /* a missing labels file */
    ch = change_labels("/nonexistent/labels.csv", b, o, 1);
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(f.htr, one(ch))), one(part(f.hte, NULL))),
                 "train part 0, change 0: labels_from dataset relabel:");
    label_fixture_free(&f);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_errors(void **state)
{
    (void)state;
    problem a = make_problem(30, 40, 8, 3), b = make_problem(31, 40, 4, 3);
    char ha[65], hb[65], hnl[65];
    put_features("e8", a.x, a.y, a.n, a.d, 3, ha);
    put_features("e4", b.x, b.y, b.n, b.d, 3, hb);
    put_features("enl", a.x, NULL, a.n, a.d, 0, hnl);
    json_t *train2 = json_array();
    json_array_append_new(train2, part(ha, NULL));
    json_array_append_new(train2, part(hb, NULL));
    expect_error(payload(nn_proxy(1, "euclidean"), train2, one(part(ha, NULL))),
                 "dimension mismatch: train part 0 has 8, part 1 has 4");
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, NULL)), one(part(hb, NULL))),
                 "dimension mismatch: train has 8, test has 4");
    int b0[] = {1}, o0[] = {1};
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(change_feat(hb, b0, o0, 1)))),
                         one(part(ha, NULL))),
                 "dimension mismatch: train part 0, change 0 has 4, the part has 8");
    /* indices */
    int inc_b[] = {3, 3}, inc_o[] = {0, 1};
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(change_feat(ha, inc_b, inc_o, 2)))),
                         one(part(ha, NULL))),
                 "train part 0, change 0: base indices must be strictly increasing (3 after 3)");
    int dec_b[] = {1, 2}, dec_o[] = {5, 4};
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, NULL)),
                         one(part(ha, one(change_feat(ha, dec_b, dec_o, 2))))),
                 "test part 0, change 0: other indices must be strictly increasing (4 after 5)");
    int big_b[] = {1, 40}, big_o[] = {0, 1};
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(change_feat(ha, big_b, big_o, 2)))),
                         one(part(ha, NULL))),
                 "train part 0, change 0: base index 40 is out of range (the part has 40 rows)");
    int neg_b[] = {-1}, neg_o[] = {0};
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(change_feat(ha, neg_b, neg_o, 1)))),
                         one(part(ha, NULL))),
                 "base index -1 is out of range");
    int ob_b[] = {0}, ob_o[] = {99};
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(hb, one(change_feat(hb, ob_b, ob_o, 1)))),
                         one(part(hb, NULL))),
                 "other index 99 is out of range (the other features have 40 rows)");
    json_t *uneq = change_feat(ha, big_b, big_o, 2);
    json_array_remove(json_object_get(uneq, "other"), 1);
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(uneq))), one(part(ha, NULL))),
                 "train part 0, change 0: 2 base indices but 1 other indices");
    /* labels dataset index out of range */
    char csv[300];
    snprintf(csv, sizeof csv, "%s/l5.csv", data_dir);
    int32_t five[5] = {0, 1, 2, 0, 1};
    write_labels_csv(csv, five, 5);
    int lb[] = {0}, lo[] = {5};
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(change_labels(csv, lb, lo, 1)))),
                         one(part(ha, NULL))),
                 "other index 5 is out of range (the labels dataset has 5 rows)");
    /* files */
    char missing[65];
    sha256_hex("missing", 7, missing);
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, NULL)), one(part(missing, NULL))),
                 "test part 0: cannot open feature file");
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(change_feat(missing, b0, o0, 1)))),
                         one(part(ha, NULL))),
                 "train part 0, change 0: cannot open feature file");
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(hnl, NULL)), one(part(ha, NULL))),
                 "train part 0 (features");
    expect_error(payload(nn_proxy(1, "euclidean"), one(part("nothex", NULL)), one(part(ha, NULL))),
                 "train part 0: invalid feature hash");
    /* payload shape */
    expect_error(payload(json_pack("{s:s}", "name", "knn"), one(part(ha, NULL)), one(part(ha, NULL))),
                 "unknown proxy \"knn\" (known: nn, linear, logme, hscore, leep)");
    expect_error(payload(json_pack("{s:s, s:{s:i}}", "name", "nn", "params", "kay", 2),
                         one(part(ha, NULL)), one(part(ha, NULL))),
                 "unknown parameter \"kay\" of proxy nn");
    expect_error(payload(json_pack("{s:s, s:{s:s}}", "name", "linear", "params", "num_epochs", "x"),
                         one(part(ha, NULL)), one(part(ha, NULL))),
                 "parameter num_epochs of proxy linear must be an integer");
    expect_error(payload(json_pack("{s:s, s:s}", "name", "nn", "parameters", "x"),
                         one(part(ha, NULL)), one(part(ha, NULL))),
                 "unknown key \"parameters\" in \"proxy\"");
    expect_error(json_pack("{s:{s:s}, s:i, s:[], s:[]}", "proxy", "name", "nn", "model_id", 1,
                           "train", "test"),
                 "\"train\" must be a non-empty array");
    expect_error(json_pack("{s:{s:s}, s:s, s:[], s:[]}", "proxy", "name", "nn", "model_id", "x",
                           "train", "test"),
                 "\"model_id\" must be an integer");
    expect_error(payload(nn_proxy(1, "euclidean"), one(json_string(ha)), one(part(ha, NULL))),
                 "train part 0 must be an object with \"features\"");
    json_t *both = change_feat(ha, b0, o0, 1);
    json_object_set_new(both, "labels_from", csv_dataset(csv));
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(both))), one(part(ha, NULL))),
                 "a change has either \"features\" or \"labels_from\"");
    json_t *extra = change_feat(ha, b0, o0, 1);
    json_object_set_new(extra, "bsae", json_array());
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(ha, one(extra))), one(part(ha, NULL))),
                 "unknown key \"bsae\"");
    /* non-finite features: the proxy's own check, permanent */
    a.x[5] = NAN;
    char hnan[65];
    put_features("nan", a.x, a.y, a.n, a.d, 3, hnan);
    expect_error(payload(nn_proxy(1, "euclidean"), one(part(hnan, NULL)), one(part(ha, NULL))),
                 "proxy nn:");
    problem_free(&a);
    problem_free(&b);
}

static bool stop_now(void *arg)
{
    (void)arg;
    return true;
}

static void test_stop(void **state)
{
    (void)state;
    problem a = make_problem(40, 30, 4, 2);
    char ha[65];
    put_features("stop", a.x, a.y, a.n, a.d, 2, ha);
    json_t *p = payload(nn_proxy(1, "euclidean"), one(part(ha, NULL)), one(part(ha, NULL)));
    job_ctx ctx = {.data_dir = data_dir, .should_stop = stop_now};
    json_t *res = NULL;
    char *err = NULL;
    bool permanent = true;
    assert_int_equal(proxy_job_runner.run(&ctx, p, &res, &err, &permanent), -1);
    assert_null(res);
    assert_false(permanent);
    assert_non_null(strstr(err, "stopped"));
    free(err);
    json_decref(p);
    problem_free(&a);
}

/* ---- label-only rescoring with a database ------------------------------------------------ */

static bool can_run_postgres(void)
{
    return geteuid() != 0 || getpwnam("postgres") != NULL;
}

static PGconn *db_conn;
static pg_embedded *db_pg;

/* Stops the cluster even when an assertion left test_rescore_db early. */
static int stop_db_and_remove(void **state)
{
    if (db_conn)
        PQfinish(db_conn);
    db_conn = NULL;
    if (db_pg) {
        char *err = NULL;
        if (pg_embedded_stop(db_pg, &err) != 0) {
            print_error("stopping the cluster: %s\n", err ? err : "?");
            free(err);
        }
        db_pg = NULL;
    }
    return remove_data_dir(state);
}

static int exec_ok(const char *sql)
{
    PGresult *r = PQexec(db_conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        print_error("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static char *sql_value(const char *sql)
{
    PGresult *r = PQexec(db_conn, sql);
    char *v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
                  ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

static int store_result(json_t *p, const json_t *result)
{
    char hash[65], qhash[65];
    json_t *o = json_pack("{s:s, s:O}", "kind", "proxy", "payload", p);
    json_hash(o, hash);
    json_decref(o);
    queue_job_hash("proxy", p, qhash);
    assert_string_equal(hash, qhash); /* the job identity of docs/jobs.md */
    job_ctx ctx = {.data_dir = data_dir, .hash = hash};
    char *err = NULL;
    int rc = proxy_job_runner.store(db_conn, &ctx, p, result, &err);
    if (rc != 0) {
        print_error("store: %s\n", err);
        free(err);
    }
    return rc;
}

static void test_rescore_db(void **state)
{
    (void)state;
    if (!can_run_postgres())
        skip();
    double t0 = (double)time(NULL);
    char pgdata[300];
    snprintf(pgdata, sizeof pgdata, "%s/pg", data_dir);
    pg_embedded_opts opts = {.data_dir = pgdata, .no_sync = true};
    char *err = NULL;
    pg_embedded *pg = db_pg = pg_embedded_start(&opts, &err);
    if (!pg) {
        /* no PostgreSQL server programs on this machine */
        print_message("skipping: %s\n", err);
        free(err);
        skip();
    }
    db_conn = PQconnectdb(pg_embedded_conninfo(pg));
    assert_int_equal(PQstatus(db_conn), CONNECTION_OK);
    int applied = 0;
    if (db_migrate(db_conn, &applied, &err) != 0)
        fail_msg("migrate: %s", err);
    assert_true(exec_ok("INSERT INTO models (id, name, modality, runner) "
                        "VALUES (1, 'test/model', 'image', 'builtin')"));

    label_fixture f;
    label_fixture_make(&f);
    for (int k = 1; k <= 3; k += 2) {
        const char *metric = k == 1 ? "euclidean" : "cosine";
        /* the base nn result, stored */
        json_t *base = payload(nn_proxy(k, metric), one(part(f.htr, NULL)), one(part(f.hte, NULL)));
        run_out rb = run_conn(base, db_conn);
        assert_int_equal(rb.rc, 0);
        assert_null(json_object_get(rb.result, "rescored"));
        assert_int_equal(store_result(base, rb.result), 0);
        assert_int_equal(store_result(base, rb.result), 0); /* ON CONFLICT DO NOTHING */
        /* the label-changed payload: re-scored from the stored neighbours */
        json_t *changed = payload(nn_proxy(k, metric),
                                  one(part(f.htr, json_incref(f.train_changes))),
                                  one(part(f.hte, json_incref(f.test_changes))));
        run_out rc = run_conn(changed, db_conn);
        assert_int_equal(rc.rc, 0);
        assert_true(json_is_true(json_object_get(rc.result, "rescored")));
        /* from scratch: the relabelled files, and the same payload without a database */
        json_t *scratch = payload(nn_proxy(k, metric), one(part(f.hmut, NULL)),
                                  one(part(f.htmut, NULL)));
        run_out rs = run_p(scratch), rn = run_p(changed);
        assert_true(result_err(&rc) == result_err(&rs));
        assert_true(result_err(&rc) == result_err(&rn));
        assert_true(result_err(&rc) != result_err(&rb)); /* the labels mattered */
        assert_true(json_equal(json_object_get(rc.result, "raw_error"),
                               json_object_get(rs.result, "raw_error")));
        assert_true(json_equal(json_object_get(rc.result, "details"),
                               json_object_get(rs.result, "details")));
        assert_null(json_object_get(rn.result, "rescored"));
        /* the re-scored result stores too, with its neighbours */
        assert_int_equal(store_result(changed, rc.result), 0);
        /* a feature change at the end: no rescoring */
        int b[] = {0}, o[] = {1};
        json_t *tail = json_deep_copy(f.train_changes);
        json_array_append_new(tail, change_feat(f.hte, b, o, 1));
        json_t *fc = payload(nn_proxy(k, metric), one(part(f.htr, tail)), one(part(f.hte, NULL)));
        run_out rf = run_conn(fc, db_conn);
        assert_int_equal(rf.rc, 0);
        assert_null(json_object_get(rf.result, "rescored"));
        run_out_free(&rb);
        run_out_free(&rc);
        run_out_free(&rs);
        run_out_free(&rn);
        run_out_free(&rf);
        json_decref(base);
        json_decref(changed);
        json_decref(scratch);
        json_decref(fc);
    }
    char *count = sql_value("SELECT count(*) FROM proxy_results");
    assert_string_equal(count, "4");
    free(count);
    char *row = sql_value("SELECT proxy || ' ' || params::text || ' ' || model_id || ' ' || "
                          "(raw_error IS NOT NULL) || ' ' || test_size || ' ' || "
                          "jsonb_array_length(details->'nbr') || ' ' || (job_id IS NULL) "
                          "FROM proxy_results ORDER BY created_at LIMIT 1");
    assert_string_equal(row, "nn {\"k\": 1, \"metric\": \"euclidean\"} 1 true 60 60 true");
    free(row);
    /* train_key / test_key are the hashes of the train / test arrays */
    json_t *base = payload(nn_proxy(1, "euclidean"), one(part(f.htr, NULL)), one(part(f.hte, NULL)));
    char tk[65], q[400];
    json_hash(json_object_get(base, "train"), tk);
    snprintf(q, sizeof q, "SELECT count(*) FROM proxy_results WHERE train_key = '%s'", tk);
    char *n = sql_value(q);
    assert_string_equal(n, "2");
    free(n);
    json_decref(base);
    label_fixture_free(&f);
    /* a store error names itself: an unknown model id breaks the foreign key */
    json_t *bad = json_pack("{s:{s:s}, s:i, s:[], s:[]}", "proxy", "name", "nn", "model_id", 999,
                            "train", "test");
    json_t *res = json_pack("{s:f, s:i, s:i, s:{s:s, s:{}}}", "err", 0.5, "raw_error", 1,
                            "test_size", 2, "proxy", "name", "nn", "params");
    job_ctx ctx = {.data_dir = data_dir};
    assert_int_equal(proxy_job_runner.store(db_conn, &ctx, bad, res, &err), -1);
    assert_non_null(strstr(err, "storing the proxy result:"));
    assert_null(strchr(err, '\n'));
    free(err);
    json_decref(bad);
    json_decref(res);

    PQfinish(db_conn);
    db_conn = NULL;
    db_pg = NULL;
    if (pg_embedded_stop(pg, &err) != 0)
        fail_msg("stop: %s", err);
    assert_true((double)time(NULL) - t0 < 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),
        cmocka_unit_test_setup_teardown(test_nn_euclidean, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_nn_cosine, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_nn_k3, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_linear, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_scores, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_multi_part, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_feature_mutation, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_label_change, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_errors, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_stop, make_data_dir, remove_data_dir),
        cmocka_unit_test_setup_teardown(test_rescore_db, make_data_dir, stop_db_and_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
