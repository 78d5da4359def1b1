/* Task-aware queries: the set of jobs a query needs, what the caches already hold, submission
 * to the queue, the query's record for CANCEL QUERY, and WAIT with progress. */
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/task.h"
#include "executor/workers/featstore.h"
#include "queue/queue.h"

/* Jobs that give a ranking its results (proxy, strategy) go first: once its embeddings
 * exist, a ranking is one job from done. */
enum { EMBED_PRIORITY = 0, RESULT_PRIORITY = 10 };

/* ---- jobs ----------------------------------------------------------------------------- */

void task_job_set_free(job_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        json_decref(s->items[i].payload);
        free(s->items[i].deps);
    }
    free(s->items);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

/* A hash's first 16 hex digits: SHA-256 output is uniform, so they index well. */
static size_t slot_key(const char *hex)
{
    uint64_t k = 0;
    for (int i = 0; i < 16 && hex[i]; i++)
        k = k << 4 | (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    return (size_t)k;
}

/* The slot that holds hash, or the empty slot where it would go. */
static size_t *slot_for(const job_set *s, const char *hash)
{
    size_t mask = s->nslots - 1;
    for (size_t i = slot_key(hash) & mask;; i = (i + 1) & mask)
        if (s->slots[i] == 0 || strcmp(s->items[s->slots[i] - 1].hash, hash) == 0)
            return &s->slots[i];
}

static void grow_slots(job_set *s)
{
    free(s->slots);
    s->nslots = s->nslots ? 2 * s->nslots : 64;
    s->slots = xcalloc(s->nslots, sizeof *s->slots);
    for (size_t i = 0; i < s->n; i++)
        *slot_for(s, s->items[i].hash) = i + 1;
}

size_t task_job_find(const job_set *s, const char *hash)
{
    if (s->nslots == 0)
        return SIZE_MAX;
    size_t slot = *slot_for(s, hash);
    return slot ? slot - 1 : SIZE_MAX;
}

/* Adds a job (or finds it); returns its index. Steals payload. */
size_t task_job_set_add(job_set *s, const char *kind, json_t *payload)
{
    char hash[HASH_HEX_LEN + 1];
    queue_job_hash(kind, payload, hash);
    size_t found = task_job_find(s, hash);
    if (found != SIZE_MAX) {
        json_decref(payload);
        return found;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->items = xrealloc(s->items, s->cap * sizeof *s->items);
    }
    job_ref *j = &s->items[s->n];
    memset(j, 0, sizeof *j);
    memcpy(j->hash, hash, sizeof hash);
    j->kind = kind;
    j->payload = payload;
    s->n++;
    if (2 * s->n > s->nslots)
        grow_slots(s); /* re-inserts every job, this one included */
    else
        *slot_for(s, hash) = s->n;
    return s->n - 1;
}

void task_job_add_dep(job_set *s, size_t job, size_t dep)
{
    job_ref *j = &s->items[job];
    for (size_t i = 0; i < j->ndeps; i++)
        if (j->deps[i] == dep)
            return;
    j->deps = xrealloc(j->deps, (j->ndeps + 1) * sizeof *j->deps);
    j->deps[j->ndeps++] = dep;
}

/* Which of the hashes have rows in table: marks cached. */
bool task_mark_cached(exec_ctx *ctx, job_set *s, const char *kind, const char *table,
                      exec_error *err)
{
    json_t *hashes = json_array();
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].kind, kind) == 0)
            json_array_append_new(hashes, json_string(s->items[i].hash));
    if (json_array_size(hashes) == 0) {
        json_decref(hashes);
        return true;
    }
    char *text = json_dumps(hashes, JSON_COMPACT);
    json_decref(hashes);
    char *sql = xasprintf("SELECT hash FROM %s WHERE hash = ANY (SELECT jsonb_array_elements_text"
                          "($1::jsonb))",
                          table);
    const char *params[] = {text};
    PGresult *res = exec_sql(ctx, sql, 1, params, err);
    free(sql);
    free(text);
    if (!res)
        return false;
    for (int r = 0; r < PQntuples(res); r++) {
        size_t i = task_job_find(s, PQgetvalue(res, r, 0));
        if (i != SIZE_MAX)
            s->items[i].cached = true;
    }
    PQclear(res);
    return true;
}

/* A feature_cache row whose file is gone or has the wrong size (deleted by hand, a data
 * directory restored without its features/, a torn copy) would fail every proxy job that
 * reads it: forget the row, so the embedding is computed again. rankqld and its workers
 * share the data directory (docs/jobs.md), so what this process sees is what workers see. */
bool task_forget_missing_features(exec_ctx *ctx, job_set *s, exec_error *err)
{
    if (!ctx->data_dir)
        return true;
    json_t *hashes = json_array();
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].kind, "embed") == 0 && s->items[i].cached)
            json_array_append_new(hashes, json_string(s->items[i].hash));
    char *text = json_dumps(hashes, JSON_COMPACT);
    json_decref(hashes);
    const char *params[] = {text};
    PGresult *res = exec_sql(ctx,
                             "SELECT hash, bytes FROM feature_cache WHERE hash = ANY "
                             "(SELECT jsonb_array_elements_text($1::jsonb))",
                             1, params, err);
    free(text);
    if (!res)
        return false;
    bool ok = true;
    for (int r = 0; ok && r < PQntuples(res); r++) {
        const char *hash = PQgetvalue(res, r, 0);
        char *rel = featstore_relpath(hash);
        char *path = xasprintf("%s/%s", ctx->data_dir, rel);
        struct stat st;
        bool sound = stat(path, &st) == 0 &&
                     (PQgetisnull(res, r, 1) ||
                      (long long)st.st_size == strtoll(PQgetvalue(res, r, 1), NULL, 10));
        free(rel);
        free(path);
        if (sound)
            continue;
        const char *p1[] = {hash};
        ok = exec_cmd(ctx, "DELETE FROM feature_cache WHERE hash = $1", 1, p1, err) >= 0;
        size_t i = task_job_find(s, hash);
        if (ok && i != SIZE_MAX)
            s->items[i].cached = false;
    }
    PQclear(res);
    return ok;
}

/* A job row marked done whose result row is gone (PURGE) would never run again: put it
 * back in the queue. */
static bool requeue_if_stale(exec_ctx *ctx, int64_t id, exec_error *err)
{
    char idtext[32];
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    const char *params[] = {idtext};
    return exec_cmd(ctx,
                    "UPDATE jobs SET status = 'queued', attempts = 0, result = NULL, error = NULL, "
                    "finished_at = NULL, started_at = NULL, progress = 0, progress_note = NULL, "
                    "run_after = now() WHERE id = $1 AND status = 'done'",
                    1, params, err) >= 0;
}

/* Submits every job whose result is not cached (embed jobs first, so proxy jobs can name
 * them as dependencies). Returns the number submitted, or -1. */
long task_submit_jobs(exec_ctx *ctx, job_set *s, exec_error *err)
{
    long submitted = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->n; i++) {
            job_ref *j = &s->items[i];
            bool embed = strcmp(j->kind, "embed") == 0;
            if (embed != (pass == 0) || j->cached)
                continue;
            /* Every dependency, however many parts the query names: a proxy job that
             * missed one could be claimed before that embedding exists. */
            int64_t *deps = xcalloc(j->ndeps + 1, sizeof *deps);
            size_t nd = 0;
            for (size_t k = 0; k < j->ndeps; k++)
                if (!s->items[j->deps[k]].cached)
                    deps[nd++] = s->items[j->deps[k]].id;
            char status[QUEUE_KIND_MAX];
            char *qerr = NULL;
            int rc = queue_submit(ctx->conn, j->kind, j->payload, deps, nd,
                                  embed ? EMBED_PRIORITY : RESULT_PRIORITY, &j->id, status,
                                  &qerr);
            free(deps);
            if (rc != 0) {
                exec_fail(err, 503, "database_error", no_pos, "cannot submit a job: %s",
                          qerr ? qerr : "unknown error");
                free(qerr);
                return -1;
            }
            if (strcmp(status, "done") == 0 && !requeue_if_stale(ctx, j->id, err))
                return -1;
            submitted++;
        }
    }
    return submitted;
}

/* ---- WAIT ----------------------------------------------------------------------------- */

char *task_submitted_ids(const job_set *s)
{
    strbuf sb = {0};
    strbuf_putc(&sb, '{');
    bool first = true;
    for (size_t i = 0; i < s->n; i++)
        if (!s->items[i].cached) {
            strbuf_printf(&sb, "%s%lld", first ? "" : ",", (long long)s->items[i].id);
            first = false;
        }
    strbuf_putc(&sb, '}');
    return strbuf_detach(&sb);
}

/* Records the jobs this query submitted (or shared) under a new query id, for CANCEL QUERY.
 * Returns the id (caller frees), or NULL with *err. */
char *task_record_query(exec_ctx *ctx, const job_set *s, exec_error *err)
{
    char *ids = task_submitted_ids(s);
    const char *session = ctx->session_id && text_is_uuid(ctx->session_id) ? ctx->session_id
                                                                             : NULL;
    const char *params[] = {session, ids};
    PGresult *res = exec_sql(ctx,
                             "WITH q AS (INSERT INTO queries (session_id) "
                             "  SELECT s.id FROM (SELECT $1::uuid AS id) v "
                             "  LEFT JOIN sessions s ON s.id = v.id RETURNING id), "
                             "j AS (INSERT INTO query_jobs (query_id, job_id) "
                             "  SELECT q.id, u FROM q, unnest($2::bigint[]) AS u "
                             "  ON CONFLICT DO NOTHING) "
                             "SELECT id FROM q",
                             2, params, err);
    free(ids);
    if (!res)
        return NULL;
    char *id = PQntuples(res) == 1 ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    if (!id)
        exec_fail(err, 500, "internal_error", no_pos, "the query could not be recorded");
    return id;
}

bool task_count_jobs(exec_ctx *ctx, const char *ids, job_counts *c, exec_error *err)
{
    const char *params[] = {ids};
    PGresult *res = exec_sql(ctx,
                             "SELECT status, count(*), coalesce(sum(progress), 0) FROM jobs "
                             "WHERE id = ANY ($1::bigint[]) GROUP BY status",
                             1, params, err);
    if (!res)
        return false;
    memset(c, 0, sizeof *c);
    for (int r = 0; r < PQntuples(res); r++) {
        const char *st = PQgetvalue(res, r, 0);
        long n = strtol(PQgetvalue(res, r, 1), NULL, 10);
        c->total += n;
        if (strcmp(st, "done") == 0)
            c->done += n;
        else if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0)
            c->failed += n;
        else if (strcmp(st, "running") == 0) {
            c->running += n;
            c->running_progress = strtod(PQgetvalue(res, r, 2), NULL);
        } else
            c->queued += n;
    }
    PQclear(res);
    return true;
}

static void report_progress(exec_ctx *ctx, const job_counts *c, const char *query_id,
                            double elapsed)
{
    if (!ctx->on_progress)
        return;
    double fraction = c->total ? ((double)(c->done + c->failed) + c->running_progress) /
                                     (double)c->total
                               : 1.0;
    if (fraction > 1)
        fraction = 1;
    json_t *eta = fraction > 0.02 && fraction < 1 ? json_real(elapsed * (1 - fraction) / fraction)
                                                  : (fraction >= 1 ? json_real(0) : json_null());
    json_t *ev = json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:o}", "type", "progress",
                           "jobs_total", (json_int_t)c->total, "jobs_done", (json_int_t)c->done,
                           "jobs_running", (json_int_t)c->running, "jobs_failed",
                           (json_int_t)c->failed, "fraction", fraction, "elapsed_seconds",
                           elapsed, "eta_seconds", eta);
    if (query_id) /* so a client can CANCEL QUERY what it stops waiting for */
        json_object_set_new(ev, "query_id", json_string(query_id));
    ctx->on_progress(ctx->progress_arg, ev);
    json_decref(ev);
}

/* Waits for a notification on the connection, at most timeout seconds. */
static void wait_notify(PGconn *conn, double timeout)
{
    int sock = PQsocket(conn);
    if (sock < 0)
        return;
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(sock, &fds);
    struct timeval tv = {(time_t)timeout, (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
    if (select(sock + 1, &fds, NULL, NULL, &tv) > 0) {
        PQconsumeInput(conn);
        PGnotify *n;
        while ((n = PQnotifies(conn)) != NULL)
            PQfreemem(n);
    }
}

wait_end task_wait_for_jobs(exec_ctx *ctx, const job_set *s, const char *query_id,
                            exec_error *err, double *elapsed)
{
    char *ids = task_submitted_ids(s);
    double start = now_seconds();
    wait_end end = WAIT_ERROR;
    if (exec_cmd(ctx, "LISTEN rankql_job_events", 0, NULL, err) < 0)
        goto out;
    for (;;) {
        job_counts c;
        if (!task_count_jobs(ctx, ids, &c, err))
            break;
        *elapsed = now_seconds() - start;
        report_progress(ctx, &c, query_id, *elapsed);
        if (c.queued == 0 && c.running == 0) {
            end = WAIT_DONE;
            break;
        }
        if (ctx->cancelled && *ctx->cancelled) {
            end = WAIT_CANCELLED;
            break;
        }
        if (ctx->wait_timeout_seconds > 0 && *elapsed >= ctx->wait_timeout_seconds) {
            end = WAIT_TIMEOUT;
            break;
        }
        /* Notifications wake us at once; the timeout bounds how stale the progress of a
         * running job (heart-beaten, not notified per step) gets. */
        wait_notify(ctx->conn, 0.5);
    }
    exec_error ignore;
    exec_cmd(ctx, "UNLISTEN *", 0, NULL, &ignore);
out:
    free(ids);
    return end;
}

bool task_run_jobs(exec_ctx *ctx, job_set *s, bool wait, ast_pos pos, json_t *result,
                   task_run *run, exec_error *err)
{
    *run = (task_run){.total = (long)s->n, .end = WAIT_DONE};
    for (size_t i = 0; i < s->n; i++)
        run->cached += s->items[i].cached;
    /* A dry run only looks: what is known, and how much work is left. */
    run->submitted = ctx->dry ? 0 : task_submit_jobs(ctx, s, err);
    if (run->submitted < 0)
        return false;
    if (run->submitted > 0 && !(run->query_id = task_record_query(ctx, s, err)))
        return false;
    if (run->query_id)
        json_object_set_new(result, "query_id", json_string(run->query_id));
    if (!wait || run->submitted == 0)
        return true;
    run->end = task_wait_for_jobs(ctx, s, run->query_id, err, &run->waited);
    if (run->end == WAIT_ERROR)
        return false;
    if (run->end == WAIT_CANCELLED)
        return exec_failb(err, 499, "cancelled", pos,
                          "the WAIT was cancelled; its jobs keep running (CANCEL QUERY '%s' "
                          "cancels them)",
                          run->query_id);
    return true;
}

long task_report_jobs(exec_ctx *ctx, const job_set *s, const task_run *run, bool wait,
                      bool incomplete, json_t *result, exec_error *err)
{
    job_counts c = {0};
    if (run->submitted > 0) {
        char *ids = task_submitted_ids(s);
        bool counted = task_count_jobs(ctx, ids, &c, err);
        free(ids);
        if (!counted)
            return -1;
    }
    long remaining = ctx->dry ? run->total - run->cached : c.queued + c.running;
    json_object_set_new(result, "jobs",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)run->total,
                                  "cached", (json_int_t)run->cached, "submitted",
                                  (json_int_t)run->submitted, "remaining", (json_int_t)remaining,
                                  "failed", (json_int_t)c.failed));
    json_object_set_new(result, "remaining_jobs", json_integer(remaining));
    json_object_set_new(result, "status",
                        json_string(remaining && ctx->dry    ? "dry"
                                    : remaining              ? "running"
                                    : incomplete || c.failed ? "partial"
                                                             : "complete"));
    if (wait && run->submitted > 0)
        json_object_set_new(result, "wait_seconds", json_real(run->waited));
    if (remaining && ctx->dry)
        result_notice(result, "dry run: %ld job%s would run; nothing was submitted", remaining,
                      remaining == 1 ? "" : "s");
    else if (remaining && run->end == WAIT_TIMEOUT)
        result_notice(result, "WAIT stopped after %.0f s with %ld jobs remaining; run the "
                              "statement again to collect them",
                      run->waited, remaining);
    return remaining;
}

bool task_still_running(const exec_ctx *ctx, const task_run *run, long remaining)
{
    return remaining && !ctx->dry && run->end != WAIT_TIMEOUT;
}

/* ---- cost estimates and actuals ------------------------------------------------------- */

bool task_model_rates(exec_ctx *ctx, const int64_t *ids, size_t n, cost_rate *rates,
                      int64_t *dims, exec_error *err)
{
    strbuf sb = {0};
    strbuf_putc(&sb, '{');
    for (size_t i = 0; i < n; i++)
        strbuf_printf(&sb, "%s%lld", i ? "," : "", (long long)ids[i]);
    strbuf_putc(&sb, '}');
    const char *params[] = {sb.data};
    /* latency_ms through to_jsonb: the column comes with the registration checks' migration
     * and is simply absent before it. */
    PGresult *res = exec_sql(ctx,
                             "SELECT m.id, c.seconds_per_row, c.device, "
                             "(to_jsonb(m) ->> 'latency_ms')::float8, m.num_params, m.dimension, "
                             "c.jobs, c.rows, c.seconds, c.rows_sq, c.rows_seconds "
                             "FROM models m LEFT JOIN LATERAL (SELECT seconds_per_row, device, "
                             "jobs, rows, seconds, rows_sq, rows_seconds "
                             "FROM model_costs WHERE model_id = m.id ORDER BY rows DESC, device "
                             "LIMIT 1) c ON true WHERE m.id = ANY ($1::bigint[])",
                             1, params, err);
    strbuf_free(&sb);
    if (!res)
        return false;
    for (size_t i = 0; i < n; i++) {
        rates[i] = cost_rate_of(-1, NULL, -1, 0);
        if (dims)
            dims[i] = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            if (strtoll(PQgetvalue(res, r, 0), NULL, 10) != ids[i])
                continue;
            rates[i] = cost_rate_of(
                PQgetisnull(res, r, 1) ? -1 : strtod(PQgetvalue(res, r, 1), NULL),
                PQgetisnull(res, r, 2) ? NULL : PQgetvalue(res, r, 2),
                PQgetisnull(res, r, 3) ? -1 : strtod(PQgetvalue(res, r, 3), NULL),
                PQgetisnull(res, r, 4) ? 0 : strtoll(PQgetvalue(res, r, 4), NULL, 10));
            /* measured: the fixed cost per job from jobs of different sizes */
            if (!PQgetisnull(res, r, 6))
                cost_rate_fit(&rates[i], strtoll(PQgetvalue(res, r, 6), NULL, 10),
                              strtod(PQgetvalue(res, r, 7), NULL),
                              strtod(PQgetvalue(res, r, 8), NULL),
                              strtod(PQgetvalue(res, r, 9), NULL),
                              strtod(PQgetvalue(res, r, 10), NULL));
            if (dims && !PQgetisnull(res, r, 5))
                dims[i] = strtoll(PQgetvalue(res, r, 5), NULL, 10);
            break;
        }
    }
    PQclear(res);
    return true;
}

char *task_db_now(exec_ctx *ctx, exec_error *err)
{
    PGresult *res = exec_sql(ctx, "SELECT clock_timestamp()::text", 0, NULL, err);
    if (!res)
        return NULL;
    char *now = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return now;
}

bool task_actual_seconds(exec_ctx *ctx, const job_set *s, const char *since, json_t **out,
                         exec_error *err)
{
    json_t *hashes = json_array();
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(hashes, json_string(s->items[i].hash));
    char *text = json_dumps(hashes, JSON_COMPACT);
    json_decref(hashes);
    const char *params[] = {text, since};
    PGresult *res = exec_sql(
        ctx,
        "SELECT kind, count(*), coalesce(sum(CASE WHEN jsonb_typeof(result -> 'seconds') = "
        "'number' THEN (result ->> 'seconds')::float8 ELSE extract(epoch FROM finished_at - "
        "started_at) END), 0) FROM jobs WHERE hash = ANY (SELECT jsonb_array_elements_text("
        "$1::jsonb)) AND status = 'done' AND finished_at >= $2::timestamptz GROUP BY kind "
        "ORDER BY kind",
        2, params, err);
    free(text);
    if (!res)
        return false;
    *out = json_object();
    double total = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        double secs = strtod(PQgetvalue(res, r, 2), NULL);
        total += secs;
        json_object_set_new(*out, PQgetvalue(res, r, 0),
                            json_pack("{s:I, s:f}", "jobs",
                                      (json_int_t)strtoll(PQgetvalue(res, r, 1), NULL, 10),
                                      "seconds", secs));
    }
    json_object_set_new(*out, "total_seconds", json_real(total));
    PQclear(res);
    return true;
}
