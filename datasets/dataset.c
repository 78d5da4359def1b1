/* datasets/: the public entry points (dataset.h). */
#include "datasets/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "datasets/internal.h"

static const char *const format_names[] = {
    [DATASET_IDX] = "idx",   [DATASET_CSV] = "csv",
    [DATASET_NPY] = "npy",   [DATASET_NPZ] = "npz",
    [DATASET_IMAGEFOLDER] = "imagefolder", [DATASET_TEXT] = "text",
};

const char *dataset_format_name(dataset_format format)
{
    if ((unsigned)format < sizeof format_names / sizeof *format_names)
        return format_names[format];
    return "?";
}

int dataset_format_parse(const char *name, dataset_format *format)
{
    for (unsigned i = 0; i < sizeof format_names / sizeof *format_names; i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *format = (dataset_format)i;
            return 0;
        }
    }
    return -1;
}

const char *dataset_kind_name(dataset_kind kind)
{
    switch (kind) {
    case DATASET_IMAGES: return "images";
    case DATASET_FEATURES: return "features";
    case DATASET_TEXTS: return "texts";
    }
    return "?";
}

void dataset_spec_init(dataset_spec *spec, dataset_format format, const char *path)
{
    memset(spec, 0, sizeof *spec);
    spec->format = format;
    spec->path = path;
    spec->start = 0;
    spec->stop = DATASET_END;
    spec->label_index = -1;
    spec->header = DATASET_HEADER_AUTO;
    spec->delimiter = ',';
}

void dataset_free(dataset *ds)
{
    if (!ds)
        return;
    free(ds->u8);
    free(ds->f32);
    free(ds->features);
    free(ds->texts);
    free(ds->text_block_);
    free(ds->labels);
    if (ds->class_names) {
        for (int32_t i = 0; i < ds->num_classes; i++)
            free(ds->class_names[i]);
        free(ds->class_names);
    }
    free(ds);
}

size_t dataset_example_size(const dataset *ds)
{
    switch (ds->kind) {
    case DATASET_IMAGES: return ds->height * ds->width * ds->channels;
    case DATASET_FEATURES: return ds->dim;
    case DATASET_TEXTS: return 0;
    }
    return 0;
}

int dataset_load(const dataset_spec *spec, dataset **out, char **err)
{
    *out = NULL;
    if (!spec->path || !spec->path[0])
        return ds_fail(err, NULL, "%s dataset: no path given", dataset_format_name(spec->format));
    if (spec->num_classes < 0 || spec->num_classes > DATASET_MAX_CLASSES)
        return ds_fail(err, spec->path, "num_classes %d is out of range (0 to %d)",
                       spec->num_classes, DATASET_MAX_CLASSES);
    if (spec->start < 0)
        return ds_fail(err, spec->path, "slice start %lld is negative", (long long)spec->start);
    if (spec->stop < 0 && spec->stop != DATASET_END)
        return ds_fail(err, spec->path, "slice stop %lld is negative", (long long)spec->stop);
    if (spec->stop != DATASET_END && spec->stop < spec->start)
        return ds_fail(err, spec->path, "slice stop %lld is before its start %lld",
                       (long long)spec->stop, (long long)spec->start);
    ds_ctx ctx;
    ds_ctx_init(&ctx, spec);
    dataset *ds = xcalloc(1, sizeof *ds);
    int rc;
    switch (spec->format) {
    case DATASET_IDX: rc = ds_read_idx(&ctx, ds, err); break;
    case DATASET_CSV: rc = ds_read_csv(&ctx, ds, err); break;
    case DATASET_NPY: rc = ds_read_npy(&ctx, ds, err); break;
    case DATASET_NPZ: rc = ds_read_npz(&ctx, ds, err); break;
    case DATASET_IMAGEFOLDER: rc = ds_read_imagefolder(&ctx, ds, err); break;
    case DATASET_TEXT: rc = ds_read_text(&ctx, ds, err); break;
    default: rc = ds_fail(err, spec->path, "unknown dataset format %d", (int)spec->format);
    }
    if (rc == 0 && spec->labels_only && !ds->labels)
        rc = ds_fail(err, spec->path, "labels_only is set but the %s source has no labels%s",
                     dataset_format_name(spec->format),
                     spec->format == DATASET_IDX || spec->format == DATASET_NPY ||
                             spec->format == DATASET_TEXT
                         ? " (give the labels file)"
                         : "");
    if (rc == 0)
        ds_ctx_digest(&ctx, ds->digest);
    ds_ctx_free(&ctx);
    if (rc != 0) {
        dataset_free(ds);
        return -1;
    }
    *out = ds;
    return 0;
}

void dataset_describe(const dataset *ds, dataset_info *info)
{
    memset(info, 0, sizeof *info);
    info->kind = ds->kind;
    info->size = ds->n;
    info->total = ds->total;
    info->has_labels = ds->labels != NULL;
    info->num_classes = ds->labels ? ds->num_classes : 0;
    info->min_label = 0;
    info->max_label = -1;
    info->height = ds->height;
    info->width = ds->width;
    info->channels = ds->channels;
    info->dim = ds->dim;
    memcpy(info->digest, ds->digest, sizeof info->digest);
    if (!ds->labels || ds->num_classes <= 0)
        return;
    uint8_t *seen = xcalloc((size_t)ds->num_classes, 1);
    for (size_t i = 0; i < ds->n; i++) {
        int32_t l = ds->labels[i];
        if (i == 0 || l < info->min_label)
            info->min_label = l;
        if (i == 0 || l > info->max_label)
            info->max_label = l;
        if (l >= 0 && l < ds->num_classes)
            seen[l] = 1;
    }
    for (int32_t c = 0; c < ds->num_classes; c++)
        info->empty_classes += !seen[c];
    free(seen);
}

int dataset_validate(const dataset_spec *spec, dataset_info *info, char **err)
{
    dataset *ds;
    if (dataset_load(spec, &ds, err) != 0)
        return -1;
    /* The readers reject labels outside [0, num_classes); check it once more here, since
     * this is what REGISTER DATASET relies on. */
    for (size_t i = 0; ds->labels && i < ds->n; i++) {
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->num_classes) {
            int32_t l = ds->labels[i];
            int32_t c = ds->num_classes;
            dataset_free(ds);
            return ds_fail(err, spec->path, "label %d of example %zu is out of range [0, %d)",
                           l, i, c);
        }
    }
    dataset_describe(ds, info);
    dataset_free(ds);
    return 0;
}

/* ---- reader configuration from JSON ------------------------------------------------- */

typedef struct json_key {
    const char *name;
    unsigned formats; /* bit per dataset_format; 0 = every format */
} json_key;

#define F(x) (1u << (x))

static const json_key json_keys[] = {
    {"labels", F(DATASET_IDX) | F(DATASET_NPY) | F(DATASET_TEXT)},
    {"num_classes", 0},
    {"slice", 0},
    {"max_bytes", 0},
    {"label_column", F(DATASET_CSV)},
    {"header", F(DATASET_CSV)},
    {"delimiter", F(DATASET_CSV)},
    {"skip_rows", F(DATASET_CSV)},
    {"features_key", F(DATASET_NPZ)},
    {"labels_key", F(DATASET_NPZ)},
    {"tab_labels", F(DATASET_TEXT)},
    {"channels", F(DATASET_IMAGEFOLDER)},
    {"labels_only", 0},
};

static int json_int_in(const json_t *v, const char *key, long long lo, long long hi,
                       long long *out, char **err)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return ds_fail(err, NULL, "dataset option '%s' must be an integer from %lld to %lld",
                       key, lo, hi);
    *out = json_integer_value(v);
    return 0;
}

static int json_str(const json_t *v, const char *key, const char **out, char **err)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return ds_fail(err, NULL, "dataset option '%s' must be a non-empty string", key);
    *out = json_string_value(v);
    return 0;
}

int dataset_spec_from_json(dataset_format format, const char *path, const json_t *obj,
                           dataset_spec *spec, char **err)
{
    dataset_spec_init(spec, format, path);
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return ds_fail(err, NULL, "dataset options must be an object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        const json_key *k = NULL;
        for (size_t i = 0; i < sizeof json_keys / sizeof *json_keys; i++)
            if (strcmp(json_keys[i].name, key) == 0)
                k = &json_keys[i];
        if (!k)
            return ds_fail(err, NULL, "unknown dataset option '%s' (known: labels, num_classes, "
                           "slice, max_bytes, label_column, header, delimiter, skip_rows, "
                           "features_key, labels_key, tab_labels, channels, labels_only)", key);
        if (k->formats && !(k->formats & F(format)))
            return ds_fail(err, NULL, "dataset option '%s' does not apply to format '%s'", key,
                           dataset_format_name(format));
        long long n;
        if (strcmp(key, "labels") == 0) {
            if (json_str(v, key, &spec->labels_path, err) != 0)
                return -1;
        } else if (strcmp(key, "num_classes") == 0) {
            if (json_int_in(v, key, 1, DATASET_MAX_CLASSES, &n, err) != 0)
                return -1;
            spec->num_classes = (int32_t)n;
        } else if (strcmp(key, "max_bytes") == 0) {
            if (json_int_in(v, key, 1, INT64_MAX, &n, err) != 0)
                return -1;
            spec->max_bytes = (uint64_t)n;
        } else if (strcmp(key, "slice") == 0) {
            if (!json_is_object(v))
                return ds_fail(err, NULL, "dataset option 'slice' must be an object "
                               "{\"start\": …, \"stop\": …}");
            const char *sk;
            json_t *sv;
            json_object_foreach((json_t *)v, sk, sv) {
                bool is_start = strcmp(sk, "start") == 0;
                if (!is_start && strcmp(sk, "stop") != 0)
                    return ds_fail(err, NULL, "unknown key '%s' in 'slice' (start, stop)", sk);
                if (json_is_null(sv))
                    continue;
                if (json_int_in(sv, is_start ? "slice.start" : "slice.stop", 0, INT64_MAX, &n,
                                err) != 0)
                    return -1;
                if (is_start)
                    spec->start = n;
                else
                    spec->stop = n;
            }
        } else if (strcmp(key, "label_column") == 0) {
            if (json_is_integer(v)) {
                if (json_int_in(v, key, -100000000, 100000000, &n, err) != 0)
                    return -1;
                spec->label_index = (int)n;
                spec->label_column = NULL;
            } else if (json_is_string(v) && json_string_length(v) > 0) {
                spec->label_column = json_string_value(v);
            } else {
                return ds_fail(err, NULL, "dataset option 'label_column' must be a column "
                               "name or an integer index");
            }
        } else if (strcmp(key, "header") == 0) {
            if (json_is_boolean(v))
                spec->header = json_is_true(v) ? DATASET_HEADER_YES : DATASET_HEADER_NO;
            else if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0)
                spec->header = DATASET_HEADER_AUTO;
            else
                return ds_fail(err, NULL, "dataset option 'header' must be true, false or "
                               "\"auto\"");
        } else if (strcmp(key, "delimiter") == 0) {
            const char *s = json_is_string(v) ? json_string_value(v) : NULL;
            if (!s || strlen(s) != 1 || s[0] == '"' || s[0] == '\n' || s[0] == '\r')
                return ds_fail(err, NULL, "dataset option 'delimiter' must be one character "
                               "(not a quote or newline)");
            spec->delimiter = s[0];
        } else if (strcmp(key, "skip_rows") == 0) {
            if (json_int_in(v, key, 0, 1000000, &n, err) != 0)
                return -1;
            spec->skip_rows = (unsigned)n;
        } else if (strcmp(key, "features_key") == 0) {
            if (json_str(v, key, &spec->features_key, err) != 0)
                return -1;
        } else if (strcmp(key, "labels_key") == 0) {
            if (json_str(v, key, &spec->labels_key, err) != 0)
                return -1;
        } else if (strcmp(key, "tab_labels") == 0) {
            if (!json_is_boolean(v))
                return ds_fail(err, NULL, "dataset option 'tab_labels' must be true or false");
            spec->tab_labels = json_is_true(v);
        } else if (strcmp(key, "channels") == 0) {
            n = json_is_integer(v) ? json_integer_value(v) : -1;
            if (n != 0 && n != 1 && n != 3)
                return ds_fail(err, NULL, "dataset option 'channels' must be 0 (as the images), "
                               "1 or 3");
            spec->channels = (int)n;
        } else if (strcmp(key, "labels_only") == 0) {
            if (!json_is_boolean(v))
                return ds_fail(err, NULL, "dataset option 'labels_only' must be true or false");
            spec->labels_only = json_is_true(v);
        }
    }
    if (spec->tab_labels && spec->labels_path)
        return ds_fail(err, NULL, "dataset options 'tab_labels' and 'labels' exclude each other");
    return 0;
}
