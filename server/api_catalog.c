/* GET /v1/models and GET /v1/datasets: the catalog with equality filters and paging. Each
 * endpoint is one fixed SQL text; filter values and paging reach PostgreSQL only as
 * parameters ($n), an absent filter as NULL. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "common/util.h"
#include "server/api.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000
#define MAX_OFFSET 1000000000000LL
#define MAX_FILTERS 4

typedef struct listing {
    const char *what;                      /* "models" */
    const char *const filters[MAX_FILTERS + 1]; /* in the order of $1… ; NULL-terminated */
    const char *const columns[20];         /* as the SQL builds each row; NULL-terminated */
    const char *sql;                       /* $1…$k filters, $k+1 limit, $k+2 offset */
} listing;

static const listing models_listing = {
    "models",
    {"name", "source", "modality", "runner", NULL},
    {"name", "modality", "source", "runner", "num_params", "dimension", "image_size",
     "token_length", "batch_size", "up_acc", "date_added", "tags", "finetuned", "parent", "spec",
     NULL},
    "WITH f AS (SELECT t.* FROM models t"
    "            WHERE ($1::text IS NULL OR t.name = $1) AND ($2::text IS NULL OR t.source = $2)"
    "              AND ($3::text IS NULL OR t.modality = $3) AND ($4::text IS NULL OR t.runner = $4)),"
    "     page AS (SELECT * FROM f ORDER BY name LIMIT $5::bigint OFFSET $6::bigint)"
    " SELECT (SELECT count(*) FROM f),"
    "        coalesce((SELECT json_agg(json_build_array(p.name, p.modality, p.source, p.runner,"
    "                    p.num_params, p.dimension, p.image_size, p.token_length, p.batch_size,"
    "                    p.up_acc, p.date_added, p.tags, p.finetuned,"
    "                    (SELECT m.name FROM models m WHERE m.id = p.parent_model_id), p.spec)"
    "                    ORDER BY p.name) FROM page p), '[]')",
};

static const listing datasets_listing = {
    "datasets",
    {"name", "modality", "format", NULL},
    {"name", "modality", "format", "location", "split", "slice_start", "slice_stop", "size",
     "num_classes", "date_added", "spec", NULL},
    "WITH f AS (SELECT t.* FROM datasets t"
    "            WHERE ($1::text IS NULL OR t.name = $1) AND ($2::text IS NULL OR t.modality = $2)"
    "              AND ($3::text IS NULL OR t.format = $3)),"
    "     page AS (SELECT * FROM f ORDER BY name LIMIT $4::bigint OFFSET $5::bigint)"
    " SELECT (SELECT count(*) FROM f),"
    "        coalesce((SELECT json_agg(json_build_array(p.name, p.modality, p.format, p.location,"
    "                    p.split, p.slice_start, p.slice_stop, p.size, p.num_classes,"
    "                    p.date_added, p.spec)"
    "                    ORDER BY p.name) FROM page p), '[]')",
};

/* A non-negative decimal number of at most 15 digits. */
static bool parse_count(const char *s, long long *out)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    *out = strtoll(s, NULL, 10);
    return true;
}

static void filter_names(const listing *l, strbuf *sb)
{
    for (size_t i = 0; l->filters[i]; i++)
        strbuf_printf(sb, "%s%s", i ? ", " : "", l->filters[i]);
}

/* Reads limit, offset and the filters into values ($1…). False after answering 400. */
static bool read_args(const listing *l, const http_request *req, const char **values,
                      long long *limit, long long *offset, http_response *resp)
{
    *limit = DEFAULT_LIMIT;
    *offset = 0;
    if (req->too_many_args) {
        http_reply_error(resp, 400, "invalid_parameter", "too many query parameters (at most %d)",
                         HTTP_MAX_ARGS);
        return false;
    }
    for (size_t i = 0; i < req->nargs; i++) {
        const char *key = req->args[i].key, *value = req->args[i].value;
        if (!utf8_valid(key, strlen(key), NULL) || (value && !utf8_valid(value, strlen(value), NULL))) {
            http_reply_error(resp, 400, "invalid_parameter", "a query parameter is not valid UTF-8");
            return false;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->args[j].key, key) == 0) {
                http_reply_error(resp, 400, "invalid_parameter", "parameter \"%s\" is given twice",
                                 key);
                return false;
            }
        if (!value) {
            http_reply_error(resp, 400, "invalid_parameter", "parameter \"%s\" needs a value (%s=…)",
                             key, key);
            return false;
        }
        if (strcmp(key, "limit") == 0) {
            if (!parse_count(value, limit) || *limit > MAX_LIMIT) {
                http_reply_error(resp, 400, "invalid_parameter",
                                 "limit must be a whole number from 0 to %d", MAX_LIMIT);
                return false;
            }
            continue;
        }
        if (strcmp(key, "offset") == 0) {
            if (!parse_count(value, offset) || *offset > MAX_OFFSET) {
                http_reply_error(resp, 400, "invalid_parameter",
                                 "offset must be a whole number from 0 to %lld", MAX_OFFSET);
                return false;
            }
            continue;
        }
        size_t f = 0;
        while (l->filters[f] && strcmp(l->filters[f], key) != 0)
            f++;
        if (!l->filters[f]) {
            strbuf names = {0};
            filter_names(l, &names);
            http_reply_error(resp, 400, "invalid_parameter",
                             "unknown parameter \"%.64s\": %s takes limit, offset and the filters %s",
                             key, l->what, names.data);
            strbuf_free(&names);
            return false;
        }
        values[f] = value;
    }
    return true;
}

static void list(const listing *l, server_ctx *ctx, const http_request *req, http_response *resp)
{
    const char *values[MAX_FILTERS + 2] = {0};
    long long limit, offset;
    if (!read_args(l, req, values, &limit, &offset, resp))
        return;
    size_t nf = 0;
    while (l->filters[nf])
        nf++;
    char limit_text[24], offset_text[24];
    snprintf(limit_text, sizeof limit_text, "%lld", limit);
    snprintf(offset_text, sizeof offset_text, "%lld", offset);
    values[nf] = limit_text;
    values[nf + 1] = offset_text;

    PGconn *conn = api_db_acquire(ctx, ctx->cfg->query_timeout_s * 1000, resp);
    if (!conn)
        return;
    PGresult *res = api_db_exec(ctx, conn, l->sql, (int)nf + 2, values, resp);
    api_db_release(ctx, conn);
    if (!res)
        return;
    json_t *rows = NULL;
    if (PQntuples(res) == 1)
        rows = json_loadb(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), 0, NULL);
    long long total = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    if (!json_is_array(rows)) {
        json_decref(rows);
        http_reply_error(resp, 500, "internal_error", "the %s listing could not be read", l->what);
        return;
    }
    json_t *columns = json_array();
    for (size_t i = 0; l->columns[i]; i++)
        json_array_append_new(columns, json_string(l->columns[i]));
    json_t *body = json_pack("{s:o, s:I, s:o, s:I, s:I, s:I}", "columns", columns, "row_count",
                             (json_int_t)json_array_size(rows), "rows", rows, "limit",
                             (json_int_t)limit, "offset", (json_int_t)offset, "total",
                             (json_int_t)total);
    http_reply_json(resp, 200, body);
}

void api_models(server_ctx *ctx, const http_request *req, http_response *resp)
{
    list(&models_listing, ctx, req, resp);
}

void api_datasets(server_ctx *ctx, const http_request *req, http_response *resp)
{
    list(&datasets_listing, ctx, req, resp);
}
