"""
### Predictive analytics, on demand

One on-demand prediction job (`analytics.prediction_jobs`) for one workspace, triggered by the API
(`POST /api/analytics/predictions/generate`) through Airflow's REST API with the job id as the `job_id` param
when `PAE_AIRFLOW_API_URL` is set. The task calls `pipelines.jobs.runner.run_job`, the code `pae worker` runs:
it claims the job under a lease (so it never runs twice at once, and a retry after another worker finished it
does nothing), computes, publishes the rows (scenario `on_demand`) and marks the job succeeded or failed.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 1,
    "retry_delay": timedelta(seconds=30),
    "execution_timeout": timedelta(minutes=30),
}


@dag(
    dag_id="predictive_analytics_on_demand",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=8,
    default_args=DEFAULT_ARGS,
    tags=["predictive-analytics", "on-demand", "ml"],
    doc_md=__doc__,
    params={"job_id": Param(None, type=["null", "string"], description="analytics.prediction_jobs.id to run.")},
)
def predictive_analytics_on_demand():
    @task
    def run_prediction_job() -> dict:
        from pipelines.jobs.runner import run_job_step

        return run_job_step(get_current_context()["params"].get("job_id"))

    run_prediction_job()


predictive_analytics_on_demand()
