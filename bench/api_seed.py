"""Rows for every API endpoint at scale, for ``bench/api_load.py``: beyond ``api_load.seed_rows`` (consumption, churn)
and ``what_if.seed_what_if`` (90-day credits, growth scenarios, milestones, realised users, agents' events), the
growth statuses, a week of hourly peak-usage forecasts with daily peaks and capacity, and agents' error-rate alerts,
forecasts and history. Written through the pipeline's own publishers (``pipelines.publish``,
``pipelines.growth.tables``), in the shapes the tests of each endpoint use; seeded, so every run has the same rows.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bench.api_load import AS_OF, _copy
from core.ids import entity_uuid
from pipelines.growth.tables import write_records
from pipelines.publish import publish_agent_error_alerts, publish_agent_error_forecasts, publish_predictions

AGENTS_PER_WORKSPACE = 4  # what_if.seed_what_if's agents: f"{workspace}-a{k}"
PEAK_DAYS = 7


def _peak_rows(ws: str, level: float) -> list[dict]:
    rows = []
    start = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time())
    for k in range(24 * PEAK_DAYS):
        t = start + timedelta(hours=k)
        v = level * (3.0 if t.hour == 9 else 1.0)
        for metric, scale in (("calls", 1.0), ("credits", 0.1)):
            for name, lv, up in ((metric, 0.95, 1.5), (f"{metric}_80", 0.8, 1.2)):
                rows.append({"workspace_id": ws, "target_metric": name, "granularity": "hour", "prediction_date": t,
                             "prediction_hour": t.hour, "predicted_value": v * scale, "confidence_lower": v * scale / 2,
                             "confidence_upper": v * scale * up, "confidence_level": lv})
    for d in range(1, PEAK_DAYS + 1):
        day = AS_OF + timedelta(days=d)
        for metric, scale in (("calls", 1.0), ("credits", 0.1)):
            peak = 3 * level * scale
            base = {"workspace_id": ws, "granularity": "day", "prediction_date": day, "confidence_level": 0.95}
            rows += [{**base, "target_metric": f"{metric}_peak", "prediction_hour": 11, "predicted_value": peak,
                      "confidence_lower": peak / 2, "confidence_upper": 1.5 * peak},
                     {**base, "target_metric": f"{metric}_capacity", "prediction_hour": 11,
                      "predicted_value": 1.8 * peak, "confidence_lower": None, "confidence_upper": None},
                     *[{**base, "target_metric": f"{metric}_peak_hour_probability", "prediction_hour": h,
                        "predicted_value": p, "confidence_lower": None, "confidence_upper": None}
                       for h, p in ((11, 0.7), (10, 0.2), (12, 0.1))]]
            if d == 1:
                rows.append({**base, "target_metric": f"{metric}_week_peak", "prediction_hour": 11,
                             "predicted_value": peak, "confidence_lower": peak / 2, "confidence_upper": 1.5 * peak})
    return rows


def seed_peaks(engine, workspaces: list[str], rng: np.random.Generator) -> int:
    """A week of hourly calls/credits forecasts (95% and 80%), daily peaks, capacity and top hours per workspace."""
    zones = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC")
    _copy(engine, "ml_features", ["entity_type", "entity_id", "feature_set", "features", "computed_at", "version",
                                  "as_of_date"],
          (("workspace", entity_uuid("workspace", w), "workspace_hourly",
            json.dumps({"time_zone": zones[i % len(zones)], "calls_hour_max_28": 100.0, "credits_hour_max_28": 10.0}),
            f"{AS_OF} 00:00:00", 1, AS_OF) for i, w in enumerate(workspaces)))
    n = 0
    for chunk in range(0, len(workspaces), 200):  # one publish per 200 workspaces keeps the frames small
        rows = [r for w in workspaces[chunk:chunk + 200] for r in _peak_rows(w, float(rng.lognormal(3, 1)))]
        with engine.begin() as conn:
            n += publish_predictions(conn, pd.DataFrame(rows).assign(model_version="peak-v1"), "peak_usage",
                                     AS_OF)["rows"]
    return n


def seed_growth_status(engine, workspaces: list[str]) -> int:
    """Every workspace projected (the growth run's status rows); milestones stay as ``seed_what_if`` wrote them."""
    status = pd.DataFrame([{"workspace_id": w, "status": "success", "reason": None, "history_days": 120,
                            "active_users": 40, "users_ever": 200, "dau": 10} for w in workspaces])
    with engine.begin() as conn:
        return write_records(conn, AS_OF, status, None, None, "growth-v1")["status"]


def seed_error_rates(engine, workspaces: list[str], rng: np.random.Generator) -> dict[str, int]:
    """Per agent: an alert row (a few escalating), a 14-day forecast with both intervals and 28 days of history."""
    agents = [(w, f"{w}-a{k}") for w in workspaces for k in range(AGENTS_PER_WORKSPACE)]
    _copy(engine, "entities", ["entity_type", "entity_id", "external_id", "workspace_id"],
          (("agent", entity_uuid("agent", a), a, entity_uuid("workspace", w)) for w, a in agents))
    alerts, forecasts = [], []
    for w, a in agents:
        p = float(rng.beta(1, 6))
        level = "critical" if p > 0.6 else "warning" if p > 0.35 else "watch" if p > 0.15 else None
        alerts.append({"workspace_id": w, "agent_id": a, "status": "escalating" if level else "ok",
                       "alert_level": level, "probability": round(p, 4),
                       "expected_breach_date": AS_OF + timedelta(days=5) if level else None, "threshold": 0.08,
                       "threshold_source": "default", "current_rate": 0.03, "baseline_rate": 0.02,
                       "calls_last_7d": 300, "errors_last_7d": 9, "trend_per_day": 0.001, "failing_users_share": 0.1,
                       "calls_at_risk": 6.0, "reason": f"{a}: error rate {100 * p:.0f}% likely to breach",
                       "risk_rank": 10 * p, "model_version": "err-v1",
                       "drivers": json.dumps([{"driver": "recent", "contribution": 0.5, "text": "rate up"}])})
        for k in range(1, 15):
            forecasts.append({"workspace_id": w, "agent_id": a, "prediction_date": AS_OF + timedelta(days=k),
                              "predicted_rate": 0.03, "lower_80": 0.01, "upper_80": 0.05, "lower_95": 0.0,
                              "upper_95": 0.08, "expected_calls": 40.0, "p_breach_by": min(1.0, p * k / 14),
                              "model_version": "err-v1"})
    fc = pd.DataFrame(forecasts)
    with engine.begin() as conn:
        n_alerts = publish_agent_error_alerts(conn, pd.DataFrame(alerts), AS_OF)["rows"]
        publish_agent_error_forecasts(conn, fc, AS_OF)
        publish_predictions(conn, fc.assign(target_metric="error_rate", dimension=fc["agent_id"],
                                            predicted_value=fc["predicted_rate"], confidence_lower=fc["lower_95"],
                                            confidence_upper=fc["upper_95"], confidence_level=0.95), "error_rate",
                            AS_OF)
    n_history = _copy(engine, "agent_daily_metrics",
                      ["workspace_id", "agent_id", "metric_date", "calls", "errors", "credits"],
                      ((entity_uuid("workspace", w), entity_uuid("agent", a), AS_OF - timedelta(days=d), 40,
                        int(rng.binomial(40, 0.03)), 2.0) for w, a in agents for d in range(28)))
    return {"agent_error_alerts": n_alerts, "agent_error_forecasts": len(fc), "agent_daily_metrics": n_history}


def seed_all_endpoints(engine, workspaces: list[str], seed: int = 1) -> dict[str, int]:
    """After ``seed_rows`` and ``seed_what_if``: the rows of the growth, peak-usage and error-rate endpoints."""
    rng = np.random.default_rng(seed)
    counts = {"growth_status": seed_growth_status(engine, workspaces),
              "peak_usage rows": seed_peaks(engine, workspaces, rng), **seed_error_rates(engine, workspaces, rng)}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("analyze"))
    return counts
