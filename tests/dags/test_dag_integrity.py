"""DagBag integrity: the DAG files import cleanly, fast, and have the designed shape."""
import os
import subprocess
import sys

import pytest

from core.jobs import ON_DEMAND_DAG_ID
from core.settings import REPO_ROOT, Settings
from pipelines.kinds import kind_names
from pipelines.airflow_env import DAG_ID, configure_airflow


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    configure_airflow(Settings(data_dir=tmp_path_factory.mktemp("af")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dag_ids


def test_owner_retries_tags_and_schedule(dagbag):
    for dag_id in dagbag.dag_ids:
        dag = dagbag.get_dag(dag_id)
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no docs"
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            assert t.retries >= 1 and t.execution_timeout is not None, t.task_id
    dag = dagbag.get_dag(DAG_ID)
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert "run_date" in dag.params


def test_task_structure(dagbag):
    dag = dagbag.get_dag(DAG_ID)
    down = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert down["extract"] == ["validate_raw"]
    assert down["validate_raw"] == ["refresh_features"]
    # refresh -> plan -> mapped build over workspace shards -> merge; build and merge also take the refresh result
    assert down["refresh_features"] == ["build_features", "merge_features", "plan_features"]
    assert down["plan_features"] == ["build_features"] and down["build_features"] == ["merge_features"]
    assert type(dag.get_task("build_features")).__name__.endswith("MappedOperator")
    assert down["merge_features"] == ["validate_features"]
    kinds = sorted(kind_names())  # every kind in pipelines/kinds.py gets its chain
    assert {"consumption", "churn", "growth", "agent_errors"} <= set(kinds)
    assert down["validate_features"] == sorted([f"{s}_{k}" for k in kinds for s in ("plan", "predict", "finalize")])
    for k in kinds:  # one plan -> mapped predict -> finalize chain per prediction kind, all into publishing
        assert down[f"plan_{k}"] == [f"predict_{k}"]
        assert down[f"predict_{k}"] == [f"finalize_{k}"]
        assert down[f"finalize_{k}"] == ["plan_publish", "publish"]
        assert type(dag.get_task(f"predict_{k}")).__name__.endswith("MappedOperator")  # mapped over shards
    # plan -> publish_shard mapped over (kind, workspace shard) -> publish, which completes them
    assert down["plan_publish"] == ["publish_shard"] and down["publish_shard"] == ["publish"]
    assert type(dag.get_task("publish_shard")).__name__.endswith("MappedOperator")
    assert dag.get_task("publish").trigger_rule == "none_failed"
    assert down["publish"] == ["monitor", "record_run"] and down["monitor"] == ["record_run"]
    assert sorted(dag.params["kinds"]) == kinds


@pytest.mark.parametrize("dag_id", [DAG_ID, "predictive_analytics_retrain", ON_DEMAND_DAG_ID])
def test_dag_file_parses_fast_without_heavy_imports(dag_id):
    """Parse in a fresh interpreter: under 2 s, and no pandas/mlflow/xgboost import at parse time."""
    code = (
        "import sys, time; t = time.perf_counter();"
        "import importlib.util as u;"
        f"s = u.spec_from_file_location('d', {str(REPO_ROOT / 'dags' / (dag_id + '.py'))!r});"
        "m = u.module_from_spec(s); import airflow.sdk; t0 = time.perf_counter(); s.loader.exec_module(m);"
        "print(time.perf_counter() - t0);"
        "print(','.join(x for x in ('pandas', 'mlflow', 'xgboost', 'prophet', 'sklearn',"
        " 'airflow.providers.standard.operators.trigger_dagrun') if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ}).stdout.split("\n")
    assert float(out[0]) < 2.0
    assert out[1] == "", f"heavy modules imported at parse time: {out[1]}"


def test_trigger_retrain_starts_the_retrain_dag_once_per_run(dagbag):
    """trigger_retrain (after the retrain_pending short-circuit) asks the task runner to start the retrain DAG with
    reason=drift; the run id follows the nightly run's, and an existing run is skipped (a retry starts none)."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import DagRunTriggerException

    dag = dagbag.get_dag(DAG_ID)
    task = dag.get_task("trigger_retrain")
    assert sorted(dag.get_task("retrain_pending").downstream_task_ids) == ["trigger_retrain"]
    assert "predictive_analytics_retrain" in dagbag.dag_ids
    with pytest.raises(DagRunTriggerException) as exc:
        task.python_callable(dag_run=SimpleNamespace(run_id="scheduled__2026-03-01T00:00:00+00:00"),
                             ti=SimpleNamespace(xcom_pull=lambda task_ids: ["churn", "growth"]))
    e = exc.value
    assert e.trigger_dag_id == "predictive_analytics_retrain"
    assert e.conf == {"reason": "drift", "kinds": "churn,growth"}  # the kinds retrain_pending found
    assert e.dag_run_id == "drift__scheduled__2026-03-01T00:00:00+00:00"
    assert e.skip_when_already_exists and not e.wait_for_completion and e.logical_date is None
