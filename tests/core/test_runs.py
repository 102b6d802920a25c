"""Step records: a step left 'running' by a process that died is marked 'abandoned' by the next step."""
from __future__ import annotations

import socket
import subprocess
from datetime import date

import sqlalchemy as sa

from core.runs import abandon_dead_steps, recorded_step

D = date(2026, 3, 31)


def _insert_running(conn, step: str, host: str, pid: int, age: str = "0 minutes") -> None:
    conn.execute(sa.text("insert into analytics.pipeline_runs (logical_date, step, status, host, pid, started_at)"
                         " values (:d, :s, 'running', :h, :p, now() - cast(:age as interval))"),
                 {"d": D, "s": step, "h": host, "p": pid, "age": age})


def _status(conn, step: str) -> str:
    return conn.execute(sa.text("select status from analytics.pipeline_runs where step = :s"), {"s": step}).scalar_one()


def test_dead_steps_are_abandoned_and_live_ones_kept(engine):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer exists (the pipeline was killed with kill -9)
    live = subprocess.Popen(["sleep", "30"])
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("delete from analytics.pipeline_runs"))
            _insert_running(conn, "killed_here", socket.gethostname(), dead.pid)
            _insert_running(conn, "running_here", socket.gethostname(), live.pid)
            _insert_running(conn, "other_host_recent", "worker-2", 12345)
            _insert_running(conn, "other_host_stale", "worker-2", 12345, age="7 hours")
        with recorded_step(engine, "next_run", D):  # every step checks before it starts
            pass
        with engine.connect() as conn:
            got = {s: _status(conn, s) for s in ("killed_here", "running_here", "other_host_recent",
                                                  "other_host_stale", "next_run")}
            error = conn.execute(sa.text("select error from analytics.pipeline_runs where step = 'killed_here'")).scalar()
        assert got == {"killed_here": "abandoned", "running_here": "running", "other_host_recent": "running",
                       "other_host_stale": "abandoned", "next_run": "success"}
        assert "died" in error
        assert abandon_dead_steps(engine) == 0  # idempotent
    finally:
        live.kill()
        with engine.begin() as conn:
            conn.execute(sa.text("delete from analytics.pipeline_runs"))
