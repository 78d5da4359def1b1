/* `rankql token create|list|revoke` (docs/shell.md, "Tokens"): the token endpoints of
 * rankqld (POST/GET /v1/tokens, DELETE /v1/tokens/ID|NAME) from the command line. */
#ifndef RANKQL_SHELL_TOKEN_H
#define RANKQL_SHELL_TOKEN_H

/* The index of the "token" word in argv when the command line is `rankql [-H HOST]
 * [--token FILE] token …`, else 0. */
int sh_token_command_index(int argc, char **argv);

/* Runs the token command whose word is argv[k]; returns the exit status (0 ok, 1 the
 * server refused, 2 no connection or a usage error). */
int sh_token_main(int argc, char **argv, int k);

/* The bearer token in FILE (--token): its first line that is not blank or a '#' comment,
 * trimmed. NULL with errno (ENODATA: no such line). */
char *sh_read_token_file(const char *path);

#endif
