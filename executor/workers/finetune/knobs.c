/* Knob configurations of the fine-tune trainers and their resolution (finetune.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/workers/finetune/finetune.h"

static const char *const head_kinds[] = {"linear", "mlp", NULL};
static const char *const batch_sizes[] = {"16", "32", "64", "128", "256", "512", NULL};

static const knob_def head_knobs[] = {
    {"head", KNOB_CATEGORICAL, false, 0, 0, head_kinds, "linear",
     "linear: softmax regression; mlp: one hidden ReLU layer, then softmax"},
    {"hidden", KNOB_INT, true, 1, 4096, NULL, "64", "hidden units of the mlp head"},
    {"lr", KNOB_FLOAT, true, 1e-5, 10, NULL, "0.05", "SGD learning rate"},
    {"epochs", KNOB_INT, true, 1, 100000, NULL, "30", "passes over the training data"},
    {"batch_size", KNOB_CATEGORICAL, false, 0, 0, batch_sizes, "64", "minibatch size"},
    {"weight_decay", KNOB_FLOAT, true, 1e-8, 1, NULL, "0.0001", "L2 penalty on the weights"},
    {"momentum", KNOB_FLOAT, false, 0, 0.99, NULL, "0.9", "SGD momentum"},
    {"seed", KNOB_INT, false, 0, 2147483647, NULL, "1",
     "initial weights and minibatch order"},
    {"holdout", KNOB_FLOAT, false, 0.05, 0.9, NULL, "0.2",
     "fraction of the training rows held out for testing when no test dataset is given"},
};

static const knob_def exec_knobs[] = {
    {"lr", KNOB_FLOAT, true, 1e-6, 10, NULL, "0.01", "learning rate"},
    {"epochs", KNOB_INT, true, 1, 100000, NULL, "10", "passes over the training data"},
    {"batch_size", KNOB_CATEGORICAL, false, 0, 0, batch_sizes, "64", "minibatch size"},
    {"seed", KNOB_INT, false, 0, 2147483647, NULL, "1", "the script's random seed"},
    {"holdout", KNOB_FLOAT, false, 0.05, 0.9, NULL, "0.2",
     "fraction of the training rows held out for testing when no test dataset is given"},
};

static const knob_config configs[] = {
    {"head", sizeof head_knobs / sizeof head_knobs[0], head_knobs},
    {"exec", sizeof exec_knobs / sizeof exec_knobs[0], exec_knobs},
    {"replay", 0, NULL},
};

const knob_config *finetune_knob_config(const char *trainer)
{
    for (size_t i = 0; trainer && i < sizeof configs / sizeof configs[0]; i++)
        if (strcmp(configs[i].trainer, trainer) == 0)
            return &configs[i];
    return NULL;
}

const char *finetune_trainer_names(void)
{
    return "head, exec, replay";
}

/* Whether every categorical value is an integer (batch_size): resolved as integers. */
static bool values_integral(const char *const *v)
{
    for (; v && *v; v++) {
        char *end;
        strtoll(*v, &end, 10);
        if (end == *v || *end)
            return false;
    }
    return true;
}

char *finetune_knob_describe(const knob_def *k)
{
    strbuf sb = {0};
    switch (k->type) {
    case KNOB_FIXED:
        strbuf_printf(&sb, "fixed at %s", k->dflt);
        break;
    case KNOB_CATEGORICAL:
        strbuf_puts(&sb, "one of ");
        for (size_t i = 0; k->values[i]; i++)
            strbuf_printf(&sb, "%s%s", i ? ", " : "", k->values[i]);
        break;
    case KNOB_INT:
        strbuf_printf(&sb, "integer in [%.0f, %.0f]", k->lo, k->hi);
        break;
    case KNOB_FLOAT:
        strbuf_printf(&sb, "number in [%g, %g]", k->lo, k->hi);
        break;
    }
    if (k->is_exp)
        strbuf_puts(&sb, ", log scale");
    return strbuf_detach(&sb);
}

/* The text of a given scalar, for categorical matching and messages. */
static char *scalar_text(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return xasprintf("%.17g", json_real_value(v));
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

/* One knob's typed value from v (a string in the defaults, else what was given). */
static json_t *knob_value(const knob_def *k, const json_t *v, char **err)
{
    char *text = scalar_text(v);
    json_t *out = NULL;
    char *allowed = finetune_knob_describe(k);
    if (!text) {
        *err = xasprintf("knob %s: expected a number or a word, allowed: %s", k->name, allowed);
        goto done;
    }
    if (k->type == KNOB_FIXED || k->type == KNOB_CATEGORICAL) {
        const char *const *vals = k->type == KNOB_FIXED ? NULL : k->values;
        bool found = false;
        if (vals) {
            for (size_t i = 0; vals[i] && !found; i++)
                found = strcmp(vals[i], text) == 0;
            /* A number written 64.0 matches "64". */
            if (!found && json_is_number(v) && values_integral(vals)) {
                double d = json_number_value(v);
                for (size_t i = 0; vals[i] && !found; i++)
                    found = d == strtod(vals[i], NULL);
                if (found) {
                    free(text);
                    text = xasprintf("%.0f", d);
                }
            }
        } else {
            found = strcmp(k->dflt, text) == 0;
        }
        if (!found) {
            *err = xasprintf("knob %s: %s is not allowed, allowed: %s", k->name, text, allowed);
            goto done;
        }
        if (vals && values_integral(vals))
            out = json_integer(strtoll(text, NULL, 10));
        else
            out = json_string(text);
        goto done;
    }
    double d;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else {
        char *end;
        d = strtod(text, &end);
        if (end == text || *end || !json_is_string(v)) {
            *err = xasprintf("knob %s: %s is not a number, allowed: %s", k->name, text, allowed);
            goto done;
        }
    }
    if (!isfinite(d) || d < k->lo || d > k->hi) {
        *err = xasprintf("knob %s: %s is out of range, allowed: %s", k->name, text, allowed);
        goto done;
    }
    if (k->type == KNOB_INT) {
        if (d != floor(d)) {
            *err = xasprintf("knob %s: %s is not an integer, allowed: %s", k->name, text,
                             allowed);
            goto done;
        }
        out = json_integer((json_int_t)d);
    } else {
        out = json_real(d);
    }
done:
    free(text);
    free(allowed);
    return out;
}

json_t *finetune_knobs_resolve(const knob_config *cfg, const json_t *given, char **err,
                               const char **bad_knob)
{
    *bad_knob = NULL;
    if (given && !json_is_object(given)) {
        *err = xstrdup("knobs must be an object of name = value");
        return NULL;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)given, key, v) {
        bool known = false;
        for (size_t i = 0; i < cfg->n && !known; i++)
            known = strcmp(cfg->knobs[i].name, key) == 0;
        if (!known) {
            strbuf names = {0};
            for (size_t i = 0; i < cfg->n; i++)
                strbuf_printf(&names, "%s%s", i ? ", " : "", cfg->knobs[i].name);
            *err = cfg->n ? xasprintf("unknown knob %s for %s (knobs: %s)", key, cfg->trainer,
                                      names.data)
                          : xasprintf("unknown knob %s: %s fine-tunes take no knobs", key,
                                      cfg->trainer);
            strbuf_free(&names);
            *bad_knob = key;
            return NULL;
        }
    }
    json_t *out = json_object();
    for (size_t i = 0; i < cfg->n; i++) {
        const knob_def *k = &cfg->knobs[i];
        const json_t *g = given ? json_object_get(given, k->name) : NULL;
        json_t *dflt = g ? NULL : json_string(k->dflt);
        json_t *val = knob_value(k, g ? g : dflt, err);
        json_decref(dflt);
        if (!val) {
            *bad_knob = k->name;
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k->name, val);
    }
    return out;
}
