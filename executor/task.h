/* Shared by the files of task-aware queries (task.c: planning and results; task_data.c:
 * the datasets of TRAINED ON / TESTED ON; task_jobs.c: the query's jobs, caches and WAIT).
 * Not part of the executor's interface. */
#ifndef RANKQL_EXECUTOR_TASK_H
#define RANKQL_EXECUTOR_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "executor/internal.h"
#include "planner/cost.h"

static const ast_pos no_pos = {0, 0, 0};

/* ---- datasets and parts (task_data.c) ------------------------------------------------ */

/* A registered dataset as jobs name it (docs/jobs.md), with the slice resolved. */
typedef struct dataset_use {
    json_t *obj;            /* {"id","name","format","location","spec","digest","start","stop"} */
    bool labels_only;
    bool replay;            /* format replay: obj's spec names {records, train_dataset_name} */
    int64_t size;           /* examples in the slice; -1 unknown */
} dataset_use;

typedef struct dataset_list {
    size_t n, cap;
    dataset_use *items;
} dataset_list;

typedef struct change_use {
    dataset_use target;
    json_t *base, *other;   /* arrays of indices */
} change_use;

typedef struct part {
    dataset_use data;
    size_t nchanges;
    change_use *changes;
} part;

typedef struct part_list {
    size_t n, cap;
    part *items;
} part_list;

/* Free the lists and the JSON they hold; the lists are reset (safe to free twice). */
void task_dataset_list_free(dataset_list *l);
void task_part_list_free(part_list *l);

/* A name in TRAINED ON / TESTED ON: a registered dataset, or a session variable holding
 * datasets (all of them, in its order). */
bool task_resolve_dataset(exec_ctx *ctx, const ast_dataset_ref *ref, dataset_list *out,
                          char **modality, exec_error *err);

/* The registered datasets of ids (a JSON array text, "[3,1]"), in that order; ids that no
 * longer exist are left out. */
bool task_resolve_dataset_ids(exec_ctx *ctx, const char *ids, dataset_list *out,
                              char **modality, exec_error *err);

/* The datasets of TRAINED ON or TESTED ON, each with its CHANGE mutations resolved and
 * checked; *modality is set from the first dataset that states one (caller frees). */
bool task_resolve_parts(exec_ctx *ctx, const ast_list *refs, part_list *out, char **modality,
                        exec_error *err);

/* ---- models (task_data.c) -------------------------------------------------------------- */

/* The columns task_model_obj reads, a query's start: rankings, FINETUNE and SELECT vec's
 * probe read a model the same way. */
#define TASK_MODEL_SELECT "SELECT id, name, runner, modality, spec, batch_size FROM models "

/* Row r of a TASK_MODEL_SELECT result as jobs name the model ({"id", "name", "runner",
 * "modality", "spec", "batch_size"}); *needs_fit (unless NULL): a builtin whose extractor is
 * fitted on each query's training data. */
json_t *task_model_obj(const PGresult *res, int r, bool *needs_fit);

/* ---- jobs and WAIT (task_jobs.c) ----------------------------------------------------- */

/* The distinct jobs of one query, in submission order. */
typedef struct job_ref {
    char hash[HASH_HEX_LEN + 1];
    const char *kind;
    json_t *payload;
    size_t *deps;           /* indices of embed jobs this one waits for */
    size_t ndeps;
    bool cached;            /* its result exists */
    int64_t id;             /* once submitted */
} job_ref;

typedef struct job_set {
    size_t n, cap;
    job_ref *items;
    /* Open-addressing index by hash (slot = item index + 1, 0 = empty), so a query with
     * thousands of jobs finds one in O(1). */
    size_t *slots;
    size_t nslots;          /* a power of two, at least 2n */
} job_set;

/* The jobs of a query by status; running_progress sums the running jobs' progress. */
typedef struct job_counts {
    long total, done, failed, running, queued;
    double running_progress;
} job_counts;

/* How a WAIT ended. */
typedef enum wait_end { WAIT_DONE, WAIT_TIMEOUT, WAIT_CANCELLED, WAIT_ERROR } wait_end;

void task_job_set_free(job_set *s);

/* Adds a job (or finds it); returns its index. Steals payload. */
size_t task_job_set_add(job_set *s, const char *kind, json_t *payload);

/* The index of the job with this hash, or SIZE_MAX. */
size_t task_job_find(const job_set *s, const char *hash);

/* Job `job` waits for job `dep` (indices in s; once each). */
void task_job_add_dep(job_set *s, size_t job, size_t dep);

/* Which of the hashes have rows in table: marks cached. */
bool task_mark_cached(exec_ctx *ctx, job_set *s, const char *kind, const char *table,
                      exec_error *err);

/* A feature_cache row whose file is gone or has the wrong size (deleted by hand, a data
 * directory restored without its features/, a torn copy) would fail every proxy job that
 * reads it: forget the row, so the embedding is computed again. rankqld and its workers
 * share the data directory (docs/jobs.md), so what this process sees is what workers see. */
bool task_forget_missing_features(exec_ctx *ctx, job_set *s, exec_error *err);

/* Submits every job whose result is not cached (embed jobs first, so proxy jobs can name
 * them as dependencies; then proxy and strategy jobs). A done job whose result row is gone
 * (PURGE) is queued again. Returns the number submitted, or -1. */
long task_submit_jobs(exec_ctx *ctx, job_set *s, exec_error *err);

/* The ids of the submitted (not cached) jobs as a PostgreSQL array literal (caller frees). */
char *task_submitted_ids(const job_set *s);

/* Records the jobs this query submitted (or shared) under a new query id, for CANCEL QUERY.
 * Returns the id (caller frees), or NULL with *err. */
char *task_record_query(exec_ctx *ctx, const job_set *s, exec_error *err);

/* Counts the jobs of ids (task_submitted_ids) by status. */
bool task_count_jobs(exec_ctx *ctx, const char *ids, job_counts *c, exec_error *err);

/* Blocks until every submitted job of s is final, the client cancels, or ctx's WAIT limit
 * passes, reporting progress through ctx->on_progress; *elapsed = seconds waited. */
wait_end task_wait_for_jobs(exec_ctx *ctx, const job_set *s, const char *query_id,
                            exec_error *err, double *elapsed);

/* What running a job set did (task_run_jobs), for its report (task_report_jobs). */
typedef struct task_run {
    long total, cached, submitted;
    char *query_id;        /* NULL when nothing was submitted; caller frees */
    double waited;         /* seconds a WAIT waited */
    wait_end end;
} task_run;

/* The tail every job-running statement shares (rankings, FINETUNE, SELECT vec): submits the
 * unfinished jobs (none on a dry run), records them under a query id (set in result as
 * "query_id"), and with wait blocks until they end. A cancelled WAIT is a 499 at pos. */
bool task_run_jobs(exec_ctx *ctx, job_set *s, bool wait, ast_pos pos, json_t *result,
                   task_run *run, exec_error *err);

/* Counts the submitted jobs by status and sets result's "jobs" {total, cached, submitted,
 * remaining, failed}, "remaining_jobs", "status" (dry, running, partial — a job failed or
 * incomplete says so — or complete) and "wait_seconds", with a notice for a dry run and for
 * a WAIT that stopped at its limit. Returns the jobs remaining (on a dry run, those that
 * would run), or -1 with *err. The caller says what the known part is when jobs are still
 * running (task_still_running). */
long task_report_jobs(exec_ctx *ctx, const job_set *s, const task_run *run, bool wait,
                      bool incomplete, json_t *result, exec_error *err);

/* Whether jobs are still running after the WAIT (or without one): the caller's notice. */
bool task_still_running(const exec_ctx *ctx, const task_run *run, long remaining);

/* ---- cost estimates (task_jobs.c) ------------------------------------------------------ */

/* The inference rate of each model in planner/cost.h's order (model_costs measured on the
 * device that embedded most rows, the check's latency_ms, num_params, default), and, when
 * dims is not NULL, its registered dimension (0 when unknown). */
bool task_model_rates(exec_ctx *ctx, const int64_t *ids, size_t n, cost_rate *rates,
                      int64_t *dims, exec_error *err);

/* Actual seconds of the jobs of s that finished since `since` (a timestamptz text): per
 * kind, the "seconds" their results report (else finished_at − started_at). Jobs that
 * finished before (cache hits, work of other queries) count 0. */
bool task_actual_seconds(exec_ctx *ctx, const job_set *s, const char *since, json_t **out,
                         exec_error *err);

/* The database's clock now, as timestamptz text (caller frees), or NULL with *err. */
char *task_db_now(exec_ctx *ctx, exec_error *err);

#endif
