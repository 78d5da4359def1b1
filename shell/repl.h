/* The interactive prompt (standard input is a terminal): libedit line editing,
 * "rankql=> " and "rankql-> " prompts, history in ~/.rankql_history (or
 * $RANKQL_HISTFILE), tab completion, Ctrl-C drops the statement being typed (or stops
 * the running one), Ctrl-D or \q leaves. */
#ifndef RANKQL_SHELL_REPL_H
#define RANKQL_SHELL_REPL_H

#include "shell/shell.h"

void sh_repl(sh_state *st);

#endif
