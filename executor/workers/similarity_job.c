/* The similarity job runner (docs/jobs.md "Similarity jobs"): the probe's features of one
 * dataset (the feature file of its embed job, which this job depends on) → the dataset's
 * embedding (similarity.h), stored in dataset_similarity under the job's hash.
 *
 * Payload: {"method": "gaussian_diag", "probe": {"id", "name"}, "dataset": {"id", "name"},
 *           "features": <the embed job's hash>}
 * Result:  {"method", "rows", "dim", "vec": [2·dim numbers], "seconds"} */
#include "executor/workers/jobs.h"
#include "executor/workers/similarity.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "common/util.h"
#include "executor/workers/featstore.h"

int similarity_embed(const float *x, uint64_t rows, uint32_t dim, float *vec)
{
    if (rows == 0 || dim == 0)
        return -1;
    double *mean = calloc(dim, sizeof *mean), *m2 = calloc(dim, sizeof *m2);
    if (!mean || !m2) {
        free(mean);
        free(m2);
        return -1;
    }
    int rc = 0;
    for (uint64_t i = 0; i < rows; i++)
        for (uint32_t j = 0; j < dim; j++)
            mean[j] += x[i * dim + j];
    for (uint32_t j = 0; j < dim; j++)
        mean[j] /= (double)rows;
    /* Two passes: the variance of features far from 0 keeps its digits. */
    for (uint64_t i = 0; i < rows; i++)
        for (uint32_t j = 0; j < dim; j++) {
            double dx = x[i * dim + j] - mean[j];
            m2[j] += dx * dx;
        }
    for (uint32_t j = 0; j < dim && rc == 0; j++) {
        double var = m2[j] / (double)rows;
        if (!isfinite(mean[j]) || !isfinite(var))
            rc = -1;
        vec[j] = (float)mean[j];
        vec[dim + j] = (float)var;
    }
    free(mean);
    free(m2);
    return rc;
}

double similarity_w2(const float *a, const float *b, size_t dim)
{
    double s = 0;
    for (size_t j = 0; j < dim; j++) {
        double dm = (double)a[j] - (double)b[j];
        double va = a[dim + j] > 0 ? a[dim + j] : 0, vb = b[dim + j] > 0 ? b[dim + j] : 0;
        double ds = sqrt(va) - sqrt(vb);
        s += dm * dm + ds * ds;
    }
    return sqrt(s);
}

static int run_similarity(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                          bool *permanent)
{
    *result = NULL;
    *permanent = false;
    double t0 = now_seconds();
    const char *method = json_string_value(json_object_get(payload, "method"));
    const char *features = json_string_value(json_object_get(payload, "features"));
    if (!method || strcmp(method, SIMILARITY_METHOD) != 0)
        return job_fail(err, permanent, true,
                        "bad similarity payload: \"method\" must be \"%s\"", SIMILARITY_METHOD);
    if (!features || strlen(features) != HASH_HEX_LEN)
        return job_fail(err, permanent, true,
                        "bad similarity payload: \"features\" must be an embed job's hash");
    if (!json_is_integer(json_object_get(json_object_get(payload, "probe"), "id")) ||
        !json_is_integer(json_object_get(json_object_get(payload, "dataset"), "id")))
        return job_fail(err, permanent, true,
                        "bad similarity payload: \"probe.id\" and \"dataset.id\" are required");
    if (ctx->progress)
        ctx->progress(ctx->progress_arg, 0, "reading the probe's features");
    featfile f;
    char *e = NULL;
    /* A missing file is not permanent: the executor notices and embeds it again. */
    if (featstore_read(ctx->data_dir, features, &f, &e) != 0) {
        job_fail(err, permanent, false, "cannot read the probe's features: %s", e);
        free(e);
        return -1;
    }
    float *vec = xmalloc(2 * (size_t)f.dim * sizeof *vec);
    if (similarity_embed(f.x, f.rows, f.dim, vec) != 0) {
        uint64_t rows = f.rows;
        featfile_free(&f);
        free(vec);
        return job_fail(err, permanent, true,
                        "the probe's features (%" PRIu64 " rows) have no finite mean and "
                        "variance",
                        rows);
    }
    json_t *arr = json_array();
    for (size_t j = 0; j < 2 * (size_t)f.dim; j++)
        json_array_append_new(arr, json_real(vec[j]));
    *result = json_pack("{s:s, s:I, s:I, s:o, s:f}", "method", method, "rows",
                        (json_int_t)f.rows, "dim", (json_int_t)f.dim, "vec", arr, "seconds",
                        now_seconds() - t0);
    free(vec);
    featfile_free(&f);
    if (ctx->progress)
        ctx->progress(ctx->progress_arg, 1, "done");
    return 0;
}

static int store_similarity(PGconn *conn, const job_ctx *ctx, const json_t *payload,
                            const json_t *result, char **err)
{
    const json_t *vec = json_object_get(result, "vec");
    const json_t *pid = json_object_get(json_object_get(payload, "probe"), "id");
    const json_t *did = json_object_get(json_object_get(payload, "dataset"), "id");
    const char *method = json_string_value(json_object_get(payload, "method"));
    if (!json_is_array(vec) || json_array_size(vec) == 0 || !json_is_integer(pid) ||
        !json_is_integer(did) || !method)
        return job_fail(err, NULL, true, "similarity result or payload lacks vec, probe.id, "
                                         "dataset.id or method");
    strbuf sb = {0};
    strbuf_putc(&sb, '{');
    for (size_t i = 0; i < json_array_size(vec); i++)
        strbuf_printf(&sb, "%s%.9g", i ? "," : "", json_number_value(json_array_get(vec, i)));
    strbuf_putc(&sb, '}');
    char b_pid[32], b_did[32], b_job[32];
    snprintf(b_pid, sizeof b_pid, "%" JSON_INTEGER_FORMAT, json_integer_value(pid));
    snprintf(b_did, sizeof b_did, "%" JSON_INTEGER_FORMAT, json_integer_value(did));
    snprintf(b_job, sizeof b_job, "%" PRId64, ctx->job_id);
    const char *params[6] = {ctx->hash, method, b_pid, b_did, sb.data,
                             ctx->job_id > 0 ? b_job : NULL};
    /* The probe or the dataset may have been deleted while the job ran: store nothing. */
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO dataset_similarity (hash, method, probe_model_id, dataset_id, vec, job_id) "
        "SELECT $1, $2, $3::bigint, $4::bigint, $5::real[], $6::bigint "
        "WHERE EXISTS (SELECT 1 FROM models WHERE id = $3::bigint) "
        "AND EXISTS (SELECT 1 FROM datasets WHERE id = $4::bigint) "
        "ON CONFLICT (hash) DO NOTHING",
        6, NULL, params, NULL, NULL, 0);
    strbuf_free(&sb);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *m = PQresultErrorMessage(res);
        *err = xasprintf("cannot store the dataset_similarity row: %.*s", (int)strcspn(m, "\n"), m);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

const job_runner similarity_job_runner = {"similarity", run_similarity, store_similarity};
