"""On-demand prediction jobs, API side: enqueue (through the API's write role), read one, trigger Airflow.

Enqueueing inserts a ``queued`` row in ``analytics.prediction_jobs`` (``sql/015_prediction_jobs.sql``) as the
role ``pae_scenario_writer``, which may read, insert and update that table and ``analytics.scenarios`` only.
An ``Idempotency-Key`` is unique per API key: the same key again returns the first job; with another body it
is a conflict. When Airflow is configured (``PAE_AIRFLOW_API_URL``), the new job is handed to the DAG
``predictive_analytics_on_demand`` through Airflow 3's REST API; if that fails, it stays queued for ``pae worker``.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.jobs import ON_DEMAND_DAG_ID, request_hash
from core.settings import Settings

log = logging.getLogger(__name__)

_COLUMNS = ("id, workspace_id, prediction_type, target_metric, horizon, parameters, status, attempts, created_at,"
            " started_at, finished_at, error, result, dispatched_to, request_hash")
_INSERT = sa.text(f"""
    insert into analytics.prediction_jobs (workspace_id, prediction_type, target_metric, horizon, parameters,
                                           idempotency_key, request_hash, api_key_id, requested_by)
    values (:ws, :type, :metric, :horizon, cast(:parameters as jsonb), :key, :hash, :api_key, :requested_by)
    on conflict (api_key_id, idempotency_key) do nothing
    returning {_COLUMNS}
""")
_BY_KEY = sa.text(f"select {_COLUMNS} from analytics.prediction_jobs"
                  " where api_key_id = :api_key and idempotency_key = :key")
_GET = sa.text(f"select {_COLUMNS} from analytics.prediction_jobs"
               " where id = :id and workspace_id = any(cast(:ws as uuid[]))")
_DISPATCHED = sa.text("update analytics.prediction_jobs set dispatched_to = :to where id = :id and status = 'queued'")


class IdempotencyConflict(Exception):
    """The idempotency key was used before with another request body."""


@dataclass(frozen=True)
class Enqueued:
    job: dict[str, Any]
    created: bool  # False: an earlier request with the same idempotency key


def enqueue_job(writer: Engine, workspace_id: uuid.UUID, prediction_type: str, target_metric: str, horizon: int,
                parameters: dict[str, Any], idempotency_key: str | None, api_key_id: uuid.UUID | None,
                requested_by: str | None) -> Enqueued:
    """Insert a queued job, or return the job an earlier request with the same idempotency key created.

    Raises:
        IdempotencyConflict: The key was used with another body (workspace, type, metric, horizon, parameters).
    """
    digest = request_hash(str(workspace_id), prediction_type, target_metric, horizon, parameters)
    params = {"ws": str(workspace_id), "type": prediction_type, "metric": target_metric, "horizon": horizon,
              "parameters": json.dumps(parameters, sort_keys=True), "key": idempotency_key, "hash": digest,
              "api_key": str(api_key_id) if api_key_id else None, "requested_by": requested_by}
    with writer.begin() as conn:
        row = conn.execute(_INSERT, params).mappings().first()
        if row is None:  # the key exists (a concurrent first insert has committed: the conflict waited for it)
            row = conn.execute(_BY_KEY, params).mappings().one()
            if row["request_hash"] != digest:
                raise IdempotencyConflict(f"Idempotency-Key {idempotency_key!r} was used with another request body")
            return Enqueued(_public(row), created=False)
    return Enqueued(_public(row), created=True)


def get_job(reader: Engine, job_id: uuid.UUID, workspace_ids: frozenset[str]) -> dict[str, Any] | None:
    """A job if it belongs to one of ``workspace_ids`` (the caller's key's), else ``None``."""
    with reader.connect() as conn:
        row = conn.execute(_GET, {"id": str(job_id), "ws": sorted(workspace_ids)}).mappings().first()
    return None if row is None else _public(row)


def _public(row: Any) -> dict[str, Any]:
    out = {k: v for k, v in dict(row).items() if k != "request_hash"}
    started, finished = out.get("started_at"), out.get("finished_at")
    out["run_seconds"] = round((finished - started).total_seconds(), 3) if started and finished else None
    return out


def trigger_airflow(settings: Settings, job_id: uuid.UUID, timeout: float = 10.0) -> str:
    """Start a run of the on-demand DAG for a job (Airflow 3: a JWT from ``/auth/token``, then
    ``POST /api/v2/dags/{dag_id}/dagRuns``); returns the DAG run id. The run id is derived from the job id, so
    a retried trigger (409: it exists) is not a second run."""
    base = (settings.airflow_api_url or "").rstrip("/")
    if not base:
        raise ValueError("PAE_AIRFLOW_API_URL is not set")
    run_id = f"job-{job_id}"
    with httpx.Client(base_url=base, timeout=timeout) as client:
        token = client.post("/auth/token", json={"username": settings.airflow_username,
                                                 "password": settings.airflow_password.get_secret_value()})
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        r = client.post(f"/api/v2/dags/{ON_DEMAND_DAG_ID}/dagRuns", headers=headers,
                        json={"dag_run_id": run_id, "logical_date": None, "conf": {"job_id": str(job_id)}})
        if r.status_code != 409:
            r.raise_for_status()
    return run_id


def dispatch_to_airflow(settings: Settings, writer: Engine, job_id: uuid.UUID) -> str | None:
    """Trigger Airflow for a new job and record it; on failure log it and leave the job to ``pae worker``."""
    try:
        run_id = trigger_airflow(settings, job_id)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("could not trigger Airflow for job %s (left queued for pae worker): %s", job_id, exc)
        return None
    with writer.begin() as conn:
        conn.execute(_DISPATCHED, {"id": str(job_id), "to": f"airflow:{run_id}"})
    return f"airflow:{run_id}"
