/* State shared by the parse driver (parse.c) and the lemon actions (parser.y). */
#ifndef RANKQL_GRAMMAR_PARSE_INTERNAL_H
#define RANKQL_GRAMMAR_PARSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "grammar/ast.h"
#include "grammar/lexer.h"

typedef struct parse_state {
    arena *arena;
    ast_node *result;     /* set when the statement is accepted */
    bool failed;          /* an action reported an error */
    ast_pos err_pos;
    size_t err_len;
    char *err_msg;        /* arena */
} parse_state;

/* Reports an error found by a grammar action (wrong value count, bad slice, …).
 * Only the first error of a statement is kept. */
void parse_action_error(parse_state *ps, ast_pos pos, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses the text of a quoted strategy or classifier, e.g. "random(seed=42, k=3)", into
 * an ast_call. The token is the STRING token; positions inside point into the string. */
ast_call *parse_call_string(parse_state *ps, const rq_token *tok);

/* The lemon parser (generated from parser.y). */
void *rq_parserAlloc(void *(*alloc)(size_t));
void rq_parserFree(void *parser, void (*dealloc)(void *));
void rq_parser(void *parser, int token, rq_token *value, parse_state *ps);
/* 1 when the parser, in its current state, can consume token (after any reductions). */
int rq_parser_accepts(void *parser, int token);
/* The same, without the fallback that turns a non-reserved keyword into an identifier:
 * 1 when token is acceptable as that keyword itself. */
int rq_parser_accepts_keyword(void *parser, int token);
/* Fills out[] with the tokens acceptable now (keywords that are accepted only as
 * identifiers are left out); returns how many. */
int rq_parser_expected(void *parser, int *out, int max);
/* Number of terminal symbols (token codes are 1 .. n-1). */
int rq_parser_token_count(void);

#endif
