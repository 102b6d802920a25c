"""PredictiveAnalytics (the read side) on rows inserted the way the pipeline writes them."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from core.ids import entity_uuid
from services.predictive_analytics import (
    NoPredictionsError,
    PredictiveAnalytics,
    UnknownWorkspaceError,
    _periods,
)

AS_OF = date(2026, 3, 31)
SHARES = {"chat": 0.5, "search": 0.3, "api": 0.2}


def add_workspace(conn: sa.Connection, external_id: str) -> uuid.UUID:
    ws = entity_uuid("workspace", external_id)
    conn.execute(sa.text("insert into analytics.entities (entity_type, entity_id, external_id) values"
                         " ('workspace', :id, :ext)"), {"id": str(ws), "ext": external_id})
    return ws


def seed_consumption(conn: sa.Connection, external_id: str, days: int = 30, history_days: int = 120,
                     as_of: date = AS_OF) -> uuid.UUID:
    """A workspace with a forecast (total = sum of SHARES' dimensions), an older forecast and history."""
    ws = add_workspace(conn, external_id)
    params = {"ws": str(ws), "as_of": as_of, "days": days, "history_days": history_days,
              "shares": json.dumps({"total": 1.0, **SHARES})}
    conn.execute(sa.text("""
        insert into analytics.predictions (workspace_id, prediction_type, target_metric, dimension, granularity,
            scenario, prediction_date, predicted_value, confidence_lower, confidence_upper, confidence_level,
            model_version, as_of_date)
        select cast(:ws as uuid), 'credit_consumption', 'credits', s.key, 'day', 'likely', :as_of + d,
               (100 + d) * s.value::float8, 0.8 * (100 + d) * s.value::float8, 1.2 * (100 + d) * s.value::float8,
               0.95, 'ets-v3', :as_of
        from generate_series(1, :days) d, jsonb_each_text(cast(:shares as jsonb)) s
        union all  -- running totals of the workspace total from the first forecast day
        select cast(:ws as uuid), 'credit_consumption', 'credits_cumulative', 'total', 'day', 'likely', :as_of + d,
               d * (201 + d) / 2.0, 0.9 * d * (201 + d) / 2.0, 1.1 * d * (201 + d) / 2.0, 0.95, 'ets-v3', :as_of
        from generate_series(1, :days) d
        union all  -- a day of the previous forecast, no longer the latest
        select cast(:ws as uuid), 'credit_consumption', 'credits', 'total', 'day', 'likely', :as_of, 999, 1, 2000,
               0.95, 'ets-v2', :as_of - 1
    """), params)
    conn.execute(sa.text("""
        insert into analytics.workspace_daily_metrics
            (workspace_id, metric_date, dimension, credits, calls, errors, active_users)
        select cast(:ws as uuid), :as_of - i, s.key, 10 * s.value::float8, 10, 1, 3
        from generate_series(0, :history_days - 1) i, jsonb_each_text(cast(:shares as jsonb)) s
    """), params)
    return ws


def seed_churn(conn: sa.Connection, ws_external: str, users: dict[str, float], prediction_date: date = AS_OF) -> None:
    """Churn scores of users (external id -> probability) of a workspace, users registered as entities."""
    ws = entity_uuid("workspace", ws_external)
    for ext, p in users.items():
        uid = entity_uuid("user", ext)
        conn.execute(sa.text("""
            insert into analytics.entities (entity_type, entity_id, external_id, workspace_id)
            values ('user', :id, :ext, :ws) on conflict do nothing
        """), {"id": str(uid), "ext": ext, "ws": str(ws)})
        factors = [{"feature": "days_since_last_active", "contribution": round(p, 3), "value": 12.0,
                    "direction": "up", "text": "no activity for 12 days"}]
        actions = [{"action_id": "reengage_email", "title": "Send a re-engagement email", "reason": "inactive",
                    "priority": "high" if p > 0.5 else "low"}]
        conn.execute(sa.text("""
            insert into analytics.churn_predictions (workspace_id, user_id, prediction_date, churn_probability,
                risk_score, risk_factors, recommended_actions, days_until_churn, model_version)
            values (:ws, :u, :d, :p, :r, cast(:f as jsonb), cast(:a as jsonb), :du, 'xgb-v1')
        """), {"ws": str(ws), "u": str(uid), "d": prediction_date, "p": p, "r": 100 * p, "f": json.dumps(factors),
               "a": json.dumps(actions), "du": 10 if p > 0.5 else None})


@pytest.fixture
def service(clean_db) -> PredictiveAnalytics:
    return PredictiveAnalytics(clean_db, history_days=90)


def test_unknown_workspace(service):
    with pytest.raises(UnknownWorkspaceError, match="unknown workspace 'nope'"):
        asyncio.run(service.predict_credit_consumption("nope"))
    with pytest.raises(UnknownWorkspaceError):
        asyncio.run(service.predict_user_churn(str(uuid.uuid4())))


def test_workspace_without_predictions(service, clean_db):
    with clean_db.begin() as conn:
        add_workspace(conn, "fresh")
    with pytest.raises(NoPredictionsError, match="no credit consumption predictions yet.*run the nightly pipeline"):
        asyncio.run(service.predict_credit_consumption("fresh"))
    with pytest.raises(NoPredictionsError, match="no churn predictions yet"):
        asyncio.run(service.predict_user_churn("fresh"))


def test_consumption_latest_forecast_breakdown_and_history(service, clean_db):
    with clean_db.begin() as conn:
        ws = seed_consumption(conn, "acme")
    out = asyncio.run(service.predict_credit_consumption(str(ws), days_ahead=10))
    assert out["workspace"] == {"id": ws, "external_id": "acme"}
    assert out["as_of_date"] == AS_OF and out["model_version"] == "ets-v3" and out["confidence_level"] == 0.95
    assert [p["date"] for p in out["predictions"]] == [AS_OF + timedelta(days=d) for d in range(1, 11)]
    assert all(p["lower"] <= p["predicted_value"] <= p["upper"] for p in out["predictions"])
    assert [b["dimension"] for b in out["breakdown"]] == ["chat", "search", "api"]  # largest first
    for i, p in enumerate(out["predictions"]):
        assert sum(b["predictions"][i]["predicted_value"] for b in out["breakdown"]) == pytest.approx(
            p["predicted_value"])
    assert len(out["history"]) == 90 and out["history"][-1]["date"] == AS_OF
    running, total = out["cumulative"], 0.0
    assert [p["days"] for p in running] == list(range(1, 11))
    for day, point in zip(out["predictions"], running):
        total += day["predicted_value"]
        assert point["predicted_value"] == pytest.approx(total) and point["lower"] < total < point["upper"]


def test_weekly_sums_days_and_bounds(service, clean_db):
    with clean_db.begin() as conn:
        seed_consumption(conn, "acme")
    day = asyncio.run(service.predict_credit_consumption("acme", 30, "day"))
    week = asyncio.run(service.predict_credit_consumption("acme", 30, "week"))
    assert [w["days"] for w in week["predictions"]] == [7, 7, 7, 7, 2]
    assert week["predictions"][0]["date"] == AS_OF + timedelta(days=1)
    for key in ("predicted_value", "lower", "upper"):
        assert sum(w[key] for w in week["predictions"]) == pytest.approx(sum(d[key] for d in day["predictions"]))
    assert week["history"][-1]["date"] == AS_OF - timedelta(days=6) and week["history"][-1]["days"] == 7


def test_periods_leave_missing_bounds_missing():
    start = date(2026, 1, 1)
    points = [{"date": start + timedelta(days=i), "predicted_value": 1.0, "lower": None if i == 3 else 0.5,
               "upper": 2.0} for i in range(8)]
    weeks = _periods(points, start, "week", ("predicted_value", "lower", "upper"))
    assert weeks == [{"date": start, "days": 7, "predicted_value": 7.0, "lower": None, "upper": 14.0},
                     {"date": start + timedelta(days=7), "days": 1, "predicted_value": 1.0, "lower": 0.5,
                      "upper": 2.0}]


def test_churn_latest_date_sorted_and_users_filter(service, clean_db):
    with clean_db.begin() as conn:
        add_workspace(conn, "acme")
        seed_churn(conn, "acme", {"u1": 0.9, "u2": 0.2, "u3": 0.6}, AS_OF)
        seed_churn(conn, "acme", {"u1": 0.1, "u2": 0.99}, AS_OF - timedelta(days=1))
    out = asyncio.run(service.predict_user_churn("acme"))
    assert out["prediction_date"] == AS_OF and out["total"] == 3
    assert [u["user_external_id"] for u in out["users"]] == ["u1", "u3", "u2"]
    assert out["users"][0]["risk_factors"][0]["feature"] == "days_since_last_active"
    assert out["users"][0]["recommended_actions"][0]["action_id"] == "reengage_email"

    by_ext = asyncio.run(service.predict_user_churn("acme", users=["u2", "u3"]))
    by_uuid = asyncio.run(service.predict_user_churn("acme", users=[str(entity_uuid("user", "u2")), "u3"]))
    assert [u["user_external_id"] for u in by_ext["users"]] == ["u3", "u2"] and by_ext["total"] == 2
    assert by_uuid["users"] == by_ext["users"]
    assert asyncio.run(service.predict_user_churn("acme", users=[]))["users"] == []

    page = asyncio.run(service.predict_user_churn("acme", risk_threshold=0.5, limit=1, offset=1))
    assert page["total"] == 2 and [u["user_external_id"] for u in page["users"]] == ["u3"]


@pytest.mark.parametrize("kwargs", [{"risk_threshold": 1.5}, {"limit": 0}, {"offset": -1}])
def test_churn_rejects_out_of_range(service, kwargs):
    with pytest.raises(ValueError):
        asyncio.run(service.predict_user_churn("acme", **kwargs))


@pytest.mark.parametrize("kwargs", [{"days_ahead": 0}, {"days_ahead": 366}, {"granularity": "month"}])
def test_consumption_rejects_out_of_range(service, kwargs):
    with pytest.raises(ValueError):
        asyncio.run(service.predict_credit_consumption("acme", **kwargs))
