/* Does proxy ranking pick the right model, and how much cheaper is it than training every
 * model? On the builtin model zoo of scripts/demo-catalog.rql and Fashion-MNIST
 * (/usr/share/datasets/fashion-mnist, Debian package dataset-fashion-mnist):
 *
 *   1. Ground truth ("fine-tune" stand-in): per model, a well-trained linear classifier on
 *      the model's features of the first GT_TRAIN rows of the train set (default all 60000),
 *      evaluated on the full 10k test set: the features are PCA-whitened with the train
 *      covariance (see whiten(): the same linear hypotheses, but gradient descent converges),
 *      then proxy_linear (softmax regression, full-batch GD) runs GT_EPOCHS (300) epochs at
 *      learning rate GT_LR (1.0). Its test accuracy is the model's "true" accuracy; its cost
 *      is embedding (fit included, for PCA) + whitening + training. Measured on 7 models:
 *      1000 epochs change test accuracies by at most 0.009 and no rank; without whitening,
 *      300 epochs at lr 0.5 left raw pixels at 0.78 (whitened: 0.84) and reordered models
 *      by how well conditioned their features are rather than by how good they are.
 *   2. Proxies on the demo's small budget (train rows [0, 5000), test rows [0, 1000), PCA
 *      fitted on the 5k slice as the executor does for the first TRAINED ON dataset):
 *      1-NN Euclidean, 1-NN cosine, linear probe (SHiFT's defaults: 100 epochs, lr 0.1,
 *      standardised), LogME and H-score (both on the 5k train features). Per proxy: Kendall
 *      tau-b and Spearman rho between its ranking and the ground-truth ranking, top-1 regret
 *      (true accuracy of the best model − that of the proxy's first), whether the true best
 *      is in its top 3, and its cost (embedding the slices + the proxy, summed over models)
 *      as a ratio against the ground-truth cost measured in the same run.
 *
 * The model specs are read from scripts/demo-catalog.rql with the RankQL parser (every
 * REGISTER MODEL with runner 'builtin'); when the file cannot be read, the same list is used
 * from the copy below. Times are wall-clock on this process; loading the IDX files is done
 * once and counted in neither. Deterministic: every extractor is seeded, the proxies are
 * deterministic for a given OpenBLAS thread count (set OPENBLAS_NUM_THREADS).
 *
 *   build/bench/bench_rank [CATALOG.rql]
 *
 * Environment: RANKQL_RANK_GT_TRAIN (default 60000), RANKQL_RANK_GT_EPOCHS (default 300),
 * RANKQL_RANK_GT_LR (default 1.0), RANKQL_RANK_GT_WHITEN (default 1; 0: standardised
 * features only, as the linear-probe proxy uses), RANKQL_RANK_MODELS (comma-separated substrings of model
 * names: only those), RANKQL_BENCH_QUICK=1 (ground truth on 20000 train rows).
 * Prints tables, never a verdict; exits 0 with "skipped: …" when the dataset is missing.
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "datasets/dataset.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/proxies/proxy.h"
#include "grammar/ast.h"
#include "grammar/parse.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"
#define DEFAULT_CATALOG "scripts/demo-catalog.rql"
#define SMALL_TRAIN 5000
#define SMALL_TEST 1000
#define MAX_MODELS 64
#define WHITEN_RCOND 1e-6 /* eigenvalues ≤ this × the largest are dropped by the whitening */

/* LAPACK (in OpenBLAS), Fortran calling convention with the hidden string lengths. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

/* The builtin models of scripts/demo-catalog.rql (a mirror, used only when the file cannot
 * be read or parsed). */
static const struct {
    const char *name, *spec;
} FALLBACK_ZOO[] = {
    {"builtin/raw-pixels", "{\"extractor\": \"raw\"}"},
    {"builtin/downsample-2", "{\"extractor\": \"downsample\", \"factor\": 2}"},
    {"builtin/profile", "{\"extractor\": \"profile\"}"},
    {"builtin/pca-16", "{\"extractor\": \"pca\", \"k\": 16}"},
    {"builtin/pca-32", "{\"extractor\": \"pca\", \"k\": 32}"},
    {"builtin/pca-64", "{\"extractor\": \"pca\", \"k\": 64}"},
    {"builtin/random-projection-64", "{\"extractor\": \"random_projection\", \"k\": 64, \"seed\": 1}"},
    {"builtin/random-projection-256", "{\"extractor\": \"random_projection\", \"k\": 256, \"seed\": 1}"},
    {"builtin/random-fourier-512", "{\"extractor\": \"random_fourier\", \"k\": 512, \"seed\": 1}"},
    {"builtin/hog", "{\"extractor\": \"hog\", \"cell\": 7, \"block\": 2, \"bins\": 9}"},
    {"builtin/lbp", "{\"extractor\": \"lbp\", \"grid\": 4}"},
    {"builtin/random-conv-16", "{\"extractor\": \"random_conv\", \"width\": 16, \"ksize\": 5, \"grid\": 4, \"seed\": 1}"},
    {"builtin/random-conv-64", "{\"extractor\": \"random_conv\", \"width\": 64, \"ksize\": 5, \"grid\": 4, \"seed\": 1}"},
    {"builtin/pooled-histogram", "{\"extractor\": \"histogram\", \"bins\": 16, \"grid\": 2}"},
};

enum { P_NN, P_COS, P_LINEAR, P_LOGME, P_HSCORE, NPROXY };
static const char *PROXY_NAMES[NPROXY] = {"1-NN euclid", "1-NN cosine", "linear probe", "LogME",
                                          "H-score"};

typedef struct model {
    char *name;
    embed_spec spec;
    size_t dim, white_dim;
    double true_acc;               /* ground truth: test accuracy */
    double gt_train_err, gt_loss;
    double t_gt_embed, t_gt_train; /* seconds */
    double t_small_embed;
    double proxy_err[NPROXY];      /* lower is better (−score for LogME, H-score) */
    double t_proxy[NPROXY];
    int ok;
} model;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : def;
}

static double env_double(const char *name, double def)
{
    const char *v = getenv(name);
    return v && *v ? atof(v) : def;
}

/* ---- the zoo from the catalog script ---------------------------------------------------- */

/* An AST value of REGISTER (literal, array, object) → JSON; NULL when it is anything else. */
static json_t *ast_value_json(const ast_node *n)
{
    if (n->kind == AST_LITERAL) {
        const ast_literal *l = (const ast_literal *)n;
        switch (l->type) {
        case LIT_INT: return json_integer((json_int_t)l->ival);
        case LIT_FLOAT: return json_real(l->fval);
        case LIT_BOOL: return json_boolean(l->bval);
        case LIT_NULL: return json_null();
        case LIT_STRING: return json_stringn(l->str, l->len);
        }
        return NULL;
    }
    if (n->kind == AST_ARRAY) {
        const ast_array *a = (const ast_array *)n;
        json_t *out = json_array();
        for (size_t i = 0; a->items && i < a->items->n; i++) {
            json_t *v = ast_value_json(a->items->items[i]);
            if (!v)
                return json_decref(out), NULL;
            json_array_append_new(out, v);
        }
        return out;
    }
    if (n->kind == AST_OBJECT) {
        const ast_object *o = (const ast_object *)n;
        json_t *out = json_object();
        for (size_t i = 0; o->fields && i < o->fields->n; i++) {
            const ast_object_field *f = (const ast_object_field *)o->fields->items[i];
            json_t *v = ast_value_json(f->value);
            if (!v)
                return json_decref(out), NULL;
            json_object_set_new(out, f->key.text, v);
        }
        return out;
    }
    return NULL;
}

static int wanted(const char *name)
{
    const char *filter = getenv("RANKQL_RANK_MODELS");
    if (!filter || !*filter)
        return 1;
    char *copy = xstrdup(filter), *save = NULL;
    int hit = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && !hit; tok = strtok_r(NULL, ",", &save))
        hit = *tok && strstr(name, tok) != NULL;
    free(copy);
    return hit;
}

static int add_model(model *zoo, size_t *n, const char *name, const json_t *spec)
{
    char *err = NULL;
    if (*n >= MAX_MODELS || !wanted(name))
        return 0;
    model *m = &zoo[*n];
    memset(m, 0, sizeof *m);
    if (embed_spec_from_json(spec, &m->spec, &err) != 0) {
        fprintf(stderr, "bench_rank: model %s: %s\n", name, err);
        free(err);
        return -1;
    }
    m->name = xstrdup(name);
    (*n)++;
    return 0;
}

/* Every REGISTER MODEL … runner 'builtin' … spec {…} of the script. Returns the number of
 * models, or -1 when the file cannot be read or holds none. */
static int zoo_from_catalog(const char *path, model *zoo, size_t *n)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text)
        return -1;
    rq_script *s = rq_parse_script(text, len);
    size_t found = 0;
    for (size_t i = 0; i < s->n; i++) {
        const ast_node *a = s->stmts[i].ast;
        if (!a || a->kind != AST_REGISTER)
            continue;
        const ast_register *r = (const ast_register *)a;
        if (r->what != REGISTER_MODEL || !r->values)
            continue;
        const ast_node *runner = NULL, *spec = NULL;
        for (size_t c = 0; c < r->ncolumns && c < r->values->n; c++) {
            if (strcasecmp(r->columns[c].text, "runner") == 0)
                runner = r->values->items[c];
            else if (strcasecmp(r->columns[c].text, "spec") == 0)
                spec = r->values->items[c];
        }
        if (!runner || runner->kind != AST_LITERAL || !spec || spec->kind != AST_OBJECT)
            continue;
        const ast_literal *rl = (const ast_literal *)runner;
        if (rl->type != LIT_STRING || strcmp(rl->str, "builtin") != 0)
            continue;
        json_t *js = ast_value_json(spec);
        if (js && add_model(zoo, n, r->name.text, js) == 0)
            found++;
        json_decref(js);
    }
    rq_script_free(s);
    free(text);
    return found ? (int)found : -1;
}

static void zoo_fallback(model *zoo, size_t *n)
{
    for (size_t i = 0; i < sizeof FALLBACK_ZOO / sizeof FALLBACK_ZOO[0]; i++) {
        json_t *js = json_loads(FALLBACK_ZOO[i].spec, 0, NULL);
        if (js)
            add_model(zoo, n, FALLBACK_ZOO[i].name, js);
        json_decref(js);
    }
}

/* ---- embedding ---------------------------------------------------------------------------- */

/* Fits the model (PCA) on train rows [0, nfit) and embeds train rows [0, ntr) and test rows
 * [0, nte): *xtr, *xte (caller frees). 0 or -1 with a message on stderr. */
static int embed_model(model *m, const dataset *train, const dataset *test, size_t nfit,
                       size_t ntr, size_t nte, float **xtr, float **xte)
{
    char *err = NULL;
    embed_input fit, in_tr, in_te;
    *xtr = *xte = NULL;
    if (embed_input_of(train, 0, nfit, &fit, &err) != 0 ||
        embed_input_of(train, 0, ntr, &in_tr, &err) != 0 ||
        embed_input_of(test, 0, nte, &in_te, &err) != 0) {
        fprintf(stderr, "bench_rank: %s: %s\n", m->name, err);
        free(err);
        return -1;
    }
    embedder *e = embedder_new(&m->spec, in_tr.shape, &err);
    if (!e || (embed_needs_fit(&m->spec) && embedder_fit(e, &fit, &err) != 0)) {
        fprintf(stderr, "bench_rank: %s: %s\n", m->name, err);
        free(err);
        embedder_free(e);
        return -1;
    }
    size_t d = embedder_dim(e);
    *xtr = xmalloc(ntr * d * sizeof **xtr);
    *xte = xmalloc(nte * d * sizeof **xte);
    if (embedder_apply(e, &in_tr, *xtr, &err) != 0 || embedder_apply(e, &in_te, *xte, &err) != 0) {
        fprintf(stderr, "bench_rank: %s: %s\n", m->name, err);
        free(err);
        free(*xtr), free(*xte);
        *xtr = *xte = NULL;
        embedder_free(e);
        return -1;
    }
    m->dim = d;
    embedder_free(e);
    return 0;
}

/* ---- ground truth and proxies ------------------------------------------------------------ */

/* PCA-whitens train (n × d) and test (m × d) in place with train's mean and covariance
 * (accumulated in double): x → (x − mean)·V·Λ^(−1/2) over the eigenvectors whose eigenvalue
 * exceeds WHITEN_RCOND × the largest (constant and collinear directions are dropped). The
 * result has *k ≤ d columns (the arrays keep their size; rows are repacked). An invertible
 * linear map of the features does not change what a linear classifier can reach, but it
 * makes the covariance the identity, so full-batch gradient descent converges in a few
 * hundred steps instead of many thousands on correlated features (raw pixels, histograms).
 * 0, or -1 when LAPACK fails. */
static int whiten(float *xtr, size_t n, float *xte, size_t m, size_t d, size_t *k)
{
    double *mean = xcalloc(d, sizeof *mean), *cov = xcalloc(d * d, sizeof *cov);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            mean[j] += xtr[i * d + j];
    for (size_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    const size_t chunk = 2048;
    double *buf = xmalloc(chunk * d * sizeof *buf);
    for (size_t r0 = 0; r0 < n; r0 += chunk) {
        size_t rows = n - r0 < chunk ? n - r0 : chunk;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < d; j++)
                buf[i * d + j] = xtr[(r0 + i) * d + j] - mean[j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0, buf, (int)d,
                    1.0, cov, (int)d);
    }
    free(buf);
    for (size_t i = 0; i < d * d; i++)
        cov[i] /= (double)n;
    /* The row-major upper triangle is the column-major lower one; eigenvector j comes back as
     * cov[j·d .. j·d + d), eigenvalues ascending. */
    int nn = (int)d, lwork = -1, liwork = -1, info = 0, iwq = 0;
    double wq = 0, *w = xmalloc(d * sizeof *w);
    dsyevd_("V", "L", &nn, cov, &nn, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info == 0) {
        lwork = (int)wq, liwork = iwq;
        double *work = xmalloc((size_t)(lwork > 1 ? lwork : 1) * sizeof *work);
        int *iwork = xmalloc((size_t)(liwork > 1 ? liwork : 1) * sizeof *iwork);
        dsyevd_("V", "L", &nn, cov, &nn, w, work, &lwork, iwork, &liwork, &info, 1, 1);
        free(work), free(iwork);
    }
    if (info != 0 || !(w[d - 1] > 0)) {
        free(mean), free(cov), free(w);
        return -1;
    }
    size_t kk = 0;
    for (size_t j = 0; j < d; j++)
        kk += w[j] > WHITEN_RCOND * w[d - 1];
    /* P (d × kk, row-major): column c = eigenvector / sqrt(eigenvalue), largest first. */
    float *P = xmalloc(d * kk * sizeof *P), *tmp = xmalloc(chunk * kk * sizeof *tmp);
    for (size_t c = 0; c < kk; c++) {
        size_t j = d - 1 - c;
        double s = 1.0 / sqrt(w[j]);
        for (size_t i = 0; i < d; i++)
            P[i * kk + c] = (float)(cov[j * d + i] * s);
    }
    /* Row blocks in order: block r0 is written at rows r0·kk ≤ r0·d, never past its input. */
    float *sets[2] = {xtr, xte};
    size_t counts[2] = {n, m};
    for (int t = 0; t < 2; t++) {
        float *x = sets[t];
        for (size_t r0 = 0; r0 < counts[t]; r0 += chunk) {
            size_t rows = counts[t] - r0 < chunk ? counts[t] - r0 : chunk;
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < d; j++)
                    x[(r0 + i) * d + j] -= (float)mean[j];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)kk, (int)d,
                        1.0f, x + r0 * d, (int)d, P, (int)kk, 0.0f, tmp, (int)kk);
            memcpy(x + r0 * kk, tmp, rows * kk * sizeof *tmp);
        }
    }
    free(P), free(tmp), free(mean), free(cov), free(w);
    *k = kk;
    return 0;
}

static int ground_truth(model *m, const dataset *train, const dataset *test, size_t ntr,
                        int epochs, double lr, int white)
{
    float *xtr, *xte;
    double t = now();
    if (embed_model(m, train, test, ntr, ntr, test->n, &xtr, &xte) != 0)
        return -1;
    m->t_gt_embed = now() - t;
    size_t k = m->dim;
    t = now();
    if (white && whiten(xtr, ntr, xte, test->n, m->dim, &k) != 0) {
        fprintf(stderr, "bench_rank: %s: whitening: LAPACK dsyevd failed\n", m->name);
        free(xtr), free(xte);
        return -1;
    }
    m->white_dim = k;
    proxy_data tr = {xtr, train->labels, ntr, k}, te = {xte, test->labels, test->n, k};
    proxy_linear_opts o = {lr, epochs, 0, 0};
    proxy_linear_result r;
    memset(&r, 0, sizeof r);
    char err[256] = "";
    int rc = proxy_linear(&tr, &te, &o, &r, err, sizeof err);
    m->t_gt_train = now() - t;
    free(xtr), free(xte);
    if (rc != PROXY_OK) {
        fprintf(stderr, "bench_rank: %s: ground truth: %s\n", m->name, err);
        return -1;
    }
    m->true_acc = 1.0 - r.err;
    m->gt_train_err = r.train_err;
    m->gt_loss = r.final_loss;
    proxy_linear_result_free(&r);
    return 0;
}

static int run_proxies(model *m, const dataset *train, const dataset *test)
{
    float *xtr, *xte;
    double t = now();
    if (embed_model(m, train, test, SMALL_TRAIN, SMALL_TRAIN, SMALL_TEST, &xtr, &xte) != 0)
        return -1;
    m->t_small_embed = now() - t;
    proxy_data tr = {xtr, train->labels, SMALL_TRAIN, m->dim};
    proxy_data te = {xte, test->labels, SMALL_TEST, m->dim};
    char err[256] = "";
    int rc = PROXY_OK;
    for (int p = 0; p < NPROXY && rc == PROXY_OK; p++) {
        double score = 0;
        t = now();
        if (p == P_NN || p == P_COS) {
            proxy_nn_opts o = {p == P_NN ? PROXY_EUCLIDEAN : PROXY_COSINE, 1, 0, 0};
            proxy_nn_result r;
            memset(&r, 0, sizeof r);
            rc = proxy_nn(&tr, &te, &o, &r, err, sizeof err);
            m->proxy_err[p] = r.err;
            proxy_nn_result_free(&r);
        } else if (p == P_LINEAR) {
            proxy_linear_opts o = {0.1, 100, 0, 0}; /* SHiFT's defaults, standardised */
            proxy_linear_result r;
            memset(&r, 0, sizeof r);
            rc = proxy_linear(&tr, &te, &o, &r, err, sizeof err);
            m->proxy_err[p] = r.err;
            proxy_linear_result_free(&r);
        } else if (p == P_LOGME) {
            rc = proxy_logme(&tr, NULL, &score, err, sizeof err);
            m->proxy_err[p] = -score;
        } else {
            rc = proxy_hscore(&tr, NULL, &score, err, sizeof err);
            m->proxy_err[p] = -score;
        }
        m->t_proxy[p] = now() - t;
        if (rc != PROXY_OK)
            fprintf(stderr, "bench_rank: %s: %s: %s\n", m->name, PROXY_NAMES[p], err);
    }
    free(xtr), free(xte);
    return rc == PROXY_OK ? 0 : -1;
}

/* ---- rank statistics --------------------------------------------------------------------- */

static int sign(double a)
{
    return (a > 0) - (a < 0);
}

/* Kendall tau-b between two score vectors (ties in either reduce the denominator). */
static double kendall_tau_b(const double *a, const double *b, size_t n)
{
    double conc = 0, ta = 0, tb = 0;
    long pairs = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            int sa = sign(a[i] - a[j]), sb = sign(b[i] - b[j]);
            pairs++;
            conc += sa * sb;
            ta += sa == 0;
            tb += sb == 0;
        }
    double den = sqrt(((double)pairs - ta) * ((double)pairs - tb));
    return den > 0 ? conc / den : NAN;
}

/* Ranks 1..n of v ascending, ties getting their average rank. */
static void ranks(const double *v, size_t n, double *r)
{
    for (size_t i = 0; i < n; i++) {
        double less = 0, eq = 0;
        for (size_t j = 0; j < n; j++)
            less += v[j] < v[i], eq += v[j] == v[i];
        r[i] = less + (eq + 1) / 2;
    }
}

/* Spearman rho: Pearson correlation of the (average) ranks. */
static double spearman(const double *a, const double *b, size_t n)
{
    double ra[MAX_MODELS], rb[MAX_MODELS], ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    ranks(a, n, ra), ranks(b, n, rb);
    for (size_t i = 0; i < n; i++)
        ma += ra[i] / (double)n, mb += rb[i] / (double)n;
    for (size_t i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

/* Index of the k-th best (0 = best) by ascending err; ties → the earlier model. */
static size_t kth_best(const double *err, size_t n, size_t k)
{
    size_t order[MAX_MODELS];
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && err[order[j]] < err[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    return order[k];
}

/* ---- main ----------------------------------------------------------------------------------- */

static int load(const char *images, const char *labels, dataset **out)
{
    dataset_spec spec;
    char *err = NULL;
    dataset_spec_init(&spec, DATASET_IDX, images);
    spec.labels_path = labels;
    if (dataset_load(&spec, out, &err) != 0) {
        fprintf(stderr, "bench_rank: %s\n", err);
        free(err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *files[4] = {FMNIST_DIR "/train-images-idx3-ubyte.gz",
                            FMNIST_DIR "/train-labels-idx1-ubyte.gz",
                            FMNIST_DIR "/t10k-images-idx3-ubyte.gz",
                            FMNIST_DIR "/t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++)
        if (access(files[i], R_OK) != 0) {
            printf("skipped: dataset-fashion-mnist not installed (no %s)\n", files[i]);
            return 0;
        }
    int quick = getenv("RANKQL_BENCH_QUICK") && *getenv("RANKQL_BENCH_QUICK");
    long gt_train = env_long("RANKQL_RANK_GT_TRAIN", quick ? 20000 : 60000);
    int gt_epochs = (int)env_long("RANKQL_RANK_GT_EPOCHS", 300);
    double gt_lr = env_double("RANKQL_RANK_GT_LR", 1.0);
    int gt_white = (int)env_long("RANKQL_RANK_GT_WHITEN", 1);

    const char *catalog = argc > 1 ? argv[1] : DEFAULT_CATALOG;
    static model zoo[MAX_MODELS];
    size_t n = 0;
    const char *zoo_src = catalog;
    if (zoo_from_catalog(catalog, zoo, &n) < 0) {
        for (size_t i = 0; i < n; i++)
            free(zoo[i].name);
        n = 0;
        zoo_fallback(zoo, &n);
        zoo_src = "built-in copy of " DEFAULT_CATALOG;
    }
    if (n < 2) {
        fprintf(stderr, "bench_rank: fewer than 2 models to rank (RANKQL_RANK_MODELS?)\n");
        return 1;
    }

    dataset *train = NULL, *test = NULL;
    double t_load = now();
    if (load(files[0], files[1], &train) != 0 || load(files[2], files[3], &test) != 0)
        return 1;
    t_load = now() - t_load;
    if (gt_train < SMALL_TRAIN || (size_t)gt_train > train->n)
        gt_train = (long)train->n;

    printf("proxy ranking vs ground truth: %zu builtin models (%s) on Fashion-MNIST; "
           "OpenBLAS %d thread(s); IDX load %.1f s (not counted)\n",
           n, zoo_src, openblas_get_num_threads(), t_load);
    printf("ground truth: linear classifier, %ld train rows, %d epochs full-batch GD at lr %g on "
           "%s features, accuracy on all %zu test rows\n",
           gt_train, gt_epochs, gt_lr, gt_white ? "PCA-whitened" : "standardised", test->n);
    printf("proxies: train rows [0, %d), test rows [0, %d); linear probe 100 epochs lr 0.1; "
           "LogME, H-score on the train slice\n\n",
           SMALL_TRAIN, SMALL_TEST);

    printf("%-30s %5s %5s %8s %7s %6s %6s | %7s %7s %7s %8s %8s %6s\n", "model", "dim", "wdim",
           "true acc",
           "tr err", "gt s", "prx s", "1nn err", "cos err", "lin err", "LogME", "H-score",
           "rank");
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        model *m = &zoo[i];
        m->ok = ground_truth(m, train, test, (size_t)gt_train, gt_epochs, gt_lr, gt_white) == 0 &&
                run_proxies(m, train, test) == 0;
        if (!m->ok) {
            printf("%-30s failed (see stderr)\n", m->name);
            continue;
        }
        if (ok != i)
            zoo[ok] = *m;
        ok++;
        fflush(stdout);
    }
    n = ok;
    if (n < 2) {
        fprintf(stderr, "bench_rank: fewer than 2 models ran\n");
        return 1;
    }

    /* Ground-truth err (lower is better) and its rank. */
    double gt_err[MAX_MODELS], best_acc = 0, gt_cost = 0, small_embed = 0;
    for (size_t i = 0; i < n; i++) {
        gt_err[i] = 1.0 - zoo[i].true_acc;
        best_acc = zoo[i].true_acc > best_acc ? zoo[i].true_acc : best_acc;
        gt_cost += zoo[i].t_gt_embed + zoo[i].t_gt_train;
        small_embed += zoo[i].t_small_embed;
    }
    double gt_rank[MAX_MODELS];
    ranks(gt_err, n, gt_rank);
    for (size_t i = 0; i < n; i++) {
        const model *m = &zoo[i];
        double prx = m->t_small_embed;
        for (int p = 0; p < NPROXY; p++)
            prx += m->t_proxy[p];
        printf("%-30s %5zu %5zu %8.4f %7.4f %6.1f %6.2f | %7.4f %7.4f %7.4f %8.4f %8.4f %6.1f\n",
               m->name, m->dim, m->white_dim, m->true_acc, m->gt_train_err, m->t_gt_embed + m->t_gt_train, prx,
               m->proxy_err[P_NN], m->proxy_err[P_COS], m->proxy_err[P_LINEAR],
               -m->proxy_err[P_LOGME], -m->proxy_err[P_HSCORE], gt_rank[i]);
    }
    size_t best = kth_best(gt_err, n, 0);
    printf("(wdim: dimensions kept by the whitening; true acc: ground-truth test accuracy; tr err: "
           "its train error; gt s: its embedding + "
           "training seconds; prx s: embedding the slices + all five proxies; rank: true rank, "
           "1 = best)\n\n");

    printf("%-14s %7s %7s %8s %5s  %-28s %8s %8s %9s\n", "proxy", "tau-b", "rho", "regret",
           "top3", "ranked first", "time s", "/ truth", "speed-up");
    for (int p = 0; p < NPROXY; p++) {
        double err[MAX_MODELS], cost = small_embed;
        for (size_t i = 0; i < n; i++) {
            err[i] = zoo[i].proxy_err[p];
            cost += zoo[i].t_proxy[p];
        }
        size_t first = kth_best(err, n, 0);
        int top3 = 0;
        for (size_t k = 0; k < 3 && k < n; k++)
            top3 |= kth_best(err, n, k) == best;
        printf("%-14s %7.3f %7.3f %8.4f %5s  %-28s %8.2f %8.4f %8.1fx\n", PROXY_NAMES[p],
               kendall_tau_b(err, gt_err, n), spearman(err, gt_err, n),
               best_acc - zoo[first].true_acc, top3 ? "yes" : "no", zoo[first].name, cost,
               cost / gt_cost, gt_cost / cost);
    }
    double all = small_embed;
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < NPROXY; p++)
            all += zoo[i].t_proxy[p];
    printf("%-14s %7s %7s %8s %5s  %-28s %8.2f %8.4f %8.1fx\n", "all five", "", "", "", "", "",
           all, all / gt_cost, gt_cost / all);
    printf("%-14s %7.3f %7.3f %8.4f %5s  %-28s %8.2f %8.4f %8.1fx  (baseline)\n", "ground truth",
           1.0, 1.0, 0.0, "yes", zoo[best].name, gt_cost, 1.0, 1.0);
    printf("(tau-b, rho: rank correlation with the ground truth, 1 = same order; regret: true "
           "accuracy of the best model - that of the proxy's first; top3: the true best is in "
           "the proxy's top 3; time: embedding the %d + %d rows for every model + the proxy, "
           "over all models; / truth: that time over the ground truth's)\n",
           SMALL_TRAIN, SMALL_TEST);

    for (size_t i = 0; i < n; i++)
        free(zoo[i].name);
    dataset_free(train);
    dataset_free(test);
    return 0;
}
