"""The jobs table as a queue (``analytics.prediction_jobs``, ``sql/015_prediction_jobs.sql``).

A worker claims the oldest claimable job (queued, or running with an expired lease: its worker died) with
``select ... for update skip locked``, so two workers never take the same job, and holds it under a lease
(``job_lease_seconds``) it renews while running. Finishing checks that the worker still holds the lease, in
the transaction that publishes the rows: a worker that lost its lease publishes nothing. A job whose lease
expired ``job_max_attempts`` times is failed instead of being taken again.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

_GIVE_UP = sa.text("""
    update analytics.prediction_jobs
       set status = 'failed', finished_at = now(), lease_owner = null, lease_expires_at = null,
           error = 'lease expired after ' || attempts || ' attempt(s): the worker stopped (killed or timed out)'
     where status = 'running' and lease_expires_at < now() and attempts >= :max_attempts
""")
_CLAIM = sa.text("""
    with next_job as (
        select id from analytics.prediction_jobs
         where (status = 'queued' or (status = 'running' and lease_expires_at < now()))
           and attempts < :max_attempts
           and (cast(:job_id as uuid) is null or id = cast(:job_id as uuid))
         order by created_at, id
         limit 1
         for update skip locked
    )
    update analytics.prediction_jobs j
       set status = 'running', attempts = j.attempts + 1, lease_owner = :owner,
           lease_expires_at = now() + make_interval(secs => :lease), started_at = now(), finished_at = null,
           error = null
      from next_job
     where j.id = next_job.id
    returning j.id, j.workspace_id, j.prediction_type, j.target_metric, j.horizon, j.parameters, j.attempts,
              j.lease_expires_at
""")
_RENEW = sa.text("""
    update analytics.prediction_jobs set lease_expires_at = now() + make_interval(secs => :lease)
     where id = :id and lease_owner = :owner and status = 'running'
""")
_HOLD = sa.text("""
    select id from analytics.prediction_jobs
     where id = :id and lease_owner = :owner and status = 'running'
     for update
""")
_PRUNE = sa.text("""
    delete from analytics.prediction_jobs where status in ('succeeded', 'failed') and finished_at < :before
""")
_FINISH = sa.text("""
    update analytics.prediction_jobs
       set status = :status, finished_at = now(), lease_owner = null, lease_expires_at = null,
           error = :error, result = cast(:result as jsonb)
     where id = :id and lease_owner = :owner and status = 'running'
""")


class LeaseLost(RuntimeError):
    """The worker no longer holds the job's lease (it expired and another worker took the job)."""


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    workspace_id: uuid.UUID
    prediction_type: str
    target_metric: str
    horizon: int
    parameters: dict[str, Any]
    attempts: int
    lease_expires_at: datetime
    owner: str


def claim_job(engine: Engine, owner: str, lease_seconds: int, max_attempts: int,
              job_id: uuid.UUID | str | None = None) -> ClaimedJob | None:
    """Claim the oldest claimable job (or only ``job_id``) for ``owner``; ``None`` when there is none (or it is
    held by a live lease, or finished)."""
    with engine.begin() as conn:
        conn.execute(_GIVE_UP, {"max_attempts": max_attempts})
        row = conn.execute(_CLAIM, {"owner": owner, "lease": lease_seconds, "max_attempts": max_attempts,
                                    "job_id": str(job_id) if job_id else None}).mappings().first()
    return None if row is None else ClaimedJob(**dict(row), owner=owner)


def renew_lease(engine: Engine, job: ClaimedJob, lease_seconds: int) -> bool:
    """Push the lease ``lease_seconds`` ahead; ``False`` when the worker no longer holds the job."""
    with engine.begin() as conn:
        return conn.execute(_RENEW, {"id": str(job.id), "owner": job.owner, "lease": lease_seconds}).rowcount == 1


def hold(conn: Connection, job: ClaimedJob) -> None:
    """Lock the job row in ``conn``'s transaction, or raise ``LeaseLost`` (publish only while holding it)."""
    if conn.execute(_HOLD, {"id": str(job.id), "owner": job.owner}).first() is None:
        raise LeaseLost(f"job {job.id}: worker {job.owner} lost its lease; another worker has the job")


def finish(conn: Connection, job: ClaimedJob, status: str, *, error: str | None = None,
           result: dict[str, Any] | None = None) -> bool:
    """Mark the job ``succeeded`` or ``failed`` in ``conn``'s transaction if the worker still holds it."""
    return conn.execute(_FINISH, {"id": str(job.id), "owner": job.owner, "status": status, "error": error,
                                  "result": json.dumps(result, default=str) if result is not None else None}
                        ).rowcount == 1


def delete_finished_jobs(engine: Engine, before: datetime) -> int:
    """Retention: delete the jobs that finished (succeeded or failed) before ``before``; queued and running jobs
    stay. The number deleted."""
    with engine.begin() as conn:
        return conn.execute(_PRUNE, {"before": before}).rowcount
