/* The RankQL lexer (lexer.re, compiled by re2c).
 *
 * It turns a byte buffer into tokens whose codes are the TK_* values that lemon
 * generates from parser.y. Keywords are case-insensitive and looked up in keywords.c;
 * identifiers keep their case.
 */
#ifndef RANKQL_GRAMMAR_LEXER_H
#define RANKQL_GRAMMAR_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grammar/ast.h"

typedef struct rq_token {
    int type;              /* TK_* code; 0 = end of input; -1 = lexical error */
    const char *start;     /* points into the source */
    size_t len;            /* bytes of source text */
    ast_pos pos;
    /* decoded values */
    const char *str;       /* strings: unescaped text (arena); identifiers/keywords: source text (arena) */
    size_t slen;
    bool is_int;           /* numbers */
    int64_t ival;
    double fval;
} rq_token;

typedef struct rq_lexer {
    const char *src;       /* must be NUL-terminated at src[len] */
    size_t len;
    const char *cur;
    const char *line_start;
    int line;
    int prev_type;         /* last token returned, for the USE host:port rule */
    arena *arena;
    /* set when type == -1 */
    char *error;           /* arena string */
    ast_pos error_pos;
    size_t error_len;
} rq_lexer;

void rq_lexer_init(rq_lexer *lx, const char *src, size_t len, arena *a);
/* Fills *tok and returns its type (0 at end, -1 on error). */
int rq_lex(rq_lexer *lx, rq_token *tok);

/* Keyword lookup (keywords.c): returns the TK_* code, or 0 when the word is no keyword. */
int rq_keyword(const char *word, size_t len);
/* Human-readable token name for messages: "WHERE", "';'", "identifier", … */
const char *rq_token_display(int type);

#endif
