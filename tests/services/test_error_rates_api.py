"""GET /api/analytics/predictions/error-rates and PredictiveAnalytics.predict_error_rates, on rows written by the one
publisher the way the error-rate kind writes them, read as the read-only role."""
from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.ids import entity_uuid
from core.settings import Settings
from pipelines.publish import publish_agent_error_alerts, publish_agent_error_forecasts, publish_predictions
from services.api.main import create_app
from services.keys import create_api_key
from services.predictive_analytics import NoPredictionsError, PredictiveAnalytics, UnknownWorkspaceError
from tests.services.test_service import add_workspace

PEPPER = "error-rate-pepper"
URL = "/api/analytics/predictions/error-rates"
AS_OF = date(2026, 3, 31)
TABLES = ("agent_error_alerts", "agent_error_forecasts", "agent_daily_metrics", "agent_error_thresholds")
# agent -> (status, level, probability, risk rank)
AGENTS = {"ag-hot": ("breach", "critical", 1.0, 31.0), "ag-warm": ("escalating", "warning", 0.45, 20.45),
          "ag-watch": ("escalating", "watch", 0.2, 10.2), "ag-calm": ("ok", None, 0.03, 0.03),
          "ag-thin": ("insufficient_volume", None, None, -1.0), "ag-gone": ("inactive", None, None, -1.0)}


def _add_agent(conn, ws: str, agent: str) -> None:
    conn.execute(sa.text("insert into analytics.entities (entity_type, entity_id, external_id, workspace_id)"
                         " values ('agent', :id, :ext, :ws)"),
                 {"id": str(entity_uuid("agent", agent)), "ext": agent, "ws": str(entity_uuid("workspace", ws))})


def seed_error_rates(conn, workspaces: dict[str, dict], as_of: date = AS_OF, version: str = "2") -> None:
    """One run's prediction sets (the kind publishes every workspace's rows at once)."""
    alerts, forecasts, history = [], [], []
    for ws, agent, (status, level, p, rank) in [(w, a, v) for w, agents in workspaces.items() for a, v in agents.items()]:
        _add_agent(conn, ws, agent)
        alerts.append({"workspace_id": ws, "agent_id": agent, "status": status, "alert_level": level,
                       "probability": p, "expected_breach_date": as_of + timedelta(days=3) if level else None,
                       "threshold": 0.06, "threshold_source": "default", "current_rate": 0.04, "baseline_rate": 0.01,
                       "calls_last_7d": 5 if status == "insufficient_volume" else 300, "errors_last_7d": 9,
                       "trend_per_day": 0.01, "failing_users_share": 0.2, "calls_at_risk": 6.0,
                       "reason": f"{agent}: {status}", "risk_rank": rank, "model_version": version,
                       "drivers": json.dumps([{"driver": "recent", "contribution": 0.5, "text": "rate up"}])})
        if status == "inactive":
            continue
        for k in range(1, 15):
            forecasts.append({"workspace_id": ws, "agent_id": agent, "prediction_date": as_of + timedelta(days=k),
                              "predicted_rate": 0.02, "lower_80": 0.01, "upper_80": 0.04, "lower_95": 0.0,
                              "upper_95": 0.08, "expected_calls": 40.0, "p_breach_by": min(1.0, 0.05 * k),
                              "model_version": version})
        for k in range(0, 40, 2):  # every other day has calls
            history.append({"workspace_id": str(entity_uuid("workspace", ws)), "agent_id": str(entity_uuid("agent", agent)),
                            "metric_date": as_of - timedelta(days=k), "calls": 40, "errors": 2, "credits": 1.0})
    publish_agent_error_alerts(conn, pd.DataFrame(alerts), as_of)
    fc = pd.DataFrame(forecasts)
    publish_agent_error_forecasts(conn, fc, as_of)
    publish_predictions(conn, fc.assign(target_metric="error_rate", dimension=fc["agent_id"],
                                        predicted_value=fc["predicted_rate"], confidence_lower=fc["lower_95"],
                                        confidence_upper=fc["upper_95"], confidence_level=0.95), "error_rate", as_of)
    if history:
        conn.execute(sa.text("insert into analytics.agent_daily_metrics (workspace_id, agent_id, metric_date, calls,"
                             " errors, credits) values (:workspace_id, :agent_id, :metric_date, :calls, :errors,"
                             " :credits)"), history)


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.api_keys, " + ", ".join(f"analytics.{t}" for t in TABLES)))
    return clean_db


@pytest.fixture
def seeded(db):
    with db.begin() as conn:
        for ws in ("acme", "globex", "empty"):
            add_workspace(conn, ws)
        seed_error_rates(conn, {"acme": AGENTS, "globex": {"ag-other": ("escalating", "critical", 0.9, 30.9)}})
    return {"X-API-Key": create_api_key(db, ["acme", "empty"], "errors", pepper=PEPPER)}


@pytest.fixture(scope="module")
def client(db_url, engine, tmp_path_factory):
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path_factory.mktemp("pae"), api_key_pepper=PEPPER))
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def _get(client, key, **params):
    return client.get(URL, params={"workspace_id": "acme", **params}, headers=key)


def test_auth_scope_and_validation(client, seeded):
    assert client.get(URL, params={"workspace_id": "acme"}).status_code == 401
    assert client.get(URL, params={"workspace_id": "acme"}, headers={"X-API-Key": "nope"}).status_code == 401
    assert _get(client, seeded, workspace_id="globex").status_code == 403  # exists, not in the key's scope
    assert _get(client, seeded, workspace_id="nobody").status_code == 403  # tells nothing about other tenants
    for bad in ({"min_level": "severe"}, {"history_days": 0}, {"history_days": 366}, {"limit": 0}, {"offset": -1},
                {"agent_id": ""}, {"agent_id": "a\tb"}):
        r = _get(client, seeded, **bad)
        assert r.status_code == 422, bad
        assert "input" not in json.dumps(r.json())  # the offending input is not echoed back


def test_agents_sorted_by_risk_with_alert_forecast_and_history(client, seeded):
    r = _get(client, seeded, history_days=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["as_of_date"] == AS_OF.isoformat() and body["status"] == "ok"
    assert body["agents_in_workspace"] == body["total"] == len(AGENTS) and body["alerting"] == 3
    order = [a["agent"]["external_id"] for a in body["agents"]]
    assert order[:4] == ["ag-hot", "ag-warm", "ag-watch", "ag-calm"]  # riskiest first
    hot = body["agents"][0]
    assert hot["agent"]["id"] == str(entity_uuid("agent", "ag-hot")) and hot["status"] == "breach"
    assert hot["alert"]["alert_level"] == "critical" and hot["alert"]["probability"] == 1.0
    assert hot["alert"]["drivers"][0]["text"] == "rate up" and hot["alert"]["reason"]
    assert len(hot["forecast"]) == 14
    assert all(p["lower_95"] <= p["lower_80"] <= p["predicted_rate"] <= p["upper_80"] <= p["upper_95"]
               for p in hot["forecast"])
    assert [h["date"] for h in hot["history"]] == [(AS_OF - timedelta(days=k)).isoformat() for k in range(9, -1, -1)]
    assert hot["history"][-1] == {"date": AS_OF.isoformat(), "calls": 40, "errors": 2, "error_rate": 0.05}
    assert hot["history"][-2]["calls"] == 0 and hot["history"][-2]["error_rate"] is None  # a day without calls
    gone = next(a for a in body["agents"] if a["agent"]["external_id"] == "ag-gone")
    assert gone["status"] == "inactive" and gone["forecast"] == [] and gone["alert"]["alert_level"] is None
    thin = next(a for a in body["agents"] if a["agent"]["external_id"] == "ag-thin")
    assert thin["status"] == "insufficient_volume" and thin["alert"]["probability"] is None


def test_filters_and_paging(client, seeded):
    warn = _get(client, seeded, min_level="warning").json()
    assert [a["agent"]["external_id"] for a in warn["agents"]] == ["ag-hot", "ag-warm"] and warn["total"] == 2
    assert warn["agents_in_workspace"] == len(AGENTS)
    one = _get(client, seeded, agent_id="ag-calm").json()
    assert [a["agent"]["external_id"] for a in one["agents"]] == ["ag-calm"]
    by_uuid = _get(client, seeded, agent_id=str(entity_uuid("agent", "ag-calm"))).json()
    assert by_uuid["agents"] == one["agents"]
    assert _get(client, seeded, agent_id="ag-calm", min_level="watch").json()["agents"] == []
    page = _get(client, seeded, limit=2, offset=1).json()
    assert [a["agent"]["external_id"] for a in page["agents"]] == ["ag-warm", "ag-watch"] and page["total"] == len(AGENTS)


def test_unknown_agent_and_workspace_without_agents(client, seeded):
    r = _get(client, seeded, agent_id="ag-other")  # globex's agent
    assert r.status_code == 404 and "ag-other" in r.json()["detail"]
    empty = _get(client, seeded, workspace_id="empty").json()
    assert empty["status"] == "no_agents" and empty["agents"] == [] and "90 days" in empty["note"]


def test_service_errors_and_bi_view(seeded, db, db_url):
    reader = sa.create_engine(sa.engine.make_url(db_url).set(username="pae_reader", password=None))
    service = PredictiveAnalytics(reader)
    with pytest.raises(UnknownWorkspaceError):
        asyncio.run(service.predict_error_rates("nobody"))
    with pytest.raises(ValueError):
        asyncio.run(service.predict_error_rates("acme", min_level="loud"))
    with reader.connect() as conn:
        rows = conn.execute(sa.text("select * from analytics.v_agent_error_alerts where workspace_external_id = 'acme'"
                                    " order by probability desc nulls last")).mappings().all()
        fc = conn.execute(sa.text("select count(*) from analytics.v_agent_error_forecast")).scalar()
    assert len(rows) == len(AGENTS) and rows[0]["agent_external_id"] == "ag-hot" and rows[0]["is_latest"]
    needed = {"workspace_external_id", "agent_external_id", "as_of_date", "alert_level", "probability",
              "expected_breach_date", "current_rate", "baseline_rate", "calls_last_7d", "reason"}
    assert needed <= set(rows[0].keys())
    assert fc == 14 * ((len(AGENTS) - 1) + 1)  # acme's live agents and globex's one
    with db.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in TABLES)))
    with pytest.raises(NoPredictionsError):
        asyncio.run(service.predict_error_rates("acme"))
    reader.dispose()
