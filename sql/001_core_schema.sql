-- Core schema: the seed's four tables (with PostgreSQL indexes), the usage-event source,
-- the id map and pipeline-run records.
-- gen_random_uuid() is built in (PG13+); the seed's uuid_generate_v4() needs the uuid-ossp extension.

create schema if not exists analytics;

-- Source: usage events. Grain: one row per event, or per aggregate (count > 1) of identical events.
-- event_key is the idempotency key: md5 of the contract columns plus the row's occurrence number
-- among identical rows of its file (or of a caller-given event_id), so re-loading a file adds nothing.
create table if not exists analytics.usage_events (
    event_key     uuid primary key,
    event_time    timestamptz not null,
    workspace_id  text not null check (workspace_id <> ''),
    user_id       text,
    agent_id      text,
    feature       text not null check (feature <> ''),
    credits       numeric(20, 6) not null check (credits >= 0),
    status        text not null check (status in ('ok', 'error')),
    count         integer not null default 1 check (count >= 1),
    extra         jsonb,
    source_file   text,
    loaded_at     timestamptz not null default now()
);
create index if not exists idx_usage_events_time on analytics.usage_events (event_time);

-- Text ids from the source mapped to the UUIDs the seed's tables key on.
-- entity_id = the id itself when it is a UUID, else uuid5(NAMESPACE_OID, '<kind>:<id>').
create table if not exists analytics.entities (
    entity_type   varchar(50) not null check (entity_type in ('workspace', 'user', 'agent')),
    entity_id     uuid not null,
    external_id   text not null,
    workspace_id  uuid,
    first_seen_at timestamptz,
    primary key (entity_type, external_id),
    unique (entity_type, entity_id)
);
create index if not exists idx_entities_workspace on analytics.entities (workspace_id, entity_type);

-- Predictions. Grain: one row per workspace, prediction type, metric, dimension (feature/service,
-- agent or 'total'), granularity, scenario and predicted period (date + hour for hourly).
create table if not exists analytics.predictions (
    id                uuid primary key default gen_random_uuid(),
    workspace_id      uuid not null,
    prediction_type   varchar(100) not null,
    target_metric     varchar(100) not null,
    dimension         varchar(255) not null default 'total',
    granularity       varchar(10) not null default 'day' check (granularity in ('day', 'hour')),
    scenario          varchar(20) not null default 'likely',
    prediction_date   date not null,
    prediction_hour   smallint not null default 0 check (prediction_hour between 0 and 23),
    predicted_value   decimal,
    confidence_lower  decimal,
    confidence_upper  decimal,
    confidence_level  decimal default 0.95,
    model_version     varchar(50),
    as_of_date        date,
    created_at        timestamp default current_timestamp,
    constraint uq_predictions unique
        (workspace_id, prediction_type, target_metric, dimension, granularity, scenario, prediction_date, prediction_hour)
);
create index if not exists idx_predictions_workspace on analytics.predictions (workspace_id, prediction_type);
create index if not exists idx_predictions_date on analytics.predictions (prediction_date, workspace_id);

-- Model metadata (one row per registered model version).
create table if not exists analytics.ml_models (
    id                    uuid primary key default gen_random_uuid(),
    model_name            varchar(255) not null,
    model_type            varchar(100) not null,
    version               varchar(50) not null,
    workspace_id          uuid,
    target_metric         varchar(100) not null,
    training_params       jsonb not null,
    performance_metrics   jsonb not null,
    feature_importance    jsonb,
    model_artifacts_path  text,
    training_data_start   date,
    training_data_end     date,
    is_active             boolean default true,
    created_at            timestamp default current_timestamp,
    last_used_at          timestamp,
    unique (model_name, version)
);

-- Churn predictions. Grain: one row per user per prediction (as-of) date.
create table if not exists analytics.churn_predictions (
    id                   uuid primary key default gen_random_uuid(),
    workspace_id         uuid not null,
    user_id              uuid not null,
    prediction_date      date not null,
    churn_probability    decimal not null check (churn_probability between 0 and 1),
    risk_score           decimal not null check (risk_score between 0 and 100),
    risk_factors         jsonb not null,
    recommended_actions  jsonb,
    days_until_churn     integer,
    model_version        varchar(50),
    created_at           timestamp default current_timestamp,
    constraint uq_churn_user_date unique (workspace_id, user_id, prediction_date)
);
create index if not exists idx_churn_risk on analytics.churn_predictions (workspace_id, risk_score desc);
create index if not exists idx_churn_user on analytics.churn_predictions (user_id, prediction_date desc);

-- Online feature store. Grain: one row per entity, feature set and version (the latest as-of date);
-- the full history per as-of date lives in the Parquet offline store.
create table if not exists analytics.ml_features (
    id           uuid primary key default gen_random_uuid(),
    entity_type  varchar(50) not null,
    entity_id    uuid not null,
    feature_set  varchar(100) not null,
    features     jsonb not null,
    computed_at  timestamp not null,
    version      integer default 1,
    as_of_date   date,
    unique (entity_type, entity_id, feature_set, version)
);
create index if not exists idx_features_entity on analytics.ml_features (entity_type, entity_id);

-- Daily metrics. Grain: one row per workspace per day per dimension ('total' or a feature/service).
create table if not exists analytics.workspace_daily_metrics (
    workspace_id  uuid not null,
    metric_date   date not null,
    dimension     varchar(255) not null,
    credits       double precision not null,
    calls         bigint not null,
    errors        bigint not null,
    active_users  integer not null,
    primary key (workspace_id, metric_date, dimension)
);
create index if not exists idx_workspace_daily_date on analytics.workspace_daily_metrics (metric_date);

-- Pipeline runs. Grain: one row per step attempt.
create table if not exists analytics.pipeline_runs (
    run_id          uuid primary key default gen_random_uuid(),
    logical_date    date not null,
    step            varchar(100) not null,
    status          varchar(30) not null check (status in ('running', 'success', 'failed', 'insufficient_data', 'skipped')),
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    duration_s      double precision,
    row_counts      jsonb not null default '{}'::jsonb,
    mlflow_run_ids  jsonb not null default '[]'::jsonb,
    details         jsonb not null default '{}'::jsonb,
    error           text
);
create index if not exists idx_pipeline_runs_date on analytics.pipeline_runs (logical_date desc, step);
