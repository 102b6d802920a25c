"""Pipeline-run records in ``analytics.pipeline_runs``: one row per step attempt."""
from __future__ import annotations

import json
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
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
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.text("insert into analytics.pipeline_runs (logical_date, step, status) values (:d, :s, 'running')"
                    " returning run_id"),
            {"d": logical_date, "s": step},
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
