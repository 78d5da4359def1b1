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
#include "server/request.h"

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

static void list(const listing *l, server_ctx *ctx, const http_request *req, http_response *resp)
{
    const char *values[MAX_FILTERS + 2] = {0};
    long long limit, offset;
    if (!api_list_args(l->what, l->filters, req, values, &limit, &offset, resp))
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
