/* Linear probe on the CPU: softmax regression trained by full-batch gradient descent.
 *
 * Per epoch, over chunks of rows: Z = Xs·W (SGEMM), per row p = softmax(Z + b) and the
 * cross-entropy (proxy_softmax_xent), G = (p − onehot(y)) / n (proxy_xent_grad), ∇W += Xsᵀ·G
 * (SGEMM), ∇b += column sums of G; then W −= lr·∇W, b −= lr·∇b. Xs is train standardised with its own
 * column mean and std; test gets the same transform. W and b start at zero, so the first
 * loss is log C and the run is deterministic.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "executor/workers/proxies/internal.h"
#include "executor/workers/proxies/proxy_math.h"

/* dst = standardised copy of x (n × d) with mean / inv_std (NULL: plain copy). */
static void standardize_copy(const float *x, size_t n, size_t d, const float *mean,
                             const float *inv_std, float *dst)
{
    if (!mean) {
        memcpy(dst, x, n * d * sizeof *dst);
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            dst[i * d + j] = proxy_standardize(x[i * d + j], mean[j], inv_std[j]);
}

/* Sum of the cross-entropies of logits Z + b (rows × C) for labels y; Z gets the softmax and,
 * when grad, is turned into G = ∂(mean loss over n rows)/∂Z. Adds misclassified rows to
 * *wrong. */
static double softmax_rows(float *Z, const float *b, size_t rows, int C, const int32_t *y,
                           int grad, float inv_n, size_t *wrong)
{
    double loss = 0.0;
    for (size_t i = 0; i < rows; i++) {
        float *z = Z + i * (size_t)C;
        if (proxy_argmax(z, b, C) != y[i])
            (*wrong)++;
        loss += proxy_softmax_xent(z, b, C, y[i], z); /* in place: p overwrites z */
        if (grad)
            for (int c = 0; c < C; c++)
                z[c] = proxy_xent_grad(z[c], c == y[i], inv_n);
    }
    return loss;
}

/* Rows per chunk: the forward SGEMM, softmax and gradient SGEMM of a chunk run while its
 * ~1 MiB of features is still in cache (the C-column SGEMMs are memory-bound: fusing them
 * halves the traffic over the features). */
static size_t chunk_rows(size_t d)
{
    size_t r = ((size_t)1 << 20) / (d * sizeof(float));
    return r < 64 ? 64 : r > 4096 ? 4096 : r;
}

int proxy_linear(const proxy_data *train, const proxy_data *test,
                 const proxy_linear_opts *opts, proxy_linear_result *out, char *err,
                 size_t errsize)
{
    proxy_linear_opts o;
    int rc = proxy_linear_setup(train, test, opts, &o, err, errsize);
    if (rc != PROXY_OK)
        return rc;
    proxy_linear_result r;
    rc = proxy_linear_result_alloc(&r, test->n, o.num_classes, o.num_epochs, err, errsize);
    if (rc != PROXY_OK)
        return rc;

    const size_t d = train->d, n = train->n, nt = test->n;
    const int C = o.num_classes;
    const size_t zrows = n > nt ? n : nt, ch = chunk_rows(d) < zrows ? chunk_rows(d) : zrows;
    const float lr = (float)o.learning_rate, inv_n = (float)(1.0 / (double)n);
    float *mean = NULL, *inv_std = NULL;
    float *xs = malloc(zrows * d * sizeof *xs); /* standardised train, later test */
    float *Z = malloc(ch * (size_t)C * sizeof *Z);
    float *W = calloc(d * (size_t)C, sizeof *W);
    float *gW = malloc(d * (size_t)C * sizeof *gW);
    float *b = calloc((size_t)C, sizeof *b);
    double *gb = malloc((size_t)C * sizeof *gb);
    if (!o.no_standardize) {
        mean = malloc(d * sizeof *mean);
        inv_std = malloc(d * sizeof *inv_std);
    }
    if (!xs || !Z || !W || !gW || !b || !gb || (!o.no_standardize && (!mean || !inv_std))) {
        rc = proxy_fail(err, errsize, PROXY_ENOMEM, "out of memory for the linear probe "
                        "(%zu × %zu features, %d classes)", zrows, d, C);
        goto done;
    }
    if (mean)
        proxy_column_stats(train->x, n, d, mean, inv_std);
    standardize_copy(train->x, n, d, mean, inv_std, xs);

    for (int e = 0; e <= o.num_epochs; e++) {
        const int last = e == o.num_epochs;
        double loss = 0.0;
        size_t wrong = 0;
        for (int c = 0; c < C; c++)
            gb[c] = 0.0;
        for (size_t r0 = 0; r0 < n; r0 += ch) {
            const size_t m = n - r0 < ch ? n - r0 : ch;
            const float *xc = xs + r0 * d;
            /* Z = Xs·W, softmax, G in place; ∇W (+)= Xsᵀ·G, ∇b += Σ rows of G */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, C, (int)d, 1.0f, xc,
                        (int)d, W, C, 0.0f, Z, C);
            loss += softmax_rows(Z, b, m, C, train->y + r0, !last, inv_n, &wrong);
            if (last)
                continue;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, C, (int)m, 1.0f, xc,
                        (int)d, Z, C, r0 == 0 ? 0.0f : 1.0f, gW, C);
            for (size_t i = 0; i < m; i++)
                for (int c = 0; c < C; c++)
                    gb[c] += Z[i * (size_t)C + (size_t)c];
        }
        loss /= (double)n;
        if (last) {
            r.final_loss = loss;
            r.train_err = (double)wrong / (double)n;
            break;
        }
        r.loss[e] = loss;
        for (size_t j = 0; j < d * (size_t)C; j++)
            W[j] -= lr * gW[j];
        for (int c = 0; c < C; c++)
            b[c] -= lr * (float)gb[c];
    }

    standardize_copy(test->x, nt, d, mean, inv_std, xs);
    r.wrong = 0;
    for (size_t r0 = 0; r0 < nt; r0 += ch) {
        const size_t m = nt - r0 < ch ? nt - r0 : ch;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, C, (int)d, 1.0f,
                    xs + r0 * d, (int)d, W, C, 0.0f, Z, C);
        for (size_t i = 0; i < m; i++) {
            r.pred[r0 + i] = proxy_argmax(Z + i * (size_t)C, b, C);
            if (r.pred[r0 + i] != test->y[r0 + i])
                r.wrong++;
        }
    }
    r.err = (double)r.wrong / (double)nt;

done:
    free(mean);
    free(inv_std);
    free(xs);
    free(Z);
    free(W);
    free(gW);
    free(b);
    free(gb);
    if (rc != PROXY_OK)
        proxy_linear_result_free(&r);
    else
        *out = r;
    return rc;
}
