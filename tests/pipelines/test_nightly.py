"""End to end: the nightly DAG through Airflow's dag.test() on a small generated platform, twice,
and a failing quality gate that must leave the published predictions alone."""
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from core.settings import Settings, get_settings
from pipelines.ingest.load import load_events
from pipelines.simulator.generate import generate_platform

pytestmark = pytest.mark.slow
END = date(2026, 6, 30)
TABLES = ("predictions", "churn_predictions", "ml_features", "workspace_daily_metrics")


@pytest.fixture(scope="module")
def nightly_env(tmp_path_factory, engine, db_url):
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    root = tmp_path_factory.mktemp("nightly")
    mp = pytest.MonkeyPatch()
    for k, v in {"DATABASE_URL": db_url, "PAE_DATA_DIR": str(root / "pae"), "PAE_SHARDS": "2",
                 "PAE_CHURN_MIN_EXAMPLES": "20",
                 "PAE_API_KEY_PEPPER": "nightly-test-pepper"}.items():
        mp.setenv(k, v)
    get_settings.cache_clear()
    generate_platform(15, 240, seed=11, out_dir=root / "gen", end_date=END)
    load_events(engine, root / "gen" / "events", root / "rejects")
    yield get_settings()
    mp.undo()
    get_settings.cache_clear()


def _snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"select * from analytics.{t} order by 1, 2, 3, 4")).all() for t in TABLES}


def reports_dir(settings: Settings):
    return settings.data_dir / "forecasts" / f"as_of={END.isoformat()}"


def test_dag_runs_end_to_end_and_is_idempotent(nightly_env: Settings, engine):
    from pipelines.airflow_env import run_dag_in_process

    assert run_dag_in_process(nightly_env, END) == "success"
    first = _snapshot(engine)
    with engine.connect() as conn:
        n_ws = conn.execute(sa.text("select count(*) from analytics.entities where entity_type = 'workspace'")).scalar()
        per_ws = conn.execute(sa.text(
            "select count(*) from analytics.predictions where dimension = 'total' and target_metric = 'credits'"
            " and prediction_type = 'credit_consumption'"
            " group by workspace_id")).scalars().all()
        incoherent = conn.execute(sa.text("""
            select count(*) from (
              select workspace_id, prediction_date, sum(predicted_value) filter (where dimension <> 'total') as parts,
                     max(predicted_value) filter (where dimension = 'total') as total
              from analytics.predictions where target_metric = 'credits' and prediction_type = 'credit_consumption'
              group by 1, 2) s
            where abs(parts - total) > 1e-3 * greatest(1, total)""")).scalar()
        # the cumulative rows are the running sums of the daily totals
        n_cumulative, not_running_sums = conn.execute(sa.text("""
            select count(*), count(*) filter (
                     where d.running is null or abs(c.predicted_value - d.running) > 1e-3 * greatest(1, d.running))
            from analytics.predictions c
            left join (
              select workspace_id, prediction_date,
                     sum(predicted_value) over (partition by workspace_id order by prediction_date) as running
              from analytics.predictions where target_metric = 'credits' and dimension = 'total'
                and prediction_type = 'credit_consumption') d
              using (workspace_id, prediction_date)
            where c.target_metric = 'credits_cumulative'""")).one()
        bounds = conn.execute(sa.text("select count(*) from analytics.predictions"
                                      " where not (confidence_lower <= predicted_value and predicted_value <= confidence_upper)")).scalar()
        steps = dict(conn.execute(sa.text("select step, status from analytics.pipeline_runs where step = 'nightly'")).all())
        importance = conn.execute(sa.text("select feature_importance from analytics.ml_models"
                                          " where model_name = 'pae-credit-consumption'")).scalar_one()
    weights = importance["ensemble_member_weights"]
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    # the GBM's split gain per named feature is there exactly when the GBM carries weight in some shard
    assert ("global_gbm_total_gain" in importance) == (weights.get("GlobalGBM", 0) > 0)
    if "global_gbm_total_gain" in importance:
        assert sum(importance["global_gbm_total_gain"].values()) == pytest.approx(1.0, abs=1e-3)
    assert len(per_ws) == n_ws and set(per_ws) == {nightly_env.forecast_horizon_days}
    assert incoherent == 0 and bounds == 0
    assert n_cumulative == n_ws * nightly_env.forecast_horizon_days and not_running_sums == 0
    cumulative = pd.read_csv(reports_dir(nightly_env) / "holdout_cumulative_per_series.csv")
    assert len(cumulative) and (cumulative["lo-95"] <= cumulative["hi-95"]).all()
    assert first["churn_predictions"] and steps == {"nightly": "success"}
    reports = reports_dir(nightly_env)  # what MLflow received
    members = {"SeasonalNaive", "ETS", "ARIMA", "Theta", "GlobalGBM", "Ensemble"}
    for name in ("holdout_summary.csv", "backtest_summary.csv", "backtest_summary_features.csv"):
        assert members <= set(pd.read_csv(reports / name)["model"]), name
    with engine.connect() as conn:
        n_fallbacks = conn.execute(sa.text("select sum((details->'details'->>'n_fallbacks')::int) from analytics.pipeline_runs"
                                           " where step like 'predict_consumption_%' and status = 'success'")).scalar()
    fallbacks = pd.read_csv(reports / "fallbacks.csv")  # every fallback, not the sample kept in the run record
    assert len(fallbacks) == n_fallbacks > 0 and set(fallbacks["level"]) <= {"total", "feature"}
    calendars = pd.read_csv(reports / "holiday_calendars.csv")
    assert calendars["workspace_id"].nunique() == n_ws

    assert run_dag_in_process(nightly_env, END) == "success"
    assert _snapshot(engine) == first  # same date again: identical rows, ids included


def test_api_serves_what_the_pipeline_wrote(nightly_env: Settings, engine):
    """The stored JSON (risk factors, actions) and forecasts pass the API's response models."""
    from fastapi.testclient import TestClient

    from services.api.main import create_app
    from services.keys import create_api_key

    with engine.connect() as conn:
        ws = conn.execute(sa.text("select external_id from analytics.entities e where entity_type = 'workspace'"
                                  " and exists (select 1 from analytics.churn_predictions c"
                                  "             where c.workspace_id = e.entity_id) limit 1")).scalar_one()
    key = create_api_key(engine, [ws], "e2e", pepper=nightly_env.api_key_pepper.get_secret_value())
    with TestClient(create_app(nightly_env)) as client:  # connects as pae_reader
        h = {"X-API-Key": key}
        cons = client.get("/api/analytics/predictions/consumption", params={"workspace_id": ws}, headers=h)
        churn = client.get("/api/analytics/predictions/churn", params={"workspace_id": ws, "limit": 5}, headers=h)
        peaks = client.get("/api/analytics/predictions/peak-usage", params={"workspace_id": ws}, headers=h)
    assert peaks.status_code == 200, peaks.text
    assert len(peaks.json()["metrics"]["calls"]["hourly"]) == 168
    assert cons.status_code == 200, cons.text
    assert len(cons.json()["predictions"]) == nightly_env.forecast_horizon_days
    assert churn.status_code == 200, churn.text
    top = churn.json()["users"][0]
    assert top["risk_factors"] and top["recommended_actions"][0]["action_id"]


def test_failed_gate_fails_the_airflow_run_without_retries(nightly_env: Settings, engine):
    from pipelines.airflow_env import run_dag_in_process

    before = _snapshot(engine)
    late = END + timedelta(days=5)
    assert run_dag_in_process(nightly_env, late) == "failed"
    assert _snapshot(engine) == before
    with engine.connect() as conn:
        attempts = conn.execute(sa.text("select status, error from analytics.pipeline_runs"
                                        " where step = 'validate_raw' and logical_date = :d"), {"d": late}).all()
    assert len(attempts) == 1 and attempts[0].status == "failed"  # no retry of a data-quality failure
    assert "freshness" in attempts[0].error


def test_failed_gate_stops_the_run_and_keeps_predictions(nightly_env: Settings, engine):
    from pipelines.nightly import run_nightly
    from pipelines.quality import QualityGateError

    before = _snapshot(engine)
    late = END + timedelta(days=4)  # no events for 4 days: freshness and volume gates fail
    with pytest.raises(QualityGateError) as err:
        run_nightly(late, nightly_env)
    assert "freshness" in str(err.value)
    assert _snapshot(engine) == before
    with engine.connect() as conn:
        status, details = conn.execute(sa.text(
            "select status, details from analytics.pipeline_runs where step = 'validate_raw' and logical_date = :d"),
            {"d": late}).one()
    assert status == "failed"
    failed = [r["name"] for r in details["quality"]["results"] if not r["success"] and not r.get("skipped")]
    assert "freshness" in failed
