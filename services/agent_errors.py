"""Read the agent error-rate predictions: per agent, the latest alert, the forecast with both intervals and the
recent daily history; riskiest agents first. Used by ``PredictiveAnalytics.predict_error_rates``.

Which run: the latest as-of date of the error-rate kind over all workspaces. A workspace with no row on that date
has no agent with calls in the 90 days before it: the answer says so (``status = "no_agents"``) rather than
serving an older run's agents.
"""
from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.ids import entity_uuid

LEVELS = ("watch", "warning", "critical")
MAX_HISTORY_DAYS = 365


class UnknownAgentError(LookupError):
    """The agent id matches no agent of the workspace in the latest error-rate run."""


_LATEST = sa.text("""
    select w.external_id, (select max(as_of_date) from analytics.agent_error_alerts) as as_of_date
    from analytics.entities w
    where w.entity_type = 'workspace' and w.entity_id = :ws
""")

_ALERTS = sa.text("""
    select a.agent_id, e.external_id as agent_external_id, a.status, a.alert_level,
           a.probability::float8 as probability, a.expected_breach_date, a.threshold::float8 as threshold,
           a.threshold_source, a.current_rate::float8 as current_rate, a.baseline_rate::float8 as baseline_rate,
           a.calls_last_7d, a.errors_last_7d, a.trend_per_day::float8 as trend_per_day,
           a.failing_users_share::float8 as failing_users_share, a.calls_at_risk::float8 as calls_at_risk,
           a.reason, a.drivers, a.model_version
    from analytics.agent_error_alerts a
    left join analytics.entities e on e.entity_type = 'agent' and e.entity_id = a.agent_id
    where a.workspace_id = :ws and a.as_of_date = :d
      and (cast(:agent as uuid) is null or a.agent_id = cast(:agent as uuid))
      and (cast(:levels as text[]) is null or a.alert_level = any(cast(:levels as text[])))
    order by a.risk_rank desc, e.external_id
    limit :limit offset :offset
""")

_COUNT = sa.text("""
    select count(*) as total, count(*) filter (where alert_level is not null) as alerting
    from analytics.agent_error_alerts
    where workspace_id = :ws and as_of_date = :d
      and (cast(:agent as uuid) is null or agent_id = cast(:agent as uuid))
      and (cast(:levels as text[]) is null or alert_level = any(cast(:levels as text[])))
""")

_FORECAST = sa.text("""
    select agent_id, prediction_date, predicted_rate::float8 as predicted_rate, lower_80::float8 as lower_80,
           upper_80::float8 as upper_80, lower_95::float8 as lower_95, upper_95::float8 as upper_95,
           expected_calls::float8 as expected_calls, p_breach_by::float8 as p_breach_by
    from analytics.agent_error_forecasts
    where workspace_id = :ws and as_of_date = :d and agent_id = any(cast(:agents as uuid[]))
    order by agent_id, prediction_date
""")

_HISTORY = sa.text("""
    select agent_id, metric_date, calls, errors
    from analytics.agent_daily_metrics
    where workspace_id = :ws and agent_id = any(cast(:agents as uuid[])) and metric_date between :start and :d
    order by agent_id, metric_date
""")


def levels_from(min_level: str | None) -> list[str] | None:
    """The alert levels at or above ``min_level`` (None: no filter)."""
    if min_level is None:
        return None
    if min_level not in LEVELS:
        raise ValueError(f"min_level must be one of {list(LEVELS)}, got {min_level!r}")
    return list(LEVELS[LEVELS.index(min_level):])


def read_error_rates(conn: Connection, workspace_id: str, agent_id: str | None, min_level: str | None,
                     history_days: int, limit: int, offset: int) -> dict[str, Any] | None:
    """The answer of ``PredictiveAnalytics.predict_error_rates`` (see there); None when the workspace is unknown,
    ``as_of_date`` None when the error-rate kind never ran.

    Raises:
        UnknownAgentError: ``agent_id`` is given and the workspace has no such agent in the latest run.
    """
    ws_id = str(entity_uuid("workspace", workspace_id))
    head = conn.execute(_LATEST, {"ws": ws_id}).first()
    if head is None:
        return None
    ws = {"id": uuid.UUID(ws_id), "external_id": head.external_id}
    if head.as_of_date is None:
        return {"workspace": ws, "as_of_date": None}
    d = head.as_of_date
    agent = str(entity_uuid("agent", agent_id)) if agent_id is not None else None
    params = {"ws": ws_id, "d": d, "agent": agent, "levels": levels_from(min_level)}
    n_agents = conn.execute(_COUNT, {**params, "agent": None, "levels": None}).one().total
    if agent is not None and conn.execute(_COUNT, {**params, "levels": None}).one().total == 0:
        raise UnknownAgentError(f"agent {agent_id!r} has no error-rate prediction in workspace {head.external_id!r} "
                                f"as of {d} (unknown, or no calls in the 90 days to it)")
    counts = conn.execute(_COUNT, params).one()
    alerts = conn.execute(_ALERTS, {**params, "limit": limit, "offset": offset}).mappings().all()
    ids = [str(a["agent_id"]) for a in alerts]
    forecasts: dict[str, list[dict]] = {i: [] for i in ids}
    history: dict[str, dict[date, tuple[int, int]]] = {i: {} for i in ids}
    if ids:
        for r in conn.execute(_FORECAST, {"ws": ws_id, "d": d, "agents": ids}).mappings():
            forecasts[str(r["agent_id"])].append({**{k: r[k] for k in r.keys() if k != "agent_id"},
                                                  "date": r["prediction_date"]})
        start = d - timedelta(days=history_days - 1)
        for r in conn.execute(_HISTORY, {"ws": ws_id, "agents": ids, "start": start, "d": d}):
            history[str(r.agent_id)][r.metric_date] = (int(r.calls), int(r.errors))
    days = [d - timedelta(days=k) for k in range(history_days - 1, -1, -1)]
    agents = []
    for a in alerts:
        i = str(a["agent_id"])
        hist = []
        for day in days:
            calls, errors = history[i].get(day, (0, 0))
            hist.append({"date": day, "calls": calls, "errors": errors, "error_rate": errors / calls if calls else None})
        drivers = a["drivers"] if not isinstance(a["drivers"], str) else json.loads(a["drivers"])
        alert = {k: a[k] for k in ("alert_level", "probability", "expected_breach_date", "threshold", "threshold_source",
                                   "current_rate", "baseline_rate", "calls_last_7d", "errors_last_7d", "trend_per_day",
                                   "failing_users_share", "calls_at_risk", "reason")}
        agents.append({"agent": {"id": a["agent_id"], "external_id": a["agent_external_id"]}, "status": a["status"],
                       "alert": {**alert, "drivers": drivers}, "model_version": a["model_version"],
                       "forecast": [{k: v for k, v in f.items() if k != "prediction_date"} for f in forecasts[i]],
                       "history": hist})
    return {"workspace": ws, "as_of_date": d, "status": "ok" if n_agents else "no_agents",
            "note": None if n_agents else f"no agent of this workspace had calls in the 90 days to {d}",
            "agents_in_workspace": n_agents, "total": counts.total, "alerting": counts.alerting, "agents": agents}
