/* What does successive halving save? The SH cost simulator of shift-spec §7.1
 * (planner/sh.h: sh_cost_simulate, SHiFT's client/simulator/cost_sh.py constants: 700 ms
 * data load and 800 ms overhead per job, NN proxy 0.1 ms and linear proxy 5 ms per test
 * sample) on the settings of §7.1 and §8, with and without SH, on 1 and 8 devices. Chunk and
 * budget are AUTO (SHiFT's get_bounds, planner/sh.h's [impl] chunk convention) except for the
 * CIFAR-100 worked example, which uses the literals of the spec (chunk 112, budget 1880 —
 * the same values). The baseline is the no-SH cost of the same setting on the same number of
 * devices, computed in the same run; the ratio columns are SH / no-SH (< 1: SH is cheaper).
 *
 * SHiFT's per-model costs (resources/cost_model.csv) are not public, so the model pools are
 * synthetic, from the per-sample inference costs the supplementary tables quote:
 *   vision pool: inference log-uniform from 6 ms (MobileNet) to 151 ms (EfficientNet-B7);
 *   text pool:   inference log-uniform from 17 ms (BERT-base-sized) to 55 ms (bert-large);
 *   ResNet-v2-101 copies: 40 ms each (an assumption);
 * and loading a model costs 1000 ms + 40 × its per-sample inference cost (an assumption).
 * "SH" uses the pool-average model in every round; "best"/"worst" assume the survivors of
 * every round are the cheapest/most expensive models. Deterministic; prints tables, never a
 * verdict.
 *
 *   build/bench/bench_sh
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/sh.h"

static void pool_loguniform(sh_cost_model *p, size_t m, double lo, double hi)
{
    for (size_t i = 0; i < m; i++) {
        double inf = m == 1 ? lo : lo * pow(hi / lo, (double)i / (double)(m - 1));
        p[i] = (sh_cost_model){1000.0 + 40.0 * inf, inf};
    }
}

static void pool_same(sh_cost_model *p, size_t m, double inf)
{
    for (size_t i = 0; i < m; i++) p[i] = (sh_cost_model){1000.0 + 40.0 * inf, inf};
}

static const char *proxy_name(sh_cost_proxy p) { return p == SH_COST_LINEAR ? "linear" : "NN"; }

static void header(void)
{
    printf("%-22s %5s %7s %6s %-6s %5s %6s %3s %10s %10s %10s %10s %7s %7s %7s\n", "setting",
           "M", "N", "test", "proxy", "C", "B", "dev", "noSH h", "SH h", "best h", "worst h",
           "SH/no", "best/no", "worst/no");
}

/* One setting on 1 and 8 devices. chunk/budget 0: AUTO. Returns the SH/no-SH ratio on 1
 * device (average model), or NAN on error. */
static double row(const char *name, const sh_cost_model *pool, size_t m, int64_t n,
                  int64_t n_test, sh_cost_proxy proxy, int64_t chunk, int64_t budget,
                  bool print)
{
    char err[256];
    if (!chunk || !budget) {
        sh_bound au = {SH_BOUND_AUTO, 0};
        if (sh_auto_bounds(n, (int64_t)m, 2, au, au, &chunk, &budget, err, sizeof err) < 0) {
            fprintf(stderr, "bench_sh: %s: %s\n", name, err);
            return NAN;
        }
    }
    sh_schedule s;
    if (sh_schedule_make(&s, (int64_t)m, &n, 1, chunk, budget, 2, err, sizeof err) < 0) {
        fprintf(stderr, "bench_sh: %s: %s\n", name, err);
        return NAN;
    }
    double ratio1 = NAN;
    static const int devs[] = {1, 8};
    for (int d = 0; d < 2; d++) {
        sh_cost c;
        if (sh_cost_simulate(&s, pool, m, n_test, proxy, devs[d], &c, err, sizeof err) < 0) {
            fprintf(stderr, "bench_sh: %s: %s\n", name, err);
            sh_schedule_free(&s);
            return NAN;
        }
        if (d == 0) ratio1 = c.sh_ms / c.no_sh_ms;
        if (print)
            printf("%-22s %5zu %7" PRId64 " %6" PRId64 " %-6s %5" PRId64 " %6" PRId64
                   " %3d %10.3f %10.3f %10.3f %10.3f %7.3f %7.3f %7.3f\n",
                   name, m, n, n_test, proxy_name(proxy), chunk, budget, devs[d],
                   c.no_sh_ms / 3.6e6, c.sh_ms / 3.6e6, c.sh_best_ms / 3.6e6,
                   c.sh_worst_ms / 3.6e6, c.sh_ms / c.no_sh_ms, c.sh_best_ms / c.no_sh_ms,
                   c.sh_worst_ms / c.no_sh_ms);
    }
    sh_schedule_free(&s);
    return ratio1;
}

int main(void)
{
    enum { VISION = 99 };
    sh_cost_model vision[VISION], many[235], text[65], copies[100];
    pool_loguniform(vision, VISION, 6, 151);
    pool_loguniform(many, 235, 6, 151);
    pool_loguniform(text, 65, 17, 55);
    pool_same(copies, 100, 40);

    printf("Simulated cost (shift-spec 7.1), hours; ratios against no SH on the same devices\n\n");
    printf("## Worked example (5.8): CIFAR-100, 235 vision models, chunk 112 budget 1880\n");
    header();
    row("cifar100 235 models", many, 235, 50000, 10000, SH_COST_NN, 112, 1880, true);
    row("cifar100 235 models", many, 235, 50000, 10000, SH_COST_LINEAR, 112, 1880, true);

    printf("\n## Vary N (7.1): 99 vision models, test = 25%% of train, linear proxy, AUTO\n");
    header();
    static const int64_t ns[] = {100, 1000, 10000, 50000, 100000};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "N=%" PRId64, ns[i]);
        row(name, vision, VISION, ns[i], ns[i] / 4, SH_COST_LINEAR, 0, 0, true);
    }

    printf("\n## Vary M (7.1): N = 50000, test 12500, linear proxy, AUTO; one subset shown\n");
    printf("## (the first M of the pool), then the mean 1-device SH/no-SH ratio over 200 random\n");
    printf("## subsets of M models (seeded)\n");
    header();
    static const size_t ms[] = {2, 4, 8, 16, 32, 64, 99};
    double mean_ratio[sizeof ms / sizeof ms[0]];
    srand(42);
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "M=%zu", ms[i]);
        sh_cost_model sub[VISION];
        row(name, vision, ms[i], 50000, 12500, SH_COST_LINEAR, 0, 0, true);
        double sum = 0;
        for (int t = 0; t < 200; t++) {
            size_t idx[VISION];
            for (size_t j = 0; j < VISION; j++) idx[j] = j;
            for (size_t j = 0; j < ms[i]; j++) { /* partial Fisher-Yates */
                size_t r = j + (size_t)rand() % (VISION - j);
                size_t tmp = idx[j];
                idx[j] = idx[r];
                idx[r] = tmp;
                sub[j] = vision[idx[j]];
            }
            sum += row(name, sub, ms[i], 50000, 12500, SH_COST_LINEAR, 0, 0, false);
        }
        mean_ratio[i] = sum / 200;
    }
    printf("mean SH/no-SH (1 device) over 200 subsets:");
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        printf(" M=%zu %.3f%s", ms[i], mean_ratio[i], i + 1 < sizeof ms / sizeof ms[0] ? "," : "\n");

    printf("\n## Copies of one model (7.1): ResNet-v2-101 (40 ms/sample), N = 50000, linear\n");
    header();
    static const size_t cs[] = {2, 10, 50, 100};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%zu copies", cs[i]);
        row(name, copies, cs[i], 50000, 12500, SH_COST_LINEAR, 0, 0, true);
    }

    printf("\n## Supplementary Table 7 settings (8): 65 text models, AUTO\n");
    header();
    row("GLUE/CoLA", text, 65, 8551, 1043, SH_COST_NN, 0, 0, true);
    row("GLUE/CoLA", text, 65, 8551, 1043, SH_COST_LINEAR, 0, 0, true);
    row("GLUE/SST-2", text, 65, 67349, 872, SH_COST_NN, 0, 0, true);
    row("GLUE/SST-2", text, 65, 67349, 872, SH_COST_LINEAR, 0, 0, true);
    return 0;
}
