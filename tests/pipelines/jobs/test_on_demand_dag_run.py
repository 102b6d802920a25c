"""The on-demand DAG through Airflow's ``dag.test()`` with a job id: its task runs the job the worker would."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.jobs import ON_DEMAND_DAG_ID
from core.settings import get_settings
from pipelines.airflow_env import configure_airflow, load_dag
from services.prediction_jobs import enqueue_job
from tests.pipelines.jobs.conftest import WS0

pytestmark = pytest.mark.slow


def test_dag_run_takes_the_job_to_succeeded(platform, engine, writer, monkeypatch):
    job = enqueue_job(writer, WS0, "credit_consumption", "credits_cumulative", 3, {}, None, None, "dag").job
    env = {"DATABASE_URL": platform.database_url, "PAE_DATA_DIR": str(platform.data_dir), "PAE_THREADS": "1",
           "PAE_FORECAST_BACKTEST_WINDOWS": "1", "PAE_FORECAST_BACKTEST_HORIZON_DAYS": "14",
           "PAE_FORECAST_REFIT_TOTALS": "false", "PAE_FORECAST_ROBUST": "false"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        configure_airflow(platform)
        dag_run = load_dag(ON_DEMAND_DAG_ID).test(run_conf={"job_id": str(job["id"])})
    finally:
        get_settings.cache_clear()
    assert str(dag_run.state) == "success"
    with engine.connect() as conn:
        row = conn.execute(sa.text("select status, attempts, lease_owner, result from analytics.prediction_jobs"
                                   " where id = :id"), {"id": str(job["id"])}).mappings().one()
    assert row["status"] == "succeeded" and row["attempts"] == 1 and row["result"]["rows"] == 3
