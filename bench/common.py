"""Shared benchmark plumbing: a throwaway database, phases timed in child processes (wall time + peak RSS)."""
from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@contextmanager
def throwaway_database(prefix: str = "pae_bench", keep: bool = False):
    """Create a fresh database on DATABASE_URL's server (or the embedded one); drop it afterwards."""
    from core.db import database_url, get_engine, migrate
    from core.settings import Settings

    server = database_url(Settings())
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = get_engine(url=server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(get_engine(url=url))
        yield url
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))


def _child(fn: Callable, args: tuple, queue) -> None:
    t0 = time.perf_counter()
    try:
        result = fn(*args)
        err = None
    except BaseException as exc:  # reported to the parent, which re-raises
        result, err = None, f"{type(exc).__name__}: {exc}"
    queue.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, result, err))


def timed_phase(fn: Callable, *args) -> tuple[float, float, object]:
    """Run ``fn(*args)`` in a fresh process; returns (wall seconds, peak RSS MiB, result)."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    p.start()
    wall, rss, result, err = q.get()
    p.join()
    if err:
        raise RuntimeError(f"phase {getattr(fn, '__name__', fn)} failed: {err}")
    return wall, rss, result


def out_dir(name: str) -> Path:
    d = Path(__file__).resolve().parent / "out" / name
    d.mkdir(parents=True, exist_ok=True)
    return d
