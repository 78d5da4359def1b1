#include "db/migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "db/pqutil.h"

/* Every rankql process that migrates takes this transaction-level advisory
 * lock, so two servers starting against one database serialise (the value is
 * arbitrary; it only has to be the same everywhere). */
#define MIGRATE_LOCK_KEY "7236996716311658861"

static const char SQL_CREATE_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY CHECK (version > 0),"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

/* Runs a statement with parameters; NULL-safe on the result. */
static PGresult *exec_params(PGconn *conn, const char *sql, int n, const char *const *values)
{
    return PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Sets *err from a failed result (or the connection when there is none). */
static void set_error(char **err, PGconn *conn, const PGresult *res, const char *what)
{
    const char *msg = res ? PQresultErrorMessage(res) : "";
    char *line = pq_one_line(*msg ? msg : PQerrorMessage(conn));
    *err = xasprintf("%s: %s", what, line);
    free(line);
}

/* Executes one statement without parameters and reports whether it worked. */
static bool exec_simple(PGconn *conn, const char *sql, const char *what, char **err)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = result_ok(res);
    if (!ok)
        set_error(err, conn, res, what);
    PQclear(res);
    return ok;
}

/* Leaves a failed transaction; the error being reported is the first one. */
static void rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
}

/* BEGIN + the advisory lock: everything after runs while no other rankql
 * process is migrating this database. */
static bool begin_locked(PGconn *conn, char **err)
{
    if (!exec_simple(conn, "BEGIN", "migrate: BEGIN failed", err))
        return false;
    const char *params[1] = {MIGRATE_LOCK_KEY};
    PGresult *res = exec_params(conn, "SELECT pg_advisory_xact_lock($1::bigint)", 1, params);
    bool ok = result_ok(res);
    if (!ok) {
        set_error(err, conn, res, "migrate: could not take the migration lock");
        rollback(conn);
    }
    PQclear(res);
    return ok;
}

static const db_migration *find_version(const db_migration *list, size_t n, int version)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].version == version)
            return &list[i];
    return NULL;
}

/* Every recorded version must be one of ours under the same name: anything
 * else means this binary does not know the schema it is about to serve. */
static bool check_recorded(PGconn *conn, const db_migration *list, size_t n, char **err)
{
    PGresult *res = PQexec(conn, "SELECT version, name FROM schema_migrations ORDER BY version");
    if (!result_ok(res)) {
        set_error(err, conn, res, "migrate: cannot read schema_migrations");
        PQclear(res);
        return false;
    }
    bool ok = true;
    int latest = n > 0 ? list[n - 1].version : 0;
    for (int i = 0; ok && i < PQntuples(res); i++) {
        int version = atoi(PQgetvalue(res, i, 0));
        const char *name = PQgetvalue(res, i, 1);
        const db_migration *m = find_version(list, n, version);
        if (!m) {
            *err = xasprintf("migrate: the database has schema version %d (%s), which this "
                             "rankqld does not know (it knows versions up to %d); "
                             "run a rankqld at least as new as the one that migrated it",
                             version, name, latest);
            ok = false;
        } else if (strcmp(m->name, name) != 0) {
            *err = xasprintf("migrate: schema_migrations records version %d as '%s' but this "
                             "rankqld's version %d is '%s'; the database was migrated by an "
                             "incompatible build",
                             version, name, version, m->name);
            ok = false;
        }
    }
    PQclear(res);
    return ok;
}

/* Creates schema_migrations if needed and checks what it records. */
static bool bootstrap(PGconn *conn, const db_migration *list, size_t n, char **err)
{
    if (!begin_locked(conn, err))
        return false;
    /* IF NOT EXISTS would otherwise print a NOTICE on every start. */
    bool ok = exec_simple(conn, "SET LOCAL client_min_messages = warning",
                          "migrate: SET failed", err) &&
              exec_simple(conn, SQL_CREATE_TABLE, "migrate: cannot create schema_migrations",
                          err) &&
              check_recorded(conn, list, n, err) &&
              exec_simple(conn, "COMMIT", "migrate: COMMIT failed", err);
    if (!ok)
        rollback(conn);
    return ok;
}

/* 1-based line of a 1-based character position in `sql` (ASCII assumed;
 * close enough for UTF-8 comments). */
static int line_of_position(const char *sql, long pos)
{
    int line = 1;
    for (long i = 0; i < pos - 1 && sql[i]; i++)
        if (sql[i] == '\n')
            line++;
    return line;
}

/* Reports a failed migration with the line of the offending statement. */
static void set_migration_error(char **err, PGconn *conn, const PGresult *res,
                                const db_migration *m)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *position = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    if (!primary) {
        char *what = xasprintf("migrate: migration %s failed", m->name);
        set_error(err, conn, res, what);
        free(what);
        return;
    }
    if (position)
        *err = xasprintf("migrate: migration %s failed at line %d: %s", m->name,
                         line_of_position(m->sql, atol(position)), primary);
    else
        *err = xasprintf("migrate: migration %s failed: %s", m->name, primary);
}

/* Is version already recorded? -1 on error. Runs inside the locked
 * transaction, so the answer holds until COMMIT. */
static int is_applied(PGconn *conn, const db_migration *m, char **err)
{
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[1] = {version};
    PGresult *res =
        exec_params(conn, "SELECT 1 FROM schema_migrations WHERE version = $1::integer", 1, params);
    int answer = -1;
    if (result_ok(res))
        answer = PQntuples(res) > 0;
    else
        set_error(err, conn, res, "migrate: cannot read schema_migrations");
    PQclear(res);
    return answer;
}

static bool record(PGconn *conn, const db_migration *m, char **err)
{
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[2] = {version, m->name};
    PGresult *res = exec_params(
        conn, "INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2)", 2, params);
    bool ok = result_ok(res);
    if (!ok)
        set_error(err, conn, res, "migrate: cannot record the migration");
    PQclear(res);
    return ok;
}

/* Applies one migration unless it is recorded; *did says whether it ran. */
static bool apply_one(PGconn *conn, const db_migration *m, bool *did, char **err)
{
    *did = false;
    if (!begin_locked(conn, err))
        return false;
    int applied = is_applied(conn, m, err);
    if (applied < 0) {
        rollback(conn);
        return false;
    }
    if (applied)
        return exec_simple(conn, "COMMIT", "migrate: COMMIT failed", err);

    /* Migration text may hold several statements: the simple query protocol
     * runs them all, inside our transaction. */
    PGresult *res = PQexec(conn, m->sql);
    if (!result_ok(res)) {
        set_migration_error(err, conn, res, m);
        PQclear(res);
        rollback(conn);
        return false;
    }
    PQclear(res);
    if (!record(conn, m, err)) {
        rollback(conn);
        return false;
    }
    if (!exec_simple(conn, "COMMIT", "migrate: COMMIT failed", err))
        return false;
    *did = true;
    return true;
}

int db_migrate_list(PGconn *conn, const db_migration *list, size_t n, int *applied,
                    char **err)
{
    *applied = 0;
    *err = NULL;
    if (PQstatus(conn) != CONNECTION_OK) {
        char *line = pq_one_line(PQerrorMessage(conn));
        *err = xasprintf("migrate: not connected to the database: %s", line);
        free(line);
        return -1;
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        *err = xstrdup("migrate: the connection is inside a transaction; migrations need "
                       "their own");
        return -1;
    }
    if (!bootstrap(conn, list, n, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool did;
        if (!apply_one(conn, &list[i], &did, err))
            return -1;
        *applied += did;
    }
    return 0;
}

int db_migrate(PGconn *conn, int *applied, char **err)
{
    return db_migrate_list(conn, db_migrations, db_migrations_count, applied, err);
}
