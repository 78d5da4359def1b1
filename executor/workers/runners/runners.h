/* Model runners other than `builtin` (executor/workers/embed/): `exec` (an external command
 * with the file protocol of docs/runners.md) and `onnx` (ONNX Runtime's C API, dlopen'd at
 * run time). embed_job.c loads the dataset slice and calls one of these; each turns the
 * loaded slice into ds->n × *dim float32 features. */
#ifndef RANKQL_EXECUTOR_WORKERS_RUNNERS_RUNNERS_H
#define RANKQL_EXECUTOR_WORKERS_RUNNERS_RUNNERS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "datasets/dataset.h"
#include "executor/workers/jobs.h"

/* What a runner gets: the job's model object (docs/jobs.md, for request.json), the model's
 * spec, the loaded slice and the dataset's name (for messages). */
typedef struct runner_call {
    const json_t *model;
    const json_t *spec;
    const char *model_name;
    const dataset *ds;
    const char *dataset_name;
    job_ctx *ctx;           /* progress and should_stop; may have NULL callbacks */
    /* When not NULL (check jobs, executor/workers/check_job.c): set to true when the
     * command or model ran but its output is wrong (malformed, wrong row count, not
     * finite), as opposed to not loading or not running. */
    bool *output_fault;
} runner_call;

/* Each returns 0 with *out = ds->n × *dim floats (caller frees; all finite), or -1 with *err
 * (one line) and *permanent = true when retrying cannot help (bad spec, missing command or
 * runtime, malformed output). Nothing is left behind (temporary files included). */
int exec_runner_embed(const runner_call *call, float **out, size_t *dim, char **err,
                      bool *permanent);
int onnx_runner_embed(const runner_call *call, float **out, size_t *dim, char **err,
                      bool *permanent);

/* The exec protocol's finetune operation (docs/runners.md "exec: fine-tuning"): the command
 * of train->spec gets train/ and test/ directories laid out like an embed job's, a
 * request.json with "op": "finetune" and the knobs, RANKQL_OP=finetune, RANKQL_OUTPUT (a
 * JSON file it writes: {"test_accuracy", "train_accuracy"?} in [0, 1]) and RANKQL_WEIGHTS
 * (an optional weights file it may write, copied to weights_path when not NULL). Returns 0
 * with *answer (the command's JSON object), or -1 like exec_runner_embed. */
int exec_runner_finetune(const runner_call *train, const dataset *test, const char *test_name,
                         const json_t *knobs, const char *weights_path, json_t **answer,
                         bool *weights_written, char **err, bool *permanent);

#endif
