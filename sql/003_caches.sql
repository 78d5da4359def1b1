-- 003: caches of finished work. Every row is keyed by `hash`, the SHA-256 of the
-- canonical (sorted-key, compact) JSON of the inputs that produced it, so a
-- repeated query is answered from here without work. Rows are only written for
-- successful work; deleting a model or dataset drops what was computed from it.
-- `job_id` names the job that produced a row, while that job row exists.

-- Embeddings of one dataset (slice) by one model. The vectors themselves are a
-- file in the data directory (float32 with a small header, named by hash).
CREATE TABLE feature_cache (
    hash         text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    model_id     bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    dataset_id   bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    -- The slice that was embedded, half-open; NULL = the whole dataset.
    slice_start  bigint CHECK (slice_start >= 0),
    slice_stop   bigint,
    -- Relative to the data directory, so a moved data directory keeps its cache.
    path         text NOT NULL CHECK (path <> ''),
    rows         bigint NOT NULL CHECK (rows >= 0),
    dim          integer NOT NULL CHECK (dim > 0),
    bytes        bigint CHECK (bytes >= 0),
    job_id       bigint REFERENCES jobs (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- For eviction (PURGE, size limits): least recently used first.
    last_used_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feature_cache_slice_both CHECK ((slice_start IS NULL) = (slice_stop IS NULL)),
    CONSTRAINT feature_cache_slice_order CHECK (slice_stop >= slice_start)
);

CREATE INDEX feature_cache_model_dataset_idx ON feature_cache (model_id, dataset_id);
CREATE INDEX feature_cache_dataset_idx ON feature_cache (dataset_id);

-- One proxy score (1-NN, linear probe, LogME, …) of one model for one
-- train/test pair. train_key/test_key hash the (possibly mutated, see
-- TRAINED ON (… CHANGE …)) train and test data, so all models scored on the same
-- task are found together.
CREATE TABLE proxy_results (
    hash       text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    proxy      text NOT NULL CHECK (proxy <> ''),
    params     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    model_id   bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    train_key  text NOT NULL CHECK (train_key ~ '^[0-9a-f]{64}$'),
    test_key   text NOT NULL CHECK (test_key ~ '^[0-9a-f]{64}$'),
    -- Lower is better. A fraction in [0,1] for classifier proxies; score proxies
    -- (LogME, LEEP, H-score) store their negated score. Never NaN or infinite,
    -- which would break ORDER BY err.
    err        double precision NOT NULL
                   CHECK (err NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)),
    -- Misclassified test points and test-set size, for classifier proxies.
    raw_error  bigint CHECK (raw_error >= 0),
    test_size  bigint CHECK (test_size > 0),
    -- Per-test-point neighbour origins and labels, enough to re-score a 1-NN
    -- result after label-only changes without recomputing distances.
    details    jsonb,
    job_id     bigint REFERENCES jobs (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT proxy_results_raw_error_bounded CHECK (raw_error <= test_size)
);

CREATE INDEX proxy_results_task_idx ON proxy_results (train_key, test_key, proxy);
CREATE INDEX proxy_results_model_idx ON proxy_results (model_id);

-- Fine-tune runs (FINETUNE …, the hybrid strategy, replayed records). A
-- successful run registers its model in the catalog (finetuned, with parent).
CREATE TABLE finetune_results (
    hash             text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    model_id         bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    dataset_id       bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    test_dataset_id  bigint REFERENCES datasets (id) ON DELETE CASCADE,
    -- How it was trained (head, exec, replay, …) and with which knobs
    -- (lr, epochs, batch_size, weight_decay, …).
    strategy         text NOT NULL CHECK (strategy <> ''),
    params           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    result_model_id  bigint REFERENCES models (id) ON DELETE SET NULL,
    train_accuracy   double precision CHECK (train_accuracy >= 0 AND train_accuracy <= 1),
    test_accuracy    double precision CHECK (test_accuracy >= 0 AND test_accuracy <= 1),
    elapsed_seconds  double precision CHECK (elapsed_seconds >= 0),
    -- Trained weights, relative to the data directory; NULL for replayed runs.
    path             text,
    details          jsonb,
    job_id           bigint REFERENCES jobs (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT finetune_results_new_model CHECK (result_model_id IS NULL OR result_model_id <> model_id)
);

CREATE INDEX finetune_results_model_idx ON finetune_results (model_id);
CREATE INDEX finetune_results_dataset_idx ON finetune_results (dataset_id);

-- Rankings produced by strategy plugins (RANK … BY "strategy(k=v)"), keyed by
-- (name, version, parameters, models, datasets).
CREATE TABLE strategy_results (
    hash            text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    strategy        text NOT NULL CHECK (strategy <> ''),
    version         text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    -- The candidate set in a canonical (sorted) order. An array cannot carry a
    -- foreign key; a deleted model makes the row unreachable, since the hash of
    -- any later candidate set differs.
    model_ids       bigint[] NOT NULL CHECK (cardinality(model_ids) > 0),
    train_key       text NOT NULL CHECK (train_key ~ '^[0-9a-f]{64}$'),
    test_key        text NOT NULL CHECK (test_key ~ '^[0-9a-f]{64}$'),
    -- [{"model_id": …, "err": …}, …], best first.
    ranking         jsonb NOT NULL CHECK (jsonb_typeof(ranking) = 'array'),
    -- What the ranking cost (fine-tunes paid for, proxy jobs, wall time).
    cost            jsonb,
    elapsed_seconds double precision CHECK (elapsed_seconds >= 0),
    job_id          bigint REFERENCES jobs (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX strategy_results_task_idx ON strategy_results (train_key, test_key, strategy);

-- Probe embeddings of whole datasets (Task2Vec in SHiFT; any probe model here),
-- one vector per (method, probe, dataset). The pairwise distance matrix of
-- SELECT vec … WHERE probe = … is computed from these rows at query time, so a
-- new dataset costs one embedding, not a row per pair.
CREATE TABLE dataset_similarity (
    hash           text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    method         text NOT NULL CHECK (method <> ''),
    probe_model_id bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    dataset_id     bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    vec            real[] NOT NULL CHECK (array_ndims(vec) = 1 AND cardinality(vec) > 0),
    job_id         bigint REFERENCES jobs (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dataset_similarity_probe_idx ON dataset_similarity (probe_model_id, method);
CREATE INDEX dataset_similarity_dataset_idx ON dataset_similarity (dataset_id);
