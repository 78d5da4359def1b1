/* The proxy job runner: one proxy × one model × train parts × test parts → one err
 * (docs/jobs.md "Proxy jobs").
 *
 * run(): validates the payload, loads every part's feature file (featstore), applies its
 * changes in order (feature changes copy rows of another feature file, label-only changes
 * take labels from a dataset loaded with datasets/), concatenates the parts, and runs the
 * proxy of proxies/proxy.h. k-NN results keep their neighbour lists ("details"), so a later
 * payload that only adds trailing label-only changes is re-scored from them
 * (proxy_nn_rescore) instead of recomputing distances.
 *
 * A payload with "replay" instead of train/test (a replay model on a replay dataset,
 * docs/runners.md "replay") is answered from the recorded fine-tune runs instead.
 *
 * store(): one proxy_results row keyed by the job hash. */
#include "executor/workers/proxy_job.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/hash.h"
#include "common/util.h"
#include "datasets/dataset.h"
#include "executor/workers/featstore.h"
#include "executor/workers/jobs.h"
#include "executor/workers/proxies/proxy.h"
#include "executor/workers/proxies/proxy_cuda.h"
#include "executor/workers/runners/replay.h"
#include "queue/queue.h"

/* ---- proxy names and parameters ------------------------------------------------------- */

typedef enum proxy_kind { PK_NN, PK_LINEAR, PK_LOGME, PK_HSCORE, PK_LEEP } proxy_kind;

static const char *const proxy_names[] = {"nn", "linear", "logme", "hscore", "leep"};
#define NUM_PROXIES (sizeof proxy_names / sizeof proxy_names[0])

#define LINEAR_MAX_EPOCHS 1000000

const char *proxy_job_names(void)
{
    return "nn, linear, logme, hscore, leep";
}

static const char *param_names(proxy_kind kind)
{
    switch (kind) {
    case PK_NN:
        return "k, metric";
    case PK_LINEAR:
        return "learning_rate, num_epochs, standardize";
    default:
        return "none";
    }
}

static int find_proxy(const char *name, proxy_kind *kind)
{
    for (size_t i = 0; i < NUM_PROXIES; i++)
        if (strcasecmp(name, proxy_names[i]) == 0) {
            *kind = (proxy_kind)i;
            return 0;
        }
    return -1;
}

/* An integer, or a real with an integral value, in [lo, hi]. */
static bool int_param(const json_t *v, long long lo, long long hi, long long *out)
{
    if (json_is_integer(v)) {
        long long n = json_integer_value(v);
        if (n < lo || n > hi)
            return false;
        *out = n;
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
            return false;
        *out = (long long)d;
        return true;
    }
    return false;
}

json_t *proxy_job_canonical(const char *name, const json_t *params, char **err)
{
    proxy_kind kind;
    if (!name || find_proxy(name, &kind) != 0) {
        *err = xasprintf("unknown proxy \"%s\" (known: %s)", name ? name : "",
                         proxy_job_names());
        return NULL;
    }
    const char *pname = proxy_names[kind];
    if (params && !json_is_object(params) && !json_is_null(params)) {
        *err = xasprintf("the parameters of proxy %s must be an object", pname);
        return NULL;
    }
    long long k = 1, epochs = 100;
    const char *metric = "euclidean";
    double lr = 0.1;
    bool standardize = true;
    const char *key;
    const json_t *v;
    if (json_is_object(params)) {
        json_object_foreach((json_t *)params, key, v) {
            if (kind == PK_NN && strcmp(key, "k") == 0) {
                if (!int_param(v, 1, PROXY_MAX_K, &k)) {
                    *err = xasprintf("parameter k of proxy nn must be an integer in 1..%d",
                                     PROXY_MAX_K);
                    return NULL;
                }
            } else if (kind == PK_NN && strcmp(key, "metric") == 0) {
                const char *m = json_string_value(v);
                if (m && strcasecmp(m, "euclidean") == 0)
                    metric = "euclidean";
                else if (m && strcasecmp(m, "cosine") == 0)
                    metric = "cosine";
                else {
                    *err = xstrdup("parameter metric of proxy nn must be \"euclidean\" or "
                                   "\"cosine\"");
                    return NULL;
                }
            } else if (kind == PK_LINEAR && strcmp(key, "learning_rate") == 0) {
                double d = json_is_number(v) ? json_number_value(v) : NAN;
                if (!(d > 0) || !isfinite(d)) {
                    *err = xstrdup("parameter learning_rate of proxy linear must be a "
                                   "positive number");
                    return NULL;
                }
                lr = d;
            } else if (kind == PK_LINEAR && strcmp(key, "num_epochs") == 0) {
                if (!int_param(v, 1, LINEAR_MAX_EPOCHS, &epochs)) {
                    *err = xasprintf("parameter num_epochs of proxy linear must be an "
                                     "integer in 1..%d", LINEAR_MAX_EPOCHS);
                    return NULL;
                }
            } else if (kind == PK_LINEAR && strcmp(key, "standardize") == 0) {
                if (!json_is_boolean(v)) {
                    *err = xstrdup("parameter standardize of proxy linear must be true or "
                                   "false");
                    return NULL;
                }
                standardize = json_is_true(v);
            } else {
                *err = xasprintf("unknown parameter \"%s\" of proxy %s (known: %s)", key,
                                 pname, param_names(kind));
                return NULL;
            }
        }
    }
    json_t *p;
    switch (kind) {
    case PK_NN:
        p = json_pack("{s:I, s:s}", "k", (json_int_t)k, "metric", metric);
        break;
    case PK_LINEAR:
        p = json_pack("{s:f, s:I, s:b}", "learning_rate", lr, "num_epochs", (json_int_t)epochs,
                      "standardize", standardize);
        break;
    default:
        p = json_object();
        break;
    }
    return json_pack("{s:s, s:o}", "name", pname, "params", p);
}

/* ---- small helpers --------------------------------------------------------------------- */

static void report(job_ctx *ctx, double fraction, const char *note)
{
    if (ctx && ctx->progress)
        ctx->progress(ctx->progress_arg, fraction, note);
}

static bool stopped(job_ctx *ctx, char **err)
{
    if (ctx && ctx->should_stop && ctx->should_stop(ctx->stop_arg)) {
        *err = xstrdup("proxy job stopped (cancelled or lease lost)");
        return true;
    }
    return false;
}

/* The job identity of a proxy payload: json_hash({"kind": "proxy", "payload": payload}). */
static void proxy_job_hash(const json_t *payload, char hex[HASH_HEX_LEN + 1])
{
    queue_job_hash("proxy", payload, hex);
}

/* ---- loading parts ----------------------------------------------------------------------- */

/* Features and labels in memory (owned). */
typedef struct matrix {
    float *x;
    int32_t *y;
    size_t n;
    size_t d;
    int32_t nc;
} matrix;

static void matrix_free(matrix *m)
{
    free(m->x);
    free(m->y);
    memset(m, 0, sizeof *m);
}

/* A change's index lists, checked: equal lengths, each strictly increasing, base indices in
 * [0, n_base), other indices in [0, n_other). */
static int parse_indices(const json_t *change, const char *where, size_t n_base,
                         size_t n_other, const char *other_name, size_t **base_out,
                         size_t **other_out, size_t *count, char **err)
{
    const json_t *b = json_object_get(change, "base"), *o = json_object_get(change, "other");
    if (!json_is_array(b) || !json_is_array(o)) {
        *err = xasprintf("%s: \"base\" and \"other\" must be arrays of indices", where);
        return -1;
    }
    size_t nb = json_array_size(b), no = json_array_size(o);
    if (nb != no) {
        *err = xasprintf("%s: %zu base indices but %zu other indices (the lists pair up)",
                         where, nb, no);
        return -1;
    }
    size_t *bi = xmalloc((nb ? nb : 1) * sizeof *bi), *oi = xmalloc((nb ? nb : 1) * sizeof *oi);
    for (int side = 0; side < 2; side++) {
        const json_t *arr = side == 0 ? b : o;
        size_t *dst = side == 0 ? bi : oi, limit = side == 0 ? n_base : n_other;
        const char *name = side == 0 ? "base" : "other";
        for (size_t i = 0; i < nb; i++) {
            const json_t *v = json_array_get(arr, i);
            if (!json_is_integer(v)) {
                *err = xasprintf("%s: %s index %zu is not an integer", where, name, i);
                goto fail;
            }
            json_int_t idx = json_integer_value(v);
            if (idx < 0 || (uint64_t)idx >= limit) {
                *err = xasprintf("%s: %s index %lld is out of range (%s %zu rows)", where,
                                 name, (long long)idx,
                                 side == 0 ? "the part has" : other_name, limit);
                goto fail;
            }
            if (i > 0 && (size_t)idx <= dst[i - 1]) {
                *err = xasprintf("%s: %s indices must be strictly increasing (%lld after %zu)",
                                 where, name, (long long)idx, dst[i - 1]);
                goto fail;
            }
            dst[i] = (size_t)idx;
        }
    }
    *base_out = bi;
    *other_out = oi;
    *count = nb;
    return 0;
fail:
    free(bi);
    free(oi);
    return -1;
}

/* Loads the dataset of a label-only change ({"format", "location", "spec", "start", "stop",
 * "digest", …} as in embed jobs) with datasets/. */
static int load_labels_dataset(const json_t *obj, const char *where, dataset **out, char **err)
{
    if (!json_is_object(obj)) {
        *err = xasprintf("%s: \"labels_from\" must be a dataset object", where);
        return -1;
    }
    const char *fmt = json_string_value(json_object_get(obj, "format"));
    const char *loc = json_string_value(json_object_get(obj, "location"));
    const json_t *spec_obj = json_object_get(obj, "spec");
    const char *name = json_string_value(json_object_get(obj, "name"));
    if (!name)
        name = loc ? loc : "?";
    dataset_format format;
    if (!fmt || dataset_format_parse(fmt, &format) != 0) {
        *err = xasprintf("%s: labels_from dataset %s has no valid \"format\"", where, name);
        return -1;
    }
    if (!loc) {
        *err = xasprintf("%s: labels_from dataset %s has no \"location\"", where, name);
        return -1;
    }
    if (spec_obj && !json_is_null(spec_obj) && !json_is_object(spec_obj)) {
        *err = xasprintf("%s: the \"spec\" of labels_from dataset %s must be an object", where,
                         name);
        return -1;
    }
    dataset_spec spec;
    char *e = NULL;
    json_t *empty = json_object();
    int rc = dataset_spec_from_json(format, loc, json_is_object(spec_obj) ? spec_obj : empty,
                                    &spec, &e);
    json_decref(empty);
    if (rc != 0) {
        *err = xasprintf("%s: labels_from dataset %s: %s", where, name, e ? e : "bad spec");
        free(e);
        return -1;
    }
    const json_t *start = json_object_get(obj, "start"), *stop = json_object_get(obj, "stop");
    if (start && !json_is_null(start)) {
        if (!json_is_integer(start) || json_integer_value(start) < 0) {
            *err = xasprintf("%s: labels_from dataset %s: \"start\" must be an integer ≥ 0",
                             where, name);
            return -1;
        }
        spec.start = json_integer_value(start);
    }
    if (stop) {
        if (json_is_null(stop))
            spec.stop = DATASET_END;
        else if (json_is_integer(stop) && json_integer_value(stop) >= 0)
            spec.stop = json_integer_value(stop);
        else {
            *err = xasprintf("%s: labels_from dataset %s: \"stop\" must be an integer ≥ 0 or "
                             "null", where, name);
            return -1;
        }
    }
    dataset *ds = NULL;
    if (dataset_load(&spec, &ds, &e) != 0) {
        *err = xasprintf("%s: labels_from dataset %s: %s", where, name, e ? e : "cannot load");
        free(e);
        return -1;
    }
    const char *digest = json_string_value(json_object_get(obj, "digest"));
    if (digest && strcmp(digest, ds->digest) != 0) {
        *err = xasprintf("%s: labels_from dataset %s changed since it was registered (digest "
                         "%.12s…, now %.12s…)", where, name, digest, ds->digest);
        dataset_free(ds);
        return -1;
    }
    if (!ds->labels) {
        *err = xasprintf("%s: labels_from dataset %s has no labels", where, name);
        dataset_free(ds);
        return -1;
    }
    *out = ds;
    return 0;
}

static int read_features(job_ctx *ctx, const char *hash, featfile *f, char **err)
{
    memset(f, 0, sizeof *f);
    return featstore_read(ctx->data_dir ? ctx->data_dir : ".", hash, f, err);
}

/* Applies one change (index ci) to part m. */
static int apply_change(job_ctx *ctx, const json_t *change, const char *where, matrix *m,
                        char **err)
{
    if (!json_is_object(change)) {
        *err = xasprintf("%s: a change must be an object", where);
        return -1;
    }
    const json_t *feat = json_object_get(change, "features");
    const json_t *labels = json_object_get(change, "labels_from");
    if ((feat != NULL) == (labels != NULL)) {
        *err = xasprintf("%s: a change has either \"features\" or \"labels_from\"", where);
        return -1;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)change, key, v) {
        if (strcmp(key, "features") && strcmp(key, "labels_from") && strcmp(key, "base") &&
            strcmp(key, "other")) {
            *err = xasprintf("%s: unknown key \"%s\" (known: features or labels_from, base, "
                             "other)", where, key);
            return -1;
        }
    }
    size_t *bi = NULL, *oi = NULL, count = 0;
    if (feat) {
        const char *hash = json_string_value(feat);
        if (!hash) {
            *err = xasprintf("%s: \"features\" must be an embed job hash", where);
            return -1;
        }
        featfile o;
        char *e = NULL;
        if (read_features(ctx, hash, &o, &e) != 0) {
            *err = xasprintf("%s: %s", where, e);
            free(e);
            return -1;
        }
        if (o.dim != m->d) {
            *err = xasprintf("dimension mismatch: %s has %u, the part has %zu", where, o.dim,
                             m->d);
            featfile_free(&o);
            return -1;
        }
        if (parse_indices(change, where, m->n, (size_t)o.rows, "the other features have", &bi, &oi,
                          &count, err) != 0) {
            featfile_free(&o);
            return -1;
        }
        for (size_t i = 0; i < count; i++) {
            memcpy(m->x + bi[i] * m->d, o.x + oi[i] * m->d, m->d * sizeof *m->x);
            if (o.y) /* features without labels replace the features only (SHiFT) */
                m->y[bi[i]] = o.y[oi[i]];
        }
        if (o.y && o.num_classes > m->nc)
            m->nc = o.num_classes;
        featfile_free(&o);
    } else {
        dataset *ds = NULL;
        if (load_labels_dataset(labels, where, &ds, err) != 0)
            return -1;
        if (parse_indices(change, where, m->n, ds->n, "the labels dataset has", &bi, &oi, &count,
                          err) != 0) {
            dataset_free(ds);
            return -1;
        }
        for (size_t i = 0; i < count; i++)
            m->y[bi[i]] = ds->labels[oi[i]];
        if (ds->num_classes > m->nc)
            m->nc = ds->num_classes;
        dataset_free(ds);
    }
    free(bi);
    free(oi);
    return 0;
}

/* Loads one side (train or test): every part with its changes, concatenated. */
static int load_side(job_ctx *ctx, const json_t *parts, const char *side, matrix *out,
                     char **err)
{
    memset(out, 0, sizeof *out);
    size_t np = json_array_size(parts);
    matrix *pm = xcalloc(np ? np : 1, sizeof *pm);
    int rc = -1;
    for (size_t pi = 0; pi < np; pi++) {
        const json_t *part = json_array_get(parts, pi);
        char *where = xasprintf("%s part %zu", side, pi);
        const char *hash = json_is_object(part)
                               ? json_string_value(json_object_get(part, "features")) : NULL;
        const json_t *changes = json_is_object(part) ? json_object_get(part, "changes") : NULL;
        if (!hash) {
            *err = xasprintf("%s must be an object with \"features\" (an embed job hash)",
                             where);
            free(where);
            goto done;
        }
        if (changes && !json_is_array(changes)) {
            *err = xasprintf("%s: \"changes\" must be an array", where);
            free(where);
            goto done;
        }
        featfile f;
        char *e = NULL;
        if (read_features(ctx, hash, &f, &e) != 0) {
            *err = xasprintf("%s: %s", where, e);
            free(e);
            free(where);
            goto done;
        }
        if (!f.y) {
            *err = xasprintf("%s (features %s) has no labels; proxies need labelled data",
                             where, hash);
            featfile_free(&f);
            free(where);
            goto done;
        }
        pm[pi] = (matrix){f.x, f.y, (size_t)f.rows, f.dim, f.num_classes};
        for (size_t ci = 0; ci < json_array_size(changes); ci++) {
            char *cw = xasprintf("%s, change %zu", where, ci);
            int crc = apply_change(ctx, json_array_get(changes, ci), cw, &pm[pi], err);
            free(cw);
            if (crc != 0) {
                free(where);
                goto done;
            }
        }
        free(where);
        if (pi > 0 && pm[pi].d != pm[0].d) {
            *err = xasprintf("dimension mismatch: %s part 0 has %zu, part %zu has %zu", side,
                             pm[0].d, pi, pm[pi].d);
            goto done;
        }
    }
    if (np == 1) {
        *out = pm[0];
        memset(&pm[0], 0, sizeof pm[0]);
    } else {
        size_t n = 0, d = np ? pm[0].d : 0;
        int32_t nc = 0;
        for (size_t pi = 0; pi < np; pi++) {
            n += pm[pi].n;
            if (pm[pi].nc > nc)
                nc = pm[pi].nc;
        }
        out->x = xmalloc((n * d + 1) * sizeof *out->x);
        out->y = xmalloc((n ? n : 1) * sizeof *out->y);
        size_t at = 0;
        for (size_t pi = 0; pi < np; pi++) {
            memcpy(out->x + at * d, pm[pi].x, pm[pi].n * d * sizeof *out->x);
            memcpy(out->y + at, pm[pi].y, pm[pi].n * sizeof *out->y);
            at += pm[pi].n;
        }
        out->n = n;
        out->d = d;
        out->nc = nc;
    }
    rc = 0;
done:
    for (size_t pi = 0; pi < np; pi++)
        matrix_free(&pm[pi]);
    free(pm);
    return rc;
}

/* ---- label-only rescoring -------------------------------------------------------------- */

static bool is_label_change(const json_t *c)
{
    return json_is_object(c) && json_object_get(c, "labels_from") != NULL &&
           json_object_get(c, "features") == NULL;
}

/* The payload without the trailing label-only changes of every part, or NULL when no part
 * ends with one. */
static json_t *strip_label_changes(const json_t *payload)
{
    json_t *copy = json_deep_copy(payload);
    size_t stripped = 0;
    const char *sides[] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        json_t *parts = json_object_get(copy, sides[s]);
        for (size_t pi = 0; pi < json_array_size(parts); pi++) {
            json_t *changes = json_object_get(json_array_get(parts, pi), "changes");
            while (json_array_size(changes) > 0 &&
                   is_label_change(json_array_get(changes, json_array_size(changes) - 1))) {
                json_array_remove(changes, json_array_size(changes) - 1);
                stripped++;
            }
        }
    }
    if (stripped == 0) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

/* The stored neighbour lists of the nn result with hash `hash`, checked against the shapes
 * at hand; NULL when there is none (or it does not fit, or the lookup failed: then the job
 * simply computes from scratch). */
static json_t *lookup_neighbours(PGconn *conn, const char *hash, int k, size_t n_test,
                                 size_t n_train)
{
    const char *params[1] = {hash};
    PGresult *res = PQexecParams(conn,
                                 "SELECT details::text FROM proxy_results "
                                 "WHERE hash = $1 AND proxy = 'nn' AND details IS NOT NULL",
                                 1, NULL, params, NULL, NULL, 0);
    json_t *details = NULL;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        details = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (!details)
        return NULL;
    json_t *nbr = json_object_get(details, "nbr");
    const json_t *jk = json_object_get(details, "k");
    bool ok = json_is_array(nbr) && json_array_size(nbr) == n_test && json_is_integer(jk) &&
              json_integer_value(jk) == k;
    for (size_t i = 0; ok && i < n_test; i++) {
        const json_t *row = json_array_get(nbr, i);
        ok = json_is_array(row) && json_array_size(row) == (size_t)k;
        for (size_t j = 0; ok && j < (size_t)k; j++) {
            const json_t *v = json_array_get(row, j);
            ok = json_is_integer(v) && json_integer_value(v) >= 0 &&
                 (uint64_t)json_integer_value(v) < n_train;
        }
    }
    json_t *out = ok ? json_incref(nbr) : NULL;
    json_decref(details);
    return out;
}

/* Re-scores stored neighbours nbr under the current labels: *wrong test rows misclassified. */
static int rescore(const json_t *nbr, int k, const matrix *train, const matrix *test,
                   size_t *wrong, char **err)
{
    proxy_nn_result r = {0};
    r.n = test->n;
    r.k = k;
    r.nbr = xmalloc((test->n * (size_t)k + 1) * sizeof *r.nbr);
    for (size_t i = 0; i < test->n; i++)
        for (size_t j = 0; j < (size_t)k; j++)
            r.nbr[i * (size_t)k + j] =
                (int64_t)json_integer_value(json_array_get(json_array_get(nbr, i), j));
    int32_t *pred = xmalloc((test->n ? test->n : 1) * sizeof *pred);
    double rate = 0;
    char msg[256];
    int rc = proxy_nn_rescore(&r, train->y, train->n, test->y, pred, &rate, msg, sizeof msg);
    if (rc == PROXY_OK) {
        size_t w = 0;
        for (size_t i = 0; i < test->n; i++)
            w += pred[i] != test->y[i];
        *wrong = w;
    } else {
        *err = xasprintf("proxy nn: re-scoring the stored neighbours: %s", msg);
    }
    free(r.nbr);
    free(pred);
    return rc == PROXY_OK ? 0 : -1;
}

/* ---- run --------------------------------------------------------------------------------- */

static json_t *nbr_json(const proxy_nn_result *r)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < r->n; i++) {
        json_t *row = json_array();
        for (int j = 0; j < r->k; j++)
            json_array_append_new(row, json_integer(r->nbr[i * (size_t)r->k + (size_t)j]));
        json_array_append_new(rows, row);
    }
    return rows;
}

/* ---- device choice ----------------------------------------------------------------- */

/* The GPU when this build has CUDA, a GPU answers and RANKQL_DEVICE is not "cpu"; the CPU
 * twin otherwise, and also when the GPU call fails for want of a GPU or by a CUDA error
 * (the CPU result is the same within proxy_cuda.h's tolerance). *device says which ran. */
static bool gpu_wanted(void)
{
    const char *d = getenv("RANKQL_DEVICE");
    return !(d && strcmp(d, "cpu") == 0) && proxy_cuda_available();
}

static int nn_on_device(const proxy_data *train, const proxy_data *test,
                        const proxy_nn_opts *opts, proxy_nn_result *r, char *msg, size_t size,
                        const char **device)
{
    if (gpu_wanted() && opts->k <= PROXY_CUDA_MAX_K) {
        int rc = proxy_nn_cuda(train, test, opts, r, msg, size);
        if (rc != PROXY_ENOGPU && rc != PROXY_EGPU) {
            *device = "cuda";
            return rc;
        }
        proxy_nn_result_free(r);
    }
    *device = "cpu";
    return proxy_nn(train, test, opts, r, msg, size);
}

static int linear_on_device(const proxy_data *train, const proxy_data *test,
                            const proxy_linear_opts *opts, proxy_linear_result *r, char *msg,
                            size_t size, const char **device)
{
    if (gpu_wanted()) {
        int rc = proxy_linear_cuda(train, test, opts, r, msg, size);
        if (rc != PROXY_ENOGPU && rc != PROXY_EGPU) {
            *device = "cuda";
            return rc;
        }
        proxy_linear_result_free(r);
    }
    *device = "cpu";
    return proxy_linear(train, test, opts, r, msg, size);
}

/* ---- replay: answers from recorded fine-tune runs ---------------------------------------- */

/* The key of a replay payload's data in proxy_results (train_key and test_key): the records
 * file's content and the task's name, so that the rows of one task group together. */
static void replay_data_key(const json_t *replay, char hex[HASH_HEX_LEN + 1])
{
    json_t *k = json_pack("{s:O?, s:O?}", "records_digest", json_object_get(replay, "digest"),
                          "train_dataset_name", json_object_get(replay, "train_dataset_name"));
    json_hash(k, hex);
    json_decref(k);
}

/* {"replay": {"records", "model_identifier", "train_dataset_name", "digest"}}: err = 1 −
 * the recorded test_accuracy of the pair's chosen run (replay.h: the best run), whatever the
 * proxy — the records hold fine-tunes, not proxy scores, and a replay ranking stands in for
 * "fine-tune every model and compare". Every error is permanent: the file and the payload
 * do not change by retrying. */
static int run_replay(job_ctx *ctx, const json_t *payload, json_t *canon, json_t **result,
                      char **err)
{
    double t0 = now_seconds();
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)payload, key, v) {
        if (strcmp(key, "proxy") && strcmp(key, "model_id") && strcmp(key, "replay")) {
            *err = xasprintf("proxy payload: unknown key \"%s\" beside \"replay\" (known: "
                             "proxy, model_id, replay)", key);
            return -1;
        }
    }
    const json_t *rp = json_object_get(payload, "replay");
    if (!json_is_object(rp)) {
        *err = xstrdup("proxy payload: \"replay\" must be an object");
        return -1;
    }
    static const char *const keys[] = {"records", "model_identifier", "train_dataset_name",
                                       "digest"};
    json_object_foreach((json_t *)rp, key, v) {
        bool known = false;
        for (size_t i = 0; i < 4; i++)
            known = known || strcmp(key, keys[i]) == 0;
        if (!known) {
            *err = xasprintf("proxy payload: unknown key \"%s\" in \"replay\" (known: records, "
                             "model_identifier, train_dataset_name, digest)", key);
            return -1;
        }
    }
    for (size_t i = 0; i < 4; i++) {
        const char *s = json_string_value(json_object_get(rp, keys[i]));
        if (!s || !*s) {
            *err = xasprintf("proxy payload: replay.%s must be a non-empty string", keys[i]);
            return -1;
        }
    }
    const char *path = json_string_value(json_object_get(rp, "records"));
    const char *model = json_string_value(json_object_get(rp, "model_identifier"));
    const char *task_name = json_string_value(json_object_get(rp, "train_dataset_name"));
    const char *digest = json_string_value(json_object_get(rp, "digest"));
    if (!hash_is_hex(digest)) {
        *err = xstrdup("proxy payload: replay.digest must be 64 lower-case hex digits (the "
                       "SHA-256 of the records file)");
        return -1;
    }
    report(ctx, 0.0, "reading the recorded runs");
    replay_records *recs = NULL;
    if (replay_records_load(path, &recs, err) != 0)
        return -1;
    if (strcmp(recs->digest, digest) != 0) {
        *err = xasprintf("records file %s changed since the query was planned (digest %.12s…, "
                         "now %.12s…): run the query again", path, digest, recs->digest);
        replay_records_free(recs);
        return -1;
    }
    const replay_pair *p = replay_find(recs, model, task_name);
    if (!p) {
        *err = xasprintf("no recorded run of %s on %s", model, task_name);
        replay_records_free(recs);
        return -1;
    }
    json_t *details = json_pack("{s:f, s:f, s:I, s:I, s:s?}", "test_accuracy", p->test_accuracy,
                                "elapsed_seconds", p->elapsed_seconds, "runs",
                                (json_int_t)p->runs, "line", (json_int_t)p->line, "configs",
                                p->configs);
    json_t *res = json_object();
    json_object_set_new(res, "err", json_real(1.0 - p->test_accuracy));
    json_object_set_new(res, "raw_error", json_null());
    json_object_set_new(res, "test_size", json_integer(0));
    json_object_set_new(res, "train_size", json_integer(0));
    json_object_set_new(res, "elapsed_seconds", json_real(p->elapsed_seconds));
    json_object_set_new(res, "runs", json_integer((json_int_t)p->runs));
    json_object_set_new(res, "seconds", json_real(now_seconds() - t0));
    json_object_set_new(res, "device", json_string("replay"));
    json_object_set(res, "proxy", canon);
    json_object_set_new(res, "details", details);
    replay_records_free(recs);
    report(ctx, 1.0, "answered from the records");
    *result = res;
    return 0;
}

static int run_proxy(job_ctx *ctx, const json_t *payload, json_t **result, char **err,
                     bool *permanent)
{
    *permanent = true;
    double t0 = now_seconds();
    if (!json_is_object(payload)) {
        *err = xstrdup("proxy payload must be an object");
        return -1;
    }
    const json_t *pobj = json_object_get(payload, "proxy");
    const json_t *train_parts = json_object_get(payload, "train");
    const json_t *test_parts = json_object_get(payload, "test");
    const json_t *model_id = json_object_get(payload, "model_id");
    if (!json_is_object(pobj) || !json_is_string(json_object_get(pobj, "name"))) {
        *err = xstrdup("proxy payload: \"proxy\" must be an object with a \"name\"");
        return -1;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)pobj, key, v) {
        if (strcmp(key, "name") && strcmp(key, "params")) {
            *err = xasprintf("proxy payload: unknown key \"%s\" in \"proxy\" (known: name, "
                             "params)", key);
            return -1;
        }
    }
    char *e = NULL;
    json_t *canon = proxy_job_canonical(json_string_value(json_object_get(pobj, "name")),
                                        json_object_get(pobj, "params"), &e);
    if (!canon) {
        *err = e;
        return -1;
    }
    proxy_kind kind = PK_NN;
    find_proxy(json_string_value(json_object_get(canon, "name")), &kind);
    const json_t *cp = json_object_get(canon, "params");
    bool classifier = kind == PK_NN || kind == PK_LINEAR;
    matrix train = {0}, test = {0};
    json_t *details = NULL, *stored_nbr = NULL;
    int rc = -1;
    if (!json_is_integer(model_id)) {
        *err = xstrdup("proxy payload: \"model_id\" must be an integer");
        goto out;
    }
    if (json_object_get(payload, "replay")) {
        rc = run_replay(ctx, payload, canon, result, err);
        goto out;
    }
    if (!json_is_array(train_parts) || json_array_size(train_parts) == 0) {
        *err = xstrdup("proxy payload: \"train\" must be a non-empty array of parts");
        goto out;
    }
    if (!json_is_array(test_parts) || (classifier && json_array_size(test_parts) == 0)) {
        *err = xasprintf("proxy payload: \"test\" must be a%s array of parts",
                         classifier ? " non-empty" : "n");
        goto out;
    }

    report(ctx, 0.0, "loading train features");
    if (load_side(ctx, train_parts, "train", &train, err) != 0)
        goto out;
    if (stopped(ctx, err)) {
        *permanent = false;
        goto out;
    }
    report(ctx, 0.2, "loading test features");
    if (json_array_size(test_parts) > 0) {
        if (load_side(ctx, test_parts, "test", &test, err) != 0)
            goto out;
        if (test.d != train.d) {
            *err = xasprintf("dimension mismatch: train has %zu, test has %zu", train.d,
                             test.d);
            goto out;
        }
    }
    if (stopped(ctx, err)) {
        *permanent = false;
        goto out;
    }

    proxy_data dtrain = {train.x, train.y, train.n, train.d};
    proxy_data dtest = {test.x, test.y, test.n, test.d};
    char msg[512] = "";
    int prc = PROXY_OK;
    double errv = NAN;
    const char *device = "cpu";
    long long raw_error = -1;
    bool rescored = false;

    if (kind == PK_NN) {
        int k = (int)json_integer_value(json_object_get(cp, "k"));
        /* Label-only rescoring: the same payload without its trailing label-only changes has
         * the same features, hence the same neighbours. */
        json_t *base = ctx && ctx->conn ? strip_label_changes(payload) : NULL;
        if (base) {
            char base_hash[HASH_HEX_LEN + 1];
            proxy_job_hash(base, base_hash);
            json_decref(base);
            stored_nbr = lookup_neighbours(ctx->conn, base_hash, k, test.n, train.n);
        }
        if (stored_nbr) {
            report(ctx, 0.4, "re-scoring stored neighbours under the new labels");
            size_t wrong = 0;
            if (rescore(stored_nbr, k, &train, &test, &wrong, err) != 0)
                goto out;
            rescored = true;
            raw_error = (long long)wrong;
            errv = (double)wrong / (double)test.n;
            details = json_pack("{s:O, s:i}", "nbr", stored_nbr, "k", k);
        } else {
            report(ctx, 0.3, "nearest neighbours");
            const char *metric = json_string_value(json_object_get(cp, "metric"));
            proxy_nn_opts opts = {.metric = strcmp(metric, "cosine") == 0 ? PROXY_COSINE
                                                                           : PROXY_EUCLIDEAN,
                                  .k = k};
            proxy_nn_result r = {0};
            prc = nn_on_device(&dtrain, &dtest, &opts, &r, msg, sizeof msg, &device);
            if (prc == PROXY_OK) {
                errv = r.err;
                raw_error = (long long)r.wrong;
                details = json_pack("{s:o, s:i}", "nbr", nbr_json(&r), "k", k);
                proxy_nn_result_free(&r);
            }
        }
    } else if (kind == PK_LINEAR) {
        report(ctx, 0.3, "training the linear probe");
        proxy_linear_opts opts = {
            .learning_rate = json_real_value(json_object_get(cp, "learning_rate")),
            .num_epochs = (int)json_integer_value(json_object_get(cp, "num_epochs")),
            .no_standardize = json_is_false(json_object_get(cp, "standardize")),
        };
        proxy_linear_result r = {0};
        prc = linear_on_device(&dtrain, &dtest, &opts, &r, msg, sizeof msg, &device);
        if (prc == PROXY_OK) {
            errv = r.err;
            raw_error = (long long)r.wrong;
            proxy_linear_result_free(&r);
        }
    } else {
        /* Transferability scores are training-free: they score the train features against
         * the train labels; test only had to load and match dimensions. */
        report(ctx, 0.3, "scoring the train features");
        double score = NAN;
        if (kind == PK_LOGME)
            prc = proxy_logme(&dtrain, NULL, &score, msg, sizeof msg);
        else if (kind == PK_HSCORE)
            prc = proxy_hscore(&dtrain, NULL, &score, msg, sizeof msg);
        else
            prc = proxy_leep(&dtrain, &score, msg, sizeof msg);
        if (prc == PROXY_OK)
            errv = -score;
    }
    if (prc != PROXY_OK) {
        *err = xasprintf("proxy %s: %s", proxy_names[kind], msg[0] ? msg : proxy_strerror(prc));
        *permanent = prc != PROXY_ENOMEM;
        goto out;
    }
    if (!isfinite(errv)) {
        *err = xasprintf("proxy %s gave a non-finite err", proxy_names[kind]);
        goto out;
    }
    if (stopped(ctx, err)) {
        *permanent = false;
        goto out;
    }
    report(ctx, 1.0, rescored ? "re-scored" : "done");
    json_t *res = json_object();
    json_object_set_new(res, "err", json_real(errv));
    json_object_set_new(res, "raw_error", raw_error >= 0 ? json_integer(raw_error) : json_null());
    json_object_set_new(res, "test_size", json_integer((json_int_t)test.n));
    json_object_set_new(res, "train_size", json_integer((json_int_t)train.n));
    json_object_set_new(res, "seconds", json_real(now_seconds() - t0));
    json_object_set_new(res, "device", json_string(device));
    json_object_set(res, "proxy", canon);
    if (details) {
        json_object_set_new(res, "details", details);
        details = NULL;
    }
    if (rescored)
        json_object_set_new(res, "rescored", json_true());
    *result = res;
    rc = 0;
out:
    json_decref(canon);
    json_decref(details);
    json_decref(stored_nbr);
    matrix_free(&train);
    matrix_free(&test);
    return rc;
}

/* ---- store ------------------------------------------------------------------------------- */

static int store_proxy(PGconn *conn, const job_ctx *ctx, const json_t *payload,
                       const json_t *result, char **err)
{
    const json_t *proxy = json_object_get(result, "proxy");
    const char *name = json_string_value(json_object_get(proxy, "name"));
    const json_t *params = json_object_get(proxy, "params");
    const json_t *jerr = json_object_get(result, "err");
    const json_t *model_id = json_object_get(payload, "model_id");
    if (!name || !json_is_object(params) || !json_is_number(jerr) ||
        !json_is_integer(model_id)) {
        *err = xstrdup("proxy result or payload lacks proxy, err or model_id");
        return -1;
    }
    char hash[HASH_HEX_LEN + 1], train_key[HASH_HEX_LEN + 1], test_key[HASH_HEX_LEN + 1];
    if (ctx && ctx->hash)
        snprintf(hash, sizeof hash, "%s", ctx->hash);
    else
        proxy_job_hash(payload, hash);
    const json_t *replay = json_object_get(payload, "replay");
    if (replay) {
        replay_data_key(replay, train_key);
        memcpy(test_key, train_key, sizeof test_key);
    } else {
        json_hash(json_object_get(payload, "train"), train_key);
        json_hash(json_object_get(payload, "test"), test_key);
    }
    char *params_text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    char model[32], errbuf[64], raw[32], size[32], job[32];
    snprintf(model, sizeof model, "%" JSON_INTEGER_FORMAT, json_integer_value(model_id));
    snprintf(errbuf, sizeof errbuf, "%.17g", json_number_value(jerr));
    const json_t *jraw = json_object_get(result, "raw_error");
    const json_t *jsize = json_object_get(result, "test_size");
    bool has_raw = json_is_integer(jraw);
    bool has_size = json_is_integer(jsize) && json_integer_value(jsize) > 0;
    if (has_raw)
        snprintf(raw, sizeof raw, "%" JSON_INTEGER_FORMAT, json_integer_value(jraw));
    if (has_size)
        snprintf(size, sizeof size, "%" JSON_INTEGER_FORMAT, json_integer_value(jsize));
    const json_t *details = json_object_get(result, "details");
    char *details_text = json_is_object(details) ? json_dumps(details, JSON_COMPACT) : NULL;
    bool has_job = ctx && ctx->job_id > 0;
    if (has_job)
        snprintf(job, sizeof job, "%" PRId64, ctx->job_id);
    const char *values[11] = {hash,      name,   params_text,           model,
                              train_key, test_key, errbuf,               has_raw ? raw : NULL,
                              has_size ? size : NULL, details_text, has_job ? job : NULL};
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO proxy_results (hash, proxy, params, model_id, train_key, test_key, err, "
        "raw_error, test_size, details, job_id) "
        "VALUES ($1, $2, $3::jsonb, $4::bigint, $5, $6, $7::float8, $8::bigint, $9::bigint, "
        "$10::jsonb, $11::bigint) ON CONFLICT (hash) DO NOTHING",
        11, NULL, values, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *m = PQresultErrorMessage(res);
        size_t len = strcspn(m, "\n");
        *err = xasprintf("storing the proxy result: %.*s", (int)len, m);
        rc = -1;
    }
    PQclear(res);
    free(params_text);
    free(details_text);
    return rc;
}

const job_runner proxy_job_runner = {"proxy", run_proxy, store_proxy};
