-- 007: security (docs/operations.md, "Security"): which token a query ran under, so the
-- job quota (--quota-jobs) can count a token's queued and running jobs and CANCEL can tell
-- an analyst's own queries from others'; token names unique among live tokens, so that
-- `rankql token revoke NAME` names one.

ALTER TABLE queries ADD COLUMN token_id bigint REFERENCES api_tokens (id) ON DELETE SET NULL;

CREATE INDEX queries_token_idx ON queries (token_id) WHERE token_id IS NOT NULL;

-- A query is made by the executor, which knows only its session; the session knows its
-- token (rankqld sets sessions.token_id when an authenticated client makes one).
CREATE FUNCTION rankql_query_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.token_id IS NULL AND NEW.session_id IS NOT NULL THEN
        SELECT s.token_id INTO NEW.token_id FROM sessions s WHERE s.id = NEW.session_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER queries_token BEFORE INSERT ON queries
    FOR EACH ROW EXECUTE FUNCTION rankql_query_token();

CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE INDEX audit_log_token_idx ON audit_log (token_id, at) WHERE token_id IS NOT NULL;
