"""The data version: one short string that moves whenever what the API serves may have changed.

It is one small query (``DATA_VERSION``), read at most every ``seconds`` per process, so a publish shows within
that. It moves when:

- a ``publish`` step succeeds (``analytics.pipeline_runs.finished_at``: a nightly run, a re-run of the same date);
- new prediction or churn rows are committed (``max(created_at)``, indexed);
- a user-set table changes: capacity limits and time zones, growth goals, agent thresholds (row count and
  ``max(updated_at)``, so a removal counts too).

A direct ``update`` of existing prediction rows outside a publish step is not seen until one of those moves. The
API's response cache (``services/api/cache.py``) and the what-if's stored reads (``services/what_if_data.py``) keep
what they computed until it moves.
"""
from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

DATA_VERSION = sa.text("""
    select concat_ws('|',
        (select max(finished_at) from analytics.pipeline_runs where step = 'publish' and status = 'success'),
        (select max(created_at) from analytics.predictions),
        (select max(created_at) from analytics.churn_predictions),
        (select count(*) || ':' || coalesce(max(updated_at)::text, '') from analytics.capacity_limits),
        (select count(*) || ':' || coalesce(max(updated_at)::text, '') from analytics.workspace_time_zones),
        (select count(*) || ':' || coalesce(max(updated_at)::text, '') from analytics.growth_goals),
        (select count(*) || ':' || coalesce(max(updated_at)::text, '') from analytics.agent_error_thresholds)
    )
""")


class DataVersion:
    """The data version of one database, re-read when older than ``seconds`` (thread-safe).

    While one thread re-reads it, the others keep the value they have (at most that much older): a burst of
    requests at expiry sends one query, not one each.
    """

    def __init__(self, engine: Engine, seconds: float):
        self.engine = engine
        self.seconds = seconds
        self._value: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def read(self) -> str:
        """The version now, from the database."""
        with self.engine.connect() as conn:
            return conn.execute(DATA_VERSION).scalar_one()

    def peek(self) -> str | None:
        """The remembered version while it is fresh, else ``None`` (no database round trip)."""
        return self._value if time.monotonic() < self._expires else None

    def current(self) -> str:
        """The version, re-read from the database when it is older than ``seconds`` (may block on it)."""
        value = self.peek()
        if value is not None:
            return value
        if not self._lock.acquire(blocking=self._value is None):
            return self._value  # another thread is re-reading it
        try:
            if (value := self.peek()) is not None:
                return value
            value = self.read()
            self._value, self._expires = value, time.monotonic() + self.seconds
            return value
        finally:
            self._lock.release()
