/* Task-aware queries: the datasets of TRAINED ON / TESTED ON — registered datasets or
 * variables of them, slices on top of registered slices, CHANGE mutations checked up front. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/task.h"
#include "executor/workers/embed/embed.h"

/* ---- datasets ------------------------------------------------------------------------- */

static bool is_file_format(const char *f)
{
    static const char *const formats[] = {"idx", "csv", "npy", "npz", "imagefolder", "text", NULL};
    for (size_t i = 0; formats[i]; i++)
        if (strcmp(formats[i], f) == 0)
            return true;
    return false;
}

static const char dataset_columns[] =
    "SELECT id, name, format, location, spec, digest, slice_start, slice_stop, size, modality "
    "FROM datasets ";

static int64_t opt_int(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? -1 : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

/* One row of dataset_columns → a dataset_use with the query's slice on top of the
 * registered one. */
static bool dataset_from_row(const PGresult *res, int r, const ast_dataset_ref *ref,
                             dataset_use *out, char **modality, exec_error *err)
{
    const char *name = PQgetvalue(res, r, 1), *format = PQgetvalue(res, r, 2);
    ast_pos pos = ref ? ref->h.pos : no_pos;
    if (strcmp(format, "replay") == 0) {
        /* A task of the recorded fine-tune runs (docs/runners.md "replay"): no rows to slice
         * or change, only replay models rank on it. */
        if (ref && (ref->has_slice || ref->changes))
            return exec_failb(err, 400, "semantic_error", pos,
                              "\"%s\" is a replay dataset (a task of recorded fine-tune runs): "
                              "it has no rows to slice or CHANGE", name);
        json_t *spec = json_loads(PQgetvalue(res, r, 4), 0, NULL);
        if (!json_is_string(json_object_get(spec, "records")) ||
            !json_is_string(json_object_get(spec, "train_dataset_name"))) {
            json_decref(spec);
            return exec_failb(err, 422, "validation_error", pos,
                              "replay dataset \"%s\" lacks spec.records or "
                              "spec.train_dataset_name: REGISTER it again", name);
        }
        out->labels_only = false;
        out->replay = true;
        out->size = -1;
        out->obj = json_pack("{s:I, s:s, s:s, s:o}", "id",
                             (json_int_t)strtoll(PQgetvalue(res, r, 0), NULL, 10), "name", name,
                             "format", format, "spec", spec);
        if (modality && !PQgetisnull(res, r, 9) && !*modality)
            *modality = xstrdup(PQgetvalue(res, r, 9));
        return true;
    }
    if (!is_file_format(format))
        return exec_failb(err, 422, "validation_error", pos,
                          "dataset \"%s\" has format %s, a catalogue entry rankql cannot read; "
                          "register a file (idx, csv, npy, npz, imagefolder, text) to rank on it",
                          name, format);
    json_t *spec = json_loads(PQgetvalue(res, r, 4), 0, NULL);
    if (!spec)
        spec = json_object();
    int64_t reg_start = opt_int(res, r, 6), reg_stop = opt_int(res, r, 7);
    json_t *slice = json_object_get(spec, "slice");
    if (json_is_object(slice)) { /* a slice kept in the spec counts like the columns */
        if (reg_start < 0 && json_is_integer(json_object_get(slice, "start")))
            reg_start = json_integer_value(json_object_get(slice, "start"));
        if (reg_stop < 0 && json_is_integer(json_object_get(slice, "stop")))
            reg_stop = json_integer_value(json_object_get(slice, "stop"));
    }
    json_object_del(spec, "slice");
    /* SHiFT-style catalogue keys that REGISTER keeps but the readers do not take (the
     * same ones REGISTER leaves out when it reads the file). */
    json_object_del(spec, "split");
    json_object_del(spec, "images_path");
    json_object_del(spec, "numpy_path");
    int64_t size = opt_int(res, r, 8);
    int64_t start = reg_start < 0 ? 0 : reg_start, stop = reg_stop;
    if (ref && ref->has_slice) {
        if (ref->has_slice_start)
            start += ref->slice_start;
        if (ref->has_slice_stop) {
            int64_t q = (reg_start < 0 ? 0 : reg_start) + ref->slice_stop;
            stop = stop < 0 || q < stop ? q : stop;
        }
        if (ref->has_slice_start && size >= 0 && ref->slice_start > size) {
            json_decref(spec);
            return exec_failb(err, 400, "semantic_error", pos,
                              "slice [%lld:…] of \"%s\" starts past its %lld examples",
                              (long long)ref->slice_start, name, (long long)size);
        }
        if (size >= 0) {
            int64_t a = ref->has_slice_start ? ref->slice_start : 0;
            int64_t b = ref->has_slice_stop && ref->slice_stop < size ? ref->slice_stop : size;
            size = b > a ? b - a : 0;
        }
        /* An empty slice would only submit jobs that fail ("no rows", a PCA that cannot be
         * fitted): say so before any job runs. */
        if (size == 0 || (stop >= 0 && stop <= start)) {
            json_decref(spec);
            return exec_failb(err, 400, "semantic_error", pos,
                              "slice of \"%s\" holds no examples: give a slice [a:b] with a < b",
                              name);
        }
    }
    out->labels_only = json_is_true(json_object_get(spec, "labels_only"));
    out->replay = false;
    out->size = size;
    out->obj = json_pack("{s:I, s:s, s:s, s:s?, s:o, s:s?, s:I, s:o}", "id",
                         (json_int_t)strtoll(PQgetvalue(res, r, 0), NULL, 10), "name", name,
                         "format", format, "location",
                         PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3), "spec", spec,
                         "digest", PQgetisnull(res, r, 5) ? NULL : PQgetvalue(res, r, 5),
                         "start", (json_int_t)start, "stop",
                         stop < 0 ? json_null() : json_integer(stop));
    if (modality && !PQgetisnull(res, r, 9) && !*modality)
        *modality = xstrdup(PQgetvalue(res, r, 9));
    return true;
}

static void dataset_list_add(dataset_list *l, dataset_use u)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    l->items[l->n++] = u;
}

void task_dataset_list_free(dataset_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->items[i].obj);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* A name in TRAINED ON / TESTED ON: a registered dataset, or a session variable holding
 * datasets (all of them, in its order). */
bool task_resolve_dataset(exec_ctx *ctx, const ast_dataset_ref *ref, dataset_list *out,
                          char **modality, exec_error *err)
{
    const char *name = ref->name.text;
    const char *params[] = {name};
    PGresult *res = exec_sql(ctx, "SELECT id, name, format, location, spec, digest, slice_start, "
                                  "slice_stop, size, modality FROM datasets WHERE name = $1",
                             1, params, err);
    if (!res)
        return false;
    if (PQntuples(res) == 1) {
        dataset_use u;
        bool ok = dataset_from_row(res, 0, ref, &u, modality, err);
        PQclear(res);
        if (ok)
            dataset_list_add(out, u);
        return ok;
    }
    PQclear(res);
    bool failed;
    json_t *var = var_fetch(ctx, name, err, &failed);
    if (failed)
        return false;
    const char *table = json_string_value(json_object_get(var, "table"));
    if (!var || !table || (strcmp(table, "datasets") != 0 && strcmp(table, "readers") != 0)) {
        json_decref(var);
        return exec_failb(err, 404, "not_found", ref->h.pos,
                          "no dataset named \"%s\" (REGISTER DATASET it, or DECLARE a variable "
                          "of datasets)",
                          name);
    }
    if (ref->changes || ref->has_slice) {
        json_decref(var);
        return exec_failb(err, 400, "semantic_error", ref->h.pos,
                          "\"%s\" is a variable of several datasets: slices and CHANGE apply to "
                          "one dataset",
                          name);
    }
    char *ids = json_dumps(json_object_get(var, "ids"), JSON_COMPACT);
    json_decref(var);
    size_t before = out->n;
    bool ok = task_resolve_dataset_ids(ctx, ids, out, modality, err);
    free(ids);
    if (ok && out->n == before)
        ok = exec_failb(err, 404, "not_found", ref->h.pos,
                        "variable \"%s\" holds no datasets that still exist", name);
    return ok;
}

bool task_resolve_dataset_ids(exec_ctx *ctx, const char *ids, dataset_list *out,
                              char **modality, exec_error *err)
{
    const char *p2[] = {ids};
    char *sql = xasprintf("%sWHERE id = ANY (translate($1, '[]', '{}')::bigint[]) "
                          "ORDER BY array_position(translate($1, '[]', '{}')::bigint[], id)",
                          dataset_columns);
    PGresult *res = exec_sql(ctx, sql, 1, p2, err);
    free(sql);
    if (!res)
        return false;
    bool ok = true;
    for (int r = 0; ok && r < PQntuples(res); r++) {
        dataset_use u;
        ok = dataset_from_row(res, r, NULL, &u, modality, err);
        if (ok)
            dataset_list_add(out, u);
    }
    PQclear(res);
    return ok;
}

/* ---- parts: a dataset with its mutations ---------------------------------------------- */

void task_part_list_free(part_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        json_decref(l->items[i].data.obj);
        for (size_t c = 0; c < l->items[i].nchanges; c++) {
            json_decref(l->items[i].changes[c].target.obj);
            json_decref(l->items[i].changes[c].base);
            json_decref(l->items[i].changes[c].other);
        }
        free(l->items[i].changes);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static json_t *index_array(const ast_int_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_integer(l->v[i]));
    return a;
}

static bool check_indices(const ast_int_list *l, const char *what, exec_error *err)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i] < 0)
            return exec_failb(err, 400, "semantic_error", l->pos,
                              "CHANGE %s indices must be non-negative (found %lld)", what,
                              (long long)l->v[i]);
        if (i > 0 && l->v[i] <= l->v[i - 1])
            return exec_failb(err, 400, "semantic_error", l->pos,
                              "CHANGE %s indices must be strictly increasing (%lld after %lld)",
                              what, (long long)l->v[i], (long long)l->v[i - 1]);
    }
    return true;
}

static bool resolve_changes(exec_ctx *ctx, const ast_dataset_ref *ref, part *p, exec_error *err)
{
    for (size_t i = 0; ref->changes && i < ref->changes->n; i++) {
        const ast_change *c = (const ast_change *)ref->changes->items[i];
        const ast_int_list *other = c->has_target_indices ? &c->target_indices : &c->base_indices;
        if (!check_indices(&c->base_indices, "base", err) || !check_indices(other, "target", err))
            return false;
        if (other->n != c->base_indices.n)
            return exec_failb(err, 400, "semantic_error", c->h.pos,
                              "CHANGE lists %zu base indices but %zu target indices",
                              c->base_indices.n, other->n);
        for (size_t k = 0; p->data.size >= 0 && k < c->base_indices.n; k++)
            if (c->base_indices.v[k] >= p->data.size)
                return exec_failb(err, 400, "semantic_error", c->base_indices.pos,
                                  "CHANGE index %lld is past the %lld examples of \"%s\"",
                                  (long long)c->base_indices.v[k], (long long)p->data.size,
                                  ref->name.text);
        dataset_list target = {0};
        if (!task_resolve_dataset(ctx, c->target, &target, NULL, err)) {
            task_dataset_list_free(&target);
            return false;
        }
        if (target.n != 1) {
            task_dataset_list_free(&target);
            return exec_failb(err, 400, "semantic_error", c->target->h.pos,
                              "a CHANGE target must be one dataset");
        }
        if (target.items[0].replay || p->data.replay) {
            task_dataset_list_free(&target);
            return exec_failb(err, 400, "semantic_error", c->target->h.pos,
                              "CHANGE works on rows: a replay dataset (recorded fine-tune runs) "
                              "has none");
        }
        /* The target's indices too, against its size: an index past it would only fail
         * the proxy jobs once they run. */
        for (size_t k = 0; target.items[0].size >= 0 && k < other->n; k++)
            if (other->v[k] >= target.items[0].size) {
                int64_t size = target.items[0].size;
                task_dataset_list_free(&target);
                return exec_failb(err, 400, "semantic_error", other->pos,
                                  "CHANGE target index %lld is past the %lld examples of \"%s\"",
                                  (long long)other->v[k], (long long)size, c->target->name.text);
            }
        p->changes = xrealloc(p->changes, (p->nchanges + 1) * sizeof *p->changes);
        p->changes[p->nchanges++] = (change_use){target.items[0], index_array(&c->base_indices),
                                                 index_array(other)};
        free(target.items);
    }
    return true;
}

bool task_resolve_parts(exec_ctx *ctx, const ast_list *refs, part_list *out, char **modality,
                        exec_error *err)
{
    for (size_t i = 0; refs && i < refs->n; i++) {
        const ast_dataset_ref *ref = (const ast_dataset_ref *)refs->items[i];
        dataset_list l = {0};
        if (!task_resolve_dataset(ctx, ref, &l, modality, err)) {
            task_dataset_list_free(&l);
            return false;
        }
        for (size_t k = 0; k < l.n; k++) {
            if (out->n == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 4;
                out->items = xrealloc(out->items, out->cap * sizeof *out->items);
            }
            part *p = &out->items[out->n++];
            memset(p, 0, sizeof *p);
            p->data = l.items[k];
            if (p->data.labels_only) {
                free(l.items);
                return exec_failb(err, 400, "semantic_error", ref->h.pos,
                                  "dataset \"%s\" holds only labels: use it as a CHANGE target",
                                  ref->name.text);
            }
            if (k == 0 && !resolve_changes(ctx, ref, p, err)) {
                free(l.items);
                return false;
            }
        }
        free(l.items);
    }
    return true;
}

/* ---- models --------------------------------------------------------------------------- */

json_t *task_model_obj(const PGresult *res, int r, bool *needs_fit)
{
    json_t *spec = json_loads(PQgetvalue(res, r, 4), 0, NULL);
    if (!spec)
        spec = json_object();
    const char *runner = PQgetvalue(res, r, 2);
    if (needs_fit) {
        embed_spec es;
        char *e = NULL;
        *needs_fit = strcmp(runner, "builtin") == 0 &&
                     embed_spec_from_json(spec, &es, &e) == 0 && embed_needs_fit(&es);
        free(e);
    }
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o}", "id",
                     (json_int_t)strtoll(PQgetvalue(res, r, 0), NULL, 10), "name",
                     PQgetvalue(res, r, 1), "runner", runner, "modality", PQgetvalue(res, r, 3),
                     "spec", spec, "batch_size",
                     PQgetisnull(res, r, 5)
                         ? json_null()
                         : json_integer(strtoll(PQgetvalue(res, r, 5), NULL, 10)));
}
