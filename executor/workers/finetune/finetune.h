/* Fine-tune jobs (kind 'finetune', docs/jobs.md "Fine-tune jobs"): the payloads the executor
 * (FINETUNE, executor/finetune.c) and strategies (the host API of extensions/) submit, and
 * the knobs of each trainer. One payload shape per trainer, selected by "runner":
 *
 *   replay  answered from recorded fine-tune runs (docs/runners.md "replay")
 *   head    a linear or one-hidden-layer head trained on a model's features (head.h)
 *   exec    the model's own command through the exec protocol's `finetune` operation
 *
 * Build payloads with the functions below rather than by hand: the job hash is the hash of
 * the payload, so two spellings of one fine-tune would be two jobs and two cache rows. */
#ifndef RANKQL_EXECUTOR_WORKERS_FINETUNE_FINETUNE_H
#define RANKQL_EXECUTOR_WORKERS_FINETUNE_FINETUNE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* ---- payloads --------------------------------------------------------------------------- */

/* The canonical replay payload
 *   {"runner": "replay",
 *    "model":   {"id", "name", "spec"},            the replay model (catalog row)
 *    "dataset": {"id", "name", "spec"},            the replay dataset (the task)
 *    "replay":  {"records", "model_identifier", "train_dataset_name", "digest"},
 *    "knobs":   {}}
 * model and dataset are catalog objects with at least id (integer), name and spec (object;
 * other keys are ignored). The records file is model.spec.records, else dataset.spec.records;
 * model_identifier is model.spec.model_identifier, train_dataset_name
 * dataset.spec.train_dataset_name (else the dataset's name); digest is the SHA-256 of the
 * records file now (a changed file is another job). Returns a new object, or NULL with *err
 * (one line naming the missing field or the unreadable file; caller frees). Does not check
 * that the pair is recorded: the job fails permanently when it is not. */
json_t *finetune_replay_payload(const json_t *model, const json_t *dataset, char **err);

/* The jobs of a head fine-tune, in submission order: one embed job per training dataset, one
 * per test dataset, then the finetune job, which depends on all of them:
 *   [{"kind": "embed", "payload": {"model", "dataset", "fit"}, "hash"}, …,
 *    {"kind": "finetune", "payload": {"runner": "head", …}, "hash", "deps": [0, 1, …]}]
 * model is a model object as embed jobs name it ({"id", "name", "runner", "modality", "spec",
 * "batch_size"}); train a non-empty array of dataset objects as embed jobs name them ({"id",
 * "name", "format", "location", "spec", "digest", "start", "stop"}); test one such object or
 * NULL (then the training tail is held out); knobs as written (NULL = the defaults). A
 * builtin model whose extractor is fitted (PCA, …) is fitted on train[0], like a ranking's.
 * Returns a new array, or NULL with *err (a knob: *bad_knob names it; caller frees err). */
json_t *finetune_head_jobs(const json_t *model, const json_t *train, const json_t *test,
                           const json_t *knobs, char **err, const char **bad_knob);

/* ---- knobs ------------------------------------------------------------------------------ */

/* Knob types (Rafiki's): a fixed value, a categorical choice, an integer or real range
 * (bounds included), optionally log-scaled (is_exp: searched on a log scale; a value given
 * must still lie in the range). */
typedef enum knob_type { KNOB_FIXED, KNOB_CATEGORICAL, KNOB_INT, KNOB_FLOAT } knob_type;

typedef struct knob_def {
    const char *name;
    knob_type type;
    bool is_exp;
    double lo, hi;                 /* KNOB_INT, KNOB_FLOAT */
    const char *const *values;     /* KNOB_CATEGORICAL, KNOB_FIXED: NULL-terminated texts */
    const char *dflt;              /* the default, as written in USING (e.g. "0.01", "linear") */
    const char *doc;               /* one line */
} knob_def;

typedef struct knob_config {
    const char *trainer;           /* "head", "exec", "replay" */
    size_t n;
    const knob_def *knobs;
} knob_config;

/* The knob configuration of a trainer, or NULL when unknown. */
const knob_config *finetune_knob_config(const char *trainer);

/* "head, exec, replay" */
const char *finetune_trainer_names(void);

/* Resolves knobs: every knob of cfg, the given value (given: an object of name → JSON
 * string, number or boolean; NULL = none) or its default, typed (integers as integers,
 * reals as reals, categorical values as given in the config). An unknown name, a value of
 * the wrong type or out of range is an error naming the knob and what it allows. Returns a
 * new object, or NULL with *err (caller frees) and *bad_knob = the offending name (points
 * into given or cfg; NULL for errors of no single knob). */
json_t *finetune_knobs_resolve(const knob_config *cfg, const json_t *given, char **err,
                               const char **bad_knob);

/* What a knob allows, for messages and SHOW: "float in [1e-05, 10], log scale" (caller frees). */
char *finetune_knob_describe(const knob_def *k);

#endif
