/* Public interface of the RankQL front end: text in, statements (AST) or errors out.
 *
 *   rq_script *s = rq_parse_script(text, len);
 *   for (size_t i = 0; i < s->n; i++)
 *       if (s->stmts[i].ast) … else print rq_error_format(s, s->stmts[i].error, "file.rql");
 *   rq_script_free(s);
 *
 * Statements end with ';'. A statement with an error does not stop the others: parsing
 * resumes after the next ';', or, when the ';' is missing ("missing ';' before SELECT"),
 * at the keyword that starts the next statement.
 */
#ifndef RANKQL_GRAMMAR_PARSE_H
#define RANKQL_GRAMMAR_PARSE_H

#include <stddef.h>

#include "grammar/ast.h"

typedef enum rq_error_kind { RQ_ERR_SYNTAX, RQ_ERR_LEXICAL } rq_error_kind;

typedef struct rq_error {
    rq_error_kind kind;
    const char *message;   /* e.g. "unexpected WHERE, expected LIMIT, … or ';'" */
    ast_pos pos;           /* where the reader should look */
    size_t len;            /* bytes to underline (at least 1 is drawn) */
} rq_error;

typedef struct rq_statement {
    ast_node *ast;         /* NULL when the statement has an error */
    rq_error *error;       /* NULL when it parsed */
    size_t start, end;     /* byte range of its text in the source, ';' included */
    ast_pos pos;           /* of its first token */
} rq_statement;

typedef struct rq_script {
    arena *arena;          /* owns every node, string and error */
    const char *src;       /* NUL-terminated copy of the input */
    size_t len;
    size_t n;
    rq_statement *stmts;
    size_t nerrors;
} rq_script;

rq_script *rq_parse_script(const char *src, size_t len);
void rq_script_free(rq_script *s);

/* "FILE:LINE:COL: syntax error: MESSAGE\n<source line>\n<caret line>\n". FILE may be
 * NULL (then the position starts the line). Caller frees. */
char *rq_error_format(const rq_script *s, const rq_error *err, const char *filename);

/* True when text holds at least one complete statement, i.e. a ';' outside strings
 * and comments. The shell uses it to know when multi-line input is finished. */
bool rq_text_has_statement_end(const char *text, size_t len);

#endif
