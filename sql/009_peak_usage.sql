-- Peak usage and capacity planning (pipelines/peak_usage): capacity limits, declared time zones, and the BI
-- views over the peak_usage predictions. Readable by pae_reader (default privileges, 002).
--
-- The predictions (prediction_type = 'peak_usage', dimension 'total', scenario 'likely'):
--   granularity 'hour' (UTC date + prediction_hour in UTC): target_metric 'calls' / 'credits' at the published
--     level (PAE_PEAK_LEVEL, 95%), 'calls_80' / 'credits_80' at 80%;
--   granularity 'day' (the workspace's LOCAL date, prediction_hour the LOCAL hour): '<m>_peak' (the day's peak
--     value and its interval, at the peak hour), '<m>_capacity' (capacity need = the peak's upper bound x
--     PAE_PEAK_HEADROOM), '<m>_peak_hour_probability' (the three likeliest peak hours, value = probability)
--     and '<m>_week_peak' (one row: the week's peak, its day and hour).
-- A workspace's time zone is its workspace_hourly feature (analytics.ml_features), inferred from its daily
-- rhythm unless declared in analytics.workspace_time_zones.

-- Grain: one row per workspace and metric. Written by `pae capacity set`; the alerts compare the hourly upper
-- bounds with it (no row: with the workspace's highest hour of the last 28 days).
create table if not exists analytics.capacity_limits (
    workspace_id   uuid not null,
    target_metric  varchar(100) not null check (target_metric in ('calls', 'credits')),
    limit_value    numeric not null check (limit_value > 0),
    note           text,
    updated_at     timestamptz not null default now(),
    primary key (workspace_id, target_metric)
);

-- Grain: one row per workspace whose time zone is known (`pae capacity set --time-zone`); it wins over the
-- zone inferred from the daily rhythm.
create table if not exists analytics.workspace_time_zones (
    workspace_id  uuid primary key,
    time_zone     text not null check (time_zone <> ''),
    updated_at    timestamptz not null default now()
);

-- Grain: one row per workspace, metric and forecast hour of the workspace's latest peak_usage run: the hourly
-- forecast and its upper bound against the capacity limit, in UTC and local time. alert: the upper bound
-- exceeds the limit; hours_ahead: hours from the data cutoff (the end of as_of_date, UTC) to the hour's start.
-- Every hour from the second day on is flagged at least 24 h ahead; the first day's hours were already in
-- the previous night's horizon, 24-48 h ahead.
create or replace view analytics.v_capacity_alerts as
with hourly_features as (
    select entity_id as workspace_id,
           coalesce(features ->> 'time_zone', 'UTC') as time_zone,
           (features ->> 'calls_hour_max_28')::numeric as calls_max_28,
           (features ->> 'credits_hour_max_28')::numeric as credits_max_28
    from analytics.ml_features
    where entity_type = 'workspace' and feature_set = 'workspace_hourly'
),
latest as (
    select workspace_id, max(as_of_date) as as_of_date
    from analytics.predictions
    where prediction_type = 'peak_usage' and granularity = 'hour'
    group by workspace_id
),
hourly as (
    select p.workspace_id, p.target_metric, p.as_of_date,
           p.prediction_date + make_interval(hours => p.prediction_hour) as hour_utc,
           p.predicted_value, p.confidence_lower, p.confidence_upper, p.confidence_level, p.model_version
    from analytics.predictions p
    join latest l on l.workspace_id = p.workspace_id and l.as_of_date = p.as_of_date
    where p.prediction_type = 'peak_usage' and p.granularity = 'hour' and p.target_metric in ('calls', 'credits')
      and p.dimension = 'total' and p.scenario = 'likely'
),
final as (
    select h.workspace_id, e.external_id as workspace_external_id, h.target_metric, h.as_of_date,
           h.hour_utc, (h.hour_utc at time zone 'UTC') at time zone coalesce(f.time_zone, 'UTC') as hour_local,
           coalesce(f.time_zone, 'UTC') as time_zone,
           h.predicted_value, h.confidence_lower, h.confidence_upper, h.confidence_level,
           coalesce(c.limit_value, case h.target_metric when 'calls' then f.calls_max_28 else f.credits_max_28 end)
               as capacity_limit,
           case when c.limit_value is not null then 'capacity_limits' else 'max_hour_28d' end as limit_source,
           (extract(epoch from h.hour_utc - (h.as_of_date + 1)::timestamp) / 3600)::integer as hours_ahead,
           h.model_version
    from hourly h
    left join hourly_features f on f.workspace_id = h.workspace_id
    left join analytics.capacity_limits c on c.workspace_id = h.workspace_id and c.target_metric = h.target_metric
    left join analytics.entities e on e.entity_type = 'workspace' and e.entity_id = h.workspace_id
)
select final.*, coalesce(confidence_upper > capacity_limit, false) as alert
from final;

-- Grain: one row per workspace, metric and LOCAL day of the workspace's latest peak_usage run: the peak hour
-- (local and UTC), the peak value and its bounds, the capacity need, the limit and the day's alert (any hour
-- whose upper bound exceeds the limit), with the first such hour.
create or replace view analytics.v_capacity_plan as
with days as (
    select workspace_id, target_metric, prediction_date, prediction_hour, predicted_value, confidence_lower,
           confidence_upper, confidence_level, model_version, as_of_date
    from analytics.predictions
    where prediction_type = 'peak_usage' and granularity = 'day' and dimension = 'total' and scenario = 'likely'
),
latest as (
    select workspace_id, max(as_of_date) as as_of_date from days group by workspace_id
),
peaks as (
    select d.workspace_id, left(d.target_metric, -5) as target_metric, d.prediction_date as day,
           d.prediction_hour as peak_hour_local, d.predicted_value as peak_value, d.confidence_lower as peak_lower,
           d.confidence_upper as peak_upper, d.confidence_level, d.model_version, d.as_of_date
    from days d
    join latest l on l.workspace_id = d.workspace_id and l.as_of_date = d.as_of_date
    where d.target_metric in ('calls_peak', 'credits_peak')
),
capacity as (
    select workspace_id, left(target_metric, -9) as target_metric, prediction_date as day, as_of_date,
           predicted_value as capacity_need
    from days
    where target_metric in ('calls_capacity', 'credits_capacity')
),
alerts as (
    select workspace_id, target_metric, hour_local::date as day, max(capacity_limit) as capacity_limit,
           max(limit_source) as limit_source, count(*) filter (where alert) as alert_hours,
           min(hour_local) filter (where alert) as first_alert_local,
           min(hour_utc) filter (where alert) as first_alert_utc, max(time_zone) as time_zone
    from analytics.v_capacity_alerts
    group by 1, 2, 3
),
zones as (
    select entity_id as workspace_id, coalesce(features ->> 'time_zone', 'UTC') as time_zone
    from analytics.ml_features
    where entity_type = 'workspace' and feature_set = 'workspace_hourly'
),
final as (
    select p.workspace_id, e.external_id as workspace_external_id, p.target_metric, p.day,
           coalesce(z.time_zone, 'UTC') as time_zone, p.peak_hour_local,
           extract(hour from ((p.day + make_interval(hours => p.peak_hour_local))
                              at time zone coalesce(z.time_zone, 'UTC')) at time zone 'UTC')::integer as peak_hour_utc,
           p.peak_value, p.peak_lower, p.peak_upper, p.confidence_level, c.capacity_need,
           a.capacity_limit, a.limit_source, coalesce(a.alert_hours, 0) > 0 as alert, coalesce(a.alert_hours, 0) as alert_hours,
           a.first_alert_local, a.first_alert_utc, p.model_version, p.as_of_date
    from peaks p
    left join capacity c on c.workspace_id = p.workspace_id and c.target_metric = p.target_metric
                        and c.day = p.day and c.as_of_date = p.as_of_date
    left join alerts a on a.workspace_id = p.workspace_id and a.target_metric = p.target_metric and a.day = p.day
    left join zones z on z.workspace_id = p.workspace_id
    left join analytics.entities e on e.entity_type = 'workspace' and e.entity_id = p.workspace_id
)
select * from final;
