/* rankql: the RankQL client.
 *
 * A psql-style shell and batch client for rankqld: statements from -c, -f files,
 * standard input or the interactive prompt are split locally with the parser (a
 * syntax error is shown at once), sent one by one over HTTP and their results
 * printed as tables, CSV or JSON lines. `rankql --parse [FILE…]` is the parser as a
 * lint tool: one canonical JSON AST per statement and line, or positioned error
 * messages; it needs no server.
 *
 * Exit status: 0 all succeeded; 1 a statement, command or file failed; 2 no
 * connection (or it was lost in a script) or a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/util.h"
#include "grammar/parse.h"
#include "shell/commands.h"
#include "shell/input.h"
#include "shell/repl.h"
#include "shell/run.h"
#include "shell/shell.h"
#include "shell/token.h"

static void usage(FILE *out)
{
    fputs("usage: rankql [OPTION]... [-c STATEMENTS | -f FILE]...\n"
          "       rankql --parse [FILE…]\n"
          "       rankql [-H HOST:PORT] token create|list|revoke …  (rankql token --help)\n"
          "\n"
          "The RankQL shell: runs statements on rankqld. With -c or -f it runs those, in the\n"
          "order given; else it reads standard input, or prompts when that is a terminal.\n"
          "\n"
          "  -H, --host HOST:PORT   the server (default $RANKQL_HOST, else " SH_DEFAULT_HOST ")\n"
          "  -c, --command TEXT     run the statements (or one backslash command) of TEXT\n"
          "  -f, --file FILE        run the statements and commands of FILE ('-': stdin)\n"
          "      --format FORMAT    table (default), csv or json\n"
          "  -x, --expanded         expanded table output: one block per row\n"
          "      --timing           print how long each statement took\n"
          "      --token FILE       send the bearer token in FILE (default $RANKQL_TOKEN)\n"
          "  -v, --set NAME=VALUE   set a variable: ON_ERROR_STOP=1\n"
          "      --on-error-stop    stop at the first error (same as -v ON_ERROR_STOP=1)\n"
          "  --parse      parse statements from FILEs (or standard input, or '-') and print\n"
          "               one JSON syntax tree per statement and line; errors go to stderr\n"
          "               with line:column and a caret; exit 0 when all parsed, else 1\n"
          "  --help       show this help\n"
          "  --version    show the version\n"
          "\n"
          "Exit status: 0 all statements succeeded, 1 one failed, 2 no connection to the\n"
          "server or a usage error. See docs/shell.md.\n",
          out);
}

/* Parses one input; prints ASTs to stdout and errors to stderr. Returns the error count. */
static size_t parse_one(const char *name, const char *text, size_t len)
{
    rq_script *s = rq_parse_script(text, len);
    for (size_t i = 0; i < s->n; i++) {
        const rq_statement *st = &s->stmts[i];
        if (st->ast) {
            char *json = ast_to_json(st->ast);
            puts(json);
            free(json);
        } else {
            char *msg = rq_error_format(s, st->error, name);
            fputs(msg, stderr);
            free(msg);
        }
    }
    size_t errors = s->nerrors;
    rq_script_free(s);
    return errors;
}

static int run_parse(int argc, char **argv)
{
    size_t errors = 0;
    int failed_reads = 0;
    if (argc == 0) {
        static char *stdin_only[] = {"-"};
        argv = stdin_only;
        argc = 1;
    }
    for (int i = 0; i < argc; i++) {
        bool is_stdin = strcmp(argv[i], "-") == 0;
        const char *name = is_stdin ? "<stdin>" : argv[i];
        FILE *f = is_stdin ? stdin : fopen(argv[i], "rb");
        size_t len = 0;
        char *text = f ? read_stream(f, &len) : NULL;
        if (!text) {
            fprintf(stderr, "rankql: cannot read %s: %s\n", name, strerror(errno));
            failed_reads++;
        } else {
            errors += parse_one(name, text, len);
        }
        free(text);
        if (f && !is_stdin)
            fclose(f);
    }
    fflush(stdout);
    return errors || failed_reads ? 1 : 0;
}

/* ---- the shell ----------------------------------------------------------------------- */

typedef struct action {
    bool is_file;
    const char *text;   /* statements of -c, or the path of -f */
} action;

typedef struct options {
    const char *host;
    const char *token_file;
    action *actions;
    size_t nactions;
    sh_format format;
    bool expanded;
    bool timing;
    bool on_error_stop;
} options;

static int usage_error(const char *fmt, const char *arg)
{
    fputs("rankql: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'rankql --help' for more information.\n", stderr);
    return SH_EXIT_CONNECT;
}

/* -v NAME=VALUE: returns 0, or the exit status of a usage error. */
static int set_variable(options *o, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    size_t nlen = eq ? (size_t)(eq - assignment) : strlen(assignment);
    if (nlen != strlen("ON_ERROR_STOP") || strncasecmp(assignment, "ON_ERROR_STOP", nlen) != 0)
        return usage_error("unknown variable in -v %s (rankql knows ON_ERROR_STOP)", assignment);
    bool v = true;
    if (eq && eq[1] && !sh_parse_bool(eq + 1, &v))
        return usage_error("-v %s: expected on or off", assignment);
    o->on_error_stop = v;
    return 0;
}

static int run_shell(const options *o)
{
    sh_state st;
    sh_state_init(&st);
    st.print.format = o->format;
    st.print.expanded = o->expanded;
    st.timing = o->timing;
    st.on_error_stop = o->on_error_stop;
    if (o->token_file) {
        st.token = sh_read_token_file(o->token_file);
        if (!st.token) {
            fprintf(stderr, "rankql: cannot read a token from %s: %s\n", o->token_file,
                    strerror(errno));
            sh_state_free(&st);
            return SH_EXIT_CONNECT;
        }
    } else if (getenv("RANKQL_TOKEN") && *getenv("RANKQL_TOKEN")) {
        st.token = xstrdup(getenv("RANKQL_TOKEN"));
    }
    st.interactive = o->nactions == 0 && isatty(STDIN_FILENO);

    sh_client_global_init();
    sh_client_set_cancel_flag(&sh_interrupted);
    sh_client_show_progress(isatty(STDERR_FILENO)); /* the bar of a WAIT; never in a pipe */
    int status;
    if (!sh_connect(&st, o->host, false)) {
        status = SH_EXIT_CONNECT;
    } else if (st.interactive) {
        sh_repl(&st);
        status = SH_EXIT_OK; /* as psql: errors at the prompt are not the shell's failure */
    } else {
        if (o->nactions == 0)
            sh_run_stream(&st, stdin, NULL);
        for (size_t i = 0; i < o->nactions && !st.quit; i++) {
            if (o->actions[i].is_file)
                sh_run_file(&st, o->actions[i].text);
            else
                sh_run_string(&st, o->actions[i].text);
        }
        status = st.status;
    }
    fflush(stdout);
    sh_state_free(&st);
    sh_client_global_cleanup();
    return status;
}

int main(int argc, char **argv)
{
    enum { OPT_PARSE = 1000, OPT_HELP, OPT_VERSION, OPT_FORMAT, OPT_TOKEN, OPT_ON_ERROR_STOP,
           OPT_TIMING };
    static const struct option long_options[] = {
        {"parse", no_argument, NULL, OPT_PARSE},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {"host", required_argument, NULL, 'H'},
        {"command", required_argument, NULL, 'c'},
        {"file", required_argument, NULL, 'f'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"expanded", no_argument, NULL, 'x'},
        {"timing", no_argument, NULL, OPT_TIMING},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"set", required_argument, NULL, 'v'},
        {"on-error-stop", no_argument, NULL, OPT_ON_ERROR_STOP},
        {NULL, 0, NULL, 0},
    };
    int token_at = sh_token_command_index(argc, argv); /* rankql [-H H] token … */
    if (token_at > 0)
        return sh_token_main(argc, argv, token_at);
    bool parse = false;
    options o = {0};
    o.format = SH_FORMAT_TABLE;
    o.actions = xcalloc((size_t)argc, sizeof(action));
    int c, rc = -1;
    while (rc < 0 && (c = getopt_long(argc, argv, "hH:c:f:xv:", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_PARSE:
            parse = true;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            rc = 0;
            break;
        case OPT_VERSION:
            printf("rankql %s\n", RANKQL_VERSION);
            rc = 0;
            break;
        case 'H':
            o.host = optarg;
            break;
        case 'c':
        case 'f':
            o.actions[o.nactions].is_file = c == 'f';
            o.actions[o.nactions++].text = optarg;
            break;
        case OPT_FORMAT:
            if (!sh_format_parse(optarg, &o.format))
                rc = usage_error("unknown format \"%s\": expected table, csv or json", optarg);
            break;
        case 'x':
            o.expanded = true;
            break;
        case OPT_TIMING:
            o.timing = true;
            break;
        case OPT_TOKEN:
            o.token_file = optarg;
            break;
        case 'v': {
            int err = set_variable(&o, optarg);
            if (err)
                rc = err;
            break;
        }
        case OPT_ON_ERROR_STOP:
            o.on_error_stop = true;
            break;
        default:
            usage(stderr);
            rc = 2;
            break;
        }
    }
    if (rc < 0 && parse)
        rc = run_parse(argc - optind, argv + optind);
    if (rc < 0 && optind < argc)
        rc = usage_error("unexpected argument \"%s\" (statements go in -c, files in -f)",
                         argv[optind]);
    if (rc < 0) {
        if (!o.host)
            o.host = getenv("RANKQL_HOST") && *getenv("RANKQL_HOST") ? getenv("RANKQL_HOST")
                                                                    : SH_DEFAULT_HOST;
        rc = run_shell(&o);
    }
    free(o.actions);
    return rc;
}
