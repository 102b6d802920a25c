-- Model management (issue 16): every champion/challenger decision with its figures, and the nightly A/B
-- comparison of the arms' realised accuracy.
--
-- model_decisions. Grain: one row per model version x source x run date. source: 'registration' (the version's
-- backtest/holdout against the champion at registration) or 'ab_realised' (the A/B arms' realised accuracy).
-- decision: 'promote' or 'keep'. A 'promote' moves the `champion` alias only when that version's predictions are
-- published: applied_at is set then (null = not applied yet: a run killed before publishing, or an A/B
-- promotion waiting for the next publish).
create table if not exists analytics.model_decisions (
    decision_id   bigserial primary key,
    kind          varchar(50),
    model_name    varchar(255) not null,
    version       varchar(50) not null,
    source        varchar(20) not null check (source in ('registration', 'ab_realised')),
    run_date      date not null,
    decision      varchar(20) not null check (decision in ('promote', 'keep')),
    reason        text not null,
    figures       jsonb not null default '{}'::jsonb,
    decided_at    timestamptz not null default now(),
    applied_at    timestamptz,
    unique (model_name, version, source, run_date)
);
create index if not exists idx_model_decisions_pending on analytics.model_decisions (model_name)
    where decision = 'promote' and applied_at is null;

-- ab_comparisons. Grain: one row per kind per run date. The metric is realised error relative to a weekly
-- seasonal naive (sum abs_error / sum naive_abs_error, MASE-like) over the window, per arm; diff = challenger -
-- champion (negative: the challenger is better), with a 95% workspace-level bootstrap interval (seeded), also
-- relative to the champion (relative_*). verdict: challenger_better | champion_better | no_difference |
-- insufficient_data.
create table if not exists analytics.ab_comparisons (
    kind                        varchar(50) not null,
    run_date                    date not null,
    prediction_type             varchar(100) not null,
    window_days                 integer not null,
    metric                      varchar(50) not null,
    workspaces_champion         integer not null,
    workspaces_challenger       integer not null,
    workspace_days_champion     integer not null,
    workspace_days_challenger   integer not null,
    metric_champion             double precision,
    metric_challenger           double precision,
    wape_champion               double precision,
    wape_challenger             double precision,
    diff                        double precision,
    ci_low                      double precision,
    ci_high                     double precision,
    relative_diff               double precision,
    relative_ci_low             double precision,
    relative_ci_high            double precision,
    confidence                  double precision not null,
    verdict                     varchar(30) not null,
    champion_version            varchar(50),
    challenger_version          varchar(50),
    mlflow_run_id               varchar(64),
    details                     jsonb not null default '{}'::jsonb,
    computed_at                 timestamptz not null default now(),
    primary key (kind, run_date)
);

create or replace view analytics.v_ab_comparisons as
with comparisons as (
    select * from analytics.ab_comparisons
),
final as (
    select kind, run_date, prediction_type, window_days, metric, verdict,
           metric_champion, metric_challenger, diff, ci_low, ci_high,
           relative_diff, relative_ci_low, relative_ci_high, confidence,
           wape_champion, wape_challenger,
           workspaces_champion, workspaces_challenger, workspace_days_champion, workspace_days_challenger,
           champion_version, challenger_version, mlflow_run_id, computed_at
    from comparisons
)
select * from final;

create or replace view analytics.v_model_decisions as
with decisions as (
    select * from analytics.model_decisions
),
final as (
    select decision_id, kind, model_name, version, source, run_date, decision, reason, figures,
           decided_at, applied_at, applied_at is not null as applied
    from decisions
)
select * from final;

grant select on analytics.model_decisions, analytics.ab_comparisons, analytics.v_ab_comparisons,
    analytics.v_model_decisions to pae_reader;
grant select, insert, update, delete on analytics.model_decisions, analytics.ab_comparisons to pae_writer;
grant usage, select on sequence analytics.model_decisions_decision_id_seq to pae_writer;
