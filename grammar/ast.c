/* AST construction helpers and names. */
#include <string.h>

#include "grammar/ast.h"

void *ast_new(arena *a, ast_kind kind, size_t size, ast_pos pos)
{
    ast_node *n = arena_alloc(a, size);
    n->kind = kind;
    n->pos = pos;
    return n;
}

ast_list *ast_list_new(arena *a)
{
    return arena_alloc(a, sizeof(ast_list));
}

ast_list *ast_list_append(arena *a, ast_list *list, ast_node *item)
{
    if (!list)
        list = ast_list_new(a);
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 4;
        ast_node **items = arena_alloc(a, cap * sizeof(*items));
        if (list->n)
            memcpy(items, list->items, list->n * sizeof(*items));
        list->items = items;
        list->cap = cap;
    }
    list->items[list->n++] = item;
    return list;
}

void ast_int_list_append(arena *a, ast_int_list *list, int64_t v)
{
    /* index lists are short; grow by doubling at powers of two */
    if ((list->n & (list->n - 1)) == 0) {
        size_t cap = list->n ? list->n * 2 : 1;
        int64_t *v2 = arena_alloc(a, cap * sizeof(*v2));
        if (list->n)
            memcpy(v2, list->v, list->n * sizeof(*v2));
        list->v = v2;
    }
    list->v[list->n++] = v;
}

const char *ast_kind_name(ast_kind kind)
{
    switch (kind) {
    case AST_SELECT: return "select";
    case AST_SET_OP: return "set_op";
    case AST_EXPLAIN: return "explain";
    case AST_DECLARE: return "declare";
    case AST_REGISTER: return "register";
    case AST_USE: return "use";
    case AST_PRINT: return "print";
    case AST_FINETUNE: return "finetune";
    case AST_PURGE: return "purge";
    case AST_SHOW: return "show";
    case AST_CANCEL: return "cancel";
    case AST_CHECK: return "check";
    case AST_COLUMN: return "column";
    case AST_ORDER_ITEM: return "order_item";
    case AST_DATASET_REF: return "dataset";
    case AST_CHANGE: return "change";
    case AST_CALL: return "call";
    case AST_PARAM: return "param";
    case AST_LITERAL: return "literal";
    case AST_COLUMN_REF: return "column_ref";
    case AST_STAR: return "star";
    case AST_UNARY: return "unary";
    case AST_BINARY: return "binary";
    case AST_BETWEEN: return "between";
    case AST_IN: return "in";
    case AST_IS_NULL: return "is_null";
    case AST_LIKE: return "like";
    case AST_FINETUNED: return "finetuned";
    case AST_FUNC: return "func";
    case AST_ARRAY: return "array";
    case AST_OBJECT: return "object";
    case AST_OBJECT_FIELD: return "field";
    case AST_MODEL_PROPERTY: return "model_property";
    }
    return "unknown";
}

const char *ast_op_name(ast_op op)
{
    switch (op) {
    case OP_OR: return "OR";
    case OP_AND: return "AND";
    case OP_NOT: return "NOT";
    case OP_EQ: return "=";
    case OP_NE: return "!=";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_NEG: return "-";
    }
    return "?";
}

const char *ast_set_kind_name(ast_set_kind k)
{
    switch (k) {
    case SET_UNION: return "UNION";
    case SET_INTERSECT: return "INTERSECT";
    case SET_EXCEPT: return "EXCEPT";
    }
    return "?";
}

const char *ast_show_what_name(ast_show_what w)
{
    switch (w) {
    case SHOW_JOBS: return "jobs";
    case SHOW_MODELS: return "models";
    case SHOW_DATASETS: return "datasets";
    case SHOW_EXTENSIONS: return "extensions";
    }
    return "?";
}
