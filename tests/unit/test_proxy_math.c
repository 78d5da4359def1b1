/* executor/workers/proxies/proxy_math.h: the per-element functions that the CPU path and
 * the CUDA kernels share (compiled here as plain C), checked one by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "executor/workers/proxies/proxy_math.h"

static void test_sqdist(void **state)
{
    (void)state;
    /* x = (1, 2), y = (3, 5): ‖x‖² = 5, ‖y‖² = 34, x·y = 13 → 5 + 34 − 26 = 13 */
    assert_true(proxy_sqdist(5.0f, 34.0f, 13.0f) == 13.0f);
    assert_true(proxy_sqdist(2.0f, 2.0f, 2.0f) == 0.0f);
    /* rounding can make it negative; the reported value is clamped, the raw one is kept */
    float raw = proxy_sqdist(1.0f, 1.0f, 1.0000001f);
    assert_true(raw < 0.0f);
    assert_true(proxy_dist_report(raw) == 0.0f);
    assert_true(proxy_dist_report(3.5f) == 3.5f);
}

static void test_nbr_order(void **state)
{
    (void)state;
    assert_true(proxy_nbr_better(1.0f, 9, 2.0f, 0));
    assert_false(proxy_nbr_better(2.0f, 0, 1.0f, 9));
    assert_true(proxy_nbr_better(1.0f, 3, 1.0f, 4));
    assert_false(proxy_nbr_better(1.0f, 4, 1.0f, 3));
    assert_false(proxy_nbr_better(1.0f, 4, 1.0f, 4));
    assert_true(proxy_nbr_better(1e30f, 5, INFINITY, PROXY_NO_NEIGHBOUR));
    assert_true(proxy_nbr_better(-1.0f, 5, 0.0f, 0));
}

static void test_topk(void **state)
{
    (void)state;
    float d[4];
    int64_t ix[4];
    proxy_topk_init(d, ix, 4);
    for (int j = 0; j < 4; j++) {
        assert_true(isinf(d[j]));
        assert_true(ix[j] == PROXY_NO_NEIGHBOUR);
    }
    /* candidates in scrambled order; result sorted by (distance, index) */
    float cd[] = {5, 3, 3, 9, 1, 3, 0.5f, 7};
    int64_t ci[] = {0, 7, 2, 1, 4, 5, 6, 3};
    for (int j = 0; j < 8; j++)
        proxy_topk_insert(d, ix, 4, cd[j], ci[j]);
    float wd[] = {0.5f, 1, 3, 3};
    int64_t wi[] = {6, 4, 2, 5};
    for (int j = 0; j < 4; j++) {
        assert_true(d[j] == wd[j]);
        assert_int_equal(ix[j], wi[j]);
    }
    /* an equal distance with a higher index than the last does not enter */
    proxy_topk_insert(d, ix, 4, 3, 6);
    assert_int_equal(ix[3], 5);
    proxy_topk_insert(d, ix, 4, 3, 1);
    assert_int_equal(ix[2], 1);
    assert_int_equal(ix[3], 2);
    /* k = 1 is an argmin */
    float d1;
    int64_t i1;
    proxy_topk_init(&d1, &i1, 1);
    proxy_topk_insert(&d1, &i1, 1, 2, 10);
    proxy_topk_insert(&d1, &i1, 1, 2, 3);
    proxy_topk_insert(&d1, &i1, 1, 2.5f, 0);
    assert_true(d1 == 2.0f);
    assert_int_equal(i1, 3);
}

static void test_vote(void **state)
{
    (void)state;
    int32_t a[] = {4};
    assert_int_equal(proxy_vote(a, 1), 4);
    int32_t b[] = {1, 2, 3};
    assert_int_equal(proxy_vote(b, 3), 1); /* all different → nearest */
    int32_t c[] = {1, 2, 2};
    assert_int_equal(proxy_vote(c, 3), 2);
    int32_t e[] = {1, 2, 2, 1};
    assert_int_equal(proxy_vote(e, 4), 1); /* 2–2 tie → label of the nearest */
    int32_t f[] = {3, 1, 2, 2, 1};
    assert_int_equal(proxy_vote(f, 5), 1); /* 1 and 2 tie at 2; 1 is met first */
    int32_t g[] = {0, 5, 5, 5, 0, 0, 0};
    assert_int_equal(proxy_vote(g, 7), 0);
    assert_int_equal(proxy_vote(g, 4), 5);
}

static void test_norm_and_standardize(void **state)
{
    (void)state;
    assert_true(proxy_inv_norm(0.0) == 0.0f);
    assert_true(fabsf(proxy_inv_norm(4.0) - 0.5f) < 1e-7f);
    assert_true(proxy_inv_std(0.0) == 1.0f);
    assert_true(fabsf(proxy_inv_std(4.0) - 0.25f) < 1e-7f);
    assert_true(proxy_standardize(5.0f, 3.0f, 0.5f) == 1.0f);
}

static void test_softmax_xent(void **state)
{
    (void)state;
    float z[] = {1.0f, 2.0f, 3.0f}, b[] = {0.0f, 0.0f, -1.0f}, p[3];
    /* logits 1, 2, 2: p = (e, e², e²)/(e + 2e²) */
    double loss = proxy_softmax_xent(z, b, 3, 0, p);
    double e1 = exp(1.0), e2 = exp(2.0), s = e1 + 2 * e2;
    assert_true(fabs(p[0] - e1 / s) < 1e-6);
    assert_true(fabs(p[1] - e2 / s) < 1e-6);
    assert_true(fabs(p[2] - e2 / s) < 1e-6);
    assert_true(fabs(loss + log(e1 / s)) < 1e-6);
    /* in place (p = z), label read before it is overwritten */
    float z2[] = {1.0f, 2.0f, 3.0f};
    double l2 = proxy_softmax_xent(z2, b, 3, 2, z2);
    assert_true(fabs(l2 + log(e2 / s)) < 1e-6);
    assert_true(fabs(z2[2] - e2 / s) < 1e-6);
    /* large logits do not overflow */
    float big[] = {1000.0f, 0.0f}, zb[] = {0.0f, 0.0f};
    double lb = proxy_softmax_xent(big, zb, 2, 1, p);
    assert_true(fabs(lb - 1000.0) < 1e-3);
    assert_true(p[0] == 1.0f);
    /* gradient */
    assert_true(fabsf(proxy_xent_grad(0.25f, 1, 0.5f) + 0.375f) < 1e-7f);
    assert_true(fabsf(proxy_xent_grad(0.25f, 0, 0.5f) - 0.125f) < 1e-7f);
}

static void test_argmax(void **state)
{
    (void)state;
    float z[] = {1, 3, 3, 2}, b[] = {0, 0, 0, 0}, b2[] = {0, 0, 0.5f, 0};
    assert_int_equal(proxy_argmax(z, b, 4), 1); /* tie → lowest class */
    assert_int_equal(proxy_argmax(z, b2, 4), 2);
    assert_int_equal(proxy_argmax(z, b, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqdist),
        cmocka_unit_test(test_nbr_order),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_vote),
        cmocka_unit_test(test_norm_and_standardize),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_argmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
