/* Tab completion candidates. See complete.h. */
#include "shell/complete.h"

#include <ctype.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shell/commands.h"
#include "shell/run.h"

const char *const sh_table_names[] = {
    "image_models", "text_models", "models", "datasets", "readers", "jobs", NULL,
};

/* Reserved words (docs/language.md), then the non-reserved keywords. */
static const char *const reserved[] = {
    "AND", "AS", "ASC", "AUTO", "AVG", "BENCHMARK", "BETWEEN", "BUDGET", "BY", "CHANGE",
    "CHUNK", "CLASSIFIED", "DECLARE", "DESC", "DISTINCT", "EXCEPT", "EXPLAIN", "FINETUNE",
    "FINETUNED", "FROM", "IN", "INTERSECT", "IS", "LIKE", "LIMIT", "MAX", "MIN", "NOT", "NULL",
    "ON", "OR", "ORDER", "OTHER", "PRINT", "PURGE", "RANK", "REGISTER", "SELECT", "SUM", "TASK",
    "TESTED", "THAN", "TO", "TRAINED", "UNION", "USE", "VALUES", "WHERE", "WITH", NULL,
};
static const char *const unreserved[] = {
    "ANALYZE", "CACHE", "CANCEL", "DATASET", "DATASETS", "EXTENSIONS", "FALSE", "JOB", "JOBS",
    "JSON", "MODEL", "MODELS", "QUERY", "SHOW", "TRUE", "USING", "WAIT", NULL,
};

static bool in_list(const char *const *list, const char *word, size_t len)
{
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == len && strncasecmp(list[i], word, len) == 0)
            return true;
    return false;
}

char *sh_quote_name(const char *name)
{
    bool plain = (isalpha((unsigned char)name[0]) || name[0] == '_') &&
                 !in_list(reserved, name, strlen(name));
    for (const char *p = name; *p && plain; p++)
        plain = isalnum((unsigned char)*p) || *p == '_';
    if (plain)
        return xstrdup(name);
    strbuf sb = {0};
    strbuf_putc(&sb, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_putc(&sb, '\\');
        strbuf_putc(&sb, *p);
    }
    strbuf_putc(&sb, '"');
    return strbuf_detach(&sb);
}

/* ---- candidate lists ------------------------------------------------------------------ */

typedef struct list {
    char **items;
    size_t n, cap;
} list;

static void add(list *l, const char *word)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], word) == 0)
            return;
    if (l->n + 1 >= l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->items = xrealloc(l->items, l->cap * sizeof(char *));
    }
    l->items[l->n++] = xstrdup(word);
    l->items[l->n] = NULL;
}

/* Adds the words of words[] that start with prefix (any case). lower: in lower case. */
static void add_matching(list *l, const char *const *words, size_t nwords, const char *prefix,
                         size_t plen, bool lower)
{
    for (size_t i = 0; i < nwords && words[i]; i++) {
        if (strncasecmp(words[i], prefix, plen) != 0)
            continue;
        if (lower) {
            char *w = xstrdup(words[i]);
            for (char *p = w; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            add(l, w);
            free(w);
        } else {
            add(l, words[i]);
        }
    }
}

static int compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sh_complete_free(char **candidates)
{
    if (!candidates)
        return;
    for (char **p = candidates; *p; p++)
        free(*p);
    free(candidates);
}

/* Column names of the catalog, asked of the server once per connection. */
static void load_columns(sh_state *st)
{
    if (st->columns_loaded || !st->client)
        return;
    st->columns_loaded = true;
    static const char *const queries[] = {
        "SELECT * FROM models LIMIT 0;", "SELECT * FROM datasets LIMIT 0;",
        "SELECT * FROM jobs LIMIT 0;",
    };
    list l = {0};
    for (size_t i = 0; i < st->ncolumns; i++)
        free(st->columns[i]);
    free(st->columns);
    for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
        sh_reply r;
        if (sh_query_quiet(st, queries[q], &r) == SH_OK) {
            size_t i;
            const json_t *c;
            json_array_foreach(json_object_get(r.body, "columns"), i, c) {
                if (json_is_string(c))
                    add(&l, json_string_value(c));
            }
        }
        sh_reply_free(&r);
    }
    st->columns = l.items;
    st->ncolumns = l.n;
}

/* ---- file names (\i, \o) --------------------------------------------------------------- */

static void add_files(list *l, const char *prefix, size_t plen)
{
    char *typed = xstrndup(prefix, plen);
    const char *slash = strrchr(typed, '/');
    char *dir = slash ? xstrndup(typed, (size_t)(slash - typed) + 1) : xstrdup("");
    const char *base = slash ? slash + 1 : typed;
    DIR *d = opendir(*dir ? dir : ".");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, base, strlen(base)) != 0 || strcmp(e->d_name, ".") == 0 ||
                strcmp(e->d_name, "..") == 0 || (e->d_name[0] == '.' && base[0] != '.'))
                continue;
            char *path = xasprintf("%s%s%s", dir, e->d_name, e->d_type == DT_DIR ? "/" : "");
            add(l, path);
            free(path);
        }
        closedir(d);
    }
    free(dir);
    free(typed);
}

/* ---- the word at the cursor ------------------------------------------------------------ */

static bool word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* The word before [start]: its text into buf (empty when none). */
static void previous_word(const char *line, size_t start, char *buf, size_t size)
{
    size_t e = start;
    while (e > 0 && isspace((unsigned char)line[e - 1]))
        e--;
    size_t b = e;
    while (b > 0 && word_char(line[b - 1]))
        b--;
    size_t n = e - b < size - 1 ? e - b : size - 1;
    memcpy(buf, line + b, n);
    buf[n] = '\0';
}

static void complete_command(sh_state *st, list *l, const char *line, size_t cursor, size_t *start)
{
    size_t i = 0;
    while (i < cursor && isspace((unsigned char)line[i]))
        i++;
    size_t name_end = i;
    while (name_end < cursor && !isspace((unsigned char)line[name_end]))
        name_end++;
    if (name_end == cursor) { /* the command name itself */
        *start = i;
        for (size_t k = 0; sh_command_names[k]; k++)
            if (strncmp(sh_command_names[k], line + i, cursor - i) == 0)
                add(l, sh_command_names[k]);
        return;
    }
    size_t ws = cursor;
    while (ws > name_end && !isspace((unsigned char)line[ws - 1]))
        ws--;
    *start = ws;
    const char *prefix = line + ws;
    size_t plen = cursor - ws;
    char cmd[16];
    size_t clen = name_end - i < sizeof(cmd) - 1 ? name_end - i : sizeof(cmd) - 1;
    memcpy(cmd, line + i, clen);
    cmd[clen] = '\0';
    static const char *const on_off[] = {"on", "off", NULL};
    static const char *const formats[] = {"table", "csv", "json", NULL};
    static const char *const settings[] = {"ON_ERROR_STOP", NULL};
    if (strcmp(cmd, "\\d") == 0) {
        add_matching(l, sh_table_names, SIZE_MAX, prefix, plen, false);
        add_matching(l, (const char *const *)st->vars, st->nvars, prefix, plen, false);
    } else if (strcmp(cmd, "\\x") == 0 || strcmp(cmd, "\\timing") == 0) {
        add_matching(l, on_off, SIZE_MAX, prefix, plen, false);
    } else if (strcmp(cmd, "\\format") == 0) {
        add_matching(l, formats, SIZE_MAX, prefix, plen, false);
    } else if (strcmp(cmd, "\\set") == 0) {
        char prev[32];
        previous_word(line, ws, prev, sizeof(prev));
        add_matching(l, strcasecmp(prev, "ON_ERROR_STOP") == 0 ? on_off : settings, SIZE_MAX,
                     prefix, plen, false);
    } else if (strcmp(cmd, "\\i") == 0 || strcmp(cmd, "\\o") == 0) {
        add_files(l, prefix, plen);
    }
}

char **sh_complete(sh_state *st, const char *line, size_t cursor, size_t *start)
{
    list l = {0};
    size_t i = 0;
    while (i < cursor && isspace((unsigned char)line[i]))
        i++;
    if (i < cursor && line[i] == '\\') {
        complete_command(st, &l, line, cursor, start);
    } else {
        size_t b = cursor;
        while (b > 0 && word_char(line[b - 1]))
            b--;
        *start = b;
        const char *prefix = line + b;
        size_t plen = cursor - b;
        char prev[32];
        previous_word(line, b, prev, sizeof(prev));
        bool lower = false, upper = false;
        for (size_t k = 0; k < plen; k++) {
            lower = lower || islower((unsigned char)prefix[k]);
            upper = upper || isupper((unsigned char)prefix[k]);
        }
        bool lower_case = lower && !upper;
        const char *const *vars = (const char *const *)st->vars;
        if (strcasecmp(prev, "FROM") == 0) {
            add_matching(&l, sh_table_names, SIZE_MAX, prefix, plen, false);
            add_matching(&l, vars, st->nvars, prefix, plen, false);
        } else if (strcasecmp(prev, "THAN") == 0 || strcasecmp(prev, "PRINT") == 0 ||
                   strcasecmp(prev, "FINETUNE") == 0) {
            add_matching(&l, vars, st->nvars, prefix, plen, false);
        } else {
            add_matching(&l, reserved, SIZE_MAX, prefix, plen, lower_case);
            add_matching(&l, unreserved, SIZE_MAX, prefix, plen, lower_case);
            if (plen > 0) { /* names only once something is typed: fewer server calls */
                load_columns(st);
                add_matching(&l, (const char *const *)st->columns, st->ncolumns, prefix, plen,
                             false);
                add_matching(&l, sh_table_names, SIZE_MAX, prefix, plen, false);
                add_matching(&l, vars, st->nvars, prefix, plen, false);
            }
        }
    }
    if (l.n == 0) {
        free(l.items);
        return NULL;
    }
    qsort(l.items, l.n, sizeof(char *), compare);
    return l.items;
}
