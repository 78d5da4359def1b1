/* executor/workers/embed_job.c and runners/: embed jobs run end to end on small IDX and text
 * datasets written to a temporary directory — builtin extractors (raw, pca fitted on a
 * "fit" dataset, hog, noop), slices, batches and progress, cancellation, every kind of bad
 * payload (a permanent error that names the field, and no file left behind), the exec
 * runner with examples/exec/embed_mean.py and with failing, lying, slow and missing
 * commands, and the onnx runner without ONNX Runtime. No database: store() is covered by
 * the integration tests. Run from the repository root (tests/run-tests.sh does). */
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "datasets/dataset.h"
#include "executor/workers/embed/embed.h"
#include "executor/workers/featstore.h"
#include "executor/workers/jobs.h"

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define EXAMPLE "examples/exec/embed_mean.py"
#define N 20
#define H 8
#define W 8

static char tmpdir[512];
static char datadir[600], exectmp[600], images[600], texts[600];

/* ---- fixtures ------------------------------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        fail_msg("cannot write %s", path);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static size_t files_found;
static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path, (void)st, (void)ftw;
    if (flag == FTW_F || flag == FTW_SL)
        files_found++;
    return 0;
}

/* Regular files under dir (0 when dir does not exist). */
static size_t count_files(const char *dir)
{
    files_found = 0;
    if (access(dir, F_OK) == 0)
        nftw(dir, count_entry, 16, FTW_PHYS);
    return files_found;
}

/* The exec runner's temporary directories left in dir. (ONNX Runtime writes files of its
 * own into $TMPDIR: those do not count.) */
static size_t exec_dirs_in(const char *dir)
{
    size_t n = 0;
    char *cmd = xasprintf("ls -A '%s' | grep -c '^rankql-exec-'", dir);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (p) {
        if (fscanf(p, "%zu", &n) != 1)
            n = 999;
        pclose(p);
    }
    return n;
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/rankql-embedjob-XXXXXX", base);
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(datadir, sizeof datadir, "%s/data", tmpdir);
    snprintf(exectmp, sizeof exectmp, "%s/exectmp", tmpdir);
    snprintf(images, sizeof images, "%s/toy-images-idx3-ubyte", tmpdir);
    snprintf(texts, sizeof texts, "%s/toy.txt", tmpdir);
    mkdir(datadir, 0755);
    mkdir(exectmp, 0755);
    /* The exec runner's temporary directories go here, so the tests can see they are gone. */
    setenv("TMPDIR", exectmp, 1);

    /* N 8×8 images with varied content, labels i % 3. */
    size_t il = 16 + (size_t)N * H * W;
    uint8_t *img = xcalloc(il, 1);
    put_be32(img, 0x00000803);
    put_be32(img + 4, N);
    put_be32(img + 8, H);
    put_be32(img + 12, W);
    uint64_t s = 12345;
    for (size_t i = 0; i < (size_t)N * H * W; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = i / (H * W), r = (i % (H * W)) / W, c = i % W;
        img[16 + i] = (uint8_t)(((s >> 33) % 64) + (k * 7 + r * 11 + c * (k % 5)) % 190);
    }
    write_bytes(images, img, il);
    free(img);
    uint8_t lab[8 + N];
    put_be32(lab, 0x00000801);
    put_be32(lab + 4, N);
    for (int i = 0; i < N; i++)
        lab[8 + i] = (uint8_t)(i % 3);
    char labels[600];
    snprintf(labels, sizeof labels, "%s/toy-labels-idx1-ubyte", tmpdir);
    write_bytes(labels, lab, sizeof lab);

    const char *t = "hello world\nRankQL ranks 42 models\nline three\nA b C d\n";
    write_bytes(texts, t, strlen(t));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- running jobs -------------------------------------------------------------------- */

typedef struct probe {
    int progress_calls;
    double last_fraction;
    char last_note[64];
    int stop_after;     /* should_stop answers true from this call on; 0 = never */
    int stop_calls;
} probe;

static void on_progress(void *arg, double fraction, const char *note)
{
    probe *p = arg;
    assert_true(fraction >= 0 && fraction <= 1);
    p->progress_calls++;
    p->last_fraction = fraction;
    snprintf(p->last_note, sizeof p->last_note, "%s", note);
}

static bool on_should_stop(void *arg)
{
    probe *p = arg;
    p->stop_calls++;
    return p->stop_after > 0 && p->stop_calls >= p->stop_after;
}

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *o = json_loads(text, JSON_DECODE_ANY, &je);
    if (!o)
        fail_msg("bad JSON in the test: %s (%s)", text, je.text);
    return o;
}

static json_t *idx_dataset(int64_t start, int64_t stop)
{
    json_t *d = json_pack("{s:I, s:s, s:s, s:s, s:{}, s:I}", "id", 3, "name", "toy", "format",
                          "idx", "location", images, "spec", "start", (json_int_t)start);
    json_object_set_new(d, "stop", stop < 0 ? json_null() : json_integer(stop));
    return d;
}

static json_t *text_dataset(void)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:n, s:I, s:n}", "id", 4, "name", "toy-texts",
                     "format", "text", "location", texts, "spec", "start", 0, "stop");
}

/* {"model": {…runner, spec…}, "dataset": ds, "fit": fit} (ds and fit stolen). */
static json_t *payload(const char *runner, const char *spec_json, json_t *ds, json_t *fit)
{
    json_t *p = json_pack("{s:{s:I, s:s, s:s, s:s, s:o}, s:o, s:o}", "model", "id", 12,
                          "name", "test/model", "runner", runner, "modality", "image", "spec",
                          parse(spec_json), "dataset", ds, "fit", fit ? fit : json_null());
    assert_non_null(p);
    return p;
}

static int run_job(const json_t *p, probe *pr, json_t **result, char **err, bool *permanent)
{
    job_ctx ctx = {
        .data_dir = datadir, .job_id = 7, .hash = HASH, .conn = NULL,
        .progress = on_progress, .progress_arg = pr, .should_stop = on_should_stop,
        .stop_arg = pr,
    };
    *result = NULL;
    *err = NULL;
    *permanent = false;
    return embed_job_runner.run(&ctx, p, result, err, permanent);
}

static json_t *run_ok(json_t *p, probe *pr)
{
    probe local = {0};
    json_t *result;
    char *err;
    bool permanent;
    if (run_job(p, pr ? pr : &local, &result, &err, &permanent) != 0)
        fail_msg("embed job failed: %s", err);
    assert_null(err);
    assert_non_null(result);
    json_decref(p);
    return result;
}

/* Runs a payload that must fail: the error contains needle, permanence as given, and the
 * data directory and the exec temporary directory hold nothing. */
static void run_fails(json_t *p, probe *pr, bool want_permanent, const char *needle)
{
    probe local = {0};
    json_t *result;
    char *err;
    bool permanent;
    char *text = json_dumps(p, JSON_COMPACT);
    assert_int_equal(run_job(p, pr ? pr : &local, &result, &err, &permanent), -1);
    assert_null(result);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("%s: error '%s' lacks '%s'", text, err, needle);
    if (permanent != want_permanent)
        fail_msg("%s: error '%s' should be %s", text, err,
                 want_permanent ? "permanent" : "retryable");
    assert_null(strchr(err, '\n'));
    assert_int_equal(count_files(datadir), 0);
    if (exec_dirs_in(exectmp) != 0) {
        fail_msg("%s: the exec runner left files in %s", text, exectmp);
    }
    free(text);
    free(err);
    json_decref(p);
}

static featfile read_back(const json_t *result, size_t rows, size_t dim)
{
    featfile f;
    char *err = NULL;
    if (featstore_read(datadir, HASH, &f, &err) != 0)
        fail_msg("featstore_read: %s", err);
    assert_int_equal(f.rows, rows);
    assert_int_equal(f.dim, dim);
    assert_int_equal(json_integer_value(json_object_get(result, "rows")), rows);
    assert_int_equal(json_integer_value(json_object_get(result, "dim")), dim);
    char *rel = featstore_relpath(HASH);
    assert_string_equal(json_string_value(json_object_get(result, "path")), rel);
    char *abs = xasprintf("%s/%s", datadir, rel);
    struct stat st;
    assert_int_equal(stat(abs, &st), 0);
    assert_int_equal(json_integer_value(json_object_get(result, "bytes")), st.st_size);
    assert_true(json_is_number(json_object_get(result, "seconds")));
    free(abs);
    free(rel);
    return f;
}

static void remove_features(void)
{
    char *rel = featstore_relpath(HASH);
    char *abs = xasprintf("%s/%s", datadir, rel);
    assert_int_equal(unlink(abs), 0);
    free(abs);
    free(rel);
    assert_int_equal(count_files(datadir), 0);
}

static dataset *load_idx(int64_t start, int64_t stop)
{
    dataset_spec spec;
    dataset_spec_init(&spec, DATASET_IDX, images);
    spec.start = start;
    spec.stop = stop < 0 ? DATASET_END : stop;
    dataset *ds;
    char *err = NULL;
    if (dataset_load(&spec, &ds, &err) != 0)
        fail_msg("dataset_load: %s", err);
    return ds;
}

static embed_spec spec_of(const char *text)
{
    json_t *o = parse(text);
    embed_spec s;
    char *err = NULL;
    if (embed_spec_from_json(o, &s, &err) != 0)
        fail_msg("%s: %s", text, err);
    json_decref(o);
    return s;
}

/* The feature file equals embed_dataset() on the same slice and carries its labels. */
static void check_builtin(const featfile *f, const char *spec_json, int64_t start, int64_t stop,
                          int64_t fit_start, int64_t fit_stop, float tol)
{
    embed_spec spec = spec_of(spec_json);
    dataset *ds = load_idx(start, stop);
    dataset *fit = fit_stop != 0 ? load_idx(fit_start, fit_stop) : NULL;
    float *want;
    size_t dim;
    char *err = NULL;
    if (embed_dataset(&spec, fit, ds, &want, &dim, &err) != 0)
        fail_msg("embed_dataset: %s", err);
    assert_int_equal(f->rows, ds->n);
    assert_int_equal(f->dim, dim);
    for (size_t i = 0; i < ds->n * dim; i++)
        if (fabsf(f->x[i] - want[i]) > tol * (1 + fabsf(want[i])))
            fail_msg("%s: feature %zu is %g, embed_dataset gives %g", spec_json, i, f->x[i],
                     want[i]);
    assert_int_equal(f->num_classes, 3);
    assert_non_null(f->y);
    for (size_t i = 0; i < ds->n; i++)
        assert_int_equal(f->y[i], ds->labels[i]);
    assert_int_equal(f->y[0], (int)(start % 3));
    free(want);
    dataset_free(ds);
    dataset_free(fit);
}

/* ---- builtin ------------------------------------------------------------------------- */

static void test_builtin_raw_whole(void **state)
{
    (void)state;
    probe pr = {0};
    json_t *r = run_ok(payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL),
                       &pr);
    featfile f = read_back(r, N, H * W);
    check_builtin(&f, "{\"extractor\": \"raw\"}", 0, -1, 0, 0, 0);
    assert_true(pr.progress_calls >= 2);
    assert_true(pr.last_fraction == 1.0);
    assert_true(pr.stop_calls >= 1);
    featfile_free(&f);
    json_decref(r);
    remove_features();
}

static void test_builtin_pca_fit_batches(void **state)
{
    (void)state;
    probe pr = {0};
    json_t *p = payload("builtin", "{\"extractor\": \"pca\", \"k\": 5}", idx_dataset(4, 17),
                        idx_dataset(0, -1));
    json_object_set_new(json_object_get(p, "model"), "batch_size", json_integer(4));
    json_t *r = run_ok(p, &pr);
    featfile f = read_back(r, 13, 5);
    check_builtin(&f, "{\"extractor\": \"pca\", \"k\": 5}", 4, 17, 0, -1, 1e-4f);
    /* 13 rows in batches of 4: four batches, each reported and each preceded by a check. */
    assert_true(pr.progress_calls >= 4);
    assert_true(pr.stop_calls >= 4);
    featfile_free(&f);
    json_decref(r);
    remove_features();
}

static void test_builtin_batch_notes(void **state)
{
    (void)state;
    /* The note of the last batch, seen just before "done". */
    probe pr = {0};
    json_t *p = payload("builtin", "{\"extractor\": \"profile\"}", idx_dataset(0, -1), NULL);
    json_object_set_new(json_object_get(p, "model"), "batch_size", json_integer(7));
    json_t *r = run_ok(p, &pr);
    assert_int_equal(pr.progress_calls, 3 + 1); /* batches 1..3 of 3, then done */
    assert_string_equal(pr.last_note, "done");
    featfile f = read_back(r, N, (H + W));
    check_builtin(&f, "{\"extractor\": \"profile\"}", 0, -1, 0, 0, 0);
    featfile_free(&f);
    json_decref(r);
    remove_features();
}

static void test_builtin_hog_slice(void **state)
{
    (void)state;
    const char *spec = "{\"extractor\": \"hog\", \"cell\": 2}";
    json_t *r = run_ok(payload("builtin", spec, idx_dataset(5, 12), NULL), NULL);
    embed_spec es = spec_of(spec);
    embed_shape in = {H, W, 1, false};
    featfile f = read_back(r, 7, embed_output_dim(&es, in));
    check_builtin(&f, spec, 5, 12, 0, 0, 1e-6f);
    featfile_free(&f);
    json_decref(r);
    remove_features();

    /* A stop past the end is clamped, as datasets/ does. */
    r = run_ok(payload("builtin", spec, idx_dataset(15, 100), NULL), NULL);
    f = read_back(r, 5, embed_output_dim(&es, in));
    featfile_free(&f);
    json_decref(r);
    remove_features();
}

static void test_noop_is_raw(void **state)
{
    (void)state;
    json_t *r = run_ok(payload("noop", "{}", idx_dataset(0, 6), NULL), NULL);
    featfile f = read_back(r, 6, H * W);
    check_builtin(&f, "{\"extractor\": \"raw\"}", 0, 6, 0, 0, 0);
    featfile_free(&f);
    json_decref(r);
    remove_features();
}

static void test_builtin_errors(void **state)
{
    (void)state;
    run_fails(payload("builtin", "{\"extractor\": \"pca\", \"k\": 5}", idx_dataset(0, -1), NULL),
              NULL, true, "\"fit\"");
    run_fails(payload("builtin", "{\"extractor\": \"hog\"}", text_dataset(), NULL), NULL, true,
              "model test/model cannot embed dataset toy-texts: ");
    run_fails(payload("builtin", "{\"extractor\": \"hog\", \"cell\": 8}", idx_dataset(0, -1),
                      NULL),
              NULL, true, "model test/model cannot embed dataset toy");
    run_fails(payload("builtin", "{\"extractor\": \"nope\"}", idx_dataset(0, -1), NULL), NULL,
              true, "\"model.spec\"");
    run_fails(payload("builtin", "{\"extractor\": \"raw\", \"k\": 3}", idx_dataset(0, -1), NULL),
              NULL, true, "\"model.spec\"");
    /* A fit dataset of another shape. */
    json_t *fit = text_dataset();
    run_fails(payload("builtin", "{\"extractor\": \"pca\", \"k\": 2}", idx_dataset(0, -1), fit),
              NULL, true, "cannot be fitted on dataset toy-texts");
    run_fails(payload("replay", "{}", idx_dataset(0, -1), NULL), NULL, true,
              "runner replay cannot embed");
    run_fails(payload("tfhub", "{}", idx_dataset(0, -1), NULL), NULL, true,
              "runner tfhub cannot embed");
}

static void test_bad_payloads(void **state)
{
    (void)state;
    run_fails(parse("[1, 2]"), NULL, true, "not an object");
    run_fails(parse("{\"dataset\": {}}"), NULL, true, "\"model\"");
    run_fails(parse("{\"model\": {\"name\": \"m\"}}"), NULL, true, "\"model.runner\"");
    run_fails(parse("{\"model\": {\"runner\": \"builtin\", \"spec\": [1]}}"), NULL, true,
              "\"model.spec\"");
    json_t *p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_set_new(json_object_get(p, "model"), "batch_size", json_integer(0));
    run_fails(p, NULL, true, "\"model.batch_size\"");
    p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_del(p, "dataset");
    run_fails(p, NULL, true, "\"dataset\"");
    p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_set_new(json_object_get(p, "dataset"), "format", json_string("tiff"));
    run_fails(p, NULL, true, "\"dataset.format\"");
    p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_del(json_object_get(p, "dataset"), "location");
    run_fails(p, NULL, true, "\"dataset.location\"");
    p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_set_new(json_object_get(p, "dataset"), "start", json_integer(-1));
    run_fails(p, NULL, true, "\"dataset.start\"");
    p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(5, 3), NULL);
    run_fails(p, NULL, true, "\"dataset.stop\"");
    p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_set_new(json_object_get(p, "dataset"), "spec", parse("{\"colour\": 1}"));
    run_fails(p, NULL, true, "\"dataset.spec\"");
    p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_set_new(p, "fit", json_integer(3));
    run_fails(p, NULL, true, "\"fit\"");
    /* A missing file, and a slice that starts past the end. */
    p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_set_new(json_object_get(p, "dataset"), "location",
                        json_string("/nonexistent/toy-images-idx3-ubyte"));
    run_fails(p, NULL, true, "cannot load dataset toy: ");
    run_fails(payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(50, -1), NULL), NULL,
              true, "cannot load dataset toy");
}

static void test_should_stop(void **state)
{
    (void)state;
    probe pr = {.stop_after = 2};
    json_t *p = payload("builtin", "{\"extractor\": \"raw\"}", idx_dataset(0, -1), NULL);
    json_object_set_new(json_object_get(p, "model"), "batch_size", json_integer(5));
    run_fails(p, &pr, false, "stopped");
    assert_int_equal(pr.stop_calls, 2);
}

/* ---- exec ---------------------------------------------------------------------------- */

static double quantile(const double *s, size_t m, double p)
{
    double pos = p * (double)(m - 1);
    size_t lo = (size_t)floor(pos), hi = lo + 1 < m ? lo + 1 : m - 1;
    return s[lo] + (s[hi] - s[lo]) * (pos - (double)lo);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char *exec_spec(const char *extra_args, const char *more)
{
    return xasprintf("{\"command\": [\"python3\", \"" EXAMPLE "\"%s]%s}", extra_args, more);
}

static void test_exec_example(void **state)
{
    (void)state;
    assert_int_equal(access(EXAMPLE, R_OK), 0);
    char *spec = exec_spec("", ", \"env\": {\"RANKQL_TEST\": \"1\"}, \"timeout_seconds\": 60");
    probe pr = {0};
    json_t *r = run_ok(payload("exec", spec, idx_dataset(3, 15), NULL), &pr);
    free(spec);
    featfile f = read_back(r, 12, 7);
    dataset *ds = load_idx(3, 15);
    double v[H * W];
    for (size_t i = 0; i < ds->n; i++) {
        double sum = 0, sq = 0;
        for (size_t j = 0; j < H * W; j++)
            sum += (v[j] = ds->u8[i * H * W + j] / 255.0);
        double mean = sum / (H * W);
        for (size_t j = 0; j < H * W; j++)
            sq += (v[j] - mean) * (v[j] - mean);
        qsort(v, H * W, sizeof *v, cmp_double);
        double want[7] = {mean, sqrt(sq / (H * W)), v[0], quantile(v, H * W, 0.25),
                          quantile(v, H * W, 0.5), quantile(v, H * W, 0.75), v[H * W - 1]};
        for (int k = 0; k < 7; k++)
            if (fabs(f.x[i * 7 + k] - want[k]) > 1e-6)
                fail_msg("row %zu feature %d: %g, want %g", i, k, f.x[i * 7 + k], want[k]);
        assert_int_equal(f.y[i], ds->labels[i]);
    }
    assert_int_equal(f.num_classes, 3);
    assert_true(pr.progress_calls >= 1);
    dataset_free(ds);
    featfile_free(&f);
    json_decref(r);
    remove_features();
    assert_int_equal(exec_dirs_in(exectmp), 0);
}

static void test_exec_texts(void **state)
{
    (void)state;
    char *spec = exec_spec("", "");
    json_t *r = run_ok(payload("exec", spec, text_dataset(), NULL), NULL);
    free(spec);
    featfile f = read_back(r, 4, 7);
    assert_int_equal(f.num_classes, 0);
    assert_null(f.y);
    /* "hello world": 11 characters, 2 words. */
    assert_true(f.x[0] == 11.0f && f.x[1] == 2.0f);
    assert_true(f.x[7] == 22.0f && f.x[8] == 4.0f);
    featfile_free(&f);
    json_decref(r);
    remove_features();
}

static void test_exec_failures(void **state)
{
    (void)state;
    /* A script that fails: its last stderr line is the message. */
    run_fails(payload("exec",
                      "{\"command\": [\"sh\", \"-c\", \"echo starting; echo 'model weights "
                      "missing: /x.pt' >&2; exit 3\"]}",
                      idx_dataset(0, -1), NULL),
              NULL, true, "exited with status 3: model weights missing: /x.pt");
    /* Exit status 75 (EX_TEMPFAIL) asks for a retry. */
    run_fails(payload("exec", "{\"command\": [\"sh\", \"-c\", \"echo busy >&2; exit 75\"]}",
                      idx_dataset(0, -1), NULL),
              NULL, false, "exited with status 75: busy");
    /* Too few rows. */
    char *spec = exec_spec(", \"--limit\", \"5\"", "");
    run_fails(payload("exec", spec, idx_dataset(0, -1), NULL), NULL, true,
              "wrote 5 rows of features for 20 examples");
    free(spec);
    /* Exit 0 without writing the features. */
    run_fails(payload("exec", "{\"command\": [\"true\"]}", idx_dataset(0, -1), NULL), NULL,
              true, "wrote no features file");
    /* Non-finite features, wrong dtype. */
    spec = exec_spec(", \"--scale\", \"inf\"", "");
    run_fails(payload("exec", spec, idx_dataset(0, -1), NULL), NULL, true, "not all finite");
    free(spec);
    run_fails(payload("exec",
                      "{\"command\": [\"sh\", \"-c\", \"cp \\\"$RANKQL_INPUT_DIR/labels.npy\\\" "
                      "\\\"$RANKQL_OUTPUT\\\"\"]}",
                      idx_dataset(0, -1), NULL),
              NULL, true, "dtype '<i4'");
    /* A missing command. */
    run_fails(payload("exec", "{\"command\": [\"/nonexistent/embed-model\", \"--x\"]}",
                      idx_dataset(0, -1), NULL),
              NULL, true, "cannot run command '/nonexistent/embed-model': No such file");
    run_fails(payload("exec", "{\"command\": [\"rankql-no-such-command-xyz\"]}",
                      idx_dataset(0, -1), NULL),
              NULL, true, "cannot run command 'rankql-no-such-command-xyz'");
    /* Bad specs. */
    run_fails(payload("exec", "{}", idx_dataset(0, -1), NULL), NULL, true, "\"command\"");
    run_fails(payload("exec", "{\"command\": [\"\"]}", idx_dataset(0, -1), NULL), NULL, true,
              "\"command\"[0]");
    run_fails(payload("exec", "{\"command\": [\"true\"], \"env\": {\"A\": 1}}",
                      idx_dataset(0, -1), NULL),
              NULL, true, "\"env\"");
    run_fails(payload("exec", "{\"command\": [\"true\"], \"timeout_seconds\": -1}",
                      idx_dataset(0, -1), NULL),
              NULL, true, "\"timeout_seconds\"");
    run_fails(payload("exec", "{\"command\": [\"true\"], \"cwd\": \"/\"}", idx_dataset(0, -1),
                      NULL),
              NULL, true, "unknown exec spec key \"cwd\"");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_exec_timeout_and_stop(void **state)
{
    (void)state;
    /* The child and its own child (sleep) are both killed: the group goes. */
    char marker[700];
    snprintf(marker, sizeof marker, "%s/survived", tmpdir);
    char *spec = xasprintf("{\"command\": [\"sh\", \"-c\", \"(sleep 2; touch %s) & sleep 30\"], "
                           "\"timeout_seconds\": 0.5}", marker);
    double t0 = now();
    run_fails(payload("exec", spec, idx_dataset(0, -1), NULL), NULL, true, "timed out");
    free(spec);
    assert_true(now() - t0 < 5);

    probe pr = {.stop_after = 3};
    t0 = now();
    run_fails(payload("exec", "{\"command\": [\"sleep\", \"30\"]}", idx_dataset(0, -1), NULL),
              &pr, false, "stopped");
    assert_true(now() - t0 < 5);
    sleep(2);
    assert_int_equal(access(marker, F_OK), -1);
}

static void test_exec_env(void **state)
{
    (void)state;
    /* The spec's env reaches the command and the protocol variables are set. */
    run_fails(payload("exec",
                      "{\"command\": [\"sh\", \"-c\", \"echo \\\"$RANKQL_TEST_VAR "
                      "$(basename $RANKQL_OUTPUT) $(ls $RANKQL_INPUT_DIR | tr '\\\\n' ' ')\\\" "
                      ">&2; exit 9\"], \"env\": {\"RANKQL_TEST_VAR\": \"hello\"}}",
                      idx_dataset(0, -1), NULL),
              NULL, true, "status 9: hello features.npy input.npy labels.npy request.json");
}

/* ---- onnx ---------------------------------------------------------------------------- */

static void test_onnx_absent(void **state)
{
    (void)state;
    /* Runs before test_onnx_model: a process keeps ONNX Runtime once it has loaded it. */
    const char *was = getenv("RANKQL_ONNXRUNTIME");
    char *saved = was ? xstrdup(was) : NULL;
    setenv("RANKQL_ONNXRUNTIME", "/nonexistent/libonnxruntime.so", 1);
    run_fails(payload("onnx", "{\"path\": \"/nonexistent/model.onnx\", \"output\": \"y\"}",
                      idx_dataset(0, -1), NULL),
              NULL, true,
              "ONNX Runtime is not installed (/nonexistent/libonnxruntime.so not found): see "
              "docs/runners.md");
    if (saved)
        setenv("RANKQL_ONNXRUNTIME", saved, 1);
    else
        unsetenv("RANKQL_ONNXRUNTIME");
    free(saved);
}

/* A tiny ONNX model, protobuf-encoded by hand: input "x" float [N, 1, H, W] (N, H, W free),
 * outputs "flat" = Flatten(x) [N, H·W] and "gap" = GlobalAveragePool(x) [N, 1, 1, 1]. */
static void pb_varint(strbuf *sb, uint64_t v)
{
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        strbuf_putc(sb, (char)(b | (v ? 0x80 : 0)));
    } while (v);
}

static void pb_bytes(strbuf *sb, unsigned field, const char *data, size_t len)
{
    pb_varint(sb, (uint64_t)field << 3 | 2);
    pb_varint(sb, len);
    strbuf_append(sb, data, len);
}

static void pb_msg(strbuf *sb, unsigned field, strbuf *m) /* appends m and frees it */
{
    pb_bytes(sb, field, m->data ? m->data : "", m->len);
    strbuf_free(m);
}

static void pb_str(strbuf *sb, unsigned field, const char *s)
{
    pb_bytes(sb, field, s, strlen(s));
}

static void pb_int(strbuf *sb, unsigned field, uint64_t v)
{
    pb_varint(sb, (uint64_t)field << 3);
    pb_varint(sb, v);
}

/* ValueInfoProto: a float tensor; dims "N"/"H"/"W" free, digits fixed; NULL = no shape. */
static void pb_value_info(strbuf *graph, unsigned field, const char *name, const char *dims)
{
    strbuf vi = {0}, type = {0}, tensor = {0}, shape = {0};
    pb_str(&vi, 1, name);
    pb_int(&tensor, 1, 1); /* FLOAT */
    if (dims) {
        for (const char *d = dims; *d; d++) {
            strbuf dim = {0};
            if (*d >= '0' && *d <= '9') {
                pb_int(&dim, 1, (uint64_t)(*d - '0'));
            } else {
                char n[2] = {*d, 0};
                pb_str(&dim, 2, n);
            }
            pb_msg(&shape, 1, &dim);
        }
        pb_msg(&tensor, 2, &shape);
    }
    pb_msg(&type, 1, &tensor);
    pb_msg(&vi, 2, &type);
    pb_msg(graph, field, &vi);
}

static void pb_node(strbuf *graph, const char *op, const char *in, const char *out)
{
    strbuf node = {0};
    pb_str(&node, 1, in);
    pb_str(&node, 2, out);
    pb_str(&node, 3, out);
    pb_str(&node, 4, op);
    pb_msg(graph, 1, &node);
}

static void write_onnx_model(const char *path)
{
    strbuf model = {0}, graph = {0}, opset = {0};
    pb_int(&model, 1, 7); /* ir_version */
    pb_node(&graph, "Flatten", "x", "flat");
    pb_node(&graph, "GlobalAveragePool", "x", "gap");
    pb_str(&graph, 2, "rankql-test");
    pb_value_info(&graph, 11, "x", "N1HW");
    pb_value_info(&graph, 12, "flat", NULL);
    pb_value_info(&graph, 12, "gap", NULL);
    pb_msg(&model, 7, &graph);
    pb_int(&opset, 2, 13);
    pb_msg(&model, 8, &opset);
    write_bytes(path, model.data, model.len);
    strbuf_free(&model);
}

/* ONNX Runtime present ($RANKQL_ONNXRUNTIME or the loader's path)? */
static bool have_ort(void)
{
    const char *lib = getenv("RANKQL_ONNXRUNTIME");
    void *h = dlopen(lib && *lib ? lib : "libonnxruntime.so", RTLD_NOW | RTLD_LOCAL);
    if (!h && !(lib && *lib))
        h = dlopen("libonnxruntime.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h)
        dlclose(h);
    return h != NULL;
}

static void test_onnx_model(void **state)
{
    (void)state;
    if (!have_ort()) {
        printf("skipped: ONNX Runtime not installed (set RANKQL_ONNXRUNTIME to run this "
               "test)\n");
        return;
    }
    char path[700];
    snprintf(path, sizeof path, "%s/toy.onnx", tmpdir);
    write_onnx_model(path);
    char *spec = xasprintf("{\"path\": \"%s\", \"output\": \"flat\"}", path);
    probe pr = {0};
    json_t *p = payload("onnx", spec, idx_dataset(2, 19), NULL);
    json_object_set_new(json_object_get(p, "model"), "batch_size", json_integer(5));
    json_t *r = run_ok(p, &pr);
    free(spec);
    featfile f = read_back(r, 17, H * W);
    check_builtin(&f, "{\"extractor\": \"raw\"}", 2, 19, 0, 0, 1e-6f);
    assert_true(pr.progress_calls >= 4);
    featfile_free(&f);
    json_decref(r);
    remove_features();

    /* image_size 4: a bilinear resize by exactly 1/2 is the mean of 2×2 blocks. */
    spec = xasprintf("{\"path\": \"%s\", \"output\": \"flat\", \"image_size\": 4}", path);
    r = run_ok(payload("onnx", spec, idx_dataset(0, -1), NULL), NULL);
    free(spec);
    f = read_back(r, N, 16);
    check_builtin(&f, "{\"extractor\": \"downsample\", \"factor\": 2}", 0, -1, 0, 0, 1e-5f);
    featfile_free(&f);
    json_decref(r);
    remove_features();

    /* mean/std normalisation and spatial pooling: the normalised mean pixel. */
    spec = xasprintf("{\"path\": \"%s\", \"output\": \"gap\", \"pool\": \"spatial\", "
                     "\"mean\": [0.5], \"std\": [0.25]}", path);
    r = run_ok(payload("onnx", spec, idx_dataset(0, -1), NULL), NULL);
    free(spec);
    f = read_back(r, N, 1);
    dataset *ds = load_idx(0, -1);
    for (size_t i = 0; i < N; i++) {
        double s = 0;
        for (size_t j = 0; j < H * W; j++)
            s += ds->u8[i * H * W + j] / 255.0;
        double want = (s / (H * W) - 0.5) / 0.25;
        if (fabs(f.x[i] - want) > 1e-5)
            fail_msg("row %zu: %g, want %g", i, f.x[i], want);
    }
    dataset_free(ds);
    featfile_free(&f);
    json_decref(r);
    remove_features();

    /* Errors: an unknown output, a missing file, a text dataset, a bad layout. */
    spec = xasprintf("{\"path\": \"%s\", \"output\": \"conv5\"}", path);
    run_fails(payload("onnx", spec, idx_dataset(0, -1), NULL), NULL, true,
              "no output 'conv5' in");
    free(spec);
    run_fails(payload("onnx", "{\"path\": \"/nonexistent/m.onnx\"}", idx_dataset(0, -1), NULL),
              NULL, true, "/nonexistent/m.onnx: No such file");
    spec = xasprintf("{\"path\": \"%s\"}", path);
    run_fails(payload("onnx", spec, text_dataset(), NULL), NULL, true, "holds texts");
    free(spec);
    spec = xasprintf("{\"path\": \"%s\", \"layout\": \"nhwc\", \"image_size\": 4}", path);
    run_fails(payload("onnx", spec, idx_dataset(0, -1), NULL), NULL, true, "cannot embed");
    free(spec);
    run_fails(payload("onnx", "{\"output\": \"x\"}", idx_dataset(0, -1), NULL), NULL, true,
              "\"path\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_raw_whole),
        cmocka_unit_test(test_builtin_pca_fit_batches),
        cmocka_unit_test(test_builtin_batch_notes),
        cmocka_unit_test(test_builtin_hog_slice),
        cmocka_unit_test(test_noop_is_raw),
        cmocka_unit_test(test_builtin_errors),
        cmocka_unit_test(test_bad_payloads),
        cmocka_unit_test(test_should_stop),
        cmocka_unit_test(test_exec_example),
        cmocka_unit_test(test_exec_texts),
        cmocka_unit_test(test_exec_failures),
        cmocka_unit_test(test_exec_timeout_and_stop),
        cmocka_unit_test(test_exec_env),
        cmocka_unit_test(test_onnx_absent),
        cmocka_unit_test(test_onnx_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
