/* The cost model of task-aware plans (docs/language.md "Cost estimates"): estimated seconds
 * of work for embed and proxy jobs, the cost of a full ranking against successive halving,
 * and the choice between them for `CHUNK AUTO` without BUDGET. Pure computation: the
 * executor gathers the inputs (measured rates from model_costs, catalog fields, dataset
 * sizes, cache hits) and prints the estimates in EXPLAIN.
 *
 * Units: seconds of work of one worker slot (a plan with W slots finishes sooner, both plans
 * alike). Formulas:
 *
 *   embed job     (rows + f) · s_m + a_m                 s_m: seconds per row of model m;
 *                                                        a_m: its fixed seconds per job
 *                                                        (reading and decoding the data
 *                                                        file, loading the model), measured
 *                                                        or T_job;
 *                                                        f: rows a fitted extractor (PCA)
 *                                                        fits on, again in every job
 *   proxy job     F_proxy / R_cpu + T_job                R_cpu = COST_CPU_FLOPS
 *     nn          F = 2 · n_train · n_test · d           (distances as one GEMM)
 *     linear      F = 6 · epochs · n_train · d · c + 2 · n_test · d · c
 *                                                        (per epoch: forward, gradient)
 *     logme       F = 2 · n_train · d² + 10 · d³         (FᵀF and its eigendecomposition)
 *     hscore      F = 2 · n_train · d² + 10 · d³         (covariances and a pseudo-inverse)
 *     leep        F = 2 · n_train · d · c                (the empirical joint)
 *   s_m, in order: measured (model_costs: its finished embed jobs on that device) › the
 *   registration check's latency_ms / 1000 › 2 · num_params / R_cpu (a dense layer's
 *   multiply-adds per sample) › COST_DEFAULT_SECONDS_PER_ROW.
 *   Measured: a least-squares line seconds = a_m + s_m · rows over the model's embed jobs
 *   (cost_rate_fit) when they had different sizes; with one size only, s_m = seconds/rows
 *   and a_m = T_job (the two cannot be told apart).
 *
 * A job whose result is cached costs 0. */
#ifndef RANKQL_PLANNER_COST_H
#define RANKQL_PLANNER_COST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "planner/sh.h"

#define COST_CPU_FLOPS 2e10                 /* sustained FLOP/s of one worker slot */
#define COST_JOB_OVERHEAD_S 0.05            /* claim, read the feature files, store */
#define COST_DEFAULT_SECONDS_PER_ROW 1e-3   /* nothing measured, nothing in the catalog */
#define COST_DEFAULT_DIM 512                /* models without a registered dimension */
#define COST_DEFAULT_CLASSES 10             /* datasets without num_classes */
#define COST_DEFAULT_EPOCHS 100             /* the linear probe's default */

typedef enum cost_source {
    COST_SRC_MEASURED,   /* model_costs */
    COST_SRC_CHECK,      /* models.latency_ms of the registration check */
    COST_SRC_PARAMS,     /* models.num_params */
    COST_SRC_DEFAULT,
} cost_source;

/* "measured", "check", "num_params", "default" */
const char *cost_source_name(cost_source s);

typedef struct cost_rate {
    double seconds_per_row;
    cost_source source;
    bool gpu;            /* measured on a GPU device (cuda…, gpu…) */
    double job_seconds;  /* fixed seconds per embed job: measured intercept, or T_job */
    bool fitted;         /* job_seconds and seconds_per_row come from the least-squares line */
} cost_rate;

/* The rate of one model from what is known (pass measured_spr < 0, latency_ms < 0,
 * num_params ≤ 0 for unknown); device is model_costs.device of the measurement or NULL.
 * job_seconds is T_job. */
cost_rate cost_rate_of(double measured_spr, const char *device, double latency_ms,
                       int64_t num_params);

/* The least-squares line seconds = a + b · rows over n embed jobs given by their sums
 * (Σ rows, Σ seconds, Σ rows², Σ rows · seconds), into r (a measured rate): when the sizes
 * differ (n ≥ 2, n·Σx² − (Σx)² > 0), b = (nΣxy − ΣxΣy) / (nΣx² − (Σx)²), a = (Σy − bΣx)/n;
 * a negative intercept is refitted through the origin (a = 0, b = Σxy/Σx²), a negative slope
 * flat (b = 0, a = Σy/n). Otherwise r keeps b = Σy/Σx and a = T_job. Returns whether a
 * line was fitted. */
bool cost_rate_fit(cost_rate *r, int64_t n, double sum_rows, double sum_seconds,
                   double sum_rows_sq, double sum_rows_seconds);

typedef enum cost_proxy {
    COST_PROXY_NN,
    COST_PROXY_LINEAR,
    COST_PROXY_LOGME,
    COST_PROXY_HSCORE,
    COST_PROXY_LEEP,
} cost_proxy;

/* A proxy_job name (nn, linear, logme, hscore, leep) → its formula; false if unknown. */
bool cost_proxy_of(const char *name, cost_proxy *out);

/* Floating-point operations of one proxy job (formulas above); d, c, epochs ≤ 0 take the
 * defaults. */
double cost_proxy_flops(cost_proxy p, int64_t n_train, int64_t n_test, int64_t d, int64_t c,
                        int64_t epochs);

/* Seconds of one proxy job / one embed job, overhead included. */
double cost_proxy_seconds(cost_proxy p, int64_t n_train, int64_t n_test, int64_t d, int64_t c,
                          int64_t epochs);
double cost_embed_seconds(double seconds_per_row, int64_t rows);
/* … with the model's fixed seconds per job instead of T_job. */
double cost_embed_job_seconds(double seconds_per_row, double job_seconds, int64_t rows);

/* ---- full ranking against successive halving ----------------------------------------- */

/* One ranking by one proxy over M models on N training and n_test test rows. */
typedef struct cost_task {
    size_t n_models;
    const double *seconds_per_row;  /* [n_models] */
    const int64_t *dims;            /* [n_models]; NULL or ≤ 0 entries: COST_DEFAULT_DIM */
    const bool *test_cached;        /* [n_models] or NULL: its test embedding exists */
    /* [n_models] or NULL: rows a fitted extractor (PCA) fits on in every embed job of the
     * model (the first training dataset), 0 for the others. */
    const int64_t *fit_rows;
    int64_t n_train, n_test, classes, epochs;
    cost_proxy proxy;
    const double *job_seconds;      /* [n_models] or NULL: fixed seconds per embed job (T_job) */
} cost_task;

/* Every model embeds all N + n_test rows (two embed jobs) and runs one proxy job:
 *   Σ_m [ embed(N + f_m) + embed(n_test + f_m)·[not test_cached] + proxy(N, n_test, d_m) ]
 * each embed job at the model's own fixed cost (job_seconds[m]).
 * f_m = fit_rows[m]: a fitted extractor fits again in every embed job. */
double cost_full_seconds(const cost_task *t);

typedef struct cost_sh {
    double test_s;       /* Σ_m embed(n_test) over models whose test set is not cached */
    double rounds_s;     /* Σ_k of round_s */
    double total_s;      /* test_s + rounds_s */
    double round_s[SH_MAX_ROUNDS];
} cost_sh;

/* SH with schedule s (for t->n_models models), the survivors of each round costing the pool
 * average: round k = (S_k / M) · Σ_m [ embed(new_k + f_m) + proxy(T_k, n_test, d_m) ], new_k and
 * T_k the round's new and cumulative training rows (s->rounds[k].new_total, prefix_total;
 * no embed job when new_k = 0). Returns 0, or -1 when s does not match t. */
int cost_sh_seconds(const cost_task *t, const sh_schedule *s, cost_sh *out);

/* SH pays off when its estimate is strictly below the full ranking's. */
static inline bool cost_sh_pays(double full_s, double sh_s)
{
    return sh_s < full_s;
}

#endif
