/* Backslash commands: \? \q \d \timing \x \o \i \set \format \c \r. */
#ifndef RANKQL_SHELL_COMMANDS_H
#define RANKQL_SHELL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "shell/shell.h"

/* Runs the command on line (its first non-blank character is '\'); s is the input
 * it came from (\r discards its pending statement). Returns false when it failed. */
bool sh_command(sh_state *st, sh_script *s, const char *line, size_t len);

/* The names of the backslash commands, for completion; NULL-terminated. */
extern const char *const sh_command_names[];

/* Parses on/off, true/false, yes/no, 1/0 (any case). */
bool sh_parse_bool(const char *text, bool *out);

#endif
