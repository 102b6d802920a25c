"""trigger_retrain through Airflow's own task runner (``dag.test()``): the nightly DAG's task starts a run of the
retrain DAG, with no TriggerDagRunOperator in the DAG file."""
from __future__ import annotations

import pytest

from core.settings import Settings
from pipelines.airflow_env import DAG_ID, configure_airflow, load_dag

pytestmark = pytest.mark.slow


def test_trigger_retrain_task_creates_the_retrain_run(tmp_path):
    configure_airflow(Settings(data_dir=tmp_path))
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    # only the trigger task: the nightly steps before it need a platform and are tested elsewhere
    dag = load_dag(DAG_ID).partial_subset(task_ids=["trigger_retrain"], include_upstream=False,
                                          include_downstream=False)
    nightly = dag.test(run_conf={"run_date": "2026-03-31"})
    assert str(nightly.state) == "success"
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "predictive_analytics_retrain").all()
        assert [(r.run_id, str(r.run_type), r.conf) for r in runs] == [
            (f"drift__{nightly.run_id}", "operator_triggered", {"reason": "drift", "kinds": "all"})]
