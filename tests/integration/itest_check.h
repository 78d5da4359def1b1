/* TAP-style reporting shared by the integration test programs (tests/integration/itest_*.c):
 * "ok - …" / "not ok - …" lines that tests/run-tests.sh counts, "#   …" diagnostics, and the
 * totals for the last line. Each program includes it once. */
#ifndef RANKQL_TESTS_ITEST_CHECK_H
#define RANKQL_TESTS_ITEST_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int n_checks, n_failed;

static inline bool check(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool check(bool cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf(cond ? "ok - " : "not ok - ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    n_checks++;
    if (!cond)
        n_failed++;
    fflush(stdout);
    return cond;
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("#   ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

#endif
