-- 005: the rankings that submitted work, and which jobs each submitted, so that
-- CANCEL QUERY 'id' can cancel a query's jobs (docs/language.md). A job is shared by
-- every query that needs it; a query only records the jobs it submitted or shared at
-- the time it ran.

CREATE TABLE queries (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id  uuid REFERENCES sessions (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE query_jobs (
    query_id  uuid NOT NULL REFERENCES queries (id) ON DELETE CASCADE,
    job_id    bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    PRIMARY KEY (query_id, job_id)
);

-- Deleting a job (PURGE) finds its rows through this index.
CREATE INDEX query_jobs_job_idx ON query_jobs (job_id);
