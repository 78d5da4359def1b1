/* Parser throughput over the SHiFT example queries, against baselines measured in the
 * same run (no thresholds: only rates and ratios are printed).
 *
 *   build/bench/bench_parse [DIR]     DIR of *.shiftql files; default
 *                                     $RANKQL_SHARED/queries/shift-examples, else
 *                                     ../shared/queries/shift-examples (from the repo root)
 *
 * Each measurement repeats passes over all files for RANKQL_BENCH_SECONDS (default 2), in
 * 5 rounds taken in turn with the other measurements; the fastest round counts:
 *
 *   read          memcpy of each file into a buffer + strlen (touching the bytes)
 *   lex           rq_lexer over each file, counting tokens (with the arena parsing uses)
 *   parse         rq_parse_script + rq_script_free per file
 *   parse+json    the same plus ast_to_json of every statement
 *
 * and prints statements/s, MB/s and the time per pass relative to read and to lex.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "grammar/lexer.h"
#include "grammar/parse.h"

typedef struct input {
    char *name;
    char *text;            /* NUL-terminated */
    size_t len;
} input;

typedef struct corpus {
    input *files;
    size_t n;
    size_t bytes;
    size_t statements;     /* parsed statements in one pass */
    size_t errors;
    size_t max_len;
} corpus;

typedef struct result {
    const char *name;
    size_t (*pass)(const corpus *);
    double seconds;        /* all rounds */
    size_t passes;
    double best;           /* the fastest round's seconds per pass */
} result;

static volatile size_t sink; /* keeps the work from being optimised away */

#define ROUNDS 5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const input *)a)->name, ((const input *)b)->name);
}

static bool load(corpus *c, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "bench_parse: cannot open %s: %s\n", dir, strerror(errno));
        return false;
    }
    size_t cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t nl = strlen(e->d_name);
        if (nl < 9 || strcmp(e->d_name + nl - 8, ".shiftql") != 0)
            continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        size_t len = 0;
        char *text = read_file(path, &len);
        if (!text) {
            fprintf(stderr, "bench_parse: cannot read %s: %s\n", path, strerror(errno));
            free(path);
            continue;
        }
        free(path);
        if (c->n == cap) {
            cap = cap ? cap * 2 : 64;
            c->files = xrealloc(c->files, cap * sizeof(*c->files));
        }
        c->files[c->n++] = (input){xstrdup(e->d_name), text, len};
        c->bytes += len;
        if (len > c->max_len)
            c->max_len = len;
    }
    closedir(d);
    if (c->n == 0) {
        fprintf(stderr, "bench_parse: no .shiftql files in %s\n", dir);
        return false;
    }
    qsort(c->files, c->n, sizeof(*c->files), by_name);
    for (size_t i = 0; i < c->n; i++) {
        rq_script *s = rq_parse_script(c->files[i].text, c->files[i].len);
        c->statements += s->n - s->nerrors;
        c->errors += s->nerrors;
        rq_script_free(s);
    }
    return true;
}

/* ---- one pass over the corpus per mode ------------------------------------------------ */

static char *scratch; /* max_len + 1 bytes, for the read baseline */

static size_t pass_read(const corpus *c)
{
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++) {
        memcpy(scratch, c->files[i].text, c->files[i].len + 1);
        total += strlen(scratch);
    }
    return total;
}

static size_t pass_lex(const corpus *c)
{
    size_t tokens = 0;
    for (size_t i = 0; i < c->n; i++) {
        arena *a = arena_new();
        rq_lexer lx;
        rq_token tok;
        rq_lexer_init(&lx, c->files[i].text, c->files[i].len, a);
        while (rq_lex(&lx, &tok) != 0)
            tokens++;
        arena_free(a);
    }
    return tokens;
}

static size_t pass_parse(const corpus *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        rq_script *s = rq_parse_script(c->files[i].text, c->files[i].len);
        n += s->n;
        rq_script_free(s);
    }
    return n;
}

static size_t pass_parse_json(const corpus *c)
{
    size_t bytes = 0;
    for (size_t i = 0; i < c->n; i++) {
        rq_script *s = rq_parse_script(c->files[i].text, c->files[i].len);
        for (size_t j = 0; j < s->n; j++) {
            if (!s->stmts[j].ast)
                continue;
            char *json = ast_to_json(s->stmts[j].ast);
            bytes += strlen(json);
            free(json);
        }
        rq_script_free(s);
    }
    return bytes;
}

/* One round: passes for budget seconds; keeps the round's time per pass if it is the best. */
static void measure_round(result *r, const corpus *c, double budget)
{
    size_t passes = 0;
    double start = now(), t = start;
    do {
        sink += r->pass(c);
        passes++;
        t = now();
    } while (t - start < budget);
    r->passes += passes;
    r->seconds += t - start;
    double pp = (t - start) / (double)passes;
    if (r->best == 0 || pp < r->best)
        r->best = pp;
}

static double per_pass(const result *r)
{
    return r->best;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : NULL;
    char *owned = NULL;
    if (!dir) {
        const char *shared = getenv("RANKQL_SHARED");
        dir = owned = xasprintf("%s/queries/shift-examples", shared && *shared ? shared : "../shared");
    }
    double budget = 2.0;
    const char *env = getenv("RANKQL_BENCH_SECONDS");
    if (env && *env) {
        char *end;
        double v = strtod(env, &end);
        if (*end != '\0' || !(v > 0)) {
            fprintf(stderr, "bench_parse: RANKQL_BENCH_SECONDS must be a positive number of seconds\n");
            return 2;
        }
        budget = v;
    }

    corpus c = {0};
    if (!load(&c, dir))
        return 1;
    scratch = xmalloc(c.max_len + 1);

    printf("corpus: %s: %zu files, %.1f KB, %zu statements", dir, c.n, (double)c.bytes / 1024.0,
           c.statements);
    if (c.errors)
        printf(" (+ %zu with errors)", c.errors);
    printf("; %.1f s per measurement in %d rounds, best round shown\n\n", budget, ROUNDS);

    /* The modes take turns, ROUNDS rounds of budget/ROUNDS seconds each, and each is rated
     * by its fastest round, so load that comes and goes skews the ratios less. */
    result rs[] = {
        {"read (memcpy+strlen)", pass_read, 0, 0, 0},
        {"lex only", pass_lex, 0, 0, 0},
        {"parse", pass_parse, 0, 0, 0},
        {"parse + ast_to_json", pass_parse_json, 0, 0, 0},
    };
    const size_t nmodes = sizeof(rs) / sizeof(rs[0]);
    for (size_t m = 0; m < nmodes; m++)
        sink += rs[m].pass(&c); /* warm-up: caches, allocator */
    for (int round = 0; round < ROUNDS; round++)
        for (size_t m = 0; m < nmodes; m++)
            measure_round(&rs[m], &c, budget / ROUNDS);
    const result *read = &rs[0], *lex = &rs[1], *parse = &rs[2];
    size_t stmts = c.statements + c.errors;

    printf("%-22s %8s %14s %10s %12s %10s\n", "measurement", "passes", "statements/s", "MB/s",
           "time x read", "time x lex");
    for (size_t i = 0; i < nmodes; i++) {
        const result *r = &rs[i];
        double pp = per_pass(r);
        printf("%-22s %8zu %14.0f %10.1f %12.1f %10.2f\n", r->name, r->passes, (double)stmts / pp,
               (double)c.bytes / pp / 1e6, pp / per_pass(read), pp / per_pass(lex));
    }
    printf("\nratio parse/lex: %.2f (parsing a statement costs %.2f times lexing it)\n",
           per_pass(parse) / per_pass(lex), per_pass(parse) / per_pass(lex));
    printf("ratio parse/read: %.1f (parsing costs %.1f times reading the bytes)\n",
           per_pass(parse) / per_pass(read), per_pass(parse) / per_pass(read));

    for (size_t i = 0; i < c.n; i++) {
        free(c.files[i].name);
        free(c.files[i].text);
    }
    free(c.files);
    free(scratch);
    free(owned);
    return 0;
}
