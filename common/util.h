/* Small helpers shared by every component: checked allocation, a growable string
 * buffer, and an arena for trees that are freed all at once (the parser's AST). */
#ifndef RANKQL_COMMON_UTIL_H
#define RANKQL_COMMON_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Allocation failure is not recoverable anywhere in rankql: these abort with a message. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when s looks like a UUID in text form (8-4-4-4-12 hex digits): session ids are
 * checked before they reach a uuid column, so a malformed one is "not found", not an SQL error. */
bool text_is_uuid(const char *s);

/* Seconds on CLOCK_MONOTONIC: the one clock jobs and queries time themselves with. */
double now_seconds(void);

/* Whole contents of a stream or file, NUL-terminated (the text may hold NUL bytes: see
 * *len, which may be NULL). NULL with errno set when it cannot be opened or read. */
char *read_stream(FILE *f, size_t *len);
char *read_file(const char *path, size_t *len);

/* Growable NUL-terminated string. Zero-initialise ({0}) before use. */
typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

void strbuf_reserve(strbuf *sb, size_t extra);
void strbuf_append(strbuf *sb, const char *s, size_t n);
void strbuf_puts(strbuf *sb, const char *s);
void strbuf_putc(strbuf *sb, char c);
void strbuf_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap);
char *strbuf_detach(strbuf *sb); /* caller frees; sb is reset */
/* Appends, then keeps only the last `keep` bytes (trimmed when twice that accumulates): the
 * tail of a child process's stderr, whose last line becomes an error message. */
void strbuf_append_tail(strbuf *sb, const char *s, size_t n, size_t keep);
/* The last non-blank line of sb, trimmed and at most 500 bytes (caller frees), or NULL. */
char *strbuf_last_line(const strbuf *sb);
void strbuf_free(strbuf *sb);

/* Bump allocator: many small allocations, one free. */
typedef struct arena arena;
arena *arena_new(void);
void *arena_alloc(arena *a, size_t n); /* zeroed, aligned for any type */
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_strdup(arena *a, const char *s);
void arena_free(arena *a);

#endif
