"""GET /api/analytics/models/health on what the real monitor step wrote, read as the read-only role."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.services.conftest import api_client, api_key_header
from tests.services.test_service import add_workspace

PEPPER = "model-health-pepper"
URL = "/api/analytics/models/health"
D = date(2026, 5, 20)
TABLES = ("api_keys", "prediction_snapshots", "prediction_accuracy", "classification_accuracy", "ab_comparisons")


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in TABLES)))
    return clean_db


@pytest.fixture(scope="module")
def client(db_url, engine, tmp_path_factory):
    with api_client(db_url, tmp_path_factory.mktemp("pae"), PEPPER) as c:
        yield c


def _model(conn, version: str, active: bool, wape: float, created: str) -> None:
    conn.execute(sa.text(
        "insert into analytics.ml_models (model_name, model_type, version, target_metric, training_params,"
        " performance_metrics, is_active, created_at) values ('pae-credit-consumption', 'ensemble', :v, 'credits',"
        " '{}', cast(:m as jsonb), :a, cast(:c as timestamp))"),
        {"v": version, "a": active, "m": json.dumps({"holdout_Ensemble_pooled_wape": wape}), "c": created})


@pytest.fixture
def monitored(db, settings):
    """Two workspaces' consumption forecasts scored by the real monitor step: realised WAPE 0.3 vs 0.1 promised."""
    from pipelines.nightly import monitor_step

    with db.begin() as conn:
        for name in ("acme", "globex"):
            ws = add_workspace(conn, name)
            for k in range(3):
                day = D - timedelta(days=k)
                conn.execute(sa.text("insert into analytics.workspace_daily_metrics (workspace_id, metric_date,"
                                     " dimension, credits, calls, errors, active_users) values (:w, :d, 'total', 10,"
                                     " 1, 0, 1)"), {"w": ws, "d": day})
                conn.execute(sa.text(
                    "insert into analytics.prediction_snapshots (workspace_id, prediction_type, target_metric,"
                    " dimension, granularity, scenario, prediction_date, prediction_hour, as_of_date, days_ahead,"
                    " predicted_value, confidence_lower, confidence_upper, confidence_level, model_version) values"
                    " (:w, 'credit_consumption', 'credits', 'total', 'day', 'likely', :d, 0, :a, 1, 13, 11, 15, 0.95,"
                    " '2')"), {"w": ws, "d": day, "a": day - timedelta(days=1)})
        _model(conn, "1", False, 0.12, "2026-04-01")
        _model(conn, "2", True, 0.10, "2026-05-01")
        _model(conn, "3", False, 0.09, "2026-05-19")  # registered, not promoted yet
        conn.execute(sa.text(
            "insert into analytics.ab_comparisons (kind, run_date, prediction_type, window_days, metric,"
            " workspaces_champion, workspaces_challenger, workspace_days_champion, workspace_days_challenger,"
            " metric_champion, metric_challenger, diff, ci_low, ci_high, relative_diff, confidence, verdict,"
            " champion_version, challenger_version) values ('consumption', :d, 'credit_consumption', 14,"
            " 'error_vs_naive', 9, 1, 90, 10, 0.8, 0.7, -0.1, -0.3, 0.1, -0.125, 0.95, 'no_difference', '2', '3')"),
            {"d": D})
    monitor_step(D.isoformat(), settings)
    return api_key_header(db, ["acme"], "health", PEPPER)


def test_needs_a_key_and_a_sane_window(client, monitored):
    assert client.get(URL).status_code == 401
    for bad in (0, 91, "x"):
        assert client.get(URL, params={"window_days": bad}, headers=monitored).status_code == 422


def test_per_kind_models_realised_accuracy_alerts_and_ab(client, monitored):
    r = client.get(URL, headers=monitored)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["as_of_date"] == D.isoformat() and body["window_days"] == 14
    kinds = {k["kind"]: k for k in body["kinds"]}
    assert set(kinds) == {"consumption", "growth", "peak_usage", "agent_errors", "churn"}  # every monitored kind
    c = kinds["consumption"]
    assert c["prediction_type"] == "credit_consumption" and c["model_name"] == "pae-credit-consumption"
    assert c["champion"]["version"] == "2" and c["challenger"]["version"] == "3"
    assert c["champion"]["promised"] == {"holdout_Ensemble_pooled_wape": 0.1}
    (realised,) = c["realised"]
    assert (realised["target_metric"], realised["horizon_bucket"], realised["n"]) == ("credits", "1d", 6)
    assert realised["wape"] == pytest.approx(0.3) and realised["coverage"] == 0.0
    assert [d["scored_date"] for d in c["daily"]] == [(D - timedelta(days=k)).isoformat() for k in (2, 1, 0)]
    (alert,) = c["alerts"]
    assert alert["status"] == "alert" and alert["realised"] == pytest.approx(0.3) and alert["promised"] == 0.1
    assert c["alert"] is True
    assert c["ab_comparison"]["verdict"] == "no_difference" and c["ab_comparison"]["diff"] == -0.1
    churn = kinds["churn"]
    assert churn["realised"] == [] and churn["outcomes"] == [] and churn["alert"] is False
    assert churn["alerts"][0]["status"] == "no_data"


def test_before_the_first_monitor_run(client, db):
    with db.begin() as conn:
        add_workspace(conn, "acme")
        conn.execute(sa.text("delete from analytics.pipeline_runs where step = 'monitor'"))
    key = api_key_header(db, ["acme"], "health", PEPPER)
    assert client.get(URL, headers=key).json() == {"as_of_date": None, "window_days": 14, "kinds": []}


def test_tolerates_a_missing_ab_table(client, monitored, db):
    with db.begin() as conn:
        conn.execute(sa.text("alter table analytics.ab_comparisons rename to ab_comparisons_hidden"))
    try:
        body = client.get(URL, headers=monitored).json()
        assert all(k["ab_comparison"] is None for k in body["kinds"]) and body["kinds"]
    finally:
        with db.begin() as conn:
            conn.execute(sa.text("alter table analytics.ab_comparisons_hidden rename to ab_comparisons"))


def test_a_realised_accuracy_alert_records_a_pending_accuracy_retrain(db, settings, monitored):
    from pipelines.nightly import monitor_step

    with db.begin() as conn:  # earlier tests of the session may have left a pending request of another reason
        conn.execute(sa.text("truncate analytics.retrain_runs"))
    monitor_step(D.isoformat(), settings)
    with db.connect() as conn:
        rows = conn.execute(sa.text("select kind, reason, status, figures from analytics.retrain_runs"
                                    " where status = 'pending'")).mappings().all()
    assert [(r["kind"], r["reason"]) for r in rows] == [("consumption", "accuracy")]
    assert rows[0]["figures"]["alerts"][0]["alert"] is True
