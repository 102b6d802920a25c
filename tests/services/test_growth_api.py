"""GET /api/analytics/predictions/growth and PredictiveAnalytics.predict_growth_metrics, on rows written the way the
growth run writes them (the one publisher and the growth records), read as the read-only role."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.ids import entity_uuid
from core.settings import Settings
from pipelines.growth.goals import set_goal
from pipelines.growth.project import scenario_rows
from pipelines.growth.tables import write_records
from pipelines.publish import publish_predictions
from services.api.main import create_app
from services.keys import create_api_key
from services.predictive_analytics import (
    NoPredictionsError,
    PredictiveAnalytics,
    UnknownWorkspaceError,
)
from tests.services.test_service import add_workspace

PEPPER = "growth-pepper"
GROWTH = "/api/analytics/predictions/growth"
AS_OF = date(2026, 3, 31)
LEVELS = {"dau": 10.0, "wau": 30.0, "mau": 50.0}
GROWTH_TABLES = ("workspace_growth_metrics", "growth_goals", "growth_status", "growth_milestones",
                 "growth_goal_projections")


def _status(ws: str, status: str = "success", reason: str | None = None, active: int = 50) -> dict:
    return {"workspace_id": ws, "status": status, "reason": reason, "history_days": 120, "active_users": active,
            "users_ever": 80, "dau": 10}


def seed_history(conn: sa.Connection, workspaces: list[str], as_of: date = AS_OF) -> None:
    """120 days of realised DAU/WAU/MAU (one call: the store replaces a date range for every workspace)."""
    from pipelines.features.store import replace_growth_metrics

    hist = pd.concat([pd.DataFrame({"workspace_id": ws, "day": pd.date_range(end=as_of, periods=120)})
                      for ws in workspaces], ignore_index=True)
    for m, level in LEVELS.items():
        hist[m] = int(level)
    hist = hist.assign(new_users=0, returning_users=hist["dau"], reactivated_users=0, lost_users=0, users_ever=80)
    replace_growth_metrics(conn, hist, [as_of - timedelta(days=119)], as_of)


def seed_growth(conn: sa.Connection, ws: str, as_of: date = AS_OF, days: int = 30, version: str = "3") -> None:
    """A projected workspace: a coherent projection, a milestone and its status."""
    rows = []
    for m, level in LEVELS.items():
        for k in range(1, days + 1):
            x = level * (1 + 0.01 * k)
            rows.append({"workspace_id": ws, "target_metric": m, "prediction_date": pd.Timestamp(as_of + timedelta(days=k)),
                         "q025": 0.8 * x, "q10": 0.9 * x, "q50": x, "q90": 1.1 * x, "q975": 1.2 * x})
    frame = scenario_rows(pd.DataFrame(rows)).assign(model_version=version)
    publish_predictions(conn, frame, "growth", as_of)
    milestones = pd.DataFrame([{"workspace_id": ws, "target_metric": "mau", "kind": "round", "threshold": 60.0,
                                "current_value": 50.0, "probability": 0.7, "date_p10": as_of + timedelta(days=10),
                                "date_p50": as_of + timedelta(days=20), "date_p90": None, "horizon_days": days}])
    write_records(conn, as_of, pd.DataFrame([_status(ws)]), milestones, pd.DataFrame(), version)


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.api_keys, " + ", ".join(f"analytics.{t}" for t in GROWTH_TABLES)))
    return clean_db


@pytest.fixture
def seeded(db):
    with db.begin() as conn:
        for ws in ("acme", "globex", "thin", "quiet"):
            add_workspace(conn, ws)
        seed_history(conn, ["acme", "globex", "thin"])
        seed_growth(conn, "acme")
        seed_growth(conn, "globex")
        seed_growth(conn, "thin", as_of=AS_OF - timedelta(days=5))  # an older projection, then too few users
    goal = set_goal(db, "acme", "mau", 70, AS_OF + timedelta(days=20), "spring")
    projected = pd.DataFrame([{"goal_id": goal["goal_id"], "workspace_id": "acme", "target_metric": "mau",
                               "target_value": 70.0, "due_date": AS_OF + timedelta(days=20), "status": "projected",
                               "current_value": 50.0, "probability_met": 0.25, "probability_on_due_date": 0.2,
                               "value_p10": 54.0, "value_p50": 60.0, "value_p90": 66.0, "required_growth_30d": 0.66,
                               "projected_growth_30d": 0.31}])
    milestone = pd.DataFrame([{"workspace_id": "acme", "target_metric": "mau", "kind": "goal", "threshold": 70.0,
                               "current_value": 50.0, "probability": 0.3, "date_p10": AS_OF + timedelta(days=12),
                               "date_p50": None, "date_p90": None, "horizon_days": 30},
                              {"workspace_id": "acme", "target_metric": "mau", "kind": "round", "threshold": 60.0,
                               "current_value": 50.0, "probability": 0.7, "date_p10": AS_OF + timedelta(days=10),
                               "date_p50": AS_OF + timedelta(days=20), "date_p90": None, "horizon_days": 30}])
    with db.begin() as conn:
        thin = _status("thin", "insufficient_data", "12 active users in the last 28 days (at least 20 needed)", 12)
        write_records(conn, AS_OF, pd.DataFrame([_status("acme"), _status("globex"), thin]), milestone, projected, "3")
    set_goal(db, "acme", "mau", 90, AS_OF + timedelta(days=60))  # set after the run: pending
    return {"X-API-Key": create_api_key(db, ["acme", "thin", "quiet"], "growth", pepper=PEPPER)}


@pytest.fixture(scope="module")
def client(db_url, engine, tmp_path_factory):
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path_factory.mktemp("pae"), api_key_pepper=PEPPER))
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def _get(client, key, **params):
    return client.get(GROWTH, params={"workspace_id": "acme", **params}, headers=key)


def test_keys_scope_and_validation(client, seeded):
    assert client.get(GROWTH, params={"workspace_id": "acme"}).status_code == 401
    assert client.get(GROWTH, params={"workspace_id": "acme"}, headers={"X-API-Key": "nope"}).status_code == 401
    for ws in ("globex", str(entity_uuid("workspace", "globex"))):
        r = client.get(GROWTH, params={"workspace_id": ws}, headers=seeded)
        assert r.status_code == 403 and "globex" not in r.text
    for bad in ({"metric": "xau"}, {"horizon_days": 0}, {"horizon_days": 366}, {"workspace_id": ""}):
        assert _get(client, seeded, **bad).status_code == 422, bad
    assert client.get(GROWTH, params={"workspace_id": "quiet"}, headers=seeded).status_code == 404  # no growth run yet


def test_projection_scenarios_intervals_history(client, seeded):
    bodies = {m: _get(client, seeded, metric=m, horizon_days=14).json() for m in ("dau", "wau", "mau")}
    body = bodies["mau"]
    assert body["status"] == "projected" and body["as_of_date"] == AS_OF.isoformat() and body["model_version"] == "3"
    assert body["workspace"] == {"id": str(entity_uuid("workspace", "acme")), "external_id": "acme"}
    assert len(body["projection"]) == 14 and body["projection"][0]["date"] == (AS_OF + timedelta(days=1)).isoformat()
    for p in body["projection"]:
        assert p["lower_95"] <= p["worst"] <= p["likely"] <= p["best"] <= p["upper_95"]
        assert (p["lower_80"], p["upper_80"]) == (p["worst"], p["best"])
    for i in range(14):
        for s in ("worst", "likely", "best"):
            assert bodies["dau"]["projection"][i][s] <= bodies["wau"]["projection"][i][s] <= \
                bodies["mau"]["projection"][i][s]
    assert len(body["history"]) == 90 and body["history"][-1]["date"] == AS_OF.isoformat()
    assert body["current_value"] == 50 and body["history"][-1]["value"] == 50 and body["history"][-1]["dau"] == 10
    assert body["counts"] == {"history_days": 120, "active_users": 50, "users_ever": 80, "dau": 10}
    assert len(_get(client, seeded, horizon_days=365).json()["projection"]) == 30  # what was projected
    by_uuid = client.get(GROWTH, params={"workspace_id": str(entity_uuid("workspace", "acme")).upper()}, headers=seeded)
    assert by_uuid.json() == _get(client, seeded).json()


def test_milestones_and_goals(client, seeded):
    body = _get(client, seeded).json()
    assert [(m["kind"], m["threshold"]) for m in body["milestones"]] == [("round", 60.0), ("goal", 70.0)]
    assert body["milestones"][0]["date_p90"] is None and body["milestones"][0]["probability"] == 0.7
    projected, pending = body["goals"]
    assert projected["status"] == "projected" and projected["probability_met"] == 0.25
    assert projected["value_p10"] <= projected["value_p50"] <= projected["value_p90"]
    assert projected["required_growth_30d"] > projected["projected_growth_30d"] and projected["note"] == "spring"
    assert projected["milestone"]["threshold"] == 70.0 and projected["milestone"]["kind"] == "goal"
    assert pending["status"] == "pending" and pending["probability_met"] is None and pending["target_value"] == 90
    assert _get(client, seeded, metric="dau").json()["goals"] == []


def test_insufficient_data_says_so_with_counts(client, seeded):
    body = client.get(GROWTH, params={"workspace_id": "thin"}, headers=seeded).json()
    assert body["status"] == "insufficient_data" and "12 active users" in body["reason"]
    assert body["counts"]["active_users"] == 12 and body["as_of_date"] == AS_OF.isoformat()
    assert body["projection"] == [] and body["milestones"] == [] and body["model_version"] is None
    assert body["history"] and body["history"][-1]["date"] == AS_OF.isoformat()


def test_service_validates_and_bi_views_are_readable(seeded, db, db_url):
    service = PredictiveAnalytics(db)
    with pytest.raises(ValueError):
        asyncio.run(service.predict_growth_metrics("acme", "users"))
    with pytest.raises(ValueError):
        asyncio.run(service.predict_growth_metrics("acme", "mau", 0))
    with pytest.raises(NoPredictionsError):
        asyncio.run(service.predict_growth_metrics("quiet"))
    with pytest.raises(UnknownWorkspaceError):
        asyncio.run(service.predict_growth_metrics("ghost"))
    reader = sa.create_engine(sa.engine.make_url(db_url).set(drivername="postgresql+psycopg2", username="pae_reader",
                                                             password=None))
    with reader.connect() as conn:
        rows = conn.execute(sa.text("select * from analytics.v_growth_projection where workspace_external_id = 'acme'"
                                    " order by metric, prediction_date, scenario")).mappings().all()
        goals = conn.execute(sa.text("select * from analytics.v_growth_goals order by due_date")).mappings().all()
        thin = conn.execute(sa.text("select prediction_date > :d as future, count(*) from analytics.v_growth_projection"
                                    " where workspace_external_id = 'thin' group by 1"), {"d": AS_OF}).all()
    reader.dispose()
    assert len(rows) == 3 * 3 * 30 and {r["scenario"] for r in rows} == {"worst", "likely", "best"}
    assert all(r["lower_80"] <= r["predicted_value"] <= r["upper_80"] or r["scenario"] != "likely" for r in rows)
    assert all(r["realised_value"] is None for r in rows)  # future days
    assert [g["status"] for g in goals] == ["projected", None] and goals[0]["probability_met"] == 0.25
    # its latest run found too little data: the old projection's future days are left out, past days kept
    assert dict(thin) == {False: 5 * 3 * 3}
