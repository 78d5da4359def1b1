/* The cost model of task-aware plans (planner/cost.h): every formula against hand-computed
 * numbers, the source order of a model's rate, a full ranking and an SH schedule costed
 * by hand, and the choice between them: no SH where the models are few and the data tiny
 * (job overheads dominate), SH where many models embed large data. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "planner/cost.h"
#include "planner/sh.h"

static void test_proxy_flops(void **state)
{
    (void)state;
    /* nn: 2 · 1000 · 200 · 64 */
    assert_float_equal(cost_proxy_flops(COST_PROXY_NN, 1000, 200, 64, 10, 0), 25.6e6, 0);
    /* linear: 6 · 100 · 1000 · 64 · 10 + 2 · 200 · 64 · 10 */
    assert_float_equal(cost_proxy_flops(COST_PROXY_LINEAR, 1000, 200, 64, 10, 100),
                       384e6 + 256e3, 0);
    /* logme, hscore: 2 · 1000 · 64² + 10 · 64³ */
    assert_float_equal(cost_proxy_flops(COST_PROXY_LOGME, 1000, 200, 64, 10, 0),
                       8192000.0 + 2621440.0, 0);
    assert_float_equal(cost_proxy_flops(COST_PROXY_HSCORE, 1000, 0, 64, 0, 0),
                       8192000.0 + 2621440.0, 0);
    /* leep: 2 · 1000 · 64 · 10 */
    assert_float_equal(cost_proxy_flops(COST_PROXY_LEEP, 1000, 200, 64, 10, 0), 1.28e6, 0);
    /* Defaults: d = 512, c = 10, epochs = 100: 6 · 100 · 10 · 512 · 10 */
    assert_float_equal(cost_proxy_flops(COST_PROXY_LINEAR, 10, 0, 0, 0, 0), 30.72e6, 0);
    /* seconds: flops / 2e10 + 0.05 */
    assert_float_equal(cost_proxy_seconds(COST_PROXY_NN, 1000, 200, 64, 10, 0), 0.05128, 1e-12);
    assert_float_equal(cost_embed_seconds(0.002, 500), 1.05, 1e-12);
    assert_float_equal(cost_embed_seconds(0.002, -1), 0.05, 1e-12); /* unknown size: 0 rows */
}

static void test_proxy_names(void **state)
{
    (void)state;
    cost_proxy p;
    assert_true(cost_proxy_of("nn", &p) && p == COST_PROXY_NN);
    assert_true(cost_proxy_of("linear", &p) && p == COST_PROXY_LINEAR);
    assert_true(cost_proxy_of("logme", &p) && p == COST_PROXY_LOGME);
    assert_true(cost_proxy_of("hscore", &p) && p == COST_PROXY_HSCORE);
    assert_true(cost_proxy_of("leep", &p) && p == COST_PROXY_LEEP);
    assert_false(cost_proxy_of("random", &p));
    assert_false(cost_proxy_of(NULL, &p));
}

static void test_rate_sources(void **state)
{
    (void)state;
    cost_rate r = cost_rate_of(0.004, "cuda:0", 9.0, 1000);
    assert_int_equal(r.source, COST_SRC_MEASURED);
    assert_true(r.gpu);
    assert_float_equal(r.seconds_per_row, 0.004, 0);
    r = cost_rate_of(0.004, "cpu", -1, 0);
    assert_false(r.gpu);
    r = cost_rate_of(-1, NULL, 2.5, 25000000);
    assert_int_equal(r.source, COST_SRC_CHECK);
    assert_float_equal(r.seconds_per_row, 0.0025, 1e-15);
    r = cost_rate_of(-1, NULL, -1, 25000000); /* 2 · 25e6 / 2e10 */
    assert_int_equal(r.source, COST_SRC_PARAMS);
    assert_float_equal(r.seconds_per_row, 0.0025, 1e-15);
    r = cost_rate_of(-1, NULL, -1, 0);
    assert_int_equal(r.source, COST_SRC_DEFAULT);
    assert_float_equal(r.seconds_per_row, COST_DEFAULT_SECONDS_PER_ROW, 0);
    assert_string_equal(cost_source_name(COST_SRC_MEASURED), "measured");
    assert_string_equal(cost_source_name(COST_SRC_PARAMS), "num_params");
}

static void test_full_by_hand(void **state)
{
    (void)state;
    const double spr[] = {0.001, 0.002};
    const int64_t dims[] = {64, 128};
    cost_task t = {2, spr, dims, NULL, NULL, 1000, 200, 10, 0, COST_PROXY_NN, NULL};
    /* m0: (1.0 + .05) + (0.2 + .05) + (2·1000·200·64 / 2e10 + .05) = 1.35128
     * m1: (2.0 + .05) + (0.4 + .05) + (2·1000·200·128 / 2e10 + .05) = 2.55256 */
    assert_float_equal(cost_full_seconds(&t), 3.90384, 1e-12);
    const bool cached[] = {true, false}; /* m0's test embedding exists: − 0.25 */
    t.test_cached = cached;
    assert_float_equal(cost_full_seconds(&t), 3.65384, 1e-12);
    /* m1 is fitted on 1000 rows in both of its embed jobs: + 2 · 1000 · 0.002. */
    const int64_t fit[] = {0, 1000};
    t.fit_rows = fit;
    assert_float_equal(cost_full_seconds(&t), 3.65384 + 4.0, 1e-12);
    t.test_cached = NULL; /* m0 is not fitted: its test embedding adds 0.25 only */
    assert_float_equal(cost_full_seconds(&t), 3.90384 + 4.0, 1e-12);
    t.fit_rows = NULL;
}

static void test_sh_by_hand(void **state)
{
    (void)state;
    /* 4 models, N = 1000, C = 100, B = 8: L = 2; round 0: 4 models, prefix 100 (100 new);
     * round 1: 2 models, r_1 = 2, P_1 = 3, prefix 100 · (1 + 3) = 400 (300 new). */
    int64_t n = 1000;
    sh_schedule s;
    char err[128];
    assert_int_equal(sh_schedule_make(&s, 4, &n, 1, 100, 8, 2, err, sizeof err), 0);
    assert_int_equal(s.n_rounds, 2);
    assert_int_equal(s.rounds[0].prefix_total, 100);
    assert_int_equal(s.rounds[1].prefix_total, 400);
    assert_int_equal(s.rounds[1].new_total, 300);
    const double spr[] = {0.001, 0.001, 0.001, 0.001};
    const int64_t dims[] = {64, 64, 64, 64};
    cost_task t = {4, spr, dims, NULL, NULL, 1000, 200, 10, 0, COST_PROXY_NN, NULL};
    cost_sh c;
    assert_int_equal(cost_sh_seconds(&t, &s, &c), 0);
    /* test: 4 · (0.2 + .05) = 1.0
     * round 0: 4/4 · 4 · [(0.1 + .05) + (2·100·200·64 / 2e10 + .05)] = 0.800512
     * round 1: 2/4 · 4 · [(0.3 + .05) + (2·400·200·64 / 2e10 + .05)] = 0.801024 */
    assert_float_equal(c.test_s, 1.0, 1e-12);
    assert_float_equal(c.round_s[0], 0.800512, 1e-12);
    assert_float_equal(c.round_s[1], 0.801024, 1e-12);
    assert_float_equal(c.total_s, 2.601536, 1e-12);
    /* The full ranking of the same task: 4 · (1.05 + 0.25 + 0.05128) = 5.40512: SH pays. */
    assert_float_equal(cost_full_seconds(&t), 5.40512, 1e-12);
    assert_true(cost_sh_pays(cost_full_seconds(&t), c.total_s));
    /* Fitted extractors refit on 1000 rows in each of their 3 SH embed jobs (test, round 0,
     * round 1; round 1 for half the pool) but in 2 full-ranking jobs: with 4 fitted models,
     * SH + 4·(1.0 + 1.0 + 0.5) = 12.601536, full + 4·2·1.0 = 13.40512. */
    const int64_t fit[] = {1000, 1000, 1000, 1000};
    t.fit_rows = fit;
    assert_int_equal(cost_sh_seconds(&t, &s, &c), 0);
    assert_float_equal(c.total_s, 2.601536 + 10.0, 1e-12);
    assert_float_equal(cost_full_seconds(&t), 5.40512 + 8.0, 1e-12);
    t.fit_rows = NULL;
    /* A schedule for other models does not fit. */
    t.n_models = 3;
    assert_int_equal(cost_sh_seconds(&t, &s, &c), -1);
    sh_schedule_free(&s);
}

/* What the executor does for CHUNK AUTO: the AUTO bounds, both estimates, the choice. */
static bool choose_sh(size_t M, double spr_each, int64_t dim, int64_t n_train, int64_t n_test,
                      double *full_out, double *sh_out)
{
    double *spr = calloc(M, sizeof *spr);
    int64_t *dims = calloc(M, sizeof *dims);
    for (size_t i = 0; i < M; i++) {
        spr[i] = spr_each;
        dims[i] = dim;
    }
    int64_t chunk, budget;
    char err[128];
    sh_bound autob = {SH_BOUND_AUTO, 0}, absent = {SH_BOUND_ABSENT, 0};
    assert_int_equal(sh_auto_bounds(n_train, (int64_t)M, 2, autob, absent, &chunk, &budget, err,
                                    sizeof err), 0);
    sh_schedule s;
    assert_int_equal(sh_schedule_make(&s, (int64_t)M, &n_train, 1, chunk, budget, 2, err,
                                      sizeof err), 0);
    cost_task t = {M, spr, dims, NULL, NULL, n_train, n_test, 10, 0, COST_PROXY_NN, NULL};
    cost_sh c;
    assert_int_equal(cost_sh_seconds(&t, &s, &c), 0);
    *full_out = cost_full_seconds(&t);
    *sh_out = c.total_s;
    sh_schedule_free(&s);
    free(spr);
    free(dims);
    return cost_sh_pays(*full_out, *sh_out);
}

static void test_choice_small_no_sh(void **state)
{
    (void)state;
    double full, sh;
    /* 4 models, 200 train and 100 test rows at 10 µs/row, d = 64: AUTO gives L = 2, C = 50
     * (prefixes 50 and 200). Full: 4 · [(0.002 + .05) + (0.001 + .05) + (2·200·100·64/2e10
     * + .05)] = 0.612512. SH: test 4 · 0.051 = 0.204, round 0: 4 · [(0.0005 + .05) +
     * (2·50·100·64/2e10 + .05)] = 0.402128, round 1: 2/4 · 4 · [(0.0015 + .05) + 0.050128]
     * = 0.203256; 0.809384 in all. The job overheads make SH dearer: no SH. */
    assert_false(choose_sh(4, 1e-5, 64, 200, 100, &full, &sh));
    assert_float_equal(full, 0.612512, 1e-12);
    assert_float_equal(sh, 0.809384, 1e-12);
    /* 2 models: one round on all the data, as dear as the full ranking: no SH either. */
    assert_false(choose_sh(2, 1e-5, 64, 100, 50, &full, &sh));
    assert_float_equal(full, sh, 1e-12);
}

static void test_choice_large_sh(void **state)
{
    (void)state;
    double full, sh;
    /* 64 CNN-like models (5 ms/row, d = 2048) on 50000 train and 10000 test rows: the full
     * ranking embeds 64 · 60000 rows and runs 64 large 1-NNs; SH embeds the test sets and
     * a fraction of the training set. */
    assert_true(choose_sh(64, 5e-3, 2048, 50000, 10000, &full, &sh));
    /* full: 64 · [(250 + .05) + (50 + .05) + (2·50000·10000·2048/2e10 + .05)] */
    assert_float_equal(full, 64 * (250.05 + 50.05 + 102.45), 1e-6);
    assert_true(sh < full / 2);
    /* The same pool with cheap features and tiny data: no SH. */
    assert_false(choose_sh(64, 1e-6, 16, 640, 100, &full, &sh));
}

/* |a − b| ≤ eps (this cmocka has no assert_double_equal). */
#define assert_double_equal(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

/* The per-job intercept (cost_rate_fit) from sums, by hand. */
static void test_rate_fit(void **state)
{
    (void)state;
    /* Jobs (100 rows, 1.2 s), (1000, 2.1), (400, 1.5) lie on 1.1 + 0.001·rows: n = 3,
     * Σx = 1500, Σy = 4.8, Σx² = 1 170 000, Σxy = 2820. */
    cost_rate r = cost_rate_of(0.0032, "cpu", -1, 0);
    assert_true(cost_rate_fit(&r, 3, 1500, 4.8, 1170000, 2820));
    assert_true(r.fitted);
    assert_double_equal(r.job_seconds, 1.1, 1e-9);
    assert_double_equal(r.seconds_per_row, 0.001, 1e-12);
    /* One size only (500, 1.0), (500, 1.2): no line; the average rate and T_job stay. */
    r = cost_rate_of(2.2 / 1000, "cpu", -1, 0);
    assert_false(cost_rate_fit(&r, 2, 1000, 2.2, 500000, 1100));
    assert_false(r.fitted);
    assert_double_equal(r.seconds_per_row, 0.0022, 1e-12);
    assert_double_equal(r.job_seconds, COST_JOB_OVERHEAD_S, 0);
    /* (100, 0.05), (200, 0.2): b = 0.0015, a = −0.1 < 0 → through the origin:
     * b = Σxy/Σx² = 45 / 50 000 = 0.0009, a = 0. */
    r = cost_rate_of(0.001, "cpu", -1, 0);
    assert_true(cost_rate_fit(&r, 2, 300, 0.25, 50000, 45));
    assert_double_equal(r.job_seconds, 0, 0);
    assert_double_equal(r.seconds_per_row, 0.0009, 1e-12);
    /* (100, 2), (200, 1): slope < 0 → flat: b = 0, a = 1.5. */
    assert_true(cost_rate_fit(&r, 2, 300, 3, 50000, 400));
    assert_double_equal(r.seconds_per_row, 0, 0);
    assert_double_equal(r.job_seconds, 1.5, 1e-12);
    assert_false(cost_rate_fit(&r, 1, 100, 1, 10000, 100)); /* one job */
}

/* The intercept in the full and SH estimates, and the decision it flips: 4 models at 1e-4
 * s/row, d = 16, N = 2000, 500 test rows, 1-NN. AUTO SH (η = 2): C = 500, rounds of 4 and 2
 * models on 500 and 2000 rows (new 500, 1500).
 *   a = 2 s:    full = 4 · [(0.2 + 2) + (0.05 + 2) + 0.0516]                  = 17.2064
 *               SH   = 4 · 2.05 + 4 · (2.05 + 0.0504) + 2/4 · 4 · (2.15 + 0.0516) = 21.0048
 *   a = 0.05 s: full = 4 · (0.25 + 0.1 + 0.0516)                              = 1.6064
 *               SH   = 4 · 0.1 + 4 · (0.1 + 0.0504) + 2 · (0.2 + 0.0516)      = 1.5048
 * (proxy: 2·n·500·16 / 2e10 + 0.05: 0.0516 on 2000 rows, 0.0504 on 500). */
static void test_intercept_decision(void **state)
{
    (void)state;
    double spr[4] = {1e-4, 1e-4, 1e-4, 1e-4}, job[4] = {2, 2, 2, 2};
    int64_t dims[4] = {16, 16, 16, 16}, n = 2000, c, b;
    char err[256];
    assert_int_equal(sh_get_bounds(n, 4, 2, &c, &b, err, sizeof err), 0);
    assert_int_equal(c, 500);
    sh_schedule s;
    assert_int_equal(sh_schedule_make(&s, 4, &n, 1, c, b, 2, err, sizeof err), 0);
    cost_task t = {4, spr, dims, NULL, NULL, 2000, 500, 10, 0, COST_PROXY_NN, job};
    cost_sh sh;
    double full = cost_full_seconds(&t);
    assert_int_equal(cost_sh_seconds(&t, &s, &sh), 0);
    assert_double_equal(full, 17.2064, 1e-9);
    assert_double_equal(sh.total_s, 21.0048, 1e-9);
    assert_false(cost_sh_pays(full, sh.total_s));
    t.job_seconds = NULL; /* T_job = 0.05 */
    full = cost_full_seconds(&t);
    assert_int_equal(cost_sh_seconds(&t, &s, &sh), 0);
    assert_double_equal(full, 1.6064, 1e-9);
    assert_double_equal(sh.total_s, 1.5048, 1e-9);
    assert_true(cost_sh_pays(full, sh.total_s));
    assert_double_equal(cost_embed_job_seconds(1e-4, 2, 500), 2.05, 1e-12);
    sh_schedule_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_flops),
        cmocka_unit_test(test_proxy_names),
        cmocka_unit_test(test_rate_sources),
        cmocka_unit_test(test_rate_fit),
        cmocka_unit_test(test_intercept_decision),
        cmocka_unit_test(test_full_by_hand),
        cmocka_unit_test(test_sh_by_hand),
        cmocka_unit_test(test_choice_small_no_sh),
        cmocka_unit_test(test_choice_large_sh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
