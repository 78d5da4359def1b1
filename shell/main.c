/* rankql: the RankQL client.
 *
 * This version offers the parser as a lint tool: `rankql --parse [FILE…]` reads
 * statements from files (or standard input) and prints one canonical JSON AST per
 * statement and line, or positioned error messages. It needs no server.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "grammar/parse.h"

#define RANKQL_VERSION "0.1.0"

static void usage(FILE *out)
{
    fputs("usage: rankql --parse [FILE…]\n"
          "\n"
          "  --parse      parse statements from FILEs (or standard input, or '-') and print\n"
          "               one JSON syntax tree per statement and line; errors go to stderr\n"
          "               with line:column and a caret; exit 0 when all parsed, else 1\n"
          "  --help       show this help\n"
          "  --version    show the version\n",
          out);
}

/* Reads a whole stream; returns NULL and sets errno on failure. */
static char *read_all(FILE *f, size_t *len)
{
    strbuf sb = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_append(&sb, buf, n);
    if (ferror(f)) {
        strbuf_free(&sb);
        return NULL;
    }
    *len = sb.len;
    return strbuf_detach(&sb);
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
        char *text = f ? read_all(f, &len) : NULL;
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

int main(int argc, char **argv)
{
    enum { OPT_PARSE = 1000, OPT_HELP, OPT_VERSION };
    static const struct option options[] = {
        {"parse", no_argument, NULL, OPT_PARSE},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    bool parse = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case OPT_PARSE:
            parse = true;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("rankql %s\n", RANKQL_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!parse) {
        fputs("rankql: the interactive shell needs a server; this build offers --parse\n", stderr);
        usage(stderr);
        return 2;
    }
    return run_parse(argc - optind, argv + optind);
}
