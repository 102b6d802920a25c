"""Retention: old prediction snapshots and finished on-demand jobs are deleted each night (monitor step)."""
import json
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.settings import Settings

D = date(2026, 3, 31)
WS = "00000000-0000-0000-0000-000000000001"


def _empty(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("truncate analytics.prediction_snapshots, analytics.prediction_jobs"))


def _snapshot(conn, prediction_date: date) -> None:
    conn.execute(sa.text(
        "insert into analytics.prediction_snapshots (workspace_id, prediction_type, target_metric, dimension,"
        " granularity, scenario, prediction_date, prediction_hour, as_of_date, days_ahead, predicted_value)"
        " values (:ws, 'credit_consumption', 'credits', 'total', 'day', 'likely', :d, 0, :as_of, 7, 1)"),
        {"ws": WS, "d": prediction_date, "as_of": prediction_date - timedelta(days=7)})


def _job(conn, status: str, finished_days_ago: float | None, created_days_ago: float = 400) -> None:
    at = datetime(D.year, D.month, D.day, 12, tzinfo=timezone.utc)
    conn.execute(sa.text(
        "insert into analytics.prediction_jobs (workspace_id, prediction_type, target_metric, horizon, status,"
        " request_hash, created_at, finished_at) values (:ws, 'credit_consumption', 'credits', 7, :st, 'h', :c, :f)"),
        {"ws": WS, "st": status, "c": at - timedelta(days=created_days_ago),
         "f": None if finished_days_ago is None else at - timedelta(days=finished_days_ago)})


def _seed(engine) -> None:
    _empty(engine)
    with engine.begin() as conn:
        for days_before in (500, 401, 400, 30, 0):
            _snapshot(conn, D - timedelta(days=days_before))
        _job(conn, "succeeded", 45)
        _job(conn, "failed", 31)
        _job(conn, "succeeded", 29)  # within 30 days: kept
        _job(conn, "queued", None)  # never finished: kept however old
        _job(conn, "running", None)


def _left(engine) -> tuple[list[date], list[str]]:
    with engine.connect() as conn:
        snaps = conn.execute(sa.text("select prediction_date from analytics.prediction_snapshots order by 1")).scalars()
        jobs = conn.execute(sa.text("select status from analytics.prediction_jobs order by status")).scalars()
        return list(snaps), list(jobs)


def test_prune_history_keeps_the_windows_and_unfinished_jobs(clean_db, settings):
    from pipelines.nightly import prune_history

    _seed(clean_db)
    assert prune_history(settings, clean_db, D) == {"prediction_snapshots": 2, "prediction_jobs": 2}
    snaps, jobs = _left(clean_db)
    assert snaps == [D - timedelta(days=n) for n in (400, 30, 0)]
    assert jobs == ["queued", "running", "succeeded"]
    assert prune_history(settings, clean_db, D) == {"prediction_snapshots": 0, "prediction_jobs": 0}  # re-run
    _empty(clean_db)


def test_monitor_step_prunes_and_records_the_counts(clean_db, settings):
    from pipelines.nightly import monitor_step

    _seed(clean_db)
    out = monitor_step(D.isoformat(), settings.model_copy(update={"snapshot_retention_days": 100,
                                                                  "job_retention_days": 40}))
    assert out["deleted"] == {"prediction_snapshots": 3, "prediction_jobs": 1}
    with clean_db.connect() as conn:
        counts = conn.execute(sa.text("select row_counts from analytics.pipeline_runs where step = 'monitor'"
                                      " and logical_date = :d order by started_at desc limit 1"), {"d": D}).scalar()
    counts = counts if isinstance(counts, dict) else json.loads(counts)
    assert counts["deleted_prediction_snapshots"] == 3 and counts["deleted_prediction_jobs"] == 1
    assert _left(clean_db)[0] == [D - timedelta(days=n) for n in (30, 0)]
    _empty(clean_db)


def test_snapshot_retention_must_cover_the_monitoring_windows():
    assert Settings().snapshot_retention_days == 400 and Settings().job_retention_days == 30
    with pytest.raises(ValueError, match="snapshot_retention_days"):
        Settings(snapshot_retention_days=100, ab_window_days=90)
