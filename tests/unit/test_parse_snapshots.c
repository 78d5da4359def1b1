/* AST snapshot tests for the RankQL parser.
 *
 * Every tests/unit/snapshots/parse/NAME.rql holds one or more statements that must parse;
 * NAME.json next to it holds the expected syntax trees, one array element per statement,
 * pretty-printed for review. A case passes when the canonical JSON that ast_to_json()
 * prints for each statement equals the snapshot's element printed canonically (compact,
 * sorted keys), so integers and reals, key sets and positions must all match.
 *
 * Each case also checks positions against the source: every node's line:col must point
 * at the text it stands for (names, column paths, literals, keywords).
 *
 * After a deliberate change to the parser or printer:
 *
 *   RANKQL_UPDATE_SNAPSHOTS=1 build/tests/test_parse_snapshots
 *
 * rewrites every NAME.json from the current parser (and creates missing ones). Review the
 * diff (git diff tests/unit/snapshots) before committing: a snapshot is a statement of
 * what the language means, not a recording of what the parser happens to print.
 *
 * Run from the repository root (tests/run-tests.sh does); RANKQL_SNAPSHOT_DIR overrides
 * the folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "grammar/parse.h"

#define DEFAULT_DIR "tests/unit/snapshots/parse"
#define MIN_CASES 60
#define WIDTH 100

static const char *snapshot_dir(void)
{
    const char *d = getenv("RANKQL_SNAPSHOT_DIR");
    return d && *d ? d : DEFAULT_DIR;
}

static bool updating(void)
{
    const char *u = getenv("RANKQL_UPDATE_SNAPSHOTS");
    return u && *u && strcmp(u, "0") != 0;
}

/* ---- pretty printing for the snapshot files -------------------------------------------- */

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *flat(const json_t *v)
{
    return json_dumps(v, JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

/* Values that fit in the line stay on it; bigger objects and arrays get one member per line. */
static void pretty(strbuf *sb, const json_t *v, int indent, int col)
{
    char *f = flat(v);
    size_t n = json_is_object(v) ? json_object_size(v) : json_is_array(v) ? json_array_size(v) : 0;
    if (n == 0 || col + (int)strlen(f) <= WIDTH) {
        strbuf_puts(sb, f);
        free(f);
        return;
    }
    free(f);
    if (json_is_array(v)) {
        strbuf_puts(sb, "[\n");
        for (size_t i = 0; i < n; i++) {
            strbuf_printf(sb, "%*s", indent + 2, "");
            pretty(sb, json_array_get(v, i), indent + 2, indent + 2);
            strbuf_puts(sb, i + 1 < n ? ",\n" : "\n");
        }
        strbuf_printf(sb, "%*s]", indent, "");
        return;
    }
    const char **keys = xmalloc(n * sizeof(*keys));
    size_t k = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
        keys[k++] = key;
    qsort(keys, n, sizeof(*keys), compare_keys);
    strbuf_puts(sb, "{\n");
    for (size_t i = 0; i < n; i++) {
        json_t *ks = json_string(keys[i]);
        char *kq = flat(ks);
        json_decref(ks);
        strbuf_printf(sb, "%*s%s: ", indent + 2, "", kq);
        pretty(sb, json_object_get(v, keys[i]), indent + 2, indent + 2 + (int)strlen(kq) + 2);
        free(kq);
        strbuf_puts(sb, i + 1 < n ? ",\n" : "\n");
    }
    strbuf_printf(sb, "%*s}", indent, "");
    free(keys);
}

/* ---- position checks -------------------------------------------------------------------- */

/* Offset of line:col in src, or (size_t)-1 when the position is outside it. */
static size_t offset_of(const char *src, size_t len, long line, long col)
{
    if (line < 1 || col < 1)
        return (size_t)-1;
    size_t off = 0;
    for (long l = 1; l < line; l++) {
        const char *nl = memchr(src + off, '\n', len - off);
        if (!nl)
            return (size_t)-1;
        off = (size_t)(nl - src) + 1;
    }
    off += (size_t)col - 1;
    for (size_t i = off - ((size_t)col - 1); i < off && i < len; i++)
        if (src[i] == '\n')
            return (size_t)-1;
    return off < len ? off : (size_t)-1;
}

static bool starts_with_ci(const char *s, size_t avail, const char *word)
{
    size_t n = strlen(word);
    return n <= avail && strncasecmp(s, word, n) == 0;
}

/* Checks one node (and its children): its line:col must point at its own text. */
static void check_positions(const char *name, const char *src, size_t len, const json_t *node,
                            const char *where)
{
    if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++)
            check_positions(name, src, len, json_array_get(node, i), where);
        return;
    }
    if (!json_is_object(node))
        return;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)node, key, value)
        check_positions(name, src, len, value, key);

    json_t *jl = json_object_get(node, "line"), *jc = json_object_get(node, "col");
    if (!jl || !jc)
        return;
    const char *type = json_string_value(json_object_get(node, "type"));
    long line = (long)json_integer_value(jl), col = (long)json_integer_value(jc);
    size_t off = offset_of(src, len, line, col);
    if (off == (size_t)-1) {
        fail_msg("%s: %s node (in \"%s\") at %ld:%ld lies outside the source", name, type, where,
                 line, col);
        return;
    }
    const char *at = src + off;
    size_t avail = len - off;
    char c = *at;
    if (isspace((unsigned char)c) || c == ';' || c == ',')
        fail_msg("%s: %s node (in \"%s\") at %ld:%ld points at %s", name, type, where, line, col,
                 c == ';' ? "';'" : c == ',' ? "','" : "a blank");

    if (type && strcmp(type, "name") == 0) {
        const char *text = json_string_value(json_object_get(node, "name"));
        bool quoted = json_is_true(json_object_get(node, "quoted"));
        if (quoted) {
            if (c != '"' && c != '\'' && c != '`')
                fail_msg("%s: quoted name \"%s\" at %ld:%ld does not start with a quote (%.10s)",
                         name, text, line, col, at);
        } else if (strcmp(where, "target") != 0 || !strchr(text, ':')) {
            if (strncmp(at, text, strlen(text)) != 0)
                fail_msg("%s: name \"%s\" at %ld:%ld, source there is \"%.20s\"", name, text, line,
                         col, at);
        }
    } else if (type && strcmp(type, "column_ref") == 0) {
        const char *first = json_string_value(json_array_get(json_object_get(node, "path"), 0));
        if (strncmp(at, first, strlen(first)) != 0 && c != '"' && c != '\'' && c != '`')
            fail_msg("%s: column %s at %ld:%ld, source there is \"%.20s\"", name, first, line, col, at);
    } else if (type && strcmp(type, "literal") == 0) {
        json_t *v = json_object_get(node, "value");
        const char *text = json_string_value(json_object_get(node, "text"));
        if (text) {
            /* numbers: the text as written, a folded sign first ("-5", "- 5", "-(5)") */
            const char *digits = text[0] == '-' ? text + 1 : text;
            if (text[0] == '-' && c != '-')
                fail_msg("%s: negative literal %s at %ld:%ld, source there is \"%.20s\"", name,
                         text, line, col, at);
            if (text[0] != '-' && strncmp(at, text, strlen(text)) != 0)
                fail_msg("%s: number %s at %ld:%ld, source there is \"%.20s\"", name, text, line,
                         col, at);
            if (text[0] == '-' && !strstr(at, digits))
                fail_msg("%s: number %s at %ld:%ld not found after its sign", name, text, line, col);
        } else if (json_is_string(v)) {
            /* quoted, a bare word (kernel=rbf), or inside a strategy string where an
             * escaped quote (\") starts with its backslash */
            if (c != '"' && c != '\'' && c != '`' && c != '\\' && !isalpha((unsigned char)c))
                fail_msg("%s: string literal at %ld:%ld, source there is \"%.20s\"", name, line, col, at);
        } else if (json_is_true(v)) {
            if (!starts_with_ci(at, avail, "true"))
                fail_msg("%s: TRUE at %ld:%ld, source there is \"%.20s\"", name, line, col, at);
        } else if (json_is_false(v)) {
            if (!starts_with_ci(at, avail, "false"))
                fail_msg("%s: FALSE at %ld:%ld, source there is \"%.20s\"", name, line, col, at);
        } else if (json_is_null(v)) {
            if (!starts_with_ci(at, avail, "null"))
                fail_msg("%s: NULL at %ld:%ld, source there is \"%.20s\"", name, line, col, at);
        }
    } else if (type) {
        /* statements start with their keyword */
        static const char *const keyword_nodes[][2] = {
            {"explain", "explain"}, {"declare", "declare"}, {"register", "register"},
            {"use", "use"},         {"print", "print"},     {"finetune", "finetune"},
            {"purge", "purge"},     {"show", "show"},       {"cancel", "cancel"},
            {"finetuned", "finetuned"}, {"star", "*"},      {"change", "change"},
        };
        for (size_t i = 0; i < sizeof(keyword_nodes) / sizeof(keyword_nodes[0]); i++)
            if (strcmp(type, keyword_nodes[i][0]) == 0 && !starts_with_ci(at, avail, keyword_nodes[i][1]))
                fail_msg("%s: %s node at %ld:%ld, source there is \"%.20s\"", name, type, line, col, at);
        if (strcmp(type, "select") == 0 || strcmp(type, "rank") == 0) {
            const char *kw = type[0] == 's' ? "select" : "rank";
            if (!starts_with_ci(at, avail, kw))
                fail_msg("%s: %s statement at %ld:%ld, source there is \"%.20s\"", name, type, line,
                         col, at);
        }
    }
}

/* ---- the cases ----------------------------------------------------------------------------- */

typedef struct snapshot_case {
    char *name;       /* file name without .rql */
    char *rql_path;
    char *json_path;
} snapshot_case;

static void run_case(void **state)
{
    const snapshot_case *c = *state;
    size_t len = 0;
    char *src = read_file(c->rql_path, &len);
    if (!src)
        fail_msg("cannot read %s: %s", c->rql_path, strerror(errno));

    rq_script *s = rq_parse_script(src, len);
    bool ok = true;
    for (size_t i = 0; i < s->n; i++) {
        if (s->stmts[i].error) {
            char *m = rq_error_format(s, s->stmts[i].error, c->rql_path);
            print_error("%s", m);
            free(m);
            ok = false;
        }
    }
    if (!ok)
        fail_msg("%s: a snapshot statement does not parse", c->name);
    if (s->n == 0)
        fail_msg("%s: no statements", c->name);

    json_t *actual = json_array();
    char **canonical = xcalloc(s->n, sizeof(char *));
    for (size_t i = 0; i < s->n; i++) {
        canonical[i] = ast_to_json(s->stmts[i].ast);
        json_error_t jerr;
        json_t *j = json_loads(canonical[i], JSON_DECODE_ANY, &jerr);
        if (!j)
            fail_msg("%s: statement %zu prints invalid JSON (%s): %s", c->name, i + 1, jerr.text,
                     canonical[i]);
        json_array_append_new(actual, j);
        check_positions(c->name, src, len, j, "statement");
    }

    if (updating()) {
        strbuf sb = {0};
        pretty(&sb, actual, 0, 0);
        strbuf_putc(&sb, '\n');
        FILE *f = fopen(c->json_path, "wb");
        if (!f || fwrite(sb.data, 1, sb.len, f) != sb.len || fclose(f) != 0)
            fail_msg("cannot write %s: %s", c->json_path, strerror(errno));
        print_message("[ UPDATED  ] %s\n", c->json_path);
        strbuf_free(&sb);
    } else {
        json_error_t jerr;
        json_t *expected = json_load_file(c->json_path, JSON_DECODE_ANY, &jerr);
        if (!expected)
            fail_msg("%s: cannot load %s (%s, line %d); if it is new, create it with "
                     "RANKQL_UPDATE_SNAPSHOTS=1 and review it",
                     c->name, c->json_path, jerr.text, jerr.line);
        if (!json_is_array(expected))
            fail_msg("%s: %s is not an array of statements", c->name, c->json_path);
        if (json_array_size(expected) != s->n)
            fail_msg("%s: %zu statements parsed, snapshot has %zu", c->name, s->n,
                     json_array_size(expected));
        for (size_t i = 0; i < s->n; i++) {
            char *want = json_dumps(json_array_get(expected, i),
                                    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
                                        JSON_REAL_PRECISION(15));
            if (strcmp(want, canonical[i]) != 0) {
                print_error("%s, statement %zu (line %d):\n  expected %s\n  actual   %s\n",
                            c->name, i + 1, s->stmts[i].pos.line, want, canonical[i]);
                free(want);
                fail_msg("%s: AST differs from %s (RANKQL_UPDATE_SNAPSHOTS=1 rewrites it; "
                         "review the diff)", c->name, c->json_path);
            }
            free(want);
        }
        json_decref(expected);
    }

    for (size_t i = 0; i < s->n; i++)
        free(canonical[i]);
    free(canonical);
    json_decref(actual);
    rq_script_free(s);
    free(src);
}

static int compare_cases(const void *a, const void *b)
{
    return strcmp(((const snapshot_case *)a)->name, ((const snapshot_case *)b)->name);
}

static snapshot_case *g_cases;
static size_t g_ncases;

/* Every .rql has its .json (and the other way round), and there are enough of them. */
static void test_snapshot_set(void **state)
{
    (void)state;
    const char *dir = snapshot_dir();
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    size_t orphans = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0) {
            char *rql = xasprintf("%s/%.*s.rql", dir, (int)(n - 5), e->d_name);
            FILE *f = fopen(rql, "rb");
            if (f)
                fclose(f);
            else {
                print_error("%s/%s has no .rql\n", dir, e->d_name);
                orphans++;
            }
            free(rql);
        }
    }
    closedir(d);
    assert_int_equal(orphans, 0);
    print_message("[ SNAPSHOTS] %zu cases in %s\n", g_ncases, dir);
    if (g_ncases < MIN_CASES)
        fail_msg("only %zu snapshot cases, at least %d expected", g_ncases, MIN_CASES);
}

int main(void)
{
    const char *dir = snapshot_dir();
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "test_parse_snapshots: cannot open %s: %s (run from the repository root, "
                        "or set RANKQL_SNAPSHOT_DIR)\n", dir, strerror(errno));
        printf("[  FAILED  ] 1 test(s), listed below:\n[  FAILED  ] snapshot folder missing\n");
        return 1;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".rql") != 0)
            continue;
        if (g_ncases == cap) {
            cap = cap ? cap * 2 : 64;
            g_cases = xrealloc(g_cases, cap * sizeof(*g_cases));
        }
        snapshot_case *c = &g_cases[g_ncases++];
        c->name = xstrndup(e->d_name, n - 4);
        c->rql_path = xasprintf("%s/%s", dir, e->d_name);
        c->json_path = xasprintf("%s/%s.json", dir, c->name);
    }
    closedir(d);
    qsort(g_cases, g_ncases, sizeof(*g_cases), compare_cases);

    struct CMUnitTest *tests = xcalloc(g_ncases + 1, sizeof(*tests));
    tests[0] = (struct CMUnitTest){"snapshot_set", test_snapshot_set, NULL, NULL, NULL};
    for (size_t i = 0; i < g_ncases; i++)
        tests[i + 1] = (struct CMUnitTest){g_cases[i].name, run_case, NULL, NULL, &g_cases[i]};
    int rc = _cmocka_run_group_tests("parse_snapshots", tests, g_ncases + 1, NULL, NULL);

    for (size_t i = 0; i < g_ncases; i++) {
        free(g_cases[i].name);
        free(g_cases[i].rql_path);
        free(g_cases[i].json_path);
    }
    free(g_cases);
    free(tests);
    return rc;
}
