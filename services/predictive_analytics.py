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

CONSUMPTION_TYPE = "credit_consumption"
TOTAL = "total"
CUMULATIVE_METRIC = "credits_cumulative"  # running totals from the first forecast day (pipelines.consumption.forecast)
GRANULARITIES = ("day", "week")
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
              and (cast(:users as uuid[]) is null or c.user_id = any(cast(:users as uuid[])))) as total
    from workspace w
    cross join latest l
""")

_CHURN_PAGE = sa.text("""
    select c.user_id, e.external_id as user_external_id,
           c.churn_probability::float8 as churn_probability, c.risk_score::float8 as risk_score,
           c.risk_factors, c.recommended_actions, c.days_until_churn, c.model_version
    from analytics.churn_predictions c
    left join analytics.entities e on e.entity_type = 'user' and e.entity_id = c.user_id
    where c.workspace_id = :ws and c.prediction_date = :d and c.churn_probability >= :threshold
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
    """

    def __init__(self, engine: Engine, history_days: int = 90):
        self.engine = engine
        self.history_days = history_days

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
    ) -> dict[str, Any]:
        """The latest churn scores of a workspace's users, riskiest first.

        Args:
            workspace_id: The workspace's UUID or external id.
            users: Only these users (UUIDs or external ids); ``None`` for every scored user.
            risk_threshold: Only users whose churn probability is at least this, 0 to 1.
            limit: Page size, at least 1.
            offset: Users to skip, at least 0.

        Returns:
            ``workspace``, ``prediction_date`` (the latest scoring date of the workspace), ``risk_threshold``,
            ``total`` (users passing the filters), ``limit``, ``offset`` and ``users``: rows of ``user_id``,
            ``user_external_id``, ``churn_probability``, ``risk_score`` (0-100), ``risk_factors``,
            ``recommended_actions``, ``days_until_churn`` and ``model_version``, sorted by risk score, then
            probability (descending), then user id.

        Raises:
            ValueError: A parameter is out of range.
            UnknownWorkspaceError: No such workspace.
            NoPredictionsError: The workspace has no churn scores yet.
        """
        if not 0.0 <= risk_threshold <= 1.0:
            raise ValueError(f"risk_threshold must be between 0 and 1, got {risk_threshold}")
        if limit < 1 or offset < 0:
            raise ValueError(f"limit must be at least 1 and offset at least 0, got {limit} and {offset}")
        return await asyncio.to_thread(self._user_churn, workspace_id, users, risk_threshold, limit, offset)

    def _user_churn(self, workspace_id: str, users: list[str] | None, risk_threshold: float, limit: int,
                    offset: int) -> dict[str, Any]:
        ws_id = entity_uuid("workspace", workspace_id)
        user_ids = None if users is None else sorted({str(entity_uuid("user", u)) for u in users})
        params = {"ws": str(ws_id), "threshold": risk_threshold, "users": user_ids}
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
            "total": summary.total,
            "limit": limit,
            "offset": offset,
            "users": [dict(r) for r in page],
        }
