"""POST/GET /api/analytics/scenarios (saved what-if scenarios) and the scenario writer role's narrow grant."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.ids import entity_uuid
from core.settings import Settings
from services.api.deps import reader_url
from services.api.main import create_app
from services.keys import create_api_key
from services.scenarios import writer_url
from tests.services.test_service import AS_OF, seed_consumption
from tests.services.test_what_if import db, seeded  # noqa: F401 (fixtures)

PEPPER = "what-if-pepper"  # the seeded fixture's
SCENARIOS = "/api/analytics/scenarios"


@pytest.fixture(scope="module")
def client(db_url, engine, tmp_path_factory):
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path_factory.mktemp("pae"), api_key_pepper=PEPPER))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def saved(db, seeded):  # noqa: F811
    with db.begin() as conn:
        conn.execute(sa.text("truncate analytics.scenarios"))
    return seeded


def test_save_list_and_update_by_name(client, saved, db):  # noqa: F811
    body = {"workspace_id": "acme", "name": "launch", "description": "usage +20% at launch",
            "adjustments": [{"type": "usage_change", "percent": 20}], "metrics": ["credits", "mau"]}
    r = client.post(SCENARIOS, json=body, headers=saved)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["name"] == "launch" and first["saved_by"] == "what-if" and first["as_of_date"] == AS_OF.isoformat()
    assert first["workspace"]["external_id"] == "acme"
    assert first["request"]["adjustments"] == [{"type": "usage_change", "percent": 20.0, "start_date": None}]
    total = next(s for s in first["summary"] if s["metric"] == "credits" and s["dimension"] == "total")
    assert total["difference"] == pytest.approx(0.2 * sum(100 + d for d in range(1, 91)))
    client.post(SCENARIOS, json={**body, "name": "baseline", "adjustments": []}, headers=saved)
    again = client.post(SCENARIOS, json={**body, "adjustments": [{"type": "usage_change", "percent": 10}]},
                        headers=saved).json()
    assert again["id"] == first["id"] and again["updated_at"] > first["updated_at"]
    listed = client.get(SCENARIOS, params={"workspace_id": "acme"}, headers=saved).json()
    assert [s["name"] for s in listed["scenarios"]] == ["launch", "baseline"]
    assert listed["scenarios"][0]["request"]["adjustments"][0]["percent"] == 10
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.scenarios")).scalar() == 2


def test_scenarios_are_scoped_and_validated(client, saved, db):  # noqa: F811
    with db.begin() as conn:
        seed_consumption(conn, "other")
    other = {"X-API-Key": create_api_key(db, ["other"], "other", pepper=PEPPER)}
    client.post(SCENARIOS, json={"workspace_id": "other", "name": "theirs"}, headers=other)
    assert client.get(SCENARIOS, params={"workspace_id": "acme"}, headers=saved).json()["scenarios"] == []
    assert client.get(SCENARIOS, params={"workspace_id": "other"}, headers=saved).status_code == 403
    assert client.post(SCENARIOS, json={"workspace_id": "other", "name": "x"}, headers=saved).status_code == 403
    assert client.post(SCENARIOS, json={"workspace_id": "acme", "name": "x"}).status_code == 401
    for bad in ({"name": ""}, {"name": "x" * 201}, {"name": "a\x00b"},
                {"name": "x", "adjustments": [{"type": "churn_retention", "share": 3}]},
                {"name": "x", "adjustments": [{"type": "price", "dimension": "nope", "multiplier": 2}]}):
        assert client.post(SCENARIOS, json={"workspace_id": "acme", **bad}, headers=saved).status_code == 422, bad
    r = client.post(SCENARIOS, json={"workspace_id": "quiet", "name": "x"}, headers=saved)
    assert r.status_code == 404
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.scenarios")).scalar() == 1


def test_writer_role_may_write_scenarios_and_nothing_else(saved, db, db_url):  # noqa: F811
    writer = sa.create_engine(writer_url(reader_url(Settings(database_url=db_url))))
    reader = sa.create_engine(reader_url(Settings(database_url=db_url)))
    ws = str(entity_uuid("workspace", "acme"))
    try:
        with writer.begin() as conn:
            conn.execute(sa.text("insert into analytics.scenarios (workspace_id, name, request, as_of_date)"
                                 " values (:ws, 'w', '{}', '2026-03-31')"), {"ws": ws})
            conn.execute(sa.text("update analytics.scenarios set description = 'd' where name = 'w'"))
        for stmt in ("delete from analytics.scenarios", "delete from analytics.predictions",
                     "update analytics.predictions set predicted_value = 0",
                     ("insert into analytics.predictions (workspace_id, prediction_type, target_metric, prediction_date)"
                      " values (gen_random_uuid(), 'x', 'y', '2026-01-01')"),
                     "select count(*) from analytics.predictions", "update analytics.churn_predictions set risk_score = 0",
                     "select * from analytics.api_keys", "truncate analytics.scenarios"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), writer.begin() as conn:
                conn.execute(sa.text(stmt))
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), reader.begin() as conn:
            conn.execute(sa.text("insert into analytics.scenarios (workspace_id, name, request, as_of_date)"
                                 " values (:ws, 'r', '{}', '2026-03-31')"), {"ws": ws})
        with reader.connect() as conn:
            assert conn.execute(sa.text("select description from analytics.scenarios")).scalar() == "d"
    finally:
        writer.dispose()
        reader.dispose()
