/* The audit trail (audit_log, sql/004_sessions.sql): one row per catalog write (REGISTER,
 * PURGE, CANCEL, FINETUNE, token create/revoke) and per denied request, with the outcome
 * ok, error or denied, who (token id, role, how it got in), from where, and the statement
 * text (at most AUDIT_STATEMENT_MAX bytes). */
#ifndef RANKQL_SERVER_AUDIT_H
#define RANKQL_SERVER_AUDIT_H

#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "server/auth.h"

#define AUDIT_STATEMENT_MAX 1000

typedef struct audit_entry {
    const auth_identity *who;
    const char *session;    /* uuid text, or NULL */
    const char *remote;     /* client address, or NULL/"" */
    const char *action;     /* "register_model", "token_create", … */
    const char *statement;  /* may be NULL; cut at AUDIT_STATEMENT_MAX (whole characters) */
    size_t statement_len;
    const char *outcome;    /* "ok", "error", "denied" */
    json_t *detail;         /* extra members of detail (stolen); may be NULL */
} audit_entry;

/* Writes the row on conn (outside any transaction of the caller's: it stays also when the
 * statement failed). A failure is reported on stderr, never to the client: the request's
 * own answer stands. */
void audit_write(PGconn *conn, const audit_entry *e);

/* How many bytes of text (len bytes) fit in max without cutting a UTF-8 character. */
size_t audit_cut(const char *text, size_t len, size_t max);

#endif
