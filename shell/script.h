/* The shell's input on its way to the server.
 *
 * Lines are added as they are read (a file, the text of -c, the interactive prompt);
 * complete statements (up to their ';') are taken out with the parser, one at a time
 * in order, and the rest waits for more input. Positions inside a statement, the
 * parser's or the server's (which count from the start of the statement text that was
 * sent), map back to the line and column of the input for error messages.
 *
 *   sh_script s;  sh_script_init(&s, "q.rql", false);
 *   sh_script_add(&s, line, len);
 *   sh_batch b;   sh_script_take(&s, at_eof, &b);  … run b.stmts[i] …  sh_batch_free(&b);
 */
#ifndef RANKQL_SHELL_SCRIPT_H
#define RANKQL_SHELL_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "grammar/parse.h"

typedef struct sh_script {
    char *name;          /* file name for messages; NULL for -c, stdin and the prompt */
    strbuf text;         /* input since the last reset */
    size_t done;         /* bytes of text already taken (or discarded) */
    int first_line;      /* input line number of text[0] */
    bool renumber;       /* the prompt: each new statement starts again at line 1 */
    /* what is known of the pending text, so a long statement is not lexed again for
     * every line added to it */
    size_t clean;        /* [done, clean) holds no ';' token and ends outside any string
                            or comment: lexing may start again there */
    bool has_tokens;     /* the pending text is known to hold tokens */
} sh_script;

typedef struct sh_stmt {
    const char *text;       /* from its first token to its ';' included (points into the script) */
    size_t len;
    size_t offset;          /* of text in the script's text */
    const ast_node *ast;    /* NULL when it does not parse */
    const rq_error *error;  /* the parse error, or NULL */
    size_t error_offset;    /* of the error in the script's text */
} sh_stmt;

typedef struct sh_batch {
    rq_script *parsed;      /* owns the ASTs and errors */
    sh_stmt *stmts;
    size_t n;
} sh_batch;

/* Where a byte of the input is: its line and 1-based byte column, and the whole line. */
typedef struct sh_where {
    int line;
    int col;
    const char *line_text;  /* into the script's text; not NUL-terminated at the line's end */
    size_t line_len;
} sh_where;

void sh_script_init(sh_script *s, const char *name, bool renumber);
void sh_script_free(sh_script *s);

/* Appends input (normally one line with its '\n'). Input already taken that leaves
 * nothing pending is dropped first, so the script does not grow without end. */
void sh_script_add(sh_script *s, const char *text, size_t len);

/* True when input waits for the rest of a statement (tokens after the last ';'). */
bool sh_script_pending(sh_script *s);

/* True when the pending input ends inside a string or a comment. */
bool sh_script_in_literal(const sh_script *s);

/* Takes the statements ready to run: every one that ends with ';' and, with at_eof,
 * an unterminated last one too (a ';' is added for it). Returns their number; the
 * batch is valid until the next sh_script_add and must be freed. */
size_t sh_script_take(sh_script *s, bool at_eof, sh_batch *b);
void sh_batch_free(sh_batch *b);

/* Drops the pending input (Ctrl-C, \r); line numbers go on. */
void sh_script_discard(sh_script *s);

/* The input position of byte off of the script's text. */
sh_where sh_script_where(const sh_script *s, size_t off);

/* The offset in the script's text of a position inside a statement given as line and
 * 1-based byte column of the statement's own text (as the server reports it); clamped
 * to the statement. */
size_t sh_stmt_offset(const sh_stmt *st, int line, int col);

#endif
