"""Realised accuracy of peak usage, agent error rates and churn on hand-made cases: every number is checked."""
from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from core.ids import entity_uuid
from pipelines.kinds import get_kind
from pipelines.monitor import monitor_kind, score_kind, score_outcomes, snapshot_predictions, snapshot_scope

D = date(2026, 4, 30)
MONITOR_TABLES = ("prediction_snapshots", "prediction_accuracy", "classification_accuracy", "agent_daily_metrics",
                  "agent_error_alerts")


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        for t in MONITOR_TABLES:
            conn.execute(sa.text(f"delete from analytics.{t}"))
    return clean_db


def _entity(conn, kind: str, external_id: str) -> uuid.UUID:
    eid = entity_uuid(kind, external_id)
    conn.execute(sa.text("insert into analytics.entities (entity_type, entity_id, external_id) values (:k, :i, :x)"),
                 {"k": kind, "i": eid, "x": external_id})
    return eid


def _snapshot(conn, ws, ptype: str, metric: str, day: date, hour: int, as_of: date, value: float, lo: float,
              hi: float, granularity: str = "day", dimension: str = "total", version: str = "1") -> None:
    conn.execute(sa.text(
        "insert into analytics.prediction_snapshots (workspace_id, prediction_type, target_metric, dimension,"
        " granularity, scenario, prediction_date, prediction_hour, as_of_date, days_ahead, predicted_value,"
        " confidence_lower, confidence_upper, confidence_level, model_version) values (:w, :t, :m, :dim, :g,"
        " 'likely', :d, :h, :a, :ahead, :v, :lo, :hi, 0.95, :ver)"),
        {"w": ws, "t": ptype, "m": metric, "dim": dimension, "g": granularity, "d": day, "h": hour, "a": as_of,
         "ahead": (day - as_of).days, "v": value, "lo": lo, "hi": hi, "ver": version})


def _model(conn, name: str, metrics: str) -> None:
    conn.execute(sa.text(
        "insert into analytics.ml_models (model_name, model_type, version, target_metric, training_params,"
        " performance_metrics, is_active) values (:n, 't', '1', 'm', '{}', cast(:p as jsonb), true)"),
        {"n": name, "p": metrics})


# ---------------------------------------------------------------- peak usage
def _events(conn, ws: str, hours: dict[datetime, int]) -> None:
    conn.execute(sa.text(
        "insert into analytics.usage_events (event_key, event_time, workspace_id, feature, credits, status, count)"
        " values (:k, :t, :w, 'chat', :c, 'ok', :n)"),
        [{"k": uuid.uuid4(), "t": t, "w": ws, "c": 0.5 * n, "n": n} for t, n in hours.items()])


def test_peak_usage_scores_hours_by_utc_and_peaks_by_local_day_with_the_hour_hit(db):
    peak = get_kind("peak_usage")
    utc = timezone.utc
    with db.begin() as conn:
        ws = _entity(conn, "workspace", "ws-peak")
        conn.execute(sa.text(
            "insert into analytics.ml_features (entity_type, entity_id, feature_set, features, computed_at, as_of_date)"
            " values ('workspace', :w, 'workspace_hourly', '{\"time_zone\": \"Etc/GMT-2\"}', now(), :d)"),
            {"w": ws, "d": D})  # UTC+2, no daylight saving
        start = datetime(D.year, D.month, D.day, tzinfo=utc) - timedelta(days=10)
        hours = {start + timedelta(hours=h): 1 for h in range(11 * 24)}  # one call an hour, through D 23:00 UTC
        hours[datetime(D.year, D.month, D.day, 12, tzinfo=utc)] = 10  # D's peak: 12:00 UTC = 14:00 local
        del hours[datetime(D.year, D.month, D.day, 5, tzinfo=utc)]  # an hour without events is a zero
        _events(conn, "ws-peak", hours)
        # hourly calls (UTC hour), 1 day ahead: 8 for 10 (error 2, outside [5, 9]); 2 for the empty hour
        _snapshot(conn, ws, "peak_usage", "calls", D, 12, D - timedelta(days=1), 8, 5, 9, "hour")
        _snapshot(conn, ws, "peak_usage", "calls", D, 5, D - timedelta(days=1), 2, 0, 3, "hour")
        # local day D's peak, 7 days ahead, predicted at 13:00 local (hit: within an hour of 14:00)
        _snapshot(conn, ws, "peak_usage", "calls_peak", D, 13, D - timedelta(days=7), 12, 9, 15)
        # 1 day ahead at 20:00 local (miss), value 10 (exact)
        _snapshot(conn, ws, "peak_usage", "calls_peak", D, 20, D - timedelta(days=1), 10, 9, 11)
        # local day D + 1 is not over in the loaded hours: never scored
        _snapshot(conn, ws, "peak_usage", "calls_peak", D + timedelta(days=1), 20, D - timedelta(days=1), 1, 0, 2)
    assert score_kind(db, peak, D - timedelta(days=1), D + timedelta(days=1)) == 3
    assert score_kind(db, peak, D - timedelta(days=1), D + timedelta(days=1)) == 3  # idempotent
    with db.connect() as conn:
        rows = {(r.target_metric, r.horizon_bucket): r for r in conn.execute(sa.text(
            "select * from analytics.prediction_accuracy where prediction_type = 'peak_usage'")).all()}
    hourly = rows[("calls", "1d")]
    # errors 2 + 2; 10 outside [5, 9], the empty hour's 0 inside [0, 3]
    assert (hourly.n, hourly.abs_error, hourly.actual_total, hourly.hits, hourly.hour_hits) == (2, 4.0, 10.0, 1, None)
    assert hourly.naive_abs_error == 9.0 + 1.0  # a week earlier both hours had 1 call
    week = rows[("calls_peak", "7d")]
    assert (week.n, week.abs_error, week.actual_total, week.hits, week.hour_hits) == (1, 2.0, 10.0, 1, 1)
    assert week.naive_abs_error == 9.0  # local day D - 7 peaked at 1 call
    day = rows[("calls_peak", "1d")]
    assert (day.abs_error, day.hits, day.hour_hits) == (0.0, 1, 0)
    with db.connect() as conn:
        daily = conn.execute(sa.text("select peak_hour_hit_rate, wape from analytics.v_prediction_accuracy_daily"
                                     " where target_metric = 'calls_peak' and horizon_bucket = '7d'")).one()
    assert daily.peak_hour_hit_rate == 1.0 and daily.wape == pytest.approx(0.2)


def test_peak_usage_snapshots_keep_hourly_values_and_daily_peaks_only(db):
    peak = get_kind("peak_usage")
    with db.begin() as conn:
        ws = _entity(conn, "workspace", "ws-snap")
        for metric, gran, hour in (("calls", "hour", 9), ("calls_80", "hour", 9), ("calls_peak", "day", 14),
                                   ("calls_capacity", "day", 14), ("credits_peak_hour_probability", "day", 14)):
            conn.execute(sa.text(
                "insert into analytics.predictions (workspace_id, prediction_type, target_metric, granularity,"
                " prediction_date, prediction_hour, predicted_value, confidence_lower, confidence_upper, as_of_date)"
                " values (:w, 'peak_usage', :m, :g, :d, :h, 1, 0, 2, :a)"),
                {"w": ws, "m": metric, "g": gran, "d": D + timedelta(days=1), "h": hour, "a": D})
        assert snapshot_predictions(conn, "peak_usage", D, snapshot_scope(peak)) == 2
        assert snapshot_predictions(conn, "peak_usage", D) == 3  # default scope: daily workspace totals
        kept = conn.execute(sa.text("select distinct target_metric from analytics.prediction_snapshots")).scalars()
        assert set(kept) == {"calls", "calls_peak", "calls_capacity", "credits_peak_hour_probability"}


# ---------------------------------------------------------------- agent error rates
def _alert(conn, ws, agent, status: str, level: str | None, p: float) -> None:
    conn.execute(sa.text(
        "insert into analytics.agent_error_alerts (workspace_id, agent_id, as_of_date, status, alert_level,"
        " probability, threshold, threshold_source, current_rate, baseline_rate, calls_last_7d, errors_last_7d,"
        " reason, risk_rank, model_version) values (:w, :a, :d, :s, :l, :p, 0.1, 'default', 0.02, 0.02, 700, 14,"
        " 'r', :p, '3')"), {"w": ws, "a": agent, "d": D - timedelta(days=14), "s": status, "l": level, "p": p})


def test_agent_error_rates_and_alerts_against_confirmed_breaches(db, settings):
    agents = get_kind("agent_errors")
    as_of = D - timedelta(days=14)
    with db.begin() as conn:
        ws = _entity(conn, "workspace", "ws-agents")
        ids = {name: _entity(conn, "agent", name) for name in ("ag-breach", "ag-calm", "ag-false", "ag-broken")}
        for name, agent in ids.items():
            for k in range(-3, 15):
                day = as_of + timedelta(days=k)
                errors = 30 if name == "ag-breach" and k in (6, 7) else 2  # two days at 30% > threshold 10%
                conn.execute(sa.text("insert into analytics.agent_daily_metrics (workspace_id, agent_id, metric_date,"
                                     " calls, errors, credits) values (:w, :a, :d, 100, :e, 1)"),
                             {"w": ws, "a": agent, "d": day, "e": errors})
        _alert(conn, ws, ids["ag-breach"], "escalating", "warning", 0.6)
        _alert(conn, ws, ids["ag-calm"], "ok", None, 0.05)
        _alert(conn, ws, ids["ag-false"], "escalating", "critical", 0.5)
        _alert(conn, ws, ids["ag-broken"], "chronic", "critical", 1.0)  # no forecast to judge: left out
        # ag-breach's rate on D, forecast a day ahead: 30% for 2%
        _snapshot(conn, ws, "error_rate", "error_rate", D, 0, D - timedelta(days=1), 0.3, 0.2, 0.4,
                  dimension="ag-breach")
        _model(conn, "pae-agent-error-rates", '{"forecast_wmae": 0.05, "oot_pr_auc": 0.9}')
    settings = settings.model_copy(update={"monitor_rescore_days": 1})
    out = monitor_kind(settings, db, agents, D)
    assert (out["scored_rows"], out["outcome_rows"]) == (1, 1)
    with db.connect() as conn:
        rate = conn.execute(sa.text("select dimension, abs_error, actual_total, hits from analytics.prediction_accuracy"
                                    " where prediction_type = 'error_rate'")).one()
        alerts = conn.execute(sa.text("select * from analytics.v_classification_accuracy"
                                      " where prediction_type = 'error_rate'")).one()
    assert rate.dimension == "ag-breach" and rate.abs_error == pytest.approx(0.28) and rate.hits == 0
    assert (alerts.n, alerts.positives, alerts.predicted_positives, alerts.true_positives) == (3, 1, 2, 1)
    assert (alerts.precision, alerts.recall, alerts.auc) == (0.5, 1.0, 1.0)
    assert alerts.as_of_date == as_of and alerts.scored_date == D and alerts.model_version == "3"
    by_measure = {a["measure"]: a for a in out["alerts"]}
    assert by_measure["mae"]["alert"] and by_measure["mae"]["realised_wape"] == pytest.approx(0.28)
    assert not by_measure["pr_auc"]["alert"] and by_measure["pr_auc"]["realised"] == 1.0
    assert out["alert"] and out["summary"]["realised_breach_within_horizon_recall"] == 1.0


def test_alert_outcomes_wait_for_the_window_to_close(db, settings):
    from pipelines.agent_errors.realised import alert_outcomes

    with pytest.raises(ValueError, match="has not closed"):
        alert_outcomes(settings, db, D - timedelta(days=13), D)


# ---------------------------------------------------------------- churn
def _active_days(settings, rows: list[tuple[str, str, date]]) -> None:
    from pipelines.features.store import daily_table

    frame = pd.DataFrame([{"workspace_id": w, "user_id": u, "day": pd.Timestamp(d), "feature": "chat",
                           "credits": 1.0, "calls": 1, "errors": 0} for w, u, d in rows])
    for month, part in frame.groupby(frame["day"].dt.strftime("%Y-%m")):
        path = settings.offline_store_dir / "daily" / "user_feature" / f"month={month}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(daily_table("user_feature", part.sort_values("day")), path)


def test_churn_scores_of_d_minus_30_against_who_went_inactive(db, settings, caplog):
    churn = get_kind("churn")
    as_of = D - timedelta(days=30)
    probabilities = {"u1": 0.9, "u2": 0.7, "u3": 0.2, "u4": 0.1}
    with db.begin() as conn:
        ws = _entity(conn, "workspace", "ws-churn")
        for user, p in probabilities.items():
            conn.execute(sa.text(
                "insert into analytics.churn_predictions (workspace_id, user_id, prediction_date, churn_probability,"
                " risk_score, risk_factors, model_version) values (:w, :u, :d, :p, :r, '[]', '5')"),
                {"w": ws, "u": _entity(conn, "user", user), "d": as_of, "p": p, "r": 100 * p})
        _model(conn, "pae-user-churn", '{"oot_brier": 0.2, "oot_auc": 0.9}')
    # u1: never again (churned); u2, u3 active inside (T, T + 30]; u4 only on day 31 (churned)
    _active_days(settings, [("ws-churn", "u1", as_of), ("ws-churn", "u2", as_of + timedelta(days=10)),
                            ("ws-churn", "u3", as_of + timedelta(days=3)),
                            ("ws-churn", "u4", as_of + timedelta(days=31))])
    with caplog.at_level(logging.WARNING, logger="pipelines.monitor"):
        out = monitor_kind(settings, db, churn, D)
    assert out["outcome_rows"] == 1 and "scored_rows" not in out  # churn declares outcomes only
    with db.connect() as conn:
        row = conn.execute(sa.text("select * from analytics.v_classification_accuracy"
                                   " where prediction_type = 'churn_30d'")).one()
    assert (row.target_metric, row.n, row.positives, row.model_version) == ("churned", 4, 2, "5")
    assert row.auc == pytest.approx(0.5)  # churners 0.9 and 0.1 against stayers 0.7 and 0.2
    assert row.brier == pytest.approx((0.1 ** 2 + 0.7 ** 2 + 0.2 ** 2 + 0.9 ** 2) / 4)
    assert row.calibration_in_the_large == pytest.approx((1.9 - 2) / 4)
    assert (row.precision, row.recall) == (0.5, 0.5)
    (alert,) = out["alerts"]
    assert alert["alert"] and alert["realised"] == pytest.approx(0.3375) and alert["promised"] == 0.2
    assert "realised brier 0.338" in caplog.text
    again = monitor_kind(settings, db, churn, D)  # idempotent
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.classification_accuracy")).scalar() == 1
    assert again["summary"]["realised_churned_auc"] == pytest.approx(0.5)


def test_outcomes_reject_bad_probabilities(db):
    bad = pd.DataFrame({"target_metric": ["churned"], "as_of_date": [D], "model_version": ["1"],
                        "probability": [1.5], "outcome": [1], "predicted_positive": [True]})
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        score_outcomes(db, "churn_30d", bad, D)


def test_monitor_step_covers_every_declaring_kind_and_logs_mlflow(db, settings):
    import mlflow

    from pipelines.nightly import monitor_step
    from pipelines.registry import configure

    out = monitor_step(D.isoformat(), settings)
    assert set(out["scored_rows"]) == {"consumption", "growth", "peak_usage", "agent_errors"}
    assert set(out["outcome_rows"]) == {"churn", "agent_errors"}
    assert out["mlflow_run_ids"] == {}  # nothing scored: no summary to log
    with db.begin() as conn:
        ws = _entity(conn, "workspace", "ws-m")
        conn.execute(sa.text("insert into analytics.workspace_daily_metrics (workspace_id, metric_date, dimension,"
                             " credits, calls, errors, active_users) values (:w, :d, 'total', 10, 1, 0, 1)"),
                     {"w": ws, "d": D})
        _snapshot(conn, ws, "credit_consumption", "credits", D, 0, D - timedelta(days=1), 12, 9, 13)
    out = monitor_step(D.isoformat(), settings)
    run_id = out["mlflow_run_ids"]["consumption"]
    assert monitor_step(D.isoformat(), settings)["mlflow_run_ids"]["consumption"] == run_id  # same run again
    configure(settings)
    metrics = mlflow.get_run(run_id).data.metrics
    assert metrics["realised_credits_1d_wape"] == pytest.approx(0.2) and metrics["realised_credits_1d_n"] == 1
