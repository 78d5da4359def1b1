/* The state of one rankql shell run, shared by its parts: the server it talks to,
 * output settings, error handling, what is known for completion.
 *
 *   main.c      options, batch (-c, -f, stdin) or the prompt
 *   input.c     input lines → backslash commands and complete statements
 *   run.c       one statement: USE here, the rest to the server; results and errors
 *   commands.c  backslash commands (\d, \x, \timing, \o, \i, \set, \format, …)
 *   repl.c      the interactive prompt (libedit): editing, history, Ctrl-C
 *   complete.c  tab completion candidates
 *   client.c    HTTP (libcurl);  format.c  tables, CSV, JSON;  script.c  statements
 */
#ifndef RANKQL_SHELL_SHELL_H
#define RANKQL_SHELL_SHELL_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "shell/client.h"
#include "shell/format.h"
#include "shell/script.h"

#define RANKQL_VERSION "0.1.0"
#define SH_DEFAULT_HOST "127.0.0.1:8001"

/* Exit statuses: all went well; a statement or command failed; no connection or a
 * usage error. */
enum { SH_EXIT_OK = 0, SH_EXIT_FAILED = 1, SH_EXIT_CONNECT = 2 };

typedef struct sh_state {
    sh_client *client;      /* the current server, with its session */
    char *token;            /* bearer token, or NULL */
    sh_print_opts print;    /* output format, expanded display */
    bool timing;            /* \timing: "Time: … ms" after each statement */
    bool on_error_stop;     /* stop a script at its first error */
    bool interactive;       /* the prompt is running */
    FILE *out;              /* results: stdout, or the file of \o */
    int status;             /* exit status so far (SH_EXIT_*) */
    bool quit;              /* \q, or a script stopped: read no more input */
    int depth;              /* \i nesting */
    char **vars;            /* variables declared in this session */
    size_t nvars;
    char **columns;         /* catalog column names, for completion (loaded lazily) */
    size_t ncolumns;
    bool columns_loaded;
} sh_state;

/* Set by SIGINT while the prompt runs; a request in progress stops. */
extern volatile sig_atomic_t sh_interrupted;

void sh_state_init(sh_state *st);
void sh_state_free(sh_state *st);

/* Records a failure: the exit status becomes at least status. */
void sh_fail(sh_state *st, int status);

/* Remembers a declared variable (for \d and completion); forgets all on false. */
void sh_add_variable(sh_state *st, const char *name);
void sh_forget_variables(sh_state *st);

#endif
