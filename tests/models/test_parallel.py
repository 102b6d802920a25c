"""Forked forecasting workers die with their parent (no orphan holding database connections)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PARENT = """
import os, sys, time, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from models.forecasting.parallel import die_with_parent

def child_pid(_):
    return os.getpid()

with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=die_with_parent,
                         initargs=(os.getpid(),)) as pool:
    print(pool.submit(child_pid, 0).result(), flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for init to reap it is dead too
        return f.read().split(")")[-1].split()[0] != "Z"


def test_workers_die_when_the_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert _alive(worker)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)
