"""Run on-demand jobs: claim, compute with the kind's own model code, publish, mark succeeded or failed.

``run_job`` runs one job by id (the Airflow DAG ``predictive_analytics_on_demand`` calls it with the job id it
was triggered with); ``work`` is ``pae worker``'s loop over the queue. Both hold the job under a lease renewed by
a background thread, and publish in the transaction that marks the job succeeded (``pipelines.jobs.queue``).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import date
from typing import Any, Callable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.contracts import CREDIT_CONSUMPTION, PEAK_USAGE
from core.jobs import ON_DEMAND_SCENARIO, JobRequestError, model_version, validate_job_request
from core.settings import Settings
from pipelines.jobs.queue import ClaimedJob, LeaseLost, claim_job, finish, hold, renew_lease
from pipelines.publish import publish_on_demand_predictions

log = logging.getLogger(__name__)

_EXTERNAL_ID = sa.text("select external_id from analytics.entities where entity_type = 'workspace' and entity_id = :id")


def worker_id() -> str:
    """A worker's identity in ``lease_owner``: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _as_of(params: dict[str, Any], default: date, latest: date, what: str) -> date:
    as_of = date.fromisoformat(params["as_of_date"]) if "as_of_date" in params else default
    if as_of > latest:
        raise JobRequestError("parameters", f"parameters.as_of_date {as_of} is after {what} ({latest})")
    return as_of


def _consumption(settings: Settings, engine: Engine, workspace: str, job: ClaimedJob,
                 params: dict[str, Any]) -> tuple[date, pd.DataFrame]:
    from pipelines.jobs.consumption import forecast_workspace, store_last_day

    last = store_last_day(settings)
    as_of = _as_of(params, last, last, "the feature store's last day")
    frame, model = forecast_workspace(settings, workspace, as_of, job.horizon, job.target_metric,
                                      level=params.get("level", settings.forecast_level),
                                      by_feature=params.get("by_feature", True), engine=engine)
    return as_of, frame, model  # how it was made (the stored serving version, or trained on demand) goes in the result


def _peak_usage(settings: Settings, engine: Engine, workspace: str, job: ClaimedJob,
                params: dict[str, Any]) -> tuple[date, pd.DataFrame]:
    from pipelines.jobs.consumption import store_last_day
    from pipelines.jobs.peak_usage import forecast_workspace_peaks, latest_nightly_as_of

    last = store_last_day(settings)
    nightly = latest_nightly_as_of(engine, str(job.workspace_id))
    as_of = _as_of(params, nightly or last, min(nightly or last, last),
                   "the workspace's latest nightly peak-usage as-of date or the feature store's last day")
    frame = forecast_workspace_peaks(settings, workspace, as_of, job.horizon, job.target_metric,
                                     level=params.get("level", settings.peak_level))
    return as_of, frame


# prediction_type -> computation: (settings, engine, the workspace's source id, job, parameters) -> (as_of, rows)
RUNNERS: dict[str, Callable[[Settings, Engine, str, ClaimedJob, dict[str, Any]], tuple[date, pd.DataFrame]]] = {
    CREDIT_CONSUMPTION: _consumption,
    PEAK_USAGE: _peak_usage,
}


class _Heartbeat(threading.Thread):
    """Renews a job's lease every third of it until stopped; notes when the lease was lost."""

    def __init__(self, engine: Engine, job: ClaimedJob, lease_seconds: int) -> None:
        super().__init__(daemon=True, name=f"lease-{job.id}")
        self.engine, self.job, self.lease_seconds = engine, job, lease_seconds
        self.stopped, self.lost = threading.Event(), False

    def run(self) -> None:
        while not self.stopped.wait(self.lease_seconds / 3):
            try:
                if not renew_lease(self.engine, self.job, self.lease_seconds):
                    self.lost = True
                    return
            except sa.exc.DBAPIError as exc:  # transient: try again at the next beat
                log.warning("job %s: lease renewal failed: %s", self.job.id, exc)


def execute(settings: Settings, engine: Engine, job: ClaimedJob) -> dict[str, Any]:
    """Run a claimed job to the end: its final status, error and result (also written to the job's row)."""
    beat = _Heartbeat(engine, job, settings.job_lease_seconds)
    beat.start()
    t0 = time.perf_counter()
    try:
        params = validate_job_request(job.prediction_type, job.target_metric, job.horizon, job.parameters)
        if job.prediction_type not in RUNNERS:
            raise JobRequestError("prediction_type", f"no runner for {job.prediction_type!r}; have {sorted(RUNNERS)}")
        with engine.connect() as conn:
            workspace = conn.execute(_EXTERNAL_ID, {"id": str(job.workspace_id)}).scalar()
        if workspace is None:
            raise JobRequestError("workspace_id", f"unknown workspace {job.workspace_id}")
        as_of, frame, *made = RUNNERS[job.prediction_type](settings, engine, workspace, job, params)
        frame = frame.assign(model_version=model_version(job.id))
        with engine.begin() as conn:
            hold(conn, job)  # publish only while holding the lease, in the transaction that marks success
            published = publish_on_demand_predictions(conn, frame, job.prediction_type, as_of)
            result = {"table": "analytics.predictions", "prediction_type": job.prediction_type,
                      "target_metrics": sorted(frame["target_metric"].unique().tolist()),
                      "scenario": ON_DEMAND_SCENARIO,
                      "model_version": model_version(job.id), "workspace_id": str(job.workspace_id),
                      "as_of_date": as_of.isoformat(), "rows": published["rows"],
                      "dimensions": sorted(frame["dimension"].unique().tolist()),
                      "first_date": str(pd.Timestamp(frame["prediction_date"].min()).date()),
                      "last_date": str(pd.Timestamp(frame["prediction_date"].max()).date()),
                      "seconds": round(time.perf_counter() - t0, 2), **(made[0] if made else {})}
            finish(conn, job, "succeeded", result=result)
        return {"status": "succeeded", "result": result}
    except LeaseLost as exc:
        log.warning("%s", exc)
        return {"status": "lost", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure is the job's, recorded with its message
        log.exception("job %s failed", job.id)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        with engine.begin() as conn:
            recorded = finish(conn, job, "failed", error=error)
        return {"status": "failed" if recorded else "lost", "error": error}
    finally:
        beat.stopped.set()
        beat.join(timeout=5)


def run_job(settings: Settings, engine: Engine, job_id: uuid.UUID | str, owner: str | None = None) -> dict[str, Any]:
    """Claim and run one job by id. ``status`` is ``not_claimable`` when it is finished, held by a live lease
    or gone (an Airflow retry of a job another worker finished does nothing)."""
    job = claim_job(engine, owner or worker_id(), settings.job_lease_seconds, settings.job_max_attempts, job_id)
    if job is None:
        return {"job_id": str(job_id), "status": "not_claimable"}
    return {"job_id": str(job.id), "attempt": job.attempts, **execute(settings, engine, job)}


def work(settings: Settings, engine: Engine, once: bool = False, owner: str | None = None,
         max_jobs: int | None = None) -> list[dict[str, Any]]:
    """``pae worker``: take jobs from the queue until it is empty (``once``) or forever, waiting
    ``job_poll_seconds`` between looks at an empty queue. Returns what each job ended as."""
    owner = owner or worker_id()
    done: list[dict[str, Any]] = []
    while max_jobs is None or len(done) < max_jobs:
        try:
            job = claim_job(engine, owner, settings.job_lease_seconds, settings.job_max_attempts)
        except sa.exc.OperationalError as exc:  # database restarting: a long-running worker waits and retries
            if once:
                raise
            log.warning("worker %s: cannot reach the queue (%s); retrying", owner, exc)
            time.sleep(settings.job_poll_seconds)
            continue
        if job is None:
            if once:
                break
            time.sleep(settings.job_poll_seconds)
            continue
        log.info("worker %s: job %s (%s, attempt %d)", owner, job.id, job.prediction_type, job.attempts)
        done.append({"job_id": str(job.id), "attempt": job.attempts, **execute(settings, engine, job)})
    return done


def run_job_step(job_id: str | None, settings: Settings | None = None) -> dict[str, Any]:
    """The on-demand DAG's task: run the job it was triggered for (a missing or malformed id is an error)."""
    from core.db import get_engine
    from core.settings import get_settings, limit_threads

    if not job_id:
        raise ValueError("the on-demand DAG needs the job_id param (analytics.prediction_jobs.id)")
    job_uuid = uuid.UUID(str(job_id))
    settings = settings or get_settings()
    limit_threads(settings.threads)
    engine = get_engine(settings)
    try:
        return run_job(settings, engine, job_uuid, owner=f"airflow:{worker_id()}")
    finally:
        engine.dispose()
