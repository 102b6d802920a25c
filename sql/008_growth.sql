-- Growth projections (issue 10): realised active-user counts, growth goals, each workspace's projection
-- status, milestones and goal projections, and BI views. The projections themselves are rows of
-- analytics.predictions (prediction_type 'growth', target_metric dau/wau/mau, scenario worst/likely/best).

-- Realised active users, the workspace_growth feature set's rows (pipelines/features/sets.py).
-- Grain: one row per workspace per day, from the workspace's first event. Every count on a day uses events up
-- to the end of that day only; events without a user id do not count. MAU window: PAE_GROWTH_MAU_WINDOW_DAYS.
create table if not exists analytics.workspace_growth_metrics (
    workspace_id       uuid not null,
    metric_date        date not null,
    dau                integer not null check (dau >= 0),
    wau                integer not null check (wau >= dau),
    mau                integer not null check (mau >= wau),
    new_users          integer not null check (new_users >= 0),
    returning_users    integer not null check (returning_users >= 0),
    reactivated_users  integer not null check (reactivated_users >= 0),
    lost_users         integer not null check (lost_users >= 0),
    users_ever         integer not null check (users_ever >= mau),
    primary key (workspace_id, metric_date),
    check (dau = new_users + returning_users + reactivated_users)
);
create index if not exists idx_growth_metrics_date on analytics.workspace_growth_metrics (metric_date);

-- Goals a workspace sets (`pae goal set|list|remove`). Grain: one goal per workspace, metric and due date;
-- setting it again changes the target and keeps the id.
create table if not exists analytics.growth_goals (
    goal_id        uuid primary key default gen_random_uuid(),
    workspace_id   uuid not null,
    target_metric  varchar(10) not null check (target_metric in ('dau', 'wau', 'mau')),
    target_value   numeric not null check (target_value > 0),
    due_date       date not null,
    note           text,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint uq_growth_goals unique (workspace_id, target_metric, due_date)
);

-- What a growth run decided per workspace: projected ('success') or not ('insufficient_data': too little
-- history or too few active users, with the counts). Grain: one row per workspace per as-of date.
create table if not exists analytics.growth_status (
    workspace_id   uuid not null,
    as_of_date     date not null,
    status         varchar(30) not null check (status in ('success', 'insufficient_data')),
    reason         text,
    counts         jsonb not null default '{}'::jsonb,
    model_version  varchar(50),
    primary key (workspace_id, as_of_date)
);

-- Milestones: for each metric, the next round numbers above the as-of value ('round') and each goal's target
-- ('goal'): the share of the sample paths that reach it within horizon_days, and the days by which a tenth, half
-- and nine tenths of them have (null: fewer paths reach it within the horizon). Same paths as the scenarios.
-- Grain: one row per workspace, as-of date, metric, kind and threshold.
create table if not exists analytics.growth_milestones (
    workspace_id   uuid not null,
    as_of_date     date not null,
    target_metric  varchar(10) not null,
    kind           varchar(10) not null check (kind in ('round', 'goal')),
    threshold      numeric not null,
    current_value  numeric not null,
    probability    numeric not null check (probability between 0 and 1),
    date_p10       date,
    date_p50       date,
    date_p90       date,
    horizon_days   integer not null,
    model_version  varchar(50),
    primary key (workspace_id, as_of_date, target_metric, kind, threshold),
    check (date_p10 <= date_p50 and date_p50 <= date_p90)
);

-- A goal as projected on an as-of date (target and due date copied, so the record stays readable after the
-- goal changes). status: 'projected' (due within the projection), 'past_due' (realised value on the due
-- date, met or not) or 'beyond_range' (due more than 365 days ahead). Growth rates are compound, per 30 days.
-- Grain: one row per goal per as-of date.
create table if not exists analytics.growth_goal_projections (
    goal_id                   uuid not null,
    as_of_date                date not null,
    workspace_id              uuid not null,
    target_metric             varchar(10) not null,
    target_value              numeric not null,
    due_date                  date not null,
    status                    varchar(20) not null check (status in ('projected', 'past_due', 'beyond_range')),
    current_value             numeric,
    probability_met           numeric check (probability_met between 0 and 1),
    probability_on_due_date   numeric check (probability_on_due_date between 0 and 1),
    value_p10                 numeric,
    value_p50                 numeric,
    value_p90                 numeric,
    required_growth_30d       numeric,
    projected_growth_30d      numeric,
    realised_value            numeric,
    met                       boolean,
    model_version             varchar(50),
    primary key (goal_id, as_of_date)
);
create index if not exists idx_goal_projections_ws on analytics.growth_goal_projections (workspace_id, as_of_date);

-- BI: the growth projections. Grain: one row per workspace, metric, predicted day and scenario (worst = P10,
-- likely = P50, best = P90 of the sample paths), with the 80 and 95 per cent intervals (80: worst..best) of the
-- projection and, once the day is featurised, the realised value. A run replaces only future days, so a past
-- day keeps the last projection made before it (days_ahead = prediction_date - as_of_date): over time,
-- realised_at_or_above should be true on about 0.9 of 'worst' rows, 0.5 of 'likely' and 0.1 of 'best'.
-- Future days of a workspace whose latest run found too little data are left out.
create or replace view analytics.v_growth_projection as
with projections as (
    select workspace_id, target_metric, prediction_date, scenario, predicted_value, confidence_lower,
           confidence_upper, confidence_level, model_version, as_of_date,
           max(predicted_value) filter (where scenario = 'worst')
               over (partition by workspace_id, target_metric, prediction_date) as lower_80,
           max(predicted_value) filter (where scenario = 'best')
               over (partition by workspace_id, target_metric, prediction_date) as upper_80
    from analytics.predictions
    where prediction_type = 'growth' and dimension = 'total' and granularity = 'day'
),
latest_status as (
    select distinct on (workspace_id) workspace_id, as_of_date, status
    from analytics.growth_status
    order by workspace_id, as_of_date desc
),
realised as (
    select workspace_id, metric_date, 'dau' as target_metric, dau as value from analytics.workspace_growth_metrics
    union all
    select workspace_id, metric_date, 'wau', wau from analytics.workspace_growth_metrics
    union all
    select workspace_id, metric_date, 'mau', mau from analytics.workspace_growth_metrics
),
final as (
    select p.workspace_id, e.external_id as workspace_external_id, p.target_metric as metric, p.prediction_date,
           p.scenario, p.predicted_value, p.lower_80, p.upper_80, p.confidence_lower as lower_95,
           p.confidence_upper as upper_95, r.value as realised_value,
           r.value >= p.predicted_value as realised_at_or_above,
           r.value between p.lower_80 and p.upper_80 as realised_within_80,
           r.value between p.confidence_lower and p.confidence_upper as realised_within_95,
           p.prediction_date - p.as_of_date as days_ahead, p.model_version, p.as_of_date
    from projections p
    left join analytics.entities e on e.entity_type = 'workspace' and e.entity_id = p.workspace_id
    left join realised r
        on r.workspace_id = p.workspace_id and r.metric_date = p.prediction_date and r.target_metric = p.target_metric
    left join latest_status s on s.workspace_id = p.workspace_id
    where not (coalesce(s.status, 'success') <> 'success' and p.prediction_date > s.as_of_date)
)
select * from final;

-- BI: each goal with its latest projection (null columns until a growth run has projected it).
-- Grain: one row per goal.
create or replace view analytics.v_growth_goals as
with latest as (
    select distinct on (goal_id) *
    from analytics.growth_goal_projections
    order by goal_id, as_of_date desc
),
final as (
    select g.goal_id, g.workspace_id, e.external_id as workspace_external_id, g.target_metric, g.target_value,
           g.due_date, g.note, l.as_of_date, l.status, l.current_value, l.probability_met,
           l.probability_on_due_date, l.value_p10, l.value_p50, l.value_p90, l.required_growth_30d,
           l.projected_growth_30d, l.realised_value, l.met, l.model_version
    from analytics.growth_goals g
    left join analytics.entities e on e.entity_type = 'workspace' and e.entity_id = g.workspace_id
    left join latest l on l.goal_id = g.goal_id
        and l.target_value = g.target_value and l.due_date = g.due_date
)
select * from final;

grant select on analytics.workspace_growth_metrics, analytics.growth_goals, analytics.growth_status,
    analytics.growth_milestones, analytics.growth_goal_projections, analytics.v_growth_projection,
    analytics.v_growth_goals to pae_reader;
grant select, insert, update, delete on analytics.workspace_growth_metrics, analytics.growth_goals,
    analytics.growth_status, analytics.growth_milestones, analytics.growth_goal_projections to pae_writer;
