"""GET /api/analytics/predictions/peak-usage: auth and input rules, and the answer built from stored rows."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.ids import entity_uuid
from core.settings import Settings
from services.api.main import create_app
from services.keys import create_api_key

PEPPER = "test-pepper"
URL = "/api/analytics/predictions/peak-usage"
AS_OF = date(2026, 3, 31)


def seed_peaks(conn, ws: str, zone: str = "Europe/Paris") -> None:
    """Entity, workspace_hourly features and peak_usage rows of one workspace (168 hours, 7 local days)."""
    from pipelines.publish import publish_predictions

    wid = str(entity_uuid("workspace", ws))
    conn.execute(sa.text("insert into analytics.entities (entity_type, entity_id, external_id) values"
                         " ('workspace', :id, :ext) on conflict do nothing"), {"id": wid, "ext": ws})
    conn.execute(sa.text(
        "insert into analytics.ml_features (entity_type, entity_id, feature_set, features, computed_at, version,"
        " as_of_date) values ('workspace', :id, 'workspace_hourly', cast(:f as jsonb), :t, 1, :d)"),
        {"id": wid, "f": json.dumps({"time_zone": zone, "calls_hour_max_28": 100.0, "credits_hour_max_28": 50.0}),
         "t": datetime(2026, 4, 1), "d": AS_OF})
    rows = []
    for k in range(168):
        t = datetime(2026, 4, 1) + timedelta(hours=k)
        v = 120.0 if t.hour == 9 else 10.0  # 11:00 in Paris (CEST) at 09:00 UTC: above the 28-day max of 100
        for metric, scale in (("calls", 1.0), ("credits", 0.1)):
            for name, lv in ((metric, 0.95), (f"{metric}_80", 0.8)):
                rows.append({"workspace_id": ws, "target_metric": name, "granularity": "hour", "prediction_date": t,
                             "prediction_hour": t.hour, "predicted_value": v * scale,
                             "confidence_lower": v * scale * 0.5, "confidence_upper": v * scale * (1.5 if lv > 0.9 else 1.2),
                             "confidence_level": lv})
    for d in range(1, 8):
        day = AS_OF + timedelta(days=d)
        for metric, scale in (("calls", 1.0), ("credits", 0.1)):
            base = {"workspace_id": ws, "granularity": "day", "prediction_date": day, "confidence_level": 0.95}
            rows += [{**base, "target_metric": f"{metric}_peak", "prediction_hour": 11, "predicted_value": 120 * scale,
                      "confidence_lower": 60 * scale, "confidence_upper": 180 * scale},
                     {**base, "target_metric": f"{metric}_capacity", "prediction_hour": 11,
                      "predicted_value": 216 * scale, "confidence_lower": None, "confidence_upper": None},
                     *[{**base, "target_metric": f"{metric}_peak_hour_probability", "prediction_hour": h,
                        "predicted_value": p, "confidence_lower": None, "confidence_upper": None}
                       for h, p in ((11, 0.7), (10, 0.2), (12, 0.1))]]
            if d == 1:
                rows.append({**base, "target_metric": f"{metric}_week_peak", "prediction_hour": 11,
                             "predicted_value": 120 * scale, "confidence_lower": 60 * scale,
                             "confidence_upper": 180 * scale})
    frame = pd.DataFrame(rows).assign(model_version="1")
    publish_predictions(conn, frame, "peak_usage", AS_OF)


@pytest.fixture(scope="module")
def client(db_url, engine, tmp_path_factory):
    app = create_app(Settings(database_url=db_url, data_dir=tmp_path_factory.mktemp("pae"), api_key_pepper=PEPPER))
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


@pytest.fixture
def key(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.api_keys, analytics.capacity_limits"))
        seed_peaks(conn, "acme")
        seed_peaks(conn, "globex")
        conn.execute(sa.text("insert into analytics.entities (entity_type, entity_id, external_id) values"
                             " ('workspace', :id, 'initech')"), {"id": str(entity_uuid("workspace", "initech"))})
    return {"X-API-Key": create_api_key(clean_db, ["acme", "initech"], "test", pepper=PEPPER)}


def test_auth_and_input_rules(client, key):
    assert client.get(URL, params={"workspace_id": "acme"}).status_code == 401
    assert client.get(URL, params={"workspace_id": "acme"}, headers={"X-API-Key": "bad"}).status_code == 401
    assert client.get(URL, params={"workspace_id": "globex"}, headers=key).status_code == 403
    for bad in ({"granularity": "weekly"}, {"days_ahead": 0}, {"days_ahead": 15}):
        r = client.get(URL, params={"workspace_id": "acme", **bad}, headers=key)
        assert r.status_code == 422, bad
    assert client.get(URL, params={"workspace_id": "initech"}, headers=key).status_code == 404  # no predictions yet


def test_hourly_answer_with_local_hours_and_alerts(client, key):
    r = client.get(URL, params={"workspace_id": "acme"}, headers=key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["time_zone"] == "Europe/Paris" and body["as_of_date"] == AS_OF.isoformat()
    calls = body["metrics"]["calls"]
    assert len(calls["hourly"]) == 168 and len(calls["daily"]) == 7
    first = calls["hourly"][0]
    assert first["hour_utc"].startswith("2026-04-01T00") and first["hour_local"].startswith("2026-04-01T02")
    assert first["lower_80"] >= first["lower"] and first["upper_80"] <= first["upper"]
    day = calls["daily"][0]
    assert day["peak_hour_local"] == 11 and day["peak_hour_utc"] == 9
    assert [t["hour_local"] for t in day["top_hours"]] == [11, 10, 12]
    assert day["alert"] and day["capacity_limit"] == 100.0 and day["limit_source"] == "max_hour_28d"
    assert len(calls["alerts"]) == 7 and all(a["hour_utc"][11:13] == "09" for a in calls["alerts"])
    assert calls["week_peak"]["peak_hour_local"] == 11


def test_daily_granularity_and_days_ahead(client, key, clean_db):
    r = client.get(URL, params={"workspace_id": str(entity_uuid("workspace", "acme")), "granularity": "daily",
                                "days_ahead": 2}, headers=key)
    assert r.status_code == 200
    calls = r.json()["metrics"]["calls"]
    assert calls["hourly"] == [] and len(calls["daily"]) == 2 and len(calls["alerts"]) == 2
    with clean_db.begin() as conn:  # a capacity limit replaces the 28-day baseline
        conn.execute(sa.text("insert into analytics.capacity_limits (workspace_id, target_metric, limit_value)"
                             " values (:w, 'calls', 1000)"), {"w": str(entity_uuid("workspace", "acme"))})
    calls = client.get(URL, params={"workspace_id": "acme", "granularity": "daily"}, headers=key).json()["metrics"]["calls"]
    assert calls["alerts"] == [] and calls["daily"][0]["limit_source"] == "capacity_limits"
