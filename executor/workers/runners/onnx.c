/* The `onnx` model runner: ONNX Runtime's C API, loaded with dlopen at run time, so rankql
 * builds and runs without it (docs/runners.md "onnx").
 *
 * No ONNX Runtime headers are needed to build: the few entries of the OrtApi function table
 * used here are declared below at their positions in the table. The table is append-only
 * (ONNX Runtime's ABI promise: a new release only adds entries at the end), and the
 * positions were checked against onnxruntime_c_api.h of ORT_API_VERSION 13 (the
 * microsoft/onnxruntime header), 21 (1.21.0) and 29 (1.29.0): every entry up to index 100
 * has the same name and signature in all three. The _Static_asserts pin each position.
 *
 * Library: spec "library", else $RANKQL_ONNXRUNTIME, else libonnxruntime.so, then
 * libonnxruntime.so.1 (the dynamic loader's search path). Loaded once per process, with one
 * OrtEnv; a session per job. */
#include "executor/workers/runners/runners.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

/* ---- the subset of the ONNX Runtime C API used here ------------------------------------- */

typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSession OrtSession;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtRunOptions OrtRunOptions;
typedef struct OrtValue OrtValue;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtTypeInfo OrtTypeInfo;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtAllocator OrtAllocator;

enum {
    ORT_LOGGING_LEVEL_ERROR = 3,          /* OrtLoggingLevel */
    ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT = 1,
    OrtArenaAllocator = 1,                /* OrtAllocatorType */
    OrtMemTypeDefault = 0,                /* OrtMemType */
};

typedef void (*ort_unused)(void);

/* OrtApi, entries 0..100; names as in onnxruntime_c_api.h, unused ones as padding. */
typedef struct ort_api {
    ort_unused CreateStatus;                                                           /* 0 */
    ort_unused GetErrorCode;                                                           /* 1 */
    const char *(*GetErrorMessage)(const OrtStatus *status);                           /* 2 */
    OrtStatus *(*CreateEnv)(int log_severity_level, const char *logid, OrtEnv **out);  /* 3 */
    ort_unused pad4_6[3];             /* CreateEnvWithCustomLogger, En/DisableTelemetryEvents */
    OrtStatus *(*CreateSession)(const OrtEnv *env, const char *model_path,
                                const OrtSessionOptions *options, OrtSession **out);   /* 7 */
    ort_unused CreateSessionFromArray;                                                 /* 8 */
    OrtStatus *(*Run)(OrtSession *session, const OrtRunOptions *run_options,
                      const char *const *input_names, const OrtValue *const *inputs,
                      size_t input_len, const char *const *output_names,
                      size_t output_names_len, OrtValue **outputs);                     /* 9 */
    OrtStatus *(*CreateSessionOptions)(OrtSessionOptions **options);                   /* 10 */
    ort_unused pad11_23[13];   /* SetOptimizedModelFilePath … SetSessionGraphOptimizationLevel */
    OrtStatus *(*SetIntraOpNumThreads)(OrtSessionOptions *options, int n);             /* 24 */
    ort_unused pad25_29[5];    /* SetInterOpNumThreads … RegisterCustomOpsLibrary */
    OrtStatus *(*SessionGetInputCount)(const OrtSession *session, size_t *out);        /* 30 */
    OrtStatus *(*SessionGetOutputCount)(const OrtSession *session, size_t *out);       /* 31 */
    ort_unused SessionGetOverridableInitializerCount;                                  /* 32 */
    OrtStatus *(*SessionGetInputTypeInfo)(const OrtSession *session, size_t index,
                                          OrtTypeInfo **type_info);                     /* 33 */
    ort_unused pad34_35[2];    /* SessionGetOutputTypeInfo, …OverridableInitializerTypeInfo */
    OrtStatus *(*SessionGetInputName)(const OrtSession *session, size_t index,
                                      OrtAllocator *allocator, char **value);          /* 36 */
    OrtStatus *(*SessionGetOutputName)(const OrtSession *session, size_t index,
                                       OrtAllocator *allocator, char **value);         /* 37 */
    ort_unused pad38_48[11];   /* SessionGetOverridableInitializerName … CreateTensorAsOrtValue */
    OrtStatus *(*CreateTensorWithDataAsOrtValue)(const OrtMemoryInfo *info, void *p_data,
                                                 size_t p_data_len, const int64_t *shape,
                                                 size_t shape_len, int type,
                                                 OrtValue **out);                      /* 49 */
    ort_unused IsTensor;                                                               /* 50 */
    OrtStatus *(*GetTensorMutableData)(OrtValue *value, void **out);                   /* 51 */
    ort_unused pad52_54[3];    /* FillStringTensor, GetStringTensorDataLength, …Content */
    OrtStatus *(*CastTypeInfoToTensorInfo)(const OrtTypeInfo *type_info,
                                           const OrtTensorTypeAndShapeInfo **out);     /* 55 */
    ort_unused pad56_59[4];    /* GetOnnxTypeFromTypeInfo … SetDimensions */
    OrtStatus *(*GetTensorElementType)(const OrtTensorTypeAndShapeInfo *info, int *out); /* 60 */
    OrtStatus *(*GetDimensionsCount)(const OrtTensorTypeAndShapeInfo *info, size_t *out); /* 61 */
    OrtStatus *(*GetDimensions)(const OrtTensorTypeAndShapeInfo *info, int64_t *dim_values,
                                size_t dim_values_length);                             /* 62 */
    ort_unused pad63_64[2];    /* GetSymbolicDimensions, GetTensorShapeElementCount */
    OrtStatus *(*GetTensorTypeAndShape)(const OrtValue *value,
                                        OrtTensorTypeAndShapeInfo **out);              /* 65 */
    ort_unused pad66_68[3];    /* GetTypeInfo, GetValueType, CreateMemoryInfo */
    OrtStatus *(*CreateCpuMemoryInfo)(int type, int mem_type, OrtMemoryInfo **out);    /* 69 */
    ort_unused pad70_75[6];    /* CompareMemoryInfo … AllocatorAlloc */
    OrtStatus *(*AllocatorFree)(OrtAllocator *allocator, void *p);                     /* 76 */
    ort_unused AllocatorGetInfo;                                                       /* 77 */
    OrtStatus *(*GetAllocatorWithDefaultOptions)(OrtAllocator **out);                  /* 78 */
    ort_unused pad79_91[13];   /* AddFreeDimensionOverride … KernelContext_GetOutput */
    void (*ReleaseEnv)(OrtEnv *);                                                      /* 92 */
    void (*ReleaseStatus)(OrtStatus *);                                                /* 93 */
    void (*ReleaseMemoryInfo)(OrtMemoryInfo *);                                        /* 94 */
    void (*ReleaseSession)(OrtSession *);                                              /* 95 */
    void (*ReleaseValue)(OrtValue *);                                                  /* 96 */
    ort_unused ReleaseRunOptions;                                                      /* 97 */
    void (*ReleaseTypeInfo)(OrtTypeInfo *);                                            /* 98 */
    void (*ReleaseTensorTypeAndShapeInfo)(OrtTensorTypeAndShapeInfo *);                /* 99 */
    void (*ReleaseSessionOptions)(OrtSessionOptions *);                                /* 100 */
} ort_api;

#define AT(field, index) \
    _Static_assert(offsetof(ort_api, field) == (index) * sizeof(void (*)(void)), #field)
AT(GetErrorMessage, 2);
AT(CreateEnv, 3);
AT(CreateSession, 7);
AT(Run, 9);
AT(CreateSessionOptions, 10);
AT(SetIntraOpNumThreads, 24);
AT(SessionGetInputCount, 30);
AT(SessionGetOutputCount, 31);
AT(SessionGetInputTypeInfo, 33);
AT(SessionGetInputName, 36);
AT(SessionGetOutputName, 37);
AT(CreateTensorWithDataAsOrtValue, 49);
AT(GetTensorMutableData, 51);
AT(CastTypeInfoToTensorInfo, 55);
AT(GetTensorElementType, 60);
AT(GetDimensionsCount, 61);
AT(GetDimensions, 62);
AT(GetTensorTypeAndShape, 65);
AT(CreateCpuMemoryInfo, 69);
AT(AllocatorFree, 76);
AT(GetAllocatorWithDefaultOptions, 78);
AT(ReleaseEnv, 92);
AT(ReleaseStatus, 93);
AT(ReleaseMemoryInfo, 94);
AT(ReleaseSession, 95);
AT(ReleaseValue, 96);
AT(ReleaseTypeInfo, 98);
AT(ReleaseTensorTypeAndShapeInfo, 99);
AT(ReleaseSessionOptions, 100);
_Static_assert(sizeof(ort_api) == 101 * sizeof(void (*)(void)), "ort_api size");

typedef struct ort_api_base {
    const ort_api *(*GetApi)(uint32_t version);
    const char *(*GetVersionString)(void);
} ort_api_base;

/* ---- loading ------------------------------------------------------------------------- */

static pthread_mutex_t ort_lock = PTHREAD_MUTEX_INITIALIZER;
static void *ort_handle;
static const ort_api *ort;
static OrtEnv *ort_env;
static char ort_version[32];

/* Takes the message of a non-NULL status and releases it. */
static int ort_fail(OrtStatus *st, const char *what, char **err, bool *permanent)
{
    const char *m = ort->GetErrorMessage(st);
    size_t len = m ? strcspn(m, "\n") : 0;
    job_fail(err, permanent, true, "ONNX Runtime: %s: %.*s", what, (int)len, m ? m : "");
    ort->ReleaseStatus(st);
    return -1;
}

/* Loads the library and creates the environment once per process. */
static int ort_load(const char *library, char **err, bool *permanent)
{
    pthread_mutex_lock(&ort_lock);
    if (ort && ort_env) {
        pthread_mutex_unlock(&ort_lock);
        return 0;
    }
    const char *names[2] = {library, NULL};
    if (!library) {
        names[0] = "libonnxruntime.so";
        names[1] = "libonnxruntime.so.1";
    }
    void *h = NULL;
    char dl_err[400] = "";
    for (int i = 0; i < 2 && names[i] && !h; i++) {
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h && i == 0)
            snprintf(dl_err, sizeof dl_err, "%s", dlerror());
    }
    if (!h) {
        pthread_mutex_unlock(&ort_lock);
        /* A path that exists but does not load is another problem than a missing runtime. */
        struct stat st;
        if (library && strchr(library, '/') && stat(library, &st) == 0)
            return job_fail(err, permanent, true, "ONNX Runtime at %s cannot be loaded: %s",
                        library, dl_err);
        return job_fail(err, permanent, true, "ONNX Runtime is not installed (%s not found): see "
                    "docs/runners.md", library ? library : "libonnxruntime.so");
    }
    const ort_api_base *(*get_base)(void);
    *(void **)&get_base = dlsym(h, "OrtGetApiBase");
    const ort_api_base *base = get_base ? get_base() : NULL;
    if (!base) {
        dlclose(h);
        pthread_mutex_unlock(&ort_lock);
        return job_fail(err, permanent, true, "%s is not ONNX Runtime (no OrtGetApiBase)",
                    library ? library : "libonnxruntime.so");
    }
    /* Every entry used here exists since API version 1; ask for a recent one first. */
    static const uint32_t versions[] = {21, 17, 13, 10, 7, 4, 1};
    const ort_api *api = NULL;
    for (size_t i = 0; i < sizeof versions / sizeof *versions && !api; i++)
        api = base->GetApi(versions[i]);
    if (!api) {
        dlclose(h);
        pthread_mutex_unlock(&ort_lock);
        return job_fail(err, permanent, true, "ONNX Runtime %s offers no usable C API version",
                    base->GetVersionString ? base->GetVersionString() : "?");
    }
    OrtEnv *env = NULL;
    OrtStatus *s = api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "rankql", &env);
    if (s) {
        ort = api;
        ort_fail(s, "creating the environment", err, permanent);
        ort = NULL;
        dlclose(h);
        pthread_mutex_unlock(&ort_lock);
        return -1;
    }
    /* Kept for the life of the process: unloading ONNX Runtime is not supported. */
    ort_handle = h;
    ort = api;
    ort_env = env;
    snprintf(ort_version, sizeof ort_version, "%s",
             base->GetVersionString ? base->GetVersionString() : "?");
    pthread_mutex_unlock(&ort_lock);
    return 0;
}

/* ---- the spec ------------------------------------------------------------------------ */

enum pool_kind { POOL_FLATTEN, POOL_TOKENS, POOL_SPATIAL };

typedef struct onnx_spec {
    const char *path, *input, *output, *library;
    bool nhwc;
    size_t image_size;     /* 0 = the model's fixed size, else the dataset's */
    float mean[3], std[3];
    size_t nmean, nstd;
    enum pool_kind pool;
    int threads;
    size_t batch;
} onnx_spec;

static int parse_floats(const json_t *v, float *out, size_t *n, const char *key,
                        const char *model, char **err)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 3)
        return (*err = xasprintf("model %s: onnx spec \"%s\" must be an array of 1 to 3 "
                                 "numbers", model, key)), -1;
    *n = json_array_size(v);
    for (size_t i = 0; i < *n; i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_number(x) || !isfinite(json_number_value(x)))
            return (*err = xasprintf("model %s: onnx spec \"%s\"[%zu] must be a number",
                                     model, key, i)), -1;
        out[i] = (float)json_number_value(x);
    }
    return 0;
}

static int parse_spec(const runner_call *call, onnx_spec *s, char **err)
{
    memset(s, 0, sizeof *s);
    const char *m = call->model_name;
    static const char *const keys[] = {"path", "input", "output", "layout", "image_size",
                                       "mean", "std", "pool", "library", "threads"};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)call->spec, key, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            known |= strcmp(key, keys[i]) == 0;
        if (!known)
            return (*err = xasprintf("model %s: unknown onnx spec key \"%s\"", m, key)), -1;
    }
    v = json_object_get(call->spec, "path");
    if (!json_is_string(v) || !*json_string_value(v))
        return (*err = xasprintf("model %s: onnx spec \"path\" (the .onnx file) is required",
                                 m)), -1;
    s->path = json_string_value(v);
#define OPT_STRING(field, name)                                                               \
    v = json_object_get(call->spec, name);                                                    \
    if (v && !json_is_null(v)) {                                                              \
        if (!json_is_string(v) || !*json_string_value(v))                                     \
            return (*err = xasprintf("model %s: onnx spec \"%s\" must be a string", m, name)), \
                   -1;                                                                        \
        s->field = json_string_value(v);                                                      \
    }
    OPT_STRING(input, "input")
    OPT_STRING(output, "output")
    OPT_STRING(library, "library")
    const char *layout = NULL, *pool = NULL;
    v = json_object_get(call->spec, "layout");
    if (v && !json_is_null(v)) {
        layout = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(layout, "nchw") && strcmp(layout, "nhwc"))
            return (*err = xasprintf("model %s: onnx spec \"layout\" must be \"nchw\" or "
                                     "\"nhwc\"", m)), -1;
        s->nhwc = strcmp(layout, "nhwc") == 0;
    }
    v = json_object_get(call->spec, "pool");
    if (v && !json_is_null(v)) {
        pool = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(pool, "flatten") == 0)
            s->pool = POOL_FLATTEN;
        else if (strcmp(pool, "tokens") == 0)
            s->pool = POOL_TOKENS;
        else if (strcmp(pool, "spatial") == 0)
            s->pool = POOL_SPATIAL;
        else
            return (*err = xasprintf("model %s: onnx spec \"pool\" must be \"flatten\", "
                                     "\"tokens\" or \"spatial\"", m)), -1;
    }
    v = json_object_get(call->spec, "image_size");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 8192)
            return (*err = xasprintf("model %s: onnx spec \"image_size\" must be an integer in "
                                     "[1, 8192]", m)), -1;
        s->image_size = (size_t)json_integer_value(v);
    }
    v = json_object_get(call->spec, "threads");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1024)
            return (*err = xasprintf("model %s: onnx spec \"threads\" must be an integer ≥ 0",
                                     m)), -1;
        s->threads = (int)json_integer_value(v);
    }
    v = json_object_get(call->spec, "mean");
    if (v && !json_is_null(v) && parse_floats(v, s->mean, &s->nmean, "mean", m, err) != 0)
        return -1;
    v = json_object_get(call->spec, "std");
    if (v && !json_is_null(v) && parse_floats(v, s->std, &s->nstd, "std", m, err) != 0)
        return -1;
    for (size_t i = 0; i < s->nstd; i++)
        if (!(s->std[i] != 0))
            return (*err = xasprintf("model %s: onnx spec \"std\" must not hold 0", m)), -1;
    s->batch = 32;
    v = json_object_get(call->model, "batch_size");
    if (json_is_integer(v) && json_integer_value(v) > 0)
        s->batch = (size_t)json_integer_value(v);
    return 0;
}

/* ---- preprocessing ------------------------------------------------------------------- */

/* Pixel (y, x, c) of example i as a float in [0, 1] (uint8) or as stored (float). */
static float pixel(const dataset *ds, size_t i, size_t y, size_t x, size_t c)
{
    size_t off = ((i * ds->height + y) * ds->width + x) * ds->channels + c;
    return ds->pixel == DATASET_PIXEL_U8 ? ds->u8[off] / 255.0f : ds->f32[off];
}

/* Channel c of the model's input from the example's channels: as is, grey replicated, or
 * RGB averaged to grey. */
static float pixel_ch(const dataset *ds, size_t i, size_t y, size_t x, size_t c, size_t mc)
{
    if (ds->channels == mc)
        return pixel(ds, i, y, x, c);
    if (ds->channels == 1)
        return pixel(ds, i, y, x, 0);
    float s = 0;
    for (size_t k = 0; k < ds->channels; k++)
        s += pixel(ds, i, y, x, k);
    return s / (float)ds->channels;
}

/* Bilinear sample at output (oy, ox) of an (th × tw) resize (align_corners = false). */
static float sample(const dataset *ds, size_t i, size_t oy, size_t ox, size_t th, size_t tw,
                    size_t c, size_t mc)
{
    if (th == ds->height && tw == ds->width)
        return pixel_ch(ds, i, oy, ox, c, mc);
    double fy = ((double)oy + 0.5) * (double)ds->height / (double)th - 0.5;
    double fx = ((double)ox + 0.5) * (double)ds->width / (double)tw - 0.5;
    if (fy < 0)
        fy = 0;
    if (fx < 0)
        fx = 0;
    size_t y0 = (size_t)fy, x0 = (size_t)fx;
    if (y0 >= ds->height - 1)
        y0 = ds->height - 1;
    if (x0 >= ds->width - 1)
        x0 = ds->width - 1;
    size_t y1 = y0 + 1 < ds->height ? y0 + 1 : y0, x1 = x0 + 1 < ds->width ? x0 + 1 : x0;
    double wy = fy - (double)y0, wx = fx - (double)x0;
    if (wy > 1)
        wy = 1;
    if (wx > 1)
        wx = 1;
    double v = (1 - wy) * ((1 - wx) * pixel_ch(ds, i, y0, x0, c, mc) +
                           wx * pixel_ch(ds, i, y0, x1, c, mc)) +
               wy * ((1 - wx) * pixel_ch(ds, i, y1, x0, c, mc) +
                     wx * pixel_ch(ds, i, y1, x1, c, mc));
    return (float)v;
}

/* ---- the runner ---------------------------------------------------------------------- */

typedef struct session {
    OrtSession *sess;
    OrtMemoryInfo *mem;
    char *input_name, *output_name;
    int64_t dims[8];       /* the input's dims (-1 = free) */
    size_t rank;
} session;

static void session_close(session *s)
{
    if (!ort)
        return;
    if (s->sess)
        ort->ReleaseSession(s->sess);
    if (s->mem)
        ort->ReleaseMemoryInfo(s->mem);
    free(s->input_name);
    free(s->output_name);
}

/* Names of the session's inputs or outputs, for messages ("x, y"). */
static char *io_names(OrtSession *sess, bool outputs, size_t count)
{
    OrtAllocator *alloc = NULL;
    strbuf sb = {0};
    OrtStatus *st = ort->GetAllocatorWithDefaultOptions(&alloc);
    if (st) {
        ort->ReleaseStatus(st);
        return xstrdup("?");
    }
    for (size_t i = 0; i < count; i++) {
        char *name = NULL;
        st = outputs ? ort->SessionGetOutputName(sess, i, alloc, &name)
                     : ort->SessionGetInputName(sess, i, alloc, &name);
        if (st) {
            ort->ReleaseStatus(st);
            continue;
        }
        strbuf_printf(&sb, "%s%s", sb.len ? ", " : "", name);
        st = ort->AllocatorFree(alloc, name);
        if (st)
            ort->ReleaseStatus(st);
    }
    return sb.len ? strbuf_detach(&sb) : xstrdup("(none)");
}

/* Index of the input or output called want (NULL = the first); -1 when absent. */
static long find_io(OrtSession *sess, bool outputs, size_t count, const char *want, char **name)
{
    OrtAllocator *alloc = NULL;
    OrtStatus *st = ort->GetAllocatorWithDefaultOptions(&alloc);
    if (st) {
        ort->ReleaseStatus(st);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        char *n = NULL;
        st = outputs ? ort->SessionGetOutputName(sess, i, alloc, &n)
                     : ort->SessionGetInputName(sess, i, alloc, &n);
        if (st) {
            ort->ReleaseStatus(st);
            return -1;
        }
        bool hit = !want || strcmp(n, want) == 0;
        if (hit)
            *name = xstrdup(n);
        st = ort->AllocatorFree(alloc, n);
        if (st)
            ort->ReleaseStatus(st);
        if (hit)
            return (long)i;
    }
    return -1;
}

static int session_open(const onnx_spec *sp, const char *model, session *s, char **err,
                        bool *permanent)
{
    memset(s, 0, sizeof *s);
    struct stat stt;
    if (stat(sp->path, &stt) != 0)
        return job_fail(err, permanent, true, "model %s: ONNX file %s: %s", model, sp->path,
                    strerror(errno));
    OrtSessionOptions *opts = NULL;
    OrtStatus *st = ort->CreateSessionOptions(&opts);
    if (st)
        return ort_fail(st, "session options", err, permanent);
    if (sp->threads > 0 && (st = ort->SetIntraOpNumThreads(opts, sp->threads)) != NULL) {
        ort->ReleaseSessionOptions(opts);
        return ort_fail(st, "threads", err, permanent);
    }
    st = ort->CreateSession(ort_env, sp->path, opts, &s->sess);
    ort->ReleaseSessionOptions(opts);
    if (st) {
        char *what = xasprintf("loading %s", sp->path);
        ort_fail(st, what, err, permanent);
        free(what);
        return -1;
    }
    size_t nin = 0, nout = 0;
    if ((st = ort->SessionGetInputCount(s->sess, &nin)) != NULL ||
        (st = ort->SessionGetOutputCount(s->sess, &nout)) != NULL)
        return ort_fail(st, "model inputs/outputs", err, permanent);
    long in = find_io(s->sess, false, nin, sp->input, &s->input_name);
    if (in < 0) {
        char *names = io_names(s->sess, false, nin);
        job_fail(err, permanent, true, "model %s: no input '%s' in %s (inputs: %s)", model,
             sp->input ? sp->input : "(first)", sp->path, names);
        free(names);
        return -1;
    }
    long out = find_io(s->sess, true, nout, sp->output, &s->output_name);
    if (out < 0) {
        char *names = io_names(s->sess, true, nout);
        job_fail(err, permanent, true, "model %s: no output '%s' in %s (outputs: %s; an "
             "intermediate layer must be made a graph output first, see docs/runners.md)",
             model, sp->output ? sp->output : "(first)", sp->path, names);
        free(names);
        return -1;
    }
    if (nin > 1) {
        char *names = io_names(s->sess, false, nin);
        job_fail(err, permanent, true, "model %s: %s has %zu inputs (%s); the onnx runner feeds "
             "one", model, sp->path, nin, names);
        free(names);
        return -1;
    }
    OrtTypeInfo *ti = NULL;
    if ((st = ort->SessionGetInputTypeInfo(s->sess, (size_t)in, &ti)) != NULL)
        return ort_fail(st, "input type", err, permanent);
    const OrtTensorTypeAndShapeInfo *tsi = NULL;
    int et = 0;
    if ((st = ort->CastTypeInfoToTensorInfo(ti, &tsi)) != NULL || !tsi) {
        ort->ReleaseTypeInfo(ti);
        if (st)
            return ort_fail(st, "input type", err, permanent);
        return job_fail(err, permanent, true, "model %s: input '%s' is not a tensor", model,
                    s->input_name);
    }
    if ((st = ort->GetTensorElementType(tsi, &et)) != NULL ||
        (st = ort->GetDimensionsCount(tsi, &s->rank)) != NULL) {
        ort->ReleaseTypeInfo(ti);
        return ort_fail(st, "input type", err, permanent);
    }
    if (et != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || s->rank < 2 || s->rank > 8) {
        ort->ReleaseTypeInfo(ti);
        return job_fail(err, permanent, true, "model %s: input '%s' must be a float32 tensor of "
                    "rank 2 (vectors) or 4 (images); it has element type %d and rank %zu",
                    model, s->input_name, et, s->rank);
    }
    st = ort->GetDimensions(tsi, s->dims, s->rank);
    ort->ReleaseTypeInfo(ti);
    if (st)
        return ort_fail(st, "input shape", err, permanent);
    if ((st = ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &s->mem)) != NULL)
        return ort_fail(st, "memory info", err, permanent);
    return 0;
}

/* Fills the input batch rows [first, first + count) (padding rows stay zero). */
static void fill_batch(const dataset *ds, const onnx_spec *sp, size_t first, size_t count,
                       size_t th, size_t tw, size_t mc, float *buf, size_t per)
{
    for (size_t r = 0; r < count; r++) {
        size_t i = first + r;
        float *o = buf + r * per;
        if (ds->kind == DATASET_FEATURES) {
            memcpy(o, ds->features + i * ds->dim, ds->dim * sizeof(float));
            continue;
        }
        for (size_t c = 0; c < mc; c++) {
            float mean = sp->nmean ? sp->mean[sp->nmean == 1 ? 0 : c] : 0.0f;
            float sd = sp->nstd ? sp->std[sp->nstd == 1 ? 0 : c] : 1.0f;
            for (size_t y = 0; y < th; y++)
                for (size_t x = 0; x < tw; x++) {
                    float v = (sample(ds, i, y, x, th, tw, c, mc) - mean) / sd;
                    if (sp->nhwc)
                        o[(y * tw + x) * mc + c] = v;
                    else
                        o[(c * th + y) * tw + x] = v;
                }
        }
    }
}

int onnx_runner_embed(const runner_call *call, float **out, size_t *dim, char **err,
                      bool *permanent)
{
    *out = NULL;
    *dim = 0;
    *permanent = false;
    const dataset *ds = call->ds;
    onnx_spec sp;
    if (parse_spec(call, &sp, err) != 0) {
        *permanent = true;
        return -1;
    }
    if (ds->kind == DATASET_TEXTS)
        return job_fail(err, permanent, true, "model %s cannot embed dataset %s: the onnx runner "
                    "takes images or feature vectors; this dataset holds texts (use an exec "
                    "model for text models)", call->model_name, call->dataset_name);
    const char *library = sp.library;
    if (!library) {
        const char *e = getenv("RANKQL_ONNXRUNTIME");
        if (e && *e)
            library = e;
    }
    if (ort_load(library, err, permanent) != 0)
        return -1;

    session s;
    if (session_open(&sp, call->model_name, &s, err, permanent) != 0) {
        session_close(&s);
        return -1;
    }
    /* The input tensor's geometry. */
    size_t th = 1, tw = 1, mc = 1, per;
    bool images = ds->kind == DATASET_IMAGES;
    if (!images) {
        if (s.rank != 2 || (s.dims[1] > 0 && (size_t)s.dims[1] != ds->dim)) {
            job_fail(err, permanent, true, "model %s cannot embed dataset %s: input '%s' "
                        "takes rank-%zu tensors (second dim %lld), the dataset holds %zu-value "
                        "vectors", call->model_name, call->dataset_name, s.input_name, s.rank,
                        (long long)s.dims[1], ds->dim);
            session_close(&s);
            return -1;
        }
        per = ds->dim;
    } else {
        if (s.rank != 4) {
            job_fail(err, permanent, true, "model %s cannot embed dataset %s: input '%s' "
                        "has rank %zu; images need rank 4 (%s)", call->model_name,
                        call->dataset_name, s.input_name, s.rank, sp.nhwc ? "NHWC" : "NCHW");
            session_close(&s);
            return -1;
        }
        int64_t dc = sp.nhwc ? s.dims[3] : s.dims[1], dh = sp.nhwc ? s.dims[1] : s.dims[2],
                dw = sp.nhwc ? s.dims[2] : s.dims[3];
        mc = dc > 0 ? (size_t)dc : ds->channels;
        th = sp.image_size ? sp.image_size : dh > 0 ? (size_t)dh : ds->height;
        tw = sp.image_size ? sp.image_size : dw > 0 ? (size_t)dw : ds->width;
        if ((dh > 0 && (size_t)dh != th) || (dw > 0 && (size_t)dw != tw) ||
            (mc != 1 && mc != 3 && mc != ds->channels)) {
            job_fail(err, permanent, true, "model %s cannot embed dataset %s: input '%s' "
                        "is %lld×%lld×%lld (C×H×W), image_size %zu and %zu channels do not fit",
                        call->model_name, call->dataset_name, s.input_name, (long long)dc,
                        (long long)dh, (long long)dw, th, ds->channels);
            session_close(&s);
            return -1;
        }
        if (th > 8192 || tw > 8192 || mc > 64) {
            job_fail(err, permanent, true, "model %s: input images too large", call->model_name);
            session_close(&s);
            return -1;
        }
        per = th * tw * mc;
    }
    size_t batch = s.dims[0] > 0 ? (size_t)s.dims[0] : sp.batch;
    if (batch > ds->n && s.dims[0] <= 0)
        batch = ds->n ? ds->n : 1;
    if (per == 0 || batch > SIZE_MAX / sizeof(float) / per) {
        job_fail(err, permanent, true, "model %s: input batch too large", call->model_name);
        session_close(&s);
        return -1;
    }
    int64_t shape[4];
    if (images) {
        shape[0] = (int64_t)batch;
        shape[1] = (int64_t)(sp.nhwc ? th : mc);
        shape[2] = (int64_t)(sp.nhwc ? tw : th);
        shape[3] = (int64_t)(sp.nhwc ? mc : tw);
    } else {
        shape[0] = (int64_t)batch;
        shape[1] = (int64_t)per;
    }
    float *in = xmalloc(batch * per * sizeof(float));
    float *x = NULL;
    size_t d = 0, nbatch = (ds->n + batch - 1) / batch;
    int rc = -1;
    for (size_t b = 0; b < nbatch; b++) {
        if (call->ctx && call->ctx->should_stop && call->ctx->should_stop(call->ctx->stop_arg)) {
            job_fail(err, permanent, false, "embed job stopped (cancelled or lease lost)");
            goto done;
        }
        size_t first = b * batch, count = ds->n - first < batch ? ds->n - first : batch;
        memset(in, 0, batch * per * sizeof(float));
        fill_batch(ds, &sp, first, count, th, tw, mc, in, per);
        /* A model with a free batch dimension gets a short last batch. */
        size_t rows = s.dims[0] > 0 ? batch : count;
        shape[0] = (int64_t)rows;
        OrtValue *iv = NULL, *ov = NULL;
        OrtStatus *st = ort->CreateTensorWithDataAsOrtValue(
            s.mem, in, rows * per * sizeof(float), shape, images ? 4 : 2,
            ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &iv);
        if (st) {
            ort_fail(st, "input tensor", err, permanent);
            goto done;
        }
        const char *in_names[1] = {s.input_name}, *out_names[1] = {s.output_name};
        st = ort->Run(s.sess, NULL, in_names, (const OrtValue *const *)&iv, 1, out_names, 1, &ov);
        ort->ReleaseValue(iv);
        if (st) {
            ort_fail(st, "run", err, permanent);
            goto done;
        }
        OrtTensorTypeAndShapeInfo *oi = NULL;
        int64_t od[8];
        size_t orank = 0;
        int et = 0;
        float *data = NULL;
        if ((st = ort->GetTensorTypeAndShape(ov, &oi)) != NULL) {
            ort->ReleaseValue(ov);
            ort_fail(st, "output shape", err, permanent);
            goto done;
        }
        if ((st = ort->GetTensorElementType(oi, &et)) != NULL ||
            (st = ort->GetDimensionsCount(oi, &orank)) != NULL) {
            ort->ReleaseTensorTypeAndShapeInfo(oi);
            ort->ReleaseValue(ov);
            ort_fail(st, "output shape", err, permanent);
            goto done;
        }
        if (et != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || orank < 1 || orank > 8) {
            ort->ReleaseTensorTypeAndShapeInfo(oi);
            ort->ReleaseValue(ov);
            job_fail(err, permanent, true, "model %s: output '%s' must be a float32 tensor of rank "
                 "1 to 8 (element type %d, rank %zu)", call->model_name, s.output_name, et,
                 orank);
            goto done;
        }
        st = ort->GetDimensions(oi, od, orank);
        ort->ReleaseTensorTypeAndShapeInfo(oi);
        if (!st)
            st = ort->GetTensorMutableData(ov, (void **)&data);
        if (st) {
            ort->ReleaseValue(ov);
            ort_fail(st, "output", err, permanent);
            goto done;
        }
        /* [rows, rest…] → one row of features per example, pooled as the spec says. */
        size_t rest = 1;
        for (size_t k = 1; k < orank; k++)
            rest *= (size_t)(od[k] > 0 ? od[k] : 0);
        size_t bd = rest, inner = 1, groups = 1;
        bool shape_ok = od[0] == (int64_t)rows && rest > 0;
        if (shape_ok && sp.pool == POOL_TOKENS) {       /* [rows, T, D] → mean over T */
            shape_ok = orank == 3;
            if (shape_ok)
                groups = (size_t)od[1], bd = (size_t)od[2], inner = 1;
        } else if (shape_ok && sp.pool == POOL_SPATIAL) { /* [rows, C, H, W] → mean over H, W */
            shape_ok = orank == 4;
            if (shape_ok)
                bd = (size_t)od[1], inner = (size_t)(od[2] * od[3]), groups = 1;
        }
        if (!shape_ok) {
            ort->ReleaseValue(ov);
            job_fail(err, permanent, true, "model %s: output '%s' has rank %zu and first dim %lld "
                 "for a batch of %zu%s", call->model_name, s.output_name, orank,
                 (long long)od[0], rows,
                 sp.pool == POOL_TOKENS    ? " (pool \"tokens\" needs [n, T, D])"
                 : sp.pool == POOL_SPATIAL ? " (pool \"spatial\" needs [n, C, H, W])"
                                           : "");
            goto done;
        }
        if (!x) {
            d = bd;
            if (d > SIZE_MAX / sizeof(float) / (ds->n ? ds->n : 1)) {
                ort->ReleaseValue(ov);
                job_fail(err, permanent, true, "model %s: %zu × %zu features are too many",
                     call->model_name, ds->n, d);
                goto done;
            }
            x = xmalloc(ds->n * d * sizeof(float) + 1);
        } else if (bd != d) {
            ort->ReleaseValue(ov);
            job_fail(err, permanent, true, "model %s: output '%s' changed size between batches "
                 "(%zu, then %zu)", call->model_name, s.output_name, d, bd);
            goto done;
        }
        bool finite = true;
        for (size_t r = 0; r < count; r++) {
            const float *src = data + r * rest;
            float *dst = x + (first + r) * d;
            if (sp.pool == POOL_FLATTEN) {
                memcpy(dst, src, d * sizeof(float));
            } else if (sp.pool == POOL_TOKENS) {
                for (size_t j = 0; j < d; j++) {
                    double acc = 0;
                    for (size_t t = 0; t < groups; t++)
                        acc += src[t * d + j];
                    dst[j] = (float)(acc / (double)(groups ? groups : 1));
                }
            } else {
                for (size_t j = 0; j < d; j++) {
                    double acc = 0;
                    for (size_t t = 0; t < inner; t++)
                        acc += src[j * inner + t];
                    dst[j] = (float)(acc / (double)inner);
                }
            }
            for (size_t j = 0; j < d; j++)
                finite &= isfinite(dst[j]) != 0;
        }
        ort->ReleaseValue(ov);
        if (!finite) {
            if (call->output_fault)
                *call->output_fault = true;
            job_fail(err, permanent, true, "model %s: output '%s' is not all finite",
                 call->model_name, s.output_name);
            goto done;
        }
        if (call->ctx && call->ctx->progress) {
            char note[64];
            snprintf(note, sizeof note, "batch %zu of %zu", b + 1, nbatch);
            call->ctx->progress(call->ctx->progress_arg, (double)(b + 1) / (double)nbatch,
                                note);
        }
    }
    if (!x) { /* an empty slice: the dimension is unknown without a run */
        job_fail(err, permanent, true, "model %s: dataset %s has no examples to embed",
             call->model_name, call->dataset_name);
        goto done;
    }
    *out = x;
    *dim = d;
    x = NULL;
    rc = 0;
done:
    free(x);
    free(in);
    session_close(&s);
    return rc;
}
