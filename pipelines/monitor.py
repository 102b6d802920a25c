"""Realised accuracy, every night: score earlier predictions against what happened.

Generic over prediction kinds. The publisher snapshots each kind's workspace-total predictions at the
monitored horizons (``SNAPSHOT_HORIZONS`` days ahead, the ``likely`` scenario) into ``analytics.prediction_snapshots``, since the
nightly upsert replaces future rows and a 7-day-ahead forecast would otherwise be gone by its day. A kind
that declares ``realised_sql`` (a select of ``workspace_id, target_metric, dimension, granularity,
prediction_date, prediction_hour, actual`` for ``:since <= prediction_date <= :until``) is then scored each
night into ``analytics.prediction_accuracy``: absolute and squared error, the realised total, the error of
a weekly seasonal naive made at the same as-of date (so ``abs_error / naive_abs_error`` is a MASE-like ratio),
and interval hits, per workspace × metric × horizon bucket × scored date × model version × arm.

``accuracy_alerts`` compares each kind's realised WAPE over the last ``monitor_window_days`` with what its
model's holdout promised (``promised_metric`` in ``analytics.ml_models.performance_metrics``) and flags
kinds worse by more than ``monitor_alert_margin``.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.contracts import TOTAL

log = logging.getLogger(__name__)

SNAPSHOT_HORIZONS = (1, 7, 14, 30)
NAIVE_LOOKBACK_DAYS = 7 * ((max(SNAPSHOT_HORIZONS) + 6) // 7)

_SNAPSHOT = sa.text("""
insert into analytics.prediction_snapshots as s (workspace_id, prediction_type, target_metric, dimension,
    granularity, scenario, prediction_date, prediction_hour, as_of_date, days_ahead, predicted_value,
    confidence_lower, confidence_upper, confidence_level, model_version, arm)
select workspace_id, prediction_type, target_metric, dimension, granularity, scenario, prediction_date,
       prediction_hour, as_of_date, prediction_date - as_of_date, predicted_value, confidence_lower,
       confidence_upper, confidence_level, model_version, 'champion'
from analytics.predictions
where prediction_type = :type and as_of_date = :as_of and dimension = :total and granularity = 'day'
  and scenario = 'likely' and prediction_date - as_of_date = any(:horizons)
on conflict (workspace_id, prediction_type, target_metric, dimension, granularity, scenario, prediction_date,
             prediction_hour, as_of_date) do update set
    days_ahead = excluded.days_ahead, predicted_value = excluded.predicted_value,
    confidence_lower = excluded.confidence_lower, confidence_upper = excluded.confidence_upper,
    confidence_level = excluded.confidence_level, model_version = excluded.model_version, arm = excluded.arm
""")


def snapshot_predictions(conn: sa.Connection, prediction_type: str, as_of: date) -> int:
    """Keep the monitored horizons of a just-published prediction set (in the publisher's transaction)."""
    return conn.execute(_SNAPSHOT, {"type": prediction_type, "as_of": as_of, "total": TOTAL,
                                    "horizons": list(SNAPSHOT_HORIZONS)}).rowcount


def _score_sql(realised_sql: str) -> str:
    return f"""
with actual as ({realised_sql}),
snap as (
    select * from analytics.prediction_snapshots
    where prediction_type = :type and prediction_date between :first and :last
),
joined as (
    select s.workspace_id, s.target_metric, s.dimension, s.prediction_date, s.model_version, s.arm,
           s.confidence_level,
           case when s.days_ahead <= 1 then '1d' when s.days_ahead <= 7 then '7d'
                when s.days_ahead <= 14 then '14d' else '30d' end as horizon_bucket,
           abs(s.predicted_value - a.actual) as abs_error, (s.predicted_value - a.actual) ^ 2 as squared_error,
           a.actual, abs(n.actual - a.actual) as naive_abs_error,
           (a.actual between s.confidence_lower and s.confidence_upper)::int as hit
    from snap s
    join actual a on (a.workspace_id, a.target_metric, a.dimension, a.granularity, a.prediction_date,
                      a.prediction_hour)
                   = (s.workspace_id, s.target_metric, s.dimension, s.granularity, s.prediction_date,
                      s.prediction_hour)
    left join actual n on (n.workspace_id, n.target_metric, n.dimension, n.granularity, n.prediction_hour)
                        = (s.workspace_id, s.target_metric, s.dimension, s.granularity, s.prediction_hour)
                       and n.prediction_date = s.prediction_date - 7 * ((s.days_ahead + 6) / 7)
)
insert into analytics.prediction_accuracy (workspace_id, prediction_type, target_metric, dimension,
    horizon_bucket, scored_date, model_version, arm, n, abs_error, squared_error, actual_total,
    naive_abs_error, hits, confidence_level)
select workspace_id, :type, target_metric, dimension, horizon_bucket, prediction_date, model_version, arm,
       count(*), sum(abs_error), sum(squared_error), sum(actual), sum(naive_abs_error), sum(hit),
       max(confidence_level)
from joined
group by workspace_id, target_metric, dimension, horizon_bucket, prediction_date, model_version, arm
"""


def score_realised(engine: Engine, prediction_type: str, realised_sql: str, first: date, last: date) -> int:
    """(Re)score the snapshots of ``first..last`` against what happened; one transaction, idempotent."""
    params = {"type": prediction_type, "first": first, "last": last,
              "since": first - timedelta(days=NAIVE_LOOKBACK_DAYS), "until": last}
    with engine.begin() as conn:
        conn.execute(sa.text("delete from analytics.prediction_accuracy where prediction_type = :type"
                             " and scored_date between :first and :last"), params)
        return conn.execute(sa.text(_score_sql(realised_sql)), params).rowcount


def accuracy_alerts(engine: Engine, prediction_type: str, promised_metric: str, model_name: str, until: date,
                    window_days: int, margin: float) -> dict:
    """Realised WAPE over the window against the active model's promise; ``alert`` when worse by > margin."""
    with engine.connect() as conn:
        realised = conn.execute(sa.text(
            "select sum(abs_error) / nullif(sum(actual_total), 0), sum(n) from analytics.prediction_accuracy"
            " where prediction_type = :type and scored_date > :since and scored_date <= :until"),
            {"type": prediction_type, "since": until - timedelta(days=window_days), "until": until}).one()
        promised = conn.execute(sa.text(
            "select (performance_metrics ->> :metric)::float8 from analytics.ml_models"
            " where model_name = :name and is_active order by created_at desc limit 1"),
            {"metric": promised_metric, "name": model_name}).scalar()
    wape, n = (float(realised[0]) if realised[0] is not None else None), int(realised[1] or 0)
    out = {"prediction_type": prediction_type, "realised_wape": wape, "promised_wape": promised, "n": n,
           "window_days": window_days, "margin": margin, "alert": False}
    if wape is not None and promised:
        out["alert"] = wape > promised * (1 + margin)
        if out["alert"]:
            log.warning("%s: realised WAPE %.3f over %d days is worse than the promised %.3f by more than %.0f%%",
                        prediction_type, wape, window_days, promised, margin * 100)
    return out
