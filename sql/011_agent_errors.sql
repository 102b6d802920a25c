-- Agent error rates (issue 12): per-agent daily history, forecast detail, escalation alerts per as-of date,
-- per-agent threshold overrides, and the BI views over them. The forecast itself is also in
-- analytics.predictions (prediction_type 'error_rate', target_metric 'error_rate', dimension = the agent's
-- external id, 95% interval), as every prediction kind's is.

-- Grain: one row per workspace, agent and day with calls (written by the features step for refreshed days).
create table if not exists analytics.agent_daily_metrics (
    workspace_id  uuid not null,
    agent_id      uuid not null,
    metric_date   date not null,
    calls         bigint not null check (calls >= 0),
    errors        bigint not null check (errors >= 0 and errors <= calls),
    credits       double precision not null,
    primary key (workspace_id, agent_id, metric_date)
);
create index if not exists idx_agent_daily_date on analytics.agent_daily_metrics (metric_date);

-- Grain: one row per workspace, agent and predicted day (the latest forecast for future days; a past day keeps
-- the last forecast made before it, with as_of_date). Rates are the observed daily rate (failed / calls) given
-- the expected calls; p_breach_by: probability that a breach is confirmed by that day.
create table if not exists analytics.agent_error_forecasts (
    workspace_id    uuid not null,
    agent_id        uuid not null,
    prediction_date date not null,
    as_of_date      date not null,
    predicted_rate  numeric not null check (predicted_rate between 0 and 1),
    lower_80        numeric not null,
    upper_80        numeric not null,
    lower_95        numeric not null,
    upper_95        numeric not null,
    expected_calls  numeric not null check (expected_calls >= 0),
    p_breach_by     numeric not null check (p_breach_by between 0 and 1),
    model_version   varchar(50),
    primary key (workspace_id, agent_id, prediction_date),
    check (lower_95 <= lower_80 and lower_80 <= predicted_rate and predicted_rate <= upper_80 and upper_80 <= upper_95)
);
create index if not exists idx_agent_forecasts_asof on analytics.agent_error_forecasts (as_of_date);

-- Grain: one row per workspace, agent and as-of date: the agent's status, alert level (null: no alert) and why.
create table if not exists analytics.agent_error_alerts (
    workspace_id          uuid not null,
    agent_id              uuid not null,
    as_of_date            date not null,
    status                text not null check (status in ('ok', 'escalating', 'breach', 'chronic',
                                                          'insufficient_volume', 'inactive')),
    alert_level           text check (alert_level in ('watch', 'warning', 'critical')),
    probability           numeric check (probability between 0 and 1),
    expected_breach_date  date,
    threshold             numeric not null check (threshold > 0 and threshold <= 1),
    threshold_source      text not null check (threshold_source in ('default', 'override_rate',
                                                                    'override_multiplier')),
    current_rate          numeric,
    baseline_rate         numeric,
    calls_last_7d         bigint not null,
    errors_last_7d        bigint not null,
    trend_per_day         numeric,
    failing_users_share   numeric,
    calls_at_risk         numeric,
    reason                text not null,
    drivers               jsonb not null default '[]'::jsonb,
    risk_rank             numeric not null,
    model_version         varchar(50),
    created_at            timestamp default current_timestamp,
    primary key (workspace_id, agent_id, as_of_date)
);
create index if not exists idx_agent_alerts_ws_date on analytics.agent_error_alerts (workspace_id, as_of_date desc);
create index if not exists idx_agent_alerts_date_level on analytics.agent_error_alerts (as_of_date, alert_level);

-- Grain: one row per workspace and agent with an operator-set threshold (`pae agent-threshold set`): an absolute
-- rate, or a multiplier of the agent's baseline replacing the default one.
create table if not exists analytics.agent_error_thresholds (
    workspace_id    uuid not null,
    agent_id        uuid not null,
    threshold_rate  numeric check (threshold_rate > 0 and threshold_rate <= 1),
    multiplier      numeric check (multiplier >= 1),
    note            text,
    updated_at      timestamptz not null default now(),
    primary key (workspace_id, agent_id),
    check ((threshold_rate is null) <> (multiplier is null))
);

-- BI: one row per workspace, agent and as-of date, with the source ids; is_latest marks the latest run's rows.
create or replace view analytics.v_agent_error_alerts as
with alerts as (
    select * from analytics.agent_error_alerts
),
workspaces as (
    select entity_id as workspace_id, external_id as workspace_external_id
    from analytics.entities
    where entity_type = 'workspace'
),
agents as (
    select entity_id as agent_id, external_id as agent_external_id
    from analytics.entities
    where entity_type = 'agent'
),
final as (
    select a.workspace_id, w.workspace_external_id, a.agent_id, g.agent_external_id, a.as_of_date,
           a.status, a.alert_level, a.probability, a.expected_breach_date, a.threshold, a.threshold_source,
           a.current_rate, a.baseline_rate, a.calls_last_7d, a.errors_last_7d, a.trend_per_day,
           a.failing_users_share, a.calls_at_risk, a.reason, a.model_version,
           a.as_of_date = (select max(as_of_date) from analytics.agent_error_alerts) as is_latest
    from alerts a
    left join workspaces w using (workspace_id)
    left join agents g using (agent_id)
)
select * from final;

-- BI: one row per workspace, agent and predicted day: the forecast with both intervals and, once the day is
-- featurised, the realised rate and whether it fell in each interval (days without calls: null).
create or replace view analytics.v_agent_error_forecast as
with forecasts as (
    select * from analytics.agent_error_forecasts
),
final as (
    select f.workspace_id, w.external_id as workspace_external_id, f.agent_id, g.external_id as agent_external_id,
           f.prediction_date, f.prediction_date - f.as_of_date as days_ahead, f.predicted_rate, f.lower_80,
           f.upper_80, f.lower_95, f.upper_95, f.expected_calls, f.p_breach_by,
           m.calls as actual_calls,
           m.errors::numeric / nullif(m.calls, 0) as actual_rate,
           m.errors::numeric / nullif(m.calls, 0) between f.lower_80 and f.upper_80 as actual_within_80,
           m.errors::numeric / nullif(m.calls, 0) between f.lower_95 and f.upper_95 as actual_within_95,
           f.model_version, f.as_of_date
    from forecasts f
    left join analytics.entities w on w.entity_type = 'workspace' and w.entity_id = f.workspace_id
    left join analytics.entities g on g.entity_type = 'agent' and g.entity_id = f.agent_id
    left join analytics.agent_daily_metrics m
        on m.workspace_id = f.workspace_id and m.agent_id = f.agent_id and m.metric_date = f.prediction_date
)
select * from final;

grant select on analytics.agent_daily_metrics, analytics.agent_error_forecasts, analytics.agent_error_alerts,
    analytics.agent_error_thresholds, analytics.v_agent_error_alerts, analytics.v_agent_error_forecast to pae_reader;
