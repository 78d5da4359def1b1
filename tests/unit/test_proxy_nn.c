/* executor/workers/proxies: exact k-NN (Euclidean, cosine) against a double-precision
 * brute force. On grid data (proxy_test.h) float distances are exact, so neighbours,
 * tie-breaks and votes must match the reference exactly; on Gaussian data a neighbour may
 * differ from the reference only where the two candidates' reference distances are within
 * 1e-5 relative (float rounding of x·y). Tiles smaller than the data, not dividing it,
 * exercise the tiling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/proxy_test.h"

static const proxy_nn_opts tiles[] = {
    {PROXY_EUCLIDEAN, 1, 0, 0},  /* defaults: one tile here */
    {PROXY_EUCLIDEAN, 1, 7, 13}, /* many small tiles with remainders */
    {PROXY_EUCLIDEAN, 1, 1, 1},  /* degenerate */
    {PROXY_EUCLIDEAN, 1, 64, 40},
};

/* Runs proxy_nn with opts (metric and k overridden) and checks every test row against the
 * reference. exact: neighbours and votes identical; else tolerance as in the file header. */
static void check_knn(const float *tr, const int32_t *ytr, size_t ntr, const float *te,
                      const int32_t *yte, size_t nte, size_t d, proxy_nn_opts o, int exact)
{
    proxy_data train = {tr, ytr, ntr, d}, test = {te, yte, nte, d};
    proxy_nn_result r;
    char err[256] = "";
    int rc = proxy_nn(&train, &test, &o, &r, err, sizeof err);
    if (rc != PROXY_OK)
        fail_msg("proxy_nn: %s", err);
    assert_int_equal(r.n, nte);
    assert_int_equal(r.k, o.k);
    int k = o.k, cosine = o.metric == PROXY_COSINE;
    int64_t *idx = malloc((size_t)k * sizeof *idx);
    double *dist = malloc((size_t)k * sizeof *dist);
    int32_t *lab = malloc((size_t)k * sizeof *lab);
    size_t wrong = 0;
    for (size_t i = 0; i < nte; i++) {
        t_ref_knn(tr, ntr, te + i * d, d, k, cosine, idx, dist);
        for (int q = 0; q < k; q++) {
            int64_t got = r.nbr[i * (size_t)k + (size_t)q];
            double gd = r.dist[i * (size_t)k + (size_t)q];
            assert_true(got >= 0 && (size_t)got < ntr);
            double ref_of_got = t_ref_dist(te + i * d, tr + (size_t)got * d, d, cosine);
            double scale = cosine ? 2.0 : dist[q] + 1.0;
            if (exact) {
                if (got != idx[q])
                    fail_msg("row %zu neighbour %d: got %lld (d=%g), want %lld (d=%g)", i, q,
                             (long long)got, gd, (long long)idx[q], dist[q]);
            } else if (got != idx[q] && fabs(ref_of_got - dist[q]) > 1e-5 * scale) {
                fail_msg("row %zu neighbour %d: got %lld (ref d=%.9g), want %lld (d=%.9g)", i,
                         q, (long long)got, ref_of_got, (long long)idx[q], dist[q]);
            }
            /* reported distance: the clamped float value, close to the reference */
            assert_true(gd >= 0);
            if (fabs(gd - ref_of_got) > 1e-4 * (ref_of_got + (cosine ? 1.0 : 1.0)) + 1e-4)
                fail_msg("row %zu: distance %.9g, reference %.9g", i, gd, ref_of_got);
            lab[q] = ytr[got];
        }
        int32_t want = t_ref_vote(lab, k);
        assert_int_equal(r.pred[i], want);
        if (exact) {
            for (int q = 0; q < k; q++)
                lab[q] = ytr[idx[q]];
            assert_int_equal(r.pred[i], t_ref_vote(lab, k));
        }
        if (yte && r.pred[i] != yte[i])
            wrong++;
    }
    if (yte) {
        assert_int_equal(r.wrong, wrong);
        assert_true(fabs(r.err - (double)wrong / (double)nte) < 1e-15);
    } else {
        assert_true(isnan(r.err));
    }
    free(idx);
    free(dist);
    free(lab);
    proxy_nn_result_free(&r);
    proxy_nn_result_free(&r); /* idempotent */
}

static void test_euclidean_1nn_grid_exact(void **state)
{
    (void)state;
    trng g = {1};
    size_t ntr = 203, nte = 61, d = 5; /* small d: many exact ties */
    float *tr = t_grid(&g, ntr, d), *te = t_grid(&g, nte, d);
    int32_t *ytr = t_labels(&g, ntr, 4), *yte = t_labels(&g, nte, 4);
    for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++)
        check_knn(tr, ytr, ntr, te, yte, nte, d, tiles[t], 1);
    free(tr), free(te), free(ytr), free(yte);
}

static void test_euclidean_1nn_gauss(void **state)
{
    (void)state;
    trng g = {2};
    size_t ntr = 500, nte = 97, d = 33;
    float *tr = t_gauss(&g, ntr, d), *te = t_gauss(&g, nte, d);
    int32_t *ytr = t_labels(&g, ntr, 10), *yte = t_labels(&g, nte, 10);
    for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++)
        check_knn(tr, ytr, ntr, te, yte, nte, d, tiles[t], 0);
    /* the SIMD row minimum and the scalar one agree */
    setenv("RANKQL_PROXY_SCALAR", "1", 1);
    check_knn(tr, ytr, ntr, te, yte, nte, d, tiles[1], 0);
    unsetenv("RANKQL_PROXY_SCALAR");
    free(tr), free(te), free(ytr), free(yte);
}

static void test_knn_grid_exact(void **state)
{
    (void)state;
    trng g = {3};
    size_t ntr = 150, nte = 40, d = 4;
    float *tr = t_grid(&g, ntr, d), *te = t_grid(&g, nte, d);
    int32_t *ytr = t_labels(&g, ntr, 3), *yte = t_labels(&g, nte, 3);
    int ks[] = {2, 3, 4, 5, 8, 150};
    for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++)
        for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++) {
            proxy_nn_opts o = tiles[t];
            o.k = ks[q];
            check_knn(tr, ytr, ntr, te, yte, nte, d, o, 1);
        }
    free(tr), free(te), free(ytr), free(yte);
}

static void test_knn_gauss(void **state)
{
    (void)state;
    trng g = {4};
    size_t ntr = 300, nte = 50, d = 20;
    float *tr = t_gauss(&g, ntr, d), *te = t_gauss(&g, nte, d);
    int32_t *ytr = t_labels(&g, ntr, 5), *yte = t_labels(&g, nte, 5);
    proxy_nn_opts o = {PROXY_EUCLIDEAN, 7, 9, 31};
    check_knn(tr, ytr, ntr, te, yte, nte, d, o, 0);
    free(tr), free(te), free(ytr), free(yte);
}

/* Duplicated train rows: the lowest index wins, and a k-list orders equal distances by
 * index, across tile borders. */
static void test_ties(void **state)
{
    (void)state;
    const size_t d = 2;
    float tr[] = {5, 5, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 9, 9};
    int32_t ytr[] = {0, 1, 2, 3, 4, 5, 6};
    float te[] = {1, 1, 0.5f, 0.5f, 0, 0};
    int32_t yte[] = {1, 2, 4};
    proxy_data train = {tr, ytr, 7, d}, test = {te, yte, 3, d};
    for (size_t tt = 1; tt <= 7; tt++) {
        proxy_nn_opts o = {PROXY_EUCLIDEAN, 1, 1, tt};
        proxy_nn_result r;
        char err[128];
        assert_int_equal(proxy_nn(&train, &test, &o, &r, err, sizeof err), PROXY_OK);
        assert_int_equal(r.nbr[0], 1); /* (1,1) at 1, 3, 5 */
        assert_int_equal(r.nbr[1], 1); /* (0.5,0.5): 1,2,3,5 all at 0.5 → 1 */
        assert_int_equal(r.nbr[2], 2);
        assert_int_equal(r.pred[0], 1);
        assert_int_equal(r.wrong, 2);
        proxy_nn_result_free(&r);
        o.k = 3;
        assert_int_equal(proxy_nn(&train, &test, &o, &r, err, sizeof err), PROXY_OK);
        int64_t want0[] = {1, 3, 5}, want1[] = {1, 2, 3}, want2[] = {2, 4, 1};
        for (int q = 0; q < 3; q++) {
            assert_int_equal(r.nbr[q], want0[q]);
            assert_int_equal(r.nbr[3 + q], want1[q]);
            assert_int_equal(r.nbr[6 + q], want2[q]);
        }
        /* all three labels differ: the vote is the nearest's label */
        assert_int_equal(r.pred[0], 1);
        assert_int_equal(r.pred[1], 1);
        assert_int_equal(r.pred[2], 2);
        proxy_nn_result_free(&r);
    }
}

static void test_vote_majority_and_tie(void **state)
{
    (void)state;
    /* test row at 0; train at distances 1, 2, 3, 4, 5 with labels 7, 8, 8, 7, 9 */
    float tr[] = {1, 2, 3, 4, 5};
    int32_t ytr[] = {7, 8, 8, 7, 9};
    float te[] = {0};
    proxy_data train = {tr, ytr, 5, 1}, test = {te, NULL, 1, 1};
    int32_t want[] = {7, 7, 8, 7, 7}; /* k = 1..5: k=2 tie 7/8 → 7 (nearer); k=4 tie → 7 */
    for (int k = 1; k <= 5; k++) {
        proxy_nn_opts o = {PROXY_EUCLIDEAN, k, 0, 0};
        proxy_nn_result r;
        assert_int_equal(proxy_nn(&train, &test, &o, &r, NULL, 0), PROXY_OK);
        assert_int_equal(r.pred[0], want[k - 1]);
        assert_true(isnan(r.err));
        proxy_nn_result_free(&r);
    }
}

static void test_cosine(void **state)
{
    (void)state;
    trng g = {5};
    size_t ntr = 400, nte = 70, d = 16;
    float *tr = t_gauss(&g, ntr, d), *te = t_gauss(&g, nte, d);
    int32_t *ytr = t_labels(&g, ntr, 6), *yte = t_labels(&g, nte, 6);
    /* scale rows: cosine ignores it, Euclidean would not */
    for (size_t i = 0; i < ntr; i++)
        for (size_t j = 0; j < d; j++)
            tr[i * d + j] *= (float)(1 + i % 7) * 10.0f;
    int ks[] = {1, 5};
    for (size_t q = 0; q < 2; q++)
        for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++) {
            proxy_nn_opts o = tiles[t];
            o.metric = PROXY_COSINE;
            o.k = ks[q];
            check_knn(tr, ytr, ntr, te, yte, nte, d, o, 0);
            check_knn(tr, ytr, ntr, te, NULL, nte, d, o, 0);
        }
    free(tr), free(te), free(ytr), free(yte);
}

/* Zero rows under cosine: cos = 0 against everything, i.e. distance 2. */
static void test_cosine_zero_rows(void **state)
{
    (void)state;
    float tr[] = {0, 0, -1, 0, 1, 1, 0, 0};
    int32_t ytr[] = {0, 1, 2, 3};
    float te[] = {0, 0, 1, 0, -1, -1};
    proxy_data train = {tr, ytr, 4, 2}, test = {te, NULL, 3, 2};
    proxy_nn_opts o = {PROXY_COSINE, 4, 0, 0};
    proxy_nn_result r;
    assert_int_equal(proxy_nn(&train, &test, &o, &r, NULL, 0), PROXY_OK);
    /* zero test row: every distance 2, index order */
    for (int q = 0; q < 4; q++) {
        assert_int_equal(r.nbr[q], q);
        assert_true(fabsf(r.dist[q] - 2.0f) < 1e-6f);
    }
    /* (1,0): (1,1) cos .707 → 2-1.414; then zero rows (2) at 0 and 3; then (-1,0) at 4 */
    assert_int_equal(r.nbr[4], 2);
    assert_int_equal(r.nbr[5], 0);
    assert_int_equal(r.nbr[6], 3);
    assert_int_equal(r.nbr[7], 1);
    assert_true(fabsf(r.dist[4] - (float)(2 - sqrt(2.0))) < 1e-6f);
    assert_true(fabsf(r.dist[7] - 4.0f) < 1e-6f);
    /* (-1,-1): (-1,0) cos .707; zero rows; (1,1) cos -1 → 4 */
    assert_int_equal(r.nbr[8], 1);
    assert_int_equal(r.nbr[11], 2);
    assert_true(fabsf(r.dist[11] - 4.0f) < 1e-5f);
    proxy_nn_result_free(&r);
}

static void test_rescore(void **state)
{
    (void)state;
    trng g = {6};
    size_t ntr = 120, nte = 30, d = 6;
    float *tr = t_grid(&g, ntr, d), *te = t_grid(&g, nte, d);
    int32_t *ytr = t_labels(&g, ntr, 3), *yte = t_labels(&g, nte, 3);
    int32_t *ytr2 = t_labels(&g, ntr, 3), *pred = malloc(nte * sizeof *pred);
    for (int k = 1; k <= 5; k += 4) {
        proxy_data train = {tr, ytr, ntr, d}, test = {te, yte, nte, d};
        proxy_nn_opts o = {PROXY_EUCLIDEAN, k, 8, 16};
        proxy_nn_result r, r2;
        assert_int_equal(proxy_nn(&train, &test, &o, &r, NULL, 0), PROXY_OK);
        double e = -1;
        assert_int_equal(proxy_nn_rescore(&r, ytr, ntr, yte, pred, &e, NULL, 0), PROXY_OK);
        assert_true(e == r.err);
        assert_memory_equal(pred, r.pred, nte * sizeof *pred);
        /* new train labels: same as recomputing */
        train.y = ytr2;
        assert_int_equal(proxy_nn(&train, &test, &o, &r2, NULL, 0), PROXY_OK);
        assert_int_equal(proxy_nn_rescore(&r, ytr2, ntr, yte, pred, &e, NULL, 0), PROXY_OK);
        assert_true(e == r2.err);
        assert_memory_equal(pred, r2.pred, nte * sizeof *pred);
        char err[128] = "";
        assert_int_equal(proxy_nn_rescore(&r, ytr2, 3, yte, NULL, &e, err, sizeof err),
                         PROXY_EINVAL);
        assert_non_null(strstr(err, "not a train row"));
        proxy_nn_result_free(&r);
        proxy_nn_result_free(&r2);
    }
    free(tr), free(te), free(ytr), free(yte), free(ytr2), free(pred);
}

static void expect_nn_error(const proxy_data *train, const proxy_data *test,
                            const proxy_nn_opts *o, int code, const char *needle)
{
    proxy_nn_result r;
    memset(&r, 0x5a, sizeof r);
    char err[256] = "";
    int rc = proxy_nn(train, test, o, &r, err, sizeof err);
    if (rc != code || !strstr(err, needle))
        fail_msg("want %d '%s', got %d '%s'", code, needle, rc, err);
}

static void test_errors(void **state)
{
    (void)state;
    float tr[] = {1, 2, 3, 4, 5, 6}, te[] = {1, 2, 3};
    int32_t ytr[] = {0, 1}, yte[] = {0}, neg[] = {0, -1}, big[] = {0, PROXY_MAX_CLASSES};
    proxy_data train = {tr, ytr, 2, 3}, test = {te, yte, 1, 3};
    proxy_nn_opts o = {PROXY_EUCLIDEAN, 1, 0, 0};

    proxy_data t2 = {te, yte, 1, 2};
    expect_nn_error(&train, &t2, &o, PROXY_EINVAL, "test has 2 feature columns but train has 3");
    proxy_data bad = train;
    bad.y = neg;
    expect_nn_error(&bad, &test, &o, PROXY_EINVAL, "train: label -1 at row 1 is out of range");
    bad.y = big;
    expect_nn_error(&bad, &test, &o, PROXY_EINVAL, "label 1048576 at row 1 is out of range");
    bad.y = NULL;
    expect_nn_error(&bad, &test, &o, PROXY_EINVAL, "train: labels are required");
    bad = train;
    bad.n = 0;
    expect_nn_error(&bad, &test, &o, PROXY_EINVAL, "train: no rows");
    bad = train;
    bad.d = 0;
    expect_nn_error(&bad, &test, &o, PROXY_EINVAL, "train: no feature columns");
    expect_nn_error(NULL, &test, &o, PROXY_EINVAL, "train: no data");
    bad = train;
    bad.x = NULL;
    expect_nn_error(&bad, &test, &o, PROXY_EINVAL, "train: no feature array");
    float nan_te[] = {1, NAN, 3};
    proxy_data tn = {nan_te, yte, 1, 3};
    expect_nn_error(&train, &tn, &o, PROXY_EINVAL, "test: feature at row 0, column 1 is not finite");
    float inf_tr[] = {1, 2, 3, 4, INFINITY, 6};
    proxy_data ti = {inf_tr, ytr, 2, 3};
    expect_nn_error(&ti, &test, &o, PROXY_EINVAL, "train: feature at row 1, column 1");
    float huge[] = {1e30f, 1e30f, 1e30f, 1, 1, 1};
    proxy_data th = {huge, ytr, 2, 3};
    expect_nn_error(&th, &test, &o, PROXY_ENUMERIC, "train row 0: squared norm");
    o.k = 3;
    expect_nn_error(&train, &test, &o, PROXY_EINVAL, "k = 3 exceeds the 2 train rows");
    o.k = -1;
    expect_nn_error(&train, &test, &o, PROXY_EINVAL, "k = -1 is out of range");
    o.k = 1;
    o.metric = (proxy_metric)7;
    expect_nn_error(&train, &test, &o, PROXY_EINVAL, "unknown metric 7");
    /* a NULL err buffer is fine */
    proxy_nn_result r;
    assert_int_equal(proxy_nn(&train, &t2, NULL, &r, NULL, 0), PROXY_EINVAL);
    assert_string_equal(proxy_strerror(PROXY_ENOGPU), "no GPU");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_euclidean_1nn_grid_exact),
        cmocka_unit_test(test_euclidean_1nn_gauss),
        cmocka_unit_test(test_knn_grid_exact),
        cmocka_unit_test(test_knn_gauss),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_vote_majority_and_tie),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_cosine_zero_rows),
        cmocka_unit_test(test_rescore),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
