"""An on-demand credit-consumption job end to end on a tiny platform: enqueued as the API's write role, run by
the worker (``work`` and ``pae worker --once``), published under scenario ``on_demand`` beside the nightly rows,
which stay untouched; a job that cannot run is failed with its message."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from core.ids import entity_uuid
from core.jobs import ON_DEMAND_SCENARIO
from core.settings import get_settings
from pipelines.jobs.runner import run_job, work
from services.prediction_jobs import enqueue_job
from tests.pipelines.jobs.conftest import END, WS0


def _rows(engine, where: str = "true") -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            f"select * from analytics.predictions where {where} order by target_metric, dimension, prediction_date"
        )).mappings()]


def _job(engine, job_id) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("select * from analytics.prediction_jobs where id = :id"),
                                 {"id": str(job_id)}).mappings().one())


def test_consumption_job_end_to_end(platform, engine, writer):
    job = enqueue_job(writer, WS0, "credit_consumption", "credits", 10, {}, "e2e", None, "test").job
    (outcome,) = work(platform, engine, once=True)
    assert outcome["status"] == "succeeded", outcome
    row = _job(engine, job["id"])
    assert row["status"] == "succeeded" and row["attempts"] == 1 and row["error"] is None
    assert row["started_at"] <= row["finished_at"] and row["lease_owner"] is None
    result = row["result"]
    assert result["scenario"] == ON_DEMAND_SCENARIO and result["as_of_date"] == END.isoformat()
    assert result["model_version"] == f"on-demand:{job['id']}" and result["table"] == "analytics.predictions"
    rows = _rows(engine, f"scenario = '{ON_DEMAND_SCENARIO}'")
    assert len(rows) == result["rows"] == 10 * 5
    assert result["dimensions"] == ["api", "automation", "chat", "search", "total"]
    assert {r["workspace_id"] for r in rows} == {WS0} and {r["as_of_date"] for r in rows} == {END}
    assert {r["prediction_date"] for r in rows} == {END + timedelta(d) for d in range(1, 11)}
    assert all(r["confidence_lower"] <= r["predicted_value"] <= r["confidence_upper"] for r in rows)
    by_day: dict = {}
    for r in rows:  # the feature/service breakdown sums to the total (reconciled like the nightly run)
        if r["dimension"] != "total":
            by_day[r["prediction_date"]] = by_day.get(r["prediction_date"], 0) + float(r["predicted_value"])
    totals = {r["prediction_date"]: float(r["predicted_value"]) for r in rows if r["dimension"] == "total"}
    assert by_day == pytest.approx(totals, rel=1e-5)
    # the nightly row is untouched; a second job of the same metric replaces the first job's rows
    (nightly,) = _rows(engine, "scenario = 'likely'")
    assert nightly["predicted_value"] == 123 and nightly["model_version"] == "nightly"
    second = enqueue_job(writer, WS0, "credit_consumption", "credits", 5, {"by_feature": False, "level": 80},
                         None, None, "test").job
    assert run_job(platform, engine, second["id"])["status"] == "succeeded"
    again = _rows(engine, f"scenario = '{ON_DEMAND_SCENARIO}'")
    assert len(again) == 5 and {r["model_version"] for r in again} == {f"on-demand:{second['id']}"}
    assert {float(r["confidence_level"]) for r in again} == {0.8}
    assert _rows(engine, "scenario = 'likely'") == [nightly]
    # the same request on the same data gives the same forecast (seeded)
    third = enqueue_job(writer, WS0, "credit_consumption", "credits", 5, {"by_feature": False, "level": 80},
                        None, None, "test").job
    assert run_job(platform, engine, third["id"])["status"] == "succeeded"
    assert [r["predicted_value"] for r in _rows(engine, f"scenario = '{ON_DEMAND_SCENARIO}'")] == \
        [r["predicted_value"] for r in again]


def test_cumulative_metric_job(platform, engine, writer):
    job = enqueue_job(writer, WS0, "credit_consumption", "credits_cumulative", 7, {"as_of_date": "2026-03-20"},
                      None, None, "test").job
    assert run_job(platform, engine, job["id"])["status"] == "succeeded"
    rows = _rows(engine, f"scenario = '{ON_DEMAND_SCENARIO}' and target_metric = 'credits_cumulative'")
    assert len(rows) == 7 and {r["as_of_date"] for r in rows} == {date(2026, 3, 20)}
    values = [float(r["predicted_value"]) for r in rows]
    assert values == sorted(values)  # a running total


def test_a_job_that_cannot_run_fails_with_its_message_through_the_cli(platform, engine, writer, monkeypatch):
    from pipelines.cli import main

    with engine.begin() as conn:  # a workspace with no history in the feature store
        conn.execute(sa.text("insert into analytics.entities (entity_type, entity_id, external_id)"
                             " values ('workspace', :id, 'newcomer') on conflict do nothing"),
                     {"id": str(entity_uuid("workspace", "newcomer"))})
    job = enqueue_job(writer, entity_uuid("workspace", "newcomer"), "credit_consumption", "credits", 7, {}, None,
                      None, "test").job
    for k, v in {"DATABASE_URL": platform.database_url, "PAE_DATA_DIR": str(platform.data_dir),
                 "PAE_THREADS": "1"}.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        assert main(["worker", "--once", "--worker-id", "cli-worker"]) == 0
    finally:
        get_settings.cache_clear()
    row = _job(engine, job["id"])
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "NoHistoryError" in row["error"] and "'newcomer' has 0 days of history" in row["error"]
    assert row["result"] is None and json.dumps(row["error"])


def test_the_nightly_publish_leaves_on_demand_rows_alone(platform, engine, writer):
    import pandas as pd

    from pipelines.publish import publish_predictions

    job = enqueue_job(writer, WS0, "credit_consumption", "credits", 3, {"by_feature": False}, None, None, "t").job
    assert run_job(platform, engine, job["id"])["status"] == "succeeded"
    mine = _rows(engine, f"scenario = '{ON_DEMAND_SCENARIO}'")
    nightly = pd.DataFrame({"workspace_id": "ws0", "target_metric": "credits", "prediction_date": [END + timedelta(2)],
                            "predicted_value": 7.0, "confidence_lower": 6.0, "confidence_upper": 8.0,
                            "confidence_level": 0.95, "model_version": "nightly-2"})
    with engine.begin() as conn:  # replaces the workspace's nightly rows: the day-1 row goes, day 2 comes
        publish_predictions(conn, nightly, "credit_consumption", END)
    assert [(r["prediction_date"], r["model_version"]) for r in _rows(engine, "scenario = 'likely'")] == [
        (END + timedelta(2), "nightly-2")]
    assert _rows(engine, f"scenario = '{ON_DEMAND_SCENARIO}'") == mine


def test_post_then_worker_then_get_through_the_api(platform, engine):
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from services.api.main import create_app
    from services.keys import create_api_key

    settings = platform.model_copy(update={"api_key_pepper": SecretStr("jobs-e2e")})
    headers = {"X-API-Key": create_api_key(engine, ["ws0"], "e2e", pepper="jobs-e2e")}
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/analytics/predictions/generate", headers=headers,
                        json={"workspace_id": "ws0", "prediction_type": "credit_consumption",
                              "target_metric": "credits_cumulative", "horizon": 4})
        assert r.status_code == 202, r.text
        (outcome,) = work(platform, engine, once=True)
        assert outcome["job_id"] == r.json()["job_id"] and outcome["status"] == "succeeded"
        job = client.get(r.headers["location"], headers=headers).json()
    assert job["status"] == "succeeded" and job["attempts"] == 1 and job["run_seconds"] > 0
    assert job["result"]["rows"] == 4 and job["result"]["target_metrics"] == ["credits_cumulative"]


def test_a_job_scores_with_the_stored_serving_version_when_one_is_usable(platform, engine, writer, monkeypatch):
    """With a champion trained through the job's as-of date or earlier, the job scores the workspace with its
    stored model (no backtest, no training); with an as-of date before the champion's data ends it trains, saying
    so. Runs last in this module: the champion it registers would serve the jobs of the tests above."""
    import models.forecasting.ensemble as ensemble_module
    import models.forecasting.evaluation as evaluation_module
    from pipelines.retrain import retrain

    trained = retrain("consumption", "manual", (END - timedelta(days=2)).isoformat(), platform)
    assert trained["status"] == "success", trained

    def refuse(*args, **kwargs):
        raise AssertionError("the job ran a backtest: it trained instead of scoring with the stored version")

    with monkeypatch.context() as m:
        m.setattr(ensemble_module, "backtest", refuse)
        m.setattr(evaluation_module, "backtest", refuse)
        job = enqueue_job(writer, WS0, "credit_consumption", "credits", 6, {}, None, None, "test").job
        outcome = run_job(platform, engine, job["id"])
    assert outcome["status"] == "succeeded", outcome
    result = _job(engine, job["id"])["result"]
    assert result["served_version"] == str(trained["model_version"])
    assert result["model"].startswith(f"scored with the champion v{trained['model_version']}")
    rows = _rows(engine, f"scenario = '{ON_DEMAND_SCENARIO}' and target_metric = 'credits'")
    assert len(rows) == result["rows"] == 6 * 5 and {r["model_version"] for r in rows} == {f"on-demand:{job['id']}"}
    assert all(r["confidence_lower"] <= r["predicted_value"] <= r["confidence_upper"] for r in rows)
    by_day: dict = {}
    for r in rows:  # still reconciled to the total
        if r["dimension"] != "total":
            by_day[r["prediction_date"]] = by_day.get(r["prediction_date"], 0) + float(r["predicted_value"])
    assert by_day == pytest.approx({r["prediction_date"]: float(r["predicted_value"]) for r in rows
                                    if r["dimension"] == "total"}, rel=1e-5)

    early = enqueue_job(writer, WS0, "credit_consumption", "credits_cumulative", 5,
                        {"as_of_date": (END - timedelta(days=10)).isoformat()}, None, None, "test").job
    assert run_job(platform, engine, early["id"])["status"] == "succeeded"
    result = _job(engine, early["id"])["result"]
    assert result["served_version"] is None and result["model"] == (
        f"the serving version was trained on data after {END - timedelta(days=10)}: trained on demand")
