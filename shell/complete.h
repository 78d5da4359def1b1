/* Tab completion: keywords, tables, catalog columns (fetched from the server the
 * first time they are needed), the session's variables, backslash commands and their
 * arguments. Also the names the shell itself writes into statements. */
#ifndef RANKQL_SHELL_COMPLETE_H
#define RANKQL_SHELL_COMPLETE_H

#include <stdbool.h>
#include <stddef.h>

#include "shell/shell.h"

/* The catalog tables a statement can read, NULL-terminated. */
extern const char *const sh_table_names[];

/* Candidates for the word that ends at line[cursor]: a sorted NULL-terminated array
 * (free with sh_complete_free), and *start, where that word begins. */
char **sh_complete(sh_state *st, const char *line, size_t cursor, size_t *start);
void sh_complete_free(char **candidates);

/* A name as it can be written after FROM: as is when it is a plain identifier that
 * is not a reserved word, else in double quotes. Caller frees. */
char *sh_quote_name(const char *name);

#endif
