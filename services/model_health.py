"""Model health, per prediction kind: the models behind the predictions and how they are doing.

Read from what the nightly run wrote, over all workspaces (model-level figures, no workspace's own values):
- the kinds, their prediction type, model name and alert, from the latest ``monitor`` step
  (``analytics.pipeline_runs.details``, written by ``pipelines/monitor.py``);
- champion (the active version in ``analytics.ml_models``) and challenger (the newest other version) with
  their recorded validation metrics;
- realised accuracy over the window (``analytics.prediction_accuracy``: pooled WAPE, error against a weekly
  seasonal naive, interval coverage and peak-hour hits per metric and horizon bucket; ``classification_accuracy``:
  AUC, Brier, calibration in the large, precision and recall) against what the model promised, and the pooled
  WAPE per scored day for a chart;
- the latest A/B comparison (``analytics.ab_comparisons``) when that table exists.
"""
from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

MAX_WINDOW_DAYS = 90

_LATEST_MONITOR = sa.text("""
    select logical_date, status, details from analytics.pipeline_runs
    where step = 'monitor' and status = 'success'
    order by logical_date desc, started_at desc limit 1
""")

_MODELS = sa.text("""
    select version, is_active, created_at, training_data_end, performance_metrics
    from analytics.ml_models where model_name = :name
    order by is_active desc, created_at desc limit 20
""")

_REALISED = sa.text("""
    select target_metric, horizon_bucket, sum(n)::bigint as n,
           sum(abs_error) / nullif(sum(actual_total), 0) as wape,
           sum(abs_error) / nullif(sum(naive_abs_error), 0) as error_vs_seasonal_naive,
           sum(hits)::float8 / nullif(sum(n), 0) as coverage,
           sum(hour_hits)::float8 / nullif(sum(n) filter (where hour_hits is not null), 0) as peak_hour_hit_rate
    from analytics.prediction_accuracy
    where prediction_type = :type and scored_date > :since and scored_date <= :until
    group by 1, 2
    order by 1, case horizon_bucket when '1d' then 1 when '7d' then 2 when '14d' then 3 else 4 end
""")

_DAILY = sa.text("""
    select scored_date, sum(n)::bigint as n, sum(abs_error) / nullif(sum(actual_total), 0) as wape,
           sum(hits)::float8 / nullif(sum(n), 0) as coverage
    from analytics.prediction_accuracy
    where prediction_type = :type and scored_date > :since and scored_date <= :until
    group by 1 order by 1
""")

_OUTCOMES = sa.text("""
    select target_metric, as_of_date, scored_date, model_version, arm, n, base_rate, mean_probability,
           calibration_in_the_large, brier, auc, pr_auc, precision, recall
    from analytics.v_classification_accuracy
    where prediction_type = :type and scored_date > :since and scored_date <= :until
    order by as_of_date desc, target_metric, arm limit 50
""")

_AB = sa.text("""
    select run_date, metric, verdict, metric_champion, metric_challenger, diff, ci_low, ci_high, relative_diff,
           champion_version, challenger_version
    from analytics.ab_comparisons where kind = :kind order by run_date desc limit 1
""")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _details(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else (value or {})


def _model(row: Any, promised_metrics: list[str]) -> dict:
    metrics = _details(row.performance_metrics)
    promised = {m: float(metrics[m]) for m in promised_metrics if isinstance(metrics.get(m), (int, float))}
    return {"version": str(row.version), "created_at": row.created_at, "training_data_end": row.training_data_end,
            "promised": promised}


def _models(conn: sa.Connection, model_name: str | None, promised_metrics: list[str]) -> tuple[dict | None, dict | None]:
    if not model_name:
        return None, None
    rows = conn.execute(_MODELS, {"name": model_name}).all()
    champion = next((r for r in rows if r.is_active), None)
    others = sorted((r for r in rows if champion is None or r.version != champion.version),
                    key=lambda r: r.created_at, reverse=True)
    return (_model(champion, promised_metrics) if champion else None,
            _model(others[0], promised_metrics) if others else None)


def _alerts(details: dict, kind: str) -> list[dict]:
    out = []
    for a in details.get("alerts", []):
        if a.get("kind") != kind:
            continue
        realised = a.get("realised", a.get("realised_wape"))
        promised = a.get("promised", a.get("promised_wape"))
        out.append({"measure": a.get("measure", "wape"), "target_metric": a.get("target_metric"),
                    "promised_metric": a.get("promised_metric"),
                    "realised": _float(realised), "promised": _float(promised), "n": int(a.get("n") or 0),
                    "window_days": int(a.get("window_days") or 0), "margin": _float(a.get("margin")),
                    "status": "alert" if a.get("alert") else ("ok" if realised is not None and promised else "no_data")})
    return out


def _has_ab_table(conn: sa.Connection) -> bool:
    return conn.execute(sa.text("select to_regclass('analytics.ab_comparisons') is not null")).scalar()


def model_health(engine: Engine, window_days: int = 14) -> dict:
    """Per kind of the latest monitor step: models, realised accuracy over ``window_days`` against the promise,
    alerts and the last A/B comparison. ``kinds`` is empty before the first monitor step."""
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"window_days must be between 1 and {MAX_WINDOW_DAYS}, got {window_days}")
    with engine.connect() as conn:
        latest = conn.execute(_LATEST_MONITOR).first()
        if latest is None:
            return {"as_of_date": None, "window_days": window_days, "kinds": []}
        until: date = latest.logical_date
        details = _details(latest.details)
        params = {"since": until - timedelta(days=window_days), "until": until}
        has_ab = _has_ab_table(conn)
        promised_by_kind: dict[str, list[str]] = {}
        for a in details.get("alerts", []):
            if a.get("kind") and a.get("promised_metric"):
                promised_by_kind.setdefault(a["kind"], []).append(a["promised_metric"])
        kinds = []
        for name, info in (details.get("kinds") or {}).items():
            ptype = info.get("prediction_type")
            champion, challenger = _models(conn, info.get("model_name"), promised_by_kind.get(name, []))
            p = {**params, "type": ptype}
            ab = conn.execute(_AB, {"kind": name}).mappings().first() if has_ab else None
            kinds.append({
                "kind": name, "prediction_type": ptype, "model_name": info.get("model_name"),
                "alert": bool(info.get("alert")), "champion": champion, "challenger": challenger,
                "realised": [dict(r) for r in conn.execute(_REALISED, p).mappings()],
                "daily": [dict(r) for r in conn.execute(_DAILY, p).mappings()],
                "outcomes": [dict(r) for r in conn.execute(_OUTCOMES, p).mappings()],
                "alerts": _alerts(details, name), "ab_comparison": dict(ab) if ab else None,
            })
    return {"as_of_date": until, "window_days": window_days, "kinds": kinds}
