/* Per-session query counts and per-token job counts. */
#include "server/limits.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Sessions with a query running: few at a time, so a list is enough. */
typedef struct running_session {
    char id[40];
    int n;
    struct running_session *next;
} running_session;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static running_session *running;

bool limits_session_enter(const char *session, int max)
{
    pthread_mutex_lock(&lock);
    running_session *r = running;
    while (r && strcmp(r->id, session) != 0)
        r = r->next;
    bool ok = max <= 0 || !r || r->n < max;
    if (ok) {
        if (!r) {
            r = xcalloc(1, sizeof *r);
            snprintf(r->id, sizeof r->id, "%s", session);
            r->next = running;
            running = r;
        }
        r->n++;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

void limits_session_leave(const char *session)
{
    pthread_mutex_lock(&lock);
    for (running_session **p = &running; *p; p = &(*p)->next) {
        running_session *r = *p;
        if (strcmp(r->id, session) == 0) {
            if (--r->n == 0) {
                *p = r->next;
                free(r);
            }
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

long limits_token_jobs(PGconn *conn, long long token_id)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", token_id);
    const char *params[] = {id};
    PGresult *res = PQexecParams(conn,
                                 "SELECT count(DISTINCT j.id) FROM queries q "
                                 "JOIN query_jobs qj ON qj.query_id = q.id "
                                 "JOIN jobs j ON j.id = qj.job_id "
                                 "WHERE q.token_id = $1::bigint "
                                 "AND j.status IN ('queued', 'running')",
                                 1, NULL, params, NULL, NULL, 0);
    long n = PQresultStatus(res) == PGRES_TUPLES_OK ? strtol(PQgetvalue(res, 0, 0), NULL, 10)
                                                    : -1;
    PQclear(res);
    return n;
}
