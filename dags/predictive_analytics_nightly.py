"""
### Predictive analytics, nightly

Turns the day's usage events into predictions in PostgreSQL, for one date `D` (the logical date, or the
`run_date` param of a manual run):

1. **extract** source events into date partitions (backfills on the first run, re-reads late days);
2. **validate_raw**: Great Expectations gate on the staged events;
3. **refresh_features** rebuilds the stale months of the daily and hourly aggregates; **build_features** is mapped
   over workspace shards (`PAE_SHARDS`), each building every feature set for its workspaces (offline parts,
   its database rows); **merge_features** merges the parts into the offline store as of `D`;
4. **validate_features**: gate on the feature sets;
5. for each prediction kind (`pipelines/kinds.py`: consumption, churn, ...): **plan_<kind>** lists its shards,
   **predict_<kind>** is mapped over them (train, backtest, predict), **finalize_<kind>** merges them,
   tracks the run in MLflow and registers it (champion/challenger);
6. **plan_publish** lists each kind's prediction set in workspace shards; **publish_shard** is mapped over them
   (one transaction each, upsert); **publish** then moves the champion aliases once every shard committed, and
   **monitor** scores the realised accuracy of earlier predictions whose days have now happened, and alerts when it
   is worse than the backtest promised;
7. **record_run** in `analytics.pipeline_runs`;
8. **retrain_pending** / **trigger_retrain**: when a kind's drift check, accuracy alert or champion age recorded a
   pending retrain (`analytics.retrain_runs`), trigger `predictive_analytics_retrain` for those kinds, which takes
   the requests over (each keeps its reason).

The `kinds` param runs a subset (e.g. `["churn"]`); the other kinds' tasks return "skipped" at once.

A failed gate or model step stops the run before anything is published, so yesterday's predictions stay
served; a failed publish shard leaves its workspaces on yesterday's predictions (and no alias moves). Tasks only
pass references (dates, shard ids, store paths, MLflow run ids) through XCom; the work is in
`pipelines/nightly.py`.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from pipelines.kinds import kind_names

RETRAIN_DAG_ID = "predictive_analytics_retrain"
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
    # PAE_NIGHTLY_SCHEDULE=none: runs only when triggered (the cluster test, on-demand setups)
    schedule=None if os.environ.get("PAE_NIGHTLY_SCHEDULE", "@daily") == "none" else os.environ.get(
        "PAE_NIGHTLY_SCHEDULE", "@daily"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["predictive-analytics", "nightly", "ml"],
    doc_md=__doc__,
    params={
        "run_date": Param(None, type=["null", "string"], format="date",
                          description="Date to process (YYYY-MM-DD); default: the logical date."),
        "kinds": Param(kind_names(), type="array", items={"type": "string", "enum": kind_names()},
                       description="Prediction kinds to run; default: all."),
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
    def refresh_features(run_date: str, validated: dict) -> dict:
        from pipelines.nightly import refresh_features_step

        return refresh_features_step(run_date)

    @task
    def plan_features(refreshed: dict) -> list[int]:
        from pipelines.nightly import feature_shards_step

        return feature_shards_step(refreshed)

    @task(execution_timeout=timedelta(minutes=60))
    def build_features(shard: int, run_date: str, refreshed: dict) -> dict:
        from pipelines.nightly import features_shard_step

        return features_shard_step(run_date, shard, refreshed)

    @task
    def merge_features(run_date: str, refreshed: dict, parts: list[dict]) -> dict:
        from pipelines.nightly import merge_features_step

        return merge_features_step(run_date, refreshed, list(parts[:]))

    @task
    def validate_features(run_date: str, features: dict) -> list[str]:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.kinds import select_kinds
        from pipelines.nightly import validate_features_step
        from pipelines.quality import QualityGateError

        try:
            validate_features_step(run_date)
        except QualityGateError as exc:
            raise AirflowFailException(str(exc)) from exc
        return select_kinds(get_current_context()["params"].get("kinds"))

    @task
    def plan(kind: str, selected: list[str]) -> list[int]:
        from pipelines.nightly import kind_shards_step

        return kind_shards_step(kind)

    @task(execution_timeout=timedelta(minutes=60))
    def predict(shard: int, run_date: str, kind: str, selected: list[str]) -> dict:
        from pipelines.nightly import predict_step

        return predict_step(run_date, kind, shard, selected).model_dump(mode="json")

    @task
    def finalize(run_date: str, kind: str, shards: list[dict], selected: list[str]) -> dict:
        from pipelines.nightly import finalize_step

        # a slice is one request; iterating asks for one item past the end and logs a 404
        return finalize_step(run_date, kind, list(shards[:]), selected).model_dump(mode="json")

    @task
    def plan_publish(results: list[dict]) -> list[dict]:
        from pipelines.nightly import publish_parts_step

        return publish_parts_step(list(results))

    @task(execution_timeout=timedelta(minutes=60))
    def publish_shard(part: dict, run_date: str) -> dict:
        from pipelines.nightly import publish_part_step

        return publish_part_step(run_date, part).model_dump(mode="json")

    @task(trigger_rule="none_failed")  # runs when nothing was publishable (an empty map is skipped)
    def publish(run_date: str, results: list[dict], parts: list[dict]) -> list[dict]:
        from pipelines.nightly import publish_step

        done = list(parts[:]) if parts is not None else []
        return [p.model_dump(mode="json") for p in publish_step(run_date, results, parts=done)]

    @task
    def monitor(run_date: str, published: list[dict]) -> dict:
        from pipelines.nightly import monitor_step

        return monitor_step(run_date)

    @task
    def record_run(run_date: str, published: list[dict], monitored: dict) -> dict:
        from pipelines.nightly import record_run_step

        return record_run_step(run_date, published)

    @task.short_circuit
    def retrain_pending(recorded: dict) -> list[str]:
        """The kinds whose drift check, accuracy alert or champion age recorded a pending retrain
        (`analytics.retrain_runs`); none: the trigger is skipped."""
        from core.db import get_engine
        from pipelines.retrain_runs import pending_kinds

        return pending_kinds(get_engine())

    @task
    def trigger_retrain(dag_run=None, ti=None) -> None:
        """Trigger `predictive_analytics_retrain` for the kinds with a pending request (each keeps its reason). The
        task runner starts the run when a task
        raises `DagRunTriggerException` (what `TriggerDagRunOperator` raises), so no operator import at parse time;
        the run id follows this run's, so a retry does not start a second one."""
        from datetime import timezone

        from airflow.sdk.exceptions import DagRunTriggerException

        kinds = ",".join(ti.xcom_pull(task_ids="retrain_pending") or []) or "all"
        raise DagRunTriggerException(
            trigger_dag_id=RETRAIN_DAG_ID, dag_run_id=f"drift__{dag_run.run_id}",
            conf={"reason": "drift", "kinds": kinds},
            logical_date=None, run_after=datetime.now(timezone.utc), reset_dag_run=False,
            skip_when_already_exists=True, wait_for_completion=False, allowed_states=["success"],
            failed_states=["failed"], poke_interval=60, deferrable=False)

    run_date = resolve_date()
    extracted = extract(run_date)
    refreshed = refresh_features(run_date, validate_raw(run_date, extracted))
    feature_parts = build_features.partial(run_date=run_date, refreshed=refreshed).expand(shard=plan_features(refreshed))
    features = merge_features(run_date, refreshed, feature_parts)
    selected = validate_features(run_date, features)
    results = []
    for kind in kind_names():
        shards = plan.override(task_id=f"plan_{kind}")(kind, selected)
        parts = predict.override(task_id=f"predict_{kind}").partial(run_date=run_date, kind=kind,
                                                                     selected=selected).expand(shard=shards)
        results.append(finalize.override(task_id=f"finalize_{kind}")(run_date, kind, parts, selected))
    published_parts = publish_shard.partial(run_date=run_date).expand(part=plan_publish(results))
    published = publish(run_date, results, published_parts)
    recorded = record_run(run_date, published, monitor(run_date, published))
    # an early retrain (drift, accuracy alert): the retrain DAG takes the pending request over
    retrain_pending(recorded) >> trigger_retrain()


predictive_analytics_nightly()
