/* One minibatch step of the head trainer split into data-parallel pieces, one call per
 * thread, for the GPU trainer (kernels/head_kernels.cu launches one thread per index) and
 * for checking that split on the host (tests/unit/test_finetune_cuda.c runs the same calls
 * in loops and gets head_train's weights bit for bit). Each piece is built from the
 * head_math.h functions head.c uses, in the same order:
 *   1. forward1  (rows × out1): one output of the first layer of one row (head_affine, nout 1)
 *   2. forward2  (rows × classes, mlp only): one logit of one row
 *   3. softmax   (rows): softmax − onehot in place, the row's loss, and for an mlp the
 *                gradient through the ReLU (head_back_hidden)
 *   4. update    (nparams): one parameter's gradient summed over the batch's rows in row
 *                order (head_outer_acc, as head.c's accumulation), then head_sgd_step
 * Pieces must run in that order, each after the previous has finished for every index:
 * update reads W2 only through step 3, so no thread reads a weight another one writes. */
#ifndef RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_BATCH_H
#define RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_BATCH_H

#include "executor/workers/finetune/head_math.h"

typedef struct head_batch {
    int mlp;                     /* 1: W1, b1, W2, b2; 0: W, b (head_math.h layout) */
    int dim, hidden, classes;
    const float *xs;             /* n × dim, standardised */
    const int32_t *y;            /* n labels */
    const size_t *perm;          /* the epoch's order */
    size_t b0;                   /* the batch is perm[b0 .. b0 + rows) */
    int rows;
    float *theta, *velocity;     /* nparams each */
    float *act1;                 /* rows × out1: the hidden layer (mlp) or the logits */
    float *z;                    /* rows × classes: the logits (mlp; = act1 for linear) */
    float *dh;                   /* rows × hidden: gradient at the hidden layer (mlp) */
    float *loss;                 /* n: loss[b0 + r] = −log p of batch row r */
    float lr, mu, wd;
} head_batch;

HEAD_HD int head_batch_out1(const head_batch *b)
{
    return b->mlp ? b->hidden : b->classes;
}

/* Offsets in theta: W1 at 0, then b1, W2, b2. */
HEAD_HD size_t head_batch_b1(const head_batch *b)
{
    return (size_t)head_batch_out1(b) * (size_t)b->dim;
}

HEAD_HD size_t head_batch_w2(const head_batch *b)
{
    return head_batch_b1(b) + (size_t)head_batch_out1(b);
}

HEAD_HD size_t head_batch_b2(const head_batch *b)
{
    return head_batch_w2(b) + (size_t)b->classes * (size_t)b->hidden;
}

HEAD_HD size_t head_batch_nparams(const head_batch *b)
{
    return b->mlp ? head_batch_b2(b) + (size_t)b->classes : head_batch_w2(b);
}

HEAD_HD const float *head_batch_row(const head_batch *b, int r)
{
    return b->xs + b->perm[b->b0 + (size_t)r] * (size_t)b->dim;
}

/* t < rows × out1. */
HEAD_HD void head_batch_forward1(const head_batch *b, size_t t)
{
    int out1 = head_batch_out1(b);
    int r = (int)(t / (size_t)out1), o = (int)(t % (size_t)out1);
    const float *w = b->theta + (size_t)o * (size_t)b->dim;
    head_affine(w, b->theta + head_batch_b1(b) + o, head_batch_row(b, r), b->dim, 1, b->mlp,
                b->act1 + (size_t)r * (size_t)out1 + o);
}

/* t < rows × classes, mlp only. */
HEAD_HD void head_batch_forward2(const head_batch *b, size_t t)
{
    int r = (int)(t / (size_t)b->classes), o = (int)(t % (size_t)b->classes);
    const float *w = b->theta + head_batch_w2(b) + (size_t)o * (size_t)b->hidden;
    head_affine(w, b->theta + head_batch_b2(b) + o, b->act1 + (size_t)r * (size_t)b->hidden,
                b->hidden, 1, 0, b->z + (size_t)r * (size_t)b->classes + o);
}

/* t < rows. */
HEAD_HD void head_batch_softmax(const head_batch *b, size_t t)
{
    int r = (int)t;
    float *z = b->z + (size_t)r * (size_t)b->classes;
    b->loss[b->b0 + t] = head_softmax_grad(z, b->classes, b->y[b->perm[b->b0 + t]]);
    if (b->mlp)
        head_back_hidden(b->theta + head_batch_w2(b), z, b->act1 + (size_t)r * (size_t)b->hidden,
                         b->hidden, b->classes, b->dh + (size_t)r * (size_t)b->hidden);
}

/* t < nparams. head.c accumulates grad[p] over the rows in batch order, skipping zero
 * upstream gradients (head_outer_acc); one parameter at a time gives the same sums. */
HEAD_HD void head_batch_update(const head_batch *b, size_t t)
{
    size_t b1 = head_batch_b1(b), w2 = head_batch_w2(b), b2 = head_batch_b2(b);
    int layer2 = b->mlp && t >= w2;
    int nin = layer2 ? b->hidden : b->dim;
    int nout = layer2 ? b->classes : head_batch_out1(b);
    size_t wbase = layer2 ? w2 : 0, bbase = layer2 ? b2 : b1;
    int bias = t >= bbase;
    int o = bias ? (int)(t - bbase) : (int)((t - wbase) / (size_t)nin);
    int i = bias ? 0 : (int)((t - wbase) % (size_t)nin);
    /* upstream gradient of this layer's outputs, and its inputs, per row */
    const float *dz = layer2 || !b->mlp ? (b->mlp ? b->z : b->act1) : b->dh;
    float gw = 0.0f, gb = 0.0f;
    for (int r = 0; r < b->rows; r++) {
        const float *in = layer2 ? b->act1 + (size_t)r * (size_t)b->hidden : head_batch_row(b, r);
        head_outer_acc(&gw, &gb, dz + (size_t)r * (size_t)nout + o, in + i, 1, 1);
    }
    float inv = 1.0f / (float)b->rows;
    head_sgd_step(b->theta + t, b->velocity + t, (bias ? gb : gw) * inv, b->lr, b->mu,
                  bias ? 0.0f : b->wd);
}

#endif
