"""Scale-out for real: the retrain and nightly DAGs on Airflow's CeleryExecutor with two workers on loopback.

api-server, scheduler, dag-processor and two Celery workers run as separate processes, with the machine's
Redis as broker and a PostgreSQL metadata database. Runs are triggered through the REST API: the retrain DAG
trains every kind through the day before, then the nightly DAG scores with those versions. Both must succeed,
their mapped shards must run on both workers, every kind must have scored with its stored version (not trained
inline), and the predictions must equal those of ``pae retrain`` then ``pae run`` for the same dates on the
same data.

No task reads another machine's disk: each worker has its own ``data_dir``, staging, the offline feature store,
the shard outputs and merged frames (``runs_root``) and MLflow's artifacts are on an S3 server (moto, on loopback,
started by the test; the compose file's MinIO in production) and MLflow's runs and registry in PostgreSQL. The
``pae run`` it is compared with keeps everything on its local disk, as by default."""
from __future__ import annotations

import subprocess
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from core.db import get_engine, migrate
from core.storage import storage_root
from core.settings import Settings
from pipelines.airflow_env import DAG_ID
from pipelines.cluster import LocalCluster, free_port
from pipelines.ingest.load import load_events
from pipelines.nightly import extract_step, features_step, run_nightly
from pipelines.retrain import retrain, retrainable_kinds
from pipelines.registry import configure
from pipelines.simulator.generate import generate_platform
from tests.conftest import S3_BUCKET

pytestmark = pytest.mark.slow
END = date(2026, 6, 30)
# not imported from the DAG file: importing airflow at collection, before configure_airflow, would point every
# later in-process DAG test at an unmigrated default metadata database
RETRAIN_DAG_ID = "predictive_analytics_retrain"
TRAINED = END - timedelta(days=1)  # the versions the night of END scores with are trained through the day before
CHECKSUM = """
select count(*), md5(string_agg(concat_ws('|', workspace_id, prediction_type, target_metric, dimension, granularity,
       scenario, prediction_date, prediction_hour, predicted_value, confidence_lower, confidence_upper),
       ',' order by workspace_id, prediction_type, target_metric, dimension, granularity, scenario,
       prediction_date, prediction_hour)) from analytics.predictions
"""
CHURN_CHECKSUM = """
select count(*), md5(string_agg(concat_ws('|', user_id, prediction_date, churn_probability, risk_score,
       days_until_churn, arm), ',' order by user_id, prediction_date)) from analytics.churn_predictions
"""


def _database(server_url: str, name: str) -> str:
    admin = get_engine(url=server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        conn.execute(sa.text(f'create database "{name}"'))
    admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _redis_available() -> bool:
    return subprocess.run(["redis-cli", "-n", "7", "ping"], capture_output=True, text=True).stdout.strip() == "PONG"


@pytest.mark.skipif(not _redis_available(), reason="needs Redis on 127.0.0.1:6379 (the machine's broker)")
def test_nightly_dag_on_two_celery_workers_matches_pae_run(server_url, tmp_path, s3_env, monkeypatch):
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)  # set by configure() below; restored after
    tag = uuid.uuid4().hex[:8]
    generate_platform(8, 200, seed=3, out_dir=tmp_path / "gen", end_date=END)
    results = {}
    for mode in ("celery", "pae_run"):
        url = _database(server_url, f"pae_cluster_{mode}_{tag}")
        engine = get_engine(url=url)
        migrate(engine)
        load_events(engine, tmp_path / "gen" / "events", tmp_path / "rejects")
        settings = Settings(database_url=url, data_dir=tmp_path / mode, shards=4, api_key_pepper="cluster")
        if mode == "celery":
            settings = settings.model_copy(update={
                "storage_uri": f"s3://{S3_BUCKET}/cluster-{tag}", "s3_endpoint_url": s3_env,
                "mlflow_tracking_uri": _database(server_url, f"pae_cluster_mlflow_{tag}")})
            configure(settings).search_experiments()  # MLflow's tables, made here (two workers would race)
            _previous_night(settings)  # staged events and features of the day before, in the bucket
            cluster = LocalCluster(settings, home=tmp_path / "airflow", broker_url="redis://127.0.0.1:6379/7",
                                   metadata_db=f"pae_airflow_{tag}", port=free_port(), workers=2,
                                   worker_data_dirs=True, queue=f"pae-{tag}")  # its own queue: runs may overlap
            with cluster:
                for dag_id, conf, mapped in (
                        (RETRAIN_DAG_ID, {"run_date": TRAINED.isoformat(), "reason": "manual", "kinds": "all"}, "train"),
                        (DAG_ID, {"run_date": END.isoformat()}, "predict_")):
                    run_id = cluster.trigger(dag_id, conf)
                    state = cluster.wait(dag_id, run_id)
                    tis = cluster.task_instances(dag_id, run_id)
                    assert state == "success", [(t["task_id"], t["state"]) for t in tis if t["state"] != "success"]
                    shard_hosts = {t["hostname"] for t in tis if t["task_id"].startswith(mapped)}
                    assert shard_hosts == {"worker-1", "worker-2"}, (dag_id, shard_hosts)
            _assert_shared_through_the_bucket(settings, engine, tag)
        else:
            _previous_night(settings)
            for kind in retrainable_kinds():
                retrain(kind, "manual", TRAINED.isoformat(), settings)
            run_nightly(END, settings)
        with engine.connect() as conn:
            results[mode] = (conn.execute(sa.text(CHECKSUM)).one(), conn.execute(sa.text(CHURN_CHECKSUM)).one())
            modes = dict(conn.execute(sa.text(
                "select step, details->'details'->>'mode' from analytics.pipeline_runs"
                " where logical_date = :d and step like 'finalize_%'"), {"d": END}).all())
        engine.dispose()
        # every kind scored with the version its retrain stored (downloaded from the bucket on the workers)
        assert set(modes) == {f"finalize_{k}" for k in retrainable_kinds()} and set(modes.values()) == {"scored"}, \
            (mode, modes)
    assert results["celery"][0][0] > 0 and results["celery"][1][0] > 0
    assert results["celery"] == results["pae_run"]


def _previous_night(settings: Settings) -> None:
    """What the night before left: its staged events and features (the retrain trains on them)."""
    extract_step(TRAINED.isoformat(), settings)
    features_step(TRAINED.isoformat(), settings)


def _assert_shared_through_the_bucket(settings: Settings, engine, tag: str) -> None:
    """The shards handed on URIs; staging, the store, shard outputs and MLflow artifacts are in the bucket."""
    with engine.connect() as conn:
        paths = conn.execute(sa.text("select step, details->>'path' from analytics.pipeline_runs"
                                     " where step like 'predict_%' and details->>'path' is not null")).all()
    assert paths and all(p.startswith(f"s3://{S3_BUCKET}/cluster-{tag}/runs/") for _, p in paths), paths
    root = storage_root(settings.storage_uri, settings.s3_endpoint_url)
    keys = root.fs.find(f"{S3_BUCKET}/cluster-{tag}")
    for part in ("staging/events/", "offline_store/", f"runs/forecasts/as_of={END.isoformat()}/shard=3/",
                 f"runs/forecasts/as_of={END.isoformat()}/forecast.parquet", "mlflow/"):
        assert any(f"cluster-{tag}/{part}" in k for k in keys), part
    for worker in ("worker-1", "worker-2"):  # each worker's own disk holds no staging or store
        local = settings.data_dir / worker
        assert not (local / "staging").exists() and not (local / "offline_store").exists()
        assert not (local / "mlartifacts").exists()


@pytest.fixture(autouse=True)
def _drop_databases(server_url):
    yield
    admin = get_engine(url=server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        names = conn.execute(sa.text("select datname from pg_database where datname like 'pae_cluster_%'"
                                     " or datname like 'pae_airflow_%'")).scalars().all()
        for name in names:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()
