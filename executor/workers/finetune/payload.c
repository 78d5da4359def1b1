/* Canonical fine-tune payloads (finetune.h). */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/runners/replay.h"
#include "queue/queue.h"

/* {"id", "name", "spec"} of a catalog object, or NULL with *err naming what is missing. */
static json_t *catalog_ref(const json_t *obj, const char *what, char **err)
{
    const json_t *id = json_object_get(obj, "id");
    const char *name = json_string_value(json_object_get(obj, "name"));
    const json_t *spec = json_object_get(obj, "spec");
    if (!json_is_integer(id) || !name || !json_is_object(spec)) {
        *err = xasprintf("replay fine-tune: the %s needs an integer id, a name and a spec object",
                         what);
        return NULL;
    }
    return json_pack("{s:O, s:s, s:O}", "id", id, "name", name, "spec", spec);
}

json_t *finetune_replay_payload(const json_t *model, const json_t *data, char **err)
{
    json_t *m = catalog_ref(model, "model", err);
    json_t *d = m ? catalog_ref(data, "dataset", err) : NULL;
    if (!d) {
        json_decref(m);
        return NULL;
    }
    const json_t *mspec = json_object_get(m, "spec"), *dspec = json_object_get(d, "spec");
    const char *records = json_string_value(json_object_get(mspec, "records"));
    if (!records)
        records = json_string_value(json_object_get(dspec, "records"));
    const char *ident = json_string_value(json_object_get(mspec, "model_identifier"));
    const char *task = json_string_value(json_object_get(dspec, "train_dataset_name"));
    if (!task)
        task = json_string_value(json_object_get(d, "name"));
    json_t *out = NULL;
    char hex[HASH_HEX_LEN + 1];
    if (!ident || !*ident)
        *err = xasprintf("replay fine-tune: model \"%s\" has no spec.model_identifier",
                         json_string_value(json_object_get(m, "name")));
    else if (!records || !*records)
        *err = xasprintf("replay fine-tune: neither model \"%s\" nor dataset \"%s\" names a "
                         "records file (spec.records)",
                         json_string_value(json_object_get(m, "name")),
                         json_string_value(json_object_get(d, "name")));
    else if (replay_file_digest(records, hex, err) == 0)
        out = json_pack("{s:s, s:O, s:O, s:{s:s, s:s, s:s, s:s}, s:{}}", "runner", "replay",
                        "model", m, "dataset", d, "replay", "records", records,
                        "model_identifier", ident, "train_dataset_name", task, "digest", hex,
                        "knobs");
    json_decref(m);
    json_decref(d);
    return out;
}

/* {"id", "name", "start", "stop"} of a dataset object: what the cache row needs. */
static json_t *dataset_ref(const json_t *o)
{
    return json_pack("{s:O, s:O, s:O?, s:O?}", "id", json_object_get(o, "id"), "name",
                     json_object_get(o, "name"), "start", json_object_get(o, "start"), "stop",
                     json_object_get(o, "stop"));
}

static json_t *job_entry(const char *kind, json_t *payload)
{
    char hex[HASH_HEX_LEN + 1];
    queue_job_hash(kind, payload, hex);
    return json_pack("{s:s, s:o, s:s}", "kind", kind, "payload", payload, "hash", hex);
}

json_t *finetune_head_jobs(const json_t *model, const json_t *train, const json_t *test,
                           const json_t *knobs, char **err, const char **bad_knob)
{
    *bad_knob = NULL;
    if (!json_is_object(model) || !json_is_integer(json_object_get(model, "id")) ||
        !json_is_string(json_object_get(model, "runner")) || !json_is_array(train) ||
        json_array_size(train) == 0 || (test && !json_is_object(test))) {
        *err = xstrdup("head fine-tune: needs a model object (id, runner, …), a non-empty array "
                       "of training dataset objects and at most one test dataset object");
        return NULL;
    }
    json_t *resolved = finetune_knobs_resolve(finetune_knob_config("head"), knobs, err, bad_knob);
    if (!resolved)
        return NULL;
    const json_t *spec = json_object_get(model, "spec");
    embed_spec es;
    char *eerr = NULL;
    bool needs_fit = strcmp(json_string_value(json_object_get(model, "runner")), "builtin") == 0 &&
                     embed_spec_from_json(spec, &es, &eerr) == 0 && embed_needs_fit(&es);
    free(eerr);
    json_t *fit = needs_fit ? json_incref(json_array_get(train, 0)) : json_null();
    json_t *jobs = json_array(), *deps = json_array();
    json_t *trparts = json_array(), *teparts = json_array(), *refs = json_array();
    for (size_t i = 0; i < json_array_size(train) + (test != NULL); i++) {
        const json_t *d = i < json_array_size(train) ? json_array_get(train, i) : test;
        json_t *e = job_entry("embed", json_pack("{s:O, s:O, s:O}", "model", model, "dataset", d,
                                                  "fit", fit));
        json_array_append_new(i < json_array_size(train) ? trparts : teparts,
                              json_pack("{s:O}", "features", json_object_get(e, "hash")));
        if (i < json_array_size(train))
            json_array_append_new(refs, dataset_ref(d));
        json_array_append_new(deps, json_integer((json_int_t)json_array_size(jobs)));
        json_array_append_new(jobs, e);
    }
    json_t *ft = json_pack("{s:s, s:O, s:o, s:o, s:o, s:o, s:o}", "runner", "head", "model",
                           model, "datasets", refs, "knobs", resolved, "fit", fit, "train",
                           trparts, "test", teparts);
    if (test)
        json_object_set_new(ft, "test_dataset", dataset_ref(test));
    json_t *e = job_entry("finetune", ft);
    json_object_set_new(e, "deps", deps);
    json_array_append_new(jobs, e);
    return jobs;
}
