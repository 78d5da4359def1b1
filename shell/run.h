/* Running one statement: USE switches the server here; every other statement goes
 * to the server alone, and its results, notices and errors are printed. */
#ifndef RANKQL_SHELL_RUN_H
#define RANKQL_SHELL_RUN_H

#include <stdbool.h>

#include "shell/shell.h"

/* Runs stmt of script s (a statement with a parse error only prints it). Returns
 * true when it succeeded; failures are recorded in st->status. */
bool sh_run_statement(sh_state *st, const sh_script *s, const sh_stmt *stmt);

/* Connects to TARGET ("host:port" or "http://host:port") with a new session; on
 * failure the current server stays and why is printed. announce: say where we are (table
 * format only, so CSV and JSON output stay clean). */
bool sh_connect(sh_state *st, const char *target, bool announce);

/* A statement of the shell's own (\d, completion): nothing is printed. */
sh_status sh_query_quiet(sh_state *st, const char *text, sh_reply *r);

/* Prints the error of a failed reply (no source position). */
void sh_print_reply_error(sh_state *st, const sh_reply *r);

/* Prints and records a failed request (no source position); a lost server ends a
 * script (st->quit), at the prompt it does not. */
void sh_request_failed(sh_state *st, const sh_reply *r);

/* Writes text to the result output and flushes it. */
void sh_emit(sh_state *st, const strbuf *text);

#endif
