/* The cost model of task-aware plans: formulas in cost.h. */
#include "planner/cost.h"

#include <string.h>
#include <strings.h>

const char *cost_source_name(cost_source s)
{
    switch (s) {
    case COST_SRC_MEASURED: return "measured";
    case COST_SRC_CHECK: return "check";
    case COST_SRC_PARAMS: return "num_params";
    default: return "default";
    }
}

cost_rate cost_rate_of(double measured_spr, const char *device, double latency_ms,
                       int64_t num_params)
{
    cost_rate r = {COST_DEFAULT_SECONDS_PER_ROW, COST_SRC_DEFAULT, false, COST_JOB_OVERHEAD_S,
                   false};
    if (measured_spr >= 0) {
        r.seconds_per_row = measured_spr;
        r.source = COST_SRC_MEASURED;
        r.gpu = device && (strncasecmp(device, "cuda", 4) == 0 || strncasecmp(device, "gpu", 3) == 0);
    } else if (latency_ms >= 0) {
        r.seconds_per_row = latency_ms / 1e3;
        r.source = COST_SRC_CHECK;
    } else if (num_params > 0) {
        r.seconds_per_row = 2.0 * (double)num_params / COST_CPU_FLOPS;
        r.source = COST_SRC_PARAMS;
    }
    return r;
}

bool cost_rate_fit(cost_rate *r, int64_t n, double sum_rows, double sum_seconds,
                   double sum_rows_sq, double sum_rows_seconds)
{
    double nn = (double)n;
    double den = nn * sum_rows_sq - sum_rows * sum_rows;
    /* Equal sizes leave den at rounding noise: demand a spread well above it. */
    if (n < 2 || !(sum_rows > 0) || !(den > 1e-9 * nn * sum_rows_sq))
        return false;
    double b = (nn * sum_rows_seconds - sum_rows * sum_seconds) / den;
    double a = (sum_seconds - b * sum_rows) / nn;
    if (b < 0) {
        b = 0;
        a = sum_seconds / nn;
    } else if (a < 0) {
        a = 0;
        b = sum_rows_seconds / sum_rows_sq;
    }
    r->seconds_per_row = b;
    r->job_seconds = a;
    r->fitted = true;
    return true;
}

bool cost_proxy_of(const char *name, cost_proxy *out)
{
    static const struct { const char *name; cost_proxy p; } known[] = {
        {"nn", COST_PROXY_NN},         {"linear", COST_PROXY_LINEAR},
        {"logme", COST_PROXY_LOGME},   {"hscore", COST_PROXY_HSCORE},
        {"leep", COST_PROXY_LEEP},
    };
    for (size_t i = 0; name && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].name, name) == 0) {
            *out = known[i].p;
            return true;
        }
    return false;
}

double cost_proxy_flops(cost_proxy p, int64_t n_train, int64_t n_test, int64_t d, int64_t c,
                        int64_t epochs)
{
    double n = n_train > 0 ? (double)n_train : 0, m = n_test > 0 ? (double)n_test : 0;
    double dd = d > 0 ? (double)d : COST_DEFAULT_DIM;
    double cc = c > 0 ? (double)c : COST_DEFAULT_CLASSES;
    double ep = epochs > 0 ? (double)epochs : COST_DEFAULT_EPOCHS;
    switch (p) {
    case COST_PROXY_NN: return 2 * n * m * dd;
    case COST_PROXY_LINEAR: return 6 * ep * n * dd * cc + 2 * m * dd * cc;
    case COST_PROXY_LOGME:
    case COST_PROXY_HSCORE: return 2 * n * dd * dd + 10 * dd * dd * dd;
    case COST_PROXY_LEEP: return 2 * n * dd * cc;
    }
    return 0;
}

double cost_proxy_seconds(cost_proxy p, int64_t n_train, int64_t n_test, int64_t d, int64_t c,
                          int64_t epochs)
{
    return cost_proxy_flops(p, n_train, n_test, d, c, epochs) / COST_CPU_FLOPS +
           COST_JOB_OVERHEAD_S;
}

double cost_embed_seconds(double seconds_per_row, int64_t rows)
{
    return cost_embed_job_seconds(seconds_per_row, COST_JOB_OVERHEAD_S, rows);
}

double cost_embed_job_seconds(double seconds_per_row, double job_seconds, int64_t rows)
{
    return (rows > 0 ? (double)rows * seconds_per_row : 0) + job_seconds;
}

static double job_of(const cost_task *t, size_t m)
{
    return t->job_seconds && t->job_seconds[m] >= 0 ? t->job_seconds[m] : COST_JOB_OVERHEAD_S;
}

static int64_t dim_of(const cost_task *t, size_t m)
{
    return t->dims && t->dims[m] > 0 ? t->dims[m] : COST_DEFAULT_DIM;
}

static int64_t fit_of(const cost_task *t, size_t m)
{
    return t->fit_rows && t->fit_rows[m] > 0 ? t->fit_rows[m] : 0;
}

double cost_full_seconds(const cost_task *t)
{
    double total = 0;
    for (size_t m = 0; m < t->n_models; m++) {
        double spr = t->seconds_per_row[m];
        total += cost_embed_job_seconds(spr, job_of(t, m), t->n_train + fit_of(t, m));
        if (!(t->test_cached && t->test_cached[m]))
            total += cost_embed_job_seconds(spr, job_of(t, m), t->n_test + fit_of(t, m));
        total += cost_proxy_seconds(t->proxy, t->n_train, t->n_test, dim_of(t, m), t->classes,
                                    t->epochs);
    }
    return total;
}

int cost_sh_seconds(const cost_task *t, const sh_schedule *s, cost_sh *out)
{
    memset(out, 0, sizeof *out);
    if (!s || (int64_t)t->n_models != s->n_models || t->n_models == 0 ||
        s->n_rounds > SH_MAX_ROUNDS)
        return -1;
    for (size_t m = 0; m < t->n_models; m++)
        if (!(t->test_cached && t->test_cached[m]))
            out->test_s += cost_embed_job_seconds(t->seconds_per_row[m], job_of(t, m),
                                                  t->n_test + fit_of(t, m));
    double M = (double)t->n_models;
    for (int k = 0; k < s->n_rounds; k++) {
        const sh_round *r = &s->rounds[k];
        double all = 0;
        for (size_t m = 0; m < t->n_models; m++) {
            if (r->new_total > 0)
                all += cost_embed_job_seconds(t->seconds_per_row[m], job_of(t, m),
                                              r->new_total + fit_of(t, m));
            all += cost_proxy_seconds(t->proxy, r->prefix_total, t->n_test, dim_of(t, m),
                                      t->classes, t->epochs);
        }
        out->round_s[k] = (double)r->models / M * all;
        out->rounds_s += out->round_s[k];
    }
    out->total_s = out->test_s + out->rounds_s;
    return 0;
}
