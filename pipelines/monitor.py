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

Each kind says what to snapshot (``snapshot_scope``: e.g. hourly rows, or every agent), how to compare with its
promise (``alert_measure``: wape, mape or mae, over ``alert_metrics``), and may declare classification outcomes
(``realised_outcomes``: churn scores, agent alerts, once their window has closed), scored by ``score_outcomes``
into ``analytics.classification_accuracy`` (AUC, Brier, calibration in the large, precision, recall) and
alerted by ``classification_alerts``. ``monitor_kind`` runs all of it for one kind; the nightly step loops.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.contracts import DAY, TOTAL

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
where prediction_type = :type and as_of_date = :as_of and (dimension = :total or :all_dimensions)
  and granularity = any(cast(:granularities as text[]))
  and (cardinality(cast(:metrics as text[])) = 0 or target_metric = any(cast(:metrics as text[])))
  and scenario = 'likely' and prediction_date - as_of_date = any(:horizons)
  and (cast(:workspaces as uuid[]) is null or workspace_id = any(cast(:workspaces as uuid[])))
on conflict (workspace_id, prediction_type, target_metric, dimension, granularity, scenario, prediction_date,
             prediction_hour, as_of_date) do update set
    days_ahead = excluded.days_ahead, predicted_value = excluded.predicted_value,
    confidence_lower = excluded.confidence_lower, confidence_upper = excluded.confidence_upper,
    confidence_level = excluded.confidence_level, model_version = excluded.model_version, arm = excluded.arm
""")


@dataclass(frozen=True)
class SnapshotScope:
    """Which published rows a kind's snapshots keep: workspace totals (or every dimension, e.g. per agent),
    these granularities, and these metrics (empty: all)."""

    all_dimensions: bool = False
    granularities: tuple[str, ...] = (DAY,)
    metrics: tuple[str, ...] = ()


def snapshot_scope(kind: object) -> SnapshotScope:
    """A kind's declared ``snapshot_scope``, else workspace totals by day."""
    return getattr(kind, "snapshot_scope", None) or SnapshotScope()


def snapshot_predictions(conn: sa.Connection, prediction_type: str, as_of: date,
                         scope: SnapshotScope | None = None, workspaces: list[str] | None = None) -> int:
    """Keep the monitored horizons of a just-published prediction set (in the publisher's transaction);
    ``workspaces`` (UUIDs): only theirs (one workspace shard of the set)."""
    scope = scope or SnapshotScope()
    return conn.execute(_SNAPSHOT, {"type": prediction_type, "as_of": as_of, "total": TOTAL,
                                    "horizons": list(SNAPSHOT_HORIZONS), "all_dimensions": scope.all_dimensions,
                                    "granularities": list(scope.granularities),
                                    "metrics": list(scope.metrics), "workspaces": workspaces}).rowcount


def prune_snapshots(engine: Engine, run_date: date, keep_days: int) -> int:
    """Retention: delete the snapshots whose predicted day is more than ``keep_days`` before ``run_date`` (their
    scored rows in ``prediction_accuracy`` stay); the number deleted."""
    with engine.begin() as conn:
        return conn.execute(sa.text("delete from analytics.prediction_snapshots where prediction_date < :cutoff"),
                            {"cutoff": run_date - timedelta(days=keep_days)}).rowcount


def _score_sql(realised_sql: str, realised_hour: bool = False) -> str:
    """``realised_hour``: the realised rows carry ``actual_hour`` (when the day's value happened), scored as
    ``hour_hits`` against the predicted hour (within one hour, circular)."""
    hour_hit = ("case when a.actual_hour is null then null else"
                " (least(abs(s.prediction_hour - a.actual_hour), 24 - abs(s.prediction_hour - a.actual_hour)) <= 1)::int"
                " end" if realised_hour else "null::int")
    return f"""
with actual as ({realised_sql}),
snap as (
    select *, case when target_metric = any(cast(:hour_free as text[])) then -1 else prediction_hour end as match_hour
    from analytics.prediction_snapshots
    where prediction_type = :type and prediction_date between :first and :last
),
joined as (
    select s.workspace_id, s.target_metric, s.dimension, s.prediction_date, s.model_version, s.arm,
           s.confidence_level,
           case when s.days_ahead <= 1 then '1d' when s.days_ahead <= 7 then '7d'
                when s.days_ahead <= 14 then '14d' else '30d' end as horizon_bucket,
           abs(s.predicted_value - a.actual) as abs_error, (s.predicted_value - a.actual) ^ 2 as squared_error,
           a.actual, abs(n.actual - a.actual) as naive_abs_error,
           coalesce((a.actual between s.confidence_lower and s.confidence_upper)::int, 0) as hit,
           {hour_hit} as hour_hit
    from snap s
    join actual a on (a.workspace_id, a.target_metric, a.dimension, a.granularity, a.prediction_date,
                      a.prediction_hour)
                   = (s.workspace_id, s.target_metric, s.dimension, s.granularity, s.prediction_date,
                      s.match_hour)
    left join actual n on (n.workspace_id, n.target_metric, n.dimension, n.granularity, n.prediction_hour)
                        = (s.workspace_id, s.target_metric, s.dimension, s.granularity, s.match_hour)
                       and n.prediction_date = s.prediction_date - 7 * ((s.days_ahead + 6) / 7)
)
insert into analytics.prediction_accuracy (workspace_id, prediction_type, target_metric, dimension,
    horizon_bucket, scored_date, model_version, arm, n, abs_error, squared_error, actual_total,
    naive_abs_error, hits, confidence_level, hour_hits)
select workspace_id, :type, target_metric, dimension, horizon_bucket, prediction_date, model_version, arm,
       count(*), sum(abs_error), sum(squared_error), sum(actual), sum(naive_abs_error), sum(hit),
       max(confidence_level), sum(hour_hit)
from joined
group by workspace_id, target_metric, dimension, horizon_bucket, prediction_date, model_version, arm
"""


def score_realised(engine: Engine, prediction_type: str, realised_sql: str, first: date, last: date,
                   hour_free_metrics: tuple[str, ...] = (), realised_hour: bool = False,
                   naive_lookback_days: int = NAIVE_LOOKBACK_DAYS) -> int:
    """(Re)score the snapshots of ``first..last`` against what happened; one transaction, idempotent.

    ``hour_free_metrics``: daily values whose predicted hour is an attribute, not a key (a day's peak): the
    realised rows give them ``prediction_hour = -1`` and match a snapshot of any hour; ``realised_hour``: the
    realised rows carry ``actual_hour`` (see ``_score_sql``); ``naive_lookback_days``: how far before ``first``
    the realised values are read for the seasonal naive (a kind with shorter horizons reads less).
    """
    params = {"type": prediction_type, "first": first, "last": last,
              "since": first - timedelta(days=naive_lookback_days), "until": last,
              "hour_free": list(hour_free_metrics)}
    with engine.begin() as conn:
        conn.execute(sa.text("delete from analytics.prediction_accuracy where prediction_type = :type"
                             " and scored_date between :first and :last"), params)
        return conn.execute(sa.text(_score_sql(realised_sql, realised_hour)), params).rowcount


def score_kind(engine: Engine, kind: object, first: date, last: date) -> int:
    """``score_realised`` with what a kind declares (``realised_sql``, ``hour_free_metrics``, ``realised_hour``,
    ``naive_lookback_days``)."""
    return score_realised(engine, kind.prediction_type, kind.realised_sql, first, last,
                          tuple(getattr(kind, "hour_free_metrics", ())), bool(getattr(kind, "realised_hour", False)),
                          int(getattr(kind, "naive_lookback_days", NAIVE_LOOKBACK_DAYS)))


_MEASURES = {  # realised figure comparable with a kind's promise, from the accuracy sums
    "wape": "sum(abs_error) / nullif(sum(actual_total), 0)",
    "mape": "avg(abs_error / nullif(actual_total, 0))",  # per row: one workspace x day for daily values
    "mae": "sum(abs_error) / nullif(sum(n), 0)",
}


def accuracy_alerts(engine: Engine, prediction_type: str, promised_metric: str, model_name: str, until: date,
                    window_days: int, margin: float, measure: str = "wape",
                    target_metrics: tuple[str, ...] = ()) -> dict:
    """Realised error over the window against the active model's promise; ``alert`` when worse by > margin.

    ``measure`` (``wape``, ``mape`` or ``mae``) over ``target_metrics`` (all when empty) is what the promise
    measured; ``realised_wape`` / ``promised_wape`` keep their names whatever the measure.
    """
    if measure not in _MEASURES:
        raise ValueError(f"unknown accuracy measure {measure!r}; choose from {sorted(_MEASURES)}")
    with engine.connect() as conn:
        realised = conn.execute(sa.text(
            f"select {_MEASURES[measure]}, sum(n) from analytics.prediction_accuracy"
            " where prediction_type = :type and scored_date > :since and scored_date <= :until"
            " and (cardinality(cast(:metrics as text[])) = 0 or target_metric = any(cast(:metrics as text[])))"),
            {"type": prediction_type, "since": until - timedelta(days=window_days), "until": until,
             "metrics": list(target_metrics)}).one()
        promised = _promised(conn, model_name, promised_metric)
    wape, n = (float(realised[0]) if realised[0] is not None else None), int(realised[1] or 0)
    out = {"prediction_type": prediction_type, "measure": measure, "promised_metric": promised_metric,
           "realised_wape": wape, "promised_wape": promised,
           "n": n, "window_days": window_days, "margin": margin, "alert": False}
    if wape is not None and promised:
        out["alert"] = wape > promised * (1 + margin)
        if out["alert"]:
            log.warning("%s: realised %s %.3f over %d days is worse than the promised %.3f by more than %.0f%%",
                        prediction_type, measure.upper(), wape, window_days, promised, margin * 100)
    return out


def _promised(conn: sa.Connection, model_name: str, metric: str) -> float | None:
    value = conn.execute(sa.text(
        "select (performance_metrics ->> :metric)::float8 from analytics.ml_models"
        " where model_name = :name and is_active and performance_metrics ? :metric"
        " order by created_at desc limit 1"), {"metric": metric, "name": model_name}).scalar()
    return float(value) if value is not None else None


# Classification outcomes (churn scores, agent error alerts): scored once their outcome window has closed.
OUTCOME_COLUMNS = ("target_metric", "as_of_date", "model_version", "probability", "outcome", "predicted_positive")

_INSERT_OUTCOMES = sa.text("""
insert into analytics.classification_accuracy (prediction_type, target_metric, as_of_date, scored_date, model_version,
    arm, n, positives, predicted_positives, true_positives, sum_probability, brier_sum, auc, pr_auc, decision_threshold)
values (:type, :target_metric, :as_of_date, :scored_date, :model_version, :arm, :n, :positives, :predicted_positives,
        :true_positives, :sum_probability, :brier_sum, :auc, :pr_auc, :decision_threshold)
""")


def outcome_rows(outcomes, scored_date: date) -> list[dict]:
    """One row per target x as-of date x model version x arm: counts, sums, AUC and average precision."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes]
    if missing:
        raise ValueError(f"outcomes lack {missing}")
    frame = outcomes.assign(arm=outcomes["arm"] if "arm" in outcomes else "champion")
    if "decision_threshold" not in frame:
        frame = frame.assign(decision_threshold=None)
    p, y = frame["probability"].astype(float).to_numpy(), frame["outcome"].astype(int).to_numpy()
    if not np.isfinite(p).all() or ((p < 0) | (p > 1)).any() or not np.isin(y, (0, 1)).all():
        raise ValueError("outcomes need probabilities in [0, 1] and outcomes 0 or 1")
    rows = []
    for key, g in frame.groupby(["target_metric", "as_of_date", "model_version", "arm"], sort=True):
        p, y = g["probability"].astype(float).to_numpy(), g["outcome"].astype(int).to_numpy()
        flag = g["predicted_positive"].astype(bool).to_numpy()
        two = len(np.unique(y)) == 2
        rows.append({
            **dict(zip(("target_metric", "as_of_date", "model_version", "arm"), key)), "scored_date": scored_date,
            "n": len(g), "positives": int(y.sum()), "predicted_positives": int(flag.sum()),
            "true_positives": int((flag & (y == 1)).sum()), "sum_probability": float(p.sum()),
            "brier_sum": float(((p - y) ** 2).sum()),
            "auc": float(roc_auc_score(y, p)) if two else None,
            "pr_auc": float(average_precision_score(y, p)) if two else None,
            "decision_threshold": g["decision_threshold"].iloc[0]})
    return rows


def score_outcomes(engine: Engine, prediction_type: str, outcomes, scored_date: date) -> int:
    """(Re)store the classification accuracy of ``outcomes`` (columns ``OUTCOME_COLUMNS``, optional ``arm`` and
    ``decision_threshold``): the as-of dates it holds are replaced in one transaction (idempotent)."""
    if outcomes is None or len(outcomes) == 0:
        return 0
    rows = outcome_rows(outcomes, scored_date)
    keys = sorted({(r["target_metric"], r["as_of_date"]) for r in rows})
    with engine.begin() as conn:
        for target, as_of in keys:
            conn.execute(sa.text("delete from analytics.classification_accuracy where prediction_type = :type"
                                 " and target_metric = :t and as_of_date = :d"),
                         {"type": prediction_type, "t": target, "d": as_of})
        conn.execute(_INSERT_OUTCOMES, [{"type": prediction_type, **r} for r in rows])
    return len(rows)


_CLASSIFICATION_MEASURES = {  # name -> (SQL over the window's rows, lower is better)
    "brier": ("sum(brier_sum) / nullif(sum(n), 0)", True),
    "auc": ("sum(auc * n) / nullif(sum(n) filter (where auc is not null), 0)", False),
    "pr_auc": ("sum(pr_auc * n) / nullif(sum(n) filter (where pr_auc is not null), 0)", False),
}


def classification_alerts(engine: Engine, prediction_type: str, target_metric: str, promised_metric: str,
                          model_name: str, until: date, window_days: int, margin: float,
                          measure: str = "brier") -> dict:
    """The realised ``measure`` of outcomes scored in the window against the active model's promise; ``alert``
    when worse by more than ``margin`` (Brier higher, AUC or average precision lower)."""
    if measure not in _CLASSIFICATION_MEASURES:
        raise ValueError(f"unknown classification measure {measure!r}; choose from {sorted(_CLASSIFICATION_MEASURES)}")
    sql, lower_is_better = _CLASSIFICATION_MEASURES[measure]
    with engine.connect() as conn:
        realised, n = conn.execute(sa.text(
            f"select {sql}, sum(n) from analytics.classification_accuracy where prediction_type = :type"
            " and target_metric = :t and scored_date > :since and scored_date <= :until"),
            {"type": prediction_type, "t": target_metric, "since": until - timedelta(days=window_days),
             "until": until}).one()
        promised = _promised(conn, model_name, promised_metric)
    realised = float(realised) if realised is not None else None
    out = {"prediction_type": prediction_type, "target_metric": target_metric, "measure": measure,
           "promised_metric": promised_metric, "realised": realised, "promised": promised, "n": int(n or 0), "window_days": window_days,
           "margin": margin, "alert": False}
    if realised is not None and promised:
        out["alert"] = (realised > promised * (1 + margin)) if lower_is_better else (realised < promised * (1 - margin))
        if out["alert"]:
            log.warning("%s %s: realised %s %.3f over %d days is worse than the promised %.3f by more than %.0f%%",
                        prediction_type, target_metric, measure, realised, window_days, promised, margin * 100)
    return out


def realised_summary(engine: Engine, prediction_type: str, until: date, window_days: int) -> dict[str, float]:
    """Flat metrics of a kind's realised accuracy over the window (for MLflow): per metric and horizon bucket
    WAPE, error vs the seasonal naive, coverage, peak-hour hits; per outcome target Brier, AUC, calibration
    in the large, precision and recall."""
    since = until - timedelta(days=window_days)
    out: dict[str, float] = {}
    with engine.connect() as conn:
        for r in conn.execute(sa.text(
                "select target_metric, horizon_bucket, sum(n) as n,"
                " sum(abs_error) / nullif(sum(actual_total), 0) as wape,"
                " sum(abs_error) / nullif(sum(naive_abs_error), 0) as vs_naive,"
                " sum(hits)::float8 / nullif(sum(n), 0) as coverage,"
                " sum(hour_hits)::float8 / nullif(sum(n) filter (where hour_hits is not null), 0) as peak_hour_hit"
                " from analytics.prediction_accuracy where prediction_type = :type and scored_date > :since"
                " and scored_date <= :until group by 1, 2"),
                {"type": prediction_type, "since": since, "until": until}).mappings():
            for k in ("n", "wape", "vs_naive", "coverage", "peak_hour_hit"):
                if r[k] is not None:
                    out[f"realised_{r['target_metric']}_{r['horizon_bucket']}_{k}"] = float(r[k])
        for r in conn.execute(sa.text(
                "select target_metric, sum(n) as n, sum(brier_sum) / nullif(sum(n), 0) as brier,"
                " sum(auc * n) / nullif(sum(n) filter (where auc is not null), 0) as auc,"
                " (sum(sum_probability) - sum(positives)) / nullif(sum(n), 0) as calibration_in_the_large,"
                " sum(true_positives)::float8 / nullif(sum(predicted_positives), 0) as precision,"
                " sum(true_positives)::float8 / nullif(sum(positives), 0) as recall"
                " from analytics.classification_accuracy where prediction_type = :type and scored_date > :since"
                " and scored_date <= :until group by 1"),
                {"type": prediction_type, "since": since, "until": until}).mappings():
            for k in ("n", "brier", "auc", "calibration_in_the_large", "precision", "recall"):
                if r[k] is not None:
                    out[f"realised_{r['target_metric']}_{k}"] = float(r[k])
    return out


def monitor_kind(settings, engine: Engine, kind: object, run_date: date) -> dict:
    """One kind's nightly realised accuracy from what it declares: ``realised_sql`` (values, re-scored over the
    last ``monitor_rescore_days``), ``realised_outcomes(settings, engine, run_date)`` (classification outcomes
    whose window has closed), ``promised_metric`` / ``alert_measure`` / ``alert_metrics`` and ``outcome_alert``
    (the alerts), and the summary of the window for MLflow. Empty when the kind declares none of them."""
    sql, outcomes = getattr(kind, "realised_sql", None), getattr(kind, "realised_outcomes", None)
    if not sql and outcomes is None:
        return {}
    ptype = kind.prediction_type
    out: dict = {"kind": kind.name, "prediction_type": ptype, "model_name": getattr(kind, "model_name", None),
                 "alerts": [], "summary": {}}  # row counts only for what the kind declares
    if sql:
        out["scored_rows"] = score_kind(engine, kind, run_date - timedelta(days=settings.monitor_rescore_days - 1),
                                        run_date)
        if getattr(kind, "promised_metric", None):
            out["alerts"].append(accuracy_alerts(
                engine, ptype, kind.promised_metric, kind.model_name, run_date, settings.monitor_window_days,
                settings.monitor_alert_margin, getattr(kind, "alert_measure", "wape"),
                tuple(getattr(kind, "alert_metrics", ()))))
    if outcomes is not None:
        out["outcome_rows"] = score_outcomes(engine, ptype, outcomes(settings, engine, run_date), run_date)
        spec = getattr(kind, "outcome_alert", None)
        if spec:
            out["alerts"].append(classification_alerts(
                engine, ptype, spec["target_metric"], spec["promised_metric"], kind.model_name, run_date,
                settings.monitor_window_days, settings.monitor_alert_margin, spec.get("measure", "brier")))
    out["summary"] = realised_summary(engine, ptype, run_date, settings.monitor_window_days)
    out["alert"] = any(a["alert"] for a in out["alerts"])
    return out
