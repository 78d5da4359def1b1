-- 006: registration checks (docs/language.md "Model checks", docs/jobs.md "Check jobs").
-- Every model rankql can run is checked by a `check` job on a worker: loaded, run on a few
-- synthetic samples, its output checked (shape, finiteness) and its latency measured.
--
--   PENDING    its check job has not finished yet
--   USABLE     it ran and passed every check
--   NONUSABLE  it ran but failed a check (wrong dimension, non-finite output, …)
--   INVALID    it cannot be loaded or run (status_message says why)
--   UNCHECKED  a catalog entry of a runner rankql does not execute (tfhub, torchvision,
--              huggingface, keras): nothing to load
--
-- Default queries leave out NONUSABLE and INVALID models (planner: a WHERE that names
-- status replaces that default).

ALTER TABLE models
    ADD COLUMN status         text NOT NULL DEFAULT 'PENDING'
        CONSTRAINT models_status_check
        CHECK (status IN ('PENDING', 'USABLE', 'NONUSABLE', 'INVALID', 'UNCHECKED')),
    ADD COLUMN status_message text,
    -- Milliseconds per sample on the worker that ran the check (measured_on).
    ADD COLUMN latency_ms     double precision
        CONSTRAINT models_latency_ms_check
        CHECK (latency_ms >= 0 AND latency_ms < 'Infinity'::float8),
    ADD COLUMN measured_on    text,
    ADD COLUMN checked_at     timestamptz,
    -- The check whose result counts: an older check that finishes late stores nothing.
    ADD COLUMN check_job_id   bigint REFERENCES jobs (id) ON DELETE SET NULL;

CREATE INDEX models_status_idx ON models (status);

-- jobs.kind gains 'check'. The list is read from the constraint as it stands, so kinds
-- other migrations added are kept.
DO $$
DECLARE
    kinds text[];
BEGIN
    SELECT array_agg(DISTINCT m[1]) INTO kinds
      FROM pg_constraint c,
           regexp_matches(pg_get_constraintdef(c.oid), '''([^'']+)''', 'g') AS m
     WHERE c.conrelid = 'jobs'::regclass AND c.conname = 'jobs_kind_check';
    IF kinds IS NULL THEN
        kinds := ARRAY['embed', 'proxy', 'finetune', 'strategy', 'similarity', 'sh'];
    END IF;
    IF NOT 'check' = ANY (kinds) THEN
        kinds := kinds || 'check'::text;
    END IF;
    ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_kind_check;
    EXECUTE format('ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind = ANY (%L::text[]))',
                   kinds);
END
$$;

-- Models registered before this migration: catalog-only runners are UNCHECKED, the others
-- get a check job each (the payload of executor/check.c; the hash only has to be unique).
UPDATE models SET status = 'UNCHECKED',
                  status_message = 'runner ' || runner || ' is not executed by rankql: a catalog entry only'
 WHERE runner IN ('tfhub', 'torchvision', 'huggingface', 'keras');

WITH submitted AS (
    INSERT INTO jobs (hash, kind, payload)
    SELECT encode(sha256(convert_to('migration 006 check ' || m.id, 'UTF8')), 'hex'), 'check',
           jsonb_build_object(
               'model', jsonb_build_object('id', m.id, 'name', m.name, 'runner', m.runner,
                                           'modality', m.modality, 'spec', m.spec,
                                           'image_size', m.image_size,
                                           'token_length', m.token_length,
                                           'dimension', m.dimension,
                                           'batch_size', m.batch_size),
               'samples', 16, 'requested', 'migration 006')
      FROM models m
     WHERE m.status = 'PENDING'
    ON CONFLICT (hash) DO NOTHING
    RETURNING id, (payload -> 'model' ->> 'id')::bigint AS model_id
)
UPDATE models m SET check_job_id = s.id FROM submitted s WHERE m.id = s.model_id;
