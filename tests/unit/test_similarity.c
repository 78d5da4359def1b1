/* Dataset similarity math (executor/workers/similarity.h): the gaussian_diag embedding and
 * the 2-Wasserstein distance against hand-computed values, and the metric's properties on
 * random vectors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "executor/workers/similarity.h"

static void test_embedding_by_hand(void **state)
{
    (void)state;
    /* Rows (1,2), (3,2), (5,8): means (3, 4); population variances (8/3, 8). */
    const float x[] = {1, 2, 3, 2, 5, 8};
    float vec[4];
    assert_int_equal(similarity_embed(x, 3, 2, vec), 0);
    assert_float_equal(vec[0], 3.0, 1e-6);
    assert_float_equal(vec[1], 4.0, 1e-6);
    assert_float_equal(vec[2], 8.0 / 3.0, 1e-6);
    assert_float_equal(vec[3], 8.0, 1e-6);
    /* One row: variance 0. */
    assert_int_equal(similarity_embed(x, 1, 2, vec), 0);
    assert_float_equal(vec[0], 1.0, 0);
    assert_float_equal(vec[2], 0.0, 0);
}

static void test_embedding_far_from_zero(void **state)
{
    (void)state;
    /* 1e4 + {−1, +1}: a one-pass Σx² − n·μ² in float would lose the variance of 1. */
    const float x[] = {9999, 10001, 9999, 10001};
    float vec[2];
    assert_int_equal(similarity_embed(x, 4, 1, vec), 0);
    assert_float_equal(vec[0], 10000.0, 1e-3);
    assert_float_equal(vec[1], 1.0, 1e-6);
}

static void test_embedding_rejects(void **state)
{
    (void)state;
    float vec[2];
    const float x[] = {1, NAN};
    assert_int_equal(similarity_embed(x, 0, 1, vec), -1);
    assert_int_equal(similarity_embed(x, 2, 1, vec), -1);
    const float inf[] = {INFINITY};
    assert_int_equal(similarity_embed(inf, 1, 1, vec), -1);
}

static void test_w2_by_hand(void **state)
{
    (void)state;
    /* a: μ (0, 0), σ² (1, 4) → σ (1, 2); b: μ (3, 4), σ² (4, 4) → σ (2, 2).
     * Σ Δμ² = 9 + 16 = 25, Σ Δσ² = 1 + 0 = 1: W2 = √26. */
    const float a[] = {0, 0, 1, 4}, b[] = {3, 4, 4, 4};
    assert_float_equal(similarity_w2(a, b, 2), sqrt(26.0), 1e-12);
    assert_float_equal(similarity_w2(b, a, 2), sqrt(26.0), 1e-12);
    assert_float_equal(similarity_w2(a, a, 2), 0.0, 0);
    /* Same means, variances 9 and 1: |3 − 1| = 2 (the Fréchet distance of two 1-d
     * Gaussians N(0, 9), N(0, 1)). */
    const float c[] = {0, 9}, d[] = {0, 1};
    assert_float_equal(similarity_w2(c, d, 1), 2.0, 1e-12);
    /* A negative stored variance counts as 0. */
    const float e[] = {0, -1}, f[] = {0, 4};
    assert_float_equal(similarity_w2(e, f, 1), 2.0, 1e-12);
}

/* The embedding of data, then W2, equals the formula on the data's own statistics: two
 * datasets that differ by a shift s in every feature are s·√d apart. */
static void test_shift(void **state)
{
    (void)state;
    enum { N = 50, D = 4 };
    float x[N * D], y[N * D], vx[2 * D], vy[2 * D];
    srand(7);
    for (int i = 0; i < N * D; i++) {
        x[i] = (float)rand() / (float)RAND_MAX;
        y[i] = x[i] + 0.5f;
    }
    assert_int_equal(similarity_embed(x, N, D, vx), 0);
    assert_int_equal(similarity_embed(y, N, D, vy), 0);
    assert_float_equal(similarity_w2(vx, vy, D), 0.5 * sqrt((double)D), 1e-5);
}

static void test_metric_properties(void **state)
{
    (void)state;
    enum { D = 5, T = 200 };
    srand(11);
    for (int t = 0; t < T; t++) {
        float v[3][2 * D];
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < 2 * D; j++)
                v[k][j] = (float)rand() / (float)RAND_MAX * (j < D ? 10.0f : 4.0f);
        double ab = similarity_w2(v[0], v[1], D), bc = similarity_w2(v[1], v[2], D),
               ac = similarity_w2(v[0], v[2], D);
        assert_true(ab >= 0 && ac <= ab + bc + 1e-9);
        assert_float_equal(ab, similarity_w2(v[1], v[0], D), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding_by_hand),
        cmocka_unit_test(test_embedding_far_from_zero),
        cmocka_unit_test(test_embedding_rejects),
        cmocka_unit_test(test_w2_by_hand),
        cmocka_unit_test(test_shift),
        cmocka_unit_test(test_metric_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
