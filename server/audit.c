/* audit_log rows. */
#include "server/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "db/pqutil.h"

size_t audit_cut(const char *text, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    /* back off continuation bytes (10xxxxxx) to the start of the cut character */
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--;
    return n;
}

void audit_write(PGconn *conn, const audit_entry *e)
{
    json_t *detail = e->detail ? e->detail : json_object();
    const auth_identity *who = e->who;
    if (who) {
        json_object_set_new(detail, "role", json_string(auth_role_name(who->role)));
        json_object_set_new(detail, "auth", json_string(auth_source_name(who->source)));
        if (who->source == AUTH_CATALOG)
            json_object_set_new(detail, "token_name", json_string(who->name));
    }
    char *detail_text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(detail);
    char token[24];
    snprintf(token, sizeof token, "%lld", who ? who->token_id : 0);
    char *statement = NULL;
    if (e->statement) {
        size_t n = audit_cut(e->statement, e->statement_len, AUDIT_STATEMENT_MAX);
        statement = xstrndup(e->statement, n);
    }
    const char *params[] = {
        who && who->token_id > 0 ? token : NULL,
        e->session && text_is_uuid(e->session) ? e->session : NULL,
        e->remote && *e->remote ? e->remote : NULL,
        e->action,
        statement,
        e->outcome,
        detail_text,
    };
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO audit_log (token_id, session_id, remote_addr, "
                                 "action, statement, outcome, detail) VALUES ($1::bigint, "
                                 "$2::uuid, $3, $4, $5, $6, $7::jsonb)",
                                 7, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char *line = pq_one_line(PQresultErrorMessage(res));
        fprintf(stderr, "rankqld: cannot write the audit row (%s %s): %s\n", e->action,
                e->outcome, line);
        free(line);
    }
    PQclear(res);
    free(statement);
    free(detail_text);
}
