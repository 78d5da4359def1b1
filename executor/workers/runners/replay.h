/* The `replay` runner's records (docs/runners.md "replay"): a CSV file of recorded
 * fine-tune runs (SHiFT's data/ftrecords.csv, /work/shared/reference/shift-spec.md §7.2),
 * one row per run, read with RFC 4180 quoting (the `configs` column holds quoted Python
 * dicts with commas) and indexed by (model_identifier, train_dataset_name).
 *
 * Several runs of one pair (other learning rates, epochs, slices, duplicates) are folded into
 * one answer by the rule of replay_pair below: the best run's test_accuracy, the time of
 * every run. REGISTER (executor/register.c) validates catalogue entries with it, the proxy
 * job runner (executor/workers/proxy_job.c) answers replay payloads from it. */
#ifndef RANKQL_EXECUTOR_WORKERS_RUNNERS_REPLAY_H
#define RANKQL_EXECUTOR_WORKERS_RUNNERS_REPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/hash.h"

/* The columns a records file must have (in any order, among any others). */
#define REPLAY_COLUMNS "model_identifier, train_dataset_name, test_accuracy, elapsed_time"

/* What the records say about fine-tuning one model on one dataset.
 *
 * The rule for several runs of a pair: the answer is the run with the best test_accuracy
 * (ties: the first in the file) — "what fine-tuning this model achieves" when its
 * hyper-parameters are tuned, which is what a model search is after (the records mix
 * learning rates 0.01 and 0.1, and 0.1 often diverges: a mean would rank a model by its
 * bad configurations). Its cost is the elapsed_time summed over *all* the runs: getting
 * that best accuracy meant trying every configuration recorded. */
typedef struct replay_pair {
    char *model;              /* model_identifier */
    char *dataset;            /* train_dataset_name */
    size_t runs;              /* rows recorded for the pair (≥ 1) */
    double test_accuracy;     /* of the chosen run, in [0, 1] */
    double elapsed_seconds;   /* summed over all runs */
    size_t line;              /* the chosen run's line in the file (1 = the header) */
    char *configs;            /* the chosen run's configs column, or NULL without one */
} replay_pair;

typedef struct replay_records {
    size_t nrows;             /* data rows */
    size_t npairs;
    replay_pair *pairs;       /* sorted by (model, dataset) */
    char digest[HASH_HEX_LEN + 1]; /* SHA-256 of the text parsed (of the file) */
} replay_records;

/* Parses a records text (name: for messages, e.g. the path). Returns 0 with *out (free
 * with replay_records_free), or -1 with *err (one line naming the file, the line and the
 * column: a missing column, an unterminated quote, a row with the wrong number of fields, a
 * test_accuracy that is not a number in [0, 1], an elapsed_time that is not a number ≥ 0,
 * an empty model_identifier or train_dataset_name). A file without data rows is valid. */
int replay_records_parse(const char *text, size_t len, const char *name, replay_records **out,
                         char **err);

/* Reads and parses a file. -1 with *err also when it cannot be read. */
int replay_records_load(const char *path, replay_records **out, char **err);

/* SHA-256 hex of a file's contents (what sha256sum prints): 0, or -1 with *err. */
int replay_file_digest(const char *path, char hex[HASH_HEX_LEN + 1], char **err);

void replay_records_free(replay_records *r);

/* The pair's answer, or NULL when no run of model on dataset is recorded. */
const replay_pair *replay_find(const replay_records *r, const char *model, const char *dataset);

/* Whether any run of the model (resp. on the dataset) is recorded. */
bool replay_has_model(const replay_records *r, const char *model);
bool replay_has_dataset(const replay_records *r, const char *dataset);

#endif
