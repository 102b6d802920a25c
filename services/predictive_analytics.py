"""The read side of the engine: serve the forecasts and churn scores that the nightly pipeline wrote.

Nothing here trains or loads a model; MLflow and the model code stay off the request path. Each method runs a
few parameterised SQL reads (SQLAlchemy Core, ``sa.text`` with bind parameters) on one pooled connection of a
synchronous engine, inside ``asyncio.to_thread``, so the event loop never waits on the database.

Ids: a workspace or user may be given as its UUID or as the source's text id (DESIGN.md, "Ids"). Both map to
the UUID with ``core.ids.entity_uuid``; ``analytics.entities`` says whether the workspace exists and
gives its external id. Answers carry both forms.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core.ids import entity_uuid
from services.data_version import DataVersion
from services.what_if_data import StoredReads

CONSUMPTION_TYPE = "credit_consumption"
TOTAL = "total"
CUMULATIVE_METRIC = "credits_cumulative"  # running totals from the first forecast day (pipelines.consumption.forecast)
GRANULARITIES = ("day", "week")
# A scored user's state (models/churn/rhythm.py: silence relative to the user's usual gap between active days).
CHURN_STATES = ("active", "lapsing", "dormant")
MAX_DAYS_AHEAD = 365


class UnknownWorkspaceError(LookupError):
    """The workspace id matches no workspace in ``analytics.entities``."""


class NoPredictionsError(LookupError):
    """The workspace exists but the pipeline has written no predictions of the asked kind for it."""


@dataclass(frozen=True)
class Workspace:
    """A workspace's two ids: the UUID the tables key on and the source's text id."""

    id: uuid.UUID
    external_id: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "external_id": self.external_id}


_WORKSPACE = sa.text("""
    select entity_id, external_id
    from analytics.entities
    where entity_type = 'workspace' and entity_id = :id
""")

# The workspace (no row: unknown) and its latest consumption forecast (null columns: none yet): every row
# written as of the latest as-of date of the workspace total, for the asked days after it.
_CONSUMPTION = sa.text("""
    with workspace as (
        select external_id
        from analytics.entities
        where entity_type = 'workspace' and entity_id = :ws
    ),
    latest as (
        select max(as_of_date) as as_of_date
        from analytics.predictions
        where workspace_id = :ws and prediction_type = :type and target_metric = 'credits'
          and granularity = 'day' and scenario = 'likely' and dimension = :total
    ),
    forecast as (
        select p.target_metric, p.dimension, p.prediction_date,
               p.predicted_value::float8 as value, p.confidence_lower::float8 as lower,
               p.confidence_upper::float8 as upper, p.confidence_level::float8 as confidence_level,
               p.model_version, p.as_of_date
        from analytics.predictions p
        join latest l on p.as_of_date = l.as_of_date
        where p.workspace_id = :ws and p.prediction_type = :type
          and p.target_metric in ('credits', :cumulative) and p.granularity = 'day' and p.scenario = 'likely'
          and p.prediction_date > l.as_of_date and p.prediction_date <= l.as_of_date + cast(:days as integer)
    )
    select w.external_id, f.*
    from workspace w
    left join forecast f on true
    order by f.target_metric, f.dimension, f.prediction_date
""")

_HISTORY = sa.text("""
    select metric_date, credits
    from analytics.workspace_daily_metrics
    where workspace_id = :ws and dimension = :total and metric_date between :start and :end
    order by metric_date
""")

# The workspace (no row: unknown), its latest churn scoring date (null: none yet) and the number of users
# that pass the filters on that date.
_CHURN_SUMMARY = sa.text("""
    with workspace as (
        select external_id
        from analytics.entities
        where entity_type = 'workspace' and entity_id = :ws
    ),
    latest as (
        select max(prediction_date) as prediction_date
        from analytics.churn_predictions
        where workspace_id = :ws
    )
    select w.external_id, l.prediction_date,
           (select count(*)
            from analytics.churn_predictions c
            where c.workspace_id = :ws and c.prediction_date = l.prediction_date
              and c.churn_probability >= :threshold
              and (cast(:state as text) is null or c.state = cast(:state as text))
              and (cast(:users as uuid[]) is null or c.user_id = any(cast(:users as uuid[])))) as total
    from workspace w
    cross join latest l
""")

_CHURN_PAGE = sa.text("""
    select c.user_id, e.external_id as user_external_id,
           c.churn_probability::float8 as churn_probability, c.risk_score::float8 as risk_score,
           c.risk_factors, c.recommended_actions, c.days_until_churn, c.model_version, c.state
    from analytics.churn_predictions c
    left join analytics.entities e on e.entity_type = 'user' and e.entity_id = c.user_id
    where c.workspace_id = :ws and c.prediction_date = :d and c.churn_probability >= :threshold
      and (cast(:state as text) is null or c.state = cast(:state as text))
      and (cast(:users as uuid[]) is null or c.user_id = any(cast(:users as uuid[])))
    order by c.risk_score desc, c.churn_probability desc, c.user_id
    limit :limit offset :offset
""")


def resolve_workspace(conn: Connection, workspace_id: str) -> Workspace:
    """Find a workspace by UUID or external id.

    Args:
        conn: An open connection.
        workspace_id: The workspace's UUID (any form ``uuid.UUID`` parses) or its source text id.

    Returns:
        The workspace with both ids.

    Raises:
        UnknownWorkspaceError: No workspace has this id.
    """
    row = conn.execute(_WORKSPACE, {"id": str(entity_uuid("workspace", workspace_id))}).first()
    if row is None:
        raise _unknown(workspace_id)
    return Workspace(id=row.entity_id, external_id=row.external_id)


def _unknown(workspace_id: str) -> UnknownWorkspaceError:
    return UnknownWorkspaceError(f"unknown workspace {workspace_id!r}: no workspace has this UUID or external id")


def _sum(values: Iterable[float | None]) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def _periods(points: list[dict[str, Any]], start: date, granularity: str, keys: tuple[str, ...]) -> list[dict]:
    """Combine daily points into periods of the granularity.

    A week is 7 days counted from ``start`` (the first forecast day), backwards for history, so history and
    forecast weeks line up and the as-of date closes a week. A week's value and bounds are the sums of its
    days' values and bounds (``None`` if any day's is); its ``date`` is its first day and ``days`` the number
    of days it covers (the last forecast week and the first history week may be partial).

    Summing bounds gives the exact interval when daily errors move together and, for roughly normal errors, a
    wider one when they do not: a conservative weekly interval rather than an overconfident one.
    """
    if granularity == "day":
        return [{**p, "days": 1} for p in points]
    weeks: dict[int, list[dict[str, Any]]] = {}
    for p in points:
        weeks.setdefault((p["date"] - start).days // 7, []).append(p)
    return [
        {"date": start + timedelta(days=7 * k), "days": len(days), **{key: _sum(d[key] for d in days) for key in keys}}
        for k, days in sorted(weeks.items())
    ]


class PredictiveAnalytics:
    """Serves stored predictions: credit-consumption forecasts and churn scores.

    Args:
        engine: A synchronous SQLAlchemy engine; the API gives it one that connects as the read-only role.
        history_days: Days of daily credit history returned with a consumption forecast.
        data_version: When given, what-if requests keep the stored rows they read per workspace until it moves
            (``services.data_version``); ``None`` reads them for every request.
    """

    def __init__(self, engine: Engine, history_days: int = 90, data_version: DataVersion | None = None):
        self.engine = engine
        self.history_days = history_days
        self.data_version = data_version
        self._what_if_reads = StoredReads()

    async def predict_credit_consumption(
        self, workspace_id: str, days_ahead: int = 30, granularity: str = "day"
    ) -> dict[str, Any]:
        """The latest stored credit-consumption forecast of a workspace, with its breakdown and history.

        Args:
            workspace_id: The workspace's UUID or external id.
            days_ahead: Days after the as-of date to return, 1 to 365 (fewer if fewer were forecast).
            granularity: ``day``, or ``week`` for 7-day sums (see ``_periods`` for how intervals combine).

        Returns:
            ``workspace`` (``id``, ``external_id``), ``as_of_date``, ``model_version``, ``confidence_level``,
            ``granularity``, ``days_ahead``, ``predictions`` (the workspace total: rows of ``date``,
            ``predicted_value``, ``lower``, ``upper``, ``days``), ``breakdown`` (one ``{dimension,
            predictions}`` per feature/service, largest first; they sum to the total), ``cumulative`` (daily
            whatever the granularity: credits from the first forecast day through ``date``, ``days`` days, with
            an interval calibrated for that total; empty for forecasts stored without it) and ``history``
            (``date``, ``value``, ``days``: credits used in the ``history_days`` up to the as-of date).

        Raises:
            ValueError: ``days_ahead`` or ``granularity`` is out of range.
            UnknownWorkspaceError: No such workspace.
            NoPredictionsError: The workspace has no consumption forecast yet.
        """
        if not 1 <= days_ahead <= MAX_DAYS_AHEAD:
            raise ValueError(f"days_ahead must be between 1 and {MAX_DAYS_AHEAD}, got {days_ahead}")
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        return await asyncio.to_thread(self._credit_consumption, workspace_id, days_ahead, granularity)

    def _credit_consumption(self, workspace_id: str, days_ahead: int, granularity: str) -> dict[str, Any]:
        ws_id = entity_uuid("workspace", workspace_id)
        with self.engine.connect() as conn:
            rows = conn.execute(_CONSUMPTION, {"ws": str(ws_id), "type": CONSUMPTION_TYPE, "total": TOTAL,
                                               "cumulative": CUMULATIVE_METRIC, "days": days_ahead}).all()
            if not rows:
                raise _unknown(workspace_id)
            ws = Workspace(id=ws_id, external_id=rows[0].external_id)
            if rows[0].dimension is None:
                raise NoPredictionsError(
                    f"no credit consumption predictions yet for workspace {ws.external_id!r}; "
                    "run the nightly pipeline to produce them")
            as_of = rows[0].as_of_date
            history = conn.execute(_HISTORY, {"ws": str(ws.id), "total": TOTAL, "end": as_of,
                                              "start": as_of - timedelta(days=self.history_days - 1)}).all()

        start = as_of + timedelta(days=1)
        by_dim: dict[str, list[dict[str, Any]]] = {}
        cumulative = []
        for r in rows:
            point = {"date": r.prediction_date, "predicted_value": r.value, "lower": r.lower, "upper": r.upper}
            if r.target_metric == CUMULATIVE_METRIC:
                cumulative.append({**point, "days": (r.prediction_date - as_of).days})
            else:
                by_dim.setdefault(r.dimension, []).append(point)
        keys = ("predicted_value", "lower", "upper")
        total = by_dim.pop(TOTAL, [])
        head = next((r for r in rows if r.dimension == TOTAL and r.target_metric != CUMULATIVE_METRIC), rows[0])
        breakdown = sorted(by_dim.items(), key=lambda kv: (-sum(p["predicted_value"] or 0 for p in kv[1]), kv[0]))
        return {
            "workspace": ws.as_dict(),
            "as_of_date": as_of,
            "model_version": head.model_version,
            "confidence_level": head.confidence_level,
            "granularity": granularity,
            "days_ahead": days_ahead,
            "predictions": _periods(total, start, granularity, keys),
            "breakdown": [{"dimension": dim, "predictions": _periods(points, start, granularity, keys)}
                          for dim, points in breakdown],
            "cumulative": cumulative,
            "history": _periods([{"date": h.metric_date, "value": h.credits} for h in history], start, granularity,
                                ("value",)),
        }

    async def predict_user_churn(
        self,
        workspace_id: str,
        users: list[str] | None = None,
        risk_threshold: float = 0.0,
        limit: int = 100,
        offset: int = 0,
        state: str | None = None,
    ) -> dict[str, Any]:
        """The latest churn scores of a workspace's users, riskiest first.

        Args:
            workspace_id: The workspace's UUID or external id.
            users: Only these users (UUIDs or external ids); ``None`` for every scored user.
            risk_threshold: Only users whose churn probability is at least this, 0 to 1.
            limit: Page size, at least 1.
            offset: Users to skip, at least 0.
            state: Only users in this state (``active``, ``lapsing``, ``dormant``); ``None`` for all.

        Returns:
            ``workspace``, ``prediction_date`` (the latest scoring date of the workspace), ``risk_threshold``,
            ``state``, ``total`` (users passing the filters), ``limit``, ``offset`` and ``users``: rows of
            ``user_id``, ``user_external_id``, ``churn_probability``, ``risk_score`` (0-100), ``risk_factors``,
            ``recommended_actions``, ``days_until_churn``, ``model_version`` and ``state`` (null for rows
            scored before states existed), sorted by risk score, then probability (descending), then user id.

        Raises:
            ValueError: A parameter is out of range.
            UnknownWorkspaceError: No such workspace.
            NoPredictionsError: The workspace has no churn scores yet.
        """
        if not 0.0 <= risk_threshold <= 1.0:
            raise ValueError(f"risk_threshold must be between 0 and 1, got {risk_threshold}")
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be at least 1 and offset at least 0, got {limit} and {offset}")
        if state is not None and state not in CHURN_STATES:
            raise ValueError(f"state must be one of {list(CHURN_STATES)}, got {state!r}")
        return await asyncio.to_thread(self._user_churn, workspace_id, users, risk_threshold, limit, offset, state)

    def _user_churn(self, workspace_id: str, users: list[str] | None, risk_threshold: float, limit: int,
                    offset: int, state: str | None = None) -> dict[str, Any]:
        ws_id = entity_uuid("workspace", workspace_id)
        user_ids = None if users is None else sorted({str(entity_uuid("user", u)) for u in users})
        params = {"ws": str(ws_id), "threshold": risk_threshold, "users": user_ids, "state": state}
        with self.engine.connect() as conn:
            summary = conn.execute(_CHURN_SUMMARY, params).first()
            if summary is None:
                raise _unknown(workspace_id)
            ws = Workspace(id=ws_id, external_id=summary.external_id)
            if summary.prediction_date is None:
                raise NoPredictionsError(
                    f"no churn predictions yet for workspace {ws.external_id!r}; "
                    "run the nightly pipeline to produce them")
            page = conn.execute(_CHURN_PAGE, {**params, "d": summary.prediction_date, "limit": limit,
                                              "offset": offset}).mappings().all()
        return {
            "workspace": ws.as_dict(),
            "prediction_date": summary.prediction_date,
            "risk_threshold": risk_threshold,
            "state": state,
            "total": summary.total,
            "limit": limit,
            "offset": offset,
            "users": [dict(r) for r in page],
        }

    async def predict_peak_usage(self, workspace_id: str, granularity: str = "hourly",
                                 days_ahead: int = 7) -> dict[str, Any]:
        """The latest peak-usage forecast of a workspace (``services.peak_usage``).

        Args:
            workspace_id: The workspace's UUID or external id.
            granularity: ``hourly`` (the hourly forecast with 80% and published-level intervals, plus the
                daily peaks) or ``daily`` (daily peaks only).
            days_ahead: Days after the as-of date, 1 to 14 (fewer if fewer were forecast).

        Returns:
            ``workspace``, ``as_of_date``, ``time_zone``, ``granularity``, ``days_ahead``, ``confidence_level``,
            ``model_version`` and ``metrics``: per metric (``calls``, ``credits``) ``daily`` rows (local day, peak
            hour local and UTC, top 3 peak hours with probabilities, peak value and bounds, capacity need, the
            limit and the day's alert), ``hourly`` rows (UTC and local hour, forecast, bounds, limit, alert),
            ``week_peak`` and ``alerts`` (hours whose upper bound exceeds the limit).

        Raises:
            ValueError: A parameter is out of range.
            UnknownWorkspaceError: No such workspace.
            NoPredictionsError: The workspace has no peak-usage predictions yet.
        """
        from services.peak_usage import GRANULARITIES as PEAK_GRANULARITIES
        from services.peak_usage import MAX_DAYS_AHEAD as PEAK_MAX_DAYS
        from services.peak_usage import PeakUsageReader

        if granularity not in PEAK_GRANULARITIES:
            raise ValueError(f"granularity must be one of {PEAK_GRANULARITIES}, got {granularity!r}")
        if not 1 <= days_ahead <= PEAK_MAX_DAYS:
            raise ValueError(f"days_ahead must be between 1 and {PEAK_MAX_DAYS}, got {days_ahead}")
        out = await asyncio.to_thread(PeakUsageReader(self.engine).read, workspace_id, granularity, days_ahead)
        if out is None:
            raise _unknown(workspace_id)
        if out["as_of_date"] is None:
            raise NoPredictionsError(f"no peak usage predictions yet for workspace {out['workspace']['external_id']!r}; "
                                     "run the nightly pipeline to produce them")
        return out

    async def predict_growth_metrics(self, workspace_id: str, metric: str = "mau",
                                     horizon_days: int = 90) -> dict[str, Any]:
        """The latest growth projection of a workspace's DAU, WAU or MAU (``services.growth``).

        Args:
            workspace_id: The workspace's UUID or external id.
            metric: ``dau``, ``wau`` or ``mau``.
            horizon_days: Days after the as-of date, 1 to 365 (fewer if fewer were projected).

        Returns:
            ``workspace``, ``metric``, ``status`` (``projected``, or ``insufficient_data`` with ``reason`` and
            ``counts`` and no projection), ``as_of_date``, ``model_version``, ``horizon_days``,
            ``current_value``, ``history`` (daily DAU/WAU/MAU and new/returning/reactivated/lost users, the
            metric as ``value``), ``projection`` (per day: ``worst``/``likely``/``best`` = P10/P50/P90 of the
            sample paths, the 80% interval ``lower_80``..``upper_80`` = worst..best and the 95% interval),
            ``milestones`` (round numbers and goals: P(reached within the horizon), P10/P50/P90 dates) and
            ``goals`` (each with its projection of that date, or ``pending`` until the next run).

        Raises:
            ValueError: A parameter is out of range.
            UnknownWorkspaceError: No such workspace.
            NoPredictionsError: The growth run has not looked at the workspace yet.
        """
        from services.growth import MAX_HORIZON_DAYS as GROWTH_MAX_DAYS
        from services.growth import METRICS as GROWTH_METRICS
        from services.growth import read_growth

        if metric not in GROWTH_METRICS:
            raise ValueError(f"metric must be one of {list(GROWTH_METRICS)}, got {metric!r}")
        if not 1 <= horizon_days <= GROWTH_MAX_DAYS:
            raise ValueError(f"horizon_days must be between 1 and {GROWTH_MAX_DAYS}, got {horizon_days}")

        def read() -> dict[str, Any]:
            with self.engine.connect() as conn:
                ws = resolve_workspace(conn, workspace_id)
                body = read_growth(conn, str(ws.id), metric, horizon_days, self.history_days)
            if body is None:
                raise NoPredictionsError(f"no growth projection yet for workspace {ws.external_id!r}; "
                                         "run the nightly pipeline to produce it")
            return {"workspace": ws.as_dict(), **body}

        return await asyncio.to_thread(read)


    async def predict_error_rates(self, workspace_id: str, agent_id: str | None = None, min_level: str | None = None,
                                  history_days: int = 28, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """The latest error-rate forecasts and escalation alerts of a workspace's agents (``services.agent_errors``).

        Args:
            workspace_id: The workspace's UUID or external id.
            agent_id: Only this agent (UUID or external id); ``None`` for every agent.
            min_level: Only agents alerting at this level or above (``watch`` < ``warning`` < ``critical``).
            history_days: Days of daily calls, failures and rate returned per agent, 1 to 365.
            limit: Page size, at least 1. offset: Agents to skip, at least 0.

        Returns:
            ``workspace``, ``as_of_date`` (the latest run), ``status`` (``ok``, or ``no_agents`` with a ``note``
            when no agent of the workspace had calls in the 90 days to it), ``agents_in_workspace``, ``total``
            (agents passing the filters), ``alerting`` (of those, with a level) and ``agents``, riskiest first:
            ``agent`` (``id``, ``external_id``), ``status`` (``ok``, ``escalating``, ``breach``, ``chronic``,
            ``insufficient_volume``, ``inactive``), ``alert`` (level or null, probability of a breach within
            the horizon, expected breach date, threshold and its source, current and baseline rates, calls and
            failures in 7 days, trend per day, share of the workspace's users failing, calls at risk, reason
            in words, drivers), ``model_version``, ``forecast`` (per day: predicted rate, 80% and 95% bounds,
            expected calls, probability the breach is confirmed by then; none for inactive agents) and
            ``history`` (per day: calls, errors, error rate or null without calls).

        Raises:
            ValueError: A parameter is out of range.
            UnknownWorkspaceError: No such workspace.
            UnknownAgentError: ``agent_id`` names no agent of the workspace in the latest run.
            NoPredictionsError: The error-rate kind has never run.
        """
        from services.agent_errors import MAX_HISTORY_DAYS, levels_from, read_error_rates

        levels_from(min_level)  # validates
        if not 1 <= history_days <= MAX_HISTORY_DAYS:
            raise ValueError(f"history_days must be between 1 and {MAX_HISTORY_DAYS}, got {history_days}")
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be at least 1 and offset at least 0, got {limit} and {offset}")

        def read() -> dict[str, Any]:
            with self.engine.connect() as conn:
                out = read_error_rates(conn, workspace_id, agent_id, min_level, history_days, limit, offset)
            if out is None:
                raise _unknown(workspace_id)
            if out["as_of_date"] is None:
                raise NoPredictionsError(f"no error-rate predictions yet (workspace {out['workspace']['external_id']!r});"
                                         " run the nightly pipeline to produce them")
            return {**out, "min_level": min_level, "limit": limit, "offset": offset}

        return await asyncio.to_thread(read)

    async def what_if(self, request: dict[str, Any]) -> dict[str, Any]:
        """A what-if scenario on the stored predictions (``services.what_if``; no retraining, deterministic).

        Args:
            request: ``workspace_id``, ``base_scenario``, ``adjustments`` (dicts with ``type``; ranges as in
                ``services.what_if.RANGES``), ``metrics`` (``credits``, ``dau``, ``wau``, ``mau``), ``horizon_days``.

        Returns:
            ``workspace``, the as-of dates, ``metrics`` (per metric, and for credits per feature/service: the
            baseline and adjusted series with intervals, the difference over the horizon, milestones before and
            after) and ``explanations`` (each adjustment's contribution in words).

        Raises:
            ValueError: An adjustment is out of range (``what_if.WhatIfInputError`` names it).
            UnknownWorkspaceError: No such workspace.
            NoPredictionsError: Nothing asked for has been predicted for the workspace yet.
        """
        from services.what_if import compute, validate_request

        request = validate_request(request)

        def read() -> dict[str, Any]:
            version = self.data_version.current() if self.data_version is not None else None
            with self.engine.connect() as conn:
                ws = resolve_workspace(conn, request["workspace_id"])
                out = compute(conn, request, ws.external_id, self._what_if_reads, version)
            if out is None:
                raise NoPredictionsError(f"no predictions of {', '.join(request['metrics'])} yet for workspace "
                                         f"{ws.external_id!r}; run the nightly pipeline to produce them")
            return out

        return await asyncio.to_thread(read)
