/* Canonical fine-tune payloads (finetune.h). */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "executor/workers/finetune/finetune.h"
#include "executor/workers/runners/replay.h"

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

json_t *finetune_replay_payload(const json_t *model, const json_t *dataset, char **err)
{
    json_t *m = catalog_ref(model, "model", err);
    json_t *d = m ? catalog_ref(dataset, "dataset", err) : NULL;
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
