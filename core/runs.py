"""Pipeline-run records in ``analytics.pipeline_runs``: one row per step attempt.

Each row names the host and process running the step. A step whose process died (``kill -9``, an OOM kill,
a lost worker) leaves its row ``running``; ``abandon_dead_steps`` marks such rows ``abandoned``: on this
host when the process no longer exists, on any host when the row is older than ``stale_after``.
"""
from __future__ import annotations

import json
import os
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine


@dataclass
class RunRecord:
    step: str
    logical_date: date
    row_counts: dict = field(default_factory=dict)
    mlflow_run_ids: list = field(default_factory=list)
    details: dict = field(default_factory=dict)
    status: str = "success"


@contextmanager
def recorded_step(engine: Engine, step: str, logical_date: date) -> Iterator[RunRecord]:
    """Record a step: a 'running' row first, then its outcome; an exception is recorded and re-raised."""
    rec = RunRecord(step=step, logical_date=logical_date)
    abandon_dead_steps(engine)
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.text("insert into analytics.pipeline_runs (logical_date, step, status, host, pid)"
                    " values (:d, :s, 'running', :host, :pid) returning run_id"),
            {"d": logical_date, "s": step, "host": socket.gethostname(), "pid": os.getpid()},
        ).scalar_one()
    started = time.perf_counter()
    try:
        yield rec
    except BaseException as exc:
        _finish(engine, run_id, rec, "failed", time.perf_counter() - started,
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        raise
    _finish(engine, run_id, rec, rec.status, time.perf_counter() - started)


def _finish(engine: Engine, run_id, rec: RunRecord, status: str, duration: float, error: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update analytics.pipeline_runs set status = :st, finished_at = now(), duration_s = :dur,"
                " row_counts = cast(:rc as jsonb), mlflow_run_ids = cast(:ml as jsonb),"
                " details = cast(:det as jsonb), error = :err where run_id = :id"
            ),
            {"st": status, "dur": duration, "rc": json.dumps(rec.row_counts, default=str),
             "ml": json.dumps(rec.mlflow_run_ids), "det": json.dumps(rec.details, default=str),
             "err": error, "id": run_id},
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def abandon_dead_steps(engine: Engine, stale_after: timedelta = timedelta(hours=6)) -> int:
    """Mark ``running`` rows whose process is gone as ``abandoned``; returns how many."""
    host = socket.gethostname()
    with engine.begin() as conn:
        rows = conn.execute(sa.text(
            "select run_id, host, pid, started_at < now() - :stale as stale from analytics.pipeline_runs"
            " where status = 'running'"), {"stale": stale_after}).all()
        dead = [r.run_id for r in rows
                if r.stale or (r.host == host and r.pid is not None and r.pid != os.getpid() and not _alive(r.pid))]
        if dead:
            conn.execute(sa.text(
                "update analytics.pipeline_runs set status = 'abandoned', finished_at = now(),"
                " error = coalesce(error, 'the process running this step died (killed or lost); marked by a later run')"
                " where run_id = any(:ids) and status = 'running'"), {"ids": dead})
    return len(dead)
