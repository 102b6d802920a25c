-- BI views over the credit-consumption forecasts, readable by pae_reader (default privileges, 002).

-- Grain: one row per workspace, dimension ('total' or a feature/service) and predicted day.
-- Source ids beside the UUIDs, and the realised credits once the day has been featurised
-- (null until then, and for days with no usage: a day with no events has no metrics row).
-- A run replaces only future days, so a past day keeps the last forecast made before it
-- (days_ahead = prediction_date - as_of_date): the view doubles as a record of realised accuracy.
create or replace view analytics.v_credit_forecast as
with forecasts as (
    select workspace_id, dimension, prediction_date, predicted_value, confidence_lower, confidence_upper,
           confidence_level, model_version, as_of_date
    from analytics.predictions
    where prediction_type = 'credit_consumption' and target_metric = 'credits'
      and granularity = 'day' and scenario = 'likely'
),
workspaces as (
    select entity_id as workspace_id, external_id as workspace_external_id
    from analytics.entities
    where entity_type = 'workspace'
),
final as (
    select f.workspace_id, w.workspace_external_id, f.dimension, f.prediction_date,
           f.predicted_value, f.confidence_lower, f.confidence_upper, f.confidence_level,
           m.credits as actual_credits,
           m.credits between f.confidence_lower and f.confidence_upper as actual_within_interval,
           f.prediction_date - f.as_of_date as days_ahead, f.model_version, f.as_of_date
    from forecasts f
    left join workspaces w using (workspace_id)
    left join analytics.workspace_daily_metrics m
        on m.workspace_id = f.workspace_id and m.metric_date = f.prediction_date and m.dimension = f.dimension
)
select * from final;

-- Grain: one row per workspace, as-of date and horizon day: the credits from the first forecast day through
-- that day, with an interval calibrated for the total (summing daily bounds would overstate its
-- uncertainty). For finance: the row with the largest days_ahead is the total over the horizon.
create or replace view analytics.v_credit_forecast_cumulative as
with cumulative as (
    select workspace_id, as_of_date, prediction_date, predicted_value, confidence_lower, confidence_upper,
           confidence_level, model_version
    from analytics.predictions
    where prediction_type = 'credit_consumption' and target_metric = 'credits_cumulative'
      and dimension = 'total' and granularity = 'day' and scenario = 'likely'
),
final as (
    select c.workspace_id, e.external_id as workspace_external_id, c.as_of_date,
           c.prediction_date as through_date, c.prediction_date - c.as_of_date as days_ahead,
           c.predicted_value as predicted_credits, c.confidence_lower, c.confidence_upper, c.confidence_level,
           c.model_version
    from cumulative c
    left join analytics.entities e on e.entity_type = 'workspace' and e.entity_id = c.workspace_id
)
select * from final;
