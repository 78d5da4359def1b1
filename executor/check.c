/* Model checks on the executor's side (docs/language.md "Model checks"): the check job a
 * REGISTER MODEL or CHECK MODEL submits (run by executor/workers/check_job.c), and the
 * look-up of `property OF "model"` values in queries, with their provenance. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "executor/internal.h"
#include "queue/queue.h"

/* Checks go before embeds and proxies: they are short, and a model is hidden from
 * nothing while it waits, but its status should not lag behind a long ranking. */
enum { CHECK_PRIORITY = 20, CHECK_SAMPLES = 16 };

/* Runners rankql does not execute: their models are catalog entries only. */
static bool catalog_only(const char *runner)
{
    static const char *const kinds[] = {"tfhub", "torchvision", "huggingface", "keras", NULL};
    for (size_t i = 0; kinds[i]; i++)
        if (strcmp(kinds[i], runner) == 0)
            return true;
    return false;
}

/* The same statement as queue_submit's, inside the caller's transaction, so a model row
 * and its check job commit (or roll back) together. */
static const char SUBMIT_SQL[] =
    "INSERT INTO jobs (hash, kind, payload, priority) VALUES ($1, 'check', $2::jsonb, $3::integer)"
    " ON CONFLICT (hash) DO UPDATE"
    "    SET status = 'queued', attempts = 0, error = NULL, result = NULL, finished_at = NULL,"
    "        started_at = NULL, lease_owner = NULL, lease_expires_at = NULL, progress = 0,"
    "        progress_note = NULL, run_after = now(), priority = EXCLUDED.priority"
    " RETURNING id";

/* A new check job for model (the payload's "model" object); its id into job_id. */
static bool submit(exec_ctx *ctx, json_t *model, char job_id[24], exec_error *err)
{
    /* "requested" makes every submission a new job: a re-check must run, not be shared
     * with the done job of an earlier check of the same model. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char requested[48];
    snprintf(requested, sizeof requested, "%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
    json_t *payload = json_pack("{s:O, s:i, s:s}", "model", model, "samples", CHECK_SAMPLES,
                                "requested", requested);
    char hash[HASH_HEX_LEN + 1];
    queue_job_hash("check", payload, hash);
    char *text = json_canonical(payload);
    json_decref(payload);
    char prio[16];
    snprintf(prio, sizeof prio, "%d", CHECK_PRIORITY);
    const char *params[] = {hash, text, prio};
    PGresult *res = exec_sql(ctx, SUBMIT_SQL, 3, params, err);
    free(text);
    if (!res)
        return false;
    snprintf(job_id, 24, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return true;
}

bool check_after_register(exec_ctx *ctx, const char *model_name, bool force, json_t *result,
                          exec_error *err)
{
    /* The model object of check (and embed) payloads, and the one its current check ran on. */
    const char *params[] = {model_name};
    PGresult *res = exec_sql(
        ctx,
        "SELECT m.id, m.runner, m.status,"
        "       jsonb_build_object('id', m.id, 'name', m.name, 'runner', m.runner,"
        "                          'modality', m.modality, 'spec', m.spec,"
        "                          'image_size', m.image_size, 'token_length', m.token_length,"
        "                          'dimension', m.dimension, 'batch_size', m.batch_size)::text,"
        "       (j.payload -> 'model') = jsonb_build_object('id', m.id, 'name', m.name,"
        "                          'runner', m.runner, 'modality', m.modality, 'spec', m.spec,"
        "                          'image_size', m.image_size, 'token_length', m.token_length,"
        "                          'dimension', m.dimension, 'batch_size', m.batch_size)"
        "         AND j.status NOT IN ('failed', 'cancelled')"
        "  FROM models m LEFT JOIN jobs j ON j.id = m.check_job_id"
        " WHERE m.name = $1 FOR UPDATE OF m",
        1, params, err);
    if (!res)
        return false;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return exec_failb(err, 404, "not_found", (ast_pos){0, 0, 0}, "no model named \"%s\"",
                          model_name);
    }
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    char *runner = xstrdup(PQgetvalue(res, 0, 1));
    char *status = xstrdup(PQgetvalue(res, 0, 2));
    json_t *model = json_loads(PQgetvalue(res, 0, 3), 0, NULL);
    bool current = !PQgetisnull(res, 0, 4) && strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    PQclear(res);
    bool ok = true;
    if (catalog_only(runner)) {
        char *msg = xasprintf("runner %s is not executed by rankql: a catalog entry only "
                              "(wrap the model in an exec or onnx runner to rank it)", runner);
        const char *p[] = {id, msg};
        ok = exec_cmd(ctx,
                      "UPDATE models SET status = 'UNCHECKED', status_message = $2,"
                      " latency_ms = NULL, measured_on = NULL, checked_at = NULL,"
                      " check_job_id = NULL WHERE id = $1::bigint AND"
                      " (status <> 'UNCHECKED' OR status_message IS DISTINCT FROM $2)",
                      2, p, err) >= 0;
        if (ok && result && force)
            result_notice(result, "model \"%s\" is not checked: %s", model_name, msg);
        free(msg);
    } else if (force || !current) {
        char job[24];
        ok = model && submit(ctx, model, job, err);
        const char *p[] = {id, job};
        ok = ok && exec_cmd(ctx,
                            "UPDATE models SET status = 'PENDING', status_message = NULL,"
                            " latency_ms = NULL, measured_on = NULL, checked_at = NULL,"
                            " check_job_id = $2::bigint WHERE id = $1::bigint",
                            2, p, err) >= 0;
        if (ok && result)
            result_notice(result, "model \"%s\": check job %s submitted (status PENDING until "
                          "a worker has run it; SHOW MODELS shows the outcome)",
                          model_name, job);
    }
    (void)status;
    free(runner);
    free(status);
    json_decref(model);
    return ok;
}

/* ---- CHECK MODEL "name" / CHECK MODELS ------------------------------------------------ */

json_t *exec_check(exec_ctx *ctx, const ast_check *c, exec_error *err)
{
    PGresult *res;
    if (c->all) {
        res = exec_sql(ctx, "SELECT name FROM models ORDER BY name", 0, NULL, err);
    } else {
        const char *p[] = {c->name.text};
        res = exec_sql(ctx, "SELECT name FROM models WHERE name = $1", 1, p, err);
    }
    if (!res)
        return NULL;
    if (!c->all && PQntuples(res) == 0) {
        PQclear(res);
        return exec_fail(err, 404, "not_found", c->name.pos, "no model named \"%s\"",
                         c->name.text);
    }
    json_t *result = result_new("CHECK");
    json_t *names = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(names, json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    bool ok = true;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        ok = check_after_register(ctx, json_string_value(n), true, c->all ? NULL : result, err);
        if (!ok)
            break;
    }
    json_t *rows = NULL;
    if (ok) {
        char *list = json_dumps(names, JSON_COMPACT);
        const char *p[] = {list};
        res = exec_sql(ctx,
                       "SELECT to_jsonb(m.name), to_jsonb(m.status), to_jsonb(m.check_job_id)"
                       "  FROM models m WHERE m.name IN"
                       "       (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY m.name",
                       1, p, err);
        free(list);
        ok = res != NULL;
        if (ok) {
            rows = json_array();
            for (int r = 0; r < PQntuples(res); r++) {
                json_t *row = json_array();
                for (int k = 0; k < 3; k++)
                    json_array_append_new(row, json_loads(PQgetvalue(res, r, k),
                                                          JSON_DECODE_ANY, NULL));
                json_array_append_new(rows, row);
            }
            PQclear(res);
        }
    }
    json_decref(names);
    if (!ok) {
        json_decref(result);
        return NULL;
    }
    result_set(result, json_pack("[s,s,s]", "name", "status", "check_job"), rows);
    if (c->all)
        result_notice(result, "%zu model%s: a check job each for the models rankql runs",
                      json_array_size(rows), json_array_size(rows) == 1 ? "" : "s");
    return result;
}

/* ---- property OF "model" --------------------------------------------------------------- */

bool exec_resolve_refs(exec_ctx *ctx, plan *p, exec_error *err)
{
    for (size_t i = 0; i < p->nrefs; i++) {
        const plan_ref *r = &p->refs[i];
        const char *column = plan_ref_column(r->property); /* whitelisted: safe in SQL text */
        if (!column)
            return exec_failb(err, 500, "internal_error", r->pos, "unknown property %s",
                              r->property);
        char *sql = xasprintf(
            "SELECT (%s)::double precision, status, measured_on,"
            "       to_char(checked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',"
            "       runner FROM models WHERE name = $1",
            column);
        const char *params[] = {r->model};
        PGresult *res = exec_sql(ctx, sql, 1, params, err);
        free(sql);
        if (!res)
            return false;
        if (PQntuples(res) != 1) {
            PQclear(res);
            return exec_failb(err, 404, "not_found", r->pos, "%s OF \"%s\": no model named \"%s\"",
                              r->property, r->model, r->model);
        }
        if (PQgetisnull(res, 0, 0)) {
            const char *status = PQgetvalue(res, 0, 1);
            char why[256];
            if (strcmp(r->property, "latency_ms") != 0)
                snprintf(why, sizeof why, "the catalog has no %s for it", r->property);
            else if (strcmp(status, "PENDING") == 0)
                snprintf(why, sizeof why, "its check has not finished yet (status PENDING); "
                         "SHOW MODELS says when it has");
            else if (strcmp(status, "UNCHECKED") == 0)
                snprintf(why, sizeof why, "runner %s models are not run by rankql (status "
                         "UNCHECKED)", PQgetvalue(res, 0, 4));
            else
                snprintf(why, sizeof why, "its check measured none (status %s); CHECK MODEL "
                         "\"%.100s\" runs it again", status, r->model);
            exec_failb(err, 409, "no_measurement", r->pos, "%s OF \"%s\": model \"%s\" has no "
                       "measured %s: %s", r->property, r->model, r->model, r->property, why);
            PQclear(res);
            return false;
        }
        double v = strtod(PQgetvalue(res, 0, 0), NULL);
        planner_resolve_ref(p, i, v, PQgetvalue(res, 0, 1),
                            PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2),
                            PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3));
        PQclear(res);
        p->notices = xrealloc(p->notices, (p->nnotices + 1) * sizeof *p->notices);
        p->notices[p->nnotices++] = planner_ref_text(&p->refs[i]);
    }
    return true;
}
