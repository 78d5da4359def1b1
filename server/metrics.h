/* Prometheus metrics of the HTTP server (docs/http-api.md, GET /metrics). Thread-safe. */
#ifndef RANKQL_SERVER_METRICS_H
#define RANKQL_SERVER_METRICS_H

#include "db/pool.h"

typedef struct metrics metrics;

metrics *metrics_new(void);
void metrics_free(metrics *m);

/* One finished request. method and path are labels from a small fixed set (http.c maps
 * anything else to "other"); error_code is "" for a success. */
void metrics_observe(metrics *m, const char *method, const char *path, int status,
                     const char *error_code, double seconds);

/* The exposition text (format 0.0.4), with the pool's gauges when pool is not NULL.
 * Caller frees. */
char *metrics_render(metrics *m, db_pool *pool);

#endif
