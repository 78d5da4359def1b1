/* Input to the shell, line by line, from any source (the prompt, -c, -f, \i, stdin):
 * backslash commands run as they come, statements once they are complete. */
#ifndef RANKQL_SHELL_INPUT_H
#define RANKQL_SHELL_INPUT_H

#include <stdbool.h>
#include <stdio.h>

#include "shell/shell.h"

/* One line, with its '\n'. Returns false when this input should stop: \q, a lost
 * server in a script, or a failure under ON_ERROR_STOP. */
bool sh_feed_line(sh_state *st, sh_script *s, const char *line, size_t len);

/* The end of an input: a last statement without ';' runs too. */
bool sh_feed_end(sh_state *st, sh_script *s);

/* Whole inputs. name is used in messages (NULL for none); path "-" is standard input. */
bool sh_run_stream(sh_state *st, FILE *f, const char *name);
bool sh_run_file(sh_state *st, const char *path);
bool sh_run_string(sh_state *st, const char *text);

#endif
