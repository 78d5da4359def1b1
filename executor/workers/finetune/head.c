/* The head trainer and its files (head.h). */
#include "executor/workers/finetune/head.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/util.h"
#include "executor/workers/finetune/head_math.h"

int head_knobs_from_json(const json_t *knobs, head_knobs *out, char **err)
{
    const char *kind = json_string_value(json_object_get(knobs, "head"));
    const json_t *hidden = json_object_get(knobs, "hidden"), *epochs = json_object_get(knobs, "epochs"),
                 *bs = json_object_get(knobs, "batch_size"), *seed = json_object_get(knobs, "seed");
    const json_t *lr = json_object_get(knobs, "lr"), *wd = json_object_get(knobs, "weight_decay"),
                 *mu = json_object_get(knobs, "momentum");
    if (!kind || (strcmp(kind, "linear") && strcmp(kind, "mlp")) || !json_is_integer(hidden) ||
        !json_is_integer(epochs) || !json_is_integer(bs) || !json_is_integer(seed) ||
        !json_is_number(lr) || !json_is_number(wd) || !json_is_number(mu) ||
        json_integer_value(hidden) < 1 || json_integer_value(epochs) < 1 ||
        json_integer_value(bs) < 1 || json_integer_value(seed) < 0) {
        *err = xstrdup("bad head knobs: resolve them with finetune_knobs_resolve (head, hidden, "
                       "lr, epochs, batch_size, weight_decay, momentum, seed)");
        return -1;
    }
    out->kind = strcmp(kind, "mlp") == 0 ? HEAD_MLP : HEAD_LINEAR;
    out->hidden = (int)json_integer_value(hidden);
    out->epochs = (int)json_integer_value(epochs);
    out->batch_size = (int)json_integer_value(bs);
    out->seed = (uint64_t)json_integer_value(seed);
    out->lr = json_number_value(lr);
    out->weight_decay = json_number_value(wd);
    out->momentum = json_number_value(mu);
    return 0;
}

void head_net_free(head_net *net)
{
    free(net->mean);
    free(net->scale);
    free(net->theta);
    memset(net, 0, sizeof *net);
}

void head_state_free(head_state *st)
{
    free(st->velocity);
    memset(st, 0, sizeof *st);
}

static size_t nparams_of(head_kind kind, uint32_t dim, uint32_t hidden, uint32_t classes)
{
    if (kind == HEAD_LINEAR)
        return (size_t)classes * dim + classes;
    return (size_t)hidden * dim + hidden + (size_t)classes * hidden + classes;
}

/* Offsets of the layers in theta: first layer W, b; second layer W, b (mlp). */
typedef struct layout {
    size_t w1, b1, w2, b2;
    int in1, out1, in2, out2;
} layout;

static layout layout_of(const head_net *n)
{
    layout l = {0};
    l.in1 = (int)n->dim;
    l.out1 = n->kind == HEAD_MLP ? (int)n->hidden : (int)n->classes;
    l.w1 = 0;
    l.b1 = (size_t)l.out1 * (size_t)l.in1;
    if (n->kind == HEAD_MLP) {
        l.in2 = (int)n->hidden;
        l.out2 = (int)n->classes;
        l.w2 = l.b1 + (size_t)l.out1;
        l.b2 = l.w2 + (size_t)l.out2 * (size_t)l.in2;
    }
    return l;
}

void head_init(head_net *net, head_state *st, const head_knobs *k, const float *x, size_t n,
               uint32_t dim, uint32_t classes)
{
    memset(net, 0, sizeof *net);
    memset(st, 0, sizeof *st);
    net->kind = k->kind;
    net->dim = dim;
    net->hidden = k->kind == HEAD_MLP ? (uint32_t)k->hidden : 0;
    net->classes = classes;
    net->mean = xcalloc(dim + 1, sizeof *net->mean);
    net->scale = xcalloc(dim + 1, sizeof *net->scale);
    for (uint32_t j = 0; j < dim; j++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++)
            s += x[i * dim + j];
        double m = n ? s / (double)n : 0;
        for (size_t i = 0; i < n; i++) {
            double d = x[i * dim + j] - m;
            s2 += d * d;
        }
        double sd = n ? sqrt(s2 / (double)n) : 0;
        net->mean[j] = (float)m;
        net->scale[j] = sd > 1e-6 ? (float)(1.0 / sd) : 1.0f;
    }
    net->nparams = nparams_of(net->kind, dim, net->hidden, classes);
    net->theta = xcalloc(net->nparams + 1, sizeof *net->theta);
    st->velocity = xcalloc(net->nparams + 1, sizeof *st->velocity);
    st->rng = k->seed;
    layout l = layout_of(net);
    float a1 = 1.0f / sqrtf((float)l.in1);
    for (size_t i = 0; i < l.b1; i++)
        net->theta[l.w1 + i] = (2.0f * head_rng_uniform(&st->rng) - 1.0f) * a1;
    if (net->kind == HEAD_MLP) {
        float a2 = 1.0f / sqrtf((float)l.in2);
        for (size_t i = 0; i < (size_t)l.out2 * (size_t)l.in2; i++)
            net->theta[l.w2 + i] = (2.0f * head_rng_uniform(&st->rng) - 1.0f) * a2;
    }
}

static void standardise(const head_net *net, const float *x, float *out)
{
    for (uint32_t j = 0; j < net->dim; j++)
        out[j] = (x[j] - net->mean[j]) * net->scale[j];
}

/* Forward through the head from a standardised row: h (mlp hidden) and z (logits). */
static void forward(const head_net *net, const layout *l, const float *xs, float *h, float *z)
{
    const float *t = net->theta;
    if (net->kind == HEAD_LINEAR) {
        head_affine(t + l->w1, t + l->b1, xs, l->in1, l->out1, 0, z);
    } else {
        head_affine(t + l->w1, t + l->b1, xs, l->in1, l->out1, 1, h);
        head_affine(t + l->w2, t + l->b2, h, l->in2, l->out2, 0, z);
    }
}

int head_train(head_net *net, head_state *st, const head_knobs *k, const float *x,
               const int32_t *y, size_t n, head_epoch_fn on_epoch, void *arg, char **err)
{
    if (n == 0) {
        *err = xstrdup("no training rows");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (uint32_t)y[i] >= net->classes) {
            *err = xasprintf("training row %zu has label %d, outside [0, %u)", i, y[i],
                             net->classes);
            return -1;
        }
    const uint32_t d = net->dim;
    layout l = layout_of(net);
    float *xs = xmalloc(n * d * sizeof *xs + sizeof *xs);
    for (size_t i = 0; i < n; i++)
        standardise(net, x + i * d, xs + i * d);
    size_t *perm = xmalloc(n * sizeof *perm);
    float *grad = xmalloc((net->nparams + 1) * sizeof *grad);
    float *h = xmalloc((net->hidden + 1) * sizeof *h);
    float *dh = xmalloc((net->hidden + 1) * sizeof *dh);
    float *z = xmalloc((net->classes + 1) * sizeof *z);
    /* Weights decay, biases do not. */
    unsigned char *is_weight = xcalloc(net->nparams + 1, 1);
    memset(is_weight + l.w1, 1, l.b1 - l.w1);
    if (net->kind == HEAD_MLP)
        memset(is_weight + l.w2, 1, l.b2 - l.w2);
    const float lr = (float)k->lr, mu = (float)k->momentum, wd = (float)k->weight_decay;
    int rc = 0;
    while (st->epoch < (uint32_t)k->epochs) {
        /* The epoch's order: identity, then Fisher–Yates from the epoch's RNG state. */
        head_shuffle(perm, n, &st->rng);
        double loss = 0;
        for (size_t b0 = 0; b0 < n; b0 += (size_t)k->batch_size) {
            size_t b1 = b0 + (size_t)k->batch_size < n ? b0 + (size_t)k->batch_size : n;
            memset(grad, 0, net->nparams * sizeof *grad);
            for (size_t r = b0; r < b1; r++) {
                const float *xr = xs + perm[r] * d;
                int yr = y[perm[r]];
                forward(net, &l, xr, h, z);
                loss += head_softmax_grad(z, (int)net->classes, yr);
                if (net->kind == HEAD_LINEAR) {
                    head_outer_acc(grad + l.w1, grad + l.b1, z, xr, l.in1, l.out1);
                } else {
                    head_outer_acc(grad + l.w2, grad + l.b2, z, h, l.in2, l.out2);
                    head_back_hidden(net->theta + l.w2, z, h, l.in2, l.out2, dh);
                    head_outer_acc(grad + l.w1, grad + l.b1, dh, xr, l.in1, l.out1);
                }
            }
            float inv = 1.0f / (float)(b1 - b0);
            for (size_t p = 0; p < net->nparams; p++)
                head_sgd_step(&net->theta[p], &st->velocity[p], grad[p] * inv, lr, mu,
                              is_weight[p] ? wd : 0.0f);
        }
        st->epoch++;
        for (size_t p = 0; p < net->nparams; p++)
            if (!isfinite(net->theta[p])) {
                *err = xasprintf("training diverged at epoch %u (a weight is not finite): "
                                 "lower lr",
                                 st->epoch);
                rc = -1;
                goto out;
            }
        if (on_epoch && on_epoch(arg, net, st, loss / (double)n)) {
            rc = 1;
            break;
        }
    }
out:
    free(xs);
    free(perm);
    free(grad);
    free(h);
    free(dh);
    free(z);
    free(is_weight);
    return rc;
}

void head_apply(const head_net *net, const float *x, bool hidden_layer, float *out, float *tmp)
{
    layout l = layout_of(net);
    float *xs = tmp, *h = tmp + net->dim;
    standardise(net, x, xs);
    if (net->kind == HEAD_MLP && hidden_layer) {
        head_affine(net->theta + l.w1, net->theta + l.b1, xs, l.in1, l.out1, 1, out);
        return;
    }
    forward(net, &l, xs, h, out);
}

double head_accuracy(const head_net *net, const float *x, const int32_t *y, size_t n)
{
    if (n == 0)
        return 0;
    float *tmp = xmalloc((net->dim + net->hidden + 1) * sizeof *tmp);
    float *z = xmalloc((net->classes + 1) * sizeof *z);
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        head_apply(net, x + i * net->dim, false, z, tmp);
        right += head_argmax(z, (int)net->classes) == y[i];
    }
    free(tmp);
    free(z);
    return (double)right / (double)n;
}

/* ---- files ----------------------------------------------------------------------------- */

#define MAGIC_CKPT "RQHEADC1"
#define MAGIC_WEIGHTS "RQHEADW1"
#define KEY_LEN 64

typedef struct file_header {
    char magic[8];
    char key[KEY_LEN];
    uint32_t kind, dim, hidden, classes, epoch, reserved;
    uint64_t rng, nparams;
} file_header;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int head_file_write(const char *path, const char *key, const head_net *net,
                    const head_state *st, char **err)
{
    file_header hd;
    memset(&hd, 0, sizeof hd);
    memcpy(hd.magic, st ? MAGIC_CKPT : MAGIC_WEIGHTS, 8);
    snprintf(hd.key, sizeof hd.key, "%.*s", KEY_LEN - 1, key);
    hd.kind = (uint32_t)net->kind;
    hd.dim = net->dim;
    hd.hidden = net->hidden;
    hd.classes = net->classes;
    hd.epoch = st ? st->epoch : 0;
    hd.rng = st ? st->rng : 0;
    hd.nparams = net->nparams;
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        *err = xasprintf("cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    uint64_t sum = 0xcbf29ce484222325ull;
    struct { const void *p; size_t n; } parts[] = {
        {&hd, sizeof hd},
        {net->mean, net->dim * sizeof(float)},
        {net->scale, net->dim * sizeof(float)},
        {net->theta, net->nparams * sizeof(float)},
        {st ? st->velocity : NULL, st ? net->nparams * sizeof(float) : 0},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i].n == 0)
            continue;
        sum = fnv1a(sum, parts[i].p, parts[i].n);
        rc = write_all(fd, parts[i].p, parts[i].n);
    }
    if (rc == 0)
        rc = write_all(fd, &sum, sizeof sum);
    if (rc == 0)
        rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    if (rc == 0)
        rc = rename(tmp, path);
    if (rc != 0) {
        *err = xasprintf("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    /* The rename is durable once the directory is synced. */
    char *dir = xstrdup(path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    return 0;
}

int head_file_read(const char *path, const char *key, head_net *net, head_state *st,
                   bool *missing, char **err)
{
    *missing = false;
    size_t len = 0;
    char *buf = read_file(path, &len);
    if (!buf) {
        *missing = errno == ENOENT;
        *err = xasprintf("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    file_header hd;
    int rc = -1;
    if (len < sizeof hd + sizeof(uint64_t)) {
        *err = xasprintf("%s is torn (%zu bytes)", path, len);
        goto out;
    }
    memcpy(&hd, buf, sizeof hd);
    if (memcmp(hd.magic, st ? MAGIC_CKPT : MAGIC_WEIGHTS, 8) != 0) {
        *err = xasprintf("%s is not a head %s file", path, st ? "checkpoint" : "weights");
        goto out;
    }
    if (strncmp(hd.key, key, KEY_LEN - 1) != 0) {
        *err = xasprintf("%s belongs to another job (%.12s…)", path, hd.key);
        goto out;
    }
    if (hd.kind > HEAD_MLP || hd.dim == 0 || hd.classes == 0 ||
        hd.nparams != nparams_of((head_kind)hd.kind, hd.dim, hd.hidden, hd.classes)) {
        *err = xasprintf("%s has an inconsistent header", path);
        goto out;
    }
    size_t want = sizeof hd + (2 * (size_t)hd.dim + (st ? 2 : 1) * (size_t)hd.nparams) * sizeof(float) +
                  sizeof(uint64_t);
    if (len != want) {
        *err = xasprintf("%s has %zu bytes, its header says %zu", path, len, want);
        goto out;
    }
    uint64_t sum;
    memcpy(&sum, buf + len - sizeof sum, sizeof sum);
    if (fnv1a(0xcbf29ce484222325ull, buf, len - sizeof sum) != sum) {
        *err = xasprintf("%s fails its checksum", path);
        goto out;
    }
    memset(net, 0, sizeof *net);
    net->kind = (head_kind)hd.kind;
    net->dim = hd.dim;
    net->hidden = hd.hidden;
    net->classes = hd.classes;
    net->nparams = (size_t)hd.nparams;
    const char *p = buf + sizeof hd;
    net->mean = xmalloc((hd.dim + 1) * sizeof(float));
    net->scale = xmalloc((hd.dim + 1) * sizeof(float));
    net->theta = xmalloc((net->nparams + 1) * sizeof(float));
    memcpy(net->mean, p, hd.dim * sizeof(float));
    p += hd.dim * sizeof(float);
    memcpy(net->scale, p, hd.dim * sizeof(float));
    p += hd.dim * sizeof(float);
    memcpy(net->theta, p, net->nparams * sizeof(float));
    p += net->nparams * sizeof(float);
    if (st) {
        st->epoch = hd.epoch;
        st->rng = hd.rng;
        st->velocity = xmalloc((net->nparams + 1) * sizeof(float));
        memcpy(st->velocity, p, net->nparams * sizeof(float));
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

void head_digest(const head_net *net, char hex[65])
{
    size_t n = (2 * (size_t)net->dim + net->nparams) * sizeof(float);
    char *buf = xmalloc(n + 1);
    memcpy(buf, net->mean, net->dim * sizeof(float));
    memcpy(buf + net->dim * sizeof(float), net->scale, net->dim * sizeof(float));
    memcpy(buf + 2 * net->dim * sizeof(float), net->theta, net->nparams * sizeof(float));
    sha256_hex(buf, n, hex);
    free(buf);
}
