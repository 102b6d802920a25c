"""The retraining DAG parses, has the designed shape and takes its schedule from the environment."""
import os
import subprocess
import sys

from core.settings import REPO_ROOT, Settings
from pipelines.airflow_env import configure_airflow

DAG_FILE = REPO_ROOT / "dags" / "predictive_analytics_retrain.py"


def test_retrain_dag_parses_with_its_shape(tmp_path):
    configure_airflow(Settings(data_dir=tmp_path / "af"))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    dag = bag.get_dag("predictive_analytics_retrain")
    assert dag.max_active_runs == 1 and dag.catchup is False and dag.tags and dag.doc_md
    assert {"run_date", "reason", "kinds"} <= set(dag.params)
    down = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert down["start"] == ["finish", "plan", "record_failure"]
    assert down["plan"] == ["train"] and down["train"] == ["finish", "record_failure"]
    assert down["finish"] == ["record_failure"]
    assert type(dag.get_task("train")).__name__.endswith("MappedOperator")
    assert type(dag.get_task("finish")).__name__.endswith("MappedOperator")  # one finish per kind
    for t in dag.tasks:
        assert t.owner == "data-platform" and t.retries >= 1 and t.execution_timeout is not None
    assert Settings().retrain_schedule == "0 3 * * 0"  # the DAG's default, kept in step with the setting


def test_schedule_comes_from_the_environment_and_parsing_stays_light():
    code = ("import sys, importlib.util as u; s = u.spec_from_file_location('d', sys.argv[1]);"
            "m = u.module_from_spec(s); s.loader.exec_module(m); print(m._schedule);"
            "print(','.join(x for x in ('pandas', 'mlflow', 'xgboost', 'sklearn') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(DAG_FILE)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PAE_RETRAIN_SCHEDULE": "@daily"}).stdout.split("\n")
    assert out[0] == "@daily" and out[1] == ""
