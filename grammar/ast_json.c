/* Canonical JSON of the AST: what `rankql --parse` prints and what snapshot tests
 * compare. Keys are sorted and output is compact, so equal trees print equal text.
 * Absent optional clauses are left out rather than printed as null. */
#include <jansson.h>
#include <stdlib.h>

#include "grammar/ast.h"

static json_t *node_json(const ast_node *n);

static json_t *with_pos(json_t *obj, const char *type, ast_pos pos)
{
    json_object_set_new(obj, "type", json_string(type));
    json_object_set_new(obj, "line", json_integer(pos.line));
    json_object_set_new(obj, "col", json_integer(pos.col));
    return obj;
}

static json_t *name_json(const ast_name *name)
{
    json_t *o = with_pos(json_object(), "name", name->pos);
    json_object_set_new(o, "name", json_string(name->text));
    json_object_set_new(o, "quoted", json_boolean(name->quoted));
    return o;
}

static json_t *list_json(const ast_list *list)
{
    json_t *a = json_array();
    for (size_t i = 0; list && i < list->n; i++)
        json_array_append_new(a, node_json(list->items[i]));
    return a;
}

static json_t *ints_json(const ast_int_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_integer(l->v[i]));
    return a;
}

static void set_if(json_t *o, const char *key, json_t *value)
{
    if (value)
        json_object_set_new(o, key, value);
}

static json_t *amount_json(const ast_amount *a)
{
    if (!a->present)
        return NULL;
    return a->is_auto ? json_string("AUTO") : json_integer(a->value);
}

static json_t *literal_json(const ast_literal *l, json_t *o)
{
    switch (l->type) {
    case LIT_INT:
        json_object_set_new(o, "value", json_integer(l->ival));
        break;
    case LIT_FLOAT:
        json_object_set_new(o, "value", json_real(l->fval));
        break;
    case LIT_STRING:
        json_object_set_new(o, "value", json_stringn(l->str, l->len));
        break;
    case LIT_BOOL:
        json_object_set_new(o, "value", json_boolean(l->bval));
        break;
    case LIT_NULL:
        json_object_set_new(o, "value", json_null());
        break;
    }
    if (l->text && (l->type == LIT_INT || l->type == LIT_FLOAT))
        json_object_set_new(o, "text", json_string(l->text));
    return o;
}

static json_t *select_json(const ast_select *s, json_t *o)
{
    json_object_set_new(o, "type", json_string(s->is_rank ? "rank" : "select"));
    if (s->distinct)
        json_object_set_new(o, "distinct", json_true());
    json_object_set_new(o, "columns", list_json(s->columns));
    json_object_set_new(o, "from", name_json(&s->from));
    set_if(o, "where", s->where ? node_json(s->where) : NULL);
    set_if(o, "order_by", s->order_by ? list_json(s->order_by) : NULL);
    set_if(o, "trained_on", s->trained_on ? list_json(s->trained_on) : NULL);
    if (s->tested_kind != TESTED_NONE) {
        static const char *kinds[] = {"none", "default", "task", "benchmark"};
        json_t *t = json_object();
        json_object_set_new(t, "kind", json_string(kinds[s->tested_kind]));
        json_object_set_new(t, "datasets", list_json(s->tested_on));
        json_object_set_new(o, "tested_on", t);
    }
    set_if(o, "classified_by", s->classifiers ? list_json(s->classifiers) : NULL);
    set_if(o, "strategy", s->strategy ? node_json(&s->strategy->h) : NULL);
    set_if(o, "limit", s->has_limit ? json_integer(s->limit) : NULL);
    set_if(o, "other_than", s->other_than.text ? name_json(&s->other_than) : NULL);
    set_if(o, "chunk", amount_json(&s->chunk));
    set_if(o, "budget", amount_json(&s->budget));
    set_if(o, "eta", amount_json(&s->eta));
    if (s->wait)
        json_object_set_new(o, "wait", json_true());
    return o;
}

static json_t *dataset_json(const ast_dataset_ref *d, json_t *o)
{
    json_object_set_new(o, "name", name_json(&d->name));
    if (d->has_slice) {
        json_t *slice = json_object();
        json_object_set_new(slice, "start", d->has_slice_start ? json_integer(d->slice_start) : json_null());
        json_object_set_new(slice, "stop", d->has_slice_stop ? json_integer(d->slice_stop) : json_null());
        json_object_set_new(o, "slice", slice);
    }
    set_if(o, "changes", d->changes ? list_json(d->changes) : NULL);
    return o;
}

static json_t *node_json(const ast_node *n)
{
    if (!n)
        return json_null();
    json_t *o = with_pos(json_object(), ast_kind_name(n->kind), n->pos);
    switch (n->kind) {
    case AST_SELECT:
        return select_json((const ast_select *)n, o);
    case AST_SET_OP: {
        const ast_set_op *s = (const ast_set_op *)n;
        json_object_set_new(o, "op", json_string(ast_set_kind_name(s->op)));
        json_object_set_new(o, "left", node_json(s->left));
        json_object_set_new(o, "right", node_json(s->right));
        set_if(o, "order_by", s->order_by ? list_json(s->order_by) : NULL);
        set_if(o, "limit", s->has_limit ? json_integer(s->limit) : NULL);
        return o;
    }
    case AST_EXPLAIN: {
        const ast_explain *e = (const ast_explain *)n;
        json_object_set_new(o, "analyze", json_boolean(e->analyze));
        json_object_set_new(o, "json", json_boolean(e->json));
        json_object_set_new(o, "statement", node_json(e->stmt));
        return o;
    }
    case AST_DECLARE: {
        const ast_declare *d = (const ast_declare *)n;
        json_object_set_new(o, "name", name_json(&d->name));
        json_object_set_new(o, "query", node_json(d->query));
        return o;
    }
    case AST_REGISTER: {
        const ast_register *r = (const ast_register *)n;
        json_object_set_new(o, "what", json_string(r->what == REGISTER_MODEL ? "model" : "dataset"));
        json_object_set_new(o, "name", name_json(&r->name));
        json_t *cols = json_array();
        for (size_t i = 0; i < r->ncolumns; i++)
            json_array_append_new(cols, name_json(&r->columns[i]));
        json_object_set_new(o, "columns", cols);
        json_object_set_new(o, "values", list_json(r->values));
        return o;
    }
    case AST_USE:
        json_object_set_new(o, "target", name_json(&((const ast_use *)n)->target));
        return o;
    case AST_PRINT: {
        const ast_print *p = (const ast_print *)n;
        if (p->all)
            json_object_set_new(o, "all", json_true());
        else
            json_object_set_new(o, "name", name_json(&p->name));
        return o;
    }
    case AST_FINETUNE: {
        const ast_finetune *f = (const ast_finetune *)n;
        json_object_set_new(o, "models", name_json(&f->models));
        json_object_set_new(o, "datasets", list_json(f->datasets));
        set_if(o, "using", f->strategy ? node_json(&f->strategy->h) : NULL);
        if (f->wait)
            json_object_set_new(o, "wait", json_true());
        return o;
    }
    case AST_PURGE:
        if (((const ast_purge *)n)->cache)
            json_object_set_new(o, "cache", json_true());
        return o;
    case AST_SHOW:
        json_object_set_new(o, "what", json_string(ast_show_what_name(((const ast_show *)n)->what)));
        return o;
    case AST_CANCEL: {
        const ast_cancel *c = (const ast_cancel *)n;
        json_object_set_new(o, "what", json_string(c->what == CANCEL_JOB ? "job" : "query"));
        json_object_set_new(o, "id", node_json(&c->id->h));
        return o;
    }
    case AST_CHECK: {
        const ast_check *c = (const ast_check *)n;
        if (c->all)
            json_object_set_new(o, "all", json_true());
        else
            json_object_set_new(o, "name", name_json(&c->name));
        return o;
    }
    case AST_COLUMN: {
        const ast_column *c = (const ast_column *)n;
        json_object_set_new(o, "expr", node_json(c->expr));
        set_if(o, "alias", c->alias.text ? name_json(&c->alias) : NULL);
        return o;
    }
    case AST_ORDER_ITEM: {
        const ast_order_item *it = (const ast_order_item *)n;
        json_object_set_new(o, "key", node_json(it->key));
        json_object_set_new(o, "direction", json_string(it->desc ? "DESC" : "ASC"));
        return o;
    }
    case AST_DATASET_REF:
        return dataset_json((const ast_dataset_ref *)n, o);
    case AST_CHANGE: {
        const ast_change *c = (const ast_change *)n;
        json_object_set_new(o, "base_indices", ints_json(&c->base_indices));
        json_object_set_new(o, "target", node_json(&c->target->h));
        if (c->has_target_indices)
            json_object_set_new(o, "target_indices", ints_json(&c->target_indices));
        return o;
    }
    case AST_CALL: {
        const ast_call *c = (const ast_call *)n;
        json_object_set_new(o, "name", name_json(&c->name));
        set_if(o, "params", c->has_parens ? list_json(c->params) : NULL);
        return o;
    }
    case AST_PARAM: {
        const ast_param *p = (const ast_param *)n;
        json_object_set_new(o, "key", name_json(&p->key));
        json_object_set_new(o, "value", node_json(p->value));
        return o;
    }
    case AST_LITERAL:
        return literal_json((const ast_literal *)n, o);
    case AST_COLUMN_REF: {
        const ast_column_ref *c = (const ast_column_ref *)n;
        json_t *path = json_array();
        for (size_t i = 0; i < c->nparts; i++)
            json_array_append_new(path, json_string(c->parts[i].text));
        json_object_set_new(o, "path", path);
        return o;
    }
    case AST_STAR:
    case AST_FINETUNED:
        return o;
    case AST_UNARY: {
        const ast_unary *u = (const ast_unary *)n;
        json_object_set_new(o, "op", json_string(ast_op_name(u->op)));
        json_object_set_new(o, "operand", node_json(u->operand));
        return o;
    }
    case AST_BINARY: {
        const ast_binary *b = (const ast_binary *)n;
        json_object_set_new(o, "op", json_string(ast_op_name(b->op)));
        json_object_set_new(o, "left", node_json(b->left));
        json_object_set_new(o, "right", node_json(b->right));
        return o;
    }
    case AST_BETWEEN: {
        const ast_between *b = (const ast_between *)n;
        json_object_set_new(o, "negated", json_boolean(b->negated));
        json_object_set_new(o, "value", node_json(b->value));
        json_object_set_new(o, "low", node_json(b->low));
        json_object_set_new(o, "high", node_json(b->high));
        return o;
    }
    case AST_IN: {
        const ast_in *in = (const ast_in *)n;
        json_object_set_new(o, "negated", json_boolean(in->negated));
        json_object_set_new(o, "value", node_json(in->value));
        json_object_set_new(o, "items", list_json(in->items));
        return o;
    }
    case AST_IS_NULL: {
        const ast_is_null *i = (const ast_is_null *)n;
        json_object_set_new(o, "negated", json_boolean(i->negated));
        json_object_set_new(o, "value", node_json(i->value));
        return o;
    }
    case AST_LIKE: {
        const ast_like *l = (const ast_like *)n;
        json_object_set_new(o, "negated", json_boolean(l->negated));
        json_object_set_new(o, "value", node_json(l->value));
        json_object_set_new(o, "pattern", node_json(l->pattern));
        return o;
    }
    case AST_MODEL_PROPERTY: {
        const ast_model_property *m = (const ast_model_property *)n;
        json_object_set_new(o, "property", name_json(&m->property));
        json_object_set_new(o, "model", name_json(&m->model));
        return o;
    }
    case AST_FUNC: {
        const ast_func *f = (const ast_func *)n;
        json_object_set_new(o, "name", json_string(f->name));
        json_object_set_new(o, "args", list_json(f->args));
        return o;
    }
    case AST_ARRAY:
        json_object_set_new(o, "items", list_json(((const ast_array *)n)->items));
        return o;
    case AST_OBJECT:
        json_object_set_new(o, "fields", list_json(((const ast_object *)n)->fields));
        return o;
    case AST_OBJECT_FIELD: {
        const ast_object_field *f = (const ast_object_field *)n;
        json_object_set_new(o, "key", name_json(&f->key));
        json_object_set_new(o, "value", node_json(f->value));
        return o;
    }
    }
    return o;
}

char *ast_to_json(const ast_node *node)
{
    json_t *j = node_json(node);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}
