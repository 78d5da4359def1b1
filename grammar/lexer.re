/* The RankQL lexer, compiled by re2c (see lexer.h for the interface).
 *
 * The buffer must be NUL-terminated at src[len]; NUL bytes before that are ordinary
 * (invalid) characters, so binary garbage is reported, not silently truncated.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/lexer.h"
#include "parser.h"

void rq_lexer_init(rq_lexer *lx, const char *src, size_t len, arena *a)
{
    memset(lx, 0, sizeof(*lx));
    lx->src = src;
    lx->len = len;
    lx->cur = src;
    lx->line_start = src;
    lx->line = 1;
    lx->arena = a;
}

static ast_pos pos_at(const rq_lexer *lx, const char *p)
{
    ast_pos pos = {lx->line, (int)(p - lx->line_start) + 1, (size_t)(p - lx->src)};
    return pos;
}

static int lex_error(rq_lexer *lx, rq_token *tok, const char *at, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int lex_error(rq_lexer *lx, rq_token *tok, const char *at, size_t len, const char *fmt, ...)
{
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    lx->error = arena_strdup(lx->arena, sb.data);
    strbuf_free(&sb);
    lx->error_pos = pos_at(lx, at);
    lx->error_len = len;
    tok->type = -1;
    tok->start = at;
    tok->len = len;
    tok->pos = lx->error_pos;
    return -1;
}

/* Length of the valid UTF-8 sequence at p (up to end), or 0 when invalid. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    size_t n;
    unsigned min;
    unsigned cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0) { n = 2; cp = p[0] & 0x1F; min = 0x80; }
    else if ((p[0] & 0xF0) == 0xE0) { n = 3; cp = p[0] & 0x0F; min = 0x800; }
    else if ((p[0] & 0xF8) == 0xF0) { n = 4; cp = p[0] & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static void newline(rq_lexer *lx, const char *after)
{
    lx->line++;
    lx->line_start = after;
}

/* A quoted string starting at the quote; handles \ escapes and embedded newlines. */
static int lex_string(rq_lexer *lx, rq_token *tok, const char *start)
{
    const char quote = *start;
    const char *end = lx->src + lx->len;
    const char *p = start + 1;
    ast_pos pos = pos_at(lx, start);
    strbuf sb = {0};
    while (p < end && *p != quote) {
        if (*p == '\\' && p + 1 < end) {
            char c = p[1];
            char decoded = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
            if (strchr("ntr\\'\"`", c) != NULL) {
                strbuf_putc(&sb, decoded);
                p += 2;
            } else {
                /* unknown escapes stay as written, so paths and patterns survive */
                strbuf_putc(&sb, '\\');
                p += 1;
            }
            continue;
        }
        size_t n = utf8_sequence((const unsigned char *)p, (const unsigned char *)end);
        if (n == 0) {
            strbuf_free(&sb);
            lex_error(lx, tok, p, 1, "invalid UTF-8 byte 0x%02X in string literal",
                      (unsigned char)*p);
            /* Resume after the literal: the newlines before p are already counted, and
             * lexing its rest as code would count them again and misread its quotes. */
            for (p++; p < end && *p != quote; p++) {
                if (*p == '\\' && p + 1 < end && p[1] != '\n')
                    p++;
                else if (*p == '\n')
                    newline(lx, p + 1);
            }
            lx->cur = p < end ? p + 1 : end;
            return -1;
        }
        if (*p == '\n')
            newline(lx, p + 1);
        strbuf_append(&sb, p, n);
        p += n;
    }
    if (p >= end) {
        strbuf_free(&sb);
        /* report at the opening quote, where the reader has to look */
        tok->type = -1;
        lx->error = arena_strdup(lx->arena, "unterminated string literal");
        lx->error_pos = pos;
        lx->error_len = 1;
        tok->start = start;
        tok->len = 1;
        tok->pos = pos;
        lx->cur = end;
        return -1;
    }
    lx->cur = p + 1;
    tok->type = TK_STRING;
    tok->start = start;
    tok->len = (size_t)(lx->cur - start);
    tok->pos = pos;
    tok->slen = sb.len;
    tok->str = arena_strndup(lx->arena, sb.data ? sb.data : "", sb.len);
    strbuf_free(&sb);
    return TK_STRING;
}

/* A block comment (from its opening slash-star); 0 on success, -1 when unterminated. */
static int skip_block_comment(rq_lexer *lx, rq_token *tok, const char *start)
{
    const char *end = lx->src + lx->len;
    ast_pos at = pos_at(lx, start); /* before the newlines inside are counted */
    for (const char *p = start + 2; p + 1 < end; p++) {
        if (*p == '\n')
            newline(lx, p + 1);
        else if (p[0] == '*' && p[1] == '/') {
            lx->cur = p + 2;
            return 0;
        }
    }
    lx->cur = end;
    lex_error(lx, tok, start, 2, "unterminated /* comment");
    lx->error_pos = tok->pos = at;
    return -1;
}

/* Number value: digits, fraction, exponent and a K/M/B suffix (10M = 10,000,000).
 * Whole values that fit in 64 bits are integers; the rest are doubles. */
static int number_value(rq_lexer *lx, rq_token *tok, const char *start, const char *end)
{
    char buf[160]; /* up to 127 bytes of number, then room for a rewritten exponent */
    size_t n = (size_t)(end - start);
    double scale = 1;
    char last = end[-1];
    if (last == 'k' || last == 'K') scale = 1e3;
    else if (last == 'm' || last == 'M') scale = 1e6;
    else if (last == 'b' || last == 'B') scale = 1e9;
    if (scale != 1)
        n--;
    if (n >= 128)
        return lex_error(lx, tok, start, (size_t)(end - start), "number too long: %.40s…", start);
    memcpy(buf, start, n);
    buf[n] = '\0';
    bool plain = strspn(buf, "0123456789") == n;

    tok->type = TK_NUMBER;
    tok->start = start;
    tok->len = (size_t)(end - start);
    tok->pos = pos_at(lx, start);
    tok->str = arena_strndup(lx->arena, start, tok->len);
    tok->slen = tok->len;

    if (plain) {
        errno = 0;
        unsigned long long v = strtoull(buf, NULL, 10);
        if (errno == 0 && v <= (unsigned long long)INT64_MAX / (unsigned long long)scale) {
            tok->is_int = true;
            tok->ival = (int64_t)v * (int64_t)scale;
            tok->fval = (double)tok->ival;
            return TK_NUMBER;
        }
        return lex_error(lx, tok, start, tok->len, "number out of range: %.*s", (int)tok->len, start);
    }
    if (scale != 1) {
        /* fold the suffix into the exponent so strtod rounds once: 16.1K is 16.1e3, exactly
         * 16100, where 16.1 * 1e3 would give 16100.000000000002 */
        char *e = strpbrk(buf, "eE");
        long exp = e ? strtol(e + 1, NULL, 10) : 0;
        if (exp > 100000 || exp < -100000)
            exp = exp > 0 ? 100000 : -100000; /* still out of range, without overflow */
        if (!e)
            e = buf + n;
        snprintf(e, sizeof(buf) - (size_t)(e - buf), "e%ld",
                 exp + (scale == 1e3 ? 3 : scale == 1e6 ? 6 : 9));
    }
    errno = 0;
    double d = strtod(buf, NULL);
    if (errno == ERANGE || !isfinite(d))
        return lex_error(lx, tok, start, tok->len, "number out of range: %.*s", (int)tok->len, start);
    tok->fval = d;
    if (scale != 1 && d == floor(d) && fabs(d) < 9.0e18) {
        tok->is_int = true;
        tok->ival = (int64_t)d;
    }
    return TK_NUMBER;
}

/* After USE, an unquoted target such as 127.0.0.1:8001 or localhost:8001 is one token. */
#define HOSTPORT_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-[]@%"

static int lex_hostport(rq_lexer *lx, rq_token *tok)
{
    const char *start = lx->cur;
    const char *p = start;
    while (*p && strchr(HOSTPORT_CHARS, *p) && p < lx->src + lx->len)
        p++;
    lx->cur = p;
    tok->type = TK_HOSTPORT;
    tok->start = start;
    tok->len = (size_t)(p - start);
    tok->pos = pos_at(lx, start);
    tok->str = arena_strndup(lx->arena, start, tok->len);
    tok->slen = tok->len;
    return TK_HOSTPORT;
}

static int simple(rq_lexer *lx, rq_token *tok, const char *start, int type)
{
    tok->type = type;
    tok->start = start;
    tok->len = (size_t)(lx->cur - start);
    tok->pos = pos_at(lx, start);
    tok->str = NULL;
    tok->slen = 0;
    return type;
}

static int lex_token(rq_lexer *lx, rq_token *tok)
{
    const char *YYMARKER = NULL;
    const char *lim = lx->src + lx->len;
    for (;;) {
        const char *start = lx->cur;
        /* not at '-' or '/', which may start a comment; other characters lex as usual,
         * so no empty target token is made */
        if (lx->prev_type == TK_USE && start < lim && *start != '\0' && *start != '-'
            && *start != '/' && strchr(HOSTPORT_CHARS, *start) != NULL)
            return lex_hostport(lx, tok);
        /*!re2c
        re2c:define:YYCTYPE = "unsigned char";
        re2c:define:YYCURSOR = "lx->cur";
        re2c:define:YYMARKER = "YYMARKER";
        re2c:define:YYLIMIT = "lim";
        re2c:yyfill:enable = 0;
        re2c:eof = 0;

        digit  = [0-9];
        letter = [a-zA-Z_];
        number = digit+ ("." digit+)? ([eE] [+-]? digit+)? [kKmMbB]?;

        $                        { return simple(lx, tok, start, 0); }
        [ \t\r\f\v]+             { continue; }
        "\n"                     { newline(lx, lx->cur); continue; }
        "--" [^\n]*              { continue; }
        "#" [^\n]*               { continue; }
        "/*"                     { if (skip_block_comment(lx, tok, start) < 0) return -1; continue; }

        letter (letter | digit)* {
            size_t n = (size_t)(lx->cur - start);
            int kw = rq_keyword(start, n);
            simple(lx, tok, start, kw ? kw : TK_IDENT);
            tok->str = arena_strndup(lx->arena, start, n);
            tok->slen = n;
            return tok->type;
        }
        number {
            /* "12abc" or "1.5.6" is one malformed number, not a number and a name */
            const char *end = lx->cur;
            while (end < lim && *end != '\0' /* strchr finds the terminator */
                   && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.", *end) != NULL)
                end++;
            if (end != lx->cur) {
                lx->cur = end;
                return lex_error(lx, tok, start, (size_t)(end - start), "malformed number: %.*s",
                                 (int)(end - start), start);
            }
            return number_value(lx, tok, start, lx->cur);
        }
        ['"`]                    { return lex_string(lx, tok, start); }

        ";"  { return simple(lx, tok, start, TK_SEMI); }
        ","  { return simple(lx, tok, start, TK_COMMA); }
        "."  { return simple(lx, tok, start, TK_DOT); }
        "("  { return simple(lx, tok, start, TK_LP); }
        ")"  { return simple(lx, tok, start, TK_RP); }
        "["  { return simple(lx, tok, start, TK_LBRACKET); }
        "]"  { return simple(lx, tok, start, TK_RBRACKET); }
        "{"  { return simple(lx, tok, start, TK_LBRACE); }
        "}"  { return simple(lx, tok, start, TK_RBRACE); }
        ":"  { return simple(lx, tok, start, TK_COLON); }
        "*"  { return simple(lx, tok, start, TK_STAR); }
        "+"  { return simple(lx, tok, start, TK_PLUS); }
        "-"  { return simple(lx, tok, start, TK_MINUS); }
        "/"  { return simple(lx, tok, start, TK_SLASH); }
        "=" | "==" { return simple(lx, tok, start, TK_EQ); }
        "!=" | "<>" { return simple(lx, tok, start, TK_NE); }
        "<"  { return simple(lx, tok, start, TK_LT); }
        "<=" { return simple(lx, tok, start, TK_LE); }
        ">"  { return simple(lx, tok, start, TK_GT); }
        ">=" { return simple(lx, tok, start, TK_GE); }

        * {
            size_t n = utf8_sequence((const unsigned char *)start, (const unsigned char *)lim);
            if (n > 1) {
                lx->cur = start + n;
                return lex_error(lx, tok, start, n, "unexpected character '%.*s'", (int)n, start);
            }
            lx->cur = start + 1;
            unsigned char c = (unsigned char)*start;
            if (c >= 0x20 && c < 0x7F)
                return lex_error(lx, tok, start, 1, "unexpected character '%c'", c);
            return lex_error(lx, tok, start, 1, "unexpected byte 0x%02X", c);
        }
        */
    }
}

int rq_lex(rq_lexer *lx, rq_token *tok)
{
    memset(tok, 0, sizeof(*tok));
    int type = lex_token(lx, tok);
    lx->prev_type = type;
    return type;
}
