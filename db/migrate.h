/* Schema migrations: the numbered files in sql/, compiled into the binary
 * (scripts/embed-sql.sh → build/gen/migrations.c) and applied at start-up. */
#ifndef RANKQL_DB_MIGRATE_H
#define RANKQL_DB_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

typedef struct db_migration {
    int version;      /* from the file name, strictly increasing */
    const char *name; /* file name without ".sql", e.g. "001_catalog" */
    const char *sql;  /* the file's text; no BEGIN/COMMIT of its own */
} db_migration;

/* The migrations this binary was built with, in version order (generated). */
extern const db_migration db_migrations[];
extern const size_t db_migrations_count;

/* Applies, in order, each migration of `list` not yet recorded in
 * schema_migrations: each in its own transaction together with its row, under
 * an advisory lock so that processes starting at once apply each migration
 * exactly once. Fails if the database records a version this list does not
 * know (a newer rankqld migrated it) or a version under another name.
 * Returns 0 and sets *applied to the number applied, or -1 with *err set to a
 * one-line message (caller frees); a failed migration is rolled back whole. */
int db_migrate_list(PGconn *conn, const db_migration *list, size_t n, int *applied,
                    char **err);

/* db_migrate_list() with the built-in migrations. */
int db_migrate(PGconn *conn, int *applied, char **err);

#endif
