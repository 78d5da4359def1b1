/* The interactive prompt, on libedit's native interface. See repl.h. */
#include "shell/repl.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include <histedit.h>

#include "shell/complete.h"
#include "shell/input.h"

#define HISTORY_SIZE 1000

static char prompt_text[32] = "rankql=> ";

static char *prompt(EditLine *el)
{
    (void)el;
    return prompt_text;
}

static void on_sigint(int sig)
{
    (void)sig;
    sh_interrupted = 1;
}

/* Reads one character for libedit. Unlike libedit's own reader, it gives up on
 * Ctrl-C (SIGINT) at once, so el_gets returns and the typed line can be dropped. */
static int read_char(EditLine *el, wchar_t *wc)
{
    (void)el;
    char buf[MB_LEN_MAX];
    size_t n = 0;
    for (;;) {
        if (sh_interrupted) {
            errno = EINTR;
            return -1;
        }
        unsigned char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0) {
            if (errno == EINTR && !sh_interrupted)
                continue; /* a window resize and the like */
            return -1;
        }
        if (r == 0)
            return 0;
        buf[n++] = (char)c;
        mbstate_t mbs;
        memset(&mbs, 0, sizeof(mbs));
        size_t k = mbrtowc(wc, buf, n, &mbs);
        if (k == (size_t)-2 && n < sizeof(buf))
            continue; /* more bytes of this character */
        if (k == (size_t)-1 || k == (size_t)-2) {
            n = 0; /* an invalid sequence: dropped */
            continue;
        }
        return 1;
    }
}

/* ---- completion ---------------------------------------------------------------------- */

static size_t char_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static void list_candidates(char **m, size_t n)
{
    struct winsize ws;
    size_t width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
    size_t longest = 0;
    for (size_t i = 0; i < n; i++)
        if (strlen(m[i]) > longest)
            longest = strlen(m[i]);
    size_t colw = longest + 2, cols = width / colw ? width / colw : 1;
    size_t rows = (n + cols - 1) / cols;
    fputc('\n', stdout);
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            size_t i = c * rows + r;
            if (i < n)
                fprintf(stdout, "%-*s", (int)(c + 1 < cols && i + rows < n ? colw : 0), m[i]);
        }
        fputc('\n', stdout);
    }
    fflush(stdout);
}

static unsigned char complete(EditLine *el, int ch)
{
    (void)ch;
    sh_state *st = NULL;
    el_get(el, EL_CLIENTDATA, &st);
    const LineInfo *li = el_line(el);
    char *text = xstrndup(li->buffer, (size_t)(li->lastchar - li->buffer));
    size_t cursor = (size_t)(li->cursor - li->buffer), start = cursor;
    char **m = sh_complete(st, text, cursor, &start);
    unsigned char result = CC_ERROR;
    size_t n = 0;
    while (m && m[n])
        n++;
    size_t typed = cursor - start;
    if (n > 0) {
        /* the longest prefix all candidates share (any case), in the first one's case */
        size_t common = strlen(m[0]);
        for (size_t i = 1; i < n; i++) {
            size_t k = 0;
            while (k < common && m[i][k] &&
                   (m[i][k] | 0x20) == (m[0][k] | 0x20))
                k++;
            common = k;
        }
        if (n == 1 || common > typed) {
            el_deletestr(el, (int)char_count(text + start, typed));
            char *insert = n == 1 ? xasprintf("%s%s", m[0], m[0][strlen(m[0]) - 1] == '/' ? "" : " ")
                                  : xstrndup(m[0], common);
            el_insertstr(el, insert);
            free(insert);
            result = CC_REFRESH;
        } else {
            list_candidates(m, n);
            result = CC_REDISPLAY;
        }
    }
    sh_complete_free(m);
    free(text);
    return result;
}

/* ---- history ------------------------------------------------------------------------- */

static char *history_path(void)
{
    const char *env = getenv("RANKQL_HISTFILE");
    if (env)
        return *env ? xstrdup(env) : NULL; /* empty: no history file */
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    return home ? xasprintf("%s/.rankql_history", home) : NULL;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* ---- the loop ------------------------------------------------------------------------ */

void sh_repl(sh_state *st)
{
    setlocale(LC_CTYPE, "");
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a read or request stops */

    HistEvent ev;
    History *hist = history_init();
    history(hist, &ev, H_SETSIZE, HISTORY_SIZE);
    history(hist, &ev, H_SETUNIQUE, 1);
    char *hpath = history_path();
    if (hpath)
        history(hist, &ev, H_LOAD, hpath); /* none yet is fine */

    EditLine *el = el_init("rankql", stdin, stdout, stderr);
    el_set(el, EL_CLIENTDATA, st);
    el_set(el, EL_PROMPT, prompt);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_SIGNAL, 1);
    el_set(el, EL_GETCFN, read_char);
    el_set(el, EL_HIST, history, hist);
    /* the wide form: libedit's narrow EL_ADDFN copies both strings and never frees them */
    el_wset(el, EL_ADDFN, L"rankql-complete", L"complete a keyword or name", complete);
    el_set(el, EL_BIND, "^I", "rankql-complete", NULL);
    el_source(el, NULL); /* ~/.editrc */

    printf("rankql %s, connected to rankqld at %s.\nType \\? for help, \\q to quit.\n\n",
           RANKQL_VERSION, sh_client_address(st->client));
    fflush(stdout);

    sh_script s;
    sh_script_init(&s, NULL, true);
    while (!st->quit) {
        snprintf(prompt_text, sizeof(prompt_text), "%s",
                 sh_script_pending(&s) ? "rankql-> " : "rankql=> ");
        sh_interrupted = 0;
        int count = 0;
        const char *line = el_gets(el, &count);
        if (!line) {
            if (sh_interrupted) { /* Ctrl-C: drop what was typed */
                fputc('\n', stdout);
                fflush(stdout);
                sh_script_discard(&s);
                continue;
            }
            if (count < 0 && errno == EINTR)
                continue;
            fputc('\n', stdout); /* Ctrl-D */
            break;
        }
        char *copy = xstrdup(line);
        if (!blank(copy)) {
            size_t n = strlen(copy);
            while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == '\r'))
                copy[--n] = '\0';
            history(hist, &ev, H_ENTER, copy);
        }
        sh_feed_line(st, &s, line, strlen(line));
        free(copy);
    }
    sh_script_free(&s);
    if (hpath) {
        if (history(hist, &ev, H_SAVE, hpath) >= 0)
            chmod(hpath, 0600); /* history may hold secrets; a failure does not matter */
        free(hpath);
    }
    el_end(el);
    history_end(hist);
    signal(SIGINT, SIG_DFL);
}
