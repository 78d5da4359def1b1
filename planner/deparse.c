/* Expressions written back as RankQL text, for EXPLAIN and error messages. Display only:
 * this text never reaches the database. */
#include <inttypes.h>
#include <string.h>

#include "common/util.h"
#include "planner/planner.h"

enum { PREC_OR = 1, PREC_AND, PREC_NOT, PREC_CMP, PREC_ORDER, PREC_ADD, PREC_MUL, PREC_UNARY, PREC_ATOM };

static int precedence(const ast_node *n)
{
    switch (n->kind) {
    case AST_BINARY:
        switch (((const ast_binary *)n)->op) {
        case OP_OR: return PREC_OR;
        case OP_AND: return PREC_AND;
        case OP_EQ:
        case OP_NE: return PREC_CMP;
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE: return PREC_ORDER;
        case OP_ADD:
        case OP_SUB: return PREC_ADD;
        default: return PREC_MUL;
        }
    case AST_UNARY: return ((const ast_unary *)n)->op == OP_NOT ? PREC_NOT : PREC_UNARY;
    case AST_BETWEEN:
    case AST_IN:
    case AST_IS_NULL:
    case AST_LIKE: return PREC_CMP;
    default: return PREC_ATOM;
    }
}

/* Strings longer than this are shortened with "..." in plans and messages. */
enum { SHOW_MAX = 40 };

static void put_string(strbuf *sb, const char *s, size_t len)
{
    strbuf_putc(sb, '\'');
    size_t shown = len > SHOW_MAX ? SHOW_MAX : len;
    for (size_t i = 0; i < shown; i++) {
        if (s[i] == '\'')
            strbuf_putc(sb, '\\');
        if ((unsigned char)s[i] < 0x20)
            strbuf_printf(sb, "\\x%02x", (unsigned char)s[i]);
        else
            strbuf_putc(sb, s[i]);
    }
    if (shown < len)
        strbuf_puts(sb, "...");
    strbuf_putc(sb, '\'');
}

static void deparse(strbuf *sb, const ast_node *n);

static void child(strbuf *sb, const ast_node *c, int parent_prec, bool right)
{
    int p = precedence(c);
    bool parens = p < parent_prec || (right && p == parent_prec && p >= PREC_CMP);
    if (parens)
        strbuf_putc(sb, '(');
    deparse(sb, c);
    if (parens)
        strbuf_putc(sb, ')');
}

static void deparse_list(strbuf *sb, const ast_list *l)
{
    for (size_t i = 0; l && i < l->n; i++) {
        if (i)
            strbuf_puts(sb, ", ");
        deparse(sb, l->items[i]);
    }
}

static void deparse_literal(strbuf *sb, const ast_literal *l)
{
    switch (l->type) {
    case LIT_INT: strbuf_printf(sb, "%" PRId64, l->ival); break;
    case LIT_FLOAT: strbuf_printf(sb, "%.15g", l->fval); break;
    case LIT_STRING: put_string(sb, l->str, l->len); break;
    case LIT_BOOL: strbuf_puts(sb, l->bval ? "TRUE" : "FALSE"); break;
    case LIT_NULL: strbuf_puts(sb, "NULL"); break;
    }
}

static void deparse(strbuf *sb, const ast_node *n)
{
    switch (n->kind) {
    case AST_LITERAL: deparse_literal(sb, (const ast_literal *)n); break;
    case AST_COLUMN_REF: {
        const ast_column_ref *c = (const ast_column_ref *)n;
        for (size_t i = 0; i < c->nparts; i++) {
            if (i)
                strbuf_putc(sb, '.');
            if (c->parts[i].quoted)
                strbuf_printf(sb, "\"%.*s\"", SHOW_MAX, c->parts[i].text);
            else
                strbuf_puts(sb, c->parts[i].text);
        }
        break;
    }
    case AST_MODEL_PROPERTY: {
        const ast_model_property *m = (const ast_model_property *)n;
        strbuf_printf(sb, "%s OF \"%.*s%s\"", m->property.text, SHOW_MAX, m->model.text,
                      strlen(m->model.text) > SHOW_MAX ? "..." : "");
        break;
    }
    case AST_STAR: strbuf_putc(sb, '*'); break;
    case AST_FINETUNED: strbuf_puts(sb, "FINETUNED"); break;
    case AST_UNARY: {
        const ast_unary *u = (const ast_unary *)n;
        strbuf_puts(sb, u->op == OP_NOT ? "NOT " : "-");
        child(sb, u->operand, precedence(n), true);
        break;
    }
    case AST_BINARY: {
        const ast_binary *b = (const ast_binary *)n;
        child(sb, b->left, precedence(n), false);
        strbuf_printf(sb, " %s ", ast_op_name(b->op));
        child(sb, b->right, precedence(n), true);
        break;
    }
    case AST_BETWEEN: {
        const ast_between *b = (const ast_between *)n;
        child(sb, b->value, PREC_CMP + 1, false);
        strbuf_puts(sb, b->negated ? " NOT BETWEEN " : " BETWEEN ");
        child(sb, b->low, PREC_CMP + 1, false);
        strbuf_puts(sb, " AND ");
        child(sb, b->high, PREC_CMP + 1, false);
        break;
    }
    case AST_IN: {
        const ast_in *in = (const ast_in *)n;
        child(sb, in->value, PREC_CMP + 1, false);
        strbuf_puts(sb, in->negated ? " NOT IN (" : " IN (");
        deparse_list(sb, in->items);
        strbuf_putc(sb, ')');
        break;
    }
    case AST_IS_NULL: {
        const ast_is_null *i = (const ast_is_null *)n;
        child(sb, i->value, PREC_CMP + 1, false);
        strbuf_puts(sb, i->negated ? " IS NOT NULL" : " IS NULL");
        break;
    }
    case AST_LIKE: {
        const ast_like *l = (const ast_like *)n;
        child(sb, l->value, PREC_CMP + 1, false);
        strbuf_puts(sb, l->negated ? " NOT LIKE " : " LIKE ");
        child(sb, l->pattern, PREC_CMP + 1, false);
        break;
    }
    case AST_FUNC: {
        const ast_func *f = (const ast_func *)n;
        strbuf_printf(sb, "%s(", f->name);
        deparse_list(sb, f->args);
        strbuf_putc(sb, ')');
        break;
    }
    default: strbuf_puts(sb, "?"); break;
    }
}

char *planner_deparse(const ast_node *expr)
{
    strbuf sb = {0};
    deparse(&sb, expr);
    return strbuf_detach(&sb);
}
