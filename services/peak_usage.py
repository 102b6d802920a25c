"""The read side of peak usage: a workspace's latest hourly forecast, daily peaks, capacity needs and alerts.

Reads ``analytics.predictions`` (``prediction_type = 'peak_usage'``) through the BI views of
``sql/009_peak_usage.sql`` (``v_capacity_alerts``: hours in UTC and local time with the limit and the alert;
``v_capacity_plan``: local days with the peak hour in local time and UTC), plus the top-3 peak hours.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.contracts import PEAK_HOUR_PROBABILITY_SUFFIX, PEAK_METRICS, PEAK_USAGE, WEEK_PEAK_SUFFIX
from core.ids import entity_uuid

GRANULARITIES = ("hourly", "daily")
MAX_DAYS_AHEAD = 14

_WORKSPACE = sa.text("select external_id from analytics.entities where entity_type = 'workspace' and entity_id = :ws")
_HOURS = sa.text("""
    select a.target_metric, a.hour_utc, a.hour_local, a.time_zone, a.predicted_value::float8 as value,
           a.confidence_lower::float8 as lower, a.confidence_upper::float8 as upper,
           p80.confidence_lower::float8 as lower_80, p80.confidence_upper::float8 as upper_80,
           a.capacity_limit::float8 as capacity_limit, a.limit_source, a.alert, a.hours_ahead,
           a.confidence_level::float8 as confidence_level, a.model_version, a.as_of_date
    from analytics.v_capacity_alerts a
    left join analytics.predictions p80
      on p80.workspace_id = a.workspace_id and p80.prediction_type = :type and p80.granularity = 'hour'
     and p80.target_metric = a.target_metric || '_80' and p80.as_of_date = a.as_of_date and p80.scenario = 'likely'
     and p80.prediction_date + make_interval(hours => p80.prediction_hour) = a.hour_utc
    where a.workspace_id = :ws and a.hours_ahead < 24 * cast(:days as integer)
    order by a.target_metric, a.hour_utc
""")
_DAYS = sa.text("""
    select target_metric, day, time_zone, peak_hour_local, peak_hour_utc, peak_value::float8 as peak_value,
           peak_lower::float8 as peak_lower, peak_upper::float8 as peak_upper, capacity_need::float8 as capacity_need,
           capacity_limit::float8 as capacity_limit, limit_source, alert, alert_hours, first_alert_local,
           first_alert_utc, as_of_date
    from analytics.v_capacity_plan
    where workspace_id = :ws and day <= as_of_date + cast(:days as integer)
    order by target_metric, day
""")
_EXTRA = sa.text("""
    select target_metric, prediction_date, prediction_hour, predicted_value::float8 as value,
           confidence_lower::float8 as lower, confidence_upper::float8 as upper
    from analytics.predictions
    where workspace_id = :ws and prediction_type = :type and granularity = 'day' and as_of_date = :as_of
      and scenario = 'likely'  -- not on-demand job rows (scenario 'on_demand')
      and (target_metric like '%' || :prob or target_metric like '%' || :week)
    order by target_metric, prediction_date, predicted_value desc, prediction_hour
""")


class PeakUsageReader:
    """Serves stored peak-usage predictions (see ``PredictiveAnalytics.predict_peak_usage``)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def read(self, workspace_id: str, granularity: str, days_ahead: int) -> dict[str, Any] | None:
        """The answer, or ``None`` for an unknown workspace; ``{"workspace": ..., "as_of_date": None}`` when the
        workspace has no peak-usage predictions yet."""
        ws = str(entity_uuid("workspace", workspace_id))
        with self.engine.connect() as conn:
            external = conn.execute(_WORKSPACE, {"ws": ws}).scalar()
            if external is None:
                return None
            days = conn.execute(_DAYS, {"ws": ws, "days": days_ahead}).mappings().all()
            out: dict[str, Any] = {"workspace": {"id": ws, "external_id": external}, "as_of_date": None,
                                   "granularity": granularity, "days_ahead": days_ahead}
            if not days:
                return out
            as_of = days[0]["as_of_date"]
            hours = (conn.execute(_HOURS, {"ws": ws, "days": days_ahead, "type": PEAK_USAGE}).mappings().all()
                     if granularity == "hourly" else [])
            alerts = conn.execute(sa.text(
                "select target_metric, hour_utc, hour_local, confidence_upper::float8 as upper,"
                " capacity_limit::float8 as capacity_limit, limit_source, hours_ahead from analytics.v_capacity_alerts"
                " where workspace_id = :ws and alert and hours_ahead < 24 * cast(:days as integer)"
                " order by hour_utc, target_metric"), {"ws": ws, "days": days_ahead}).mappings().all()
            extra = conn.execute(_EXTRA, {"ws": ws, "type": PEAK_USAGE, "as_of": as_of,
                                          "prob": PEAK_HOUR_PROBABILITY_SUFFIX, "week": WEEK_PEAK_SUFFIX}).mappings().all()
        top: dict[tuple, list] = {}
        week: dict[str, dict] = {}
        for r in extra:
            metric = r["target_metric"]
            if metric.endswith(PEAK_HOUR_PROBABILITY_SUFFIX):
                top.setdefault((metric[: -len(PEAK_HOUR_PROBABILITY_SUFFIX)], r["prediction_date"]), []).append(
                    {"hour_local": r["prediction_hour"], "probability": r["value"]})
            else:
                week[metric[: -len(WEEK_PEAK_SUFFIX)]] = {"date": r["prediction_date"], "peak_hour_local": r["prediction_hour"],
                                                           "peak_value": r["value"], "peak_lower": r["lower"],
                                                           "peak_upper": r["upper"]}
        out.update(as_of_date=as_of, time_zone=days[0]["time_zone"], metrics={})
        for metric in PEAK_METRICS:
            out["metrics"][metric] = {
                "daily": [{**{k: d[k] for k in ("day", "peak_hour_local", "peak_hour_utc", "peak_value", "peak_lower",
                                                 "peak_upper", "capacity_need", "capacity_limit", "limit_source",
                                                 "alert", "alert_hours", "first_alert_local", "first_alert_utc")},
                           "top_hours": top.get((metric, d["day"]), [])}
                          for d in days if d["target_metric"] == metric],
                "hourly": [{k: h[k] for k in ("hour_utc", "hour_local", "value", "lower", "upper", "lower_80",
                                               "upper_80", "capacity_limit", "alert")}
                           for h in hours if h["target_metric"] == metric],
                "week_peak": week.get(metric),
                "alerts": [{k: a[k] for k in ("hour_utc", "hour_local", "upper", "capacity_limit", "limit_source",
                                              "hours_ahead")} for a in alerts if a["target_metric"] == metric],
            }
        out["confidence_level"] = hours[0]["confidence_level"] if hours else None
        out["model_version"] = hours[0]["model_version"] if hours else None
        return out

