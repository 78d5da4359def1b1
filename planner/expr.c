/* Expressions → SQL. Every literal becomes a $n parameter with an explicit cast; names
 * resolve to whitelisted column expressions or to paths into the table's JSON column
 * whose keys are parameters too. Types are checked here, so a type error is reported at
 * the user's token instead of as a PostgreSQL error. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "planner/internal.h"

void sql_expr_free(sql_expr *e)
{
    free(e->sql);
    free(e->text_sql);
    free(e->name);
    memset(e, 0, sizeof *e);
}

static const char *type_name(sql_type t)
{
    switch (t) {
    case ST_NUM: return "a number";
    case ST_TEXT: return "a string";
    case ST_BOOL: return "a boolean";
    case ST_DATE: return "a date";
    case ST_TIMESTAMP: return "a timestamp";
    case ST_JSON: return "a JSON field";
    case ST_JSONDOC: return "a JSON object";
    case ST_TEXTARRAY: return "a list of strings";
    case ST_NULL: return "NULL";
    case ST_ANY: break;
    }
    return "a value";
}

static sql_type column_type(col_type t)
{
    switch (t) {
    case CT_INT:
    case CT_FLOAT: return ST_NUM;
    case CT_TEXT: return ST_TEXT;
    case CT_BOOL: return ST_BOOL;
    case CT_DATE: return ST_DATE;
    case CT_TIMESTAMP: return ST_TIMESTAMP;
    case CT_JSON: return ST_JSONDOC;
    case CT_TEXTARRAY: return ST_TEXTARRAY;
    }
    return ST_TEXT;
}

/* A short rendering of a node for messages. Caller frees. */
static char *describe(const ast_node *n)
{
    char *s = planner_deparse(n);
    if (strlen(s) > 48) {
        strcpy(s + 45, "...");
    }
    return s;
}

static bool mismatch(sqlgen *g, const ast_node *bad, sql_type bad_type, const char *context)
{
    char *d = describe(bad);
    plan_semantic(g->err, bad->pos, "type mismatch: %s is %s, but %s", d, type_name(bad_type),
                  context);
    free(d);
    return false;
}

/* "$n::cast" for a new parameter. */
static char *param(sqlgen *g, const char *value, const char *cast)
{
    size_t n = plan_params_add(g->params, value);
    return xasprintf("$%zu::%s", n, cast);
}

/* ---- literals ------------------------------------------------------------------------- */

static bool valid_date(const char *s, size_t len)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d, used = 0;
    if (len != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || used != 10)
        return false;
    if (s[4] != '-' || s[7] != '-' || y < 1 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

static sql_type literal_type(const ast_literal *l)
{
    switch (l->type) {
    case LIT_INT:
    case LIT_FLOAT: return ST_NUM;
    case LIT_STRING: return ST_TEXT;
    case LIT_BOOL: return ST_BOOL;
    case LIT_NULL: return ST_NULL;
    }
    return ST_NULL;
}

static char *number_text(const ast_literal *l)
{
    if (l->type == LIT_INT)
        return xasprintf("%" PRId64, l->ival);
    return xasprintf("%.17g", l->fval);
}

/* A literal as the type `want` (ST_ANY: its own). context names what it meets, for the
 * mismatch message. ST_JSON: numbers are cast to numeric, for to_jsonb(). */
static bool literal_as(sqlgen *g, const ast_literal *l, sql_type want, const char *context,
                       sql_expr *out)
{
    sql_type own = literal_type(l);
    if (l->type == LIT_STRING && memchr(l->str, '\0', l->len))
        return plan_semantic(g->err, l->h.pos, "strings cannot contain NUL bytes");
    if (own == ST_NULL) {
        out->type = ST_NULL;
        out->sql = xstrdup("NULL");
        return true;
    }
    sql_type as = own;
    if (want == ST_DATE || want == ST_TIMESTAMP || want == ST_TEXTARRAY) {
        if (own != ST_TEXT)
            return mismatch(g, &l->h, own, context);
        as = want;
    } else if (want != ST_ANY && want != ST_JSON && want != own) {
        return mismatch(g, &l->h, own, context);
    }
    if (as == ST_DATE && !valid_date(l->str, l->len))
        return plan_semantic(g->err, l->h.pos, "'%.40s' is not a date: write 'YYYY-MM-DD'",
                             l->str);
    char *text = NULL;
    const char *cast = "text";
    switch (l->type) {
    case LIT_INT:
    case LIT_FLOAT:
        text = number_text(l);
        cast = want == ST_JSON ? "numeric" : l->type == LIT_INT ? "bigint" : "double precision";
        break;
    case LIT_STRING:
        text = xstrndup(l->str, l->len);
        cast = as == ST_DATE ? "date" : as == ST_TIMESTAMP ? "timestamptz" : "text";
        break;
    case LIT_BOOL:
        text = xstrdup(l->bval ? "true" : "false");
        cast = "boolean";
        break;
    case LIT_NULL:
        break;
    }
    out->type = as == ST_TEXTARRAY ? ST_TEXT : as;
    out->sql = param(g, text, cast);
    free(text);
    return true;
}

/* ---- names ---------------------------------------------------------------------------- */

static char *joined_name(const ast_name *parts, size_t n)
{
    strbuf sb = {0};
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_putc(&sb, '.');
        strbuf_puts(&sb, parts[i].text);
    }
    return strbuf_detach(&sb);
}

/* `t.col`-style qualifiers: the FROM name or the table's own name. */
static bool is_qualifier(const sqlgen *g, const char *name)
{
    plan_table t;
    if (g->from_name && strcmp(name, g->from_name) == 0)
        return true;
    return planner_table_lookup(name, &t) && t == g->table;
}

/* A path into a JSON column; every key is a parameter. */
static void json_path(sqlgen *g, const char *column_sql, const ast_name *keys, size_t n,
                      sql_expr *out)
{
    strbuf j = {0}, t = {0};
    strbuf_printf(&j, "(%s", column_sql);
    strbuf_printf(&t, "(%s", column_sql);
    for (size_t i = 0; i < n; i++) {
        char *p = param(g, keys[i].text, "text");
        strbuf_printf(&j, " -> %s", p);
        strbuf_printf(&t, " %s %s", i + 1 == n ? "->>" : "->", p);
        free(p);
    }
    strbuf_putc(&j, ')');
    strbuf_putc(&t, ')');
    out->type = ST_JSON;
    out->sql = strbuf_detach(&j);
    out->text_sql = strbuf_detach(&t);
}

static bool unknown_column(sqlgen *g, const ast_column_ref *c, const char *name)
{
    const catalog_table *tab = catalog_table_get(g->table);
    const char *near = catalog_suggest_column(g->table, name);
    if (near)
        return plan_semantic(g->err, c->h.pos,
                             "unknown column \"%s\" in %s (did you mean %s?); a field of the "
                             "%s is written %s.%s",
                             name, tab->name, near, tab->json_column, tab->json_column, name);
    return plan_semantic(g->err, c->h.pos,
                         "unknown column \"%s\" in %s; a field of the %s is written %s.%s", name,
                         tab->name, tab->json_column, tab->json_column, name);
}

/* A single name that is not a column of this table. */
static bool compile_field_name(sqlgen *g, const ast_column_ref *c, const ast_name *part,
                               name_mode mode, sql_expr *out)
{
    const catalog_table *tab = catalog_table_get(g->table);
    const catalog_column *other = catalog_column_find_entity(tab->entity, part->text);
    if (other)
        return plan_semantic(g->err, c->h.pos, "column \"%s\" does not exist in %s", part->text,
                             tab->name);
    bool known = catalog_known_spec_key(tab->entity, part->text);
    if (mode == NAMES_STRICT && !known)
        return unknown_column(g, c, part->text);
    const char *near = catalog_suggest_column(g->table, part->text);
    if (!known && near)
        plan_add_notice(g->plan,
                        "\"%s\" is not a column of %s: it is read as %s.%s (did you mean %s?)",
                        part->text, tab->name, tab->json_column, part->text, near);
    const catalog_column *json = catalog_column_find(g->table, tab->json_column);
    json_path(g, json->sql, part, 1, out);
    return true;
}

/* Column, JSON path, or (bare_ok, on the right of a comparison) a bare word = a string. */
static bool compile_column_ref(sqlgen *g, const ast_column_ref *c, sql_type want, name_mode mode,
                               bool bare_ok, const char *context, sql_expr *out)
{
    const ast_name *parts = c->parts;
    size_t n = c->nparts;
    if (n > 1 && !parts[0].quoted && is_qualifier(g, parts[0].text)) {
        parts++;
        n--;
    }
    const catalog_table *tab = catalog_table_get(g->table);
    const catalog_column *col = catalog_column_find(g->table, parts[0].text);
    out->name = joined_name(parts, n);
    if (n == 1 && col) {
        out->type = column_type(col->type);
        out->sql = xstrdup(col->sql);
        return true;
    }
    if (n == 1) {
        if (bare_ok && !parts[0].quoted && !catalog_column_find_entity(tab->entity, parts[0].text)) {
            plan_add_notice(g->plan,
                            "%s is not a column: read as the string '%s' (quote strings to be "
                            "sure)",
                            parts[0].text, parts[0].text);
            ast_literal lit = {.h = c->h, .type = LIT_STRING};
            lit.h.kind = AST_LITERAL;
            lit.str = parts[0].text;
            lit.len = strlen(parts[0].text);
            free(out->name);
            out->name = NULL;
            return literal_as(g, &lit, want, context, out);
        }
        return compile_field_name(g, c, &parts[0], mode, out);
    }
    if (col && col->type == CT_JSON) {
        json_path(g, col->sql, parts + 1, n - 1, out);
        return true;
    }
    if (col)
        return plan_semantic(g->err, c->h.pos,
                             "%s is %s, not a JSON column: %s has no fields", parts[0].text,
                             type_name(column_type(col->type)), parts[0].text);
    const catalog_column *json = catalog_column_find(g->table, tab->json_column);
    json_path(g, json->sql, parts, n, out);
    return true;
}

/* ---- the recursive compiler ----------------------------------------------------------- */

enum { F_BARE = 1 };

static bool compile(sqlgen *g, const ast_node *n, sql_type want, name_mode mode, int flags,
                    const char *context, sql_expr *out);

static bool is_literal(const ast_node *n)
{
    return n->kind == AST_LITERAL;
}

/* The literal type to ask for when the other side has type t. */
static sql_type want_for(sql_type t)
{
    switch (t) {
    case ST_NUM:
    case ST_TEXT:
    case ST_BOOL:
    case ST_DATE:
    case ST_TIMESTAMP:
    case ST_JSON:
    case ST_TEXTARRAY: return t;
    default: return ST_ANY;
    }
}

/* "num_params is a number" for messages about what the other side met. */
static char *context_of(const ast_node *n, sql_type t)
{
    char *d = describe(n);
    char *s = xasprintf("%s is %s", d, type_name(t));
    free(d);
    return s;
}

/* A JSON field read as a typed SQL value (NULL when it holds another JSON type). */
static char *json_as(const char *j, sql_type t)
{
    switch (t) {
    case ST_NUM: return xasprintf("(CASE WHEN jsonb_typeof(%s) = 'number' THEN (%s)::numeric END)", j, j);
    case ST_BOOL: return xasprintf("(CASE WHEN jsonb_typeof(%s) = 'boolean' THEN (%s)::boolean END)", j, j);
    default: return xasprintf("(CASE WHEN jsonb_typeof(%s) = 'string' THEN (%s #>> '{}') END)", j, j);
    }
}

/* A condition: boolean, or a JSON field (true when it holds JSON true). */
static bool as_condition(sqlgen *g, const ast_node *n, sql_expr *e, char **sql)
{
    if (e->type == ST_BOOL) {
        *sql = e->sql;
        e->sql = NULL;
        return true;
    }
    if (e->type == ST_JSON) {
        *sql = xasprintf("(%s = 'true'::jsonb)", e->sql);
        return true;
    }
    char *d = describe(n);
    plan_semantic(g->err, n->pos, "a condition is needed here, but %s is %s", d,
                  type_name(e->type));
    free(d);
    return false;
}

static bool compile_condition(sqlgen *g, const ast_node *n, char **sql)
{
    sql_expr e = {0};
    bool ok = compile(g, n, ST_BOOL, NAMES_WHERE, 0, "a condition is needed here", &e) &&
              as_condition(g, n, &e, sql);
    sql_expr_free(&e);
    return ok;
}

static const char *sql_op(ast_op op)
{
    switch (op) {
    case OP_EQ: return "=";
    case OP_NE: return "<>";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    default: return "?";
    }
}

static bool null_comparison(sqlgen *g, const ast_node *at)
{
    return plan_semantic(g->err, at->pos,
                         "a comparison with NULL is never true: write IS NULL or IS NOT NULL");
}

/* Two compiled operands of a comparison → SQL. l_node/r_node locate errors. */
static bool emit_compare(sqlgen *g, ast_op op, const ast_node *l_node, sql_expr *l,
                         const ast_node *r_node, sql_expr *r, sql_expr *out)
{
    const char *o = sql_op(op);
    bool equality = op == OP_EQ || op == OP_NE;
    if (l->type == ST_NULL || r->type == ST_NULL)
        return null_comparison(g, l->type == ST_NULL ? l_node : r_node);
    if (l->type == ST_JSONDOC || r->type == ST_JSONDOC) {
        const ast_node *at = l->type == ST_JSONDOC ? l_node : r_node;
        char *d = describe(at);
        plan_semantic(g->err, at->pos,
                      "%s is a whole JSON object: compare one of its fields, e.g. %s.extractor", d, d);
        free(d);
        return false;
    }
    out->type = ST_BOOL;
    if (l->type == ST_TEXTARRAY || r->type == ST_TEXTARRAY) {
        sql_expr *arr = l->type == ST_TEXTARRAY ? l : r, *val = arr == l ? r : l;
        const ast_node *arr_node = arr == l ? l_node : r_node, *val_node = arr == l ? r_node : l_node;
        if (!equality || val->type != ST_TEXT) {
            char *d = describe(arr_node);
            if (equality)
                mismatch(g, val_node, val->type, "tags = … takes a string");
            else
                plan_semantic(g->err, arr_node->pos,
                              "%s is a list of strings: only = 'x' (has the tag) and != 'x' apply", d);
            free(d);
            return false;
        }
        out->sql = xasprintf(op == OP_EQ ? "(%s = ANY(%s))" : "(NOT (%s = ANY(%s)))", val->sql, arr->sql);
        return true;
    }
    if (l->type == ST_JSON && r->type == ST_JSON) {
        out->sql = xasprintf("(%s %s %s)", l->sql, o, r->sql);
        return true;
    }
    if (l->type == ST_JSON || r->type == ST_JSON) {
        sql_expr *j = l->type == ST_JSON ? l : r, *v = j == l ? r : l;
        const ast_node *v_node = j == l ? r_node : l_node;
        char *js, *vs;
        if (equality) {
            js = xstrdup(j->sql);
            vs = xasprintf("to_jsonb(%s)", v->sql);
        } else if (v->type == ST_NUM || v->type == ST_TEXT || v->type == ST_BOOL) {
            js = json_as(j->sql, v->type);
            vs = xstrdup(v->sql);
        } else {
            return mismatch(g, v_node, v->type,
                            "a JSON field can only be ordered against numbers, strings and booleans");
        }
        out->sql = j == l ? xasprintf("(%s %s %s)", js, o, vs) : xasprintf("(%s %s %s)", vs, o, js);
        free(js);
        free(vs);
        return true;
    }
    bool dates = (l->type == ST_DATE || l->type == ST_TIMESTAMP) &&
                 (r->type == ST_DATE || r->type == ST_TIMESTAMP);
    if (l->type != r->type && !dates) {
        bool blame_right = is_literal(r_node) || !is_literal(l_node);
        char *ctx = blame_right ? context_of(l_node, l->type) : context_of(r_node, r->type);
        mismatch(g, blame_right ? r_node : l_node, blame_right ? r->type : l->type, ctx);
        free(ctx);
        return false;
    }
    out->sql = xasprintf("(%s %s %s)", l->sql, o, r->sql);
    return true;
}

/* Compiles two operands: the non-literal first, so a literal takes the other's type;
 * the right one may be a bare word. */
static bool compile_pair(sqlgen *g, const ast_node *ln, const ast_node *rn, sql_expr *l,
                         sql_expr *r)
{
    bool ok;
    if (is_literal(ln) && !is_literal(rn)) {
        ok = compile(g, rn, ST_ANY, NAMES_WHERE, F_BARE, "", r);
        char *ctx = ok ? context_of(rn, r->type) : NULL;
        ok = ok && compile(g, ln, want_for(r->type), NAMES_WHERE, 0, ctx, l);
        free(ctx);
    } else {
        ok = compile(g, ln, ST_ANY, NAMES_WHERE, 0, "", l);
        char *ctx = ok ? context_of(ln, l->type) : NULL;
        ok = ok && compile(g, rn, want_for(l->type), NAMES_WHERE, F_BARE, ctx, r);
        free(ctx);
    }
    return ok;
}

static bool compile_compare(sqlgen *g, const ast_binary *b, sql_expr *out)
{
    sql_expr l = {0}, r = {0};
    bool ok = compile_pair(g, b->left, b->right, &l, &r) &&
              emit_compare(g, b->op, b->left, &l, b->right, &r, out);
    sql_expr_free(&l);
    sql_expr_free(&r);
    return ok;
}

/* An operand of arithmetic, as a numeric SQL expression. */
static bool numeric_operand(sqlgen *g, const ast_node *n, const char *context, name_mode mode,
                            char **sql)
{
    sql_expr e = {0};
    if (!compile(g, n, ST_NUM, mode, 0, context, &e))
        return false;
    bool ok = true;
    if (e.type == ST_JSON)
        *sql = json_as(e.sql, ST_NUM);
    else if (e.type == ST_NUM) {
        *sql = e.sql;
        e.sql = NULL;
    } else
        ok = mismatch(g, n, e.type, context);
    sql_expr_free(&e);
    return ok;
}

static bool compile_arith(sqlgen *g, const ast_binary *b, name_mode mode, sql_expr *out)
{
    char *ctx = xasprintf("%s needs numbers", ast_op_name(b->op));
    char *l = NULL, *r = NULL;
    bool ok = numeric_operand(g, b->left, ctx, mode, &l) && numeric_operand(g, b->right, ctx, mode, &r);
    if (ok) {
        out->type = ST_NUM;
        /* numeric division: 7 / 2 is 3.5, as a user expects, not 3 */
        out->sql = b->op == OP_DIV ? xasprintf("((%s)::numeric / %s)", l, r)
                                   : xasprintf("(%s %s %s)", l, sql_op(b->op), r);
    }
    free(ctx);
    free(l);
    free(r);
    return ok;
}

static bool compile_logic(sqlgen *g, const ast_binary *b, sql_expr *out)
{
    char *l = NULL, *r = NULL;
    bool ok = compile_condition(g, b->left, &l) && compile_condition(g, b->right, &r);
    if (ok) {
        out->type = ST_BOOL;
        out->sql = xasprintf("(%s %s %s)", l, b->op == OP_AND ? "AND" : "OR", r);
    }
    free(l);
    free(r);
    return ok;
}

static bool compile_unary(sqlgen *g, const ast_unary *u, name_mode mode, sql_expr *out)
{
    char *x = NULL;
    bool ok;
    if (u->op == OP_NOT) {
        ok = compile_condition(g, u->operand, &x);
        if (ok)
            out->sql = xasprintf("(NOT %s)", x);
        out->type = ST_BOOL;
    } else {
        ok = numeric_operand(g, u->operand, "unary - needs a number", mode, &x);
        if (ok)
            out->sql = xasprintf("(- %s)", x);
        out->type = ST_NUM;
    }
    free(x);
    return ok;
}

/* BETWEEN: the bounds take the value's type; a JSON field is read as the bounds' type. */
static bool compile_between(sqlgen *g, const ast_between *b, sql_expr *out)
{
    sql_expr v = {0}, lo = {0}, hi = {0};
    bool ok = compile_pair(g, b->value, b->low, &v, &lo);
    char *ctx = ok ? context_of(b->low, lo.type) : NULL;
    ok = ok && compile(g, b->high, want_for(lo.type), NAMES_WHERE, F_BARE, ctx, &hi);
    free(ctx);
    if (ok) {
        sql_expr tmp = {0};
        /* each bound must be comparable with the value: reuse the comparison rules */
        ok = emit_compare(g, OP_LE, b->low, &lo, b->value, &v, &tmp);
        sql_expr_free(&tmp);
        ok = ok && emit_compare(g, OP_LE, b->value, &v, b->high, &hi, &tmp);
        sql_expr_free(&tmp);
    }
    if (ok && v.type == ST_TEXTARRAY)
        ok = plan_semantic(g->err, b->value->pos, "BETWEEN does not apply to a list of strings");
    if (ok) {
        char *vs = v.type == ST_JSON ? json_as(v.sql, lo.type == ST_JSON ? hi.type : lo.type)
                                     : xstrdup(v.sql);
        out->type = ST_BOOL;
        out->sql = xasprintf("(%s %sBETWEEN %s AND %s)", vs, b->negated ? "NOT " : "", lo.sql, hi.sql);
        free(vs);
    }
    sql_expr_free(&v);
    sql_expr_free(&lo);
    sql_expr_free(&hi);
    return ok;
}

/* IN: each item is compared like `=`; tags IN (…) means "has one of these tags". */
static bool compile_in(sqlgen *g, const ast_in *in, sql_expr *out)
{
    sql_expr v = {0};
    if (!compile(g, in->value, ST_ANY, NAMES_WHERE, 0, "", &v))
        return false;
    if (v.type == ST_NULL || v.type == ST_JSONDOC) {
        sql_expr_free(&v);
        return plan_semantic(g->err, in->value->pos, "IN needs a column, a field or a value on its left");
    }
    char *ctx = context_of(in->value, v.type);
    strbuf items = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < in->items->n; i++) {
        const ast_node *item_node = in->items->items[i];
        sql_expr item = {0};
        ok = compile(g, item_node, want_for(v.type), NAMES_WHERE, F_BARE, ctx, &item);
        if (ok && item.type == ST_NULL)
            ok = null_comparison(g, item_node);
        if (ok) {
            sql_expr cmp = {0};
            ok = emit_compare(g, OP_EQ, in->value, &v, item_node, &item, &cmp); /* type check */
            sql_expr_free(&cmp);
        }
        if (ok) {
            if (i)
                strbuf_puts(&items, ", ");
            if (v.type == ST_JSON && item.type != ST_JSON)
                strbuf_printf(&items, "to_jsonb(%s)", item.sql);
            else
                strbuf_puts(&items, item.sql);
        }
        sql_expr_free(&item);
    }
    if (ok) {
        out->type = ST_BOOL;
        if (v.type == ST_TEXTARRAY)
            out->sql = xasprintf("(%s(%s && ARRAY[%s]))", in->negated ? "NOT " : "", v.sql, items.data);
        else
            out->sql = xasprintf("(%s %sIN (%s))", v.sql, in->negated ? "NOT " : "", items.data);
    }
    free(ctx);
    strbuf_free(&items);
    sql_expr_free(&v);
    return ok;
}

static bool compile_is_null(sqlgen *g, const ast_is_null *n, sql_expr *out)
{
    sql_expr v = {0};
    if (!compile(g, n->value, ST_ANY, NAMES_WHERE, 0, "", &v))
        return false;
    out->type = ST_BOOL;
    if (v.type == ST_JSON) /* a missing key and a JSON null are both "null" */
        out->sql = xasprintf("(COALESCE(jsonb_typeof(%s), 'null') %s 'null')", v.sql,
                             n->negated ? "<>" : "=");
    else
        out->sql = xasprintf("(%s IS %sNULL)", v.sql, n->negated ? "NOT " : "");
    sql_expr_free(&v);
    return true;
}

/* A string operand of LIKE (JSON fields as their text). */
static bool text_operand(sqlgen *g, const ast_node *n, int flags, char **sql)
{
    sql_expr e = {0};
    if (!compile(g, n, ST_TEXT, NAMES_WHERE, flags, "LIKE needs strings", &e))
        return false;
    bool ok = true;
    if (e.type == ST_JSON) {
        *sql = e.text_sql;
        e.text_sql = NULL;
    } else if (e.type == ST_TEXT) {
        *sql = e.sql;
        e.sql = NULL;
    } else if (e.type == ST_NULL) {
        ok = null_comparison(g, n);
    } else {
        ok = mismatch(g, n, e.type, "LIKE needs strings");
    }
    sql_expr_free(&e);
    return ok;
}

static bool compile_like(sqlgen *g, const ast_like *l, sql_expr *out)
{
    char *v = NULL, *p = NULL;
    bool ok = text_operand(g, l->value, 0, &v) && text_operand(g, l->pattern, F_BARE, &p);
    if (ok) {
        out->type = ST_BOOL;
        out->sql = xasprintf("(%s %sLIKE %s)", v, l->negated ? "NOT " : "", p);
    }
    free(v);
    free(p);
    return ok;
}

/* The few scalar functions RankQL knows; aggregates belong to benchmark ORDER BY. */
static bool compile_func(sqlgen *g, const ast_func *f, name_mode mode, sql_expr *out)
{
    static const char *const aggregates[] = {"AVG", "SUM", "MIN", "MAX", NULL};
    if (strcasecmp(f->name, "count") == 0)
        return plan_semantic(g->err, f->h.pos,
                             "COUNT() is not supported: every result carries its row_count");
    for (size_t i = 0; aggregates[i]; i++)
        if (strcasecmp(f->name, aggregates[i]) == 0)
            return plan_semantic(g->err, f->h.pos,
                                 "%s() is an aggregate: it is only allowed in ORDER BY of a "
                                 "TESTED ON BENCHMARK query",
                                 aggregates[i]);
    bool text_fn = strcasecmp(f->name, "lower") == 0 || strcasecmp(f->name, "upper") == 0;
    bool length = strcasecmp(f->name, "length") == 0;
    bool num_fn = strcasecmp(f->name, "abs") == 0 || strcasecmp(f->name, "round") == 0;
    if (!text_fn && !length && !num_fn)
        return plan_semantic(g->err, f->h.pos,
                             "unknown function %s (known: lower, upper, length, abs, round)", f->name);
    size_t nargs = f->args ? f->args->n : 0;
    if (nargs != 1 || f->args->items[0]->kind == AST_STAR)
        return plan_semantic(g->err, f->h.pos, "%s() takes one argument", f->name);
    const ast_node *arg = f->args->items[0];
    char *lname = xstrdup(f->name);
    for (char *c = lname; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    char *x = NULL;
    bool ok;
    if (num_fn) {
        ok = numeric_operand(g, arg, "this function needs a number", mode, &x);
        out->type = ST_NUM;
        if (ok)
            out->sql = strcmp(lname, "round") == 0 ? xasprintf("round((%s)::numeric)", x)
                                                   : xasprintf("abs(%s)", x);
    } else {
        sql_expr e = {0};
        ok = compile(g, arg, ST_TEXT, mode, 0, "this function needs a string", &e);
        if (ok && length && e.type == ST_TEXTARRAY) {
            x = xasprintf("cardinality(%s)", e.sql);
        } else if (ok && (e.type == ST_TEXT || e.type == ST_JSON)) {
            const char *s = e.type == ST_JSON ? e.text_sql : e.sql;
            x = length ? xasprintf("length(%s)", s) : xasprintf("%s(%s)", lname, s);
        } else if (ok) {
            ok = mismatch(g, arg, e.type, "this function needs a string");
        }
        sql_expr_free(&e);
        out->type = length ? ST_NUM : ST_TEXT;
        if (ok) {
            out->sql = x;
            x = NULL;
        }
    }
    out->name = lname;
    free(x);
    return ok;
}

/* ---- properties of named models (latency_ms OF "resnet50") ------------------------------ */

static const struct { const char *property, *column; } ref_columns[] = {
    {"latency_ms", "latency_ms"}, {"num_params", "num_params"}, {"dimension", "dimension"},
    {"up_acc", "up_acc"},         {"batch_size", "batch_size"}, {"image_size", "image_size"},
    {"token_length", "token_length"},
};

const char *plan_ref_column(const char *property)
{
    for (size_t i = 0; i < sizeof ref_columns / sizeof ref_columns[0]; i++)
        if (strcasecmp(ref_columns[i].property, property) == 0)
            return ref_columns[i].column;
    return NULL;
}

/* The value is a parameter the executor fills in after looking the model up, so the SQL
 * never reads another row and EXPLAIN can say where the number came from. */
static bool compile_model_property(sqlgen *g, const ast_model_property *m, sql_expr *out)
{
    const char *column = plan_ref_column(m->property.text);
    if (!column)
        return plan_semantic(g->err, m->property.pos,
                             "%s OF \"%s\": OF takes a numeric model property (latency_ms, "
                             "num_params, dimension, up_acc, batch_size, image_size, "
                             "token_length)",
                             m->property.text, m->model.text);
    if (catalog_table_get(g->table)->entity != ENTITY_MODELS)
        return plan_semantic(g->err, m->h.pos, "%s OF \"%s\" compares models, not %s",
                             column, m->model.text,
                             planner_entity_name(catalog_table_get(g->table)->entity));
    plan *p = g->plan;
    p->refs = xrealloc(p->refs, (p->nrefs + 1) * sizeof *p->refs);
    plan_ref *r = &p->refs[p->nrefs++];
    memset(r, 0, sizeof *r);
    r->property = xstrdup(column);
    r->model = xstrdup(m->model.text);
    r->pos = m->h.pos;
    r->param = plan_params_add(g->params, NULL);
    r->node = g->node;
    out->type = ST_NUM;
    out->sql = xasprintf("$%zu::double precision", r->param);
    out->name = xstrdup(column);
    return true;
}

static bool compile(sqlgen *g, const ast_node *n, sql_type want, name_mode mode, int flags,
                    const char *context, sql_expr *out)
{
    switch (n->kind) {
    case AST_LITERAL:
        return literal_as(g, (const ast_literal *)n, want, context, out);
    case AST_COLUMN_REF:
        return compile_column_ref(g, (const ast_column_ref *)n, want, mode, (flags & F_BARE) != 0,
                                  context, out);
    case AST_FINETUNED:
        if (catalog_table_get(g->table)->entity != ENTITY_MODELS)
            return plan_semantic(g->err, n->pos, "FINETUNED applies to models, not %s",
                                 planner_entity_name(catalog_table_get(g->table)->entity));
        out->type = ST_BOOL;
        out->sql = xstrdup("t.finetuned");
        out->name = xstrdup("finetuned");
        return true;
    case AST_UNARY:
        return compile_unary(g, (const ast_unary *)n, mode, out);
    case AST_BINARY: {
        const ast_binary *b = (const ast_binary *)n;
        if (b->op == OP_AND || b->op == OP_OR)
            return compile_logic(g, b, out);
        if (b->op >= OP_ADD)
            return compile_arith(g, b, mode, out);
        return compile_compare(g, b, out);
    }
    case AST_BETWEEN:
        return compile_between(g, (const ast_between *)n, out);
    case AST_IN:
        return compile_in(g, (const ast_in *)n, out);
    case AST_IS_NULL:
        return compile_is_null(g, (const ast_is_null *)n, out);
    case AST_LIKE:
        return compile_like(g, (const ast_like *)n, out);
    case AST_FUNC:
        return compile_func(g, (const ast_func *)n, mode, out);
    case AST_MODEL_PROPERTY:
        return compile_model_property(g, (const ast_model_property *)n, out);
    case AST_STAR:
        return plan_semantic(g->err, n->pos, "* is only allowed as the whole select list");
    default:
        return plan_semantic(g->err, n->pos, "this kind of value is not allowed here");
    }
}

/* ---- entry points --------------------------------------------------------------------- */

bool sqlgen_condition(sqlgen *g, const ast_node *cond, char **sql)
{
    *sql = NULL;
    return compile_condition(g, cond, sql);
}

bool sqlgen_value(sqlgen *g, const ast_node *expr, name_mode mode, sql_expr *out)
{
    memset(out, 0, sizeof *out);
    if (!compile(g, expr, ST_ANY, mode, 0, "", out)) {
        sql_expr_free(out);
        return false;
    }
    if (!out->name)
        out->name = xstrdup("?column?");
    return true;
}

char *sqlgen_to_jsonb(const sql_expr *e)
{
    switch (e->type) {
    case ST_JSON:
    case ST_JSONDOC: return xstrdup(e->sql);
    case ST_NULL: return xstrdup("NULL::jsonb");
    default: return xasprintf("to_jsonb(%s)", e->sql);
    }
}
