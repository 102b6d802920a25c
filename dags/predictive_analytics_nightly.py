"""
### Predictive analytics, nightly

Turns the day's usage events into predictions in PostgreSQL, for one date `D` (the logical date, or the
`run_date` param of a manual run):

1. **extract** source events into date partitions (backfills on the first run, re-reads late days);
2. **validate_raw**: Great Expectations gate on the staged events;
3. **build_features**: daily aggregates and feature sets as of `D` (offline + online store);
4. **validate_features**: gate on the feature sets;
5. **forecast_consumption**, mapped over workspace shards, and **score_churn**: train, backtest, track in
   MLflow, register (champion/challenger);
6. **publish**: one transaction per prediction set (upsert);
7. **record_run** in `analytics.pipeline_runs`.

A failed gate or model step stops the run before anything is published, so yesterday's predictions stay
served. Tasks only pass references (dates, shard ids, store paths, MLflow run ids) through XCom; the work
is in `pipelines/nightly.py`.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=30),
}


@dag(
    dag_id="predictive_analytics_nightly",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["predictive-analytics", "nightly", "ml"],
    doc_md=__doc__,
    params={
        "run_date": Param(None, type=["null", "string"], format="date",
                          description="Date to process (YYYY-MM-DD); default: the logical date."),
    },
)
def predictive_analytics_nightly():
    @task
    def resolve_date() -> str:
        from pipelines.nightly import resolve_run_date

        ctx = get_current_context()
        dag_run = ctx["dag_run"]
        return resolve_run_date(ctx["params"].get("run_date"), dag_run.logical_date, dag_run.run_after).isoformat()

    @task
    def extract(run_date: str) -> dict:
        from pipelines.nightly import extract_step

        return extract_step(run_date)

    @task
    def validate_raw(run_date: str, extracted: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.nightly import validate_raw_step
        from pipelines.quality import QualityGateError

        try:
            return validate_raw_step(run_date)
        except QualityGateError as exc:  # bad data does not heal on retry: fail now, with the report
            raise AirflowFailException(str(exc)) from exc

    @task
    def build_features(run_date: str, validated: dict) -> dict:
        from pipelines.nightly import features_step

        return features_step(run_date)

    @task
    def validate_features(run_date: str, features: dict) -> list[int]:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.nightly import validate_features_step, workspace_shards
        from pipelines.quality import QualityGateError

        try:
            validate_features_step(run_date)
        except QualityGateError as exc:
            raise AirflowFailException(str(exc)) from exc
        return workspace_shards()

    @task(execution_timeout=timedelta(minutes=60))
    def forecast_consumption(shard: int, run_date: str) -> dict:
        from pipelines.nightly import forecast_shard_step

        return forecast_shard_step(run_date, shard)

    @task(execution_timeout=timedelta(minutes=60))
    def score_churn(run_date: str, shards: list[int]) -> dict:
        from pipelines.nightly import churn_step

        return churn_step(run_date)

    @task
    def publish(run_date: str, forecasts: list[dict], churn: dict) -> dict:
        from pipelines.nightly import publish_step

        # a slice is one request; iterating asks for one item past the end and logs a 404
        return publish_step(run_date, list(forecasts[:]), churn)

    @task
    def record_run(run_date: str, published: dict) -> dict:
        from pipelines.nightly import record_run_step

        return record_run_step(run_date, published)

    run_date = resolve_date()
    extracted = extract(run_date)
    features = build_features(run_date, validate_raw(run_date, extracted))
    shards = validate_features(run_date, features)
    forecasts = forecast_consumption.partial(run_date=run_date).expand(shard=shards)
    churn = score_churn(run_date, shards)
    record_run(run_date, publish(run_date, forecasts, churn))


predictive_analytics_nightly()
