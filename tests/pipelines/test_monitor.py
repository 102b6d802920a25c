"""Realised accuracy on a hand-made case: every number is checked."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from pipelines.monitor import accuracy_alerts, score_realised, snapshot_predictions

D = date(2026, 3, 31)
WS = uuid.UUID(int=42)
REALISED = ("select workspace_id, 'credits' as target_metric, dimension, 'day' as granularity,"
            " metric_date as prediction_date, 0 as prediction_hour, credits::float8 as actual"
            " from analytics.workspace_daily_metrics where metric_date between :since and :until")


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        for t in ("prediction_snapshots", "prediction_accuracy"):
            conn.execute(sa.text(f"delete from analytics.{t}"))
    return clean_db


def _actual(conn, day: date, credits: float) -> None:
    conn.execute(sa.text("insert into analytics.workspace_daily_metrics (workspace_id, metric_date, dimension,"
                         " credits, calls, errors, active_users) values (:w, :d, 'total', :c, 1, 0, 1)"),
                 {"w": WS, "d": day, "c": credits})


def _predict(conn, as_of: date, days_ahead: int, value: float, lo: float, hi: float) -> None:
    conn.execute(sa.text(
        "insert into analytics.predictions (workspace_id, prediction_type, target_metric, dimension, granularity,"
        " scenario, prediction_date, prediction_hour, predicted_value, confidence_lower, confidence_upper,"
        " confidence_level, model_version, as_of_date) values (:w, 'credit_consumption', 'credits', 'total',"
        " 'day', 'likely', :d, 0, :v, :lo, :hi, 0.95, '3', :as_of)"),
        {"w": WS, "d": as_of + timedelta(days=days_ahead), "v": value, "lo": lo, "hi": hi, "as_of": as_of})


def test_scores_each_horizon_against_what_happened_and_a_fair_naive(db):
    target = D + timedelta(days=7)
    with db.begin() as conn:
        for k in range(0, 15):
            _actual(conn, D - timedelta(days=k), 10.0)  # history: 10 a day
        _actual(conn, target, 16.0)  # what happened on the target day
        _predict(conn, D, 7, 12.0, 9.0, 13.0)  # 7 days ahead: error 4, 16 outside [9, 13]
        _predict(conn, D, 3, 99.0, 0, 100.0)  # not a monitored horizon: never snapshotted
        assert snapshot_predictions(conn, "credit_consumption", D) == 1
        # six nights later the publisher has replaced the row with a 1-day-ahead forecast: error 1, inside
        conn.execute(sa.text("delete from analytics.predictions where prediction_date = :d"), {"d": target})
        _predict(conn, target - timedelta(days=1), 1, 15.0, 14.0, 18.0)
        assert snapshot_predictions(conn, "credit_consumption", target - timedelta(days=1)) == 1
    assert score_realised(db, "credit_consumption", REALISED, target, target) == 2
    assert score_realised(db, "credit_consumption", REALISED, target, target) == 2  # idempotent
    with db.connect() as conn:
        rows = {r.horizon_bucket: r for r in conn.execute(sa.text(
            "select * from analytics.v_prediction_accuracy order by horizon_bucket")).all()}
    assert set(rows) == {"1d", "7d"}
    week, day = rows["7d"], rows["1d"]
    assert (week.n, week.abs_error, week.actual_total, week.hits) == (1, 4.0, 16.0, 0)
    assert week.wape == pytest.approx(0.25)
    # the weekly seasonal naive made at the same as-of date (D) says 10 for D + 7: error 6
    assert week.naive_abs_error == 6.0 and week.error_vs_seasonal_naive == pytest.approx(4 / 6)
    assert (day.abs_error, day.hits, day.coverage) == (1.0, 1, 1.0)
    # a 1-day-ahead naive is also a week back: actual of target - 7 = D, 10 -> error 6
    assert day.naive_abs_error == 6.0


def test_alert_when_realised_is_worse_than_promised(db):
    with db.begin() as conn:
        conn.execute(sa.text("delete from analytics.ml_models where model_name = 'm-monitor'"))
        conn.execute(sa.text(
            "insert into analytics.ml_models (model_name, model_type, version, target_metric, training_params,"
            " performance_metrics, is_active) values ('m-monitor', 't', '1', 'credits', '{}',"
            " '{\"holdout_wape\": 0.10}', true)"))
        conn.execute(sa.text(
            "insert into analytics.prediction_accuracy (workspace_id, prediction_type, target_metric, dimension,"
            " horizon_bucket, scored_date, model_version, n, abs_error, squared_error, actual_total, hits)"
            " values (:w, 'credit_consumption', 'credits', 'total', '1d', :d, '1', 1, 3, 9, 10, 1)"),
            {"w": WS, "d": D})
    worse = accuracy_alerts(db, "credit_consumption", "holdout_wape", "m-monitor", D, 14, 0.25)
    assert worse["realised_wape"] == pytest.approx(0.3) and worse["alert"]
    fine = accuracy_alerts(db, "credit_consumption", "holdout_wape", "m-monitor", D, 14, 2.5)
    assert not fine["alert"]


def test_growth_declares_its_realised_values_and_is_scored(db):
    from pipelines.kinds import get_kind

    growth = get_kind("growth")
    with db.begin() as conn:
        conn.execute(sa.text("delete from analytics.workspace_growth_metrics"))
        for day, (dau, wau, mau) in ((D, (4, 8, 18)), (D + timedelta(days=7), (5, 9, 20))):
            conn.execute(sa.text("insert into analytics.workspace_growth_metrics (workspace_id, metric_date, dau, wau,"
                                 " mau, new_users, returning_users, reactivated_users, lost_users, users_ever)"
                                 " values (:w, :d, :dau, :wau, :mau, 1, :ret, 0, 0, 30)"),
                         {"w": WS, "d": day, "dau": dau, "wau": wau, "mau": mau, "ret": dau - 1})
        conn.execute(sa.text(
            "insert into analytics.prediction_snapshots (workspace_id, prediction_type, target_metric, dimension,"
            " granularity, scenario, prediction_date, prediction_hour, as_of_date, days_ahead, predicted_value,"
            " confidence_lower, confidence_upper, confidence_level, model_version) values (:w, 'growth', 'mau',"
            " 'total', 'day', 'likely', :d, 0, :as_of, 1, 21, 19, 23, 0.95, '1')"),
            {"w": WS, "d": D + timedelta(days=7), "as_of": D + timedelta(days=6)})
    day = D + timedelta(days=7)
    assert score_realised(db, growth.prediction_type, growth.realised_sql, day, day) == 1
    with db.connect() as conn:
        row = conn.execute(sa.text("select target_metric, n, abs_error, actual_total, naive_abs_error, hits"
                                   " from analytics.prediction_accuracy where prediction_type = 'growth'")).one()
    assert tuple(row) == ("mau", 1, 1.0, 20.0, 2.0, 1)  # |21 - 20|; naive: MAU a week earlier, 18
