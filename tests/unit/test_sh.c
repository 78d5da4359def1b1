/* Successive halving (planner/sh.h): the worked example of shift-spec §5.8 round by round,
 * the AUTO bounds of every example the spec lists (§5.8 and §7.1), SHiFT's default budget,
 * proportional chunking over 2–3 training datasets, sh_select against a brute-force SH on
 * random errs, the cost simulator of §7.1 on a hand-computed case, and invalid inputs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "planner/sh.h"

/* ---- the worked example ----------------------------------------------------------------- */

/* shift-spec §5.8: CIFAR-100 (50000 train rows), 235 models, chunk 112 budget 1880. The
 * spec's table follows SHiFT's [impl] convention, which is the one rankql uses: the "train
 * samples per arm" column is our prefix and the "new slice" column is [prefix_{k−1},
 * prefix_k) — no conversion needed. */
static void test_worked_example(void **state)
{
    (void)state;
    static const struct {
        int64_t arms, r, p, lo, hi;
    } want[] = {
        {235, 1, 1, 0, 112},          {118, 1, 2, 112, 336},       {59, 3, 5, 336, 896},
        {30, 7, 12, 896, 2240},       {15, 15, 27, 2240, 5264},    {8, 29, 56, 5264, 11536},
        {4, 58, 114, 11536, 24304},   {2, 117, 231, 24304, 50000},
    };
    int64_t n = 50000;
    sh_schedule s;
    char err[256] = "";
    assert_int_equal(sh_schedule_make(&s, 235, &n, 1, 112, 1880, 0, err, sizeof err), 0);
    assert_int_equal(s.eta, 2);
    assert_int_equal(s.n_rounds, 8);
    for (int k = 0; k < 8; k++) {
        const sh_round *r = &s.rounds[k];
        assert_int_equal(r->k, k);
        assert_int_equal(r->models, want[k].arms);
        assert_int_equal(r->pulls, want[k].r);
        assert_int_equal(r->cum_pulls, want[k].p);
        assert_int_equal(r->prefix[0], want[k].hi);
        assert_int_equal(r->prefix_total, want[k].hi);
        assert_int_equal(r->prefix[0] - r->new_rows[0], want[k].lo);
        assert_int_equal(r->new_total, want[k].hi - want[k].lo);
        assert_int_equal(r->pulls_spent, want[k].arms * want[k].r);
        assert_int_equal(r->keep, k < 7 ? want[k + 1].arms : 1);
        /* the new slice is C·P_k rows until the cap */
        if (k < 7) assert_int_equal(r->new_total, 112 * want[k].p);
    }
    assert_int_equal(s.rounds[7].nominal_rows, 112 * 448); /* 50176, capped at 50000 */
    /* "Training-set embeddings: 324,112 instead of 235 × 50,000" */
    assert_int_equal(s.model_rows, 324112);
    assert_true(s.pulls_spent <= 1880);
    assert_int_equal(s.pulls_spent, 235 + 118 + 177 + 210 + 225 + 232 + 232 + 234);
    /* The [intent] convention (Alg. 1: prefix C·P_k) would stop at 112·231 rows. */
    assert_int_equal(sh_prefix_intent_rows(&s, 7), 112 * 231);
    assert_int_equal(sh_prefix_intent_rows(&s, 0), 112);
    sh_schedule_free(&s);
}

/* The same schedule with η = 3 (settable): L = ceil(log_3 235) = 5, S = 235, 79, 27, 9, 3. */
static void test_eta3(void **state)
{
    (void)state;
    int64_t n = 50000;
    sh_schedule s;
    char err[256];
    int64_t c, b;
    assert_int_equal(sh_get_bounds(n, 235, 3, &c, &b, err, sizeof err), 0);
    assert_int_equal(b, 235 * 5);
    assert_int_equal(sh_schedule_make(&s, 235, &n, 1, c, b, 3, err, sizeof err), 0);
    static const int64_t arms[] = {235, 79, 27, 9, 3};
    int64_t sum_p = 0;
    for (int k = 0; k < 5; k++) {
        assert_int_equal(s.rounds[k].models, arms[k]);
        assert_int_equal(s.rounds[k].pulls, b / (arms[k] * 5));
        sum_p += s.rounds[k].cum_pulls;
    }
    assert_int_equal(s.rounds[4].keep, 1);
    assert_int_equal(c, (n + sum_p - 1) / sum_p);
    assert_int_equal(s.rounds[4].prefix[0], n);
    assert_true(s.rounds[3].prefix[0] < n); /* the smallest chunk: only the last round sees all */
    sh_schedule_free(&s);
}

/* η = 3 on a small case, every number by hand (ETA 3 in a query): M = 10, N = 1000, C = 10,
 * B = 60. L = ceil(log_3 10) = 3 (3² = 9 < 10 ≤ 27); S = 10, ceil(10/3) = 4, ceil(4/3) = 2;
 * r_k = floor(60 / (S_k · 3)) = 2, 5, 10; P = 2, 7, 17; T = 10·2 = 20, 10·(2+7) = 90,
 * 10·(2+7+17) = 260; new rows 20, 70, 170; pulls 10·2 + 4·5 + 2·10 = 60; model rows
 * 10·20 + 4·70 + 2·170 = 820. AUTO: B = 10·3 = 30, r = 1, 2, 5, ΣP = 1 + 3 + 8 = 12,
 * C = ceil(1000/12) = 84: prefixes 84, 336, min(1008, 1000). */
static void test_eta3_by_hand(void **state)
{
    (void)state;
    int64_t n = 1000;
    sh_schedule s;
    char err[256] = "";
    assert_int_equal(sh_schedule_make(&s, 10, &n, 1, 10, 60, 3, err, sizeof err), 0);
    assert_int_equal(s.eta, 3);
    assert_int_equal(s.n_rounds, 3);
    static const int64_t models[] = {10, 4, 2}, keep[] = {4, 2, 1}, pulls[] = {2, 5, 10},
                         cum[] = {2, 7, 17}, prefix[] = {20, 90, 260}, fresh[] = {20, 70, 170};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(s.rounds[k].models, models[k]);
        assert_int_equal(s.rounds[k].keep, keep[k]);
        assert_int_equal(s.rounds[k].pulls, pulls[k]);
        assert_int_equal(s.rounds[k].cum_pulls, cum[k]);
        assert_int_equal(s.rounds[k].prefix[0], prefix[k]);
        assert_int_equal(s.rounds[k].new_total, fresh[k]);
    }
    assert_int_equal(s.pulls_spent, 60);
    assert_int_equal(s.model_rows, 820);
    sh_schedule_free(&s);
    /* B = 29 < B_min = 30 */
    assert_int_equal(sh_schedule_make(&s, 10, &n, 1, 10, 29, 3, err, sizeof err), -1);

    int64_t c, b;
    sh_bound au = {SH_BOUND_AUTO, 0};
    assert_int_equal(sh_auto_bounds(n, 10, 3, au, au, &c, &b, err, sizeof err), 0);
    assert_int_equal(b, 30);
    assert_int_equal(c, 84);
    assert_int_equal(sh_schedule_make(&s, 10, &n, 1, c, b, 3, err, sizeof err), 0);
    static const int64_t auto_prefix[] = {84, 336, 1000};
    for (int k = 0; k < 3; k++)
        assert_int_equal(s.rounds[k].prefix[0], auto_prefix[k]);

    /* Selection keeps ceil(S_k/3): errs of round 0 are 0.0, 0.1, …, 0.9 reversed (model 9
     * best); 4 go on (9, 8, 7, 6), then 2 (by the round-1 errs: 6 and 8), then 1 (8). */
    double errs[3 * 10];
    for (int m = 0; m < 10; m++) {
        errs[m] = (9 - m) / 10.0;
        errs[10 + m] = errs[20 + m] = 9;
    }
    errs[10 + 6] = 0.1; errs[10 + 8] = 0.2; errs[10 + 9] = 0.3; errs[10 + 7] = 0.4;
    errs[20 + 6] = 0.5; errs[20 + 8] = 0.4;
    sh_ranked rk[10];
    bool al[10];
    assert_int_equal(sh_select(&s, 1, errs, rk, al, err, sizeof err), 0);
    for (int m = 0; m < 10; m++)
        assert_int_equal(al[m], m >= 6);
    assert_int_equal(sh_select(&s, 3, errs, rk, al, err, sizeof err), 0);
    static const size_t order[] = {8, 6, 9, 7, 5, 4, 3, 2, 1, 0};
    static const int survived[] = {3, 2, 1, 1, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rk[i].model, order[i]);
        assert_int_equal(rk[i].survived, survived[i]);
    }
    assert_int_equal(rk[0].train_rows, 1000);
    assert_int_equal(rk[2].train_rows, 336);
    sh_schedule_free(&s);
}

/* ---- AUTO ---------------------------------------------------------------------------------- */

static void test_get_bounds_examples(void **state)
{
    (void)state;
    /* §5.8 get_bounds examples (budget omitted where the spec gives only the chunk: it is
     * M·ceil(log2 M)), and §7.1 params_sh.py with 64 models. */
    static const struct {
        int64_t n, m, b, c;
    } ex[] = {
        {50000, 235, 1880, 112}, {65550, 235, 1880, 147}, {1020, 235, 1880, 3},
        {35126, 235, 1880, 79},  {8551, 65, 455, 51},     {67349, 65, 455, 399},
        {50000, 64, 384, 417},   {1020, 64, 384, 9},      {3060, 64, 384, 26},
        {65550, 64, 384, 547},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        int64_t c = 0, b = 0;
        char err[256] = "";
        assert_int_equal(sh_get_bounds(ex[i].n, ex[i].m, 2, &c, &b, err, sizeof err), 0);
        assert_int_equal(b, ex[i].b);
        assert_int_equal(c, ex[i].c);
        /* CHUNK AUTO BUDGET AUTO, CHUNK AUTO alone, the same */
        int64_t c2, b2;
        sh_bound au = {SH_BOUND_AUTO, 0}, ab = {SH_BOUND_ABSENT, 0};
        assert_int_equal(sh_auto_bounds(ex[i].n, ex[i].m, 0, au, au, &c2, &b2, err, sizeof err), 0);
        assert_int_equal(c2, c);
        assert_int_equal(b2, b);
        assert_int_equal(sh_auto_bounds(ex[i].n, ex[i].m, 0, au, ab, &c2, &b2, err, sizeof err), 0);
        assert_int_equal(c2, c);
        assert_int_equal(b2, b);
        /* Consistency with the chunk convention: the last round sees the whole set, the one
         * before does not, and chunk − 1 would not reach it. */
        sh_schedule s;
        assert_int_equal(sh_schedule_make(&s, ex[i].m, &ex[i].n, 1, c, b, 2, err, sizeof err), 0);
        assert_int_equal(s.rounds[s.n_rounds - 1].prefix[0], ex[i].n);
        assert_int_equal(s.rounds[s.n_rounds - 1].models, 2);
        assert_true(s.rounds[s.n_rounds - 2].prefix[0] < ex[i].n);
        assert_true(s.rounds[s.n_rounds - 1].nominal_rows >= ex[i].n);
        int64_t sum_p = s.rounds[s.n_rounds - 1].nominal_rows / c;
        assert_int_equal(sum_p * c, s.rounds[s.n_rounds - 1].nominal_rows);
        assert_true((c - 1) * sum_p < ex[i].n);
        sh_schedule_free(&s);
    }
}

static void test_auto_mixed_and_default(void **state)
{
    (void)state;
    char err[256] = "";
    int64_t c, b;
    sh_bound au = {SH_BOUND_AUTO, 0}, ab = {SH_BOUND_ABSENT, 0};
    /* SHiFT's default budget, verbatim: ceil(ceil(50000/112) / log2 235) = ceil(447/7.877) */
    assert_int_equal(sh_shift_default_budget(50000, 112, 235, 2), 57);
    /* M a power of η: the division is exact in integers (5000 / 2 = 2500, not 2501) */
    assert_int_equal(sh_shift_default_budget(50000, 10, 4, 2), 2500);
    assert_int_equal(sh_shift_default_budget(50000, 10, 8, 2), 1667);
    assert_int_equal(sh_shift_default_budget(50000, 10, 9, 3), 2500);
    assert_int_equal(sh_shift_default_budget(0, 10, 9, 3), -1);
    assert_int_equal(sh_shift_default_budget(10, 10, 1, 2), -1);
    /* CHUNK n alone: the default, raised to B_min */
    sh_bound c112 = {SH_BOUND_VALUE, 112};
    assert_int_equal(sh_auto_bounds(50000, 235, 2, c112, ab, &c, &b, err, sizeof err), 0);
    assert_int_equal(c, 112);
    assert_int_equal(b, 1880);
    sh_bound c10 = {SH_BOUND_VALUE, 10};
    assert_int_equal(sh_auto_bounds(50000, 4, 2, c10, ab, &c, &b, err, sizeof err), 0);
    assert_int_equal(c, 10);
    assert_int_equal(b, 2500);
    /* CHUNK n BUDGET AUTO: B_min */
    assert_int_equal(sh_auto_bounds(50000, 4, 2, c10, au, &c, &b, err, sizeof err), 0);
    assert_int_equal(c, 10);
    assert_int_equal(b, 8);
    /* CHUNK n BUDGET m: as given */
    sh_bound b3760 = {SH_BOUND_VALUE, 3760};
    assert_int_equal(sh_auto_bounds(50000, 235, 2, c112, b3760, &c, &b, err, sizeof err), 0);
    assert_int_equal(c, 112);
    assert_int_equal(b, 3760);
    /* CHUNK AUTO BUDGET m: chunk so the last round sees the whole set under that budget.
     * r = 3760 / (8·S_k) = 2, 3, 7, 15, 31, 58, 117, 235; P = 2, 5, 12, 27, 58, 116, 233,
     * 468; ΣP = 921; C = ceil(50000 / 921) = 55. */
    assert_int_equal(sh_auto_bounds(50000, 235, 2, au, b3760, &c, &b, err, sizeof err), 0);
    assert_int_equal(b, 3760);
    assert_int_equal(c, 55);
    int64_t n = 50000;
    sh_schedule s;
    assert_int_equal(sh_schedule_make(&s, 235, &n, 1, c, b, 2, err, sizeof err), 0);
    assert_int_equal(s.rounds[7].prefix[0], 50000);
    assert_true(s.rounds[6].prefix[0] < 50000);
    sh_schedule_free(&s);
    /* M = 2: one round, the whole set */
    assert_int_equal(sh_get_bounds(1000, 2, 2, &c, &b, err, sizeof err), 0);
    assert_int_equal(b, 2);
    assert_int_equal(c, 1000);
}

/* ---- proportional chunking ------------------------------------------------------------------ */

static void check_proportional(const sh_schedule *s)
{
    int64_t n = s->total_size;
    for (int k = 0; k < s->n_rounds; k++) {
        const sh_round *r = &s->rounds[k];
        int64_t t = r->nominal_rows, sum = 0, sum_new = 0;
        for (size_t i = 0; i < s->n_datasets; i++) {
            int64_t ni = s->sizes[i];
            int64_t want = t >= n ? ni : (t * ni + n - 1) / n;
            if (want > ni) want = ni;
            assert_int_equal(r->prefix[i], want);
            assert_true(r->prefix[i] >= 1);
            int64_t before = k ? s->rounds[k - 1].prefix[i] : 0;
            assert_true(r->prefix[i] >= before); /* only appends: the cached prefix is reused */
            assert_int_equal(r->new_rows[i], r->prefix[i] - before);
            /* proportional: within one row of T·N_i/N */
            if (t < n) {
                assert_true((double)r->prefix[i] >= (double)t * (double)ni / (double)n);
                assert_true((double)r->prefix[i] < (double)t * (double)ni / (double)n + 1);
            }
            sum += r->prefix[i];
            sum_new += r->new_rows[i];
        }
        assert_int_equal(sum, r->prefix_total);
        assert_int_equal(sum_new, r->new_total);
        int64_t target = t < n ? t : n;
        assert_true(sum >= target);
        assert_true(sum - target < (int64_t)s->n_datasets);
    }
    /* the AUTO chunk's last round sees every dataset whole */
}

static void test_proportional(void **state)
{
    (void)state;
    char err[256] = "";
    /* two datasets, 5:1: CIFAR-100 plus 10000 appended rows, 64 models */
    int64_t two[] = {50000, 10000};
    int64_t c, b;
    assert_int_equal(sh_get_bounds(60000, 64, 2, &c, &b, err, sizeof err), 0);
    assert_int_equal(b, 384);
    assert_int_equal(c, 500); /* 60000 / 120 */
    sh_schedule s;
    assert_int_equal(sh_schedule_make(&s, 64, two, 2, c, b, 2, err, sizeof err), 0);
    check_proportional(&s);
    /* round 0: 500 rows = 417 + 84 (both rounded up, one row over); round 5: everything */
    assert_int_equal(s.rounds[0].prefix[0], 417);
    assert_int_equal(s.rounds[0].prefix[1], 84);
    assert_int_equal(s.rounds[1].prefix[0], 1667); /* T = 2000 */
    assert_int_equal(s.rounds[1].prefix[1], 334);
    assert_int_equal(s.rounds[5].prefix[0], 50000);
    assert_int_equal(s.rounds[5].prefix[1], 10000);
    sh_schedule_free(&s);

    /* three datasets, one tiny: it still gets a row in round 0 */
    int64_t three[] = {1000, 7, 3};
    assert_int_equal(sh_get_bounds(1010, 235, 2, &c, &b, err, sizeof err), 0);
    assert_int_equal(c, 3);
    assert_int_equal(sh_schedule_make(&s, 235, three, 3, c, b, 2, err, sizeof err), 0);
    check_proportional(&s);
    assert_int_equal(s.rounds[0].prefix[0], 3);
    assert_int_equal(s.rounds[0].prefix[1], 1);
    assert_int_equal(s.rounds[0].prefix[2], 1);
    assert_int_equal(s.rounds[7].prefix[0], 1000);
    assert_int_equal(s.rounds[7].prefix[1], 7);
    assert_int_equal(s.rounds[7].prefix[2], 3);
    sh_schedule_free(&s);

    /* random sizes, chunks and budgets: the invariants always hold; one dataset = min(T, N) */
    srand(7);
    for (int it = 0; it < 500; it++) {
        size_t m = 1 + (size_t)(rand() % 3);
        int64_t sz[3], tot = 0;
        for (size_t i = 0; i < m; i++) tot += sz[i] = 1 + rand() % (rand() % 2 ? 100 : 100000);
        int64_t models = 2 + rand() % 300;
        int eta = 2 + rand() % 3;
        int64_t bmin = models * sh_num_rounds(models, eta);
        int64_t bud = bmin + rand() % (3 * bmin);
        int64_t ch = 1 + rand() % 2000;
        assert_int_equal(sh_schedule_make(&s, models, sz, m, ch, bud, eta, err, sizeof err), 0);
        check_proportional(&s);
        assert_true(s.pulls_spent <= bud);
        assert_int_equal(s.rounds[s.n_rounds - 1].keep, 1);
        if (m == 1)
            for (int k = 0; k < s.n_rounds; k++)
                assert_int_equal(s.rounds[k].prefix[0],
                                 s.rounds[k].nominal_rows < tot ? s.rounds[k].nominal_rows : tot);
        sh_schedule_free(&s);
    }
}

/* ---- sh_select against brute force ---------------------------------------------------------- */

/* a before b? err ascending with NaN last, then index */
static int bf_better(double ea, size_t a, double eb, size_t b)
{
    if (isnan(ea) != isnan(eb)) return !isnan(ea);
    if (!isnan(ea) && ea != eb) return ea < eb;
    return a < b;
}

/* Plain SH without sorting: each round, pick the best remaining participant keep times. */
static void brute_force(int64_t m, int eta, int rounds, const double *errs, int *last,
                        int *survived, int *alive, double *lerr)
{
    int *in = malloc((size_t)m * sizeof *in);
    for (int64_t i = 0; i < m; i++) {
        alive[i] = 1;
        last[i] = -1;
        survived[i] = 0;
        lerr[i] = NAN;
    }
    int64_t s = m;
    for (int k = 0; k < rounds; k++) {
        int64_t n = 0;
        for (int64_t i = 0; i < m; i++) {
            in[i] = alive[i];
            if (alive[i]) {
                n++;
                last[i] = k;
                lerr[i] = errs[(size_t)k * (size_t)m + (size_t)i];
                alive[i] = 0;
            }
        }
        assert_int_equal(n, s);
        int64_t keep = (n + eta - 1) / eta;
        for (int64_t j = 0; j < keep; j++) {
            int64_t best = -1;
            for (int64_t i = 0; i < m; i++)
                if (in[i] && (best < 0 || bf_better(lerr[i], (size_t)i, lerr[best], (size_t)best)))
                    best = i;
            in[best] = 0;
            alive[best] = 1;
            survived[best] = k + 1;
        }
        s = keep;
    }
    free(in);
}

static void test_select_brute_force(void **state)
{
    (void)state;
    char err[256] = "";
    for (unsigned seed = 1; seed <= 3000; seed++) {
        srand(seed);
        int64_t m = 2 + rand() % (seed % 10 == 0 ? 400 : 40);
        int eta = 2 + rand() % 3;
        int64_t n = 1000 + rand() % 50000;
        int l = sh_num_rounds(m, eta);
        sh_schedule s;
        int64_t c, b;
        assert_int_equal(sh_get_bounds(n, m, eta, &c, &b, err, sizeof err), 0);
        assert_int_equal(sh_schedule_make(&s, m, &n, 1, c, b, eta, err, sizeof err), 0);
        int rounds = seed % 4 == 0 ? rand() % (l + 1) : l;
        double *errs = malloc((size_t)l * (size_t)m * sizeof *errs);
        int levels = 1 + rand() % 20; /* few levels: many ties */
        for (size_t i = 0; i < (size_t)l * (size_t)m; i++)
            errs[i] = rand() % 50 == 0 ? NAN : (double)(rand() % levels) / levels;
        int *last = malloc((size_t)m * sizeof *last), *surv = malloc((size_t)m * sizeof *surv),
            *alive = malloc((size_t)m * sizeof *alive);
        double *lerr = malloc((size_t)m * sizeof *lerr);
        brute_force(m, eta, rounds, errs, last, surv, alive, lerr);

        sh_ranked *rk = malloc((size_t)m * sizeof *rk);
        bool *al = malloc((size_t)m * sizeof *al);
        assert_int_equal(sh_select(&s, rounds, errs, rk, al, err, sizeof err), 0);
        int64_t n_alive = 0;
        for (int64_t i = 0; i < m; i++) {
            assert_int_equal(al[i], alive[i] != 0);
            n_alive += alive[i];
        }
        assert_int_equal(n_alive, rounds == 0 ? m : s.rounds[rounds - 1].keep);
        if (rounds == l) assert_int_equal(n_alive, 1);
        /* brute-force ranking: position = number of models that rank before */
        for (int64_t pos = 0; pos < m; pos++) {
            size_t i = rk[pos].model;
            assert_true(i < (size_t)m);
            assert_int_equal(rk[pos].last_round, last[i]);
            assert_int_equal(rk[pos].survived, surv[i]);
            assert_int_equal(rk[pos].alive, alive[i] != 0);
            if (isnan(lerr[i])) assert_true(isnan(rk[pos].err));
            else assert_true(rk[pos].err == lerr[i]);
            assert_int_equal(rk[pos].train_rows, last[i] < 0 ? 0 : s.rounds[last[i]].prefix[0]);
            int64_t before = 0;
            for (int64_t j = 0; j < m; j++) {
                if ((size_t)j == i) continue;
                if (surv[j] > surv[i] ||
                    (surv[j] == surv[i] && bf_better(lerr[j], (size_t)j, lerr[i], i)))
                    before++;
            }
            assert_int_equal(before, pos);
        }
        free(rk);
        free(al);
        free(last);
        free(surv);
        free(alive);
        free(lerr);
        free(errs);
        sh_schedule_free(&s);
    }
}

/* A small case by hand: 5 models, η = 2: rounds of 5, 3, 2. Ties go to the earlier model. */
static void test_select_by_hand(void **state)
{
    (void)state;
    char err[256] = "";
    int64_t n = 100, c, b;
    sh_schedule s;
    assert_int_equal(sh_get_bounds(n, 5, 2, &c, &b, err, sizeof err), 0);
    assert_int_equal(sh_schedule_make(&s, 5, &n, 1, c, b, 2, err, sizeof err), 0);
    assert_int_equal(s.n_rounds, 3);
    double errs[3 * 5] = {
        0.5, 0.2, 0.2, NAN, 0.1,   /* round 0: keep 4 (0.1), 1 and 2 (0.2, tie, both kept) */
        9,   0.3, 0.3, 9,   0.4,   /* round 1: 1, 2, 4 run; keep 2: 1 and 2 (tie kept by 0.3) */
        9,   0.6, 0.6, 9,   9,     /* round 2: 1, 2 tie: 1 wins (earlier) */
    };
    sh_ranked rk[5];
    assert_int_equal(sh_select(&s, 3, errs, rk, NULL, err, sizeof err), 0);
    static const size_t order[] = {1, 2, 4, 0, 3};
    static const int survived[] = {3, 2, 1, 0, 0};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rk[i].model, order[i]);
        assert_int_equal(rk[i].survived, survived[i]);
    }
    assert_true(rk[0].alive);
    assert_false(rk[1].alive);
    assert_true(rk[3].err == 0.5);
    assert_true(isnan(rk[4].err)); /* the NaN model goes first and ranks last */
    /* after round 0 only */
    bool al[5];
    assert_int_equal(sh_select(&s, 1, errs, rk, al, err, sizeof err), 0);
    assert_true(al[1] && al[2] && al[4] && !al[0] && !al[3]);
    assert_int_equal(rk[0].model, 4);
    sh_schedule_free(&s);
}

/* ---- cost simulator -------------------------------------------------------------------------- */

static void test_cost_by_hand(void **state)
{
    (void)state;
    char err[256] = "";
    int64_t n = 100, c, b;
    sh_schedule s;
    assert_int_equal(sh_get_bounds(n, 2, 2, &c, &b, err, sizeof err), 0);
    assert_int_equal(sh_schedule_make(&s, 2, &n, 1, c, b, 2, err, sizeof err), 0);
    sh_cost_model m[2] = {{1000, 10}, {1000, 10}};
    sh_cost out;
    assert_int_equal(sh_cost_simulate(&s, m, 2, 25, SH_COST_NN, 1, &out, err, sizeof err), 0);
    /* no SH: 2 · (800 + 700 + 2·1000 + 10·125 + 0.1·25) */
    assert_true(fabs(out.no_sh_ms - 9505.0) < 1e-9);
    /* SH: test 2 · (10·25 + 700 + 1000) + round 0: 2 · (700 + 1000 + 10·100 + 2.5 + 800) */
    assert_true(fabs(out.sh_test_ms - 3900.0) < 1e-9);
    assert_true(fabs(out.sh_ms - 10905.0) < 1e-9);
    assert_true(fabs(out.sh_best_ms - 10905.0) < 1e-9);
    assert_true(fabs(out.sh_worst_ms - 10905.0) < 1e-9);
    assert_int_equal(sh_cost_simulate(&s, m, 2, 25, SH_COST_NN, 8, &out, err, sizeof err), 0);
    assert_true(fabs(out.no_sh_ms - 9505.0 / 8) < 1e-9);
    assert_true(fabs(out.sh_ms - (3900.0 / 8 + 7005.0 / 2)) < 1e-9);
    /* linear proxy: 5 ms per test sample */
    assert_int_equal(sh_cost_simulate(&s, m, 2, 25, SH_COST_LINEAR, 1, &out, err, sizeof err), 0);
    assert_true(fabs(out.no_sh_ms - (9505.0 + 2 * 25 * 4.9)) < 1e-9);
    sh_schedule_free(&s);

    /* the worked example with unequal models: best ≤ average-ish ≤ worst, SH cheaper */
    n = 50000;
    assert_int_equal(sh_schedule_make(&s, 235, &n, 1, 112, 1880, 2, err, sizeof err), 0);
    sh_cost_model *pool = malloc(235 * sizeof *pool);
    for (int i = 0; i < 235; i++) pool[i] = (sh_cost_model){2000 + 10 * i, 6 + 0.6 * i};
    assert_int_equal(sh_cost_simulate(&s, pool, 235, 10000, SH_COST_NN, 1, &out, err, sizeof err), 0);
    assert_true(out.sh_best_ms < out.sh_ms && out.sh_ms < out.sh_worst_ms);
    assert_true(out.sh_worst_ms < out.no_sh_ms);
    assert_true(out.sh_test_ms < out.sh_best_ms);
    assert_int_equal(sh_cost_simulate(&s, pool, 234, 10000, SH_COST_NN, 1, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "234 model costs"));
    assert_int_equal(sh_cost_simulate(&s, pool, 235, 10000, SH_COST_NN, 0, &out, err, sizeof err), -1);
    pool[3].infer_ms = NAN;
    assert_int_equal(sh_cost_simulate(&s, pool, 235, 10000, SH_COST_NN, 1, &out, err, sizeof err), -1);
    free(pool);
    sh_schedule_free(&s);
}

/* ---- invalid inputs -------------------------------------------------------------------------- */

#define EXPECT_FAIL(call, text)                                                                 \
    do {                                                                                        \
        err[0] = 0;                                                                             \
        assert_int_equal((call), -1);                                                           \
        if (!strstr(err, (text))) fail_msg("error \"%s\" lacks \"%s\"", err, (text));           \
    } while (0)

static void test_invalid(void **state)
{
    (void)state;
    char err[256];
    sh_schedule s;
    int64_t n = 50000, zero = 0, two[] = {100, -1};
    EXPECT_FAIL(sh_schedule_make(&s, 1, &n, 1, 112, 1880, 2, err, sizeof err), "at least 2 models");
    EXPECT_FAIL(sh_schedule_make(&s, 0, &n, 1, 112, 1880, 2, err, sizeof err), "at least 2 models");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 0, 112, 1880, 2, err, sizeof err), "at least one training dataset");
    EXPECT_FAIL(sh_schedule_make(&s, 235, NULL, 1, 112, 1880, 2, err, sizeof err), "at least one training dataset");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &zero, 1, 112, 1880, 2, err, sizeof err), "training dataset 1 has 0 rows");
    EXPECT_FAIL(sh_schedule_make(&s, 235, two, 2, 112, 1880, 2, err, sizeof err), "training dataset 2 has -1 rows");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 1, 0, 1880, 2, err, sizeof err), "CHUNK must be a positive");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 1, -3, 1880, 2, err, sizeof err), "CHUNK must be a positive");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 1, 112, 0, 2, err, sizeof err), "BUDGET must be a positive");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 1, 112, 1879, 2, err, sizeof err),
                "BUDGET 1879 is too small for 235 models: the first round would get no pull; the smallest budget is 1880");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 1, 112, SH_MAX_BUDGET + 1, 2, err, sizeof err), "supported");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 1, 112, 1880, 1, err, sizeof err), "eta must be an integer from 2 to 64, not 1");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 1, 112, 1880, 65, err, sizeof err), "eta must be");
    EXPECT_FAIL(sh_schedule_make(&s, SH_MAX_MODELS + 1, &n, 1, 112, 1880, 2, err, sizeof err), "supported");
    int64_t big[] = {SH_MAX_ROWS, 1};
    EXPECT_FAIL(sh_schedule_make(&s, 235, big, 2, 112, 1880, 2, err, sizeof err), "rows is more than");
    EXPECT_FAIL(sh_schedule_make(&s, 235, &n, 1, SH_MAX_ROWS + 1, 1880, 2, err, sizeof err), "CHUNK");
    assert_null(s.rounds); /* zeroed on failure */
    sh_schedule_free(&s);  /* harmless */

    int64_t c, b;
    sh_bound au = {SH_BOUND_AUTO, 0}, ab = {SH_BOUND_ABSENT, 0}, v0 = {SH_BOUND_VALUE, 0},
             v5 = {SH_BOUND_VALUE, 5};
    EXPECT_FAIL(sh_auto_bounds(n, 235, 2, ab, v5, &c, &b, err, sizeof err), "BUDGET needs CHUNK");
    EXPECT_FAIL(sh_auto_bounds(n, 235, 2, ab, ab, &c, &b, err, sizeof err), "BUDGET needs CHUNK");
    EXPECT_FAIL(sh_auto_bounds(n, 235, 2, v0, au, &c, &b, err, sizeof err), "CHUNK must be a positive");
    EXPECT_FAIL(sh_auto_bounds(n, 235, 2, au, v5, &c, &b, err, sizeof err), "smallest budget is 1880");
    EXPECT_FAIL(sh_auto_bounds(n, 1, 2, au, au, &c, &b, err, sizeof err), "at least 2 models");
    EXPECT_FAIL(sh_auto_bounds(0, 235, 2, au, au, &c, &b, err, sizeof err), "non-empty training set");
    EXPECT_FAIL(sh_get_bounds(n, 235, 1, &c, &b, err, sizeof err), "eta");

    assert_int_equal(sh_schedule_make(&s, 4, &n, 1, 10, 8, 2, err, sizeof err), 0);
    sh_ranked rk[4];
    double errs[8] = {0};
    EXPECT_FAIL(sh_select(&s, 3, errs, rk, NULL, err, sizeof err), "3 rounds done, the schedule has 2");
    EXPECT_FAIL(sh_select(&s, -1, errs, rk, NULL, err, sizeof err), "rounds done");
    EXPECT_FAIL(sh_select(&s, 1, NULL, rk, NULL, err, sizeof err), "no errs");
    assert_int_equal(sh_select(&s, 0, NULL, rk, NULL, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rk[i].model, (size_t)i);
        assert_int_equal(rk[i].last_round, -1);
        assert_true(rk[i].alive);
    }
    sh_schedule_free(&s);

    assert_int_equal(sh_num_rounds(1, 2), 1);
    assert_int_equal(sh_num_rounds(2, 2), 1);
    assert_int_equal(sh_num_rounds(3, 2), 2);
    assert_int_equal(sh_num_rounds(64, 2), 6);
    assert_int_equal(sh_num_rounds(65, 2), 7);
    assert_int_equal(sh_num_rounds(243, 3), 5);
    assert_int_equal(sh_num_rounds(244, 3), 6);
    assert_int_equal(sh_num_rounds(0, 2), 0);
    assert_int_equal(sh_num_rounds(5, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_eta3),
        cmocka_unit_test(test_eta3_by_hand),
        cmocka_unit_test(test_get_bounds_examples),
        cmocka_unit_test(test_auto_mixed_and_default),
        cmocka_unit_test(test_proportional),
        cmocka_unit_test(test_select_by_hand),
        cmocka_unit_test(test_select_brute_force),
        cmocka_unit_test(test_cost_by_hand),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
