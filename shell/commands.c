/* Backslash commands of the shell. See commands.h. */
#include "shell/commands.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shell/complete.h"
#include "shell/input.h"
#include "shell/run.h"

const char *const sh_command_names[] = {
    "\\?", "\\c", "\\connect", "\\d", "\\format", "\\i", "\\o",
    "\\q", "\\r", "\\set", "\\timing", "\\x", NULL,
};

static const char help_text[] =
    "General\n"
    "  \\q                      quit rankql (or Ctrl-D)\n"
    "  \\?                      show this help\n"
    "  \\c HOST:PORT            connect to another rankqld, new session (same as USE)\n"
    "  \\i FILE                 run the statements and commands of FILE\n"
    "  \\r                      discard the statement being typed\n"
    "\n"
    "Output\n"
    "  \\format [table|csv|json] set or show the output format\n"
    "  \\x [on|off]             toggle expanded display (one block per row)\n"
    "  \\timing [on|off]        toggle showing how long each statement takes\n"
    "  \\o [FILE]               send results to FILE, or back to standard output\n"
    "\n"
    "Informational\n"
    "  \\d                      list tables and the variables of this session\n"
    "  \\d NAME                 describe the columns of a table or variable\n"
    "\n"
    "Settings\n"
    "  \\set [NAME [VALUE]]     set or list settings: ON_ERROR_STOP on|off\n"
    "\n"
    "Statements end with ';' and may span lines; see docs/language.md.\n";

bool sh_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* ---- arguments --------------------------------------------------------------------- */

typedef struct args {
    char *name;      /* "d", "timing", "?" */
    char *argv[4];
    int argc;
} args;

/* Splits "\name arg 'quoted arg' …": words separated by blanks, '…' or "…" quoted. */
static void split(const char *line, size_t len, args *a)
{
    memset(a, 0, sizeof(*a));
    char *text = xstrndup(line, len);
    char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    p++; /* the backslash */
    char *start = p;
    while (*p && !isspace((unsigned char)*p))
        p++;
    a->name = xstrndup(start, (size_t)(p - start));
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || a->argc == 4)
            break;
        strbuf word = {0};
        strbuf_puts(&word, "");
        while (*p && !isspace((unsigned char)*p)) {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                while (*p && *p != q)
                    strbuf_putc(&word, *p++);
                if (*p)
                    p++;
            } else {
                strbuf_putc(&word, *p++);
            }
        }
        a->argv[a->argc++] = strbuf_detach(&word);
    }
    free(text);
}

static void args_free(args *a)
{
    free(a->name);
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
}

static bool fail(sh_state *st, const char *fmt, const char *arg)
{
    fflush(st->out);
    fputs("rankql: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    sh_fail(st, SH_EXIT_FAILED);
    return false;
}

/* Tells the user the new value of a setting (at the prompt only, so scripts'
 * output stays clean). */
static void say(sh_state *st, const char *what, const char *value)
{
    if (st->interactive) {
        fprintf(stdout, "%s is %s.\n", what, value);
        fflush(stdout);
    }
}

/* \x, \timing: no argument toggles. */
static bool toggle(sh_state *st, const args *a, bool *flag, const char *what)
{
    if (a->argc > 0 && !sh_parse_bool(a->argv[0], flag))
        return fail(st, "unrecognized value \"%s\": expected on or off", a->argv[0]);
    if (a->argc == 0)
        *flag = !*flag;
    say(st, what, *flag ? "on" : "off");
    return true;
}

/* ---- \d ---------------------------------------------------------------------------- */

static bool is_variable(const sh_state *st, const char *name)
{
    for (size_t i = 0; i < st->nvars; i++)
        if (strcmp(st->vars[i], name) == 0)
            return true;
    return false;
}

static void print_listing(sh_state *st, json_t *result, const char *title)
{
    sh_print_opts opts = st->print;
    opts.title = title;
    strbuf sb = {0};
    sh_print_result(&sb, result, &opts);
    sh_emit(st, &sb);
    strbuf_free(&sb);
}

static json_t *pair(const char *a, const char *b)
{
    json_t *row = json_array();
    json_array_append_new(row, json_string(a));
    json_array_append_new(row, json_string(b));
    return row;
}

static bool list_relations(sh_state *st)
{
    json_t *result = json_pack("{s:[s,s], s:[]}", "columns", "Name", "Type", "rows");
    json_t *rows = json_object_get(result, "rows");
    for (size_t i = 0; sh_table_names[i]; i++)
        json_array_append_new(rows, pair(sh_table_names[i], "table"));
    for (size_t i = 0; i < st->nvars; i++)
        json_array_append_new(rows, pair(st->vars[i], "variable"));
    print_listing(st, result, "List of tables and variables");
    json_decref(result);
    return true;
}

static const char *value_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return "text";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    case JSON_NULL: break;
    }
    return NULL;
}

/* The type of column c: that of its values (integer and number mix as number). */
static const char *column_type(const json_t *rows, size_t c)
{
    const char *type = NULL;
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row) {
        const char *t = value_type(json_array_get(row, c));
        if (!t)
            continue;
        if (!type)
            type = t;
        else if (strcmp(type, t) != 0)
            type = (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0) &&
                           (strcmp(t, "integer") == 0 || strcmp(t, "number") == 0)
                       ? "number"
                       : "mixed";
    }
    return type ? type : "";
}

static bool describe(sh_state *st, const char *name)
{
    char *quoted = sh_quote_name(name);
    char *query = xasprintf("SELECT * FROM %s LIMIT 100;", quoted);
    free(quoted);
    sh_reply r;
    sh_status status = sh_query_quiet(st, query, &r);
    free(query);
    if (status != SH_OK) {
        sh_request_failed(st, &r);
        sh_reply_free(&r);
        return false;
    }
    const json_t *columns = json_object_get(r.body, "columns");
    const json_t *rows = json_object_get(r.body, "rows");
    json_t *result = json_pack("{s:[s,s], s:[]}", "columns", "Column", "Type", "rows");
    json_t *out_rows = json_object_get(result, "rows");
    size_t i;
    const json_t *col;
    json_array_foreach(columns, i, col) {
        const char *cname = json_string_value(col);
        json_array_append_new(out_rows, pair(cname ? cname : "?", column_type(rows, i)));
    }
    char *title = xasprintf("%s \"%s\"", is_variable(st, name) ? "Variable" : "Table", name);
    print_listing(st, result, title);
    free(title);
    json_decref(result);
    sh_reply_free(&r);
    return true;
}

/* ---- \o ---------------------------------------------------------------------------- */

static bool set_output(sh_state *st, const args *a)
{
    FILE *f = stdout;
    if (a->argc > 0) {
        f = fopen(a->argv[0], "w");
        if (!f) {
            char *why = xasprintf("%s: %s", a->argv[0], strerror(errno));
            fail(st, "cannot write %s", why);
            free(why);
            return false;
        }
    }
    if (st->out != stdout)
        fclose(st->out);
    st->out = f;
    return true;
}

/* ---- \set -------------------------------------------------------------------------- */

static bool set_variable(sh_state *st, const args *a)
{
    if (a->argc == 0) {
        fprintf(st->out, "ON_ERROR_STOP = '%s'\n", st->on_error_stop ? "on" : "off");
        fflush(st->out);
        return true;
    }
    if (strcasecmp(a->argv[0], "ON_ERROR_STOP") != 0)
        return fail(st, "unknown variable %s (rankql knows ON_ERROR_STOP)", a->argv[0]);
    bool v = true;
    if (a->argc > 1 && !sh_parse_bool(a->argv[1], &v))
        return fail(st, "unrecognized value \"%s\" for ON_ERROR_STOP: expected on or off",
                    a->argv[1]);
    st->on_error_stop = v;
    return true;
}

/* ---- dispatch ------------------------------------------------------------------------ */

bool sh_command(sh_state *st, sh_script *s, const char *line, size_t len)
{
    args a;
    split(line, len, &a);
    const char *n = a.name;
    bool ok = true;
    if (strcmp(n, "q") == 0 || strcmp(n, "quit") == 0) {
        st->quit = true;
    } else if (strcmp(n, "?") == 0 || strcmp(n, "help") == 0) {
        fputs(help_text, st->out);
        fflush(st->out);
    } else if (strcmp(n, "d") == 0) {
        ok = a.argc == 0 ? list_relations(st) : describe(st, a.argv[0]);
    } else if (strcmp(n, "timing") == 0) {
        ok = toggle(st, &a, &st->timing, "Timing");
    } else if (strcmp(n, "x") == 0) {
        ok = toggle(st, &a, &st->print.expanded, "Expanded display");
    } else if (strcmp(n, "o") == 0 || strcmp(n, "out") == 0) {
        ok = set_output(st, &a);
    } else if (strcmp(n, "i") == 0 || strcmp(n, "include") == 0) {
        if (a.argc == 0)
            ok = fail(st, "\\%s: missing required argument (a file)", n);
        else
            ok = sh_run_file(st, a.argv[0]);
    } else if (strcmp(n, "set") == 0) {
        ok = set_variable(st, &a);
    } else if (strcmp(n, "format") == 0 || strcmp(n, "pset") == 0) {
        /* \pset format csv works too, as in psql */
        int first = strcmp(n, "pset") == 0 && a.argc > 0 && strcasecmp(a.argv[0], "format") == 0;
        if (a.argc > first && !sh_format_parse(a.argv[first], &st->print.format))
            ok = fail(st, "unknown format \"%s\": expected table, csv or json", a.argv[first]);
        else
            say(st, "Output format", sh_format_name(st->print.format));
    } else if (strcmp(n, "c") == 0 || strcmp(n, "connect") == 0) {
        if (a.argc == 0)
            ok = fail(st, "\\%s: missing required argument (HOST:PORT)", n);
        else
            ok = sh_connect(st, a.argv[0], true);
    } else if (strcmp(n, "r") == 0 || strcmp(n, "reset") == 0) {
        sh_script_discard(s);
        say(st, "Query buffer", "reset (cleared)");
    } else {
        fflush(st->out);
        fprintf(stderr, "invalid command \\%s. Try \\? for help.\n", n);
        sh_fail(st, SH_EXIT_FAILED);
        ok = false;
    }
    args_free(&a);
    return ok;
}
