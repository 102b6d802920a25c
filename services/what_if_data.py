"""What the what-if computation reads (``services/what_if.py``): the stored forecasts and projections of one
workspace and the per-user / per-agent contributions derived in SQL from tables the nightly run already fills.

Nothing here is written by the what-if itself: consumption forecasts and growth scenarios come from
``analytics.predictions`` (the latest as-of date of each kind), milestones from ``analytics.growth_milestones``,
the workspace's recent active users from ``analytics.workspace_growth_metrics``, its recent credits from
``analytics.workspace_daily_metrics``, the users at high churn risk from ``analytics.churn_predictions`` (their
credits from the online store's ``user_behaviour`` row), and agents' typical usage per kind from the last 28 days
of ``analytics.usage_events`` (read only when an ``agents`` adjustment asks for it).

``StoredReads`` keeps those reads per workspace and query until the data version moves (``services/data_version.py``:
a publish), so repeated what-ifs on a workspace skip the database (agents' usage included: events loaded late show
after the next publish).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

HIGH_RISK = 0.7  # churn probability from which a user is "high risk" (pipelines/churn/wording.py, the dashboard)
RECENT_DAYS = 28  # window of the recent rates (credits per user, new users, agents' usage)

# One row per series (metric x dimension), its days as arrays: far fewer rows to turn into Python objects.
_CREDITS = sa.text("""
    with latest as (
        select max(as_of_date) as as_of_date
        from analytics.predictions
        where workspace_id = :ws and prediction_type = 'credit_consumption' and target_metric = 'credits'
          and dimension = 'total' and granularity = 'day' and scenario = 'likely'
    )
    select p.target_metric, p.dimension, max(p.confidence_level)::float8 as level, max(p.model_version) as model_version,
           l.as_of_date, array_agg(p.prediction_date order by p.prediction_date) as dates,
           array_agg(p.predicted_value::float8 order by p.prediction_date) as vals,
           array_agg(p.confidence_lower::float8 order by p.prediction_date) as lows,
           array_agg(p.confidence_upper::float8 order by p.prediction_date) as highs
    from latest l
    join analytics.predictions p
      on p.workspace_id = :ws and p.prediction_type = 'credit_consumption' and p.as_of_date = l.as_of_date
     and p.target_metric in ('credits', 'credits_cumulative') and p.granularity = 'day' and p.scenario = 'likely'
     and p.prediction_date > l.as_of_date and p.prediction_date <= l.as_of_date + cast(:days as integer)
    group by p.target_metric, p.dimension, l.as_of_date
    order by p.target_metric, p.dimension
""")

_GROWTH = sa.text("""
    with latest as (
        select max(as_of_date) as as_of_date
        from analytics.predictions
        where workspace_id = :ws and prediction_type = 'growth' and target_metric = 'mau'
          and dimension = 'total' and granularity = 'day' and scenario = 'likely'
    )
    select p.target_metric, p.scenario, max(p.model_version) as model_version, l.as_of_date,
           array_agg(p.prediction_date order by p.prediction_date) as dates,
           array_agg(p.predicted_value::float8 order by p.prediction_date) as vals,
           array_agg(p.confidence_lower::float8 order by p.prediction_date) as lows,
           array_agg(p.confidence_upper::float8 order by p.prediction_date) as highs
    from latest l
    join analytics.predictions p
      on p.workspace_id = :ws and p.prediction_type = 'growth' and p.as_of_date = l.as_of_date
     and p.target_metric in ('dau', 'wau', 'mau') and p.dimension = 'total' and p.granularity = 'day'
     and p.prediction_date > l.as_of_date and p.prediction_date <= l.as_of_date + cast(:days as integer)
    group by p.target_metric, p.scenario, l.as_of_date
    order by p.target_metric, p.scenario
""")

_MILESTONES = sa.text("""
    select target_metric, threshold::float8 as threshold, kind, probability::float8 as probability,
           date_p10, date_p50, date_p90
    from analytics.growth_milestones
    where workspace_id = :ws and as_of_date = :as_of
    order by target_metric, threshold, kind
""")

# The recent active users and their flows, up to the as-of date (the last row is the as-of date's).
_USERS = sa.text("""
    select metric_date, dau, wau, mau, new_users, lost_users
    from analytics.workspace_growth_metrics
    where workspace_id = :ws and metric_date between cast(:as_of as date) - 56 and :as_of
    order by metric_date
""")

_RECENT_CREDITS = sa.text("""
    select coalesce(sum(credits), 0)::float8 as credits, coalesce(max(active_users), 0) as peak_dau
    from analytics.workspace_daily_metrics
    where workspace_id = :ws and dimension = 'total'
      and metric_date > cast(:as_of as date) - 28 and metric_date <= :as_of
""")

# Users at high churn risk on the latest scoring date: probability, expected days until churn, state and their
# credits in the last 28 days (online store), null when the store has no row for them.
_HIGH_RISK = sa.text("""
    with latest as (
        select max(prediction_date) as d from analytics.churn_predictions where workspace_id = :ws
    )
    select c.prediction_date, c.churn_probability::float8 as p, c.days_until_churn, c.state,
           (f.features ->> 'credits_28')::float8 as credits_28
    from latest l
    join analytics.churn_predictions c on c.workspace_id = :ws and c.prediction_date = l.d
    left join lateral (
        select features from analytics.ml_features
        where entity_type = 'user' and entity_id = c.user_id and feature_set = 'user_behaviour'
        order by version desc limit 1
    ) f on true
    where c.churn_probability >= :high
""")

# Each agent's credits per feature/service over the 28 days to the as-of date; an agent's kind is the
# feature/service it spends most credits on.
_AGENTS = sa.text("""
    select agent_id, feature, sum(credits)::float8 as credits
    from analytics.usage_events
    where workspace_id = :ext and agent_id is not null
      and event_time >= cast(:as_of as date) - 27 and event_time < cast(:as_of as date) + 1
    group by agent_id, feature
""")


@dataclass
class Series:
    """One stored daily series: dates with value and 95% bounds."""

    dates: list[date] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    lower: list[float | None] = field(default_factory=list)
    upper: list[float | None] = field(default_factory=list)

    def add(self, d: date, v: float, lo: float | None, hi: float | None) -> None:
        self.dates.append(d)
        self.value.append(v or 0.0)
        self.lower.append(lo)
        self.upper.append(hi)


@dataclass
class Stored:
    """Everything one what-if request reads for a workspace."""

    credits_as_of: date | None = None
    credits_version: str | None = None
    confidence_level: float = 0.95
    credits: dict[str, Series] = field(default_factory=dict)  # 'total' and each feature/service
    cumulative: Series | None = None
    growth_as_of: date | None = None
    growth_version: str | None = None
    growth: dict[str, dict[str, Series]] = field(default_factory=dict)  # metric -> scenario -> series
    milestones: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)  # recent workspace_growth_metrics rows
    recent_credits: float = 0.0
    peak_dau: int = 0
    high_risk: list[dict[str, Any]] = field(default_factory=list)
    churn_date: date | None = None


def read_stored(conn: Connection, ws_uuid: str, days: int, want_credits: bool, want_growth: bool,
                want_churn: bool) -> Stored:
    """The stored rows a request needs (only the parts it asks for)."""
    out = Stored()
    params = {"ws": ws_uuid, "days": days}
    if want_credits:
        for r in conn.execute(_CREDITS, params):
            out.credits_as_of, out.credits_version = r.as_of_date, r.model_version
            out.confidence_level = r.level or 0.95
            series = Series(list(r.dates), [v or 0.0 for v in r.vals], list(r.lows), list(r.highs))
            if r.target_metric == "credits_cumulative":
                out.cumulative = series
            else:
                out.credits[r.dimension] = series
    if want_growth or want_credits:
        for r in conn.execute(_GROWTH, params):
            out.growth_as_of, out.growth_version = r.as_of_date, r.model_version
            out.growth.setdefault(r.target_metric, {})[r.scenario] = Series(
                list(r.dates), [v or 0.0 for v in r.vals], list(r.lows), list(r.highs))
        if out.growth_as_of is not None and want_growth:
            out.milestones = [dict(m) for m in conn.execute(_MILESTONES, {**params, "as_of": out.growth_as_of})
                              .mappings()]
    as_of = out.credits_as_of or out.growth_as_of
    if as_of is None:
        return out
    out.users = [dict(u) for u in conn.execute(_USERS, {**params, "as_of": as_of}).mappings()]
    recent = conn.execute(_RECENT_CREDITS, {**params, "as_of": as_of}).first()
    out.recent_credits, out.peak_dau = recent.credits, recent.peak_dau
    if want_churn:
        rows = conn.execute(_HIGH_RISK, {**params, "high": HIGH_RISK}).mappings().all()
        out.high_risk = [dict(r) for r in rows]
        out.churn_date = rows[0]["prediction_date"] if rows else None
    return out


def read_agent_kinds(conn: Connection, external_id: str, as_of: date) -> dict[str, dict[str, Any]]:
    """Agents per kind (main feature/service): ``{kind: {agents, per_agent_daily, split}}``, where
    ``per_agent_daily`` is the median of the kind's agents' mean daily credits over the last 28 days and
    ``split`` how the kind's agents spread their credits over features/services."""
    per_agent: dict[str, dict[str, float]] = {}
    for r in conn.execute(_AGENTS, {"ext": external_id, "as_of": as_of}):
        per_agent.setdefault(r.agent_id, {})[r.feature] = r.credits
    kinds: dict[str, list[dict[str, float]]] = {}
    for agent, by_feature in sorted(per_agent.items()):
        main = max(sorted(by_feature), key=lambda f: by_feature[f])
        kinds.setdefault(main, []).append(by_feature)
    out = {}
    for kind, agents in kinds.items():
        daily = sorted(sum(a.values()) / RECENT_DAYS for a in agents)
        mid = len(daily) // 2
        median = daily[mid] if len(daily) % 2 else (daily[mid - 1] + daily[mid]) / 2
        totals: dict[str, float] = {}
        for a in agents:
            for f, c in a.items():
                totals[f] = totals.get(f, 0.0) + c
        whole = sum(totals.values()) or 1.0
        out[kind] = {"agents": len(agents), "per_agent_daily": median,
                     "split": {f: c / whole for f, c in sorted(totals.items())}}
    return out


T = TypeVar("T")


class StoredReads:
    """What-if reads kept until the data version moves (thread-safe; at most ``max_entries``, oldest first out).

    The values are shared between requests and must not be changed by them (``what_if._assemble`` only aligns a
    feature's days with the total's, which gives the same series every time).
    """

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._version: str | None = None
        self._entries: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: str, key: tuple, read: Callable[[], T]) -> T:
        """The value under ``key`` for this data version, read (outside the lock) when missing."""
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
            elif key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = read()
        with self._lock:
            if version == self._version:
                self._entries[key] = value
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return value
