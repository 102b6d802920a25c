"""Shared fixtures: one throwaway PostgreSQL database per test session, on the real server.

``DATABASE_URL`` (CI: the local server) names the server; without it the embedded server is used.
"""
from __future__ import annotations

import os
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from core.db import get_engine, migrate  # noqa: E402
from core.settings import Settings  # noqa: E402

ANALYTICS_TABLES = (
    "usage_events", "entities", "predictions", "ml_models", "churn_predictions", "ml_features",
    "workspace_daily_metrics", "pipeline_runs",
)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from core.db import _embedded_url

    return _embedded_url(Path(os.environ.get("PAE_TEST_PGDATA", tmp_path_factory.mktemp("pgdata"))))


@pytest.fixture(scope="session")
def db_url(server_url: str) -> str:
    name = f"pae_test_{uuid.uuid4().hex[:10]}"
    admin = get_engine(url=server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(db_url: str):
    eng = get_engine(url=db_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clean_db(engine):
    """An empty analytics schema (migrations kept) for one test."""
    with engine.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    return engine


S3_BUCKET = "pae-test"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 (a separate process), for the tests of the object-store paths."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def s3_env(monkeypatch, s3_endpoint) -> str:
    """Test credentials in the environment and the bucket ``S3_BUCKET`` on the moto server; returns its endpoint."""
    from core.storage import storage_root

    for k, v in S3_CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    root = storage_root(f"s3://{S3_BUCKET}", s3_endpoint)
    if not root.fs.exists(S3_BUCKET):
        root.fs.mkdir(S3_BUCKET)
    return s3_endpoint


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path / "pae")


def make_events(n_workspaces: int = 3, days: int = 60, end: date = date(2026, 3, 31), seed: int = 0) -> pd.DataFrame:
    """A small seeded event frame in the source contract (independent of the generator)."""
    rng = np.random.default_rng(seed)
    rows = []
    start = end - timedelta(days=days - 1)
    for w in range(n_workspaces):
        users = [f"u{w}-{i}" for i in range(rng.integers(3, 8))]
        agents = [f"a{w}-{i}" for i in range(2)]
        for d in range(days):
            day = datetime.combine(start + timedelta(days=d), datetime.min.time(), tzinfo=timezone.utc)
            for u in users:
                if rng.random() < 0.5:
                    rows.append((day + timedelta(hours=int(rng.integers(0, 24))), f"ws{w}", u, None,
                                 rng.choice(["chat", "search", "api"]), float(rng.gamma(2, 3)), "ok",
                                 int(rng.integers(1, 5))))
            for a in agents:
                calls = int(rng.integers(5, 20))
                errs = int(rng.binomial(calls, 0.1))
                rows.append((day + timedelta(hours=12), f"ws{w}", None, a, "automation", calls * 0.5, "ok", calls))
                if errs:
                    rows.append((day + timedelta(hours=13), f"ws{w}", None, a, "automation", 0.0, "error", errs))
    return pd.DataFrame(rows, columns=["event_time", "workspace_id", "user_id", "agent_id", "feature", "credits",
                                       "status", "count"])
