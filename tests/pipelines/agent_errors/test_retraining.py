"""Agent error rates with training split from scoring, on a small generated platform: the first night trains inline
(no champion) and records a ``no-champion`` retrain; ``pipelines.retrain.retrain`` registers a version with its
decision; later nights score with the stored version (no training, no backtest, no new version); with A/B on, the
challenger arm's workspaces carry the challenger's version; a stale version asks for a ``schedule`` retrain."""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

import models.error_rates as error_rates_module
import pipelines.agent_errors.shard as shard_module
from core.arms import CHALLENGER_ARM, CHAMPION_ARM, arm_of
from core.settings import Settings
from pipelines.agent_errors.data import MODEL_NAME

END = date(2026, 6, 30)
D0, D1, D2 = END - timedelta(days=2), END - timedelta(days=1), END
KIND = "agent_errors"
pytestmark = pytest.mark.slow  # ~60 s: the tests are steps of one story (each needs the ones before)


def settings_for(db_url, root, **kw) -> Settings:
    return Settings(database_url=db_url, data_dir=root / "pae", shards=1, agent_error_training_days=120,
                    api_key_pepper="ae-retrain", **kw)


@pytest.fixture(scope="module")
def platform(engine, db_url, tmp_path_factory) -> Settings:
    """16 workspaces x 220 days of generated events, loaded; the agent error-rate kind only."""
    from pipelines.ingest.load import load_events
    from pipelines.simulator.generate import generate_platform
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in (
            *ANALYTICS_TABLES, "agent_error_alerts", "agent_error_forecasts", "agent_daily_metrics",
            "agent_error_thresholds", "retrain_runs", "model_decisions", "prediction_snapshots",
            "prediction_accuracy"))))
    root = tmp_path_factory.mktemp("agent_errors_retrain")
    generate_platform(16, 220, seed=8, out_dir=root / "gen", end_date=END)
    load_events(engine, root / "gen" / "events", root / "rejects")
    return settings_for(db_url, root)


def _details(engine, step: str, d: date) -> dict:
    with engine.connect() as conn:
        return conn.execute(sa.text("select details from analytics.pipeline_runs where step = :s"
                                    " and logical_date = :d order by started_at desc limit 1"),
                            {"s": step, "d": d}).scalar()


def _retrain_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from analytics.retrain_runs where kind = :k order by retrain_id"),
                            {"k": KIND}).mappings().all()


def _versions(settings: Settings) -> list[str]:
    from pipelines.registry import configure

    configure(settings)
    from mlflow.tracking import MlflowClient

    return sorted(str(v.version) for v in MlflowClient().search_model_versions(f"name = '{MODEL_NAME}'"))


def _no_training(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("nightly scoring trained or backtested")

    for name in ("train", "backtest_forecast"):
        monkeypatch.setattr(shard_module, name, refuse)
        monkeypatch.setattr(error_rates_module, name, refuse)


def test_d_first_night_trains_inline_and_records_a_no_champion_retrain(platform, engine):
    from pipelines.nightly import run_nightly
    from pipelines.serving import version_by_alias

    (published,) = run_nightly(D0, platform, kinds=KIND)
    assert published.status == "success" and published.rows > 0
    details = _details(engine, "finalize_agent_errors", D0)["details"]
    assert details["mode"] == "trained inline" and "no champion yet" in details["train_reason"]
    assert details["versions"] == {CHAMPION_ARM: "1"} and details["workspaces_by_arm"][CHAMPION_ARM] > 0
    rows = _retrain_rows(engine)
    assert [(r["reason"], r["status"], r["decision"], r["model_version"]) for r in rows] == \
        [("no-champion", "success", "promote", "1")]
    assert rows[0]["figures"]["inline"] and rows[0]["trained_through"] == D0
    assert version_by_alias(platform, MODEL_NAME, "champion") == "1"  # moved by the publish


def test_b_retrain_records_a_version_and_its_decision(platform, engine):
    from pipelines.nightly import run_nightly
    from pipelines.retrain import retrain, retrainable_kinds

    assert KIND in retrainable_kinds()
    run_nightly(D1, platform, kinds=KIND)  # scores D1 with v1 (and builds D1's features)
    assert _versions(platform) == ["1"]
    out = retrain(KIND, "manual", D1.isoformat(), platform)
    assert out["status"] == "success" and out["model_version"] == "2" and out["decision"] in ("promote", "keep")
    row = _retrain_rows(engine)[-1]
    assert (row["reason"], row["status"], row["model_version"], row["decision"], row["trained_through"]) == \
        ("manual", "success", "2", out["decision"], D1)
    assert row["figures"]["workspaces"] > 0 and row["figures"]["mlflow_run_id"]
    assert row["figures"]["promotion"]["decision"] == out["decision"]
    with engine.connect() as conn:
        decision = conn.execute(sa.text("select decision from analytics.model_decisions where model_name = :n"
                                        " and version = '2' and source = 'registration'"), {"n": MODEL_NAME}).scalar()
    assert decision == out["decision"]
    # the retrain published nothing: D1's rows still come from v1
    with engine.connect() as conn:
        served = conn.execute(sa.text("select distinct model_version from analytics.agent_error_alerts"
                                      " where as_of_date = :d"), {"d": D1}).scalars().all()
    assert served == ["1"]


def test_a_night_after_a_retrain_scores_with_the_stored_version(platform, engine, monkeypatch):
    from pipelines.nightly import run_nightly
    from pipelines.registry import serving_version

    expected = serving_version(engine, platform, MODEL_NAME)  # v2 if its decision was promote, else v1
    before_versions, before_retrains = _versions(platform), len(_retrain_rows(engine))
    _no_training(monkeypatch)
    (published,) = run_nightly(D2, platform, kinds=KIND)
    assert published.status == "success" and published.rows > 0
    shard = _details(engine, "predict_agent_errors_0", D2)["details"]
    assert shard["mode"] == "scored" and shard["backtests"] == 0
    assert "metrics" not in shard and "train_seconds" not in shard and shard["model_version"] == expected
    details = _details(engine, "finalize_agent_errors", D2)["details"]
    assert details["mode"] == "scored" and details["versions"] == {CHAMPION_ARM: expected}
    assert set(details["workspaces_by_arm"]) == {CHAMPION_ARM} and not details["schedule"]["retrain_requested"]
    assert _versions(platform) == before_versions and len(_retrain_rows(engine)) == before_retrains
    with engine.connect() as conn:
        versions = conn.execute(sa.text("select distinct model_version from analytics.agent_error_alerts"
                                        " where as_of_date = :d"), {"d": D2}).scalars().all()
    assert versions == [expected]


def test_c_challenger_arm_workspaces_carry_the_challenger_version(platform, engine, monkeypatch):
    from pipelines.agent_errors.realised import alert_outcomes
    from pipelines.nightly import run_nightly
    from pipelines.registry import CHALLENGER, configure, serving_version

    champion = serving_version(engine, platform, MODEL_NAME)
    challenger = "1" if champion == "2" else "2"
    configure(platform)
    from mlflow.tracking import MlflowClient

    MlflowClient().set_registered_model_alias(MODEL_NAME, CHALLENGER, challenger)
    ab = platform.model_copy(update={"ab_challenger_share": 0.5, "ab_salt": "ae-test"})
    _no_training(monkeypatch)
    run_nightly(D2, ab, kinds=KIND)
    details = _details(engine, "finalize_agent_errors", D2)["details"]
    assert details["mode"] == "scored"
    assert details["versions"] == {CHAMPION_ARM: champion, CHALLENGER_ARM: challenger}
    assert details["workspaces_by_arm"][CHAMPION_ARM] > 0 and details["workspaces_by_arm"][CHALLENGER_ARM] > 0
    with engine.connect() as conn:
        alerts = pd.read_sql(sa.text("select workspace_id::text as ws, model_version from analytics.agent_error_alerts"
                                     " where as_of_date = :d"), conn, params={"d": D2})
        preds = pd.read_sql(sa.text("select workspace_id::text as ws, model_version from analytics.predictions"
                                    " where prediction_type = 'error_rate' and as_of_date = :d"), conn,
                            params={"d": D2})
        snaps = pd.read_sql(sa.text("select distinct workspace_id::text as ws, model_version, arm"
                                    " from analytics.prediction_snapshots where prediction_type = 'error_rate'"
                                    " and as_of_date = :d"), conn, params={"d": D2})
    for frame in (alerts, preds):
        arm = frame["ws"].map(lambda w: arm_of(w, 0.5, "ae-test"))
        want = arm.map({CHAMPION_ARM: champion, CHALLENGER_ARM: challenger})
        assert (frame["model_version"] == want).all() and set(arm) == {CHAMPION_ARM, CHALLENGER_ARM}
    # the publisher's snapshot arms (by hash) agree with the versions that scored them
    assert len(snaps) and (snaps["model_version"] == snaps["arm"].map(
        {CHAMPION_ARM: champion, CHALLENGER_ARM: challenger})).all()
    # alerts are scored by arm too: each alert's outcome row carries its workspace's snapshot arm
    outcomes = alert_outcomes(ab, engine, D2, D2 + timedelta(days=ab.agent_error_horizon_days))
    assert len(outcomes) and set(outcomes["arm"]) == {CHAMPION_ARM, CHALLENGER_ARM}
    assert (outcomes["arm"] == outcomes["workspace_id"].astype(str).map(lambda w: arm_of(w, 0.5, "ae-test"))).all()
    assert (outcomes["model_version"] == outcomes["arm"].map({CHAMPION_ARM: champion,
                                                             CHALLENGER_ARM: challenger})).all()


def test_a_stale_version_asks_for_a_schedule_retrain_and_keeps_scoring(platform, engine, monkeypatch):
    from pipelines.nightly import run_nightly
    from pipelines.retrain_runs import pending_retrain

    stale = platform.model_copy(update={"agent_error_retrain_days": 1})
    _no_training(monkeypatch)
    # last retrain trained through D1: one day before D2
    (published,) = run_nightly(D2, stale, kinds=KIND)
    assert published.status == "success"
    details = _details(engine, "finalize_agent_errors", D2)["details"]
    assert details["mode"] == "scored" and details["schedule"]["retrain_requested"]
    assert details["schedule"]["age_days"] == 1
    pending = pending_retrain(engine, KIND)
    assert pending["reason"] == "schedule" and pending["retrain_id"] == details["schedule"]["retrain_id"]
    with engine.begin() as conn:  # leave no pending request behind
        conn.execute(sa.text("delete from analytics.retrain_runs where retrain_id = :i"), {"i": pending["retrain_id"]})
