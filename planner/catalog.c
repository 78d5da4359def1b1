/* The planner's whitelists of tables and columns (see catalog.h and sql/001_catalog.sql). */
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "planner/catalog.h"

#define BIT(t) (1u << (t))
#define ALL_MODELS (BIT(TABLE_MODELS) | BIT(TABLE_IMAGE_MODELS) | BIT(TABLE_TEXT_MODELS))
#define DATASETS BIT(TABLE_DATASETS)
#define JOBS BIT(TABLE_JOBS)

static const catalog_column columns[] = {
    /* models (and the image_models / text_models views of it) */
    {"id", "t.id", CT_INT, ALL_MODELS | DATASETS | JOBS},
    {"name", "t.name", CT_TEXT, ALL_MODELS | DATASETS},
    {"modality", "t.modality", CT_TEXT, ALL_MODELS | DATASETS},
    {"source", "t.source", CT_TEXT, ALL_MODELS},
    {"runner", "t.runner", CT_TEXT, ALL_MODELS},
    {"spec", "t.spec", CT_JSON, ALL_MODELS | DATASETS},
    {"num_params", "t.num_params", CT_INT, ALL_MODELS},
    {"dimension", "t.dimension", CT_INT, ALL_MODELS},
    {"image_size", "t.image_size", CT_INT, BIT(TABLE_MODELS) | BIT(TABLE_IMAGE_MODELS)},
    {"token_length", "t.token_length", CT_INT, BIT(TABLE_MODELS) | BIT(TABLE_TEXT_MODELS)},
    {"batch_size", "t.batch_size", CT_INT, ALL_MODELS},
    {"up_acc", "t.up_acc", CT_FLOAT, ALL_MODELS},
    {"date_added", "t.date_added", CT_DATE, ALL_MODELS | DATASETS},
    {"tags", "t.tags", CT_TEXTARRAY, ALL_MODELS},
    {"finetuned", "t.finetuned", CT_BOOL, ALL_MODELS},
    /* The parent's name, not its id: ids are internal. */
    {"parent", "(SELECT p.name FROM models p WHERE p.id = t.parent_model_id)", CT_TEXT, ALL_MODELS},
    {"created_at", "t.created_at", CT_TIMESTAMP, ALL_MODELS | DATASETS | JOBS},
    {"updated_at", "t.updated_at", CT_TIMESTAMP, ALL_MODELS | DATASETS | JOBS},
    /* datasets */
    {"format", "t.format", CT_TEXT, DATASETS},
    {"location", "t.location", CT_TEXT, DATASETS},
    {"split", "t.split", CT_TEXT, DATASETS},
    {"slice_start", "t.slice_start", CT_INT, DATASETS},
    {"slice_stop", "t.slice_stop", CT_INT, DATASETS},
    {"size", "t.size", CT_INT, DATASETS},
    {"num_classes", "t.num_classes", CT_INT, DATASETS},
    {"digest", "t.digest", CT_TEXT, DATASETS},
    /* jobs */
    {"hash", "t.hash", CT_TEXT, JOBS},
    {"kind", "t.kind", CT_TEXT, JOBS},
    {"status", "t.status", CT_TEXT, ALL_MODELS | JOBS},
    /* models: what their check measured (sql/006_model_checks.sql) */
    {"status_message", "t.status_message", CT_TEXT, ALL_MODELS},
    {"latency_ms", "t.latency_ms", CT_FLOAT, ALL_MODELS},
    {"measured_on", "t.measured_on", CT_TEXT, ALL_MODELS},
    {"checked_at", "t.checked_at", CT_TIMESTAMP, ALL_MODELS},
    {"payload", "t.payload", CT_JSON, JOBS},
    {"result", "t.result", CT_JSON, JOBS},
    {"error", "t.error", CT_TEXT, JOBS},
    {"attempts", "t.attempts", CT_INT, JOBS},
    {"max_attempts", "t.max_attempts", CT_INT, JOBS},
    {"lease_owner", "t.lease_owner", CT_TEXT, JOBS},
    {"lease_expires_at", "t.lease_expires_at", CT_TIMESTAMP, JOBS},
    {"priority", "t.priority", CT_INT, JOBS},
    {"progress", "t.progress", CT_FLOAT, JOBS},
    {"progress_note", "t.progress_note", CT_TEXT, JOBS},
    {"run_after", "t.run_after", CT_TIMESTAMP, JOBS},
    {"started_at", "t.started_at", CT_TIMESTAMP, JOBS},
    {"finished_at", "t.finished_at", CT_TIMESTAMP, JOBS},
};

static const char *const models_defaults[] = {
    "name", "modality", "source", "runner", "num_params", "dimension", "image_size",
    "token_length", "batch_size", "up_acc", "date_added", "tags", "finetuned", "parent",
    "spec", NULL};
static const char *const image_defaults[] = {
    "name", "source", "runner", "num_params", "dimension", "image_size", "batch_size",
    "up_acc", "date_added", "tags", "finetuned", "parent", "spec", NULL};
static const char *const text_defaults[] = {
    "name", "source", "runner", "num_params", "dimension", "token_length", "batch_size",
    "up_acc", "date_added", "tags", "finetuned", "parent", "spec", NULL};
static const char *const datasets_defaults[] = {
    "name", "modality", "format", "location", "split", "slice_start", "slice_stop", "size",
    "num_classes", "date_added", "spec", NULL};
static const char *const jobs_defaults[] = {
    "id", "kind", "status", "attempts", "progress", "progress_note", "error", "created_at",
    "started_at", "finished_at", NULL};

static const catalog_table tables[] = {
    {TABLE_MODELS, "models", ENTITY_MODELS, "models", NULL, "spec", models_defaults},
    {TABLE_IMAGE_MODELS, "image_models", ENTITY_MODELS, "models", "t.modality = 'image'", "spec",
     image_defaults},
    {TABLE_TEXT_MODELS, "text_models", ENTITY_MODELS, "models", "t.modality = 'text'", "spec",
     text_defaults},
    {TABLE_DATASETS, "datasets", ENTITY_DATASETS, "datasets", NULL, "spec", datasets_defaults},
    {TABLE_JOBS, "jobs", ENTITY_JOBS, "jobs", NULL, "payload", jobs_defaults},
};

/* SHiFT's model JSON keys (shift-spec §3.3) and the builtin runner's parameters (the options
 * of executor/workers/embed/embed.h's extractors). */
static const char *const model_spec_keys[] = {
    "tf_image_model_url", "tf_text_model_url", "output_key", "required_image_size", "hf_name",
    "max_length", "pooled_output", "tokenizer_params", "torchvision_name", "image_layer_path",
    "text_layer_path", "noop_target_image_size", "noop_text", "reshape_image_size", "base_model",
    "train_readers", "lr", "epochs", "tf_image_name", "tf_text_name", "extractor", "k", "seed",
    "whiten", "gamma", "factor", "bins", "grid", "cell", "block", "width", "ksize", "path",
    "command", "model_identifier", NULL};
/* SHiFT's reader JSON keys. */
static const char *const dataset_spec_keys[] = {
    "vtab_name", "use_feature", "use_label", "tf_dataset_name", "embed_feature_path",
    "label_feature_path", "other_features", "shuffle", "hf_dataset_name", "configuration", "seed",
    "images_path", "use_images", "use_labels", "job_hash", "numpy_path", "embed_feature",
    "label_feature", "train_split", "labels", NULL};

const catalog_table *catalog_table_get(plan_table t)
{
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (tables[i].id == t)
            return &tables[i];
    return &tables[0];
}

const catalog_column *catalog_column_find(plan_table t, const char *name)
{
    for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++)
        if ((columns[i].tables & BIT(t)) && strcasecmp(columns[i].name, name) == 0)
            return &columns[i];
    return NULL;
}

const catalog_column *catalog_column_find_entity(plan_entity e, const char *name)
{
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (tables[i].entity != e)
            continue;
        const catalog_column *c = catalog_column_find(tables[i].id, name);
        if (c)
            return c;
    }
    return NULL;
}

bool catalog_known_spec_key(plan_entity e, const char *name)
{
    const char *const *keys = e == ENTITY_MODELS ? model_spec_keys
                              : e == ENTITY_DATASETS ? dataset_spec_keys
                                                     : NULL;
    for (size_t i = 0; keys && keys[i]; i++)
        if (strcmp(keys[i], name) == 0)
            return true;
    return false;
}

size_t catalog_edit_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb] > cap ? cap + 1 : prev[lb];
}

const char *catalog_suggest_column(plan_table t, const char *name)
{
    size_t len = strlen(name);
    size_t cap = len / 3 > 2 ? len / 3 : 2;
    const char *best = NULL;
    size_t best_d = cap + 1;
    for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++) {
        if (!(columns[i].tables & BIT(t)))
            continue;
        size_t d = catalog_edit_distance(name, columns[i].name, cap);
        if (strcasecmp(name, columns[i].name) == 0)
            d = 0;
        if (d < best_d) {
            best_d = d;
            best = columns[i].name;
        }
    }
    return best;
}

/* ---- public name helpers (planner.h) ------------------------------------------------ */

bool planner_table_lookup(const char *name, plan_table *out)
{
    if (strcasecmp(name, "readers") == 0) {
        *out = TABLE_DATASETS;
        return true;
    }
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (strcasecmp(tables[i].name, name) == 0) {
            *out = tables[i].id;
            return true;
        }
    return false;
}

const char *planner_table_name(plan_table t)
{
    return catalog_table_get(t)->name;
}

plan_entity planner_table_entity(plan_table t)
{
    return catalog_table_get(t)->entity;
}

const char *planner_entity_name(plan_entity e)
{
    switch (e) {
    case ENTITY_MODELS: return "models";
    case ENTITY_DATASETS: return "datasets";
    case ENTITY_JOBS: return "jobs";
    }
    return "rows";
}

bool planner_name_reserved(const char *name)
{
    static const char *const reserved[] = {"query_type", "response", "remaining_tasks", NULL};
    plan_table t;
    if (planner_table_lookup(name, &t))
        return true;
    for (size_t i = 0; reserved[i]; i++)
        if (strcasecmp(reserved[i], name) == 0)
            return true;
    return false;
}
