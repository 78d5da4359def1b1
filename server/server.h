/* What every part of the HTTP server shares: the configuration, the database pool, the
 * tokens and the metrics. Made by main.c, read-only afterwards (the pool and the metrics
 * lock themselves). */
#ifndef RANKQL_SERVER_SERVER_H
#define RANKQL_SERVER_SERVER_H

#include "db/pool.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/options.h"

typedef struct server_ctx {
    const server_config *cfg;
    db_pool *pool;
    const auth_tokens *tokens; /* NULL: no authentication */
    metrics *metrics;
} server_ctx;

#endif
