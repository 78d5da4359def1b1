/* Integration test of the planner and executor against a real embedded PostgreSQL.
 *
 *   itest_executor SCRATCH_DIR WHERE_CASES_FILE [DEMO_CATALOG]
 *
 * Starts a cluster in SCRATCH_DIR/data (no fsync), migrates, loads a fixed test catalog,
 * and checks WHERE semantics (the cases file), projection, ordering, limits, set
 * operations, session variables, REGISTER validation, EXPLAIN, PURGE, SHOW/USE, 501s,
 * injection safety, and that scripts/demo-catalog.rql loads (twice, idempotently). Prints one "ok - …" / "not ok - …" line per check and stops the
 * cluster on every exit path (tests/integration/test_executor.sh also traps). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "common/util.h"
#include "db/migrate.h"
#include "db/pgembed.h"
#include "executor/executor.h"
#include "grammar/parse.h"
#include "tests/integration/itest_check.h"

static PGconn *conn;
static const char *scratch;
static const char *data_dir; /* exec_ctx.data_dir of run(); NULL but in the PURGE files test */

/* ---- reporting -------------------------------------------------------------------------- */

/* check() and diag(): tests/integration/itest_check.h */

/* ---- running statements ------------------------------------------------------------------ */

/* Parses one statement and runs it; a syntax error comes back as code "syntax_error". */
static json_t *run(const char *session, const char *text, exec_error *err)
{
    memset(err, 0, sizeof *err);
    rq_script *s = rq_parse_script(text, strlen(text));
    json_t *result = NULL;
    if (s->n != 1 || !s->stmts[0].ast) {
        snprintf(err->code, sizeof err->code, "syntax_error");
        snprintf(err->message, sizeof err->message, "%s",
                 s->n && s->stmts[0].error ? s->stmts[0].error->message : "not one statement");
        err->http_status = 400;
    } else {
        exec_ctx ctx = {.conn = conn, .session_id = session, .data_dir = data_dir};
        result = executor_run(&ctx, s->stmts[0].ast, err);
    }
    rq_script_free(s);
    return result;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Values of one column, in result order, joined with ", "; "(none)" when empty. */
static char *column_values(const json_t *result, const char *column, bool sorted)
{
    json_t *columns = json_object_get(result, "columns"), *rows = json_object_get(result, "rows");
    size_t idx = (size_t)-1, i;
    json_t *c;
    json_array_foreach(columns, i, c)
    {
        if (idx == (size_t)-1 && strcmp(json_string_value(c), column) == 0)
            idx = i;
    }
    size_t n = json_array_size(rows);
    if (idx == (size_t)-1 || n == 0)
        return xstrdup(idx == (size_t)-1 ? "(no such column)" : "(none)");
    char **v = xcalloc(n, sizeof *v);
    for (i = 0; i < n; i++) {
        json_t *x = json_array_get(json_array_get(rows, i), idx);
        v[i] = json_is_string(x) ? xstrdup(json_string_value(x))
                                 : json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
    }
    if (sorted)
        qsort(v, n, sizeof *v, cmp_str);
    strbuf sb = {0};
    for (i = 0; i < n; i++) {
        strbuf_printf(&sb, "%s%s", i ? ", " : "", v[i]);
        free(v[i]);
    }
    free(v);
    return strbuf_detach(&sb);
}

/* Runs text and compares one column with expected (sorted or in order). */
static void expect_values(const char *session, const char *text, const char *column, bool sorted,
                          const char *expected, const char *name)
{
    exec_error err;
    json_t *r = run(session, text, &err);
    char *got = r ? column_values(r, column, sorted) : xasprintf("error %s: %s", err.code, err.message);
    if (!check(strcmp(got, expected) == 0, "%s", name)) {
        diag("statement: %s", text);
        diag("expected:  %s", expected);
        diag("actual:    %s", got);
    }
    free(got);
    json_decref(r);
}

/* Runs text expecting an error with this status and code (and field, when given). */
static exec_error expect_error(const char *session, const char *text, int status, const char *code,
                               const char *field, const char *name)
{
    exec_error err;
    json_t *r = run(session, text, &err);
    bool ok = !r && err.http_status == status && strcmp(err.code, code) == 0 &&
              (!field || strcmp(err.field, field) == 0);
    if (!check(ok, "%s", name)) {
        diag("statement: %.300s", text);
        diag("expected:  %d %s %s", status, code, field ? field : "");
        diag("actual:    %s %d %s field=%s: %s", r ? "success" : "error", err.http_status, err.code,
             err.field, err.message);
    }
    json_decref(r);
    return err;
}

static json_t *run_ok(const char *session, const char *text, const char *name)
{
    exec_error err;
    json_t *r = run(session, text, &err);
    if (!check(r != NULL, "%s", name)) {
        diag("statement: %.300s", text);
        diag("error: %d %s: %s", err.http_status, err.code, err.message);
    }
    return r;
}

static bool has_notice(const json_t *result, const char *needle)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(result, "notices"), i, n)
    {
        if (strstr(json_string_value(n), needle))
            return true;
    }
    return false;
}

/* One value of a plain SQL query (test set-up and inspection only). */
static char *sql_value(const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    char *v = NULL;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        v = xstrdup(PQgetvalue(res, 0, 0));
    else if (PQresultStatus(res) != PGRES_TUPLES_OK)
        diag("sql failed: %s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return v ? v : xstrdup("(null)");
}

static bool sql_exec(const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        diag("sql failed: %s", PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

static char *catalog_checksum(void)
{
    char *m = sql_value("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM models t");
    char *d = sql_value("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM datasets t");
    char *s = xasprintf("%s/%s", m, d);
    free(m);
    free(d);
    return s;
}

static char *new_session(void)
{
    return sql_value("INSERT INTO sessions DEFAULT VALUES RETURNING id");
}

/* ---- the fixed test catalog -------------------------------------------------------------- */

static const char catalog_sql[] =
    "INSERT INTO models (name, modality, source, runner, spec, num_params, dimension, image_size, "
    "token_length, batch_size, up_acc, date_added, tags, finetuned) VALUES "
    "('inception_v3','image','TensorFlow','tfhub','{\"tf_image_model_url\":\"https://tfhub.dev/google/imagenet/inception_v3/feature_vector/4\",\"required_image_size\":{\"height\":299,\"width\":299}}',23800000,2048,299,NULL,256,0.78,'2022-01-10','{}',false),"
    "('resnet50_v2','image','TensorFlow','tfhub','{\"tf_image_model_url\":\"https://tfhub.dev/google/imagenet/resnet_v2_50/feature_vector/4\",\"required_image_size\":{\"height\":224,\"width\":224}}',25600000,2048,224,NULL,512,0.76,'2022-01-10','{}',false),"
    "('resnet101_v2','image','TensorFlow','tfhub','{\"tf_image_model_url\":\"https://tfhub.dev/google/imagenet/resnet_v2_101/feature_vector/4\",\"required_image_size\":{\"height\":224,\"width\":224}}',NULL,2048,224,NULL,256,NULL,'2022-01-11','{}',false),"
    "('efficientnet_b0','image','TensorFlow','tfhub','{\"tf_image_model_url\":\"https://tfhub.dev/tensorflow/efficientnet/b0/feature-vector/1\",\"required_image_size\":{\"height\":224,\"width\":224}}',5300000,1280,224,NULL,128,0.771,'2022-02-01','{}',false),"
    "('efficientnet_b7','image','TensorFlow','tfhub','{\"tf_image_model_url\":\"https://tfhub.dev/tensorflow/efficientnet/b7/feature-vector/1\",\"required_image_size\":{\"height\":600,\"width\":600}}',66000000,2560,600,NULL,16,0.844,'2022-02-01','{}',false),"
    "('alexnet','image','torchvision','torchvision','{\"torchvision_name\":\"AlexNet\"}',61100000,4096,224,NULL,2048,0.5652,'2021-06-01','{}',false),"
    "('resnet18','image','torchvision','torchvision','{\"torchvision_name\":\"ResNet18\"}',11700000,512,224,NULL,64,0.6976,'2021-06-01','{}',false),"
    "('vit_base','image','HuggingFace Transformers','huggingface','{\"hf_name\":\"google/vit-base-patch16-224\",\"required_image_size\":{\"height\":224,\"width\":224}}',86000000,768,224,NULL,64,0.811,'2023-03-15','{vit}',false),"
    "('vit_base_ft_cifar','image','HuggingFace Transformers','huggingface','{\"hf_name\":\"google/vit-base-patch16-224\",\"base_model\":\"vit_base\",\"lr\":0.01,\"epochs\":50}',86000000,768,224,NULL,64,NULL,'2023-05-01','{finetuned,vit}',true),"
    "('resnet18_ft_fmnist','image','torchvision','torchvision','{\"torchvision_name\":\"ResNet18\",\"base_model\":\"resnet18\",\"lr\":0.01,\"epochs\":50}',11700000,512,224,NULL,64,NULL,'2023-06-01','{finetuned}',true),"
    "('pca_32','image','builtin','builtin','{\"extractor\":\"pca\",\"k\":32}',25088,32,28,NULL,1024,NULL,'2024-01-01','{demo}',false),"
    "('raw_pixels','image','builtin','builtin','{\"extractor\":\"raw\",\"k\":\"all\"}',NULL,784,28,NULL,1024,NULL,'2024-01-01','{demo}',false),"
    "('elmo','text','TensorFlow','tfhub','{\"tf_text_model_url\":\"https://tfhub.dev/google/elmo/3\"}',93600000,1024,NULL,NULL,2,NULL,'2022-01-10','{}',false),"
    "('use_large','text','TensorFlow','tfhub','{\"tf_text_model_url\":\"https://tfhub.dev/google/universal-sentence-encoder-large/5\"}',NULL,512,NULL,NULL,16,NULL,'2022-01-10','{}',false),"
    "('bert_base','text','HuggingFace Transformers','huggingface','{\"hf_name\":\"bert-base-uncased\",\"max_length\":128,\"pooled_output\":true}',110000000,768,NULL,128,32,NULL,'2023-03-15','{}',false),"
    "('distilbert_ft_sst2','text','HuggingFace Transformers','huggingface','{\"hf_name\":\"distilbert-base-uncased-finetuned-sst-2-english\",\"max_length\":128,\"pooled_output\":false}',66000000,768,NULL,128,32,0.91,'2023-07-01','{finetuned}',true);"
    "UPDATE models c SET parent_model_id = p.id FROM models p WHERE "
    "(c.name, p.name) IN (('vit_base_ft_cifar','vit_base'),('resnet18_ft_fmnist','resnet18'),"
    "('distilbert_ft_sst2','bert_base'));"
    "INSERT INTO datasets (name, modality, format, location, spec, split, size, num_classes) VALUES "
    "('fmnist-train','image','idx','/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz','{\"labels\":\"/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz\"}','train',60000,10),"
    "('fmnist-test','image','idx','/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz','{\"labels\":\"/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\"}','test',10000,10),"
    "('vtab-cifar-train',NULL,'vtab',NULL,'{\"vtab_name\":\"CIFAR-100\",\"split\":\"train800\"}','train800',800,100),"
    "('glue-sst2-test','text','tfds',NULL,'{\"tf_dataset_name\":\"glue/sst2:1.0.0\",\"split\":\"validation\",\"embed_feature_path\":[\"sentence\"],\"label_feature_path\":[\"label\"]}','validation',NULL,2);";

/* ---- WHERE cases ------------------------------------------------------------------------- */

static void where_cases(const char *session, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!check(f != NULL, "where cases file %s opens", path))
        return;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *bar = NULL;
        for (char *p = strstr(line, " | "); p; p = strstr(p + 1, " | "))
            bar = p;
        if (!check(bar != NULL, "where case line is well-formed: %.60s", line))
            continue;
        *bar = '\0';
        const char *expected_raw = bar + 3;
        /* sort the expected list the same way as the results */
        char *copy = xstrdup(expected_raw), *save = NULL, *items[256];
        size_t k = 0;
        for (char *t = strtok_r(copy, ",", &save); t && k < 256; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            items[k++] = t;
        }
        qsort(items, k, sizeof *items, cmp_str);
        strbuf exp = {0};
        for (size_t i = 0; i < k; i++)
            strbuf_printf(&exp, "%s%s", i ? ", " : "", items[i]);
        char *name = xasprintf("WHERE case %d: %s", ++n, line);
        expect_values(session, line, "name", true, exp.data ? exp.data : "", name);
        free(name);
        strbuf_free(&exp);
        free(copy);
    }
    fclose(f);
    check(n >= 40, "at least 40 WHERE cases ran (%d)", n);
}

/* ---- projection, ordering, limits --------------------------------------------------------- */

static void projection_tests(const char *s)
{
    exec_error err;
    json_t *r = run(s, "SELECT name, num_params AS n, spec.extractor, spec.k * 2 AS k2 FROM models WHERE name = 'pca_32';", &err);
    char *cols = r ? json_dumps(json_object_get(r, "columns"), JSON_COMPACT) : xstrdup("error");
    char *rows = r ? json_dumps(json_object_get(r, "rows"), JSON_COMPACT) : xstrdup(err.message);
    check(strcmp(cols, "[\"name\",\"n\",\"spec.extractor\",\"k2\"]") == 0, "projection: named columns, aliases, spec paths (%s)", cols);
    check(strcmp(rows, "[[\"pca_32\",25088,\"pca\",64]]") == 0, "projection: values typed as JSON (%s)", rows);
    free(cols);
    free(rows);
    json_decref(r);

    r = run(s, "SELECT * FROM image_models WHERE name = 'alexnet';", &err);
    cols = r ? json_dumps(json_object_get(r, "columns"), JSON_COMPACT) : xstrdup(err.message);
    check(strcmp(cols, "[\"name\",\"source\",\"runner\",\"num_params\",\"dimension\",\"image_size\",\"batch_size\",\"up_acc\",\"date_added\",\"tags\",\"finetuned\",\"parent\",\"spec\"]") == 0,
          "projection: * on image_models is the image default list");
    free(cols);
    json_decref(r);
    r = run(s, "SELECT all FROM text_models WHERE name = 'bert_base';", &err);
    check(r && json_array_size(json_object_get(r, "columns")) == 13 &&
              strcmp(json_string_value(json_array_get(json_object_get(r, "columns"), 5)), "token_length") == 0,
          "projection: SHiFT's all = * with the text default list");
    json_decref(r);
    r = run(s, "SELECT * FROM readers WHERE name = 'fmnist-train';", &err);
    check(r && json_array_size(json_object_get(r, "columns")) == 11, "projection: * on readers is the dataset default list");
    json_decref(r);

    expect_values(s, "SELECT torchvision_name FROM models WHERE name = 'alexnet';", "torchvision_name", false, "AlexNet", "projection: a known SHiFT spec key without spec.");
    expect_values(s, "SELECT parent FROM models WHERE name = 'resnet18_ft_fmnist';", "parent", false, "resnet18", "projection: parent is the parent's name");
    expect_values(s, "SELECT tags FROM models WHERE name = 'vit_base_ft_cifar';", "tags", false, "[\"finetuned\",\"vit\"]", "projection: tags as a JSON list");
    expect_values(s, "SELECT up_acc FROM models WHERE name = 'resnet101_v2';", "up_acc", false, "null", "projection: NULL as JSON null");
    expect_values(s, "SELECT spec.required_image_size FROM models WHERE name = 'inception_v3';", "spec.required_image_size", false, "{\"width\":299,\"height\":299}", "projection: a JSON object field (jsonb key order)");
    expect_values(s, "SELECT DISTINCT source FROM models ORDER BY source;", "source", false, "HuggingFace Transformers, TensorFlow, builtin, torchvision", "projection: DISTINCT with ORDER BY");
    expect_values(s, "SELECT models.name FROM models WHERE models.num_params = 25088;", "name", false, "pca_32", "projection: table-qualified columns");

    exec_error e = expect_error(s, "SELECT nme FROM models;", 400, "semantic_error", NULL, "projection: unknown column is a semantic error");
    check(e.line == 1 && e.col == 8 && strstr(e.message, "did you mean name"), "projection: unknown column error points at it and suggests name (%d:%d %s)", e.line, e.col, e.message);
    expect_error(s, "SELECT image_size FROM text_models;", 400, "semantic_error", NULL, "projection: image_size does not exist in text_models");
    expect_error(s, "SELECT name.first FROM models;", 400, "semantic_error", NULL, "projection: a field of a non-JSON column is an error");
}

static void ordering_tests(const char *s)
{
    expect_values(s, "SELECT name FROM models ORDER BY num_params DESC LIMIT 3;", "name", false, "bert_base, elmo, vit_base", "order: DESC with LIMIT, ties by registration order");
    expect_values(s, "SELECT name FROM models ORDER BY num_params;", "name", false,
                  "pca_32, efficientnet_b0, resnet18, resnet18_ft_fmnist, inception_v3, resnet50_v2, alexnet, efficientnet_b7, distilbert_ft_sst2, vit_base, vit_base_ft_cifar, elmo, bert_base, resnet101_v2, raw_pixels, use_large",
                  "order: ASC puts NULLs last");
    expect_values(s, "SELECT name FROM models WHERE modality = 'text' ORDER BY num_params DESC;", "name", false, "bert_base, elmo, distilbert_ft_sst2, use_large", "order: DESC puts NULLs last too");
    expect_values(s, "SELECT name FROM models WHERE modality = 'image' ORDER BY image_size DESC, num_params ASC LIMIT 4;", "name", false, "efficientnet_b7, inception_v3, efficientnet_b0, resnet18", "order: several keys");
    expect_values(s, "SELECT name FROM models WHERE torchvision_name IS NOT NULL ORDER BY torchvision_name DESC;", "name", false, "resnet18, resnet18_ft_fmnist, alexnet", "order: by a spec field");
    expect_values(s, "SELECT name, num_params / 1M AS m FROM models WHERE num_params IS NOT NULL ORDER BY m DESC LIMIT 2;", "name", false, "bert_base, elmo", "order: by an alias of an expression");
    expect_values(s, "SELECT name, dimension FROM models ORDER BY 2 DESC LIMIT 1;", "name", false, "alexnet", "order: by position");
    expect_values(s, "SELECT name FROM models ORDER BY name LIMIT 0;", "name", false, "(none)", "limit: LIMIT 0 gives no rows");
    expect_values(s, "SELECT name FROM models LIMIT 2;", "name", false, "inception_v3, resnet50_v2", "limit: without ORDER BY, registration order");
    expect_values(s, "SELECT name FROM models ORDER BY date_added, name DESC LIMIT 3;", "name", false, "resnet18, alexnet, use_large", "order: date then name DESC");
    expect_error(s, "SELECT name FROM models ORDER BY err;", 400, "semantic_error", NULL, "order: ORDER BY err without TRAINED ON is a semantic error");
    expect_error(s, "SELECT DISTINCT source FROM models ORDER BY name;", 400, "semantic_error", NULL, "order: DISTINCT needs ORDER BY on a selected column");
}

static void setop_tests(const char *s)
{
    expect_values(s, "SELECT name FROM image_models WHERE source = 'torchvision' UNION SELECT name FROM models WHERE FINETUNED ORDER BY name;",
                  "name", false, "alexnet, distilbert_ft_sst2, resnet18, resnet18_ft_fmnist, vit_base_ft_cifar", "set: UNION by identity, ORDER BY applies to the whole");
    expect_values(s, "SELECT * FROM image_models WHERE source = 'torchvision' INTERSECT SELECT * FROM models WHERE FINETUNED;",
                  "name", true, "resnet18_ft_fmnist", "set: INTERSECT");
    expect_values(s, "SELECT name FROM models WHERE num_params > 60M EXCEPT SELECT name FROM text_models ORDER BY num_params DESC;",
                  "name", false, "vit_base, vit_base_ft_cifar, efficientnet_b7, alexnet", "set: EXCEPT across image and text tables");
    expect_values(s, "SELECT name FROM text_models UNION SELECT name FROM text_models;", "name", true, "bert_base, distilbert_ft_sst2, elmo, use_large", "set: UNION removes duplicates");
    expect_values(s, "SELECT name FROM models WHERE FINETUNED UNION SELECT name FROM models WHERE source = 'builtin' ORDER BY name DESC LIMIT 2;",
                  "name", false, "vit_base_ft_cifar, resnet18_ft_fmnist", "set: LIMIT applies to the whole");
    expect_values(s, "(SELECT name FROM image_models ORDER BY num_params DESC LIMIT 2) UNION SELECT name FROM text_models WHERE source = 'TensorFlow' ORDER BY name;",
                  "name", false, "elmo, use_large, vit_base, vit_base_ft_cifar", "set: a parenthesised member keeps its own ORDER BY/LIMIT");
    expect_values(s, "SELECT name FROM models WHERE modality = 'text' EXCEPT (SELECT name FROM models WHERE FINETUNED UNION SELECT name FROM models WHERE num_params IS NULL);",
                  "name", true, "bert_base, elmo", "set: nested set operations");
    expect_values(s, "SELECT name FROM readers WHERE format = 'idx' UNION SELECT name FROM datasets WHERE size = 800;", "name", true, "fmnist-test, fmnist-train, vtab-cifar-train", "set: on datasets");
    expect_error(s, "SELECT name FROM models UNION SELECT name FROM datasets;", 400, "semantic_error", NULL, "set: models and datasets do not mix");
}

/* ---- variables and sessions ----------------------------------------------------------------- */

static void variable_tests(const char *a, const char *b)
{
    json_t *r = run_ok(a, "DECLARE tv AS SELECT * FROM image_models WHERE source = 'torchvision';", "var: DECLARE stores a model set");
    check(r && strcmp(json_string_value(json_object_get(r, "variable")), "tv") == 0 && has_notice(r, "tv: 3 models"),
          "var: DECLARE reports the variable and its size");
    json_decref(r);
    expect_values(a, "SELECT name FROM tv;", "name", false, "alexnet, resnet18, resnet18_ft_fmnist", "var: FROM v keeps the variable's rows and order");
    expect_values(a, "SELECT name FROM tv WHERE num_params > 20M;", "name", false, "alexnet", "var: WHERE on a variable filters it (SHiFT ignored it)");
    expect_values(a, "SELECT name FROM tv WHERE NOT FINETUNED ORDER BY dimension DESC;", "name", false, "alexnet, resnet18", "var: FROM v with ORDER BY");
    r = run_ok(a, "PRINT tv;", "var: PRINT v");
    check(r && json_integer_value(json_object_get(r, "row_count")) == 3 &&
              json_array_size(json_object_get(r, "columns")) == 13,
          "var: PRINT shows the stored rows and columns");
    json_decref(r);
    json_decref(run_ok(a, "DECLARE ft AS SELECT name FROM models WHERE FINETUNED;", "var: second DECLARE"));
    expect_values(a, "SELECT name FROM image_models WHERE source = 'torchvision' OTHER THAN ft;", "name", true, "alexnet, resnet18", "var: OTHER THAN v excludes its models (no magic pool)");
    expect_values(a, "SELECT name FROM tv OTHER THAN ft;", "name", true, "alexnet, resnet18", "var: OTHER THAN on a variable");
    expect_values(a, "SELECT name FROM tv UNION SELECT name FROM ft ORDER BY name;", "name", false, "alexnet, distilbert_ft_sst2, resnet18, resnet18_ft_fmnist, vit_base_ft_cifar", "var: set operations on variables");
    json_decref(run_ok(a, "DECLARE top AS SELECT * FROM models ORDER BY num_params DESC LIMIT 3;", "var: DECLARE with ORDER BY/LIMIT"));
    expect_values(a, "SELECT name FROM top;", "name", false, "bert_base, elmo, vit_base", "var: a variable keeps its order");
    json_decref(run_ok(a, "DECLARE rd AS SELECT * FROM readers WHERE name = 'fmnist-train' OR name = 'fmnist-test';", "var: DECLARE a dataset list"));
    expect_values(a, "SELECT name FROM rd WHERE split = 'test';", "name", false, "fmnist-test", "var: dataset variable with WHERE");
    expect_error(a, "SELECT name FROM models OTHER THAN rd;", 400, "semantic_error", NULL, "var: OTHER THAN a dataset variable on models is an error");
    json_decref(run_ok(a, "DECLARE tv AS SELECT * FROM models WHERE source = 'builtin';", "var: re-DECLARE replaces"));
    expect_values(a, "SELECT name FROM tv;", "name", false, "pca_32, raw_pixels", "var: re-DECLARE took effect");
    r = run_ok(a, "PRINT *;", "var: PRINT *");
    char *vars = r ? column_values(r, "variable", false) : xstrdup("error");
    check(strcmp(vars, "ft, rd, top, tv") == 0, "var: PRINT * lists the session's variables (%s)", vars);
    free(vars);
    json_decref(r);

    /* isolation */
    expect_error(b, "PRINT tv;", 400, "semantic_error", NULL, "sessions: another session does not see tv");
    expect_error(b, "SELECT * FROM tv;", 400, "semantic_error", NULL, "sessions: FROM tv is unknown in another session");
    json_decref(run_ok(b, "DECLARE tv AS SELECT * FROM text_models;", "sessions: the other session declares its own tv"));
    expect_values(b, "SELECT name FROM tv;", "name", true, "bert_base, distilbert_ft_sst2, elmo, use_large", "sessions: its tv is its own");
    expect_values(a, "SELECT name FROM tv;", "name", false, "pca_32, raw_pixels", "sessions: the first session's tv is unchanged");
    r = run_ok(b, "PRINT *;", "sessions: PRINT * in the other session");
    check(r && json_integer_value(json_object_get(r, "row_count")) == 1, "sessions: PRINT * shows only its own variables");
    json_decref(r);

    expect_error(a, "DECLARE models AS SELECT * FROM models;", 400, "semantic_error", NULL, "var: reserved table name rejected");
    expect_error(a, "DECLARE Readers AS SELECT * FROM models;", 400, "semantic_error", NULL, "var: reserved names are case-insensitive");
    expect_error(a, "DECLARE query_type AS SELECT * FROM models;", 400, "semantic_error", NULL, "var: SHiFT's query_type rejected");
    expect_error(a, "DECLARE response AS SELECT * FROM models;", 400, "semantic_error", NULL, "var: SHiFT's response rejected");
    expect_error(a, "DECLARE remaining_tasks AS SELECT * FROM models;", 400, "semantic_error", NULL, "var: SHiFT's remaining_tasks rejected");
    expect_error(NULL, "DECLARE x AS SELECT * FROM models;", 400, "semantic_error", NULL, "var: DECLARE without a session");
    expect_error("00000000-0000-0000-0000-000000000000", "DECLARE x AS SELECT * FROM models;", 404, "not_found", NULL, "var: DECLARE in an unknown session");
    expect_error("not-a-uuid", "DECLARE x AS SELECT * FROM models;", 404, "not_found", NULL, "var: a malformed session id");
    expect_error(a, "DECLARE d AS SELECT DISTINCT source FROM models;", 400, "semantic_error", NULL, "var: DECLARE of a DISTINCT query is refused");
    expect_error(a, "PRINT nothing_here;", 400, "semantic_error", NULL, "var: PRINT of an unknown variable");
}

/* ---- REGISTER -------------------------------------------------------------------------------- */

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        diag("cannot write %s", path);
    if (f)
        fclose(f);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* n 2×2 grey IDX images (pixel values i·4 + j) and, when labels is given, their idx1
 * labels file. */
static void write_idx(const char *img, const char *lab, uint32_t n, const uint8_t *labels)
{
    uint8_t *b = xcalloc(16 + 4 * (size_t)n + 1, 1);
    put_be32(b, 0x803);
    put_be32(b + 4, n);
    put_be32(b + 8, 2);
    put_be32(b + 12, 2);
    for (size_t i = 0; i < 4 * (size_t)n; i++)
        b[16 + i] = (uint8_t)i;
    write_bytes(img, b, 16 + 4 * (size_t)n);
    if (lab && labels) {
        put_be32(b, 0x801);
        put_be32(b + 4, n);
        memcpy(b + 8, labels, n);
        write_bytes(lab, b, 8 + (size_t)n);
    }
    free(b);
}

/* The first line of a shell command's output (test expectations computed by other tools). */
static char *shell_value(const char *cmd)
{
    char buf[256] = "";
    FILE *p = popen(cmd, "r");
    if (p) {
        if (!fgets(buf, sizeof buf, p))
            buf[0] = '\0';
        pclose(p);
    }
    buf[strcspn(buf, "\n")] = '\0';
    return xstrdup(buf);
}

static void register_bad(const char *s, const char *stmt, const char *field, const char *name)
{
    char *label = xasprintf("register: %s → 422 naming %s", name, field);
    exec_error e = expect_error(s, stmt, 422, "validation_error", field, label);
    if (e.http_status == 422 && !strstr(e.message, field))
        check(false, "register: message names the field %s (%s)", field, e.message);
    free(label);
}

static void register_tests(const char *s)
{
    char *before = catalog_checksum();
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, num_params) VALUES ('builtin', 'image', {extractor: 'pca'}, 'abc');", "num_params", "num_params a string");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, num_params) VALUES ('builtin', 'image', {extractor: 'pca'}, -5);", "num_params", "num_params negative");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, num_params) VALUES ('builtin', 'image', {extractor: 'pca'}, 2.5);", "num_params", "num_params fractional");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, up_acc) VALUES ('builtin', 'image', {extractor: 'pca'}, 76.1);", "up_acc", "up_acc as a percentage");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, date_added) VALUES ('builtin', 'image', {extractor: 'pca'}, '2023-02-30');", "date_added", "impossible date");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec) VALUES ('pytorch', 'image', {extractor: 'pca'});", "runner", "unknown runner");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec) VALUES ('builtin', 'audio', {extractor: 'pca'});", "modality", "unknown modality");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, batch_size) VALUES ('builtin', 'image', {extractor: 'pca'}, 0);", "batch_size", "batch_size 0");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec) VALUES ('builtin', 'image', {extractor: 'nope'});", "spec", "unknown builtin extractor");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec) VALUES ('builtin', 'image', {k: 3});", "extractor", "builtin without extractor");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality) VALUES ('huggingface', 'image');", "hf_name", "huggingface without hf_name");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, tf_text_model_url) VALUES ('tfhub', 'image', 'https://tfhub.dev/x');", "tf_image_model_url", "tfhub image model with a text URL");
    register_bad(s, "REGISTER MODEL \"m1\" (hf_name, max_length, image_size) VALUES ('bert', 128, 224);", "image_size", "image_size on a text model");
    register_bad(s, "REGISTER MODEL \"m1\" (hf_name, required_image_size) VALUES ('vit', {height: 0, width: 224});", "required_image_size", "required_image_size with a zero");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, tags) VALUES ('builtin', 'image', {extractor: 'pca'}, [1, 2]);", "tags", "tags not strings");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, parent) VALUES ('builtin', 'image', {extractor: 'pca'}, 'no_such_model');", "parent", "unknown parent");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, finetuned) VALUES ('builtin', 'image', {extractor: 'pca'}, 'yes');", "finetuned", "finetuned not a boolean");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, spec) VALUES ('exec', {command: 'run.sh'});", "modality", "modality cannot be told");
    register_bad(s, "REGISTER MODEL \"m1\" (modality, spec) VALUES ('image', {path: 'x.onnx'});", "runner", "runner missing");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, runner) VALUES ('builtin', 'image', {extractor: 'pca'}, 'builtin');", "runner", "a field given twice");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, name) VALUES ('builtin', 'image', 'x');", "name", "name as a field");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, spec, source) VALUES ('builtin', 'image', {extractor: 'pca'}, NULL);", "source", "NULL for a required field");
    register_bad(s, "REGISTER MODEL \"m1\" (runner, modality, extractor) VALUES ('builtin', 'image', 'pca');", "extractor", "a runner parameter outside spec");
    register_bad(s, "REGISTER MODEL \"m1\" (tf_image_name) VALUES ('ResNet V9');", "tf_image_name", "unknown SHiFT TF image name");
    exec_error e = expect_error(s, "REGISTER MODEL \"m1\" (runner, modality, spec, num_param) VALUES ('builtin', 'image', {extractor: 'pca'}, 3);",
                                422, "validation_error", "num_param", "register: unknown field → 422");
    check(strstr(e.message, "did you mean num_params") != NULL, "register: unknown field suggests the closest (%s)", e.message);
    check(e.line == 1 && e.col == 46, "register: unknown field error points at the field (%d:%d)", e.line, e.col);
    e = expect_error(s, "REGISTER MODEL \"m1\" (runner, modality, spec, num_params)\n  VALUES ('builtin', 'image', {extractor: 'pca'}, 'abc');",
                     422, "validation_error", "num_params", "register: bad value → 422");
    check(e.line == 2 && e.col == 51, "register: a bad value's error points at the value (%d:%d)", e.line, e.col);

    register_bad(s, "REGISTER DATASET \"d1\" (format, location) VALUES ('parquet', '/tmp');", "format", "unknown dataset format");
    register_bad(s, "REGISTER DATASET \"d1\" (format, location) VALUES ('idx', '/nonexistent/images-idx3-ubyte');", "location", "idx file that does not exist");
    register_bad(s, "REGISTER DATASET \"d1\" (format) VALUES ('csv');", "location", "csv without location");
    register_bad(s, "REGISTER DATASET \"d1\" (format, split) VALUES ('vtab', 'train800');", "vtab_name", "vtab without vtab_name");
    register_bad(s, "REGISTER DATASET \"d1\" (vtab_name, split) VALUES ('CIFAR-100', 'bogus');", "split", "VTAB split unknown");
    register_bad(s, "REGISTER DATASET \"d1\" (vtab_name, split, size) VALUES ('CIFAR-100', 'train800', -1);", "size", "negative size");
    register_bad(s, "REGISTER DATASET \"d1\" (vtab_name, split, slice) VALUES ('CIFAR-100', 'train', {start: 5, stop: 2});", "slice", "slice start after stop");
    register_bad(s, "REGISTER DATASET \"d1\" (vtab_name, split, slice_start, slice_stop) VALUES ('CIFAR-100', 'train', 9, 3);", "slice_stop", "slice_stop before slice_start");
    register_bad(s, "REGISTER DATASET \"d1\" (vtab_name, split, digest) VALUES ('CIFAR-100', 'train', 'xyz');", "digest", "digest not SHA-256");
    register_bad(s, "REGISTER DATASET \"d1\" (tf_dataset_name, embed_feature_path) VALUES ('glue/cola:1.0.0', 'sentence');", "embed_feature_path", "embed_feature_path not a list");
    register_bad(s, "REGISTER DATASET \"d1\" (path) VALUES ('/tmp');", "path", "SHiFT's path field");
    register_bad(s, "REGISTER DATASET \"d1\" (use_label) VALUES (1);", "use_label", "use_label not a boolean");
    register_bad(s, "REGISTER DATASET \"d1\" (num_classes) VALUES (0);", "num_classes", "num_classes 0");
    char *after = catalog_checksum();
    check(strcmp(before, after) == 0, "register: failed REGISTERs change nothing");
    free(before);
    free(after);

    /* good registrations and upserts */
    json_t *r = run_ok(s, "REGISTER MODEL \"new_pca\" (runner, modality, spec, batch_size, tags) VALUES ('builtin', 'image', {extractor: 'pca', k: 16}, 256, 'demo');", "register: a builtin model");
    check(r && strcmp(json_string_value(json_array_get(json_array_get(json_object_get(r, "rows"), 0), 2)), "inserted") == 0, "register: reports inserted");
    json_decref(r);
    expect_values(s, "SELECT spec.k FROM models WHERE name = 'new_pca';", "spec.k", false, "16", "register: spec stored");
    expect_values(s, "SELECT source FROM models WHERE name = 'new_pca';", "source", false, "other", "register: default source");
    expect_values(s, "SELECT tags FROM models WHERE name = 'new_pca';", "tags", false, "[\"demo\"]", "register: a single tag becomes a list");
    r = run_ok(s, "REGISTER MODEL \"new_pca\" (batch_size, num_params) VALUES (512, 12544);", "register: upsert of two fields");
    check(r && strcmp(json_string_value(json_array_get(json_array_get(json_object_get(r, "rows"), 0), 2)), "updated") == 0 &&
              has_notice(r, "batch_size, num_params replaced"),
          "register: reports updated and what was replaced");
    json_decref(r);
    expect_values(s, "SELECT batch_size, num_params, spec.k, runner FROM models WHERE name = 'new_pca';", "batch_size", false, "512", "register: upsert replaced batch_size");
    expect_values(s, "SELECT spec.k FROM models WHERE name = 'new_pca';", "spec.k", false, "16", "register: upsert kept the spec");
    expect_values(s, "SELECT tags FROM models WHERE name = 'new_pca';", "tags", false, "[\"demo\"]", "register: upsert kept the tags");
    json_decref(run_ok(s, "REGISTER MODEL \"new_pca\" (spec) VALUES ({extractor: 'random_projection', k: 64});", "register: upsert of the spec"));
    expect_values(s, "SELECT spec FROM models WHERE name = 'new_pca';", "spec", false, "{\"k\":64,\"seed\":0,\"extractor\":\"random_projection\"}", "register: the spec is replaced whole (canonical: defaults filled in)");
    json_decref(run_ok(s, "REGISTER MODEL \"new_pca\" (num_params) VALUES (NULL);", "register: NULL clears an optional field"));
    expect_values(s, "SELECT num_params FROM models WHERE name = 'new_pca';", "num_params", false, "null", "register: num_params cleared");

    r = run_ok(s, "REGISTER MODEL \"hf_vit_small\" (hf_name, required_image_size, num_params, batch_size) VALUES (\"WinKawaks/vit-small-patch16-224\", {height: 224, width: 224}, 22M, 64);",
               "register: SHiFT-style HuggingFace image model");
    check(r && has_notice(r, "runner huggingface inferred"), "register: runner inferred from hf_name");
    json_decref(r);
    expect_values(s, "SELECT runner, modality, source, image_size FROM models WHERE name = 'hf_vit_small';", "image_size", false, "224", "register: image_size from required_image_size");
    expect_values(s, "SELECT source FROM models WHERE name = 'hf_vit_small';", "source", false, "HuggingFace Transformers", "register: source from the runner");
    expect_values(s, "SELECT modality FROM models WHERE name = 'hf_vit_small';", "modality", false, "image", "register: modality inferred");
    register_bad(s, "REGISTER MODEL \"hf_vit_small\" (modality) VALUES ('text');", "image_size", "changing modality with an image_size stored");
    json_decref(run_ok(s, "REGISTER MODEL \"hf_vit_small_ft\" (hf_name, required_image_size, parent, finetuned, base_model, lr, epochs) VALUES ('x/y', 224, 'hf_vit_small', TRUE, 'hf_vit_small', 0.01, 50);", "register: a fine-tuned model with parent"));
    expect_values(s, "SELECT parent FROM models WHERE name = 'hf_vit_small_ft' AND FINETUNED;", "parent", false, "hf_vit_small", "register: parent and finetuned stored");
    json_decref(run_ok(s, "REGISTER MODEL \"tf_resnet\" (tf_image_name, batch_size) VALUES ('ResNet V2 50', 512);", "register: SHiFT proxy name"));
    json_decref(run_ok(s, "REGISTER MODEL \"onnx_m\" (runner, modality, spec, dimension) VALUES ('onnx', 'image', {path: '/models/m.onnx'}, 512);", "register: onnx runner"));
    json_decref(run_ok(s, "REGISTER MODEL \"exec_m\" (runner, modality, spec) VALUES ('exec', 'text', {command: ['python3', 'embed.py']});", "register: exec runner"));
    json_decref(run_ok(s, "REGISTER MODEL \"replay_m\" (runner, modality, spec) VALUES ('replay', 'image', {model_identifier: 'google/vit-base-patch16-224'});", "register: replay runner"));

    r = run_ok(s, "REGISTER dataset \"vtab-caltech101-train\" (\"vtab_name\", \"split\", \"size\") VALUES (\"Caltech101\", \"train800\", 800);", "register: SHiFT VTAB dataset");
    check(r && has_notice(r, "format vtab inferred"), "register: format inferred from vtab_name");
    json_decref(r);
    expect_values(s, "SELECT spec FROM datasets WHERE name = 'vtab-caltech101-train';", "spec", false, "{\"split\":\"train800\",\"vtab_name\":\"Caltech101\"}", "register: reader keys and split in spec");
    expect_values(s, "SELECT split FROM datasets WHERE name = 'vtab-caltech101-train';", "split", false, "train800", "register: split column");
    json_decref(run_ok(s, "REGISTER DATASET \"glue/cola-test\" (\"tf_dataset_name\", \"split\", \"embed_feature_path\", \"label_feature_path\") VALUES (\"glue/cola:1.0.0\", \"validation\", [\"sentence\"], [\"label\"]);", "register: SHiFT TFDS dataset"));
    expect_values(s, "SELECT format FROM datasets WHERE name = 'glue/cola-test';", "format", false, "tfds", "register: tfds inferred");
    char *img = xasprintf("%s/imgs-idx3-ubyte", scratch), *lab = xasprintf("%s/labs-idx1-ubyte", scratch);
    write_idx(img, lab, 5, (const uint8_t[]){0, 1, 2, 1, 0});
    char *stmt = xasprintf("REGISTER DATASET \"local-idx\" (location, spec, size, num_classes) VALUES ('%s', {labels: '%s'}, 5, 3);", img, lab);
    json_decref(run_ok(s, stmt, "register: an idx dataset whose files exist"));
    free(stmt);
    expect_values(s, "SELECT format FROM datasets WHERE name = 'local-idx';", "format", false, "idx", "register: idx inferred from the file name");
    expect_values(s, "SELECT modality FROM datasets WHERE name = 'local-idx';", "modality", false, "image", "register: idx datasets are images");
    stmt = xasprintf("REGISTER DATASET \"local-idx2\" (format, location, spec) VALUES ('idx', '%s', {labels: '%s/missing'});", img, scratch);
    register_bad(s, stmt, "labels", "idx labels file missing");
    free(stmt);
    register_bad(s, "REGISTER DATASET \"local-idx\" (size) VALUES (100);", "size", "dataset upsert of a size the file contradicts");
    json_decref(run_ok(s, "REGISTER DATASET \"local-idx\" (slice_start) VALUES (1);", "register: dataset upsert"));
    expect_values(s, "SELECT size FROM datasets WHERE name = 'local-idx';", "size", false, "4", "register: dataset upsert of the slice recomputes size");
    expect_values(s, "SELECT num_classes FROM datasets WHERE name = 'local-idx';", "num_classes", false, "3", "register: dataset upsert kept num_classes");
    free(img);
    free(lab);
}

/* REGISTER DATASET of a file format loads the file (datasets/) and stores what it finds;
 * REGISTER MODEL of the builtin runner checks the spec with the extractor library. */
static void register_file_tests(const char *s)
{
    char *before = catalog_checksum();
    /* Fashion-MNIST's test set (when the package is installed): size, classes, digest */
    const char *fm = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    struct stat st;
    if (stat(fm, &st) == 0) {
        json_decref(run_ok(s, "REGISTER DATASET \"file-fm-test\" (location) VALUES ('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');",
                           "register file: Fashion-MNIST t10k (labels found beside the images)"));
        expect_values(s, "SELECT size FROM datasets WHERE name = 'file-fm-test';", "size", false, "10000", "register file: size from the file");
        expect_values(s, "SELECT num_classes FROM datasets WHERE name = 'file-fm-test';", "num_classes", false, "10", "register file: num_classes from the labels");
        expect_values(s, "SELECT modality FROM datasets WHERE name = 'file-fm-test';", "modality", false, "image", "register file: images are modality image");
        /* two files (images + labels): the digest of a sha256sum-style manifest (datasets/dataset.h) */
        char *want = shell_value("cd /usr/share/datasets/fashion-mnist && printf '%s  images\\n%s  labels\\n' "
                                 "$(sha256sum < t10k-images-idx3-ubyte.gz | cut -c1-64) $(sha256sum < t10k-labels-idx1-ubyte.gz | cut -c1-64) | sha256sum | cut -c1-64");
        expect_values(s, "SELECT digest FROM datasets WHERE name = 'file-fm-test';", "digest", false, want, "register file: digest = SHA-256 of the images + labels manifest");
        free(want);
        register_bad(s, "REGISTER DATASET \"file-fm-test\" (size) VALUES (60000);", "size", "a size the file contradicts");
        register_bad(s, "REGISTER DATASET \"file-fm-test\" (num_classes) VALUES (12);", "num_classes", "num_classes the labels contradict");
        register_bad(s, "REGISTER DATASET \"file-fm-test\" (slice) VALUES ({start: 10001, stop: 10005});", "slice", "a slice past the end");
        json_decref(run_ok(s, "REGISTER DATASET \"file-fm-test\" (slice, size, num_classes) VALUES ({start: 100, stop: 300}, 200, 10);", "register file: a slice"));
        expect_values(s, "SELECT size FROM datasets WHERE name = 'file-fm-test';", "size", false, "200", "register file: size = examples in the slice");
    } else {
        diag("dataset-fashion-mnist is not installed: its registration checks are skipped");
    }
    /* one file: its SHA-256 */
    char *img = xasprintf("%s/solo-images-idx3-ubyte", scratch);
    write_idx(img, NULL, 3, NULL);
    char *stmt = xasprintf("REGISTER DATASET \"file-solo\" (location) VALUES ('%s');", img);
    json_decref(run_ok(s, stmt, "register file: IDX images without labels"));
    free(stmt);
    char *cmd = xasprintf("sha256sum < '%s' | cut -c1-64", img);
    char *want = shell_value(cmd);
    expect_values(s, "SELECT digest FROM datasets WHERE name = 'file-solo';", "digest", false, want, "register file: one file's digest is its sha256sum");
    expect_values(s, "SELECT num_classes FROM datasets WHERE name = 'file-solo';", "num_classes", false, "null", "register file: no labels, no num_classes");
    free(want);
    free(cmd);
    stmt = xasprintf("REGISTER DATASET \"file-solo2\" (location, spec) VALUES ('%s', {labels_only: TRUE});", img);
    register_bad(s, stmt, "spec", "labels_only without labels");
    free(stmt);
    stmt = xasprintf("REGISTER DATASET \"file-solo2\" (location, num_classes) VALUES ('%s', 3);", img);
    register_bad(s, stmt, "num_classes", "num_classes for a file without labels");
    free(stmt);
    free(img);

    /* errors: missing file, unknown reader option, bad label column, labels out of range */
    register_bad(s, "REGISTER DATASET \"file-bad\" (format, location) VALUES ('csv', '/nonexistent/x.csv');", "location", "a missing CSV file");
    char *csv = xasprintf("%s/iris.csv", scratch);
    write_bytes(csv, "a,b,species\n1,2,0\n3,4,1\n5,6,2\n", strlen("a,b,species\n1,2,0\n3,4,1\n5,6,2\n"));
    stmt = xasprintf("REGISTER DATASET \"file-bad\" (location, spec) VALUES ('%s', {delimter: ';'});", csv);
    exec_error e = expect_error(s, stmt, 422, "validation_error", "spec", "register file: an unknown reader option → 422 naming spec");
    check(strstr(e.message, "unknown dataset option 'delimter'") != NULL, "register file: the reader's message (%s)", e.message);
    free(stmt);
    stmt = xasprintf("REGISTER DATASET \"file-bad\" (location, spec) VALUES ('%s', {label_column: 'label'});", csv);
    e = expect_error(s, stmt, 422, "validation_error", "location", "register file: a label column the file lacks → 422");
    check(strstr(e.message, "no column named 'label'") != NULL, "register file: names the column (%s)", e.message);
    free(stmt);
    write_bytes(csv, "a,b,species\n1,2,0\n3,4,-1\n", strlen("a,b,species\n1,2,0\n3,4,-1\n"));
    stmt = xasprintf("REGISTER DATASET \"file-bad\" (location) VALUES ('%s');", csv);
    e = expect_error(s, stmt, 422, "validation_error", "location", "register file: a negative label → 422");
    check(strstr(e.message, "label -1 is out of range") != NULL, "register file: the reader's message (%s)", e.message);
    free(stmt);
    write_bytes(csv, "a,b,species\n1,2,0\n3,4,1\n5,6,2\n", strlen("a,b,species\n1,2,0\n3,4,1\n5,6,2\n"));
    stmt = xasprintf("REGISTER DATASET \"file-csv\" (location, size, num_classes) VALUES ('%s', 3, 3);", csv);
    json_decref(run_ok(s, stmt, "register file: a CSV dataset"));
    free(stmt);
    expect_values(s, "SELECT modality FROM datasets WHERE name = 'file-csv';", "modality", false, "null", "register file: feature vectors leave modality NULL");
    register_bad(s, "REGISTER DATASET \"file-bad\" (vtab_name, split, spec) VALUES ('x', 'train', {labels_only: TRUE});", "spec", "labels_only on a non-file format");

    /* a label source: the label column alone, only with labels_only */
    write_bytes(csv, "label\ncat\ndog\ncat\n", strlen("label\ncat\ndog\ncat\n"));
    stmt = xasprintf("REGISTER DATASET \"file-labels\" (location, spec) VALUES ('%s', {label_column: 'label'});", csv);
    register_bad(s, stmt, "location", "a CSV of the label column alone without labels_only");
    free(stmt);
    stmt = xasprintf("REGISTER DATASET \"file-labels\" (location, spec) VALUES ('%s', {label_column: 'label', labels_only: TRUE});", csv);
    json_decref(run_ok(s, stmt, "register file: a labels_only CSV of the label column alone"));
    free(stmt);
    expect_values(s, "SELECT size, num_classes FROM datasets WHERE name = 'file-labels';", "num_classes", false, "2", "register file: labels_only classes");
    expect_values(s, "SELECT size FROM datasets WHERE name = 'file-labels';", "size", false, "3", "register file: labels_only size");
    free(csv);

    /* builtin models */
    e = expect_error(s, "REGISTER MODEL \"b-conv\" (runner, modality, spec) VALUES ('builtin', 'image', {extractor: 'random_conv', kernel: 5});",
                     422, "validation_error", "spec", "register builtin: an unknown option → 422 naming spec");
    check(strstr(e.message, "has no option 'kernel'") && strstr(e.message, "ksize"), "register builtin: the library's message lists the options (%s)", e.message);
    register_bad(s, "REGISTER MODEL \"b-conv\" (runner, modality, spec) VALUES ('builtin', 'image', {extractor: 'random_conv', ksize: 4});", "spec", "an even ksize");
    register_bad(s, "REGISTER MODEL \"b-pca\" (runner, modality, spec, image_size, dimension) VALUES ('builtin', 'image', {extractor: 'pca', k: 16}, 28, 32);", "dimension", "a dimension the extractor contradicts");
    register_bad(s, "REGISTER MODEL \"b-lbp\" (runner, modality, spec, image_size) VALUES ('builtin', 'image', {extractor: 'lbp'}, 4);", "image_size", "an image too small for the extractor");
    register_bad(s, "REGISTER MODEL \"b-hog\" (runner, modality, ksize) VALUES ('builtin', 'image', 3);", "ksize", "an extractor option outside spec");
    json_decref(run_ok(s, "REGISTER MODEL \"b-hog\" (runner, modality, spec, image_size) VALUES ('builtin', 'image', {extractor: 'hog', cell: 7}, 28);", "register builtin: hog"));
    expect_values(s, "SELECT dimension FROM models WHERE name = 'b-hog';", "dimension", false, "324", "register builtin: dimension filled in from the extractor");
    expect_values(s, "SELECT spec FROM models WHERE name = 'b-hog';", "spec", false, "{\"bins\":9,\"cell\":7,\"block\":2,\"extractor\":\"hog\"}", "register builtin: the canonical spec is stored");
    json_decref(run_ok(s, "REGISTER MODEL \"b-hog\" (image_size) VALUES (32);", "register builtin: upsert of image_size"));
    expect_values(s, "SELECT dimension FROM models WHERE name = 'b-hog';", "dimension", false, "324", "register builtin: dimension follows image_size (4×4 cells of 7 → 324)");
    json_decref(run_ok(s, "REGISTER MODEL \"b-hog\" (spec) VALUES ({extractor: 'hog'});", "register builtin: upsert of the spec"));
    expect_values(s, "SELECT dimension FROM models WHERE name = 'b-hog';", "dimension", false, "1764", "register builtin: dimension follows the spec (8×8 cells of 4 → 7·7·4·9)");
    json_decref(run_ok(s, "REGISTER MODEL \"b-pca\" (runner, modality, spec, image_size, dimension) VALUES ('builtin', 'image', {extractor: 'pca', k: 16}, 28, 16);", "register builtin: a matching dimension"));

    sql_exec("DELETE FROM datasets WHERE name LIKE 'file-%'; DELETE FROM models WHERE name LIKE 'b-%'");
    char *after = catalog_checksum();
    check(strcmp(before, after) == 0, "register file: the test's rows are gone again");
    free(before);
    free(after);
}

/* A REGISTER on a second connection, run in a thread while the first holds a lock. */
typedef struct racer {
    PGconn *conn;
    const char *session, *text;
    json_t *result;
    exec_error err;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    rq_script *s = rq_parse_script(r->text, strlen(r->text));
    exec_ctx ctx = {.conn = r->conn, .session_id = r->session};
    r->result = executor_run(&ctx, s->stmts[0].ast, &r->err);
    rq_script_free(s);
    return NULL;
}

/* Two sessions register the same new name at once: one inserts, the other becomes an
 * update instead of failing on the unique name. */
static void register_race_test(const char *s, const char *conninfo)
{
    racer b = {PQconnectdb(conninfo), s,
               "REGISTER MODEL \"raced\" (runner, modality, spec, batch_size) VALUES ('builtin', 'image', {extractor: 'raw'}, 8);",
               NULL, {0}};
    pthread_t t;
    bool began = sql_exec("BEGIN");
    json_t *a = run_ok(s, "REGISTER MODEL \"raced\" (runner, modality, spec, dimension) VALUES ('builtin', 'image', {extractor: 'raw'}, 784);",
                       "register race: the first REGISTER inserts (uncommitted)");
    bool started = pthread_create(&t, NULL, race, &b) == 0;
    usleep(300 * 1000); /* let the second one block on the name */
    bool committed = sql_exec("COMMIT");
    if (started)
        pthread_join(t, NULL);
    const char *action = b.result ? json_string_value(json_array_get(json_array_get(json_object_get(b.result, "rows"), 0), 2)) : NULL;
    check(began && a && started && committed && action && strcmp(action, "updated") == 0,
          "register race: the second REGISTER of the same new name becomes an update (%s)",
          action ? action : b.err.message);
    expect_values(s, "SELECT batch_size, dimension FROM models WHERE name = 'raced';", "dimension", false, "784", "register race: both writes are kept");
    json_decref(a);
    json_decref(b.result);
    PQfinish(b.conn);
}

/* ---- EXPLAIN ------------------------------------------------------------------------------------ */

static void explain_tests(const char *s)
{
    const char *q = "SELECT name FROM image_models WHERE source = 'TensorFlow' ORDER BY num_params DESC LIMIT 2;";
    char *text = xasprintf("EXPLAIN %s", q);
    json_t *r = run_ok(s, text, "explain: EXPLAIN runs");
    free(text);
    char *plan = r ? column_values(r, "QUERY PLAN", false) : xstrdup("");
    check(strncmp(plan, "Limit: 2  (rows=", 16) == 0, "explain: the plan starts with Limit and its estimate (%.60s)", plan);
    check(strstr(plan, "→ Sort: num_params DESC NULLS LAST") && strstr(plan, "→ Project: name") &&
              strstr(plan, "→ Filter: source = 'TensorFlow'") && strstr(plan, "→ Scan: image_models  (rows="),
          "explain: Sort, Project, Filter and Scan nodes");
    check(strstr(plan, "cost=") && !strstr(plan, "actual"), "explain: costs, and no actual numbers without ANALYZE");
    check(r && has_notice(r, "did not run"), "explain: says it did not run the query");
    diag("%s", plan);
    free(plan);
    json_decref(r);

    text = xasprintf("EXPLAIN ANALYZE %s", q);
    r = run_ok(s, text, "explain: EXPLAIN ANALYZE runs");
    free(text);
    plan = r ? column_values(r, "QUERY PLAN", false) : xstrdup("");
    check(strstr(plan, "Limit: 2  (rows=") && strstr(plan, "actual rows=2 time=") && strstr(plan, "Execution time:"),
          "explain analyze: actual rows and times");
    free(plan);
    json_decref(r);

    text = xasprintf("EXPLAIN JSON %s", q);
    r = run_ok(s, text, "explain: EXPLAIN JSON runs");
    free(text);
    json_t *p = json_object_get(r, "plan");
    json_t *sort = json_array_get(json_object_get(p, "children"), 0);
    check(p && strcmp(json_string_value(json_object_get(p, "node")), "Limit") == 0 &&
              json_is_number(json_object_get(p, "estimated_rows")) &&
              json_is_number(json_object_get(p, "total_cost")) &&
              strcmp(json_string_value(json_object_get(sort, "node")), "Sort") == 0,
          "explain json: a plan tree with estimates");
    check(json_is_object(json_array_get(json_array_get(json_object_get(r, "rows"), 0), 0)) &&
              json_is_string(json_object_get(json_array_get(json_array_get(json_object_get(r, "rows"), 0), 0), "sql")),
          "explain json: the row holds the plan document with its SQL");
    json_decref(r);

    text = xasprintf("EXPLAIN ANALYZE JSON %s", q);
    r = run_ok(s, text, "explain: EXPLAIN ANALYZE JSON runs");
    free(text);
    p = json_object_get(r, "plan");
    check(p && json_number_value(json_object_get(p, "actual_rows")) == 2 && json_is_number(json_object_get(p, "actual_time_ms")),
          "explain analyze json: actual rows of the root = 2");
    json_decref(r);

    r = run_ok(s, "EXPLAIN SELECT name FROM models WHERE FINETUNED UNION SELECT name FROM text_models ORDER BY name;", "explain: a set operation");
    plan = r ? column_values(r, "QUERY PLAN", false) : xstrdup("");
    check(strstr(plan, "→ Union: by model identity") && strstr(plan, "→ Scan: text_models"), "explain: set operation shape");
    free(plan);
    json_decref(r);
    expect_error(s, "EXPLAIN SELECT * FROM image_models ORDER BY err TRAINED ON 'a' TESTED ON 'b' CLASSIFIED BY ['Euclidean NN'];", 404, "not_found", NULL, "explain: a ranking on unknown datasets is 404");
    expect_error(s, "EXPLAIN SELECT * FROM nowhere;", 400, "semantic_error", NULL, "explain: unknown table");
}

/* ---- PURGE, SHOW, USE, not implemented, errors ------------------------------------------------ */

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* With a data directory, PURGE deletes the feature files (and temporary files) of what is
 * no longer cached once the rows are committed; files of features that an unfinished job
 * still needs, files a job is writing, and other names stay. */
static void purge_files_test(const char *s)
{
    char *dir = xasprintf("%s/datadir", scratch);
    char *feat = xasprintf("%s/features", dir), *sub = xasprintf("%s/features/aa", dir);
    mkdir(dir, 0755);
    mkdir(feat, 0755);
    mkdir(sub, 0755);
    const char *h_old = "aa11111111111111111111111111111111111111111111111111111111111111";
    const char *h_needed = "aa22222222222222222222222222222222222222222222222222222222222222";
    const char *h_running = "aa33333333333333333333333333333333333333333333333333333333333333";
    char *f_old = xasprintf("%s/%s.rqf", sub, h_old), *f_needed = xasprintf("%s/%s.rqf", sub, h_needed);
    char *t_old = xasprintf("%s/%s.rqf.tmp123", sub, h_old), *t_running = xasprintf("%s/%s.rqf.tmp77", sub, h_running);
    char *other = xasprintf("%s/README", sub), *stray = xasprintf("%s/x.tmp9", sub);
    const char *files[] = {f_old, f_needed, t_old, t_running, other, stray};
    for (size_t i = 0; i < 6; i++)
        write_bytes(files[i], "RQFEAT1", 8);
    char *setup = xasprintf(
        "INSERT INTO jobs (hash, kind, status, payload, result, finished_at) VALUES ('%s', 'embed', 'done', '{}', '{}', now());"
        "INSERT INTO jobs (hash, kind, status, payload) VALUES ('%s', 'proxy', 'queued', '{}');"
        "INSERT INTO job_deps (job_id, depends_on) SELECT w.id, e.id FROM jobs w, jobs e WHERE w.hash = '%s' AND e.hash = '%s';"
        "INSERT INTO jobs (hash, kind, status, payload, lease_owner, lease_expires_at) VALUES ('%s', 'embed', 'running', '{}', 'test:1:0', now() + interval '1 hour');"
        "INSERT INTO feature_cache (hash, model_id, dataset_id, path, rows, dim) SELECT h, m.id, d.id, 'features/aa/' || h || '.rqf', 10, 32 "
        "  FROM (VALUES ('%s'), ('%s')) v(h), models m, datasets d WHERE m.name = 'pca_32' AND d.name = 'fmnist-train';",
        h_needed, "aa44444444444444444444444444444444444444444444444444444444444444",
        "aa44444444444444444444444444444444444444444444444444444444444444", h_needed, h_running, h_old, h_needed);
    check(sql_exec(setup), "purge files: feature rows, files and jobs set up");
    free(setup);
    sleep(1); /* PURGE keeps files written after it started */
    data_dir = dir;
    json_t *r = run_ok(s, "PURGE;", "purge files: PURGE with a data directory");
    data_dir = NULL;
    char *counts = r ? column_values(r, "deleted", false) : xstrdup("");
    check(strcmp(counts, "1, 0, 0, 0, 0, 0, 3") == 0, "purge files: one feature row, three files deleted (%s)", counts);
    free(counts);
    json_decref(r);
    check(!exists(f_old) && !exists(t_old) && !exists(stray), "purge files: the purged feature file and temporary files are gone");
    check(exists(f_needed), "purge files: the features an unfinished job needs stay");
    check(exists(t_running), "purge files: the temporary file of a running job stays");
    check(exists(other), "purge files: other names stay");
    char *left = sql_value("SELECT string_agg(hash, ',') FROM feature_cache");
    check(strcmp(left, h_needed) == 0, "purge files: the feature row an unfinished job needs stays (%s)", left);
    free(left);
    check(PQtransactionStatus(conn) == PQTRANS_IDLE, "purge files: the connection is idle afterwards");
    /* inside a caller's transaction the files wait for a PURGE of its own */
    write_bytes(f_old, "RQFEAT1", 8);
    sleep(1);
    data_dir = dir;
    bool began = sql_exec("BEGIN");
    r = run_ok(s, "PURGE;", "purge files: PURGE inside a caller's transaction");
    bool committed = sql_exec("COMMIT");
    data_dir = NULL;
    check(began && committed && r && has_notice(r, "feature files are kept") && exists(f_old),
          "purge files: inside a transaction, files are kept (with a notice)");
    json_decref(r);
    sql_exec("DELETE FROM jobs WHERE hash LIKE 'aa%'; DELETE FROM feature_cache WHERE hash LIKE 'aa%'");
    for (size_t i = 0; i < 6; i++)
        unlink(files[i]);
    free(f_old);
    free(f_needed);
    free(t_old);
    free(t_running);
    free(other);
    free(stray);
    free(sub);
    free(feat);
    free(dir);
}

static void purge_tests(const char *s)
{
    const char *h1 = "'1111111111111111111111111111111111111111111111111111111111111111'";
    const char *h2 = "'2222222222222222222222222222222222222222222222222222222222222222'";
    const char *h3 = "'3333333333333333333333333333333333333333333333333333333333333333'";
    char *setup = xasprintf(
        "INSERT INTO jobs (hash, kind, status, payload, result, finished_at) VALUES (%s, 'embed', 'done', '{}', '{}', now());"
        "INSERT INTO jobs (hash, kind, status, payload) VALUES (%s, 'proxy', 'queued', '{}');"
        "INSERT INTO feature_cache (hash, model_id, dataset_id, path, rows, dim) SELECT %s, m.id, d.id, 'f/x', 10, 32 FROM models m, datasets d WHERE m.name = 'pca_32' AND d.name = 'fmnist-train';"
        "INSERT INTO proxy_results (hash, proxy, model_id, train_key, test_key, err) SELECT %s, 'nn', m.id, %s, %s, 0.15 FROM models m WHERE m.name = 'pca_32';",
        h1, h2, h3, h1, h2, h3);
    check(sql_exec(setup), "purge: caches and jobs filled");
    free(setup);
    char *before = catalog_checksum();
    json_t *r = run_ok(s, "PURGE;", "purge: PURGE runs");
    char *tables = r ? column_values(r, "table", false) : xstrdup("");
    char *counts = r ? column_values(r, "deleted", false) : xstrdup("");
    check(strcmp(tables, "feature_cache, proxy_results, finetune_results, strategy_results, dataset_similarity, jobs (finished), feature files") == 0 &&
              strcmp(counts, "1, 1, 0, 0, 0, 1, 0") == 0,
          "purge: reports what it deleted (%s / %s)", tables, counts);
    free(tables);
    free(counts);
    json_decref(r);
    char *after = catalog_checksum();
    check(strcmp(before, after) == 0, "purge: the catalog (models, datasets) is unchanged");
    free(before);
    free(after);
    char *left = sql_value("SELECT (SELECT count(*) FROM feature_cache) + (SELECT count(*) FROM proxy_results)");
    check(strcmp(left, "0") == 0, "purge: caches are empty");
    free(left);
    /* REGISTER MODEL queued a check job per model (no worker runs here) */
    left = sql_value("SELECT string_agg(status, ',') FROM jobs WHERE kind <> 'check'");
    check(strcmp(left, "queued") == 0, "purge: unfinished jobs are kept, finished ones gone (%s)", left);
    free(left);
    json_decref(run_ok(s, "PURGE CACHE;", "purge: PURGE CACHE on empty caches"));
    purge_files_test(s);
}

static void misc_tests(const char *s)
{
    json_t *r = run_ok(s, "SHOW MODELS;", "show: SHOW MODELS");
    char *n = sql_value("SELECT count(*) FROM models");
    check(r && json_integer_value(json_object_get(r, "row_count")) == atoi(n) &&
              strcmp(json_string_value(json_object_get(r, "statement")), "SHOW") == 0,
          "show: every model, statement SHOW");
    free(n);
    json_decref(r);
    expect_values(s, "SHOW DATASETS;", "name", false, "fmnist-test, fmnist-train, glue-sst2-test, glue/cola-test, local-idx, vtab-caltech101-train, vtab-cifar-train", "show: SHOW DATASETS by name");
    r = run_ok(s, "SHOW JOBS;", "show: SHOW JOBS");
    n = sql_value("SELECT count(*) FROM jobs");
    check(r && json_integer_value(json_object_get(r, "row_count")) == atoi(n),
          "show: SHOW JOBS lists the jobs table");
    free(n);
    json_decref(r);
    r = run_ok(s, "SHOW EXTENSIONS;", "show: SHOW EXTENSIONS");
    check(r && json_integer_value(json_object_get(r, "row_count")) >= 1, "show: SHOW EXTENSIONS lists the builtin strategies");
    json_decref(r);
    r = run_ok(s, "USE \"http://127.0.0.1:9000\";", "use: USE answers");
    check(r && has_notice(r, "client-side"), "use: notice that USE is client-side");
    json_decref(r);
    r = run_ok(s, "SELECT name FROM image_models WHERE source = TensorFlow LIMIT 1;", "notice: bare word query");
    check(r && has_notice(r, "read as the string 'TensorFlow'"), "notice: the bare word rule is reported");
    json_decref(r);
    r = run_ok(s, "SELECT name FROM models WHERE num_param > 3;", "notice: near-miss column");
    check(r && has_notice(r, "did you mean num_params"), "notice: a spec field that looks like a column typo");
    json_decref(r);

    expect_error(s, "FINETUNE tv WITH \"fmnist-train\" USING \"head(lr=100)\";", 422, "validation_error", "lr", "FINETUNE: a knob out of range is 422 naming it, before any job");
    expect_error(s, "RANK * FROM image_models TRAINED ON 'a' TESTED ON 'b' BY \"random(seed=1)\";", 404, "not_found", NULL, "RANK … BY a strategy on unknown datasets is 404");
    expect_error(s, "RANK * FROM image_models TRAINED ON 'a' TESTED ON 'b' BY \"nosuch(seed=1)\";", 400, "semantic_error", NULL, "RANK … BY an unknown strategy is 400");
    expect_error(s, "SELECT * FROM image_models ORDER BY err ASC TRAINED ON \"a\" TESTED ON TASK \"b\" CLASSIFIED BY [\"Euclidean NN\"] LIMIT 3;", 404, "not_found", NULL, "task-aware SELECT: an unknown dataset is 404");
    expect_error(s, "SELECT * FROM image_models WHERE source = 'x' ORDER BY err TRAINED ON 'a' TESTED ON 'b' CHUNK 10 BUDGET 20;", 404, "not_found", NULL, "successive halving on unknown datasets is 404");
    expect_error(s, "SELECT vec FROM rd WHERE probe = tv;", 400, "semantic_error", NULL, "SELECT vec: a probe fitted per query (PCA) is 400");
    expect_error(s, "CANCEL JOB 999999;", 404, "not_found", NULL, "CANCEL JOB: an unknown job is 404");
    expect_error(s, "CANCEL QUERY 'q1';", 400, "semantic_error", NULL, "CANCEL QUERY: an id that is not a uuid is 400");
    expect_error(s, "CANCEL QUERY '6f1c2a0e-3b7d-4c55-9a43-2d3f0b9e8a11';", 404, "not_found", NULL, "CANCEL QUERY: an unknown query is 404");

    exec_error e = expect_error(s, "SELECT name\nFROM models WHERE num_params LIKE 3;", 400, "semantic_error", NULL, "type: num_params LIKE 3");
    check(e.line == 2 && e.col == 19, "type: the error has the position of num_params (%d:%d)", e.line, e.col);
    e = expect_error(s, "SELECT name FROM models WHERE name > TRUE;", 400, "semantic_error", NULL, "type: name > TRUE");
    check(e.col == 38, "type: the error points at TRUE (%d)", e.col);
    expect_error(s, "SELECT name FROM models WHERE num_params = 'abc';", 400, "semantic_error", NULL, "type: number = string");
    expect_error(s, "SELECT name FROM models WHERE num_params = NULL;", 400, "semantic_error", NULL, "type: = NULL suggests IS NULL");
    expect_error(s, "SELECT name FROM models WHERE date_added > '2023-13-45';", 400, "semantic_error", NULL, "type: a bad date literal");
    expect_error(s, "SELECT name FROM models WHERE created_at > 'yesterday-ish';", 400, "semantic_error", NULL, "type: a bad timestamp from PostgreSQL is a 400");
    expect_error(s, "SELECT name FROM models WHERE num_params / 0 > 1;", 400, "semantic_error", NULL, "type: division by zero is a 400");
    expect_error(s, "SELECT name FROM models WHERE foo(name) = 1;", 400, "semantic_error", NULL, "unknown function");
    expect_error(s, "SELECT name FROM modelz;", 400, "semantic_error", NULL, "unknown table");
    expect_error(s, "SELECT name FROM datasets WHERE FINETUNED;", 400, "semantic_error", NULL, "FINETUNED on datasets");
    expect_error(s, "SELECT name FROM models WHERE num_params;", 400, "semantic_error", NULL, "a number is not a condition");
    check(PQtransactionStatus(conn) == PQTRANS_IDLE, "transactions: the connection is idle after errors");
    bool began = sql_exec("BEGIN");
    json_t *inner = run_ok(s, "SELECT name FROM models LIMIT 1;", "transactions: inside a caller's transaction");
    check(began && inner && PQtransactionStatus(conn) == PQTRANS_INTRANS && sql_exec("COMMIT"),
          "transactions: a savepoint inside a caller's transaction");
    json_decref(inner);
}

/* ---- injection safety ---------------------------------------------------------------------------- */

/* raw as a RankQL single-quoted literal. */
static char *lit(const char *raw)
{
    strbuf sb = {0};
    strbuf_putc(&sb, '\'');
    for (const char *c = raw; *c; c++) {
        if (*c == '\\' || *c == '\'')
            strbuf_putc(&sb, '\\');
        strbuf_putc(&sb, *c);
    }
    strbuf_putc(&sb, '\'');
    return strbuf_detach(&sb);
}

/* raw as a double-quoted RankQL name (a spec key). */
static char *dquote(const char *raw)
{
    strbuf sb = {0};
    strbuf_putc(&sb, '"');
    for (const char *c = raw; *c; c++) {
        if (*c == '\\' || *c == '"')
            strbuf_putc(&sb, '\\');
        strbuf_putc(&sb, *c);
    }
    strbuf_putc(&sb, '"');
    return strbuf_detach(&sb);
}

static void security_tests(const char *s)
{
    char *longq = xmalloc(10241);
    memset(longq, '\'', 10240);
    longq[10240] = '\0';
    char *longb = xmalloc(10241);
    for (int i = 0; i < 10240; i++)
        longb[i] = "';--$1\\\" "[i % 9];
    longb[10240] = '\0';
    const char *evil[] = {
        "x'; DROP TABLE models; --",
        "' OR '1'='1",
        "$1",
        "\\'; DELETE FROM datasets; --",
        "\"; TRUNCATE models CASCADE; --",
        "a\\b\\\\c",
        "%_%",
        "); DROP TABLE datasets; (",
        longq,
        longb,
    };
    size_t n = sizeof evil / sizeof evil[0];
    char *before = catalog_checksum();
    int failures = 0, statements = 0;
    for (size_t i = 0; i < n; i++) {
        char *l = lit(evil[i]), *dq = dquote(evil[i]);
        /* the string slots of read statements; names in quotes too */
        char *stmts[] = {
            xasprintf("SELECT name FROM models WHERE name = %s;", l),
            xasprintf("SELECT name FROM models WHERE source != %s OR name LIKE %s;", l, l),
            xasprintf("SELECT name FROM models WHERE name IN (%s, 'alexnet');", l),
            xasprintf("SELECT name FROM models WHERE hf_name = %s AND spec.k < 3;", l),
            xasprintf("SELECT name FROM models WHERE spec.%s = %s AND spec.%s.%s IS NULL;", dq, l, dq, dq),
            xasprintf("SELECT name FROM datasets WHERE vtab_name = %s OR location LIKE %s;", l, l),
            xasprintf("SELECT name FROM models WHERE tags = %s;", l),
            xasprintf("SELECT name, %s AS c FROM models LIMIT 1;", l),
            xasprintf("EXPLAIN ANALYZE SELECT name FROM models WHERE name = %s ORDER BY name;", l),
            xasprintf("SELECT name FROM models WHERE date_added = %s;", l),
        };
        for (size_t k = 0; k < sizeof stmts / sizeof stmts[0]; k++) {
            exec_error err;
            json_t *r = run(s, stmts[k], &err);
            statements++;
            /* a result, or a clean 400 (e.g. not a date); never a database or internal error */
            bool ok = r || (err.http_status == 400 && strcmp(err.code, "semantic_error") == 0);
            if (r && k == 0)
                ok = ok && json_array_size(json_object_get(r, "rows")) == 0;
            if (!ok) {
                failures++;
                diag("statement %.120s → %d %s: %s", stmts[k], err.http_status, err.code, err.message);
            }
            json_decref(r);
            free(stmts[k]);
        }
        free(l);
        free(dq);
    }
    check(failures == 0, "security: %d read statements with hostile strings in every slot answer normally", statements);
    char *mid = catalog_checksum();
    check(strcmp(before, mid) == 0, "security: the catalog is unchanged after hostile reads");
    free(mid);

    /* names (quoted identifiers) and written values round-trip exactly */
    failures = 0;
    const char *name_evil[] = {"x'; DROP TABLE models; --", "$1", "a\\b", "\"q\"'; --"};
    for (size_t i = 0; i < sizeof name_evil / sizeof name_evil[0]; i++) {
        char *l = lit(name_evil[i]);
        char *decl = xasprintf("DECLARE %s AS SELECT * FROM models WHERE name = %s OR name = 'alexnet';", l, l);
        char *print = xasprintf("PRINT %s;", l);
        char *from = xasprintf("SELECT name FROM %s OTHER THAN %s;", l, l);
        exec_error err;
        json_t *a = run(s, decl, &err), *b = a ? run(s, print, &err) : NULL, *c = b ? run(s, from, &err) : NULL;
        char *names = b ? column_values(b, "name", false) : NULL;
        if (!a || !b || !c || strcmp(names, "alexnet") != 0 || json_array_size(json_object_get(c, "rows")) != 0) {
            failures++;
            diag("variable %.40s: %s", name_evil[i], err.message);
        }
        free(names);
        json_decref(a);
        json_decref(b);
        json_decref(c);
        free(decl);
        free(print);
        free(from);
        free(l);
    }
    check(failures == 0, "security: hostile variable names work as names (DECLARE, PRINT, FROM, OTHER THAN)");

    /* hostile strings written by REGISTER (names, text fields, spec values, tags) */
    failures = 0;
    char *max_id = sql_value("SELECT max(id) FROM models");
    char *old_sql = xasprintf("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM models t WHERE id <= %s", max_id);
    char *old_before = sql_value(old_sql);
    const char *written[] = {"x'; DROP TABLE models; --", "$1", "\\'; DELETE FROM datasets; --", "' OR '1'='1", "a\\b"};
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        char *l = lit(written[i]);
        char *reg = xasprintf("REGISTER MODEL %s (runner, modality, source, spec, tags) VALUES ('exec', 'text', %s, {command: [%s], note: %s}, [%s]);",
                              l, l, l, l, l);
        char *back = xasprintf("SELECT name, source, spec.note, spec.command, tags FROM models WHERE name = %s AND source = %s AND tags = %s AND spec.note = %s;", l, l, l, l);
        exec_error e1;
        json_t *a = run(s, reg, &e1), *b = a ? run(s, back, &e1) : NULL;
        char *got = b ? column_values(b, "source", false) : xstrdup("");
        char *note = b ? column_values(b, "spec.note", false) : xstrdup("");
        if (!a || !b || strcmp(got, written[i]) != 0 || strcmp(note, written[i]) != 0) {
            failures++;
            diag("register %zu: %d %s", i, e1.http_status, e1.message);
        }
        free(got);
        free(note);
        json_decref(a);
        json_decref(b);
        free(back);
        free(reg);
        free(l);
    }
    check(failures == 0, "security: hostile names and values written by REGISTER come back byte for byte");
    char *ll = lit(longb);
    char *reg = xasprintf("REGISTER MODEL \"evil-long\" (runner, modality, spec) VALUES ('exec', 'text', {command: 'x', note: %s});", ll);
    json_decref(run_ok(s, reg, "security: a 10 KB hostile spec value is stored"));
    free(reg);
    reg = xasprintf("SELECT name FROM models WHERE spec.note = %s;", ll);
    expect_values(s, reg, "name", false, "evil-long", "security: and found again by that value");
    free(reg);
    reg = xasprintf("REGISTER MODEL \"evil-long2\" (runner, modality, spec, source) VALUES ('exec', 'text', {command: 'x'}, %s);", ll);
    register_bad(s, reg, "source", "a 10 KB source is over the limit");
    free(reg);
    free(ll);
    char *ds_l = lit(evil[0]);
    char *ds = xasprintf("REGISTER DATASET %s (format, location) VALUES ('csv', %s);", ds_l, ds_l);
    register_bad(s, ds, "location", "a hostile location is just a missing file");
    free(ds);
    free(ds_l);
    char *tables = sql_value("SELECT count(*) FROM pg_tables WHERE tablename IN ('models', 'datasets', 'jobs', 'sessions', 'session_variables')");
    check(strcmp(tables, "5") == 0, "security: every table still exists");
    free(tables);
    char *old_after = sql_value(old_sql);
    check(strcmp(old_before, old_after) == 0, "security: no earlier model changed after hostile REGISTERs");
    char *ds_after = catalog_checksum();
    check(strcmp(strchr(ds_after, '/'), strchr(before, '/')) == 0, "security: datasets unchanged after hostile REGISTERs");
    free(ds_after);
    free(old_after);
    free(old_before);
    free(old_sql);
    free(max_id);
    free(before);
    free(longq);
    free(longb);
}

/* ---- the demo catalog ------------------------------------------------------------------------- */

/* Runs every statement of a script; returns how many failed (diagnosed). With
 * datasets_absent, REGISTER DATASET statements must fail on their location instead. */
static int run_script(const char *s, const char *text, bool datasets_absent, int *total)
{
    rq_script *sc = rq_parse_script(text, strlen(text));
    int failed = 0;
    *total = (int)sc->n;
    for (size_t i = 0; i < sc->n; i++) {
        if (!sc->stmts[i].ast) {
            failed++;
            diag("statement %zu does not parse: %s", i + 1, sc->stmts[i].error->message);
            continue;
        }
        exec_ctx ctx = {.conn = conn, .session_id = s};
        exec_error err;
        json_t *r = executor_run(&ctx, sc->stmts[i].ast, &err);
        bool dataset = sc->stmts[i].ast->kind == AST_REGISTER &&
                       ((const ast_register *)sc->stmts[i].ast)->what == REGISTER_DATASET;
        bool ok = datasets_absent && dataset ? !r && strcmp(err.field, "location") == 0 : r != NULL;
        if (!ok) {
            failed++;
            diag("statement %zu: %d %s: %s", i + 1, err.http_status, err.code, err.message);
        }
        json_decref(r);
    }
    rq_script_free(sc);
    return failed;
}

static void demo_catalog_tests(const char *s, const char *path)
{
    char *text = read_file(path, NULL);
    if (!check(text != NULL, "demo catalog: %s is readable", path))
        return;
    struct stat st;
    bool absent = stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &st) != 0;
    if (absent)
        diag("dataset-fashion-mnist is not installed: its REGISTER DATASETs must fail on location");
    int total = 0;
    int failed = run_script(s, text, absent, &total);
    check(failed == 0 && total > 40, "demo catalog: all %d statements run (%d failed)", total, failed);
    expect_values(s, "SELECT name FROM image_models WHERE runner = 'tfhub' AND source = 'TensorFlow' AND name LIKE 'tfhub/%';", "name", true,
                  "tfhub/efficientnet_b0, tfhub/efficientnet_b1, tfhub/efficientnet_b2, tfhub/efficientnet_b3, tfhub/efficientnet_b4, tfhub/efficientnet_b5, tfhub/efficientnet_b6, tfhub/efficientnet_b7, tfhub/inception_v3, tfhub/resnet_v2_101, tfhub/resnet_v2_152, tfhub/resnet_v2_50",
                  "demo catalog: SHiFT's 12 TF Hub image models");
    expect_values(s, "SELECT batch_size FROM models WHERE name LIKE 'torchvision/%' ORDER BY name;", "batch_size", false, "2048, 512, 64, 64, 128, 128",
                  "demo catalog: SHiFT's 6 torchvision models with their batch sizes");
    expect_values(s, "SELECT name, batch_size FROM text_models WHERE runner = 'tfhub' AND name LIKE 'tfhub/%' ORDER BY batch_size, name;", "batch_size", false, "2, 16, 2048, 2048, 2048, 2048, 2048",
                  "demo catalog: SHiFT's 7 TF text models (ELMo 2, USE-Large 16, others 2048)");
    expect_values(s, "SELECT batch_size, image_size FROM models WHERE name = 'tfhub/efficientnet_b6';", "image_size", false, "528", "demo catalog: image_size from required_image_size");
    expect_values(s, "SELECT spec.extractor FROM models WHERE runner = 'builtin' AND tags = 'fashion-mnist' ORDER BY dimension, name;", "spec.extractor", false,
                  "pca, pca, profile, pca, histogram, random_projection, downsample, random_conv, random_projection, hog, random_fourier, raw, lbp, random_conv", "demo catalog: 14 builtin extractors");
    if (!absent)
        expect_values(s, "SELECT name FROM datasets WHERE format = 'idx' AND name LIKE 'fashion-mnist%' AND num_classes = 10;", "name", true,
                      "fashion-mnist-test, fashion-mnist-test-1k, fashion-mnist-train, fashion-mnist-train-5k", "demo catalog: Fashion-MNIST datasets");
    const char *sum = "SELECT md5(string_agg((t.name, t.spec, t.runner, t.modality, t.source, t.num_params, t.dimension, t.image_size, "
                      "t.token_length, t.batch_size, t.up_acc, t.tags, t.finetuned, t.date_added)::text, '|' ORDER BY t.id)) FROM models t";
    char *before = sql_value(sum);
    failed = run_script(s, text, absent, &total);
    char *after = sql_value(sum);
    check(failed == 0 && strcmp(before, after) == 0, "demo catalog: running it again changes nothing (upserts)");
    free(before);
    free(after);
    free(text);
}

/* ---- main ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: itest_executor SCRATCH_DIR WHERE_CASES_FILE [DEMO_CATALOG]\n");
        return 2;
    }
    scratch = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *data = xasprintf("%s/data", scratch), *err = NULL;
    pg_embedded_opts opts = {.data_dir = data, .no_sync = true};
    pg_embedded *pg = pg_embedded_start(&opts, &err);
    if (!check(pg != NULL, "embedded PostgreSQL starts")) {
        diag("%s", err ? err : "?");
        free(err);
        free(data);
        return 1;
    }
    conn = PQconnectdb(pg_embedded_conninfo(pg));
    int applied = 0;
    bool ready = check(PQstatus(conn) == CONNECTION_OK, "connects to the catalog") &&
                 check(db_migrate(conn, &applied, &err) == 0, "migrations apply") &&
                 check(sql_exec(catalog_sql), "test catalog loads");
    if (err) {
        diag("%s", err);
        free(err);
        err = NULL;
    }
    if (ready) {
        char *a = new_session(), *b = new_session();
        where_cases(a, argv[2]);
        projection_tests(a);
        ordering_tests(a);
        setop_tests(a);
        variable_tests(a, b);
        register_tests(a);
        register_file_tests(a);
        register_race_test(a, pg_embedded_conninfo(pg));
        explain_tests(a);
        purge_tests(a);
        misc_tests(a);
        security_tests(a);
        if (argc == 4)
            demo_catalog_tests(a, argv[3]);
        free(a);
        free(b);
    }
    PQfinish(conn);
    if (pg_embedded_stop(pg, &err) != 0) {
        check(false, "embedded PostgreSQL stops");
        diag("%s", err ? err : "?");
        free(err);
    }
    free(data);
    printf("# %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
