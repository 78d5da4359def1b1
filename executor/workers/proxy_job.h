/* The proxy job runner (proxy_job.c, contract in docs/jobs.md "Proxy jobs"): the helpers the
 * executor shares with it when it plans proxy jobs, so that one query spelled two ways
 * ("nn" vs {"name": "NN", "params": {"k": 1.0}}) gives one payload and one job hash. */
#ifndef RANKQL_EXECUTOR_WORKERS_PROXY_JOB_H
#define RANKQL_EXECUTOR_WORKERS_PROXY_JOB_H

#include <jansson.h>

/* The canonical proxy object {"name": name, "params": {every parameter, defaults filled}}
 * of a proxy name (case-insensitive) and its parameters (an object, or NULL = none).
 * Parameters and defaults:
 *   nn      k (integer 1..4096, default 1), metric ("euclidean" (default) | "cosine")
 *   linear  learning_rate (number > 0, default 0.1), num_epochs (integer 1..1000000,
 *           default 100), standardize (boolean, default true)
 *   logme, hscore, leep   none
 * Integral reals are accepted for integers (k = 3.0) and integers for reals (learning_rate
 * = 1); the canonical form always has integers resp. reals, and lower-case names/metrics.
 * Returns a new object, or NULL with *err (one line naming the proxy or parameter, caller
 * frees). */
json_t *proxy_job_canonical(const char *name, const json_t *params, char **err);

/* "nn, linear, logme, hscore, leep": the known proxy names, for error messages. */
const char *proxy_job_names(void);

#endif
