/* The state of one shell run: set-up, failures, declared variables. See shell.h. */
#include "shell/shell.h"

#include <stdlib.h>
#include <string.h>

volatile sig_atomic_t sh_interrupted;

void sh_state_init(sh_state *st)
{
    memset(st, 0, sizeof(*st));
    st->print.format = SH_FORMAT_TABLE;
    st->out = stdout;
}

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

void sh_state_free(sh_state *st)
{
    if (st->out && st->out != stdout)
        fclose(st->out);
    sh_client_free(st->client);
    free(st->token);
    free_list(st->vars, st->nvars);
    free_list(st->columns, st->ncolumns);
    memset(st, 0, sizeof(*st));
}

void sh_fail(sh_state *st, int status)
{
    if (status > st->status)
        st->status = status;
}

void sh_add_variable(sh_state *st, const char *name)
{
    for (size_t i = 0; i < st->nvars; i++)
        if (strcmp(st->vars[i], name) == 0)
            return;
    st->vars = xrealloc(st->vars, (st->nvars + 1) * sizeof(char *));
    st->vars[st->nvars++] = xstrdup(name);
}

void sh_forget_variables(sh_state *st)
{
    free_list(st->vars, st->nvars);
    st->vars = NULL;
    st->nvars = 0;
}
