/* The shell's input on its way to the server: statement splitting and positions.
 * See script.h. */
#include "shell/script.h"

#include <stdlib.h>
#include <string.h>

void sh_script_init(sh_script *s, const char *name, bool renumber)
{
    memset(s, 0, sizeof(*s));
    s->name = name ? xstrdup(name) : NULL;
    s->first_line = 1;
    s->renumber = renumber;
}

void sh_script_free(sh_script *s)
{
    free(s->name);
    strbuf_free(&s->text);
    memset(s, 0, sizeof(*s));
}

static const char *pending_text(const sh_script *s, size_t *len)
{
    *len = s->text.len - s->done;
    return s->text.data ? s->text.data + s->done : "";
}

bool sh_script_pending(sh_script *s)
{
    if (s->has_tokens)
        return true; /* more input does not take tokens away */
    size_t len;
    const char *p = pending_text(s, &len);
    if (len == 0)
        return false;
    rq_script *parsed = rq_parse_script(p, len);
    s->has_tokens = parsed->n > 0;
    rq_script_free(parsed);
    return s->has_tokens;
}

/* The pending text that has not been lexed yet: from the last clean point. */
static const char *unlexed(const sh_script *s, size_t *from)
{
    *from = s->clean > s->done ? s->clean : s->done;
    return s->text.data ? s->text.data + *from : "";
}

/* True when text ends outside strings and comments, given that it holds no ';' token:
 * a ';' put after it on a line of its own is then a token. */
static bool ends_outside(const char *text, size_t len)
{
    char *probe = xmalloc(len + 3);
    memcpy(probe, text, len);
    memcpy(probe + len, "\n;", 3);
    bool outside = rq_text_has_statement_end(probe, len + 2);
    free(probe);
    return outside;
}

bool sh_script_in_literal(const sh_script *s)
{
    size_t from;
    const char *p = unlexed(s, &from);
    size_t len = s->text.len - from;
    /* complete statements are taken at once, so the pending text has no ';' token */
    return len > 0 && !ends_outside(p, len);
}

static size_t count_lines(const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += p[i] == '\n';
    return n;
}

static bool blank(const char *p)
{
    for (; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return false;
    return true;
}

void sh_script_add(sh_script *s, const char *text, size_t len)
{
    /* nothing but blanks left after what was taken: start afresh at a line start */
    if (s->text.len > 0 && s->text.data[s->text.len - 1] == '\n' && blank(s->text.data + s->done)) {
        s->first_line = s->renumber ? 1 : s->first_line + (int)count_lines(s->text.data, s->text.len);
        s->text.len = 0;
        s->text.data[0] = '\0';
        s->done = 0;
        s->clean = 0;
        s->has_tokens = false;
    }
    strbuf_append(&s->text, text, len);
}

void sh_script_discard(sh_script *s)
{
    s->done = s->text.len;
    s->has_tokens = false;
}

/* True when statement st of the parse does not end with its ';' (more input may follow). */
static bool unterminated(const char *p, const rq_statement *st)
{
    return st->end <= st->start || p[st->end - 1] != ';';
}

size_t sh_script_take(sh_script *s, bool at_eof, sh_batch *b)
{
    memset(b, 0, sizeof(*b));
    size_t len;
    const char *p = pending_text(s, &len);
    if (len == 0)
        return 0;
    if (!at_eof) {
        /* lex only what came since the last clean point: a line in the middle of a long
         * statement costs its own length, not the statement's */
        size_t from;
        const char *q = unlexed(s, &from);
        size_t qlen = s->text.len - from;
        if (!rq_text_has_statement_end(q, qlen)) {
            if (qlen > 0 && s->text.data[s->text.len - 1] == '\n' && ends_outside(q, qlen))
                s->clean = s->text.len;
            return 0;
        }
    }
    rq_script *parsed = rq_parse_script(p, len);
    if (parsed->n == 0) {
        rq_script_free(parsed);
        if (at_eof)
            s->done = s->text.len;
        return 0;
    }
    const rq_statement *last = &parsed->stmts[parsed->n - 1];
    if (at_eof && last->end == len && unterminated(p, last)) {
        /* the input ends without ';': add one, on a line of its own when the text ends
         * in a '--' comment; not at all when it ends inside a string or comment */
        size_t start = last->start, saved = s->text.len;
        static const char *const endings[] = {";", "\n;"};
        bool closed = false;
        for (size_t i = 0; i < 2 && !closed; i++) {
            s->text.len = saved;
            strbuf_puts(&s->text, endings[i]);
            closed = rq_text_has_statement_end(s->text.data + s->done + start,
                                               s->text.len - s->done - start);
        }
        if (!closed) {
            s->text.len = saved;
            s->text.data[saved] = '\0';
        } else {
            rq_script_free(parsed);
            p = pending_text(s, &len);
            parsed = rq_parse_script(p, len);
        }
    }
    size_t n = parsed->n;
    if (!at_eof && unterminated(p, &parsed->stmts[n - 1]) && parsed->stmts[n - 1].end == len)
        n--; /* the last one waits for its ';' */
    if (n == 0) {
        rq_script_free(parsed);
        return 0;
    }
    b->parsed = parsed;
    b->n = n;
    b->stmts = xcalloc(n, sizeof(sh_stmt));
    for (size_t i = 0; i < n; i++) {
        const rq_statement *st = &parsed->stmts[i];
        sh_stmt *o = &b->stmts[i];
        o->offset = s->done + st->start;
        o->text = s->text.data + o->offset;
        o->len = st->end - st->start;
        o->ast = st->ast;
        o->error = st->error;
        if (st->error)
            o->error_offset = s->done + st->error->pos.offset;
    }
    s->done = at_eof ? s->text.len : s->done + parsed->stmts[n - 1].end;
    s->has_tokens = false;
    return n;
}

void sh_batch_free(sh_batch *b)
{
    rq_script_free(b->parsed);
    free(b->stmts);
    memset(b, 0, sizeof(*b));
}

sh_where sh_script_where(const sh_script *s, size_t off)
{
    sh_where w = {0};
    const char *t = s->text.data ? s->text.data : "";
    if (off > s->text.len)
        off = s->text.len;
    size_t bol = off;
    while (bol > 0 && t[bol - 1] != '\n')
        bol--;
    size_t eol = off;
    while (eol < s->text.len && t[eol] != '\n')
        eol++;
    w.line = s->first_line + (int)count_lines(t, bol);
    w.col = (int)(off - bol) + 1;
    w.line_text = t + bol;
    w.line_len = eol - bol;
    return w;
}

size_t sh_stmt_offset(const sh_stmt *st, int line, int col)
{
    size_t i = 0;
    for (int l = 1; l < line && i < st->len; i++)
        if (st->text[i] == '\n')
            l++;
    /* the column counts bytes within its line; stay on that line */
    for (int c = 1; c < col && i < st->len && st->text[i] != '\n'; c++)
        i++;
    return st->offset + i;
}
