/* Resource limits of one rankqld (docs/operations.md, "Security"): queries running at once
 * per session (--max-concurrent-queries) and jobs queued or running per catalog token
 * (--quota-jobs). Query text (--max-query), result size (--max-result) and WAIT
 * (--max-wait) are checked where they arise (api_query.c, the executor). */
#ifndef RANKQL_SERVER_LIMITS_H
#define RANKQL_SERVER_LIMITS_H

#include <stdbool.h>

#include <libpq-fe.h>

/* Counts a query of session as running; false (nothing counted) when it already runs max
 * (0 = no limit). Sessions are counted in this process only. */
bool limits_session_enter(const char *session, int max);
void limits_session_leave(const char *session);

/* Jobs queued or running that queries of token_id submitted or share; -1 on a database
 * error. */
long limits_token_jobs(PGconn *conn, long long token_id);

#endif
