"""The on-demand DAG: parses cleanly (parse time: test_dag_integrity.py), one task taking the job id, and the
task's function runs a job."""
import pytest
import sqlalchemy as sa

from core.jobs import ON_DEMAND_DAG_ID
from core.settings import Settings
from tests.dags.test_dag_integrity import dagbag  # noqa: F401 (fixture)


def test_on_demand_dag_parses_with_one_task_and_a_job_id_param(dagbag):  # noqa: F811
    assert dagbag.import_errors == {}
    dag = dagbag.get_dag(ON_DEMAND_DAG_ID)
    assert dag is not None and dag.catchup is False
    assert [t.task_id for t in dag.tasks] == ["run_prediction_job"]
    assert "job_id" in dag.params and dag.tags and dag.doc_md
    task = dag.get_task("run_prediction_job")
    assert task.owner == "data-platform" and task.retries >= 1 and task.execution_timeout is not None


def test_the_task_function_needs_a_job_id_and_skips_a_finished_job(clean_db, db_url, tmp_path):
    from pipelines.jobs.runner import run_job_step

    with pytest.raises(ValueError, match="job_id"):
        run_job_step(None)
    with clean_db.begin() as conn:
        job_id = conn.execute(sa.text(
            "insert into analytics.prediction_jobs (workspace_id, prediction_type, target_metric, horizon,"
            " request_hash, status) values (gen_random_uuid(), 'credit_consumption', 'credits', 7, 'h',"
            " 'succeeded') returning id")).scalar()
    out = run_job_step(str(job_id), Settings(database_url=db_url, data_dir=tmp_path))
    assert out == {"job_id": str(job_id), "status": "not_claimable"}
