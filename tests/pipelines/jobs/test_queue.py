"""The jobs queue: skip-locked claims over two connections, leases that expire and are taken over, attempts,
and a worker that lost its lease publishing nothing."""
from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa

from core.db import get_engine
from core.ids import entity_uuid
from pipelines.jobs.queue import LeaseLost, claim_job, finish, hold, renew_lease

WS = str(entity_uuid("workspace", "queue-ws"))


@pytest.fixture
def jobs(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.prediction_jobs"))
    return clean_db


def add_job(engine, created_offset_s: int = 0, prediction_type: str = "credit_consumption") -> uuid.UUID:
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "insert into analytics.prediction_jobs (workspace_id, prediction_type, target_metric, horizon,"
            " request_hash, created_at) values (:ws, :type, 'credits', 7, 'h',"
            " now() + make_interval(secs => :off)) returning id"),
            {"ws": WS, "type": prediction_type, "off": created_offset_s}).scalar()


def job_row(engine, job_id) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("select * from analytics.prediction_jobs where id = :id"),
                                 {"id": str(job_id)}).mappings().one())


def expire(engine, job_id) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("update analytics.prediction_jobs set lease_expires_at = now() - interval '1 second'"
                             " where id = :id"), {"id": str(job_id)})


def test_a_job_locked_by_one_connection_is_skipped_by_another(jobs, db_url):
    first, second = add_job(jobs, 0), add_job(jobs, 1)
    other = get_engine(url=db_url)
    try:
        with jobs.connect() as holder:
            tx = holder.begin()  # connection A holds the oldest job's row lock (a claim in flight)
            holder.execute(sa.text("select id from analytics.prediction_jobs where id = :id for update"),
                           {"id": str(first)})
            got = claim_job(other, "worker-b", 60, 3)  # connection B does not wait for it: takes the next
            assert got is not None and got.id == second
            assert claim_job(other, "worker-c", 60, 3) is None  # nothing else claimable
            tx.rollback()
        assert claim_job(other, "worker-c", 60, 3).id == first
    finally:
        other.dispose()


def test_concurrent_workers_claim_each_job_exactly_once(jobs, db_url):
    ids = {add_job(jobs, i) for i in range(12)}
    claimed: dict[str, list[uuid.UUID]] = {"a": [], "b": [], "c": []}
    engines = [get_engine(url=db_url) for _ in claimed]

    def worker(name: str, engine) -> None:
        while (job := claim_job(engine, name, 60, 3)) is not None:
            claimed[name].append(job.id)

    threads = [threading.Thread(target=worker, args=(n, e)) for n, e in zip(claimed, engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    every = [j for got in claimed.values() for j in got]
    assert sorted(every) == sorted(ids)  # each job once, none twice
    with jobs.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.prediction_jobs where status = 'running'"
                                    " and attempts = 1")).scalar() == 12


def test_a_dead_workers_job_is_taken_after_its_lease_expires(jobs):
    job_id = add_job(jobs)
    a = claim_job(jobs, "worker-a", 300, 3)
    assert a.id == job_id and a.attempts == 1
    assert claim_job(jobs, "worker-b", 300, 3) is None  # live lease: never run twice at once
    assert renew_lease(jobs, a, 300)
    expire(jobs, job_id)  # worker-a died: its lease runs out
    b = claim_job(jobs, "worker-b", 300, 3)
    assert b is not None and b.id == job_id and b.attempts == 2
    row = job_row(jobs, job_id)
    assert row["lease_owner"] == "worker-b" and row["status"] == "running"
    assert row["lease_expires_at"] > row["started_at"]
    # worker-a wakes up: it can neither renew, publish nor finish
    assert not renew_lease(jobs, a, 300)
    with pytest.raises(LeaseLost), jobs.begin() as conn:
        hold(conn, a)
    with jobs.begin() as conn:
        assert not finish(conn, a, "succeeded", result={"rows": 1})
        hold(conn, b)
        assert finish(conn, b, "succeeded", result={"rows": 2})
    row = job_row(jobs, job_id)
    assert row["status"] == "succeeded" and row["result"] == {"rows": 2} and row["lease_owner"] is None
    assert claim_job(jobs, "worker-c", 300, 3) is None  # finished jobs are not claimable
    assert claim_job(jobs, "worker-c", 300, 3, job_id) is None


def test_a_job_whose_lease_keeps_expiring_fails_after_max_attempts(jobs):
    job_id = add_job(jobs)
    for attempt in (1, 2):
        assert claim_job(jobs, f"w{attempt}", 300, 2).attempts == attempt
        expire(jobs, job_id)
    assert claim_job(jobs, "w3", 300, 2) is None
    row = job_row(jobs, job_id)
    assert row["status"] == "failed" and row["attempts"] == 2 and "lease expired after 2 attempt" in row["error"]


def test_claim_by_id_takes_only_that_job(jobs):
    first, second = add_job(jobs, 0), add_job(jobs, 1)
    got = claim_job(jobs, "airflow", 300, 3, second)
    assert got.id == second and job_row(jobs, first)["status"] == "queued"
    assert claim_job(jobs, "airflow-retry", 300, 3, second) is None  # held: an Airflow retry does nothing


def test_the_heartbeat_renews_the_lease_while_a_job_runs_and_notices_a_lost_one(jobs):
    import time

    from pipelines.jobs.runner import _Heartbeat

    add_job(jobs)
    job = claim_job(jobs, "worker-a", 3, 3)
    first = job_row(jobs, job.id)["lease_expires_at"]
    beat = _Heartbeat(jobs, job, 3)  # renews every second
    beat.start()
    time.sleep(2.5)
    renewed = job_row(jobs, job.id)["lease_expires_at"]
    assert renewed > first and not beat.lost
    expire(jobs, job.id)
    claim_job(jobs, "worker-b", 300, 3)  # taken over: the next beat finds the lease gone
    beat.join(timeout=5)
    assert beat.lost and not beat.is_alive()
