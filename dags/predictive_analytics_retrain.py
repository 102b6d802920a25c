"""
### Predictive analytics, retraining

Trains a new model version of a prediction kind apart from the nightly run, which scores with the champion
(README, "Retraining and scoring"). Weekly by default (`PAE_RETRAIN_SCHEDULE`, cron, UTC); the nightly DAG also
triggers it when its drift check or realised-accuracy alert has recorded a pending retrain.

1. **start**: for each kind asked (`kinds`, default every kind whose training is split from scoring) opens its row
   in `analytics.retrain_runs` (taking over a pending request and its reason: drift,
   accuracy; else this run's `reason` param: schedule for scheduled runs), for `run_date` (default: the last
   date whose features were built);
2. **plan** lists every kind's training units (e.g. consumption's workspace shards), **train** is mapped over
   them (for consumption: holdout evaluation, rolling-origin backtests, per-series member weights, conformal
   calibration, fits);
3. **finish** (one per kind) merges them, tracks the run in MLflow with its scoring artifact, registers the version
   (champion/challenger) and records figures, version and decision on the row.

If a task fails, **record_failure** marks the rows failed and fails itself, so the DAG run shows failed. Nothing is published here. Tasks pass only dates, shard ids, ids and store paths; the work is in
`pipelines/retrain.py`.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from pipelines.kinds import kind_names

RETRAIN_DAG_ID = "predictive_analytics_retrain"
DEFAULT_SCHEDULE = "0 3 * * 0"  # core.settings.Settings.retrain_schedule (not imported: keep parsing light)

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(minutes=60),
}
_schedule = os.environ.get("PAE_RETRAIN_SCHEDULE", DEFAULT_SCHEDULE)


@dag(
    dag_id=RETRAIN_DAG_ID,
    schedule=None if _schedule == "none" else _schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["predictive-analytics", "retrain", "ml"],
    doc_md=__doc__,
    params={
        "run_date": Param(None, type=["null", "string"], format="date",
                          description="Train on data through this date (YYYY-MM-DD); default: the last features date."),
        "reason": Param("schedule", type="string", enum=["schedule", "drift", "accuracy", "manual", "no-champion"],
                        description="Why this retrain runs (a pending request's reason takes precedence)."),
        "kinds": Param("all", type="string",
                       description="Comma-separated prediction kinds to retrain, or 'all' (every kind whose training "
                                   f"is split from scoring; kinds: {', '.join(kind_names())})."),
    },
)
def predictive_analytics_retrain():
    @task
    def start() -> list[dict]:
        from pipelines.retrain import start_retrains

        params = get_current_context()["params"]
        return start_retrains(params["kinds"], params["reason"], params.get("run_date"))

    @task
    def plan(runs: list[dict]) -> list[dict]:
        from pipelines.retrain import retrain_work

        return retrain_work(list(runs))

    @task(execution_timeout=timedelta(minutes=90))
    def train(work: dict) -> dict:
        from pipelines.retrain import retrain_shard_step

        return {**retrain_shard_step(work["run_date"], work["shard"], kind=work["kind"]), "kind": work["kind"]}

    @task
    def finish(run: dict, refs: list[dict]) -> dict:
        from pipelines.retrain import finish_retrain

        mine = [r for r in refs if r.get("kind") == run["kind"]]
        return finish_retrain(run["retrain_id"], run["run_date"], mine, kind=run["kind"])

    @task(trigger_rule="one_failed")
    def record_failure(runs: list[dict]) -> None:
        """Mark the rows failed, then fail this task (no retry) so the DAG run shows failed too (the only leaf)."""
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.retrain import fail_retrain

        for r in runs:
            fail_retrain(r["retrain_id"], "a train or finish task failed (see the Airflow task logs)")
        raise AirflowFailException(f"retrain failed for {[r['kind'] for r in runs]}: a train or finish task failed; "
                           "the rows in analytics.retrain_runs are marked failed")

    runs = start()
    parts = train.expand(work=plan(runs))
    finished = finish.partial(refs=parts).expand(run=runs)
    failure = record_failure(runs)
    [parts, finished] >> failure


predictive_analytics_retrain()
