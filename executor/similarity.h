/* Dataset similarity statements (similarity.c): SELECT vec FROM <datasets> WHERE probe = …
 * and its EXPLAIN. Not part of the executor's public interface. */
#ifndef RANKQL_EXECUTOR_SIMILARITY_H
#define RANKQL_EXECUTOR_SIMILARITY_H

#include "executor/internal.h"

/* A SELECT whose only column is vec and whose WHERE names probe. */
bool similarity_query_applies(const ast_node *query);
json_t *exec_similarity_query(exec_ctx *ctx, const ast_select *s, exec_error *err);
json_t *exec_similarity_explain(exec_ctx *ctx, const ast_explain *e, exec_error *err);

#endif
