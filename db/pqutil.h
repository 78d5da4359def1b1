/* Small libpq helpers shared by the db/ modules and the programs that use them. */
#ifndef RANKQL_DB_PQUTIL_H
#define RANKQL_DB_PQUTIL_H

#include <libpq-fe.h>

/* libpq messages span lines ("…failed: …\n\tIs the server running…?\n");
 * rankql reports every error on one line. Returns a new string (caller frees):
 * lines trimmed and joined with "; ". */
char *pq_one_line(const char *msg);

/* A conninfo value ('…' with \ and ' escaped), so paths with spaces stay one
 * value. Returns a new string (caller frees). */
char *pq_conninfo_quote(const char *value);

#endif
