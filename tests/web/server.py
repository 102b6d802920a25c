"""Helpers of the dashboard's browser test and budget benchmark: a throwaway database, the bundle, `pae serve`
on a free port, and the Node scripts in web/e2e that drive Debian's Chromium."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

import sqlalchemy as sa

from core.db import get_engine
from core.settings import REPO_ROOT

WEB = REPO_ROOT / "web"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return "Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)"
    if not shutil.which("node") or not shutil.which("npm"):
        return "Node.js and npm are needed for the dashboard's tests"
    return None


def build_bundle() -> None:
    """`make web`: npm ci when the lockfile changed, a Vite build when a source did (nothing when current)."""
    subprocess.run(["make", "--no-print-directory", "web"], cwd=REPO_ROOT, check=True)


@contextmanager
def scratch_database(server_url: str, prefix: str = "pae_web"):
    """A database of its own on the server, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = get_engine(url=server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def pae_serve(db_url: str, pepper: str, data_dir: Path, log: Path):
    """`pae serve` on a free loopback port; yields its base URL and stops it afterwards."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "PAE_API_KEY_PEPPER": pepper, "PAE_DATA_DIR": str(data_dir)}
    pae = Path(sys.executable).parent / "pae"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(pae), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urlopen(f"{base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pae serve did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_node(script: str, env: dict[str, str], timeout: int = 300) -> tuple[int, dict, str]:
    """Run web/e2e/<script> with Node; returns its exit code, the JSON of its last stdout line, and stderr."""
    proc = subprocess.run(["node", f"e2e/{script}"], cwd=WEB, env={**os.environ, "CHROMIUM": CHROMIUM, **env},
                          capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr[-4000:]
