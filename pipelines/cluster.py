"""Airflow's real components on loopback with the CeleryExecutor: the scale-out setup, on one machine.

``LocalCluster`` starts ``api-server``, ``scheduler``, ``dag-processor`` and N ``celery worker`` processes
with a PostgreSQL metadata database (on ``DATABASE_URL``'s server) and Redis as the broker, runs the repo's
DAGs from the repo's ``airflow.cfg``, and talks to them through Airflow's REST API. ``pae cluster`` (and
``make cluster``) starts it for a person to try, with the UI on 127.0.0.1; the slow test
``tests/dags/test_celery_cluster.py`` triggers the nightly DAG on it. ``docker/docker-compose.yml`` holds
the same settings for separate machines.

Facts that matter here: each worker reports its own name through ``hostname_callable``
(``worker_hostname``: ``PAE_WORKER_NAME``), so task instances show which worker ran them; the components
share one JWT secret; workers skip their log server (it would bind every interface); the DAGs'
schedules are off (``PAE_NIGHTLY_SCHEDULE=none``, ``PAE_RETRAIN_SCHEDULE=none``) so the scheduler only runs what
is triggered (unpausing a DAG with a schedule would also start its latest interval).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from core.db import get_engine
from core.settings import REPO_ROOT, Settings

COMPONENTS = ("api-server", "scheduler", "dag-processor")


def worker_hostname() -> str:
    """Airflow ``hostname_callable``: the worker's own name, so two workers on one machine are told apart."""
    return os.environ.get("PAE_WORKER_NAME") or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalCluster:
    settings: Settings
    home: Path
    broker_url: str = "redis://127.0.0.1:6379/0"
    metadata_db: str = "pae_airflow"
    port: int = 8080
    workers: int = 2
    # each worker its own data_dir (``<data_dir>/<worker>``), as on separate machines: everything tasks hand on
    # must then go through storage_uri, the database and the MLflow tracking store
    worker_data_dirs: bool = False
    # the Celery queue the tasks go to and the workers serve: another cluster on the same Redis database (e.g. a
    # second test run) must use another one, or its workers take these tasks (and fail: another JWT secret)
    queue: str = "default"
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metadata_url(self) -> str:
        if not self.settings.database_url:
            raise ValueError("the Celery cluster needs a PostgreSQL server for Airflow's metadata: set DATABASE_URL "
                             "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)")
        url = sa.engine.make_url(self.settings.database_url).set(drivername="postgresql+psycopg2",
                                                                database=self.metadata_db)
        return url.render_as_string(hide_password=False)

    def env(self) -> dict[str, str]:
        secret_file = self.home / "jwt_secret"
        if not secret_file.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(secrets.token_hex(32))
        meta = self.metadata_url()
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW_CONFIG": str(REPO_ROOT / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "pipelines.cluster.worker_hostname",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta.replace("+psycopg2", ""),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text(),
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "PAE_NIGHTLY_SCHEDULE": "none",
            "PAE_RETRAIN_SCHEDULE": "none",
            "DATABASE_URL": self.settings.database_url or "",
            "PAE_DATA_DIR": str(self.settings.data_dir),
            "PAE_SHARDS": str(self.settings.shards),
            "MLFLOW_TRACKING_URI": self.settings.tracking_uri,
            **({"PAE_STORAGE_URI": self.settings.storage_uri} if self.settings.storage_uri else {}),
            **({"PAE_S3_ENDPOINT_URL": self.settings.s3_endpoint_url} if self.settings.s3_endpoint_url else {}),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }

    def _airflow(self) -> str:
        return str(Path(sys.executable).with_name("airflow"))

    def _create_metadata_db(self) -> None:
        admin = get_engine(self.settings).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(sa.text("select 1 from pg_database where datname = :n"),
                                  {"n": self.metadata_db}).scalar()
            if not exists:
                conn.execute(sa.text(f'create database "{self.metadata_db}"'))
        admin.dispose()

    def start(self, timeout: float = 180) -> None:
        """Migrate the metadata DB, start every component, and wait until the API answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        self._create_metadata_db()
        env = self.env()
        subprocess.run([self._airflow(), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        logs = self.home / "logs"
        logs.mkdir(exist_ok=True)
        commands = {
            "api-server": [self._airflow(), "api-server", "--host", "127.0.0.1", "--port", str(self.port),
                           "--workers", "1"],
            "scheduler": [self._airflow(), "scheduler"],
            "dag-processor": [self._airflow(), "dag-processor"],
        }
        for i in range(1, self.workers + 1):
            commands[f"worker-{i}"] = [self._airflow(), "celery", "worker", "--concurrency", "1", "--queues",
                                       self.queue, "--skip-serve-logs", "--celery-hostname", f"worker-{i}@%h"]
        for name, cmd in commands.items():
            out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
            own = {"PAE_DATA_DIR": str(self.settings.data_dir / name)} \
                if self.worker_data_dirs and name.startswith("worker-") else {}
            self.processes[name] = subprocess.Popen(
                cmd, env={**env, "PAE_WORKER_NAME": name, **own}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                self.request("GET", "/api/v2/monitor/health")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(1)
        raise TimeoutError(f"the Airflow API did not answer on {self.base_url} within {timeout:.0f}s; "
                           f"see {logs}")

    def _check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"Airflow components exited: {dead}; see {self.home / 'logs'}")

    def stop(self, grace: float = 20) -> None:
        """Stop every component (SIGTERM to each process group, then SIGKILL after ``grace`` seconds)."""
        for p in self.processes.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.processes.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.processes.clear()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- REST API -------------------------------------------------------------------------------------
    _token: str | None = None

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if not path.startswith("/auth") and not path.endswith("/health"):
            if self._token is None:
                self._token = self.request("GET", "/auth/token")["access_token"]
            headers["Authorization"] = f"Bearer {self._token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def trigger(self, dag_id: str, conf: dict, timeout: float = 120) -> str:
        """Unpause ``dag_id`` once the dag-processor has parsed it and trigger a run; returns the run id."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
                break
            except urllib.error.HTTPError as exc:
                if exc.code != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(2)
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def wait(self, dag_id: str, run_id: str, timeout: float = 1800) -> str:
        """Wait for a run to finish; returns its final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            state = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(3)
        raise TimeoutError(f"run {run_id} of {dag_id} did not finish within {timeout:.0f}s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]


def run_cluster(settings: Settings, port: int = 8080, workers: int = 2, queue: str = "default",
                worker_data_dirs: bool = False, broker_url: str = "redis://127.0.0.1:6379/0") -> int:
    """``pae cluster``: start the components and keep them up until Ctrl-C, then stop them cleanly."""
    if worker_data_dirs and not settings.storage_uri:
        print("error: --worker-data-dirs needs PAE_STORAGE_URI (shared storage): a worker's own disk would hold "
              "what the next task, on another worker, must read", file=sys.stderr)
        return 2
    cluster = LocalCluster(settings, home=(settings.data_dir / "airflow-cluster").resolve(), port=port,
                           workers=workers, queue=queue, worker_data_dirs=worker_data_dirs, broker_url=broker_url)
    try:
        cluster.start()
    except (ValueError, TimeoutError, RuntimeError) as exc:
        cluster.stop()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Airflow (CeleryExecutor, {workers} workers) is up: UI and REST API at {cluster.base_url} "
          f"(all users are admins); logs in {cluster.home / 'logs'}. Ctrl-C stops every component.")
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"]:
            cluster._check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        print("stopped")
    return 0
