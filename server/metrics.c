/* Counters and a latency histogram under one mutex; rendered as Prometheus text. The label
 * values are bounded (fixed methods and paths, the statuses and error codes rankqld uses),
 * so plain arrays searched linearly are enough. */
#include "server/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Upper bounds in seconds; +Inf is implicit. */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])
#define LABEL_MAX 40
#define MAX_SERIES 512

typedef struct request_series {
    char method[LABEL_MAX], path[LABEL_MAX];
    int status;
    unsigned long long count;
} request_series;

typedef struct histogram {
    char path[LABEL_MAX];
    unsigned long long buckets[NBOUNDS + 1]; /* not cumulative; the last is +Inf */
    unsigned long long count;
    double sum;
} histogram;

typedef struct error_series {
    char code[LABEL_MAX];
    unsigned long long count;
} error_series;

struct metrics {
    pthread_mutex_t lock;
    size_t nreq, nhist, nerr;
    request_series req[MAX_SERIES];
    histogram hist[MAX_SERIES / 16];
    error_series err[MAX_SERIES / 8];
};

metrics *metrics_new(void)
{
    metrics *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static void copy_label(char *dst, const char *src)
{
    snprintf(dst, LABEL_MAX, "%s", src ? src : "");
}

void metrics_observe(metrics *m, const char *method, const char *path, int status,
                     const char *error_code, double seconds)
{
    pthread_mutex_lock(&m->lock);
    size_t i;
    for (i = 0; i < m->nreq; i++)
        if (m->req[i].status == status && strcmp(m->req[i].method, method) == 0 &&
            strcmp(m->req[i].path, path) == 0)
            break;
    if (i == m->nreq && m->nreq < MAX_SERIES) {
        copy_label(m->req[i].method, method);
        copy_label(m->req[i].path, path);
        m->req[i].status = status;
        m->nreq++;
    }
    if (i < m->nreq)
        m->req[i].count++;

    for (i = 0; i < m->nhist; i++)
        if (strcmp(m->hist[i].path, path) == 0)
            break;
    if (i == m->nhist && m->nhist < sizeof m->hist / sizeof m->hist[0]) {
        copy_label(m->hist[i].path, path);
        m->nhist++;
    }
    if (i < m->nhist) {
        size_t b = 0;
        while (b < NBOUNDS && seconds > bounds[b])
            b++;
        m->hist[i].buckets[b]++;
        m->hist[i].count++;
        m->hist[i].sum += seconds;
    }

    if (error_code && *error_code) {
        for (i = 0; i < m->nerr; i++)
            if (strcmp(m->err[i].code, error_code) == 0)
                break;
        if (i == m->nerr && m->nerr < sizeof m->err / sizeof m->err[0]) {
            copy_label(m->err[i].code, error_code);
            m->nerr++;
        }
        if (i < m->nerr)
            m->err[i].count++;
    }
    pthread_mutex_unlock(&m->lock);
}

char *metrics_render(metrics *m, db_pool *pool)
{
    strbuf sb = {0};
    pthread_mutex_lock(&m->lock);
    strbuf_puts(&sb, "# HELP rankql_http_requests_total HTTP requests answered, by method, "
                     "path and status.\n# TYPE rankql_http_requests_total counter\n");
    for (size_t i = 0; i < m->nreq; i++)
        strbuf_printf(&sb, "rankql_http_requests_total{method=\"%s\",path=\"%s\",status=\"%d\"} %llu\n",
                      m->req[i].method, m->req[i].path, m->req[i].status, m->req[i].count);
    strbuf_puts(&sb, "# HELP rankql_http_request_duration_seconds Time from the request's "
                     "headers to its answer.\n# TYPE rankql_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->nhist; i++) {
        const histogram *h = &m->hist[i];
        unsigned long long cum = 0;
        for (size_t b = 0; b < NBOUNDS; b++) {
            cum += h->buckets[b];
            strbuf_printf(&sb, "rankql_http_request_duration_seconds_bucket{path=\"%s\",le=\"%g\"} %llu\n",
                          h->path, bounds[b], cum);
        }
        cum += h->buckets[NBOUNDS];
        strbuf_printf(&sb, "rankql_http_request_duration_seconds_bucket{path=\"%s\",le=\"+Inf\"} %llu\n",
                      h->path, cum);
        strbuf_printf(&sb, "rankql_http_request_duration_seconds_sum{path=\"%s\"} %.6f\n", h->path,
                      h->sum);
        strbuf_printf(&sb, "rankql_http_request_duration_seconds_count{path=\"%s\"} %llu\n", h->path,
                      h->count);
    }
    strbuf_puts(&sb, "# HELP rankql_http_errors_total Error answers, by error code.\n"
                     "# TYPE rankql_http_errors_total counter\n");
    for (size_t i = 0; i < m->nerr; i++)
        strbuf_printf(&sb, "rankql_http_errors_total{code=\"%s\"} %llu\n", m->err[i].code,
                      m->err[i].count);
    pthread_mutex_unlock(&m->lock);
    if (pool) {
        db_pool_stats st;
        db_pool_get_stats(pool, &st);
        strbuf_printf(&sb,
                      "# HELP rankql_db_pool_connections Database connections of the pool, by state.\n"
                      "# TYPE rankql_db_pool_connections gauge\n"
                      "rankql_db_pool_connections{state=\"idle\"} %d\n"
                      "rankql_db_pool_connections{state=\"busy\"} %d\n"
                      "# HELP rankql_db_pool_waits_total Requests that found no idle database "
                      "connection and waited.\n"
                      "# TYPE rankql_db_pool_waits_total counter\n"
                      "rankql_db_pool_waits_total %llu\n"
                      "# HELP rankql_db_pool_reconnects_total Database connections re-established.\n"
                      "# TYPE rankql_db_pool_reconnects_total counter\n"
                      "rankql_db_pool_reconnects_total %llu\n",
                      st.idle, st.busy, st.waits, st.resets);
    }
    return strbuf_detach(&sb);
}
