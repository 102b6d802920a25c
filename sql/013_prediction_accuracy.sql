-- Realised accuracy (model management): what each kind predicted at fixed horizons, and how it did.
--
-- prediction_snapshots. Grain: one row per prediction key per as-of date, for the horizons monitored
-- (days_ahead in 1, 7, 14, 30; workspace totals only). The publisher replaces future rows every night, so
-- a forecast made 7 days ahead survives only here.
create table if not exists analytics.prediction_snapshots (
    workspace_id      uuid not null,
    prediction_type   varchar(100) not null,
    target_metric     varchar(100) not null,
    dimension         varchar(255) not null,
    granularity       varchar(10) not null,
    scenario          varchar(20) not null,
    prediction_date   date not null,
    prediction_hour   smallint not null,
    as_of_date        date not null,
    days_ahead        integer not null,
    predicted_value   numeric,
    confidence_lower  numeric,
    confidence_upper  numeric,
    confidence_level  numeric,
    model_version     varchar(50),
    arm               varchar(20) not null default 'champion',
    primary key (workspace_id, prediction_type, target_metric, dimension, granularity, scenario, prediction_date,
                 prediction_hour, as_of_date)
);
create index if not exists idx_prediction_snapshots_date on analytics.prediction_snapshots (prediction_type, prediction_date);

-- prediction_accuracy. Grain: one row per workspace x kind x metric x dimension x horizon bucket x scored date
-- x model version x arm. Sums, so any window aggregates exactly: WAPE = abs_error / actual_total,
-- error relative to a weekly seasonal naive on the same days = abs_error / naive_abs_error (a MASE-like ratio),
-- interval coverage = hits / n.
create table if not exists analytics.prediction_accuracy (
    workspace_id      uuid not null,
    prediction_type   varchar(100) not null,
    target_metric     varchar(100) not null,
    dimension         varchar(255) not null,
    horizon_bucket    varchar(10) not null,
    scored_date       date not null,
    model_version     varchar(50) not null,
    arm               varchar(20) not null default 'champion',
    n                 integer not null,
    abs_error         double precision not null,
    squared_error     double precision not null,
    actual_total      double precision not null,
    naive_abs_error   double precision,
    hits              integer not null,
    confidence_level  numeric,
    computed_at       timestamptz not null default now(),
    primary key (workspace_id, prediction_type, target_metric, dimension, horizon_bucket, scored_date,
                 model_version, arm)
);
create index if not exists idx_prediction_accuracy_date on analytics.prediction_accuracy (prediction_type, scored_date);

create or replace view analytics.v_prediction_accuracy as
with accuracy as (
    select * from analytics.prediction_accuracy
),
final as (
    select a.workspace_id, e.external_id as workspace_external_id, a.prediction_type, a.target_metric,
           a.dimension, a.horizon_bucket, a.scored_date, a.model_version, a.arm, a.n,
           a.abs_error / nullif(a.actual_total, 0) as wape,
           a.abs_error / nullif(a.naive_abs_error, 0) as error_vs_seasonal_naive,
           a.hits::double precision / nullif(a.n, 0) as coverage, a.confidence_level,
           a.abs_error, a.actual_total, a.naive_abs_error, a.squared_error, a.hits
    from accuracy a
    left join analytics.entities e on e.entity_type = 'workspace' and e.entity_id = a.workspace_id
)
select * from final;

grant select on analytics.prediction_snapshots, analytics.prediction_accuracy, analytics.v_prediction_accuracy
    to pae_reader;
