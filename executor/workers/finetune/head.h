/* The trainable head of `head` fine-tunes: softmax regression (linear) or one hidden ReLU
 * layer then softmax (mlp), on standardised features, trained with minibatch SGD (momentum,
 * weight decay on the weights only), deterministic for a seed: the same data and knobs give
 * bit-identical weights, with or without a checkpoint/resume in between (the checkpoint
 * holds the weights, the momentum buffers, the epoch and the RNG state). The per-row
 * arithmetic is head_math.h. Files (checkpoints and final weights) are written atomically:
 * temp file, fsync, rename, fsync of the directory. */
#ifndef RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_H
#define RANKQL_EXECUTOR_WORKERS_FINETUNE_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef enum head_kind { HEAD_LINEAR = 0, HEAD_MLP = 1 } head_kind;

typedef struct head_knobs {
    head_kind kind;
    int hidden;            /* mlp only */
    double lr, weight_decay, momentum;
    int epochs, batch_size;
    uint64_t seed;
} head_knobs;

/* From resolved knobs (finetune_knobs_resolve with the "head" config). 0, or -1 with *err. */
int head_knobs_from_json(const json_t *knobs, head_knobs *out, char **err);

typedef struct head_net {
    head_kind kind;
    uint32_t dim, hidden, classes;   /* hidden = 0 for linear */
    float *mean, *scale;             /* standardisation: x' = (x − mean) · scale, dim each */
    size_t nparams;
    float *theta;                    /* head_math.h layout */
} head_net;

typedef struct head_state {
    uint32_t epoch;                  /* epochs completed */
    uint64_t rng;                    /* splitmix64 state at the start of the next epoch */
    float *velocity;                 /* nparams */
} head_state;

void head_net_free(head_net *net);
void head_state_free(head_state *st);

/* A fresh head for data x (n × dim, classes labels): standardisation from x, weights drawn
 * from the seed (U(±1/√fan_in) for layers fed by a ReLU or the input; zero biases),
 * momentum zero, epoch 0. */
void head_init(head_net *net, head_state *st, const head_knobs *k, const float *x, size_t n,
               uint32_t dim, uint32_t classes);

/* Called after every completed epoch (st->epoch counts it) with the mean training loss of
 * that epoch; a non-zero return stops training (cancelled, lease lost): head_train then
 * returns 1. */
typedef int (*head_epoch_fn)(void *arg, const head_net *net, const head_state *st, double loss);

/* Trains from st->epoch up to k->epochs on x (n × dim, raw: standardised inside), y in
 * [0, classes). Returns 0 when done, 1 when on_epoch stopped it, -1 with *err. */
int head_train(head_net *net, head_state *st, const head_knobs *k, const float *x,
               const int32_t *y, size_t n, head_epoch_fn on_epoch, void *arg, char **err);

/* The head's output for one raw row: the logits (classes) or, with hidden_layer on an mlp,
 * the hidden ReLU activations (hidden). out has room for that many floats; tmp for dim +
 * hidden. */
void head_apply(const head_net *net, const float *x, bool hidden_layer, float *out, float *tmp);

/* Fraction of rows whose argmax logit is their label (0 for n = 0). */
double head_accuracy(const head_net *net, const float *x, const int32_t *y, size_t n);

/* Files. A checkpoint (with state) or the final weights (st == NULL), tagged with key (the
 * job's hash) and checksummed. 0, or -1 with *err (no temp file left behind). */
int head_file_write(const char *path, const char *key, const head_net *net,
                    const head_state *st, char **err);

/* Reads a file written by head_file_write with the same key; st == NULL reads the weights
 * only. A missing file is -1 with *missing = true; a torn, foreign (other key) or corrupt
 * one -1 with *err naming the cause. */
int head_file_read(const char *path, const char *key, head_net *net, head_state *st,
                   bool *missing, char **err);

/* SHA-256 hex of the weights (theta, mean, scale) as stored: equal weights, equal digest. */
void head_digest(const head_net *net, char hex[65]);

#endif
