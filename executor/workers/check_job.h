/* The check job (docs/jobs.md "Check jobs"): one registered model is loaded through its
 * runner, run on a few synthetic samples of its modality and input size, its output checked
 * (rows × dimension, finite) and its latency per sample measured on this worker. The
 * verdict is a model status (sql/006_model_checks.sql):
 *
 *   USABLE     ran and passed every check
 *   NONUSABLE  ran, but its output is wrong (dimension, non-finite values, malformed)
 *   INVALID    cannot be loaded or run (bad spec, missing command or file, crash)
 *   UNCHECKED  a runner rankql does not execute
 *
 * A model's problems are results, not job failures: the job is done with the verdict, and
 * store() writes it to the model's row in the completing transaction, only while the job is
 * still the model's current check (models.check_job_id). Transient errors (a command killed
 * by a signal, exit status 75) fail the job with retries like any other job.
 *
 * The pure parts are here for unit tests. */
#ifndef RANKQL_EXECUTOR_WORKERS_CHECK_JOB_H
#define RANKQL_EXECUTOR_WORKERS_CHECK_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "executor/workers/embed/embed.h"
#include "executor/workers/jobs.h"

typedef enum check_status {
    CHECK_USABLE,
    CHECK_NONUSABLE,
    CHECK_INVALID,
    CHECK_UNCHECKED,
} check_status;

/* "USABLE", "NONUSABLE", "INVALID", "UNCHECKED" (the catalog's spelling). */
const char *check_status_name(check_status s);

/* The output checks on rows × dim values: dim must be > 0 and equal want_dim when
 * want_dim > 0 (the catalog's dimension), and every value finite. CHECK_USABLE, or
 * CHECK_NONUSABLE with *msg (one line naming the first offence; caller frees). */
check_status check_output(const float *x, size_t rows, size_t dim, int64_t want_dim, char **msg);

/* Learned or drawn parameters of a builtin extractor for inputs of shape in (pca: k·d + d
 * for the components and the mean; random_projection: d·k; random_fourier: d·k + k;
 * random_conv: width·ksize²·C), d = H·W·C; 0 for the parameter-free ones (raw, downsample,
 * profile, histogram, lbp, hog). */
int64_t check_builtin_params(const embed_spec *spec, embed_shape in);

/* Milliseconds per sample of `samples` samples that took `seconds`; 0 when samples is 0. */
double check_latency_ms(double seconds, size_t samples);

/* n × len deterministic pseudo-random bytes (xorshift64* from seed): synthetic pixels. */
void check_synthetic_bytes(uint8_t *out, size_t n, uint64_t seed);

/* What ran the check, for models.measured_on: "cpu: <CPU model> (<host>)". Static. */
const char *check_device(void);

extern const job_runner check_job_runner;

#endif
