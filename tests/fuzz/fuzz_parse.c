/* libFuzzer target for the RankQL front end (lexer + parser + AST JSON + messages).
 *
 * For every input it parses the bytes as a script and checks what a caller relies on:
 *
 *   - every statement has exactly one of an AST or an error; nerrors counts the errors;
 *   - statement byte ranges are ordered, do not overlap and lie inside the input, and a
 *     statement that parsed ends with its ';';
 *   - error positions lie inside the input (1 <= line, 1 <= col, offset <= len) and their
 *     line:col agrees with the offset; messages are one non-empty line of valid UTF-8;
 *   - rq_error_format() gives "FILE:LINE:COL: ...", the source line and a caret line whose
 *     caret sits under the error's offset;
 *   - ast_to_json() gives valid JSON (jansson json_loads) for every parsed statement;
 *   - a parsed statement's own text parses again on its own, as one statement;
 *   - rq_text_has_statement_end() agrees with the parse about complete statements;
 *   - the lexer alone always advances and ends, with every token inside the input at a
 *     line:col that agrees with its offset.
 *
 * A broken invariant aborts, which libFuzzer reports as a crash with the input saved.
 * ASan reports leaks and memory errors, UBSan undefined behaviour. Nothing is printed.
 *
 * Built by `make fuzz-build` (see the fuzzing section of the Makefile) and run by
 * tests/fuzz/run-fuzz.sh.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/lexer.h"
#include "grammar/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_parse: invariant broken at %s:%d: %s\n  ", __FILE__,  \
                    __LINE__, #cond);                                                   \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* line:col of a byte offset, counted the way the lexer counts (1-based, bytes). */
static void line_col_of(const char *src, size_t offset, int *line, int *col)
{
    int l = 1;
    size_t bol = 0;
    for (size_t i = 0; i < offset; i++)
        if (src[i] == '\n') {
            l++;
            bol = i + 1;
        }
    *line = l;
    *col = (int)(offset - bol) + 1;
}

static void check_error(const rq_script *s, const rq_statement *st)
{
    const rq_error *e = st->error;
    CHECK(e->kind == RQ_ERR_SYNTAX || e->kind == RQ_ERR_LEXICAL, "kind %d", (int)e->kind);
    CHECK(e->message && e->message[0], "empty message");
    CHECK(strchr(e->message, '\n') == NULL, "message with a newline: %s", e->message);
    json_t *m = json_string(e->message); /* NULL unless valid UTF-8: the HTTP API sends it as JSON */
    CHECK(m != NULL, "message is not valid UTF-8: %s", e->message);
    json_decref(m);
    CHECK(e->pos.line >= 1 && e->pos.col >= 1, "position %d:%d", e->pos.line, e->pos.col);
    CHECK(e->pos.offset <= s->len, "offset %zu past the input (%zu bytes)", e->pos.offset, s->len);
    /* the error lies inside its statement (or just past it: "missing ';'" at the end) */
    CHECK(e->pos.offset >= st->start && e->pos.offset <= st->end,
          "error offset %zu outside its statement [%zu, %zu)", e->pos.offset, st->start, st->end);
    int line, col;
    line_col_of(s->src, e->pos.offset, &line, &col);
    CHECK(line == e->pos.line && col == e->pos.col,
          "error at %d:%d but its offset %zu is %d:%d (%s)", e->pos.line, e->pos.col,
          e->pos.offset, line, col, e->message);

    char *msg = rq_error_format(s, e, "f.rql");
    CHECK(msg != NULL, "rq_error_format returned NULL");
    char head[64];
    snprintf(head, sizeof(head), "f.rql:%d:%d: %s error: ", e->pos.line, e->pos.col,
             e->kind == RQ_ERR_LEXICAL ? "lexical" : "syntax");
    CHECK(strncmp(msg, head, strlen(head)) == 0, "header %.80s, expected %s", msg, head);

    /* three lines: the header, the source line [bol, eol) (control bytes may be shown as
     * '?', a CRLF's CR left out) and the caret line: blanks, '^' under the error's first
     * character (one blank per byte or per character before it), then '~'s */
    size_t off = e->pos.offset, bol = off, eol = off;
    while (bol > 0 && s->src[bol - 1] != '\n')
        bol--;
    while (eol < s->len && s->src[eol] != '\n')
        eol++;
    size_t mlen = strlen(msg);
    CHECK(mlen >= 2 && msg[mlen - 1] == '\n', "format does not end with a newline");
    const char *src_line = strchr(msg, '\n') + 1;
    const char *caret_line = strchr(src_line, '\n');
    CHECK(caret_line != NULL, "format has no caret line: %s", msg);
    caret_line++;
    CHECK(strchr(caret_line, '\n') == msg + mlen - 1, "format has more than three lines: %s", msg);
    size_t shown = (size_t)(caret_line - 1 - src_line);
    CHECK(shown == eol - bol || (shown + 1 == eol - bol && s->src[eol - 1] == '\r'),
          "source line of %zu bytes shown as %zu", eol - bol, shown);
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s->src[bol + i];
        CHECK(src_line[i] == (char)c || (src_line[i] == '?' && (c < 0x20 || c == 0x7F)),
              "source line byte %zu is 0x%02X, shown as 0x%02X", i, c, (unsigned char)src_line[i]);
    }
    size_t chars = 0;
    for (size_t i = bol; i < off; i++)
        chars += ((unsigned char)s->src[i] & 0xC0) != 0x80;
    size_t indent = strspn(caret_line, " \t");
    CHECK(indent >= chars && indent <= off - bol, "caret after %zu blanks, error after %zu "
          "characters (%zu bytes) of its line", indent, chars, off - bol);
    CHECK(caret_line[indent] == '^', "no caret after the blanks");
    size_t tildes = strspn(caret_line + indent + 1, "~");
    CHECK(caret_line + indent + 1 + tildes == msg + mlen - 1, "caret line has other characters");
    CHECK(tildes <= eol - off, "underline runs past the end of the line");
    free(msg);
}

static void check_ast(const rq_script *s, const rq_statement *st)
{
    CHECK(st->end >= 1 && s->src[st->end - 1] == ';', "parsed statement does not end with ';'");
    char *json = ast_to_json(st->ast);
    CHECK(json != NULL, "ast_to_json returned NULL");
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    CHECK(j != NULL, "invalid AST JSON: %s at %d: %.200s", jerr.text, jerr.position, json);
    CHECK(json_is_object(j), "AST JSON is no object");
    CHECK(json_is_string(json_object_get(j, "type")), "AST JSON without a type");
    json_decref(j);
    free(json);

    /* its own text is one statement that parses */
    rq_script *again = rq_parse_script(s->src + st->start, st->end - st->start);
    CHECK(again->n == 1 && again->stmts[0].ast != NULL,
          "statement [%zu, %zu) does not parse on its own (%zu statements, %zu errors)",
          st->start, st->end, again->n, again->nerrors);
    rq_script_free(again);
}

/* The lexer on its own: it always moves forward and ends, and every token (or error)
 * lies inside the input at a position whose line:col agrees with its offset. */
static void check_tokens(const char *src, size_t len)
{
    arena *a = arena_new();
    char *copy = arena_strndup(a, src, len); /* the lexer wants src[len] == '\0' */
    memcpy(copy, src, len);
    rq_lexer lx;
    rq_lexer_init(&lx, copy, len, a);
    rq_token tok;
    size_t scanned = 0; /* line:col counted incrementally up to this offset */
    int line = 1;
    size_t bol = 0;
    const char *prev_cur = lx.cur;
    for (size_t i = 0; i <= len + 1; i++) {
        int t = rq_lex(&lx, &tok);
        CHECK(lx.cur >= copy && lx.cur <= copy + len, "lexer cursor outside the input");
        if (t == 0)
            break;
        CHECK(lx.cur > prev_cur, "lexer did not advance (token %d at offset %zu)", t,
              tok.pos.offset);
        prev_cur = lx.cur;
        CHECK(tok.start >= copy && tok.start + tok.len <= copy + len,
              "token %d outside the input", t);
        ast_pos pos = t < 0 ? lx.error_pos : tok.pos;
        CHECK(pos.offset <= len && pos.offset >= scanned, "token offset %zu (scanned %zu)",
              pos.offset, scanned);
        if (t > 0)
            CHECK(pos.offset == (size_t)(tok.start - copy), "token offset %zu, start at %zu",
                  pos.offset, (size_t)(tok.start - copy));
        for (; scanned < pos.offset; scanned++)
            if (copy[scanned] == '\n') {
                line++;
                bol = scanned + 1;
            }
        CHECK(pos.line == line && pos.col == (int)(pos.offset - bol) + 1,
              "token %d at %d:%d, its offset %zu is %d:%d", t, pos.line, pos.col, pos.offset,
              line, (int)(pos.offset - bol) + 1);
        CHECK(i <= len, "lexer returned more tokens than there are bytes");
    }
    arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_tokens((const char *)data, size);

    const char *text = (const char *)data;
    rq_script *s = rq_parse_script(text, size);
    CHECK(s != NULL, "rq_parse_script returned NULL");
    CHECK(s->len == size && s->src[size] == '\0' && memcmp(s->src, text, size) == 0,
          "source copy differs");
    CHECK(s->n == 0 || s->stmts != NULL, "statements missing");

    size_t errors = 0, prev_end = 0;
    bool complete = false;
    for (size_t i = 0; i < s->n; i++) {
        const rq_statement *st = &s->stmts[i];
        CHECK((st->ast == NULL) != (st->error == NULL), "statement %zu: ast %p, error %p", i,
              (void *)st->ast, (void *)st->error);
        CHECK(st->start >= prev_end, "statement %zu starts at %zu before the previous end %zu",
              i, st->start, prev_end);
        CHECK(st->start < st->end && st->end <= size, "statement %zu range [%zu, %zu), input %zu",
              i, st->start, st->end, size);
        CHECK(st->pos.offset == st->start && st->pos.line >= 1 && st->pos.col >= 1,
              "statement %zu at %d:%d offset %zu, start %zu", i, st->pos.line, st->pos.col,
              st->pos.offset, st->start);
        prev_end = st->end;
        if (st->error) {
            errors++;
            check_error(s, st);
        } else {
            complete = true;
            check_ast(s, st);
        }
    }
    CHECK(errors == s->nerrors, "nerrors %zu, counted %zu", s->nerrors, errors);

    /* a statement that parsed ended with a ';' outside strings and comments */
    if (complete)
        CHECK(rq_text_has_statement_end(text, size), "parsed statements but no statement end");
    else
        (void)rq_text_has_statement_end(text, size);

    rq_script_free(s);
    return 0;
}
