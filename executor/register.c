/* REGISTER MODEL / REGISTER DATASET: validate every field, then insert or update by name.
 *
 * Upsert rule (docs/language.md, "REGISTER"): on an existing name, exactly the fields
 * named in the statement are replaced, plus what is derived from them (the spec from
 * SHiFT's JSON keys, the runner from the spec's keys when runner is not named, image_size
 * from required_image_size, spec.split from split); every other field keeps its value.
 * A new name gets defaults for what is not named (date_added today, source from the
 * runner, tags empty, finetuned false). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/hash.h"
#include "common/util.h"
#include "datasets/dataset.h"
#include "executor/internal.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/runners/replay.h"
#include "planner/catalog.h"

/* ---- field definitions ---------------------------------------------------------------- */

typedef enum vkind {
    VK_TEXT,        /* a non-empty string */
    VK_ENUM,        /* one of values */
    VK_POSINT,      /* a whole number ≥ 1 (≤ max) */
    VK_NONNEGINT,   /* a whole number ≥ 0 (≤ max) */
    VK_INT,         /* any whole number */
    VK_POSNUM,      /* a number > 0 */
    VK_FRACTION,    /* a number in [0, 1] */
    VK_DATE,        /* 'YYYY-MM-DD' */
    VK_BOOL,
    VK_STRINGS,     /* a list of non-empty strings */
    VK_TEXTS,       /* a string or a list of strings (stored as a list) */
    VK_OBJECT,
    VK_ARRAY,
    VK_SIZE,        /* {height, width} (or one number for a square) */
    VK_HEX64,       /* SHA-256 hex */
    VK_SLICE,       /* {start, stop}: SHiFT's reader slice */
    VK_ANY,
} vkind;

typedef struct field_def {
    const char *name;
    vkind kind;
    const char *column;          /* the column it sets; NULL: a key of the spec */
    const char *cast;            /* parameter cast for the column */
    bool nullable;               /* NULL clears the column (or is a JSON null) */
    const char *const *values;   /* VK_ENUM */
    int64_t max;                 /* VK_POSINT / VK_NONNEGINT; 0 = no bound */
} field_def;

#define INT32_BOUND 2147483647LL

static const char *const modalities[] = {"image", "text", NULL};
static const char *const runners[] = {"builtin", "onnx", "exec", "replay", "tfhub", "torchvision",
                                      "huggingface", "keras", "noop", NULL};
static const char *const formats[] = {"idx", "csv", "npy", "npz", "imagefolder", "text", "vtab",
                                      "tfds", "hf", "qmnist", "usps", "replay", NULL};
static const char *const tf_image_names[] = {
    "Inception V3", "ResNet V2 50", "ResNet V2 101", "ResNet V2 152", "EfficientNet B0",
    "EfficientNet B1", "EfficientNet B2", "EfficientNet B3", "EfficientNet B4", "EfficientNet B5",
    "EfficientNet B6", "EfficientNet B7", NULL};
static const char *const tf_text_names[] = {
    "ELMo", "NNLM 50", "NNLM 50 Normalization", "NNLM 128", "NNLM 128 Normalization",
    "Universal Sentence Encoder", "Universal Sentence Encoder Large", NULL};
static const char *const vtab_splits[] = {
    "train", "val", "trainval", "test", "train800", "val200", "train800val200",
    "train_0", "train_1", "train_2", "train_3", "train_4", "train_5", "train_6", "train_7",
    "train_8", "train_9", "test_0", "test_1", "test_2", "test_3", "test_4", "test_5", "test_6",
    "test_7", "test_8", "test_9", "validation_0", "validation_1", "validation_2",
    "validation_3", "validation_4", NULL};

/* Fields of REGISTER MODEL: the catalog columns, then SHiFT's model JSON keys (spec). */
static const field_def model_fields[] = {
    {"modality", VK_ENUM, "modality", "text", false, modalities, 0},
    {"source", VK_TEXT, "source", "text", false, NULL, 0},
    {"runner", VK_ENUM, "runner", "text", false, runners, 0},
    {"spec", VK_OBJECT, "spec", "jsonb", false, NULL, 0},
    {"num_params", VK_POSINT, "num_params", "bigint", true, NULL, 1000000000000000LL},
    {"dimension", VK_POSINT, "dimension", "integer", true, NULL, INT32_BOUND},
    {"image_size", VK_POSINT, "image_size", "integer", true, NULL, INT32_BOUND},
    {"token_length", VK_POSINT, "token_length", "integer", true, NULL, INT32_BOUND},
    {"batch_size", VK_POSINT, "batch_size", "integer", true, NULL, INT32_BOUND},
    {"up_acc", VK_FRACTION, "up_acc", "double precision", true, NULL, 0},
    {"date_added", VK_DATE, "date_added", "date", false, NULL, 0},
    {"tags", VK_TEXTS, "tags", NULL, false, NULL, 0},
    {"finetuned", VK_BOOL, "finetuned", "boolean", false, NULL, 0},
    {"parent", VK_TEXT, "parent_model_id", "bigint", true, NULL, 0},
    {"tf_image_model_url", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"tf_text_model_url", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"id", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"output_key", VK_TEXT, NULL, NULL, true, NULL, 0},
    {"required_image_size", VK_SIZE, NULL, NULL, false, NULL, 0},
    {"hf_name", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"max_length", VK_POSINT, NULL, NULL, false, NULL, INT32_BOUND},
    {"pooled_output", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"tokenizer_params", VK_OBJECT, NULL, NULL, false, NULL, 0},
    {"torchvision_name", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"image_layer_path", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"text_layer_path", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"noop_target_image_size", VK_SIZE, NULL, NULL, false, NULL, 0},
    {"noop_text", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"reshape_image_size", VK_SIZE, NULL, NULL, false, NULL, 0},
    {"base_model", VK_ANY, NULL, NULL, false, NULL, 0},
    {"train_readers", VK_ARRAY, NULL, NULL, false, NULL, 0},
    {"lr", VK_POSNUM, NULL, NULL, false, NULL, 0},
    {"epochs", VK_POSINT, NULL, NULL, false, NULL, INT32_BOUND},
    {"tf_image_name", VK_ENUM, NULL, NULL, false, tf_image_names, 0},
    {"tf_text_name", VK_ENUM, NULL, NULL, false, tf_text_names, 0},
    {NULL, VK_ANY, NULL, NULL, false, NULL, 0},
};

/* Keys only written inside spec {…}: the parameters of rankql's own runners. The builtin
 * runner's extractor names and options are checked by its library (embed.h) instead. */
static const field_def model_spec_only[] = {
    {"extractor", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"path", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"command", VK_TEXTS, NULL, NULL, false, NULL, 0},
    {"model_identifier", VK_TEXT, NULL, NULL, false, NULL, 0},
    {NULL, VK_ANY, NULL, NULL, false, NULL, 0},
};

/* Fields of REGISTER DATASET: the catalog columns, then SHiFT's reader JSON keys (spec). */
static const field_def dataset_fields[] = {
    {"modality", VK_ENUM, "modality", "text", true, modalities, 0},
    {"format", VK_ENUM, "format", "text", false, formats, 0},
    {"location", VK_TEXT, "location", "text", true, NULL, 0},
    {"spec", VK_OBJECT, "spec", "jsonb", false, NULL, 0},
    {"split", VK_TEXT, "split", "text", true, NULL, 0},
    {"slice_start", VK_NONNEGINT, "slice_start", "bigint", true, NULL, 0},
    {"slice_stop", VK_NONNEGINT, "slice_stop", "bigint", true, NULL, 0},
    {"slice", VK_SLICE, "slice_start", "bigint", true, NULL, 0},
    {"size", VK_NONNEGINT, "size", "bigint", true, NULL, 0},
    {"num_classes", VK_POSINT, "num_classes", "integer", true, NULL, INT32_BOUND},
    {"digest", VK_HEX64, "digest", "text", true, NULL, 0},
    {"date_added", VK_DATE, "date_added", "date", false, NULL, 0},
    {"vtab_name", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"use_feature", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"use_label", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"tf_dataset_name", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"embed_feature_path", VK_STRINGS, NULL, NULL, false, NULL, 0},
    {"label_feature_path", VK_STRINGS, NULL, NULL, false, NULL, 0},
    {"other_features", VK_STRINGS, NULL, NULL, false, NULL, 0},
    {"shuffle", VK_OBJECT, NULL, NULL, false, NULL, 0},
    {"hf_dataset_name", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"configuration", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"seed", VK_INT, NULL, NULL, false, NULL, 0},
    {"images_path", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"use_images", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"use_labels", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"job_hash", VK_HEX64, NULL, NULL, false, NULL, 0},
    {"numpy_path", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"embed_feature", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"label_feature", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"train_split", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"use_train_images", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"use_train_labels", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"use_test_images", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"use_test_labels", VK_BOOL, NULL, NULL, false, NULL, 0},
    {"labels", VK_TEXT, NULL, NULL, false, NULL, 0},
    {"labels_only", VK_BOOL, NULL, NULL, false, NULL, 0},
    {NULL, VK_ANY, NULL, NULL, false, NULL, 0},
};

static const field_def *find_def(const field_def *defs, const char *name)
{
    for (size_t i = 0; defs[i].name; i++)
        if (strcasecmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* ---- one statement's fields ----------------------------------------------------------- */

enum { MAX_FIELDS = 64, MAX_TEXT = 4096, MAX_NAME = 256 };

typedef struct given {
    const field_def *def;
    json_t *value;               /* validated; JSON null = SQL NULL */
    ast_pos pos;                 /* of the value */
} given;

typedef struct reg {
    bool model;
    const char *what;            /* "model" / "dataset" */
    const ast_register *stmt;
    size_t n;
    given items[MAX_FIELDS];
    json_t *spec;                /* the spec this statement gives, or NULL */
    ast_pos spec_pos;
    exec_error *err;
} reg;

static const given *find_given(const reg *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->items[i].def->name, name) == 0)
            return &r->items[i];
    return NULL;
}

/* A value for messages: compact JSON, shortened. Caller frees. */
static char *show(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!s)
        return xstrdup("?");
    if (strlen(s) > 48)
        strcpy(s + 45, "...");
    return s;
}

static bool bad(reg *r, const char *field, ast_pos pos, const char *must, const json_t *v)
{
    char *s = show(v);
    exec_invalid(r->err, field, pos, "%s: must be %s, not %s", field, must, s);
    free(s);
    return false;
}

static bool valid_date(const char *s)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d, used = 0;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || used != 10)
        return false;
    if (s[4] != '-' || s[7] != '-' || y < 1 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return false;
    return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

static bool check_text(reg *r, const char *field, ast_pos pos, const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return bad(r, field, pos, "a non-empty string", v);
    if (json_string_length(v) > MAX_TEXT)
        return exec_invalid(r->err, field, pos, "%s: at most %d bytes", field, MAX_TEXT);
    return true;
}

static bool check_int(reg *r, const field_def *d, ast_pos pos, const json_t *v, int64_t min)
{
    const char *must = min > 0 ? "a positive whole number" : min == 0 ? "a whole number ≥ 0"
                                                                       : "a whole number";
    if (!json_is_integer(v))
        return bad(r, d->name, pos, must, v);
    int64_t x = json_integer_value(v);
    if (min != INT64_MIN && x < min)
        return bad(r, d->name, pos, must, v);
    if (d->max && x > d->max)
        return exec_invalid(r->err, d->name, pos, "%s: at most %" PRId64 ", not %" PRId64, d->name,
                            d->max, x);
    return true;
}

static bool check_strings(reg *r, const char *field, ast_pos pos, const json_t *v)
{
    size_t i;
    json_t *s;
    if (!json_is_array(v))
        return bad(r, field, pos, "a list of strings", v);
    json_array_foreach(v, i, s)
    {
        if (!check_text(r, field, pos, s))
            return false;
    }
    return true;
}

/* {height, width}: a number means a square. Returns the normalised value or NULL. */
static json_t *check_size(reg *r, const char *field, ast_pos pos, json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= INT32_BOUND)
        return json_pack("{s:O, s:O}", "height", v, "width", v);
    json_t *h = json_object_get(v, "height"), *w = json_object_get(v, "width");
    if (!json_is_object(v) || json_object_size(v) != 2 || !json_is_integer(h) ||
        !json_is_integer(w) || json_integer_value(h) <= 0 || json_integer_value(w) <= 0 ||
        json_integer_value(h) > INT32_BOUND || json_integer_value(w) > INT32_BOUND) {
        bad(r, field, pos, "{height: n, width: n} with positive whole numbers", v);
        return NULL;
    }
    return json_incref(v);
}

static json_t *check_slice(reg *r, const char *field, ast_pos pos, json_t *v)
{
    const char *key;
    json_t *x;
    if (!json_is_object(v))
        return bad(r, field, pos, "{start: n, stop: n}", v), NULL;
    json_object_foreach(v, key, x)
    {
        if ((strcmp(key, "start") != 0 && strcmp(key, "stop") != 0) ||
            !(json_is_null(x) || (json_is_integer(x) && json_integer_value(x) >= 0)))
            return bad(r, field, pos, "{start: n, stop: n} with whole numbers ≥ 0", v), NULL;
    }
    json_t *a = json_object_get(v, "start"), *b = json_object_get(v, "stop");
    if (json_is_integer(a) && json_is_integer(b) && json_integer_value(a) > json_integer_value(b))
        return exec_invalid(r->err, field, pos, "%s: start must not come after stop", field), NULL;
    return json_incref(v);
}

/* Validates v for d; returns the value to store (a new reference) or NULL with *err. */
static json_t *check_value(reg *r, const field_def *d, ast_pos pos, json_t *v)
{
    if (json_is_null(v)) {
        if (d->nullable)
            return json_incref(v);
        return exec_invalid(r->err, d->name, pos, "%s: cannot be NULL", d->name), NULL;
    }
    bool ok = true;
    switch (d->kind) {
    case VK_TEXT: ok = check_text(r, d->name, pos, v); break;
    case VK_ENUM:
        if (!json_is_string(v) || !in_list(d->values, json_string_value(v))) {
            strbuf sb = {0};
            for (size_t i = 0; d->values[i]; i++)
                strbuf_printf(&sb, "%s%s", i ? ", " : "one of ", d->values[i]);
            ok = bad(r, d->name, pos, sb.data, v);
            strbuf_free(&sb);
        }
        break;
    case VK_POSINT: ok = check_int(r, d, pos, v, 1); break;
    case VK_NONNEGINT: ok = check_int(r, d, pos, v, 0); break;
    case VK_INT: ok = check_int(r, d, pos, v, INT64_MIN); break;
    case VK_POSNUM:
        ok = json_is_number(v) && json_number_value(v) > 0 ? true : bad(r, d->name, pos, "a number > 0", v);
        break;
    case VK_FRACTION:
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
            ok = bad(r, d->name, pos, "a fraction in [0, 1] (e.g. 0.761, not 76.1)", v);
        break;
    case VK_DATE:
        if (!json_is_string(v) || !valid_date(json_string_value(v)))
            ok = bad(r, d->name, pos, "a date 'YYYY-MM-DD'", v);
        break;
    case VK_BOOL: ok = json_is_boolean(v) ? true : bad(r, d->name, pos, "TRUE or FALSE", v); break;
    case VK_STRINGS: ok = check_strings(r, d->name, pos, v); break;
    case VK_TEXTS:
        if (json_is_string(v))
            return check_text(r, d->name, pos, v) ? json_pack("[O]", v) : NULL;
        ok = check_strings(r, d->name, pos, v);
        break;
    case VK_OBJECT:
        if (!json_is_object(v))
            ok = bad(r, d->name, pos, "an object {key: value, …}", v);
        break;
    case VK_ARRAY: ok = json_is_array(v) ? true : bad(r, d->name, pos, "a list [ … ]", v); break;
    case VK_SIZE: return check_size(r, d->name, pos, v);
    case VK_HEX64:
        if (!json_is_string(v) || !hash_is_hex(json_string_value(v)))
            ok = bad(r, d->name, pos, "64 lowercase hex digits (SHA-256)", v);
        break;
    case VK_SLICE: return check_slice(r, d->name, pos, v);
    case VK_ANY: break;
    }
    return ok ? json_incref(v) : NULL;
}

/* ---- AST values → JSON ---------------------------------------------------------------- */

static json_t *value_json(reg *r, const char *field, const ast_node *n)
{
    switch (n->kind) {
    case AST_LITERAL: {
        const ast_literal *l = (const ast_literal *)n;
        switch (l->type) {
        case LIT_INT: return json_integer((json_int_t)l->ival);
        case LIT_FLOAT: return json_real(l->fval);
        case LIT_BOOL: return json_boolean(l->bval);
        case LIT_NULL: return json_null();
        case LIT_STRING:
            if (memchr(l->str, '\0', l->len))
                return exec_invalid(r->err, field, n->pos, "%s: strings cannot contain NUL bytes",
                                    field),
                       NULL;
            json_t *s = json_stringn(l->str, l->len);
            if (!s)
                exec_invalid(r->err, field, n->pos, "%s: not valid UTF-8", field);
            return s;
        }
        return NULL;
    }
    case AST_ARRAY: {
        const ast_array *a = (const ast_array *)n;
        json_t *out = json_array();
        for (size_t i = 0; i < a->items->n; i++) {
            json_t *item = value_json(r, field, a->items->items[i]);
            if (!item) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, item);
        }
        return out;
    }
    case AST_OBJECT: {
        const ast_object *o = (const ast_object *)n;
        json_t *out = json_object();
        for (size_t i = 0; i < o->fields->n; i++) {
            const ast_object_field *f = (const ast_object_field *)o->fields->items[i];
            json_t *item = NULL;
            if (json_object_get(out, f->key.text))
                exec_invalid(r->err, field, f->key.pos, "%s: key %s given twice", field, f->key.text);
            else
                item = value_json(r, field, f->value);
            if (!item) {
                json_decref(out);
                return NULL;
            }
            json_object_set_new(out, f->key.text, item);
        }
        return out;
    }
    default:
        return exec_invalid(r->err, field, n->pos, "%s: expected a value", field), NULL;
    }
}

/* ---- collecting the statement's fields ------------------------------------------------ */

/* An option of some builtin extractor: the canonical spec of each extractor's defaults
 * names every option it takes. */
static bool is_builtin_option(const char *name)
{
    bool found = false;
    for (int k = 0; k < EMBED_KIND_COUNT && !found; k++) {
        embed_spec es;
        embed_spec_init(&es, (embed_kind)k);
        json_t *canon = embed_spec_to_json(&es);
        found = strcmp(name, "extractor") != 0 && json_object_get(canon, name) != NULL;
        json_decref(canon);
    }
    return found;
}

static bool unknown_field(reg *r, const ast_name *name)
{
    const field_def *defs = r->model ? model_fields : dataset_fields;
    if (strcasecmp(name->text, "name") == 0)
        return exec_invalid(r->err, "name", name->pos,
                            "name: the name comes right after REGISTER %s, not as a field",
                            r->model ? "MODEL" : "DATASET");
    if (!r->model && strcasecmp(name->text, "path") == 0)
        return exec_invalid(r->err, "path", name->pos, "unknown field \"path\" (did you mean location?)");
    if (r->model && (find_def(model_spec_only, name->text) || is_builtin_option(name->text)))
        return exec_invalid(r->err, name->text, name->pos,
                            "%s is a runner parameter: write it inside spec, e.g. spec {%s: …}",
                            name->text, name->text);
    const char *best = NULL;
    size_t best_d = 4;
    char lower[MAX_NAME + 1];
    snprintf(lower, sizeof lower, "%s", name->text);
    for (char *c = lower; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (size_t i = 0; defs[i].name; i++) {
        size_t d = catalog_edit_distance(lower, defs[i].name, 3);
        if (d < best_d) {
            best_d = d;
            best = defs[i].name;
        }
    }
    if (best)
        return exec_invalid(r->err, name->text, name->pos,
                            "unknown field \"%.64s\" for a %s (did you mean %s?)", name->text,
                            r->what, best);
    return exec_invalid(r->err, name->text, name->pos,
                        "unknown field \"%.64s\" for a %s; see docs/language.md for the fields",
                        name->text, r->what);
}

/* Adds key = v to the statement's spec, refusing a key given twice. */
static bool spec_put(reg *r, const char *key, json_t *v, ast_pos pos)
{
    if (!r->spec)
        r->spec = json_object();
    if (json_object_get(r->spec, key)) {
        json_decref(v);
        return exec_invalid(r->err, key, pos, "%s: given twice (as a field and inside spec)", key);
    }
    json_object_set_new(r->spec, key, v);
    return true;
}

/* The keys of a `spec {…}` value: known keys are type-checked, others kept as written. */
static bool take_spec_object(reg *r, const ast_node *node, json_t *obj)
{
    const ast_object *o = node->kind == AST_OBJECT ? (const ast_object *)node : NULL;
    for (size_t i = 0; o && i < o->fields->n; i++) {
        const ast_object_field *f = (const ast_object_field *)o->fields->items[i];
        const field_def *d = find_def(r->model ? model_fields : dataset_fields, f->key.text);
        if (d && d->column)
            return exec_invalid(r->err, f->key.text, f->key.pos,
                                "%s is a field of its own, not a key of spec", f->key.text);
        if (!d && r->model)
            d = find_def(model_spec_only, f->key.text);
        json_t *v = json_object_get(obj, f->key.text);
        json_t *checked = d ? check_value(r, d, f->value->pos, v) : json_incref(v);
        if (!checked || !spec_put(r, d ? d->name : f->key.text, checked, f->value->pos))
            return false;
    }
    return true;
}

static bool collect_fields(reg *r)
{
    const ast_register *s = r->stmt;
    const field_def *defs = r->model ? model_fields : dataset_fields;
    if (s->ncolumns > MAX_FIELDS)
        return exec_invalid(r->err, "", s->h.pos, "at most %d fields", MAX_FIELDS);
    for (size_t i = 0; i < s->ncolumns; i++) {
        const ast_name *name = &s->columns[i];
        const ast_node *node = s->values->items[i];
        const field_def *d = find_def(defs, name->text);
        if (!d)
            return unknown_field(r, name);
        if (find_given(r, d->name))
            return exec_invalid(r->err, d->name, name->pos, "%s: given twice", d->name);
        json_t *raw = value_json(r, d->name, node);
        json_t *v = raw ? check_value(r, d, node->pos, raw) : NULL;
        bool ok = v != NULL;
        if (ok && strcmp(d->name, "spec") == 0) {
            r->spec_pos = node->pos;
            ok = take_spec_object(r, node, v);
        } else if (ok && !d->column) {
            ok = spec_put(r, d->name, json_incref(v), node->pos);
        }
        json_decref(raw);
        if (!ok) {
            json_decref(v);
            return false;
        }
        r->items[r->n++] = (given){d, v, node->pos};
    }
    if (r->spec && !r->spec_pos.line)
        r->spec_pos = r->n ? r->items[0].pos : s->h.pos;
    return true;
}

static void reg_free(reg *r)
{
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->items[i].value);
    json_decref(r->spec);
}

/* ---- the write ------------------------------------------------------------------------ */

/* Column assignments of one INSERT or UPDATE; every value a parameter. */
typedef struct writes {
    size_t n;
    const char *columns[MAX_FIELDS];
    char *exprs[MAX_FIELDS];
    size_t param[MAX_FIELDS];    /* the parameter number a column's expression uses, or 0 */
    plan_params params;
} writes;

static void writes_free(writes *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->exprs[i]);
    plan_params_free(&w->params);
}

/* column = value::cast; value NULL = SQL NULL. A column already set is replaced (reusing
 * its parameter, so none is left that the statement does not use). */
static void write_col(writes *w, const char *column, const char *cast, const char *value)
{
    size_t i = 0;
    while (i < w->n && strcmp(w->columns[i], column) != 0)
        i++;
    if (i == w->n) {
        w->n++;
        w->param[i] = 0;
    } else {
        free(w->exprs[i]);
    }
    w->columns[i] = column;
    size_t n = w->param[i];
    if (n) {
        free(w->params.values[n - 1]);
        w->params.values[n - 1] = value ? xstrdup(value) : NULL;
    } else if (!value) {
        w->exprs[i] = xasprintf("NULL::%s", cast);
        return;
    } else {
        n = w->param[i] = plan_params_add(&w->params, value);
    }
    w->exprs[i] = strcmp(cast, "text[]") == 0
                      ? xasprintf("ARRAY(SELECT jsonb_array_elements_text($%zu::jsonb))", n)
                      : xasprintf("$%zu::%s", n, cast);
}

/* A validated JSON value as the parameter text for its column. Caller frees. */
static char *param_text(const json_t *v)
{
    if (json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_real(v))
        return xasprintf("%.17g", json_real_value(v));
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "true" : "false");
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
}

static void write_json(writes *w, const char *column, const char *cast, const json_t *v)
{
    char *text = param_text(v);
    write_col(w, column, cast, text);
    free(text);
}

/* Columns the statement names directly (parent, slice and spec are handled apart). */
static void write_named(const reg *r, writes *w)
{
    for (size_t i = 0; i < r->n; i++) {
        const field_def *d = r->items[i].def;
        if (!d->column || strcmp(d->name, "spec") == 0 || strcmp(d->name, "parent") == 0 ||
            strcmp(d->name, "slice") == 0)
            continue;
        write_json(w, d->column, strcmp(d->name, "tags") == 0 ? "text[]" : d->cast, r->items[i].value);
    }
}

/* The row a name already has, locked for the rest of the transaction. */
typedef struct existing {
    bool found;
    char *id;
    json_t *row;   /* the columns we reason about, by name */
} existing;

static bool load_existing(exec_ctx *ctx, reg *r, existing *ex, exec_error *err)
{
    const char *sql = r->model
        ? "SELECT id, to_jsonb(t) - 'id' FROM (SELECT id, runner, modality, spec, image_size, "
          "token_length, dimension FROM models WHERE name = $1 FOR UPDATE) t"
        : "SELECT id, to_jsonb(t) - 'id' FROM (SELECT id, format, location, spec, split, modality, "
          "slice_start, slice_stop FROM datasets WHERE name = $1 FOR UPDATE) t";
    const char *params[] = {r->stmt->name.text};
    free(ex->id);
    json_decref(ex->row);
    ex->id = NULL;
    ex->row = NULL;
    PGresult *res = exec_sql(ctx, sql, 1, params, err);
    if (!res)
        return false;
    ex->found = PQntuples(res) == 1;
    if (ex->found) {
        ex->id = xstrdup(PQgetvalue(res, 0, 0));
        ex->row = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    }
    PQclear(res);
    return true;
}

/* The value the row will have: named in the statement, else stored (NULL if neither). */
static const json_t *effective(const reg *r, const existing *ex, const char *name)
{
    const given *g = find_given(r, name);
    if (g)
        return g->value;
    return ex->found ? json_object_get(ex->row, name) : NULL;
}

static const char *effective_text(const reg *r, const existing *ex, const char *name)
{
    return json_string_value(effective(r, ex, name));
}

/* INSERT (doing nothing when the name appeared meanwhile) or UPDATE … WHERE id = …;
 * column names come from the tables above. Returns the rows written, or -1. */
static long write_row(exec_ctx *ctx, reg *r, const existing *ex, writes *w, exec_error *err)
{
    strbuf sql = {0};
    const char *table = r->model ? "models" : "datasets";
    size_t key = plan_params_add(&w->params, ex->found ? ex->id : r->stmt->name.text);
    if (ex->found) {
        strbuf_printf(&sql, "UPDATE %s SET ", table);
        for (size_t i = 0; i < w->n; i++)
            strbuf_printf(&sql, "%s = %s, ", w->columns[i], w->exprs[i]);
        strbuf_printf(&sql, "updated_at = now() WHERE id = $%zu::bigint", key);
    } else {
        strbuf_printf(&sql, "INSERT INTO %s (name", table);
        for (size_t i = 0; i < w->n; i++)
            strbuf_printf(&sql, ", %s", w->columns[i]);
        strbuf_printf(&sql, ") VALUES ($%zu::text", key);
        for (size_t i = 0; i < w->n; i++)
            strbuf_printf(&sql, ", %s", w->exprs[i]);
        strbuf_puts(&sql, ") ON CONFLICT (name) DO NOTHING");
    }
    long n = exec_cmd(ctx, sql.data, (int)w->params.n, (const char *const *)w->params.values, err);
    strbuf_free(&sql);
    return n;
}

/* ---- models --------------------------------------------------------------------------- */

static bool check_path(reg *r, const char *field, ast_pos pos, const char *path, bool directory);
static ast_pos blame_pos(const reg *r, const char *field);

static const char *runner_from_spec(const json_t *spec)
{
    static const struct { const char *key, *runner; } keys[] = {
        {"tf_image_model_url", "tfhub"}, {"tf_text_model_url", "tfhub"}, {"tf_image_name", "tfhub"},
        {"tf_text_name", "tfhub"}, {"torchvision_name", "torchvision"}, {"hf_name", "huggingface"},
        {"image_layer_path", "keras"}, {"text_layer_path", "keras"}, {"noop_target_image_size", "noop"},
        {"noop_text", "noop"}, {"reshape_image_size", "noop"}, {"extractor", "builtin"},
        {"command", "exec"},
    };
    for (size_t i = 0; spec && i < sizeof keys / sizeof keys[0]; i++)
        if (json_object_get(spec, keys[i].key))
            return keys[i].runner;
    return NULL;
}

static const char *modality_from(const reg *r, const json_t *spec, const char *runner)
{
    static const char *const image_keys[] = {"tf_image_model_url", "tf_image_name", "torchvision_name",
                                             "required_image_size", "image_layer_path",
                                             "noop_target_image_size", "reshape_image_size", NULL};
    static const char *const text_keys[] = {"tf_text_model_url", "tf_text_name", "text_layer_path",
                                            "noop_text", "max_length", "tokenizer_params",
                                            "pooled_output", NULL};
    for (size_t i = 0; spec && image_keys[i]; i++)
        if (json_object_get(spec, image_keys[i]))
            return "image";
    for (size_t i = 0; spec && text_keys[i]; i++)
        if (json_object_get(spec, text_keys[i]))
            return "text";
    const given *is = find_given(r, "image_size"), *tl = find_given(r, "token_length");
    if (is && !json_is_null(is->value))
        return "image";
    if (tl && !json_is_null(tl->value))
        return "text";
    if (runner && (strcmp(runner, "builtin") == 0 || strcmp(runner, "torchvision") == 0))
        return "image";
    return NULL;
}

static ast_pos blame_pos(const reg *r, const char *field)
{
    const given *g = find_given(r, field);
    if (g)
        return g->pos;
    return r->spec ? r->spec_pos : r->stmt->h.pos;
}

/* ---- replay records ------------------------------------------------------------------- */

/* The last records file parsed, kept while the file is unchanged (same inode, size and
 * modification time): loading a catalogue registers hundreds of models and datasets from
 * one file (scripts/replay-catalog.sh), and each check would otherwise parse it again. */
static pthread_mutex_t records_lock = PTHREAD_MUTEX_INITIALIZER;
static replay_records *records_cached;
static char *records_cached_path;
static struct stat records_cached_st;

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Whether the records file at path holds a run of want (a model_identifier when model, else
 * a train_dataset_name): 1 yes, 0 no, -1 with *msg when the file cannot be parsed. */
static int records_holds(const char *path, bool model, const char *want, char **msg)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        *msg = xasprintf("records file %s cannot be read: %s", path, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&records_lock);
    if (!records_cached || strcmp(records_cached_path, path) != 0 ||
        !same_file(&st, &records_cached_st)) {
        replay_records *fresh = NULL;
        if (replay_records_load(path, &fresh, msg) != 0) {
            pthread_mutex_unlock(&records_lock);
            return -1;
        }
        replay_records_free(records_cached);
        free(records_cached_path);
        records_cached = fresh;
        records_cached_path = xstrdup(path);
        records_cached_st = st;
    }
    int found = model ? replay_has_model(records_cached, want)
                      : replay_has_dataset(records_cached, want);
    pthread_mutex_unlock(&records_lock);
    return found;
}

/* spec.records of a replay model or dataset: a readable records file with the columns the
 * replay runner needs (executor/workers/runners/replay.h), in which `key` (model_identifier
 * or train_dataset_name) has the value spec[key]. The errors name records or key. */
static bool check_records(reg *r, const json_t *spec, const char *key)
{
    const json_t *rec = json_object_get(spec, "records");
    if (!json_is_string(rec) || json_string_length(rec) == 0)
        return exec_invalid(r->err, "records", blame_pos(r, "spec"),
                            "records: a replay %s needs spec.records, the path of a records "
                            "file (CSV with " REPLAY_COLUMNS ")", r->what);
    const char *path = json_string_value(rec);
    if (!check_path(r, "records", blame_pos(r, "spec"), path, false))
        return false;
    const char *want = json_string_value(json_object_get(spec, key));
    char *msg = NULL;
    int found = records_holds(path, strcmp(key, "model_identifier") == 0, want ? want : "",
                              &msg);
    if (found < 0) {
        exec_invalid(r->err, "records", blame_pos(r, "spec"), "records: %s", msg);
        free(msg);
        return false;
    }
    if (!want || !*want)
        return exec_invalid(r->err, key, blame_pos(r, "spec"),
                            "%s: a replay %s needs spec.%s (a non-empty string)", key, r->what,
                            key);
    if (!found)
        return exec_invalid(r->err, key, blame_pos(r, "spec"),
                            "%s: no run of %.200s is recorded in %.200s", key, want, path);
    return true;
}

/* What each runner needs in its spec. */
static bool check_runner_spec(reg *r, const char *runner, const char *modality, const json_t *spec)
{
    const char *need = NULL, *alt = NULL;
    bool image = modality && strcmp(modality, "image") == 0;
    if (strcmp(runner, "builtin") == 0)
        need = "extractor";
    else if (strcmp(runner, "onnx") == 0)
        need = "path";
    else if (strcmp(runner, "exec") == 0)
        need = "command";
    else if (strcmp(runner, "tfhub") == 0) {
        need = image ? "tf_image_model_url" : "tf_text_model_url";
        alt = image ? "tf_image_name" : "tf_text_name";
    }
    else if (strcmp(runner, "torchvision") == 0)
        need = "torchvision_name";
    else if (strcmp(runner, "huggingface") == 0)
        need = "hf_name";
    else if (strcmp(runner, "keras") == 0)
        need = image ? "image_layer_path" : "text_layer_path";
    else if (strcmp(runner, "replay") == 0)
        need = "model_identifier";
    if (!need || json_object_get(spec, need) || (alt && json_object_get(spec, alt)))
        return true;
    bool inside = strcmp(runner, "builtin") == 0 || strcmp(runner, "onnx") == 0 ||
                  strcmp(runner, "exec") == 0 || strcmp(runner, "replay") == 0;
    return exec_invalid(r->err, need, blame_pos(r, "runner"),
                        "%s: runner %s%s%s needs %s%s%s (%s)", need, runner,
                        alt ? " for " : "", alt ? modality : "", need, alt ? " or " : "",
                        alt ? alt : "", inside ? "inside spec {…}" : "as a field or inside spec");
}

static bool check_sizes(reg *r, const existing *ex, const char *modality)
{
    const char *wrong = strcmp(modality, "image") == 0 ? "token_length" : "image_size";
    const json_t *v = effective(r, ex, wrong);
    if (!v || json_is_null(v))
        return true;
    return exec_invalid(r->err, wrong, blame_pos(r, find_given(r, wrong) ? wrong : "modality"),
                        "%s: only %s models have a %s", wrong,
                        strcmp(wrong, "image_size") == 0 ? "image" : "text", wrong);
}

static bool write_parent(exec_ctx *ctx, reg *r, writes *w, exec_error *err)
{
    const given *g = find_given(r, "parent");
    if (!g)
        return true;
    if (json_is_null(g->value)) {
        write_col(w, "parent_model_id", "bigint", NULL);
        return true;
    }
    const char *parent = json_string_value(g->value);
    if (strcmp(parent, r->stmt->name.text) == 0)
        return exec_invalid(err, "parent", g->pos, "parent: a model cannot be its own parent");
    const char *params[] = {parent};
    PGresult *res = exec_sql(ctx, "SELECT id FROM models WHERE name = $1", 1, params, err);
    if (!res)
        return false;
    bool found = PQntuples(res) == 1;
    if (found)
        write_col(w, "parent_model_id", "bigint", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!found) {
        char *s = show(g->value);
        exec_invalid(err, "parent", g->pos, "parent: no model is named %s", s);
        free(s);
    }
    return found;
}

static const char *default_source(const char *runner)
{
    if (strcmp(runner, "tfhub") == 0)
        return "TensorFlow";
    if (strcmp(runner, "torchvision") == 0)
        return "torchvision";
    if (strcmp(runner, "huggingface") == 0)
        return "HuggingFace Transformers";
    if (strcmp(runner, "keras") == 0)
        return "Keras layer";
    return "other";
}

/* The builtin runner: the spec is checked by the extractor library and stored canonical
 * (every option, defaults filled in: the model's identity for caches), SHiFT's keys kept
 * beside it. With an image_size, the output dimension for image_size × image_size × 1
 * images is checked against a given dimension, or filled in. *canon: the spec to store. */
static bool plan_builtin(reg *r, const existing *ex, writes *w, const json_t *spec,
                         json_t *result, json_t **canon)
{
    *canon = NULL;
    json_t *opts = json_object(), *shift = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)spec, key, v)
    {
        const field_def *d = find_def(model_fields, key);
        json_object_set(d && !d->column ? shift : opts, key, v);
    }
    embed_spec es;
    char *msg = NULL;
    bool ok = embed_spec_from_json(opts, &es, &msg) == 0;
    json_decref(opts);
    if (!ok) {
        exec_invalid(r->err, "spec", blame_pos(r, "spec"), "spec: %s", msg ? msg : "invalid");
        free(msg);
        json_decref(shift);
        return false;
    }
    json_t *out = embed_spec_to_json(&es);
    json_object_update(out, shift);
    json_decref(shift);

    const json_t *isz = effective(r, ex, "image_size");
    const json_t *req = json_object_get(spec, "required_image_size");
    if (!find_given(r, "image_size") && req &&
        json_equal(json_object_get(req, "height"), json_object_get(req, "width")))
        isz = json_object_get(req, "height");
    if (json_is_integer(isz)) {
        size_t side = (size_t)json_integer_value(isz);
        embed_shape in = {side, side, 1, false};
        size_t dim = embed_output_dim(&es, in);
        if (dim == 0) {
            embed_check(&es, in, &msg);
            const char *field = find_given(r, "image_size") || !r->spec ? "image_size" : "spec";
            exec_invalid(r->err, field, blame_pos(r, field), "%s: %s", field,
                         msg ? msg : "the extractor does not apply to this image size");
            free(msg);
            json_decref(out);
            return false;
        }
        const given *g = find_given(r, "dimension");
        const json_t *stored = effective(r, ex, "dimension");
        if (g && json_is_integer(g->value) && (size_t)json_integer_value(g->value) != dim) {
            exec_invalid(r->err, "dimension", g->pos,
                         "dimension: extractor %s gives %zu values for %zux%zux1 images, not "
                         "%" JSON_INTEGER_FORMAT,
                         embed_kind_name(es.kind), dim, side, side, json_integer_value(g->value));
            json_decref(out);
            return false;
        }
        if (!g || json_is_null(g->value)) {
            if (!json_is_integer(stored) || (size_t)json_integer_value(stored) != dim)
                result_notice(result, "dimension %zu: the output of extractor %s for %zux%zux1 "
                              "images", dim, embed_kind_name(es.kind), side, side);
            char *text = xasprintf("%zu", dim);
            write_col(w, "dimension", "integer", text);
            free(text);
        }
    }
    *canon = out;
    return true;
}

/* Effective runner/modality/spec, their checks, and the derived columns. */
static bool plan_model(reg *r, const existing *ex, writes *w, json_t *result)
{
    const char *runner = effective_text(r, ex, "runner");
    const char *inferred = find_given(r, "runner") ? NULL : runner_from_spec(r->spec);
    if (inferred && (!runner || strcmp(inferred, runner) != 0)) {
        runner = inferred;
        write_col(w, "runner", "text", runner);
        result_notice(result, "runner %s inferred from the spec", runner);
    }
    if (!runner)
        return exec_invalid(r->err, "runner", r->stmt->h.pos,
                            "runner: required for a new model (builtin, onnx, exec, replay, tfhub, "
                            "torchvision, huggingface, keras or noop)");
    const json_t *spec = r->spec ? r->spec : effective(r, ex, "spec");
    const char *modality = effective_text(r, ex, "modality");
    if (!modality) {
        modality = modality_from(r, spec, runner);
        if (!modality)
            return exec_invalid(r->err, "modality", r->stmt->h.pos,
                                "modality: required (image or text); it cannot be told from the "
                                "other fields");
        write_col(w, "modality", "text", modality);
    }
    if (!ex->found && !find_given(r, "source"))
        write_col(w, "source", "text", default_source(runner));
    bool checks = !ex->found || find_given(r, "runner") || r->spec || find_given(r, "modality") || inferred;
    if (checks && !check_runner_spec(r, runner, modality, spec))
        return false;
    /* A replay model's records are optional (without them it answers from the records of
     * the replay dataset it is ranked on, docs/runners.md), but checked when given. */
    if (checks && strcmp(runner, "replay") == 0 && json_object_get(spec, "records") &&
        !check_records(r, spec, "model_identifier"))
        return false;
    if (!check_sizes(r, ex, modality))
        return false;
    const json_t *req = r->spec ? json_object_get(r->spec, "required_image_size") : NULL;
    if (req && !find_given(r, "image_size") && strcmp(modality, "image") == 0 &&
        json_equal(json_object_get(req, "height"), json_object_get(req, "width")))
        write_json(w, "image_size", "integer", json_object_get(req, "height"));
    json_t *canon = NULL;
    if (strcmp(runner, "builtin") == 0 &&
        (checks || find_given(r, "image_size") || find_given(r, "dimension")) &&
        !plan_builtin(r, ex, w, spec, result, &canon))
        return false;
    if (canon || r->spec)
        write_json(w, "spec", "jsonb", canon ? canon : r->spec);
    json_decref(canon);
    return true;
}

/* ---- datasets ------------------------------------------------------------------------- */

static bool is_file_format(const char *format)
{
    static const char *const file_formats[] = {"idx", "csv", "npy", "npz", "imagefolder", "text", NULL};
    return in_list(file_formats, format);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static const char *format_from(const reg *r)
{
    const json_t *spec = r->spec;
    const char *numpy = json_string_value(json_object_get(spec, "numpy_path"));
    const given *loc = find_given(r, "location");
    const char *path = loc ? json_string_value(loc->value) : NULL;
    if (json_object_get(spec, "vtab_name"))
        return "vtab";
    if (json_object_get(spec, "tf_dataset_name"))
        return "tfds";
    if (json_object_get(spec, "hf_dataset_name"))
        return "hf";
    if (json_object_get(spec, "images_path"))
        return "imagefolder";
    if (numpy)
        return ends_with(numpy, ".npz") ? "npz" : "npy";
    if (!path)
        return NULL;
    if (ends_with(path, ".csv") || ends_with(path, ".csv.gz"))
        return "csv";
    if (ends_with(path, ".npy"))
        return "npy";
    if (ends_with(path, ".npz"))
        return "npz";
    if (strstr(path, "-ubyte"))
        return "idx";
    if (ends_with(path, ".txt"))
        return "text";
    return NULL;
}

static bool check_path(reg *r, const char *field, ast_pos pos, const char *path, bool directory)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return exec_invalid(r->err, field, pos, "%s: no such file or directory: %.200s", field, path);
    if (directory && !S_ISDIR(st.st_mode))
        return exec_invalid(r->err, field, pos, "%s: not a directory: %.200s", field, path);
    if (!directory && !S_ISREG(st.st_mode))
        return exec_invalid(r->err, field, pos, "%s: not a regular file: %.200s", field, path);
    return true;
}

/* File formats need a location that exists on this machine; catalogue formats need
 * their identifying keys. */
static bool check_format(reg *r, const existing *ex, const char *format, const char *location,
                         const json_t *spec, const char *split)
{
    if (is_file_format(format)) {
        if (!location)
            return exec_invalid(r->err, "location", blame_pos(r, "format"),
                                "location: format %s needs a location (a path on the server)", format);
        const given *g = find_given(r, "location");
        if (g || find_given(r, "format") || !ex->found || r->spec)
            if (!check_path(r, "location", blame_pos(r, "location"), location,
                            strcmp(format, "imagefolder") == 0))
                return false;
        const char *labels = json_string_value(json_object_get(r->spec, "labels"));
        if (labels && !check_path(r, "labels", r->spec_pos, labels, false))
            return false;
        return true;
    }
    const char *need = strcmp(format, "vtab") == 0 ? "vtab_name"
                       : strcmp(format, "tfds") == 0 ? "tf_dataset_name"
                       : strcmp(format, "hf") == 0 ? "hf_dataset_name"
                                                   : NULL;
    if (need && !json_object_get(spec, need))
        return exec_invalid(r->err, need, blame_pos(r, "format"), "%s: format %s needs %s", need,
                            format, need);
    if (strcmp(format, "vtab") == 0 && (!split || !in_list(vtab_splits, split)))
        return exec_invalid(r->err, "split", blame_pos(r, "split"),
                            "split: a VTAB dataset needs one of VTAB's splits (train, val, trainval, "
                            "test, train800, val200, train800val200, train_0…9, test_0…9, "
                            "validation_0…4), not %s",
                            split ? split : "none");
    return true;
}

static int64_t slice_bound(const reg *r, const existing *ex, const char *name, bool *present)
{
    const given *sl = find_given(r, "slice");
    const json_t *v = sl ? json_object_get(sl->value, strcmp(name, "slice_start") == 0 ? "start" : "stop")
                         : effective(r, ex, name);
    *present = json_is_integer(v);
    return *present ? (int64_t)json_integer_value(v) : 0;
}

static bool plan_slice(reg *r, const existing *ex, writes *w)
{
    const given *sl = find_given(r, "slice");
    if (sl && (find_given(r, "slice_start") || find_given(r, "slice_stop")))
        return exec_invalid(r->err, "slice", sl->pos,
                            "slice: give slice or slice_start/slice_stop, not both");
    if (sl) {
        const json_t *a = json_object_get(sl->value, "start"), *b = json_object_get(sl->value, "stop");
        write_json(w, "slice_start", "bigint", a ? a : json_null());
        write_json(w, "slice_stop", "bigint", b ? b : json_null());
    }
    bool has_start, has_stop;
    int64_t start = slice_bound(r, ex, "slice_start", &has_start);
    int64_t stop = slice_bound(r, ex, "slice_stop", &has_stop);
    if (has_start && has_stop && start > stop)
        return exec_invalid(r->err, "slice_stop", blame_pos(r, sl ? "slice" : "slice_stop"),
                            "slice_stop: %" PRId64 " comes before slice_start %" PRId64, stop, start);
    return true;
}

/* Whether the statement names something the file check depends on (anything but
 * date_added and split, which only relabel). */
static bool touches_file(const reg *r, const existing *ex)
{
    if (!ex->found || r->spec)
        return true;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->items[i].def->name, "date_added") != 0 &&
            strcmp(r->items[i].def->name, "split") != 0)
            return true;
    return false;
}

/* The field a reader error is blamed on: the slice when the statement gives one and the
 * message is about it, the spec for its options, labels file and labels_only, else the
 * location. */
static const char *reader_field(const reg *r, const char *msg, const char *labels)
{
    if (strstr(msg, "slice")) {
        static const char *const slices[] = {"slice", "slice_start", "slice_stop"};
        for (size_t i = 0; i < 3; i++)
            if (find_given(r, slices[i]))
                return slices[i];
    }
    size_t n = labels ? strlen(labels) : 0;
    if (strstr(msg, "labels_only is set") || (n && strncmp(msg, labels, n) == 0 && msg[n] == ':'))
        return "spec";
    return "location";
}

/* A given size / num_classes / digest that the file contradicts. */
static bool check_derived(reg *r, const char *field, const char *stored, const char *why)
{
    const given *g = find_given(r, field);
    if (!g || json_is_null(g->value))
        return true;
    char *given_text = param_text(g->value);
    bool same = stored && strcmp(given_text, stored) == 0;
    if (!same)
        exec_invalid(r->err, field, g->pos, "%s: %s given, but %s", field, given_text, why);
    free(given_text);
    return same;
}

/* A file dataset: loaded with datasets/ (the reader options of spec, the registered slice)
 * and checked whole; size (examples in the slice), num_classes, digest and, for images
 * and texts, modality come from the file. */
static bool plan_file_dataset(reg *r, const existing *ex, writes *w, const char *format,
                              const char *location, const json_t *spec, json_t *result)
{
    dataset_format df;
    if (dataset_format_parse(format, &df) != 0)
        return exec_invalid(r->err, "format", blame_pos(r, "format"), "format: %s is not read "
                            "by the dataset readers", format);
    /* the reader options: spec without the keys REGISTER handles itself */
    json_t *opts = json_deep_copy(json_is_object(spec) ? spec : NULL);
    if (!opts)
        opts = json_object();
    json_object_del(opts, "split");
    json_object_del(opts, "images_path");
    json_object_del(opts, "numpy_path");
    dataset_spec ds;
    char *msg = NULL;
    if (dataset_spec_from_json(df, location, opts, &ds, &msg) != 0) {
        exec_invalid(r->err, "spec", blame_pos(r, "spec"), "spec: %s", msg ? msg : "invalid");
        free(msg);
        json_decref(opts);
        return false;
    }
    bool has_start, has_stop;
    int64_t start = slice_bound(r, ex, "slice_start", &has_start);
    int64_t stop = slice_bound(r, ex, "slice_stop", &has_stop);
    if (has_start)
        ds.start = start;
    if (has_stop)
        ds.stop = stop;
    dataset_info info;
    if (dataset_validate(&ds, &info, &msg) != 0) {
        const char *field = reader_field(r, msg ? msg : "", ds.labels_path);
        exec_invalid(r->err, field, blame_pos(r, field), "%s: %s", field, msg ? msg : "unreadable");
        free(msg);
        json_decref(opts);
        return false;
    }
    json_decref(opts);
    char size[32], classes[32];
    snprintf(size, sizeof size, "%" PRIu64, info.size);
    snprintf(classes, sizeof classes, "%" PRId32, info.num_classes);
    char *why_size = xasprintf("the %s holds %" PRIu64 " examples", has_start || has_stop ?
                               "slice of the file" : "file", info.size);
    char *why_classes = info.has_labels
        ? xasprintf("the labels of the file make %" PRId32 " classes (0 to %" PRId32 ")",
                    info.num_classes, info.num_classes - 1)
        : xstrdup("the file has no labels");
    char *why_digest = xasprintf("the file's digest is %s", info.digest);
    bool ok = check_derived(r, "size", size, why_size) &&
              check_derived(r, "num_classes", info.has_labels ? classes : NULL, why_classes) &&
              check_derived(r, "digest", info.digest, why_digest);
    free(why_size);
    free(why_classes);
    free(why_digest);
    if (!ok)
        return false;
    const char *modality = info.kind == DATASET_IMAGES ? "image"
                           : info.kind == DATASET_TEXTS ? "text"
                                                        : NULL;
    const given *gm = find_given(r, "modality");
    if (modality && gm && json_is_string(gm->value) &&
        strcmp(json_string_value(gm->value), modality) != 0)
        return exec_invalid(r->err, "modality", gm->pos, "modality: %s given, but the file holds "
                            "%s", json_string_value(gm->value), dataset_kind_name(info.kind));
    if (modality)
        write_col(w, "modality", "text", modality);
    write_col(w, "size", "bigint", size);
    write_col(w, "num_classes", "integer", info.has_labels ? classes : NULL);
    write_col(w, "digest", "text", info.digest);
    if (info.kind == DATASET_IMAGES)
        result_notice(result, "%s: %" PRIu64 " images %zux%zux%zu%s%s, digest %.12s…", location,
                      info.size, info.height, info.width, info.channels,
                      info.has_labels ? ", labels " : "", info.has_labels ? classes : "",
                      info.digest);
    else
        result_notice(result, "%s: %" PRIu64 " %s%s%s, digest %.12s…", location, info.size,
                      dataset_kind_name(info.kind), info.has_labels ? ", labels " : "",
                      info.has_labels ? classes : "", info.digest);
    return true;
}

/* A replay dataset (docs/runners.md "replay"): spec {records, train_dataset_name}, the
 * name recorded in the file. It holds no examples rankql reads, so size and num_classes
 * are NULL. */
static bool plan_replay_dataset(reg *r, writes *w, const json_t *spec)
{
    static const char *const derived[] = {"size", "num_classes"};
    for (size_t i = 0; i < 2; i++) {
        const given *g = find_given(r, derived[i]);
        if (g && !json_is_null(g->value))
            return exec_invalid(r->err, derived[i], g->pos,
                                "%s: a replay dataset holds no examples (it names a task of "
                                "the recorded runs): leave %s out", derived[i], derived[i]);
    }
    if (!json_is_string(json_object_get(spec, "train_dataset_name")) &&
        json_object_get(spec, "records"))
        return exec_invalid(r->err, "train_dataset_name", blame_pos(r, "spec"),
                            "train_dataset_name: a replay dataset needs "
                            "spec.train_dataset_name (the task's name in the records)");
    if (!check_records(r, spec, "train_dataset_name"))
        return false;
    write_col(w, "size", "bigint", NULL);
    write_col(w, "num_classes", "integer", NULL);
    return true;
}

static bool plan_dataset(reg *r, const existing *ex, writes *w, json_t *result)
{
    const char *format = effective_text(r, ex, "format");
    const char *inferred = find_given(r, "format") ? NULL : format_from(r);
    if (inferred && (!format || strcmp(inferred, format) != 0) && (!ex->found || r->spec)) {
        format = inferred;
        write_col(w, "format", "text", format);
        result_notice(result, "format %s inferred from the fields", format);
    }
    if (!format)
        return exec_invalid(r->err, "format", r->stmt->h.pos,
                            "format: required for a new dataset (idx, csv, npy, npz, imagefolder, "
                            "text, vtab, tfds, hf, qmnist, usps or replay)");
    const char *location = effective_text(r, ex, "location");
    const char *alt = json_string_value(json_object_get(r->spec, "images_path"));
    if (!alt)
        alt = json_string_value(json_object_get(r->spec, "numpy_path"));
    if (!find_given(r, "location") && alt) {
        location = alt;
        write_col(w, "location", "text", location);
    }
    const json_t *spec = r->spec ? r->spec : effective(r, ex, "spec");
    const given *split_given = find_given(r, "split");
    const char *split = effective_text(r, ex, "split");
    if (!split_given && r->spec && json_is_string(json_object_get(r->spec, "split")))
        split = json_string_value(json_object_get(r->spec, "split"));
    if (!check_format(r, ex, format, location, spec, split) || !plan_slice(r, ex, w))
        return false;
    if (json_is_true(json_object_get(spec, "labels_only")) && !is_file_format(format))
        return exec_invalid(r->err, "spec", blame_pos(r, "spec"),
                            "spec: labels_only needs a file format (idx, csv, npy, npz, "
                            "imagefolder or text) whose labels can be read, not %s", format);
    if (is_file_format(format) && touches_file(r, ex) &&
        !plan_file_dataset(r, ex, w, format, location, spec, result))
        return false;
    if (strcmp(format, "replay") == 0 && touches_file(r, ex) && !plan_replay_dataset(r, w, spec))
        return false;
    if (!ex->found && !find_given(r, "modality")) {
        if (strcmp(format, "idx") == 0 || strcmp(format, "imagefolder") == 0)
            write_col(w, "modality", "text", "image");
        else if (strcmp(format, "text") == 0)
            write_col(w, "modality", "text", "text");
    }
    /* the reader config (spec) carries the split too, as SHiFT's did */
    if (r->spec || split_given) {
        json_t *out = json_deep_copy(spec && json_is_object(spec) ? spec : NULL);
        if (!out)
            out = json_object();
        if (split)
            json_object_set_new(out, "split", json_string(split));
        else
            json_object_del(out, "split");
        write_json(w, "spec", "jsonb", out);
        if (!split_given && split)
            write_col(w, "split", "text", split);
        json_decref(out);
    }
    return true;
}

/* ---- the statement -------------------------------------------------------------------- */

static bool check_name(reg *r)
{
    const ast_name *n = &r->stmt->name;
    size_t len = strlen(n->text);
    if (len == 0 || len > MAX_NAME)
        return exec_invalid(r->err, "name", n->pos, "name: 1 to %d bytes, not %zu", MAX_NAME, len);
    for (const char *c = n->text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return exec_invalid(r->err, "name", n->pos, "name: control characters are not allowed");
    return true;
}

static json_t *register_result(const reg *r, const existing *ex, json_t *notices)
{
    json_t *result = result_new("REGISTER");
    result_set(result, json_pack("[s,s,s]", "name", "kind", "action"),
               json_pack("[[s,s,s]]", r->stmt->name.text, r->what, ex->found ? "updated" : "inserted"));
    json_object_set_new(result, "object", json_string(r->what));
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(notices, "notices"), i, n)
    {
        result_notice(result, "%s", json_string_value(n));
    }
    if (ex->found) {
        strbuf sb = {0};
        for (size_t k = 0; k < r->n; k++)
            strbuf_printf(&sb, "%s%s", k ? ", " : "", r->items[k].def->name);
        result_notice(result, "%s \"%s\" updated: %s replaced; other fields kept", r->what,
                      r->stmt->name.text, sb.data ? sb.data : "nothing");
        strbuf_free(&sb);
    }
    return result;
}

/* Loads the row the name has, works out the writes, and writes. Returns the rows written
 * (0: another session inserted the name meanwhile), or -1 with *err. */
static long register_once(exec_ctx *ctx, reg *r, existing *ex, json_t *notes, exec_error *err)
{
    writes w = {0};
    bool ok = load_existing(ctx, r, ex, err);
    if (ok) {
        write_named(r, &w);
        ok = r->model ? plan_model(r, ex, &w, notes) && write_parent(ctx, r, &w, err)
                      : plan_dataset(r, ex, &w, notes);
    }
    long n = ok ? write_row(ctx, r, ex, &w, err) : -1;
    writes_free(&w);
    return n;
}

json_t *exec_register(exec_ctx *ctx, const ast_register *s, exec_error *err)
{
    reg r = {0};
    r.model = s->what == REGISTER_MODEL;
    r.what = r.model ? "model" : "dataset";
    r.stmt = s;
    r.err = err;
    existing ex = {0};
    json_t *notes = result_new("REGISTER"), *result = NULL;
    long n = check_name(&r) && collect_fields(&r) ? register_once(ctx, &r, &ex, notes, err) : -1;
    if (n == 0 && !ex.found) {
        /* a concurrent REGISTER inserted the name first: this one becomes an update */
        json_decref(notes);
        notes = result_new("REGISTER");
        n = register_once(ctx, &r, &ex, notes, err);
    }
    /* A model gets its check job (docs/language.md "Model checks") in the same transaction. */
    if (n > 0 && r.model && !check_after_register(ctx, s->name.text, false, notes, err))
        n = -1;
    if (n > 0)
        result = register_result(&r, &ex, notes);
    else if (n == 0)
        exec_fail(err, 409, "conflict", s->h.pos, "%s \"%s\" changed while it was being registered; retry",
                  r.what, s->name.text);
    json_decref(notes);
    free(ex.id);
    json_decref(ex.row);
    reg_free(&r);
    return result;
}
