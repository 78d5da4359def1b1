/* What each statement needs (docs/operations.md, "Security"): the role that may run it,
 * whether it is a catalog write that gets an audit row, and whether it may submit jobs
 * (the job quota). Pure: looks at the AST only. */
#ifndef RANKQL_SERVER_ROLES_H
#define RANKQL_SERVER_ROLES_H

#include <stdbool.h>

#include "grammar/ast.h"
#include "server/auth.h"

typedef struct stmt_rule {
    const char *label;    /* "REGISTER MODEL", "SELECT", "RANK", "CANCEL JOB", … */
    const char *action;   /* audit_log.action of a catalog write; NULL: no audit row */
    bool admin_only;      /* REGISTER, PURGE */
    bool own_only;        /* CANCEL: an analyst may cancel its own queries' jobs only */
    bool submits_jobs;    /* a ranking (also inside EXPLAIN ANALYZE, DECLARE), FINETUNE */
} stmt_rule;

stmt_rule roles_classify(const ast_node *stmt);

/* May role run a statement of this rule (an own_only one subject to the ownership check
 * the caller makes)? */
bool roles_permits(auth_role role, const stmt_rule *rule);

#endif
