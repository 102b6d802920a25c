"""POST /api/analytics/predictions/what-if and PredictiveAnalytics.what_if, on rows written the way the nightly
run writes them (consumption forecasts, growth scenarios and milestones, churn scores, user features, events)."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.ids import entity_uuid
from core.settings import Settings
from services.api.main import create_app
from services.keys import create_api_key
from services.predictive_analytics import (
    NoPredictionsError,
    PredictiveAnalytics,
    UnknownWorkspaceError,
)
from services.what_if import WhatIfInputError
from tests.services.test_growth_api import GROWTH_TABLES, seed_growth
from tests.services.test_service import (
    AS_OF,
    SHARES,
    add_workspace,
    seed_churn,
    seed_consumption,
)

PEPPER = "what-if-pepper"
WHAT_IF = "/api/analytics/predictions/what-if"


def seed_users(conn: sa.Connection, ext: str, as_of: date = AS_OF) -> None:
    """60 days of realised DAU 10 / WAU 30 / MAU 50, 2 new users and 1 lost user a day."""
    conn.execute(sa.text("""
        insert into analytics.workspace_growth_metrics (workspace_id, metric_date, dau, wau, mau, new_users,
            returning_users, reactivated_users, lost_users, users_ever)
        select :ws, cast(:as_of as date) - i, 10, 30, 50, 2, 8, 0, 1, 200 from generate_series(0, 59) i
    """), {"ws": str(entity_uuid("workspace", ext)), "as_of": as_of})


def seed_user_features(conn: sa.Connection, users: dict[str, float]) -> None:
    for ext, credits_28 in users.items():
        conn.execute(sa.text("""
            insert into analytics.ml_features (entity_type, entity_id, feature_set, features, computed_at, version,
                as_of_date)
            values ('user', :id, 'user_behaviour', cast(:f as jsonb), now(), 2, :d)
        """), {"id": str(entity_uuid("user", ext)), "f": json.dumps({"credits_28": credits_28}), "d": AS_OF})


def seed_agent_events(conn: sa.Connection, ext: str) -> None:
    """Three 'chat' agents (28, 56 and 84 credits a day, a little search too) and one 'api' agent."""
    rows = []
    for k in range(28):
        t = datetime.combine(AS_OF - timedelta(days=k), datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
        for agent, chat in (("a1", 27.0), ("a2", 54.0), ("a3", 81.0)):
            rows += [(agent, "chat", chat, t), (agent, "search", 1.0 * (agent != "a1") + 1.0 * (agent == "a1"), t)]
        rows.append(("a4", "api", 10.0, t))
    for i, (agent, feature, credits, t) in enumerate(rows):
        conn.execute(sa.text("""
            insert into analytics.usage_events (event_key, event_time, workspace_id, agent_id, feature, credits,
                status, count)
            values (md5(:k)::uuid, :t, :ws, :a, :f, :c, 'ok', 1)
        """), {"k": f"{ext}-{i}", "t": t, "ws": ext, "a": agent, "f": feature, "c": credits})


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.api_keys, " + ", ".join(f"analytics.{t}" for t in GROWTH_TABLES)))
    return clean_db


@pytest.fixture
def seeded(db):
    """acme: 90 days of credits forecast, growth projection, users, churn scores, agents; globex: forecast only."""
    with db.begin() as conn:
        seed_consumption(conn, "acme", days=90)
        seed_consumption(conn, "globex", days=30)
        add_workspace(conn, "quiet")
        seed_growth(conn, "acme", days=90)
        seed_users(conn, "acme")
        seed_churn(conn, "acme", {"alice": 0.9, "bob": 0.8, "carol": 0.2})
        seed_user_features(conn, {"alice": 280.0, "bob": 28.0, "carol": 999.0})
        seed_agent_events(conn, "acme")
    return {"X-API-Key": create_api_key(db, ["acme", "quiet"], "what-if", pepper=PEPPER)}


@pytest.fixture(scope="module")
def client(db_url, engine, tmp_path_factory):
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path_factory.mktemp("pae"), api_key_pepper=PEPPER))
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def _post(client, key, adjustments=(), **body):
    return client.post(WHAT_IF, headers=key, json={"workspace_id": "acme", "base_scenario": "likely",
                                                   "adjustments": list(adjustments), "metrics": ["credits"],
                                                   "horizon_days": 90, **body})


def _by(body, metric="credits", dimension="total"):
    return next(m for m in body["metrics"] if m["metric"] == metric and m["dimension"] == dimension)


def test_auth_scope_and_unknowns(client, seeded):
    body = {"workspace_id": "acme", "adjustments": []}
    assert client.post(WHAT_IF, json=body).status_code == 401
    assert client.post(WHAT_IF, json=body, headers={"X-API-Key": "nope"}).status_code == 401
    for ws in ("globex", str(entity_uuid("workspace", "globex")), "nowhere"):
        r = client.post(WHAT_IF, json={**body, "workspace_id": ws}, headers=seeded)
        assert r.status_code == 403 and "globex" not in r.text
    r = client.post(WHAT_IF, json={**body, "workspace_id": "quiet"}, headers=seeded)
    assert r.status_code == 404 and "no predictions of credits" in r.json()["detail"]


def test_empty_adjustments_return_the_baseline(client, seeded):
    r = _post(client, seeded, metrics=["credits", "dau", "wau", "mau"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["as_of_date"] == AS_OF.isoformat() and body["explanations"] == []
    dims = [m["dimension"] for m in body["metrics"] if m["metric"] == "credits"]
    assert dims == ["total", "chat", "search", "api"]
    assert [m["metric"] for m in body["metrics"] if m["unit"] == "users"] == ["dau", "wau", "mau"]
    for m in body["metrics"]:
        assert m["adjusted"] == m["baseline"] and len(m["baseline"]) == 90
        assert m["difference"]["value"] == 0
        for mil in m["milestones"]:
            assert mil["after"] == mil["before"]
    total = _by(body)
    assert total["baseline"][0] == {"date": (AS_OF + timedelta(days=1)).isoformat(), "value": 101.0,
                                    "lower": pytest.approx(80.8), "upper": pytest.approx(121.2)}
    tot90 = total["difference"]["baseline_totals"][-1]
    assert tot90["label"] == "horizon" and tot90["value"] == pytest.approx(sum(100 + d for d in range(1, 91)))
    assert tot90["lower"] < tot90["value"] < tot90["upper"]
    assert [m["threshold"] for m in _by(body, "mau")["milestones"]] == [60.0]


def test_usage_change_and_price(client, seeded):
    start = AS_OF + timedelta(days=11)
    body = _post(client, seeded, [{"type": "usage_change", "percent": 20, "start_date": start.isoformat()},
                                  {"type": "price", "dimension": "chat", "multiplier": 1.5}]).json()
    total, chat, api = _by(body), _by(body, dimension="chat"), _by(body, dimension="api")
    assert total["adjusted"][0]["value"] == pytest.approx(101 * (0.5 * 1.5 + 0.5))  # before the usage change
    assert total["adjusted"][10]["value"] == pytest.approx(111 * 1.2 * (0.5 * 1.5 + 0.5))
    assert api["adjusted"][10]["value"] == pytest.approx(111 * 0.2 * 1.2)
    assert chat["adjusted"][10]["lower"] == pytest.approx(0.8 * 111 * 0.5 * 1.2 * 1.5)
    for i in range(90):
        assert sum(_by(body, dimension=d)["adjusted"][i]["value"] for d in SHARES) == pytest.approx(
            total["adjusted"][i]["value"])
    diff = total["difference"]
    expected = sum(a["value"] - b["value"] for a, b in zip(total["adjusted"], total["baseline"]))
    assert diff["value"] == pytest.approx(expected) and diff["over_90_days"] == pytest.approx(expected)
    assert diff["over_30_days"] == pytest.approx(sum(a["value"] - b["value"] for a, b in
                                                     zip(total["adjusted"][:30], total["baseline"][:30])))
    texts = [e["text"] for e in body["explanations"]]
    assert texts[0].startswith(f"usage +20% from {start}: +") and "chat price x1.5" in texts[1]
    assert sum(e["credits_difference"] for e in body["explanations"]) == pytest.approx(expected)


def test_users_growth_and_retention_move_users_credits_and_milestones(client, seeded):
    body = _post(client, seeded, [{"type": "user_growth", "percent_per_week": 50},
                                  {"type": "churn_retention", "share": 0.5}], metrics=["credits", "mau", "dau"]).json()
    mau, dau, total = _by(body, "mau"), _by(body, "dau"), _by(body)
    gains = [a["value"] - b["value"] for a, b in zip(mau["adjusted"], mau["baseline"])]
    assert all(g >= 0 for g in gains) and gains == sorted(gains) and gains[-1] > 20  # 1 extra new user a day
    assert dau["difference"]["value"] == pytest.approx(mau["difference"]["value"] * 10 / 50)
    assert mau["adjusted"][5]["lower"] == pytest.approx(mau["baseline"][5]["lower"] + gains[5])
    grow, keep = body["explanations"]
    assert grow["type"] == "user_growth" and grow["credits_difference"] > 0 and grow["mau_difference"] > 20
    # kept: 0.5 * (0.9 + 0.8) expected churners (carol is below high risk), alice 10 and bob 1 credit a day
    assert keep["credits_difference"] == pytest.approx(0.5 * sum(
        0.9 * 10 * min(1, t / 10) + 0.8 * 1 * min(1, t / 10) for t in range(1, 91)))
    assert keep["mau_difference"] == pytest.approx(0.5 * 1.7) and "2 users at churn risk" in keep["text"]
    mil = mau["milestones"][0]
    assert mil["before"]["date_p50"] == (AS_OF + timedelta(days=20)).isoformat()
    assert mil["after"]["date_p50"] is not None and mil["after"]["date_p50"] < mil["before"]["date_p50"]
    assert total["difference"]["value"] == pytest.approx(grow["credits_difference"] + keep["credits_difference"])


def test_agents_of_a_kind(client, seeded):
    body = _post(client, seeded, [{"type": "agents", "kind": "chat", "count": 2}]).json()
    total, chat, search = _by(body), _by(body, dimension="chat"), _by(body, dimension="search")
    per_agent = 56.0 + 1.0  # median of the chat agents' daily credits (28, 55, 82)
    assert total["difference"]["value"] == pytest.approx(2 * 55.0 * 90)
    assert chat["difference"]["value"] + search["difference"]["value"] == pytest.approx(2 * 55.0 * 90)
    assert search["difference"]["value"] == pytest.approx(2 * 55.0 * 90 * 3 / 165)
    assert "3 chat agent(s) now" in body["explanations"][0]["text"] and per_agent
    removed = _post(client, seeded, [{"type": "agents", "kind": "api", "count": -5}]).json()
    assert _by(removed)["difference"]["value"] == pytest.approx(-10.0 * 90)  # only one api agent to remove
    r = _post(client, seeded, [{"type": "agents", "kind": "video", "count": 1}])
    assert r.status_code == 422 and "kinds: api, chat" in r.text and r.json()["detail"][0]["loc"][-1] == "kind"


@pytest.mark.parametrize("adjustment, field, text", [
    ({"type": "usage_change", "percent": 5000}, "percent", "between -100 and 1000"),
    ({"type": "user_growth", "percent_per_week": -150}, "percent_per_week", "between -100 and 500"),
    ({"type": "churn_retention", "share": 1.5}, "share", "between 0 and 1"),
    ({"type": "price", "dimension": "chat", "multiplier": -1}, "multiplier", "between 0 and 10"),
    ({"type": "agents", "kind": "chat", "count": 5000}, "count", "between -1000 and 1000"),
    ({"type": "price", "dimension": "nope", "multiplier": 2}, "dimension", "forecast has: chat, search, api"),
    ({"type": "usage_change", "percent": 5, "bogus": 1}, "bogus", "Extra inputs"),
    ({"type": "teleport"}, "adjustments", "tag"),
])
def test_out_of_range_is_422_naming_the_field_and_range(client, seeded, adjustment, field, text):
    r = _post(client, seeded, [adjustment])
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert field in [str(x) for x in detail["loc"]] and text in detail["msg"], detail


@pytest.mark.parametrize("body", [{"horizon_days": 0}, {"horizon_days": 366}, {"metrics": ["arr"]},
                                  {"base_scenario": "rosy"}, {"metrics": []}])
def test_bad_request_fields_are_422(client, seeded, body):
    assert _post(client, seeded, **body).status_code == 422


def test_deterministic_scenarios_and_short_forecasts(client, seeded):
    adj = [{"type": "user_growth", "percent_per_week": 10}, {"type": "usage_change", "percent": -10}]
    assert _post(client, seeded, adj).json() == _post(client, seeded, adj).json()
    worst, best = (_by(_post(client, seeded, base_scenario=s).json()) for s in ("worst", "best"))
    assert worst["baseline"][0]["value"] < 101 < best["baseline"][0]["value"]
    short = _post(client, seeded, horizon_days=45).json()
    assert len(_by(short)["baseline"]) == 45 and _by(short)["difference"]["over_90_days"] is None


def test_service_validates_directly(seeded, db):
    service = PredictiveAnalytics(db)
    with pytest.raises(WhatIfInputError, match="share must be between 0 and 1"):
        asyncio.run(service.what_if({"workspace_id": "acme", "adjustments": [{"type": "churn_retention", "share": 2}]}))
    with pytest.raises(UnknownWorkspaceError):
        asyncio.run(service.what_if({"workspace_id": "nowhere"}))
    with pytest.raises(NoPredictionsError):
        asyncio.run(service.what_if({"workspace_id": "quiet", "metrics": ["mau"]}))
    out = asyncio.run(service.what_if({"workspace_id": "globex", "metrics": ["credits", "mau"], "horizon_days": 60}))
    assert [m["metric"] for m in out["metrics"]] == ["credits"] * 4 and len(out["metrics"][0]["baseline"]) == 30
    with db.begin() as conn:  # growth projected, no credit forecast: the growth metrics alone
        add_workspace(conn, "grower")
        seed_growth(conn, "grower", days=20)
    out = asyncio.run(service.what_if({"workspace_id": "grower", "metrics": ["credits", "mau"],
                                       "adjustments": [{"type": "usage_change", "percent": 10},
                                                       {"type": "user_growth", "percent_per_week": 10}]}))
    assert [m["metric"] for m in out["metrics"]] == ["mau"] and len(out["metrics"][0]["adjusted"]) == 20


def test_the_dashboards_request_and_what_it_reads(client, seeded):
    """The body web/src/lib/whatif.ts builds from every scenario control, and the fields parseWhatIf reads."""
    start = (AS_OF + timedelta(days=5)).isoformat()
    r = client.post(WHAT_IF, headers=seeded, json={
        "workspace_id": "acme", "base_scenario": "likely", "metrics": ["credits"], "horizon_days": 30,
        "adjustments": [{"type": "usage_change", "percent": 20, "start_date": start},
                        {"type": "user_growth", "percent_per_week": 10, "start_date": start},
                        {"type": "churn_retention", "share": 0.5},
                        {"type": "price", "dimension": "chat", "multiplier": 1.5}]})
    assert r.status_code == 200, r.text
    first = r.json()["metrics"][0]
    assert (first["metric"], first["dimension"]) == ("credits", "total")
    assert len(first["adjusted"]) == 30 and set(first["adjusted"][0]) == {"date", "value", "lower", "upper"}
    assert first["difference"]["value"] > 0 and [e["index"] for e in first["explanations"]] == [0, 1, 2, 3]
    assert all(isinstance(e["text"], str) and e["text"] for e in first["explanations"])


def test_a_feature_missing_days_counts_zero_those_days(client, seeded, db):
    with db.begin() as conn:
        conn.execute(sa.text("delete from analytics.predictions where dimension = 'api' and prediction_date = :d"),
                     {"d": AS_OF + timedelta(days=3)})
    body = _post(client, seeded, [{"type": "usage_change", "percent": 10}]).json()
    api = _by(body, dimension="api")
    assert len(api["adjusted"]) == 90 and api["adjusted"][2]["value"] == 0.0
    assert api["adjusted"][3]["value"] == pytest.approx(1.1 * 104 * 0.2)
