-- v_capacity_plan, read per workspace (review of issues 13/16): its `days` CTE was referenced three times, so
-- PostgreSQL materialised it, scanning every workspace's daily peak rows before the reader's
-- `where workspace_id = :ws` could apply (a sequential scan of analytics.predictions; 1.3 s at 200 workspaces with
-- 60 days of peak history each). `not materialized` inlines it, so the workspace predicate reaches each use and
-- the existing indexes serve it (uq_predictions, idx_predictions_ws_asof): a workspace's read touches only its
-- own rows. Same columns and rows as 009; a read of every workspace now scans the peak rows per use instead of
-- once. Grain: one row per workspace, metric and LOCAL day of the workspace's latest peak_usage run.
create or replace view analytics.v_capacity_plan as
with days as not materialized (
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
