-- On-demand prediction jobs (issue 13): POST /api/analytics/predictions/generate enqueues one, `pae worker` (or the
-- Airflow DAG predictive_analytics_on_demand) runs it for one workspace and writes prediction rows with
-- scenario 'on_demand', so the nightly rows (scenario 'likely') are never replaced. Grain: one row per request.
create table if not exists analytics.prediction_jobs (
    id                uuid primary key default gen_random_uuid(),
    workspace_id      uuid not null,
    prediction_type   varchar(100) not null,
    target_metric     varchar(100) not null,
    horizon           integer not null check (horizon between 1 and 366),
    parameters        jsonb not null default '{}'::jsonb,
    status            text not null default 'queued'
                          check (status in ('queued', 'running', 'succeeded', 'failed')),
    idempotency_key   text check (idempotency_key is null or char_length(idempotency_key) between 1 and 200),
    request_hash      text not null,           -- sha256 of the normalised request: same key, other body -> 409
    api_key_id        uuid,                    -- analytics.api_keys.id of the key that asked (null: CLI/tests)
    requested_by      text,                    -- that key's name
    attempts          integer not null default 0,
    lease_owner       text,                    -- the worker id holding the job while running
    lease_expires_at  timestamptz,             -- renewed while running; past it another worker may take the job
    dispatched_to     text,                    -- 'airflow:<dag_run_id>' when triggered through Airflow
    created_at        timestamptz not null default now(),
    started_at        timestamptz,             -- start of the latest attempt
    finished_at       timestamptz,
    error             text,
    result            jsonb,                   -- where its rows are: table, prediction_type, scenario, as_of_date, rows
    -- idempotency keys are unique per API key (nulls are distinct: keyless requests never collide)
    constraint uq_prediction_jobs_idempotency unique (api_key_id, idempotency_key)
);
-- The queue: claimable jobs (queued, or running with a lease that may have expired) in arrival order.
create index if not exists idx_prediction_jobs_queue on analytics.prediction_jobs (created_at)
    where status in ('queued', 'running');
create index if not exists idx_prediction_jobs_ws on analytics.prediction_jobs (workspace_id, created_at desc);

-- The API's one write role (created in 014 for saved scenarios) may also enqueue jobs: read, insert and update
-- this table, still nothing else (no delete, no predictions). pae_reader reads it; the pipeline writes as
-- pae_writer (default privileges of 002).
grant select, insert, update on analytics.prediction_jobs to pae_scenario_writer;
grant select on analytics.prediction_jobs to pae_reader;
