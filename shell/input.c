/* Input lines → backslash commands and statements. See input.h. */
#include "shell/input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shell/commands.h"
#include "shell/run.h"

#define MAX_INCLUDE_DEPTH 16

/* After a failure: does this input stop? Scripts stop under ON_ERROR_STOP (all of
 * them in batch mode; at the prompt, only the files of \i). */
static bool keep_going(sh_state *st, bool ok)
{
    if (st->quit)
        return false;
    if (ok || !st->on_error_stop)
        return true;
    if (!st->interactive) {
        st->quit = true;
        return false;
    }
    return st->depth == 0;
}

static bool run_ready(sh_state *st, sh_script *s, bool at_eof)
{
    sh_batch b;
    size_t n = sh_script_take(s, at_eof, &b);
    bool go = true;
    for (size_t i = 0; i < n && go; i++) {
        bool ok = sh_run_statement(st, s, &b.stmts[i]);
        go = keep_going(st, ok);
        if (sh_interrupted)
            break; /* Ctrl-C: the rest of this input line is dropped too */
    }
    sh_batch_free(&b);
    return go && !st->quit;
}

static bool is_command(const sh_script *s, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i < len && line[i] == '\\' && !sh_script_in_literal(s);
}

bool sh_feed_line(sh_state *st, sh_script *s, const char *line, size_t len)
{
    if (st->quit)
        return false;
    if (is_command(s, line, len)) {
        bool ok = sh_command(st, s, line, len);
        /* in the input, an empty line takes the command's place: line numbers stay right
         * and a statement typed around the command stays whole */
        sh_script_add(s, "\n", 1);
        return keep_going(st, ok);
    }
    sh_script_add(s, line, len);
    return run_ready(st, s, false);
}

bool sh_feed_end(sh_state *st, sh_script *s)
{
    if (st->quit)
        return false;
    return run_ready(st, s, true);
}

bool sh_run_stream(sh_state *st, FILE *f, const char *name)
{
    sh_script s;
    sh_script_init(&s, name, false);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool go = true;
    while (go && (n = getline(&line, &cap, f)) > 0)
        go = sh_feed_line(st, &s, line, (size_t)n);
    if (go)
        go = sh_feed_end(st, &s);
    free(line);
    sh_script_free(&s);
    return go;
}

bool sh_run_file(sh_state *st, const char *path)
{
    if (strcmp(path, "-") == 0)
        return sh_run_stream(st, stdin, NULL);
    if (st->depth >= MAX_INCLUDE_DEPTH) {
        fprintf(stderr, "rankql: %s: files included too deeply (at most %d)\n", path,
                MAX_INCLUDE_DEPTH);
        sh_fail(st, SH_EXIT_FAILED);
        return keep_going(st, false);
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fflush(st->out);
        fprintf(stderr, "rankql: cannot read %s: %s\n", path, strerror(errno));
        sh_fail(st, SH_EXIT_FAILED);
        return keep_going(st, false);
    }
    st->depth++;
    bool go = sh_run_stream(st, f, path);
    st->depth--;
    fclose(f);
    return go;
}

bool sh_run_string(sh_state *st, const char *text)
{
    sh_script s;
    sh_script_init(&s, NULL, false);
    bool go = true;
    const char *p = text;
    while (go && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        go = sh_feed_line(st, &s, p, len);
        p += len;
    }
    if (go)
        go = sh_feed_end(st, &s);
    sh_script_free(&s);
    return go;
}
