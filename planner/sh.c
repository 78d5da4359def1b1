/* Successive halving: schedule, AUTO bounds, selection and ranking (planner/sh.h has the
 * conventions). Pure integer arithmetic except for the errs and SHiFT's log-based default
 * budget. */
#include "planner/sh.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen,
                                                      const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
    if (a <= 0 || b <= 0) return 0;
    if (a > INT64_MAX / b) return INT64_MAX;
    return a * b;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

int sh_num_rounds(int64_t n_models, int eta)
{
    if (n_models < 1 || eta < 2) return 0;
    int l = 0;
    int64_t p = 1;
    while (p < n_models) {
        p = sat_mul(p, eta);
        l++;
    }
    return l < 1 ? 1 : l;
}

/* The per-round pulls of M models under budget B: fills r[0..L-1] (when r is not NULL)
 * and returns Σ_k P_k (saturating), or -1 when r_0 = 0. */
static int64_t pulls_of(int64_t m, int64_t budget, int eta, int64_t *r)
{
    int l = sh_num_rounds(m, eta);
    int64_t s = m, cum = 0, sum_cum = 0;
    for (int k = 0; k < l; k++) {
        int64_t rk = budget / sat_mul(s, l);
        if (rk == 0) return -1;
        cum = sat_add(cum, rk);
        sum_cum = sat_add(sum_cum, cum);
        if (r) r[k] = rk;
        s = ceil_div(s, eta);
    }
    return sum_cum;
}

static int check_common(int64_t n_models, int64_t total_size, int eta, char *err,
                        size_t errlen)
{
    if (eta < 2 || eta > SH_ETA_MAX)
        return fail(err, errlen, "successive halving: eta must be an integer from 2 to %d, not %d",
                    SH_ETA_MAX, eta);
    if (n_models < 2)
        return fail(err, errlen,
                    "successive halving needs at least 2 models, the query has %" PRId64,
                    n_models);
    if (n_models > SH_MAX_MODELS)
        return fail(err, errlen,
                    "successive halving: %" PRId64 " models is more than the %d supported",
                    n_models, SH_MAX_MODELS);
    if (total_size < 1)
        return fail(err, errlen, "successive halving needs a non-empty training set");
    if (total_size > SH_MAX_ROWS)
        return fail(err, errlen,
                    "successive halving: a training set of %" PRId64
                    " rows is more than the %" PRId64 " supported",
                    total_size, SH_MAX_ROWS);
    return 0;
}

static int64_t budget_min(int64_t n_models, int eta)
{
    return n_models * sh_num_rounds(n_models, eta);
}

static int check_budget(int64_t n_models, int eta, int64_t budget, char *err, size_t errlen)
{
    int64_t bmin = budget_min(n_models, eta);
    if (budget < 1)
        return fail(err, errlen, "BUDGET must be a positive number of pulls, not %" PRId64,
                    budget);
    if (budget > SH_MAX_BUDGET)
        return fail(err, errlen, "BUDGET %" PRId64 " is more than the %" PRId64 " supported",
                    budget, SH_MAX_BUDGET);
    if (budget < bmin)
        return fail(err, errlen,
                    "BUDGET %" PRId64 " is too small for %" PRId64
                    " models: the first round would get no pull; the smallest budget is "
                    "%" PRId64 " (models x ceil(log_%d models) rounds), or use BUDGET AUTO",
                    budget, n_models, bmin, eta);
    return 0;
}

static int check_chunk(int64_t chunk, char *err, size_t errlen)
{
    if (chunk < 1)
        return fail(err, errlen, "CHUNK must be a positive number of rows, not %" PRId64,
                    chunk);
    if (chunk > SH_MAX_ROWS)
        return fail(err, errlen, "CHUNK %" PRId64 " is more than the %" PRId64 " supported",
                    chunk, SH_MAX_ROWS);
    return 0;
}

void sh_schedule_free(sh_schedule *s)
{
    if (!s) return;
    if (s->rounds)
        for (int k = 0; k < s->n_rounds; k++) {
            free(s->rounds[k].prefix);
            free(s->rounds[k].new_rows);
        }
    free(s->rounds);
    free(s->sizes);
    memset(s, 0, sizeof *s);
}

int sh_schedule_make(sh_schedule *out, int64_t n_models, const int64_t *sizes,
                     size_t n_datasets, int64_t chunk, int64_t budget, int eta, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (eta == 0) eta = SH_ETA_DEFAULT;
    if (n_datasets < 1 || !sizes)
        return fail(err, errlen, "successive halving needs at least one training dataset");
    if (n_datasets > SH_MAX_DATASETS)
        return fail(err, errlen,
                    "successive halving: %zu training datasets is more than the %d supported",
                    n_datasets, SH_MAX_DATASETS);
    int64_t total = 0;
    for (size_t i = 0; i < n_datasets; i++) {
        if (sizes[i] < 1)
            return fail(err, errlen,
                        "successive halving: training dataset %zu has %" PRId64
                        " rows; every training dataset needs at least one",
                        i + 1, sizes[i]);
        if (sizes[i] > SH_MAX_ROWS) total = SH_MAX_ROWS + 1;
        else total = sat_add(total, sizes[i]);
    }
    if (check_common(n_models, total, eta, err, errlen) < 0) return -1;
    if (check_chunk(chunk, err, errlen) < 0) return -1;
    if (check_budget(n_models, eta, budget, err, errlen) < 0) return -1;

    int l = sh_num_rounds(n_models, eta);
    out->n_models = n_models;
    out->chunk = chunk;
    out->budget = budget;
    out->eta = eta;
    out->n_rounds = l;
    out->n_datasets = n_datasets;
    out->sizes = xmalloc(n_datasets * sizeof *out->sizes);
    memcpy(out->sizes, sizes, n_datasets * sizeof *sizes);
    out->total_size = total;
    out->rounds = xcalloc((size_t)l, sizeof *out->rounds);

    int64_t s = n_models, cum = 0, sum_cum = 0;
    for (int k = 0; k < l; k++) {
        sh_round *r = &out->rounds[k];
        r->k = k;
        r->models = s;
        r->keep = ceil_div(s, eta);
        r->pulls = budget / sat_mul(s, l); /* ≥ 1: checked by B ≥ B_min */
        cum = sat_add(cum, r->pulls);
        sum_cum = sat_add(sum_cum, cum);
        r->cum_pulls = cum;
        r->pulls_spent = s * r->pulls; /* ≤ B / L */
        r->nominal_rows = sat_mul(chunk, sum_cum);
        r->prefix = xmalloc(n_datasets * sizeof *r->prefix);
        r->new_rows = xmalloc(n_datasets * sizeof *r->new_rows);
        for (size_t i = 0; i < n_datasets; i++) {
            int64_t n;
            if (r->nominal_rows >= total) n = sizes[i];
            else {
                /* T < N ≤ 2^31 and N_i ≤ 2^31: the product fits. */
                n = ceil_div(r->nominal_rows * sizes[i], total);
                if (n > sizes[i]) n = sizes[i];
            }
            int64_t before = k ? out->rounds[k - 1].prefix[i] : 0;
            r->prefix[i] = n;
            r->new_rows[i] = n - before;
            r->prefix_total += n;
            r->new_total += n - before;
        }
        out->pulls_spent += r->pulls_spent;
        out->model_rows += s * r->new_total;
        s = r->keep;
    }
    return 0;
}

int64_t sh_prefix_intent_rows(const sh_schedule *s, int k)
{
    if (!s || k < 0 || k >= s->n_rounds) return 0;
    return sat_mul(s->chunk, s->rounds[k].cum_pulls);
}

/* ---- AUTO ------------------------------------------------------------------------------- */

int sh_get_bounds(int64_t total_size, int64_t n_models, int eta, int64_t *chunk,
                  int64_t *budget, char *err, size_t errlen)
{
    if (eta == 0) eta = SH_ETA_DEFAULT;
    if (check_common(n_models, total_size, eta, err, errlen) < 0) return -1;
    int64_t b = budget_min(n_models, eta);
    int64_t sp = pulls_of(n_models, b, eta, NULL); /* ≥ 1 at B_min */
    *budget = b;
    *chunk = ceil_div(total_size, sp);
    return 0;
}

int64_t sh_shift_default_budget(int64_t total_size, int64_t chunk, int64_t n_models, int eta)
{
    if (eta == 0) eta = SH_ETA_DEFAULT;
    if (total_size < 1 || chunk < 1 || n_models < 2 || eta < 2) return -1;
    int64_t pulls = ceil_div(total_size, chunk);
    /* log_η M: exact in integers when M is a power of η (the quotient may then be an
     * integer, which floating point could push past). */
    int l = sh_num_rounds(n_models, eta);
    int64_t p = 1;
    for (int k = 0; k < l; k++) p = sat_mul(p, eta);
    if (p == n_models) return ceil_div(pulls, l);
    double logm = eta == 2 ? log2((double)n_models) : log((double)n_models) / log((double)eta);
    return (int64_t)ceil((double)pulls / logm);
}

int sh_auto_bounds(int64_t total_size, int64_t n_models, int eta, sh_bound chunk,
                   sh_bound budget, int64_t *chunk_out, int64_t *budget_out, char *err,
                   size_t errlen)
{
    if (eta == 0) eta = SH_ETA_DEFAULT;
    if (chunk.kind == SH_BOUND_ABSENT)
        return fail(err, errlen,
                    "BUDGET needs CHUNK: successive halving is turned on by CHUNK n or CHUNK AUTO");
    if (check_common(n_models, total_size, eta, err, errlen) < 0) return -1;
    if (chunk.kind == SH_BOUND_VALUE && check_chunk(chunk.value, err, errlen) < 0) return -1;
    if (budget.kind == SH_BOUND_VALUE &&
        check_budget(n_models, eta, budget.value, err, errlen) < 0)
        return -1;

    int64_t bmin = budget_min(n_models, eta);
    int64_t b;
    if (budget.kind == SH_BOUND_VALUE) b = budget.value;
    else if (chunk.kind == SH_BOUND_AUTO || budget.kind == SH_BOUND_AUTO) b = bmin;
    else {
        b = sh_shift_default_budget(total_size, chunk.value, n_models, eta);
        if (b < bmin) b = bmin;
        if (b > SH_MAX_BUDGET) b = SH_MAX_BUDGET; /* C = 1 on huge sets: still ≥ B_min */
    }
    int64_t c;
    if (chunk.kind == SH_BOUND_VALUE) c = chunk.value;
    else c = ceil_div(total_size, pulls_of(n_models, b, eta, NULL));
    *chunk_out = c;
    *budget_out = b;
    return 0;
}

/* ---- selection -------------------------------------------------------------------------- */

typedef struct cand {
    size_t model;
    double err;
} cand;

/* err ascending, NaN last, then model index ascending: a total order. */
static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    bool xn = isnan(x->err), yn = isnan(y->err);
    if (xn != yn) return xn ? 1 : -1;
    if (!xn && x->err != y->err) return x->err < y->err ? -1 : 1;
    return (x->model > y->model) - (x->model < y->model);
}

static int ranked_cmp(const void *a, const void *b)
{
    const sh_ranked *x = a, *y = b;
    if (x->survived != y->survived) return x->survived > y->survived ? -1 : 1;
    cand cx = {x->model, x->err}, cy = {y->model, y->err};
    return cand_cmp(&cx, &cy);
}

int sh_select(const sh_schedule *s, int rounds_done, const double *errs, sh_ranked *ranked,
              bool *alive_out, char *err, size_t errlen)
{
    if (!s || !s->rounds || !ranked)
        return fail(err, errlen, "sh_select: no schedule");
    if (rounds_done < 0 || rounds_done > s->n_rounds)
        return fail(err, errlen, "sh_select: %d rounds done, the schedule has %d", rounds_done,
                    s->n_rounds);
    if (rounds_done > 0 && !errs) return fail(err, errlen, "sh_select: no errs");
    size_t m = (size_t)s->n_models;
    for (size_t i = 0; i < m; i++)
        ranked[i] = (sh_ranked){.model = i, .last_round = -1, .survived = 0, .alive = true,
                                .err = NAN, .train_rows = 0};
    cand *c = xmalloc(m * sizeof *c);
    size_t n = 0;
    for (int k = 0; k < rounds_done; k++) {
        const sh_round *r = &s->rounds[k];
        n = 0;
        for (size_t i = 0; i < m; i++)
            if (ranked[i].alive) {
                double e = errs[(size_t)k * m + i];
                c[n++] = (cand){i, e};
                ranked[i].last_round = k;
                ranked[i].err = e;
                ranked[i].train_rows = r->prefix_total;
            }
        if ((int64_t)n != r->models) { /* cannot happen: the schedule's S_k */
            free(c);
            return fail(err, errlen, "sh_select: round %d has %zu models, the schedule %" PRId64,
                        k, n, r->models);
        }
        qsort(c, n, sizeof *c, cand_cmp);
        for (size_t j = 0; j < n; j++) {
            if ((int64_t)j < r->keep) ranked[c[j].model].survived = k + 1;
            else ranked[c[j].model].alive = false;
        }
    }
    free(c);
    if (alive_out)
        for (size_t i = 0; i < m; i++) alive_out[i] = ranked[i].alive;
    qsort(ranked, m, sizeof *ranked, ranked_cmp);
    return 0;
}

/* ---- cost simulator --------------------------------------------------------------------- */

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sh_cost_simulate(const sh_schedule *s, const sh_cost_model *costs, size_t n_models,
                     int64_t n_test, sh_cost_proxy proxy, int devices, sh_cost *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!s || !s->rounds) return fail(err, errlen, "sh_cost_simulate: no schedule");
    if (!costs || n_models != (size_t)s->n_models)
        return fail(err, errlen, "sh_cost_simulate: %zu model costs for a schedule of %" PRId64
                    " models", n_models, s->n_models);
    if (n_test < 0) return fail(err, errlen, "sh_cost_simulate: negative test size");
    if (devices < 1) return fail(err, errlen, "sh_cost_simulate: devices must be at least 1");
    for (size_t i = 0; i < n_models; i++)
        if (!(costs[i].load_ms >= 0) || !(costs[i].infer_ms >= 0) || isinf(costs[i].load_ms) ||
            isinf(costs[i].infer_ms))
            return fail(err, errlen, "sh_cost_simulate: model %zu has an invalid cost", i);
    double tp = proxy == SH_COST_LINEAR ? SH_COST_T_LINEAR_MS : SH_COST_T_NN_MS;
    double nt = (double)n_test, ntrain = (double)s->total_size, dev = devices;
    double no_sh = 0, test = 0, mean_load = 0, mean_inf = 0;
    for (size_t i = 0; i < n_models; i++) {
        const sh_cost_model *c = &costs[i];
        no_sh += SH_COST_T_O_MS + SH_COST_T_LOAD_DATA_MS + 2 * c->load_ms +
                 c->infer_ms * (ntrain + nt) + tp * nt;
        test += c->infer_ms * nt + SH_COST_T_LOAD_DATA_MS + c->load_ms;
        mean_load += c->load_ms;
        mean_inf += c->infer_ms;
    }
    mean_load /= (double)n_models;
    mean_inf /= (double)n_models;
    out->no_sh_ms = no_sh / dev;
    out->sh_test_ms = test / dev;
    double avg = 0, best = 0, worst = 0;
    double *rc = xmalloc(n_models * sizeof *rc);
    for (int k = 0; k < s->n_rounds; k++) {
        const sh_round *r = &s->rounds[k];
        double fixed = SH_COST_T_LOAD_DATA_MS + tp * nt + SH_COST_T_O_MS;
        double newk = (double)r->new_total;
        double par = (double)(r->models < devices ? r->models : devices);
        avg += (double)r->models * (fixed + mean_load + mean_inf * newk) / par;
        for (size_t i = 0; i < n_models; i++)
            rc[i] = fixed + costs[i].load_ms + costs[i].infer_ms * newk;
        qsort(rc, n_models, sizeof *rc, dbl_cmp);
        double lo = 0, hi = 0;
        for (int64_t j = 0; j < r->models; j++) {
            lo += rc[j];
            hi += rc[n_models - 1 - (size_t)j];
        }
        best += lo / par;
        worst += hi / par;
    }
    free(rc);
    out->sh_ms = out->sh_test_ms + avg;
    out->sh_best_ms = out->sh_test_ms + best;
    out->sh_worst_ms = out->sh_test_ms + worst;
    return 0;
}
