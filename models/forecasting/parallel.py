"""Per-series work over forked worker processes."""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from typing import Any

import numpy as np


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: the kernel kills this worker when its parent dies (Linux ``PR_SET_PDEATHSIG``),
    so a ``kill -9`` of the pipeline leaves no orphan holding inherited database connections."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def run_chunk(model: Any, method: str, items: list[tuple]) -> list[tuple[bool, Any]]:
    """Call ``model.<method>(*item)`` for each item; return ``(ok, result or error message)`` pairs."""
    func = getattr(model, method)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-series convergence warnings are noise at this scale
        for item in items:
            try:
                out.append((True, func(*item)))
            except Exception as exc:  # noqa: BLE001 - reported per series, the series falls back
                out.append((False, f"{type(exc).__name__}: {exc}"))
    return out


def parallel_map(model: Any, method: str, items: list[tuple], n_jobs: int) -> list[tuple[bool, Any]]:
    """``run_chunk(model, method, items)``, split over ``n_jobs`` forked processes when worth it.

    Runs in this process when ``n_jobs`` is 1, there are fewer than ``8 * n_jobs`` items, or forking
    is not possible. Workers get ``model.clone()`` (a blank copy), not its fitted state.
    """
    n_jobs = max(1, int(n_jobs))
    can_fork = "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon
    if n_jobs == 1 or len(items) < 8 * n_jobs or not can_fork:  # daemonic workers may not have children
        return run_chunk(model, method, items)
    bounds = np.linspace(0, len(items), 4 * n_jobs + 1).astype(int)
    chunks = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    # fork: workers inherit imports and compiled code; send a blank clone, not the fitted state
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork"), initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        parts = pool.map(run_chunk, repeat(model.clone()), repeat(method), chunks)
        return [r for part in parts for r in part]
