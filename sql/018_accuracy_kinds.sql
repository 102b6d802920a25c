-- Realised accuracy for every kind (issue 16): peak-hour hits beside the error sums, and classification
-- accuracy (churn scores, agent error alerts) once their outcome window has closed.

-- Peak usage: a daily peak's predicted hour (local) against the hour the peak happened (within one hour,
-- circular). Null for metrics without an hour to hit.
alter table analytics.prediction_accuracy add column if not exists hour_hits integer;

-- classification_accuracy. Grain: one row per kind x target (e.g. churned, breach_14d) x as-of date of the
-- scores x model version x arm. AUC does not add up over rows, so it is stored per row; the rest are sums:
-- calibration-in-the-large = (sum_probability - positives) / n, Brier = brier_sum / n,
-- precision = true_positives / predicted_positives, recall = true_positives / positives.
create table if not exists analytics.classification_accuracy (
    prediction_type      varchar(100) not null,
    target_metric        varchar(100) not null,
    as_of_date           date not null,
    scored_date          date not null,
    model_version        varchar(50) not null,
    arm                  varchar(20) not null default 'champion',
    n                    integer not null check (n >= 0),
    positives            integer not null,
    predicted_positives  integer not null,
    true_positives       integer not null,
    sum_probability      double precision not null,
    brier_sum            double precision not null,
    auc                  double precision,
    pr_auc               double precision,
    decision_threshold   text,
    computed_at          timestamptz not null default now(),
    primary key (prediction_type, target_metric, as_of_date, model_version, arm)
);
create index if not exists idx_classification_accuracy_scored
    on analytics.classification_accuracy (prediction_type, scored_date);

create or replace view analytics.v_classification_accuracy as
select prediction_type, target_metric, as_of_date, scored_date, model_version, arm, n, positives,
       positives::double precision / nullif(n, 0) as base_rate,
       sum_probability / nullif(n, 0) as mean_probability,
       (sum_probability - positives) / nullif(n, 0) as calibration_in_the_large,
       brier_sum / nullif(n, 0) as brier, auc, pr_auc,
       true_positives::double precision / nullif(predicted_positives, 0) as precision,
       true_positives::double precision / nullif(positives, 0) as recall,
       predicted_positives, true_positives, decision_threshold, computed_at
from analytics.classification_accuracy;

-- One row per kind x metric x scope (workspace totals, or per agent/feature) x horizon bucket x scored date x arm,
-- over all workspaces: pooled WAPE, error
-- against the weekly seasonal naive, interval coverage and (peaks) the share of days whose peak hour was hit.
create or replace view analytics.v_prediction_accuracy_daily as
select prediction_type, target_metric, case when dimension = 'total' then 'total' else 'per_dimension' end as scope,
       horizon_bucket, scored_date, arm, count(distinct workspace_id) as workspaces,
       sum(n) as n, sum(abs_error) / nullif(sum(actual_total), 0) as wape,
       sum(abs_error) / nullif(sum(naive_abs_error), 0) as error_vs_seasonal_naive,
       sum(hits)::double precision / nullif(sum(n), 0) as coverage,
       sum(hour_hits)::double precision / nullif(sum(n) filter (where hour_hits is not null), 0) as peak_hour_hit_rate
from analytics.prediction_accuracy
group by prediction_type, target_metric, 3, horizon_bucket, scored_date, arm;

grant select on analytics.classification_accuracy, analytics.v_classification_accuracy,
    analytics.v_prediction_accuracy_daily to pae_reader;
grant select, insert, update, delete on analytics.classification_accuracy to pae_writer;
