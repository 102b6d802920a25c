"""Read side of the growth projections: one workspace's DAU, WAU or MAU projection with its scenarios,
milestones, goals and recent history, as the nightly growth run stored them (``pipelines/growth``).

What is served is the latest projection of the workspace (its as-of date), with the milestones and goal
projections of that same date, so a run whose publish failed never mixes with the served rows. When the
workspace's latest run found too little data (``analytics.growth_status``), the answer says so, with the
counts, and carries no projection. Plain SQL on the caller's connection; used by ``PredictiveAnalytics``.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.contracts import GROWTH

METRICS = ("dau", "wau", "mau")
MAX_HORIZON_DAYS = 365

_STATUS = sa.text("""
    select as_of_date, status, reason, counts, model_version
    from analytics.growth_status
    where workspace_id = :ws
    order by as_of_date desc
    limit 1
""")

# Every scenario row of the workspace's latest projection of the metric, within the asked horizon.
_PROJECTION = sa.text("""
    with latest as (
        select max(as_of_date) as as_of_date
        from analytics.predictions
        where workspace_id = :ws and prediction_type = :type and target_metric = :metric
          and dimension = 'total' and granularity = 'day' and scenario = 'likely'
    )
    select p.prediction_date, p.scenario, p.predicted_value::float8 as value,
           p.confidence_lower::float8 as lower, p.confidence_upper::float8 as upper, p.model_version,
           l.as_of_date
    from latest l
    join analytics.predictions p
      on p.workspace_id = :ws and p.prediction_type = :type and p.target_metric = :metric
     and p.dimension = 'total' and p.granularity = 'day' and p.as_of_date = l.as_of_date
     and p.prediction_date > l.as_of_date and p.prediction_date <= l.as_of_date + cast(:days as integer)
    order by p.prediction_date, p.scenario
""")

_MILESTONES = sa.text("""
    select threshold::float8 as threshold, kind, probability::float8 as probability, date_p10, date_p50, date_p90,
           horizon_days
    from analytics.growth_milestones
    where workspace_id = :ws and as_of_date = :as_of and target_metric = :metric
    order by threshold, kind
""")

# The workspace's goals for the metric with their projection of the served as-of date (none: pending).
_GOALS = sa.text("""
    select g.goal_id, g.target_value::float8 as target_value, g.due_date, g.note,
           gp.status, gp.current_value::float8 as current_value, gp.probability_met::float8 as probability_met,
           gp.probability_on_due_date::float8 as probability_on_due_date, gp.value_p10::float8 as value_p10,
           gp.value_p50::float8 as value_p50, gp.value_p90::float8 as value_p90,
           gp.required_growth_30d::float8 as required_growth_30d,
           gp.projected_growth_30d::float8 as projected_growth_30d, gp.realised_value::float8 as realised_value,
           gp.met
    from analytics.growth_goals g
    left join analytics.growth_goal_projections gp
      on gp.goal_id = g.goal_id and gp.as_of_date = :as_of
     and gp.target_value = g.target_value and gp.due_date = g.due_date
    where g.workspace_id = :ws and g.target_metric = :metric
    order by g.due_date, g.target_value
""")

_HISTORY = sa.text("""
    select metric_date, dau, wau, mau, new_users, returning_users, reactivated_users, lost_users
    from analytics.workspace_growth_metrics
    where workspace_id = :ws and metric_date between :start and :end
    order by metric_date
""")

_GOAL_FIELDS = ("current_value", "probability_met", "probability_on_due_date", "value_p10", "value_p50", "value_p90",
                "required_growth_30d", "projected_growth_30d", "realised_value", "met")


def read_growth(conn: Connection, workspace_uuid: str, metric: str, horizon_days: int,
                history_days: int) -> dict[str, Any] | None:
    """The growth answer for one workspace and metric (see ``PredictiveAnalytics.predict_growth_metrics``), or
    ``None`` when no growth run has projected the workspace or found it short of data."""
    params = {"ws": workspace_uuid, "metric": metric, "type": GROWTH, "days": horizon_days}
    status = conn.execute(_STATUS, params).first()
    rows = conn.execute(_PROJECTION, params).all()
    if status is None and not rows:
        return None
    proj_as_of = rows[0].as_of_date if rows else None
    insufficient = status is not None and status.status != "success" and (
        proj_as_of is None or status.as_of_date >= proj_as_of)
    if not insufficient and proj_as_of is None:
        return None  # statuses recorded, projection not published (yet): nothing to serve
    as_of = status.as_of_date if insufficient else proj_as_of
    history = conn.execute(_HISTORY, {"ws": workspace_uuid, "end": as_of,
                                      "start": as_of - timedelta(days=history_days - 1)}).mappings().all()
    projection: dict = {}
    for r in [] if insufficient else rows:
        p = projection.setdefault(r.prediction_date, {"date": r.prediction_date})
        p[r.scenario] = r.value
        p["lower_95"], p["upper_95"] = r.lower, r.upper
    points = [{**p, "lower_80": p.get("worst"), "upper_80": p.get("best")} for p in projection.values()]
    milestones = [] if insufficient else [dict(m) for m in conn.execute(
        _MILESTONES, {**params, "as_of": as_of}).mappings().all()]
    goals = []
    for g in conn.execute(_GOALS, {**params, "as_of": as_of}).mappings().all():
        goal = {"goal_id": g["goal_id"], "target_value": g["target_value"], "due_date": g["due_date"],
                "note": g["note"], "status": g["status"] or ("not_projected" if insufficient else "pending"),
                **{k: g[k] for k in _GOAL_FIELDS}}
        goal["milestone"] = next((m for m in milestones if m["kind"] == "goal"
                                  and m["threshold"] == g["target_value"]), None)
        goals.append(goal)
    current = next((h[metric] for h in history if h["metric_date"] == as_of), None)
    return {
        "metric": metric,
        "status": "insufficient_data" if insufficient else "projected",
        "reason": status.reason if insufficient else None,
        "counts": dict(status.counts) if status is not None and status.as_of_date == as_of else None,
        "as_of_date": as_of,
        "model_version": rows[0].model_version if rows and not insufficient else None,
        "horizon_days": horizon_days,
        "current_value": current,
        "history": [{"date": h["metric_date"], "value": h[metric], "dau": h["dau"], "wau": h["wau"], "mau": h["mau"],
                     "new_users": h["new_users"], "returning_users": h["returning_users"],
                     "reactivated_users": h["reactivated_users"], "lost_users": h["lost_users"]} for h in history],
        "projection": points,
        "milestones": milestones,
        "goals": goals,
    }
