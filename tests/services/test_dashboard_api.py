"""The dashboard's routes: the key's workspaces, churn contacts (the API's only write), and the bundle at /."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.ids import entity_uuid
from core.settings import Settings
from services.api.deps import reader_url
from services.api.static import CSP, mount_dashboard
from services.keys import create_api_key
from tests.services.test_api import PEPPER, acme, app, client, db  # noqa: F401  (fixtures)
from tests.services.test_service import seed_churn

WORKSPACES = "/api/analytics/workspaces"
CONTACTS = "/api/analytics/predictions/churn/contacts"


@pytest.fixture(autouse=True)
def no_contacts(engine):
    """analytics.churn_contacts is not among the tables the shared fixtures empty."""
    with engine.begin() as conn:
        conn.execute(sa.text("truncate analytics.churn_contacts"))


def test_workspaces_lists_the_keys_scope(client, db, acme):  # noqa: F811
    assert client.get(WORKSPACES).status_code == 401
    body = client.get(WORKSPACES, headers=acme).json()
    assert body == {"workspaces": [{"id": str(entity_uuid("workspace", "acme")), "external_id": "acme"}]}
    both = {"X-API-Key": create_api_key(db, ["globex", "acme"], "two", pepper=PEPPER)}
    assert [w["external_id"] for w in client.get(WORKSPACES, headers=both).json()["workspaces"]] == ["acme", "globex"]


def test_churn_risk_factors_keep_their_driver(client, db, acme):  # noqa: F811
    with db.begin() as conn:
        conn.execute(sa.text("""update analytics.churn_predictions set risk_factors = jsonb_set(risk_factors, '{0,driver}',
                                '"recency"')"""))
    users = client.get("/api/analytics/predictions/churn", params={"workspace_id": "acme"}, headers=acme).json()["users"]
    assert {u["risk_factors"][0]["driver"] for u in users} == {"recency"}


def test_mark_contacted_then_list(client, db, acme):  # noqa: F811
    assert client.get(CONTACTS, params={"workspace_id": "acme"}, headers=acme).json()["contacts"] == []
    r = client.post(CONTACTS, json={"workspace_id": "acme", "user_ids": ["alice", str(entity_uuid("user", "dave"))],
                                    "note": "called"}, headers=acme)
    assert r.status_code == 200, r.text
    assert r.json()["marked"] == 2 and r.json()["already_marked"] == 0 and r.json()["prediction_date"] == "2026-03-31"
    again = client.post(CONTACTS, json={"workspace_id": "acme", "user_ids": ["alice"]}, headers=acme).json()
    assert again["marked"] == 0 and again["already_marked"] == 1

    listed = client.get(CONTACTS, params={"workspace_id": "acme"}, headers=acme).json()
    assert {c["user_external_id"] for c in listed["contacts"]} == {"alice", "dave"}
    assert {c["note"] for c in listed["contacts"]} == {"called"} and {c["contacted_by"] for c in listed["contacts"]} == {"test"}
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.churn_contacts")).scalar() == 2


def test_contacts_refuse_unscored_users_other_workspaces_and_bad_input(client, db, acme):  # noqa: F811
    r = client.post(CONTACTS, json={"workspace_id": "acme", "user_ids": ["alice", "eve", "nobody"]}, headers=acme)
    assert r.status_code == 422 and "'eve'" in r.json()["detail"] and "'nobody'" in r.json()["detail"]
    for body in ({"workspace_id": "globex", "user_ids": ["eve"]},):
        assert client.post(CONTACTS, json=body, headers=acme).status_code == 403
    assert client.get(CONTACTS, params={"workspace_id": "globex"}, headers=acme).status_code == 403
    assert client.post(CONTACTS, json={"workspace_id": "acme", "user_ids": ["alice"]}).status_code == 401
    for bad in ({"workspace_id": "acme", "user_ids": []}, {"workspace_id": "acme", "user_ids": ["a"] * 1001},
                {"workspace_id": "acme", "user_ids": ["alice"], "note": "x" * 501},
                {"workspace_id": "acme", "user_ids": ["alice"], "note": "bad\x00note"}):
        assert client.post(CONTACTS, json=bad, headers=acme).status_code == 422
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.churn_contacts")).scalar() == 0


def test_reader_role_may_insert_contacts_and_nothing_else(db, db_url, acme):  # noqa: F811
    reader = sa.create_engine(reader_url(Settings(database_url=db_url)))
    ws, user = str(entity_uuid("workspace", "acme")), str(entity_uuid("user", "alice"))
    try:
        with reader.begin() as conn:
            conn.execute(sa.text("insert into analytics.churn_contacts (workspace_id, user_id, prediction_date)"
                                 " values (:ws, :u, '2026-03-31')"), {"ws": ws, "u": user})
        for stmt in ("update analytics.churn_contacts set note = 'x'", "delete from analytics.churn_contacts",
                     "delete from analytics.predictions", "update analytics.churn_predictions set risk_score = 0",
                     "insert into analytics.entities (entity_type, entity_id, external_id) values"
                     " ('workspace', gen_random_uuid(), 'evil')"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), reader.begin() as conn:
                conn.execute(sa.text(stmt))
    finally:
        reader.dispose()


def test_contacts_need_churn_scores(client, db):  # noqa: F811
    from tests.services.test_service import add_workspace

    with db.begin() as conn:
        add_workspace(conn, "fresh")
    key = {"X-API-Key": create_api_key(db, ["fresh"], "fresh", pepper=PEPPER)}
    r = client.post(CONTACTS, json={"workspace_id": "fresh", "user_ids": ["u1"]}, headers=key)
    assert r.status_code == 404 and "no churn predictions yet" in r.json()["detail"]
    with db.begin() as conn:
        seed_churn(conn, "fresh", {"u1": 0.8})
    assert client.post(CONTACTS, json={"workspace_id": "fresh", "user_ids": ["u1"]}, headers=key).status_code == 200


def test_dashboard_bundle_served_beside_the_api(tmp_path):
    dist = tmp_path / "dist"
    app = FastAPI()

    @app.get("/api/ping")
    async def ping():
        return {"ok": True}

    mount_dashboard(app, dist)
    with TestClient(app) as c:
        missing = c.get("/")
        assert missing.status_code == 503 and "make web" in missing.text
        assert c.get("/assets/index.js").status_code == 404
        (dist / "assets").mkdir(parents=True)
        (dist / "index.html").write_text("<!doctype html><div id=root></div>")
        (dist / "assets" / "index-abc.js").write_text("console.log(1)")
        page = c.get("/")
        assert page.status_code == 200 and "id=root" in page.text
        assert page.headers["content-security-policy"] == CSP and page.headers["cache-control"] == "no-cache"
        asset = c.get("/assets/index-abc.js")
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        assert c.get("/assets/../index.html").status_code == 404
        assert c.get("/api/ping").json() == {"ok": True}


def test_real_app_serves_dashboard_and_api(app, client, acme):  # noqa: F811
    assert client.get("/").status_code in (200, 503)  # 503 until `make web` built web/dist
    assert client.get("/api/analytics/predictions/what-if").status_code in (404, 405)
    assert "/api/analytics/workspaces" in client.get("/openapi.json").json()["paths"]
