/* Statement classification for the roles, the audit log and the job quota. */
#include "server/roles.h"

#include "planner/planner.h"

static bool is_ranking(const ast_node *query)
{
    return query && planner_task_aware_reason(query, NULL) != NULL;
}

stmt_rule roles_classify(const ast_node *stmt)
{
    /* A statement this file does not know yet (a new one) is an admin's until classified. */
    stmt_rule r = {.label = stmt ? ast_kind_name(stmt->kind) : "statement", .admin_only = true};
    if (!stmt)
        return r;
    if (stmt->kind == AST_SELECT || stmt->kind == AST_SET_OP || stmt->kind == AST_EXPLAIN ||
        stmt->kind == AST_DECLARE || stmt->kind == AST_FINETUNE || stmt->kind == AST_CANCEL ||
        stmt->kind == AST_SHOW || stmt->kind == AST_PRINT || stmt->kind == AST_USE)
        r.admin_only = false;
    switch (stmt->kind) {
    case AST_SELECT:
        r.label = ((const ast_select *)stmt)->is_rank ? "RANK" : "SELECT";
        r.submits_jobs = is_ranking(stmt);
        break;
    case AST_SET_OP:
        r.label = ast_set_kind_name(((const ast_set_op *)stmt)->op);
        r.submits_jobs = is_ranking(stmt);
        break;
    case AST_EXPLAIN: {
        const ast_explain *e = (const ast_explain *)stmt;
        stmt_rule inner = roles_classify(e->stmt);
        r.label = e->analyze ? "EXPLAIN ANALYZE" : "EXPLAIN";
        /* EXPLAIN ANALYZE runs what it explains; plain EXPLAIN only plans it. */
        r.admin_only = e->analyze && inner.admin_only;
        r.submits_jobs = e->analyze && inner.submits_jobs;
        break;
    }
    case AST_DECLARE:
        r.label = "DECLARE";
        r.submits_jobs = is_ranking(((const ast_declare *)stmt)->query);
        break;
    case AST_REGISTER: {
        bool model = ((const ast_register *)stmt)->what == REGISTER_MODEL;
        r.label = model ? "REGISTER MODEL" : "REGISTER DATASET";
        r.action = model ? "register_model" : "register_dataset";
        r.admin_only = true;
        break;
    }
    case AST_PURGE:
        r.label = "PURGE";
        r.action = "purge";
        r.admin_only = true;
        break;
    case AST_FINETUNE:
        /* A query of SHiFT's: it submits fine-tune jobs (the quota) and adds the fine-tuned
         * models to the catalog (an audit row); registering arbitrary models stays admin's. */
        r.label = "FINETUNE";
        r.action = "finetune";
        r.submits_jobs = true;
        break;
    case AST_CANCEL: {
        bool job = ((const ast_cancel *)stmt)->what == CANCEL_JOB;
        r.label = job ? "CANCEL JOB" : "CANCEL QUERY";
        r.action = job ? "cancel_job" : "cancel_query";
        r.own_only = true;
        break;
    }
    case AST_CHECK:
        /* re-checking models submits check jobs and rewrites their status: catalog upkeep */
        r.label = ((const ast_check *)stmt)->all ? "CHECK MODELS" : "CHECK MODEL";
        r.action = "check_model";
        r.submits_jobs = true;
        break;
    case AST_SHOW: r.label = "SHOW"; break;
    case AST_PRINT: r.label = "PRINT"; break;
    case AST_USE: r.label = "USE"; break;
    default: break;
    }
    return r;
}

bool roles_permits(auth_role role, const stmt_rule *rule)
{
    if (role == ROLE_ADMIN)
        return true;
    return role == ROLE_ANALYST && !rule->admin_only;
}
