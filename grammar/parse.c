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

/* The clauses of SELECT and of RANK in the order they must be written. */
static const int select_clauses[] = {
    TK_WHERE, TK_ORDER, TK_TRAINED, TK_TESTED, TK_CLASSIFIED, TK_LIMIT, TK_OTHER, TK_CHUNK,
    TK_BUDGET, TK_ETA, TK_WAIT,
};
static const int rank_clauses[] = {
    TK_WHERE, TK_ORDER, TK_TRAINED, TK_TESTED, TK_BY, TK_LIMIT, TK_WAIT,
};
/* Expected clause keywords are listed in this order (after punctuation and other words),
 * then the set operators, so "expected …" reads like the statement's own layout. */
static const int clause_listing[] = {
    TK_WHERE, TK_ORDER, TK_TRAINED, TK_TESTED, TK_CLASSIFIED, TK_BY, TK_LIMIT, TK_OTHER,
    TK_CHUNK, TK_BUDGET, TK_ETA, TK_WAIT, TK_UNION, TK_INTERSECT, TK_EXCEPT,
};

static int index_of(const int *set, int n, int token)
{
    for (int i = 0; i < n; i++)
        if (set[i] == token)
            return i;
    return -1;
}

/* Statement keywords, most used first, after '(' (a parenthesised query). */
static const int statement_listing[] = {
    TK_SELECT, TK_RANK, TK_EXPLAIN, TK_DECLARE, TK_REGISTER, TK_FINETUNE, TK_USE, TK_PRINT,
    TK_PURGE, TK_SHOW, TK_CANCEL, TK_CHECK,
};

static int listing_key(int token)
{
    int i = index_of(clause_listing, COUNT(clause_listing), token);
    if (i >= 0)
        return 1000 + i;
    i = index_of(statement_listing, COUNT(statement_listing), token);
    return i < 0 ? token : 900 + i;
}

static void describe_expected(strbuf *sb, const int *unsorted, int n)
{
    const char *items[128];
    int count = 0;
    int set[128];
    if (n > COUNT(set))
        n = COUNT(set);
    for (int i = 0; i < n; i++) { /* insertion sort by listing_key: n is small */
        int t = unsorted[i], j = i;
        for (; j > 0 && listing_key(set[j - 1]) > listing_key(t); j--)
            set[j] = set[j - 1];
        set[j] = t;
    }
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

/* A string's text for a message: long ones cut after 37 bytes (at a character boundary)
 * and control characters escaped, so the message stays one line of valid UTF-8. */
static void describe_string(strbuf *sb, const char *str, size_t len)
{
    bool cut = len > 40;
    size_t n = strnlen(str, cut ? 37 : len);
    if (cut && n == 37)
        while (n > 0 && ((unsigned char)str[n] & 0xC0) == 0x80)
            n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str[i];
        if (c == '\n')
            strbuf_puts(sb, "\\n");
        else if (c == '\t')
            strbuf_puts(sb, "\\t");
        else if (c == '\r')
            strbuf_puts(sb, "\\r");
        else if (c < 0x20 || c == 0x7F)
            strbuf_printf(sb, "\\x%02X", c);
        else
            strbuf_putc(sb, (char)c);
    }
    if (cut)
        strbuf_puts(sb, "...");
}

static void describe_token(strbuf *sb, const rq_token *tok)
{
    switch (tok->type) {
    case TK_IDENT:
        strbuf_printf(sb, "identifier \"%s\"", tok->str);
        break;
    case TK_STRING:
        strbuf_puts(sb, "string \"");
        describe_string(sb, tok->str, tok->slen);
        strbuf_putc(sb, '"');
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

/* "unexpected X, expected …", with note (if any) appended in parentheses. */
static char *unexpected_message(arena *a, void *parser, const rq_token *tok, const char *note)
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
    if (note)
        strbuf_printf(&sb, " (%s)", note);
    char *msg = arena_strdup(a, sb.data);
    strbuf_free(&sb);
    return msg;
}

/* ---- the driver ------------------------------------------------------------------- */

typedef struct open_bracket {
    int type;              /* TK_LP, TK_LBRACKET or TK_LBRACE */
    ast_pos pos;
} open_bracket;

enum { MAX_OPEN_BRACKETS = 256 }; /* the parser's own stack overflows well before */

typedef struct driver {
    rq_script *script;
    rq_lexer lx;
    void *parser;
    parse_state ps;
    size_t cap;
    size_t ntokens;        /* tokens of the current statement fed so far */
    rq_token first;        /* its first token */
    rq_token last;         /* the last token seen */
    /* for messages: brackets still open, and the last clause keyword of the current
     * SELECT or RANK (index into select_clauses / rank_clauses, -1 before any) */
    open_bracket open[MAX_OPEN_BRACKETS];
    size_t nopen;
    bool in_rank;
    int last_clause;
    int prev;              /* type of the token before the current one */
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
    d->nopen = 0;
    d->in_rank = false;
    d->last_clause = -1;
    d->prev = 0;
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

static int closer_of(int open)
{
    return open == TK_LP ? TK_RP : open == TK_LBRACKET ? TK_RBRACKET : TK_RBRACE;
}

static int opener_of(int close)
{
    return close == TK_RP ? TK_LP : close == TK_RBRACKET ? TK_LBRACKET : TK_LBRACE;
}

/* Bookkeeping for messages on each token the parser takes. */
static void track(driver *d, int t)
{
    if (t == TK_LP || t == TK_LBRACKET || t == TK_LBRACE) {
        if (d->nopen < MAX_OPEN_BRACKETS)
            d->open[d->nopen] = (open_bracket){t, d->last.pos};
        d->nopen++;
    } else if ((t == TK_RP || t == TK_RBRACKET || t == TK_RBRACE) && d->nopen > 0) {
        d->nopen--; /* the parser took it, so it closes the innermost bracket */
    } else if (t == TK_SELECT || t == TK_RANK) {
        d->in_rank = t == TK_RANK;
        d->last_clause = -1;
    } else {
        const int *clauses = d->in_rank ? rank_clauses : select_clauses;
        int n = d->in_rank ? COUNT(rank_clauses) : COUNT(select_clauses);
        int i = index_of(clauses, n, t);
        /* WAIT and ETA are not reserved: count them only where they are the keyword, not a
         * name; BY starts RANK's strategy clause, but not in ORDER BY or CLASSIFIED BY */
        if (i >= 0 && ((t != TK_WAIT && t != TK_ETA) || rq_parser_accepts_keyword(d->parser, t))
            && (t != TK_BY || (d->prev != TK_ORDER && d->prev != TK_CLASSIFIED)))
            d->last_clause = i;
    }
    d->prev = t;
}

/* A note on brackets for an unexpected token: an unclosed one when the statement ends
 * or a different bracket closes; NULL when brackets are not the problem. */
static const char *bracket_note(driver *d, const rq_token *tok)
{
    int t = tok->type;
    bool closer = t == TK_RP || t == TK_RBRACKET || t == TK_RBRACE;
    if (d->nopen == 0 || d->nopen > MAX_OPEN_BRACKETS)
        return NULL;
    const open_bracket *top = &d->open[d->nopen - 1];
    if (t != 0 && t != TK_SEMI && !(closer && closer_of(top->type) != t))
        return NULL;
    const char *open = top->type == TK_LP ? "(" : top->type == TK_LBRACKET ? "[" : "{";
    char *s = xasprintf("the '%s' at %d:%d is not closed", open, top->pos.line, top->pos.col);
    const char *note = arena_strdup(d->script->arena, s);
    free(s);
    return note;
}

/* Message for an unexpected token, with the most useful explanation available. */
static char *unexpected_token_message(driver *d, const rq_token *tok)
{
    arena *a = d->script->arena;
    int t = tok->type;
    /* a closing bracket with no bracket of its kind open */
    bool open_of_kind = false;
    for (size_t k = 0; k < d->nopen && k < MAX_OPEN_BRACKETS; k++)
        open_of_kind |= d->open[k].type == opener_of(t);
    if ((t == TK_RP || t == TK_RBRACKET || t == TK_RBRACE) && !open_of_kind
        && d->nopen <= MAX_OPEN_BRACKETS) {
        const char *c = rq_token_display(t), *o = rq_token_display(opener_of(t));
        char *s = xasprintf("unexpected %s with no matching %s", c, o);
        char *msg = arena_strdup(a, s);
        free(s);
        return msg;
    }
    /* a SELECT or RANK clause written after a later one */
    const int *clauses = d->in_rank ? rank_clauses : select_clauses;
    int n = d->in_rank ? COUNT(rank_clauses) : COUNT(select_clauses);
    int i = index_of(clauses, n, t);
    if (i >= 0 && d->last_clause >= 0 && i <= d->last_clause) {
        strbuf sb = {0};
        if (i == d->last_clause) {
            strbuf_printf(&sb, "%s given twice", rq_token_display(t));
        } else {
            strbuf_printf(&sb, "%s must come before %s (%s clauses go in the order ",
                          rq_token_display(t), rq_token_display(clauses[d->last_clause]),
                          d->in_rank ? "RANK" : "SELECT");
            for (int k = 0; k < n; k++)
                strbuf_printf(&sb, "%s%s", k ? ", " : "", rq_token_display(clauses[k]));
            strbuf_putc(&sb, ')');
        }
        char *msg = arena_strdup(a, sb.data);
        strbuf_free(&sb);
        return msg;
    }
    return unexpected_message(a, d->parser, tok, bracket_note(d, tok));
}

/* Tokens that begin a statement: after a complete statement they mean a missing ';'. */
static bool starts_statement(int t)
{
    switch (t) {
    case TK_SELECT: case TK_RANK: case TK_EXPLAIN: case TK_DECLARE: case TK_REGISTER:
    case TK_USE: case TK_PRINT: case TK_FINETUNE: case TK_PURGE: case TK_SHOW: case TK_CANCEL:
    case TK_CHECK:
        return true;
    default:
        return false;
    }
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

    driver *d = xcalloc(1, sizeof(*d)); /* large: keep it off the stack */
    d->script = s;
    rq_lexer_init(&d->lx, copy, len, s->arena);
    begin_statement(d);

    rq_token pending;      /* a token to parse again as the start of the next statement */
    bool have_pending = false;
    for (;;) {
        rq_token tok;
        int t;
        if (have_pending) {
            tok = pending;
            t = tok.type;
            have_pending = false;
        } else {
            t = rq_lex(&d->lx, &tok);
        }
        if (t == TK_SEMI && d->ntokens == 0)
            continue; /* empty statement */
        if (t == 0 && d->ntokens == 0)
            break;
        if (d->ntokens == 0)
            d->first = tok;

        if (t < 0) {
            const char *msg = d->lx.error;
            ast_pos pos = d->lx.error_pos;
            size_t elen = d->lx.error_len;
            fail_statement(d, RQ_ERR_LEXICAL, pos, elen, msg, skip_statement(d, t));
            begin_statement(d);
            continue;
        }
        if (t == 0) {
            ast_pos at = pos_after(&d->last);
            rq_token eof = tok;
            eof.pos = at;
            fail_statement(d, RQ_ERR_SYNTAX, at, 1, unexpected_token_message(d, &eof), len);
            break;
        }
        if (!rq_parser_accepts(d->parser, t)) {
            if (starts_statement(t) && rq_parser_accepts(d->parser, TK_SEMI)) {
                /* "… FROM t⏎SELECT …": end this statement where its ';' belongs and parse
                 * the next one from this token */
                char *m = xasprintf("missing ';' before %s", rq_token_display(t));
                fail_statement(d, RQ_ERR_SYNTAX, pos_after(&d->last), 1, arena_strdup(s->arena, m),
                               d->last.pos.offset + d->last.len);
                free(m);
                begin_statement(d);
                pending = tok;
                have_pending = true;
                continue;
            }
            char *msg = unexpected_token_message(d, &tok);
            fail_statement(d, RQ_ERR_SYNTAX, tok.pos, tok.len, msg, skip_statement(d, t));
            begin_statement(d);
            continue;
        }
        d->last = tok;
        track(d, t);
        feed(d, t, &tok);
        d->ntokens++;
        if (!d->ps.failed && t == TK_SEMI) {
            rq_token eof = {0};
            eof.pos = pos_after(&tok);
            feed(d, 0, &eof);
        }
        if (d->ps.failed) {
            ast_pos pos = d->ps.err_pos.line ? d->ps.err_pos : tok.pos;
            size_t elen = d->ps.err_pos.line ? d->ps.err_len : tok.len;
            fail_statement(d, RQ_ERR_SYNTAX, pos, elen, d->ps.err_msg, skip_statement(d, t));
            begin_statement(d);
            continue;
        }
        if (t == TK_SEMI) {
            rq_statement *st = push_statement(d, tok.pos.offset + 1);
            st->ast = d->ps.result;
            begin_statement(d);
        }
    }
    rq_parserFree(d->parser, free);
    free(d);
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

typedef struct string_walk {
    const rq_token *tok;
    size_t index;            /* decoded bytes walked so far */
    const char *src;         /* where they end in the source; NULL before the first walk */
    ast_pos pos;             /* and its position */
} string_walk;

typedef struct call_parser {
    parse_state *ps;
    rq_lexer lx;
    rq_token tok;
    int t;
    string_walk walk;        /* over the STRING token being parsed */
    size_t skip;             /* bytes of its decoded text before the parsed text */
} call_parser;

/* Source position of byte i of a string token's decoded text: walks the literal as
 * lex_string does, so escapes and newlines before it are accounted for. The walk goes on
 * from the previous call (positions are asked for in order), so a call is not quadratic. */
static ast_pos string_byte_pos(string_walk *w, size_t i)
{
    if (!w->src || i < w->index) {
        w->index = 0;
        w->src = w->tok->start + 1; /* past the opening quote */
        w->pos = w->tok->pos;
        w->pos.col++;
        w->pos.offset++;
    }
    const char *end = w->tok->start + w->tok->len - 1; /* the closing quote */
    for (; w->index < i && w->src < end; w->index++) {
        const char *s = w->src;
        size_t n = s[0] == '\\' && s + 1 < end && strchr("ntr\\'\"`", s[1]) != NULL ? 2 : 1;
        if (s[0] == '\n') {
            w->pos.line++;
            w->pos.col = 1;
        } else {
            w->pos.col += (int)n;
        }
        w->pos.offset += n;
        w->src += n;
    }
    return w->pos;
}

/* Map a position inside the parsed text to the source. */
static ast_pos outer_pos(call_parser *cp, ast_pos inner)
{
    return string_byte_pos(&cp->walk, cp->skip + inner.offset);
}

static void call_next(call_parser *cp)
{
    cp->t = rq_lex(&cp->lx, &cp->tok);
}

static bool call_fail(call_parser *cp, const char *what)
{
    if (cp->t < 0) {
        parse_action_error(cp->ps, outer_pos(cp, cp->lx.error_pos), cp->lx.error_len,
                           "in strategy parameters: %s", cp->lx.error);
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
    case TK_MINUS: {
        ast_pos minus = outer_pos(cp, cp->tok.pos);
        call_next(cp);
        if (cp->t != TK_NUMBER)
            return call_fail(cp, "a number"), NULL;
        ast_literal *l = (ast_literal *)call_number(cp, true);
        /* like "-5" elsewhere: the literal starts at its sign, which its text keeps */
        l->h.pos = minus;
        char *text = xasprintf("-%s", l->text);
        l->text = arena_strdup(cp->ps->arena, text);
        free(text);
        return &l->h;
    }
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
    string_walk start = {.tok = tok};
    ast_pos inner_start = string_byte_pos(&start, 0);
    if (b == e) {
        strbuf sb = {0};
        describe_string(&sb, tok->str, tok->slen);
        parse_action_error(ps, inner_start, 1, "strategy \"%s\" has no name before '('",
                           sb.data ? sb.data : "");
        strbuf_free(&sb);
        return c;
    }
    c->name.text = arena_strndup(ps->arena, b, (size_t)(e - b));
    c->has_parens = true;
    c->params = ast_list_new(ps->arena);

    call_parser cp = {0};
    cp.ps = ps;
    cp.walk.tok = tok;
    cp.skip = (size_t)(open + 1 - tok->str);
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

    /* the source line, tabs kept so the caret lines up in a terminal; other control
     * bytes (a NUL would cut the message short) are shown as '?', a CRLF's CR dropped */
    size_t off = err->pos.offset <= s->len ? err->pos.offset : s->len;
    size_t bol = off;
    while (bol > 0 && s->src[bol - 1] != '\n')
        bol--;
    size_t eol = off;
    while (eol < s->len && s->src[eol] != '\n')
        eol++;
    size_t shown = eol > bol && s->src[eol - 1] == '\r' && off < eol - 1 ? eol - 1 : eol;
    for (size_t i = bol; i < shown; i++) {
        unsigned char c = (unsigned char)s->src[i];
        strbuf_putc(&sb, (c < 0x20 && c != '\t') || c == 0x7F ? '?' : (char)c);
    }
    strbuf_putc(&sb, '\n');
    /* one pad per character before the caret: UTF-8 continuation bytes take no column */
    for (size_t i = bol; i < off; i++) {
        unsigned char c = (unsigned char)s->src[i];
        if ((c & 0xC0) != 0x80)
            strbuf_putc(&sb, c == '\t' ? '\t' : ' ');
    }
    strbuf_putc(&sb, '^');
    for (size_t i = off + 1; i < off + err->len && i < eol; i++)
        if (((unsigned char)s->src[i] & 0xC0) != 0x80)
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
