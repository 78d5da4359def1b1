/* The parse driver: lexes a script, feeds each statement's tokens to the lemon parser,
 * and turns failures into positioned messages with the tokens that were expected. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/lexer.h"
#include "grammar/parse.h"
#include "grammar/parse_internal.h"
#include "parser.h"

void parse_action_error(parse_state *ps, ast_pos pos, size_t len, const char *fmt, ...)
{
    if (ps->failed)
        return;
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    ps->failed = true;
    ps->err_pos = pos;
    ps->err_len = len;
    ps->err_msg = arena_strdup(ps->arena, sb.data ? sb.data : "");
    strbuf_free(&sb);
}

/* ---- expected-token messages -------------------------------------------------------- */

static bool in_set(const int *set, int n, int token)
{
    for (int i = 0; i < n; i++)
        if (set[i] == token)
            return true;
    return false;
}

/* Tokens that can start an expression: reported together as "an expression". */
static const int expression_starts[] = {
    TK_NUMBER, TK_STRING, TK_IDENT, TK_LP, TK_MINUS, TK_PLUS, TK_NOT, TK_NULL,
    TK_TRUE, TK_FALSE, TK_FINETUNED, TK_SUM, TK_AVG, TK_MIN, TK_MAX,
};
/* Tokens that continue an expression: reported together as "an operator". */
static const int operators[] = {
    TK_OR, TK_AND, TK_NOT, TK_IS, TK_LIKE, TK_BETWEEN, TK_IN, TK_EQ, TK_NE,
    TK_LT, TK_LE, TK_GT, TK_GE, TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH,
};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void describe_expected(strbuf *sb, const int *set, int n)
{
    const char *items[128];
    int count = 0;
    bool expr = in_set(set, n, TK_NUMBER) && in_set(set, n, TK_IDENT) && in_set(set, n, TK_LP);
    bool ops = in_set(set, n, TK_EQ) && in_set(set, n, TK_AND) && in_set(set, n, TK_PLUS);
    bool semi = false;
    if (expr)
        items[count++] = "an expression";
    for (int i = 0; i < n; i++) {
        int t = set[i];
        if (expr && in_set(expression_starts, COUNT(expression_starts), t))
            continue;
        if (ops && in_set(operators, COUNT(operators), t))
            continue;
        if (t == TK_SEMI) {
            semi = true;
            continue;
        }
        const char *d = rq_token_display(t);
        bool dup = false;
        for (int j = 0; j < count; j++)
            dup |= strcmp(items[j], d) == 0;
        if (!dup && count < COUNT(items) - 2)
            items[count++] = d;
    }
    if (ops)
        items[count++] = "an operator";
    if (semi)
        items[count++] = "';'"; /* last: it ends the statement */
    for (int i = 0; i < count; i++) {
        if (i > 0)
            strbuf_puts(sb, i == count - 1 ? " or " : ", ");
        strbuf_puts(sb, items[i]);
    }
}

static void describe_token(strbuf *sb, const rq_token *tok)
{
    switch (tok->type) {
    case TK_IDENT:
        strbuf_printf(sb, "identifier \"%s\"", tok->str);
        break;
    case TK_STRING:
        if (tok->slen > 40)
            strbuf_printf(sb, "string \"%.37s...\"", tok->str);
        else
            strbuf_printf(sb, "string \"%s\"", tok->str);
        break;
    case TK_NUMBER:
        strbuf_printf(sb, "number %.*s", (int)tok->len, tok->start);
        break;
    case TK_HOSTPORT:
        strbuf_printf(sb, "%.*s", (int)tok->len, tok->start);
        break;
    default:
        strbuf_puts(sb, rq_token_display(tok->type));
        break;
    }
}

static char *unexpected_message(arena *a, void *parser, const rq_token *tok)
{
    int expected[128];
    int n = rq_parser_expected(parser, expected, COUNT(expected));
    strbuf sb = {0};
    if (tok->type == 0 && in_set(expected, n, TK_SEMI)) {
        strbuf_puts(&sb, "missing ';' at end of statement");
    } else {
        strbuf_puts(&sb, "unexpected ");
        describe_token(&sb, tok);
        if (n > 0) {
            strbuf_puts(&sb, ", expected ");
            describe_expected(&sb, expected, n);
        }
    }
    char *msg = arena_strdup(a, sb.data);
    strbuf_free(&sb);
    return msg;
}

/* ---- the driver ------------------------------------------------------------------- */

typedef struct driver {
    rq_script *script;
    rq_lexer lx;
    void *parser;
    parse_state ps;
    size_t cap;
    size_t ntokens;        /* tokens of the current statement fed so far */
    rq_token first;        /* its first token */
    rq_token last;         /* the last token seen */
} driver;

static void *parser_malloc(size_t n)
{
    return xmalloc(n);
}

static void begin_statement(driver *d)
{
    if (d->parser)
        rq_parserFree(d->parser, free);
    d->parser = rq_parserAlloc(parser_malloc);
    memset(&d->ps, 0, sizeof(d->ps));
    d->ps.arena = d->script->arena;
    d->ntokens = 0;
}

static rq_statement *push_statement(driver *d, size_t end)
{
    rq_script *s = d->script;
    if (s->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        s->stmts = xrealloc(s->stmts, d->cap * sizeof(*s->stmts));
    }
    rq_statement *st = &s->stmts[s->n++];
    memset(st, 0, sizeof(*st));
    st->start = d->first.pos.offset;
    st->end = end;
    st->pos = d->first.pos;
    return st;
}

static void fail_statement(driver *d, rq_error_kind kind, ast_pos pos, size_t len, const char *msg, size_t end)
{
    rq_statement *st = push_statement(d, end);
    rq_error *e = arena_alloc(d->script->arena, sizeof(*e));
    e->kind = kind;
    e->message = msg;
    e->pos = pos;
    e->len = len;
    st->error = e;
    d->script->nerrors++;
}

/* After an error, skip to the end of the statement (the next ';' or the end of input)
 * and return the offset just past it. Lexical errors while skipping are ignored. */
static size_t skip_statement(driver *d, int current)
{
    rq_token tok;
    int t = current;
    while (t != TK_SEMI && t != 0)
        t = rq_lex(&d->lx, &tok);
    return (size_t)(d->lx.cur - d->lx.src);
}

/* Position just after a token, for "missing ';'" at the end of the input. */
static ast_pos pos_after(const rq_token *tok)
{
    ast_pos p = tok->pos;
    for (size_t i = 0; i < tok->len; i++) {
        if (tok->start[i] == '\n') {
            p.line++;
            p.col = 1;
        } else {
            p.col++;
        }
    }
    p.offset += tok->len;
    return p;
}

static void feed(driver *d, int type, const rq_token *tok)
{
    rq_token *copy = arena_alloc(d->script->arena, sizeof(*copy));
    *copy = *tok;
    rq_parser(d->parser, type, copy, &d->ps);
}

rq_script *rq_parse_script(const char *src, size_t len)
{
    rq_script *s = xcalloc(1, sizeof(*s));
    s->arena = arena_new();
    char *copy = arena_alloc(s->arena, len + 1);
    memcpy(copy, src, len);
    s->src = copy;
    s->len = len;

    driver d = {0};
    d.script = s;
    rq_lexer_init(&d.lx, copy, len, s->arena);
    begin_statement(&d);

    for (;;) {
        rq_token tok;
        int t = rq_lex(&d.lx, &tok);
        if (t == TK_SEMI && d.ntokens == 0)
            continue; /* empty statement */
        if (t == 0 && d.ntokens == 0)
            break;
        if (d.ntokens == 0)
            d.first = tok;

        if (t < 0) {
            if (d.ntokens == 0)
                d.first = tok;
            const char *msg = d.lx.error;
            ast_pos pos = d.lx.error_pos;
            size_t elen = d.lx.error_len;
            fail_statement(&d, RQ_ERR_LEXICAL, pos, elen, msg, skip_statement(&d, t));
            begin_statement(&d);
            continue;
        }
        if (t == 0) {
            ast_pos at = pos_after(&d.last);
            rq_token eof = tok;
            eof.pos = at;
            fail_statement(&d, RQ_ERR_SYNTAX, at, 1, unexpected_message(s->arena, d.parser, &eof), len);
            break;
        }
        if (!rq_parser_accepts(d.parser, t)) {
            char *msg = unexpected_message(s->arena, d.parser, &tok);
            fail_statement(&d, RQ_ERR_SYNTAX, tok.pos, tok.len, msg, skip_statement(&d, t));
            begin_statement(&d);
            continue;
        }
        feed(&d, t, &tok);
        d.ntokens++;
        d.last = tok;
        if (!d.ps.failed && t == TK_SEMI) {
            rq_token eof = {0};
            eof.pos = pos_after(&tok);
            feed(&d, 0, &eof);
        }
        if (d.ps.failed) {
            ast_pos pos = d.ps.err_pos.line ? d.ps.err_pos : tok.pos;
            size_t elen = d.ps.err_pos.line ? d.ps.err_len : tok.len;
            fail_statement(&d, RQ_ERR_SYNTAX, pos, elen, d.ps.err_msg, skip_statement(&d, t));
            begin_statement(&d);
            continue;
        }
        if (t == TK_SEMI) {
            rq_statement *st = push_statement(&d, tok.pos.offset + 1);
            st->ast = d.ps.result;
            begin_statement(&d);
        }
    }
    rq_parserFree(d.parser, free);
    return s;
}

void rq_script_free(rq_script *s)
{
    if (!s)
        return;
    free(s->stmts);
    arena_free(s->arena);
    free(s);
}

/* ---- quoted calls: "random(seed=42, k=3)" ------------------------------------------ */

typedef struct call_parser {
    parse_state *ps;
    rq_lexer lx;
    rq_token tok;
    int t;
    ast_pos base;       /* position of the first byte of the parsed text */
} call_parser;

/* Map a position inside the string to the source (exact when the string has no escapes). */
static ast_pos outer_pos(const call_parser *cp, ast_pos inner)
{
    ast_pos p = inner;
    p.line = cp->base.line + inner.line - 1;
    if (inner.line == 1)
        p.col = cp->base.col + inner.col - 1;
    p.offset = cp->base.offset + inner.offset;
    return p;
}

static void call_next(call_parser *cp)
{
    cp->t = rq_lex(&cp->lx, &cp->tok);
}

static bool call_fail(call_parser *cp, const char *what)
{
    if (cp->t < 0) {
        parse_action_error(cp->ps, outer_pos(cp, cp->lx.error_pos), cp->lx.error_len, "%s",
                           cp->lx.error);
        return false;
    }
    strbuf sb = {0};
    if (cp->t == 0)
        strbuf_puts(&sb, "end of the string");
    else
        describe_token(&sb, &cp->tok);
    parse_action_error(cp->ps, outer_pos(cp, cp->tok.pos), cp->tok.len,
                       "in strategy parameters: unexpected %s, expected %s", sb.data, what);
    strbuf_free(&sb);
    return false;
}

static ast_node *call_value(call_parser *cp);

static ast_literal *call_literal(call_parser *cp, ast_literal_type type)
{
    ast_literal *l = AST_NEW(cp->ps->arena, ast_literal, AST_LITERAL, outer_pos(cp, cp->tok.pos));
    l->type = type;
    return l;
}

static ast_node *call_number(call_parser *cp, bool negate)
{
    ast_literal *l = call_literal(cp, cp->tok.is_int ? LIT_INT : LIT_FLOAT);
    l->text = cp->tok.str;
    l->ival = negate ? -cp->tok.ival : cp->tok.ival;
    l->fval = negate ? -cp->tok.fval : cp->tok.fval;
    call_next(cp);
    return &l->h;
}

static ast_node *call_value(call_parser *cp)
{
    switch (cp->t) {
    case TK_NUMBER:
        return call_number(cp, false);
    case TK_MINUS:
        call_next(cp);
        if (cp->t != TK_NUMBER)
            return call_fail(cp, "a number"), NULL;
        return call_number(cp, true);
    case TK_STRING: {
        ast_literal *l = call_literal(cp, LIT_STRING);
        l->str = cp->tok.str;
        l->len = cp->tok.slen;
        call_next(cp);
        return &l->h;
    }
    case TK_TRUE:
    case TK_FALSE: {
        ast_literal *l = call_literal(cp, LIT_BOOL);
        l->bval = cp->t == TK_TRUE;
        call_next(cp);
        return &l->h;
    }
    case TK_NULL: {
        ast_literal *l = call_literal(cp, LIT_NULL);
        call_next(cp);
        return &l->h;
    }
    default:
        if (cp->t == TK_IDENT || rq_keyword(cp->tok.start, cp->tok.len)) {
            /* a bare word (kernel=rbf) is a string */
            ast_literal *l = call_literal(cp, LIT_STRING);
            l->str = cp->tok.str;
            l->len = cp->tok.slen;
            call_next(cp);
            return &l->h;
        }
        return call_fail(cp, "a value"), NULL;
    }
}

static ast_node *call_param(call_parser *cp)
{
    if (cp->t != TK_IDENT && !(cp->t > 0 && rq_keyword(cp->tok.start, cp->tok.len)))
        return call_fail(cp, "a parameter name"), NULL;
    ast_param *p = AST_NEW(cp->ps->arena, ast_param, AST_PARAM, outer_pos(cp, cp->tok.pos));
    p->key.text = cp->tok.str;
    p->key.pos = p->h.pos;
    call_next(cp);
    if (cp->t != TK_EQ)
        return call_fail(cp, "'='"), NULL;
    call_next(cp);
    p->value = call_value(cp);
    return p->value ? &p->h : NULL;
}

ast_call *parse_call_string(parse_state *ps, const rq_token *tok)
{
    ast_call *c = AST_NEW(ps->arena, ast_call, AST_CALL, tok->pos);
    c->name.text = tok->str;
    c->name.pos = tok->pos;
    c->name.quoted = true;
    const char *open = memchr(tok->str, '(', tok->slen);
    if (!open)
        return c;

    /* name: the text before '(' without surrounding blanks */
    const char *b = tok->str, *e = open;
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    ast_pos inner_start = tok->pos;
    inner_start.col += 1; /* past the opening quote */
    inner_start.offset += 1;
    if (b == e) {
        parse_action_error(ps, inner_start, 1, "strategy \"%s\" has no name before '('", tok->str);
        return c;
    }
    c->name.text = arena_strndup(ps->arena, b, (size_t)(e - b));
    c->has_parens = true;
    c->params = ast_list_new(ps->arena);

    call_parser cp = {0};
    cp.ps = ps;
    cp.base = inner_start;
    cp.base.col += (int)(open + 1 - tok->str);
    cp.base.offset += (size_t)(open + 1 - tok->str);
    size_t rest = tok->slen - (size_t)(open + 1 - tok->str);
    char *text = arena_strndup(ps->arena, open + 1, rest);
    rq_lexer_init(&cp.lx, text, rest, ps->arena);
    call_next(&cp);
    if (cp.t == TK_RP) {
        call_next(&cp);
    } else {
        for (;;) {
            ast_node *p = call_param(&cp);
            if (!p)
                return c;
            c->params = ast_list_append(ps->arena, c->params, p);
            if (cp.t == TK_COMMA) {
                call_next(&cp);
                continue;
            }
            if (cp.t == TK_RP) {
                call_next(&cp);
                break;
            }
            call_fail(&cp, "',' or ')'");
            return c;
        }
    }
    if (cp.t != 0)
        call_fail(&cp, "the end of the string after ')'");
    return c;
}

/* ---- messages --------------------------------------------------------------------- */

char *rq_error_format(const rq_script *s, const rq_error *err, const char *filename)
{
    strbuf sb = {0};
    const char *kind = err->kind == RQ_ERR_LEXICAL ? "lexical error" : "syntax error";
    if (filename)
        strbuf_printf(&sb, "%s:", filename);
    strbuf_printf(&sb, "%d:%d: %s: %s\n", err->pos.line, err->pos.col, kind, err->message);

    /* the source line, tabs kept so the caret lines up in a terminal */
    size_t off = err->pos.offset <= s->len ? err->pos.offset : s->len;
    size_t bol = off;
    while (bol > 0 && s->src[bol - 1] != '\n')
        bol--;
    size_t eol = off;
    while (eol < s->len && s->src[eol] != '\n')
        eol++;
    strbuf_append(&sb, s->src + bol, eol - bol);
    strbuf_putc(&sb, '\n');
    for (size_t i = bol; i < off; i++)
        strbuf_putc(&sb, s->src[i] == '\t' ? '\t' : ' ');
    strbuf_putc(&sb, '^');
    size_t under = err->len > 1 ? err->len - 1 : 0;
    for (size_t i = 0; i < under && off + 1 + i < eol; i++)
        strbuf_putc(&sb, '~');
    strbuf_putc(&sb, '\n');
    return strbuf_detach(&sb);
}

bool rq_text_has_statement_end(const char *text, size_t len)
{
    arena *a = arena_new();
    char *copy = arena_strndup(a, text, len);
    rq_lexer lx;
    rq_lexer_init(&lx, copy, len, a);
    rq_token tok;
    bool found = false;
    for (int t; (t = rq_lex(&lx, &tok)) != 0;) {
        if (t == TK_SEMI) {
            found = true;
            break;
        }
        if (t < 0 && lx.cur >= copy + len)
            break; /* an unterminated string or comment: the statement goes on */
    }
    arena_free(a);
    return found;
}
