"""POST /api/analytics/predictions/generate and GET .../jobs/{id}: 202 + Location, idempotency, 409, 422, scoping,
Airflow dispatch, and the API write role's narrow grant (it may enqueue jobs, never touch predictions)."""
from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from core.ids import entity_uuid
from core.settings import Settings
from services.api.deps import reader_url
from services.scenarios import writer_url
from tests.services.conftest import api_client, api_key_header
from tests.services.test_service import add_workspace

PEPPER = "jobs-pepper"
GENERATE = "/api/analytics/predictions/generate"
BODY = {"workspace_id": "acme", "prediction_type": "credit_consumption", "target_metric": "credits", "horizon": 14}


@pytest.fixture(scope="module")
def client(db_url, engine, tmp_path_factory):
    with api_client(db_url, tmp_path_factory.mktemp("pae"), PEPPER) as c:
        yield c


@pytest.fixture
def keys(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.api_keys, analytics.prediction_jobs"))
        for ws in ("acme", "other"):
            add_workspace(conn, ws)
    return {ws: api_key_header(clean_db, [ws], f"{ws}-key", PEPPER) for ws in ("acme", "other")}


def _jobs(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "select id, workspace_id, status, idempotency_key, requested_by, parameters from analytics.prediction_jobs"
            " order by created_at")).mappings()]


def test_generate_enqueues_and_returns_202_with_location(client, keys, clean_db):
    r = client.post(GENERATE, json={**BODY, "parameters": {"level": 80}}, headers=keys["acme"])
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["status"] == "queued"
    assert r.headers["location"] == f"/api/analytics/predictions/jobs/{job_id}"
    (row,) = _jobs(clean_db)
    assert str(row["id"]) == job_id and row["workspace_id"] == entity_uuid("workspace", "acme")
    assert row["requested_by"] == "acme-key" and row["parameters"] == {"level": 80}
    got = client.get(r.headers["location"], headers=keys["acme"])
    assert got.status_code == 200, got.text
    job = got.json()
    assert job["job_id"] == job_id and job["status"] == "queued" and job["attempts"] == 0
    assert job["horizon"] == 14 and job["result"] is None and job["started_at"] is None


def test_idempotency_key_returns_the_same_job_and_conflicts_on_another_body(client, keys, clean_db):
    headers = {**keys["acme"], "Idempotency-Key": "retry-1"}
    first = client.post(GENERATE, json=BODY, headers=headers)
    again = client.post(GENERATE, json=BODY, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"] and again.headers["idempotent-replayed"] == "true"
    conflict = client.post(GENERATE, json={**BODY, "horizon": 15}, headers=headers)
    assert conflict.status_code == 409 and "Idempotency-Key" in conflict.json()["detail"]
    other = client.post(GENERATE, json=BODY, headers={**keys["acme"], "Idempotency-Key": "retry-2"})
    assert other.json()["job_id"] != first.json()["job_id"]
    # keys are per API key: the other tenant's same key is its own job
    theirs = client.post(GENERATE, json={**BODY, "workspace_id": "other"},
                         headers={**keys["other"], "Idempotency-Key": "retry-1"})
    assert theirs.status_code == 202 and theirs.json()["job_id"] != first.json()["job_id"]
    assert len(_jobs(clean_db)) == 3


def test_concurrent_retries_with_one_key_make_one_job(client, keys, clean_db):
    headers = {**keys["acme"], "Idempotency-Key": "burst"}
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(client.post(GENERATE, json=BODY, headers=headers)
                                                           .json()["job_id"])) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 6 and len(set(ids)) == 1 and len(_jobs(clean_db)) == 1


@pytest.mark.parametrize("change, field, names", [
    ({"prediction_type": "weather"}, "prediction_type", "['credit_consumption', 'peak_usage']"),
    ({"target_metric": "mau"}, "target_metric", "credits_cumulative"),
    ({"horizon": 0}, "horizon", "1 to 365"),
    ({"horizon": 366}, "horizon", "1 to 365"),
    ({"prediction_type": "peak_usage", "horizon": 15}, "horizon", "1 to 14"),
    ({"prediction_type": "peak_usage", "target_metric": "credits_cumulative"}, "target_metric", "['calls', 'credits']"),
    ({"prediction_type": "peak_usage", "parameters": {"by_feature": True}}, "parameters", "['as_of_date', 'level']"),
    ({"parameters": {"colour": "red"}}, "parameters", "as_of_date"),
    ({"parameters": {"level": 99}}, "parameters", "[80, 95]"),
    ({"parameters": {"as_of_date": "yesterday"}}, "parameters", "YYYY-MM-DD"),
])
def test_invalid_requests_are_422_naming_the_field_and_valid_values(client, keys, clean_db, change, field, names):
    r = client.post(GENERATE, json={**BODY, **change}, headers=keys["acme"])
    assert r.status_code == 422, r.text
    (issue,) = r.json()["detail"]
    assert issue["loc"] == ["body", field] and names in issue["msg"]
    assert _jobs(clean_db) == []


def test_other_malformed_bodies_and_headers_are_rejected(client, keys, clean_db):
    assert client.post(GENERATE, json={**BODY, "horizon": "soon"}, headers=keys["acme"]).status_code == 422
    assert client.post(GENERATE, json={**BODY, "extra": 1}, headers=keys["acme"]).status_code == 422
    assert client.post(GENERATE, json=BODY, headers={**keys["acme"], "Idempotency-Key": "x" * 201}).status_code == 422
    assert client.post(GENERATE, json=BODY).status_code == 401
    assert _jobs(clean_db) == []


def test_jobs_are_scoped_to_the_callers_workspaces(client, keys, clean_db):
    assert client.post(GENERATE, json={**BODY, "workspace_id": "other"}, headers=keys["acme"]).status_code == 403
    theirs = client.post(GENERATE, json={**BODY, "workspace_id": "other"}, headers=keys["other"]).json()["job_id"]
    r = client.get(f"/api/analytics/predictions/jobs/{theirs}", headers=keys["acme"])
    assert r.status_code == 404 and theirs in r.json()["detail"]
    assert client.get(f"/api/analytics/predictions/jobs/{uuid.uuid4()}", headers=keys["acme"]).status_code == 404
    assert client.get("/api/analytics/predictions/jobs/not-a-uuid", headers=keys["acme"]).status_code == 422
    assert client.get(f"/api/analytics/predictions/jobs/{theirs}", headers=keys["other"]).status_code == 200


def test_unknown_workspace_is_404(client, clean_db, keys):
    key = api_key_header(clean_db, ["acme"], "k", PEPPER)
    with clean_db.begin() as conn:  # the key covers a workspace the entities table no longer has
        conn.execute(sa.text("delete from analytics.entities where external_id = 'acme'"))
    assert client.post(GENERATE, json=BODY, headers=key).status_code == 404
    assert _jobs(clean_db) == []


class _FakeAirflow(BaseHTTPRequestHandler):
    """Airflow 3's token and trigger endpoints, recording what they were sent."""

    calls: list[tuple[str, dict, str | None]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, body, self.headers.get("Authorization")))
        out = {"access_token": "jwt-1"} if self.path == "/auth/token" else {"dag_run_id": body["dag_run_id"]}
        data = json.dumps(out).encode()
        self.send_response(201 if self.path == "/auth/token" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_with_airflow_configured_the_job_triggers_the_on_demand_dag(db_url, keys, clean_db, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeAirflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _FakeAirflow.calls = []
    try:
        with api_client(db_url, tmp_path, PEPPER, airflow_api_url=f"http://127.0.0.1:{server.server_port}",
                        airflow_password="pw") as c:
            r = c.post(GENERATE, json=BODY, headers={**keys["acme"], "Idempotency-Key": "af"})
            c.post(GENERATE, json=BODY, headers={**keys["acme"], "Idempotency-Key": "af"})  # replay: no 2nd run
            job = c.get(r.headers["location"], headers=keys["acme"]).json()
    finally:
        server.shutdown()
    job_id = r.json()["job_id"]
    assert [c[0] for c in _FakeAirflow.calls] == ["/auth/token",
                                                  "/api/v2/dags/predictive_analytics_on_demand/dagRuns"]
    assert _FakeAirflow.calls[0][1] == {"username": "admin", "password": "pw"}
    path, body, auth = _FakeAirflow.calls[1]
    assert auth == "Bearer jwt-1" and body["conf"] == {"job_id": job_id} and body["dag_run_id"] == f"job-{job_id}"
    assert job["dispatched_to"] == f"airflow:job-{job_id}" and job["status"] == "queued"


def test_airflow_down_leaves_the_job_queued_for_the_worker(db_url, keys, clean_db, tmp_path):
    # nothing listens on the discard port
    with api_client(db_url, tmp_path, PEPPER, airflow_api_url="http://127.0.0.1:9") as c:
        r = c.post(GENERATE, json=BODY, headers=keys["acme"])
        assert r.status_code == 202
        assert c.get(r.headers["location"], headers=keys["acme"]).json()["dispatched_to"] is None


def test_write_role_may_enqueue_jobs_but_never_touch_predictions(keys, clean_db, db_url):
    writer = sa.create_engine(writer_url(reader_url(Settings(database_url=db_url))))
    ws = str(entity_uuid("workspace", "acme"))
    try:
        with writer.begin() as conn:
            job = conn.execute(sa.text("insert into analytics.prediction_jobs (workspace_id, prediction_type,"
                                       " target_metric, horizon, request_hash) values (:ws, 'credit_consumption',"
                                       " 'credits', 7, 'h') returning id"), {"ws": ws}).scalar()
            conn.execute(sa.text("update analytics.prediction_jobs set dispatched_to = 'x' where id = :id"),
                         {"id": job})
        for stmt in ("insert into analytics.predictions (workspace_id, prediction_type, target_metric,"
                     " prediction_date) values (gen_random_uuid(), 'x', 'y', '2026-01-01')",
                     "update analytics.predictions set predicted_value = 0",
                     "delete from analytics.predictions",
                     "select count(*) from analytics.predictions",
                     "delete from analytics.prediction_jobs",
                     "truncate analytics.prediction_jobs",
                     "update analytics.churn_predictions set risk_score = 0"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), writer.begin() as conn:
                conn.execute(sa.text(stmt))
    finally:
        writer.dispose()
    assert [j["id"] for j in _jobs(clean_db)] == [job]
