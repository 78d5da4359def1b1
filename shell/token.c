/* rankql token: create, list and revoke catalog tokens over HTTP. */
#include "shell/token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/util.h"
#include "shell/client.h"
#include "shell/shell.h"

static void usage(FILE *out)
{
    fputs("usage: rankql [-H HOST:PORT] [--token FILE] token create --name NAME --role "
          "admin|analyst [--expires DURATION]\n"
          "       rankql [-H HOST:PORT] [--token FILE] token list [--json]\n"
          "       rankql [-H HOST:PORT] [--token FILE] token revoke ID|NAME\n"
          "\n"
          "Manages the bearer tokens of rankqld's catalog (an admin token, or loopback\n"
          "without a token, is needed). create prints the new token on standard output, once:\n"
          "only its SHA-256 is stored. DURATION is 30d, 12h, 90m or seconds (default: never\n"
          "expires). See docs/shell.md.\n",
          out);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("rankql token: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'rankql token --help' for more information.\n", stderr);
    return SH_EXIT_CONNECT;
}

int sh_token_command_index(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "token") == 0)
            return i;
        if (strcmp(a, "-H") == 0 || strcmp(a, "--host") == 0 || strcmp(a, "--token") == 0)
            i++;
        else if (strncmp(a, "--host=", 7) != 0 && strncmp(a, "--token=", 8) != 0 &&
                 !(a[0] == '-' && a[1] == 'H' && a[2]))
            return 0;
    }
    return 0;
}

/* The first line of path that is not blank or a '#' comment, trimmed; NULL with errno. */
char *sh_read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *line = NULL, *token = NULL;
    size_t cap = 0;
    while (!token && getline(&line, &cap, f) > 0) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(p);
        while (n > 0 && strchr(" \t\r\n", p[n - 1]))
            n--;
        if (n > 0 && *p != '#')
            token = xstrndup(p, n);
    }
    int saved = errno;
    free(line);
    fclose(f);
    if (!token)
        errno = saved ? saved : ENODATA;
    return token;
}

/* The answer's outcome as an exit status, with the server's message on stderr. */
static int reply_status(const sh_reply *r)
{
    if (r->status == SH_OK)
        return SH_EXIT_OK;
    fprintf(stderr, "rankql token: %s%s\n", r->message ? r->message : "no answer",
            r->http_status == 401 ? " (give an admin token with --token FILE or $RANKQL_TOKEN, "
                                    "or run on the server's machine against its loopback "
                                    "address)"
                                  : "");
    return r->status == SH_SERVER_ERROR || r->status == SH_PROTOCOL ? SH_EXIT_FAILED
                                                                     : SH_EXIT_CONNECT;
}

static const char *text_or_dash(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "-";
}

/* "2025-01-02T03:04:05.123456+00:00" → "2025-01-02 03:04:05". */
static void short_time(const json_t *v, char *out, size_t size)
{
    const char *t = text_or_dash(v);
    snprintf(out, size, "%.19s", t);
    char *tee = strchr(out, 'T');
    if (tee)
        *tee = ' ';
}

static void print_list(const json_t *tokens)
{
    printf("%-6s %-24s %-8s %-8s %-19s  %-19s  %-19s\n", "id", "name", "role", "status",
           "created", "expires", "last used");
    size_t i;
    const json_t *t;
    json_array_foreach(tokens, i, t) {
        char created[32], expires[32], used[32];
        short_time(json_object_get(t, "created_at"), created, sizeof created);
        short_time(json_object_get(t, "expires_at"), expires, sizeof expires);
        short_time(json_object_get(t, "last_used_at"), used, sizeof used);
        printf("%-6lld %-24s %-8s %-8s %-19s  %-19s  %-19s\n",
               (long long)json_integer_value(json_object_get(t, "id")),
               text_or_dash(json_object_get(t, "name")), text_or_dash(json_object_get(t, "role")),
               text_or_dash(json_object_get(t, "status")), created, expires, used);
    }
    printf("(%zu token%s)\n", json_array_size(tokens), json_array_size(tokens) == 1 ? "" : "s");
}

static int run(sh_client *c, int argc, char **argv)
{
    const char *sub = argv[0];
    sh_reply r;
    int rc;
    if (strcmp(sub, "create") == 0) {
        const char *name = NULL, *role = NULL, *expires = NULL;
        for (int i = 1; i < argc; i++) {
            const char **slot = strcmp(argv[i], "--name") == 0      ? &name
                                : strcmp(argv[i], "--role") == 0    ? &role
                                : strcmp(argv[i], "--expires") == 0 ? &expires
                                                                    : NULL;
            if (!slot)
                return usage_error("create: unexpected argument \"%s\"", argv[i]);
            if (i + 1 >= argc)
                return usage_error("create: %s needs a value", argv[i]);
            *slot = argv[++i];
        }
        if (!name || !role)
            return usage_error("create needs --name NAME and --role admin|analyst%s", "");
        json_t *body = json_pack("{s:s, s:s}", "name", name, "role", role);
        if (expires)
            json_object_set_new(body, "expires_in", json_string(expires));
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        sh_client_request(c, "POST", "/v1/tokens", text, &r);
        free(text);
        rc = reply_status(&r);
        if (rc == SH_EXIT_OK) {
            printf("%s\n", text_or_dash(json_object_get(r.body, "token")));
            fprintf(stderr, "rankql token: created token %lld '%s' (%s, expires %s); it is shown "
                            "once: only its SHA-256 is stored\n",
                    (long long)json_integer_value(json_object_get(r.body, "id")), name,
                    text_or_dash(json_object_get(r.body, "role")),
                    json_is_string(json_object_get(r.body, "expires_at"))
                        ? json_string_value(json_object_get(r.body, "expires_at"))
                        : "never");
        }
    } else if (strcmp(sub, "list") == 0) {
        bool as_json = argc == 2 && strcmp(argv[1], "--json") == 0;
        if (argc > 2 || (argc == 2 && !as_json))
            return usage_error("list: unexpected argument \"%s\"", argv[argc - 1]);
        sh_client_get(c, "/v1/tokens", &r);
        rc = reply_status(&r);
        if (rc == SH_EXIT_OK && as_json) {
            char *text = json_dumps(json_object_get(r.body, "tokens"), JSON_COMPACT);
            printf("%s\n", text ? text : "[]");
            free(text);
        } else if (rc == SH_EXIT_OK) {
            print_list(json_object_get(r.body, "tokens"));
        }
    } else if (strcmp(sub, "revoke") == 0) {
        if (argc != 2)
            return usage_error("revoke takes one token id or name%s", "");
        char *escaped = xstrdup(argv[1]);
        /* ids and names are [A-Za-z0-9._@-]: nothing to escape; anything else the server
         * answers 404 for, so it must not reach the URL as another path */
        for (char *p = escaped; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-", *p))
                *p = '_';
        char *path = xasprintf("/v1/tokens/%s", escaped);
        free(escaped);
        sh_client_request(c, "DELETE", path, NULL, &r);
        free(path);
        rc = reply_status(&r);
        if (rc == SH_EXIT_OK)
            printf("revoked token %lld '%s' at %s\n",
                   (long long)json_integer_value(json_object_get(r.body, "id")),
                   text_or_dash(json_object_get(r.body, "name")),
                   text_or_dash(json_object_get(r.body, "revoked_at")));
    } else {
        return usage_error("unknown command \"%s\" (create, list or revoke)", sub);
    }
    sh_reply_free(&r);
    return rc;
}

int sh_token_main(int argc, char **argv, int k)
{
    const char *host = NULL, *token_file = NULL;
    for (int i = 1; i < k; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-H") == 0 || strcmp(a, "--host") == 0)
            host = argv[++i];
        else if (strcmp(a, "--token") == 0)
            token_file = argv[++i];
        else if (strncmp(a, "--host=", 7) == 0)
            host = a + 7;
        else if (strncmp(a, "--token=", 8) == 0)
            token_file = a + 8;
        else /* -HHOST */
            host = a + 2;
    }
    if (k + 1 >= argc || strcmp(argv[k + 1], "--help") == 0) {
        usage(k + 1 >= argc ? stderr : stdout);
        return k + 1 >= argc ? SH_EXIT_CONNECT : SH_EXIT_OK;
    }
    if (!host)
        host = getenv("RANKQL_HOST") && *getenv("RANKQL_HOST") ? getenv("RANKQL_HOST")
                                                              : SH_DEFAULT_HOST;
    char *token = NULL;
    if (token_file) {
        token = sh_read_token_file(token_file);
        if (!token) {
            fprintf(stderr, "rankql token: cannot read a token from %s: %s\n", token_file,
                    strerror(errno));
            return SH_EXIT_CONNECT;
        }
    } else if (getenv("RANKQL_TOKEN") && *getenv("RANKQL_TOKEN")) {
        token = xstrdup(getenv("RANKQL_TOKEN"));
    }
    sh_client_global_init();
    char err[256];
    sh_client *c = sh_client_new(host, token, err, sizeof err);
    int rc;
    if (!c) {
        fprintf(stderr, "rankql token: %s\n", err);
        rc = SH_EXIT_CONNECT;
    } else {
        rc = run(c, argc - k - 1, argv + k + 1);
        sh_client_free(c);
    }
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    sh_client_global_cleanup();
    return rc;
}
