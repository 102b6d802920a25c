"""Run the repo's DAGs through Airflow with the repo's ``airflow.cfg`` and state under ``data_dir/airflow``."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from core.settings import REPO_ROOT, Settings

DAG_ID = "predictive_analytics_nightly"


def configure_airflow(settings: Settings) -> Path:
    """Set Airflow's environment (before ``airflow`` is imported) and migrate its metadata DB once."""
    home = (settings.data_dir / "airflow").resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(REPO_ROOT / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    for k, v in env.items():
        os.environ.setdefault(k, v)
    if not (home / "airflow.db").exists():
        airflow = Path(sys.executable).with_name("airflow")
        subprocess.run([str(airflow), "db", "migrate"], check=True, env=os.environ.copy(),
                       stdout=subprocess.DEVNULL)
    return home


def load_dag(dag_id: str = DAG_ID):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.get_dag(dag_id)


def run_dag_in_process(settings: Settings, run_date: date, dag_id: str = DAG_ID,
                       kinds: list[str] | None = None) -> str:
    """``dag.test()`` for one date (and optionally a subset of prediction kinds), in this process; returns
    the run's final state."""
    configure_airflow(settings)
    dag = load_dag(dag_id)
    conf = {"run_date": run_date.isoformat(), **({"kinds": kinds} if kinds else {})}
    dag_run = dag.test(run_conf=conf)
    return str(dag_run.state)
