-- 008: measured inference cost per (model, device), for the cost-based planner
-- (planner/cost.h, docs/language.md "Cost estimates"). Every embed job that finishes adds
-- its rows and seconds (the "seconds" of its result, docs/jobs.md) to its model's row,
-- so seconds_per_row is the average over everything that model embedded on that device.
-- The sums of rows², and of rows·seconds, give the planner a least-squares line
-- seconds = a + b·rows (planner/cost.h cost_rate_fit): a is the fixed cost of a job (reading
-- and decoding the dataset file, loading the model), b the cost per row.
-- A trigger on jobs keeps it: no runner has to know about costs, and a job completed by
-- any worker (any version) counts exactly once, in the transaction that marks it done.

CREATE TABLE model_costs (
    model_id        bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    -- Where it ran: the embed result's "device" when a runner reports one, else 'cpu'.
    device          text NOT NULL CHECK (device <> ''),
    rows            bigint NOT NULL CHECK (rows > 0),
    seconds         double precision NOT NULL
                        CHECK (seconds >= 0 AND seconds < 'Infinity'::float8),
    jobs            integer NOT NULL CHECK (jobs > 0),
    -- Σ rows² and Σ rows·seconds over the same jobs (float: a sum of squares outgrows bigint)
    rows_sq         double precision NOT NULL DEFAULT 0 CHECK (rows_sq >= 0),
    rows_seconds    double precision NOT NULL DEFAULT 0 CHECK (rows_seconds >= 0),
    seconds_per_row double precision GENERATED ALWAYS AS (seconds / rows) STORED,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, device)
);

CREATE FUNCTION rankql_model_costs_record() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    mid  bigint;
    nrow bigint;
    secs double precision;
BEGIN
    -- Malformed or partial results are not measurements: skip them, never fail the job.
    IF jsonb_typeof(NEW.payload -> 'model' -> 'id') IS DISTINCT FROM 'number'
       OR jsonb_typeof(NEW.result -> 'rows') IS DISTINCT FROM 'number'
       OR jsonb_typeof(NEW.result -> 'seconds') IS DISTINCT FROM 'number' THEN
        RETURN NULL;
    END IF;
    mid  := (NEW.payload -> 'model' ->> 'id')::bigint;
    nrow := (NEW.result ->> 'rows')::bigint;
    secs := (NEW.result ->> 'seconds')::double precision;
    IF nrow <= 0 OR secs < 0 OR secs = 'Infinity'::float8 OR secs <> secs THEN
        RETURN NULL;
    END IF;
    -- The model may have been deleted while its job ran.
    INSERT INTO model_costs (model_id, device, rows, seconds, jobs, rows_sq, rows_seconds)
    SELECT mid, coalesce(nullif(NEW.result ->> 'device', ''), 'cpu'), nrow, secs, 1,
           nrow::float8 * nrow, nrow * secs
     WHERE EXISTS (SELECT 1 FROM models WHERE id = mid)
    ON CONFLICT (model_id, device) DO UPDATE
       SET rows = model_costs.rows + EXCLUDED.rows,
           seconds = model_costs.seconds + EXCLUDED.seconds,
           jobs = model_costs.jobs + 1,
           rows_sq = model_costs.rows_sq + EXCLUDED.rows_sq,
           rows_seconds = model_costs.rows_seconds + EXCLUDED.rows_seconds,
           updated_at = now();
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_model_costs AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (NEW.kind = 'embed' AND NEW.status = 'done' AND OLD.status IS DISTINCT FROM 'done')
    EXECUTE FUNCTION rankql_model_costs_record();
