"""The agent error-rate kind end to end on a real database: a small generated platform plus odd agents (silent for
weeks, created yesterday, failing every call since its first day) and a workspace without agents, through the
nightly steps (``run_nightly(kinds="agent_errors")``): what it publishes, idempotency, champion reuse, a refused
challenger, threshold overrides, and agreement with the feature store."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core.settings import Settings
from pipelines.ingest.load import load_events
from pipelines.nightly import run_nightly
from pipelines.simulator.generate import generate_platform

END = date(2026, 6, 30)
KIND = "agent_errors"
TABLES = ("predictions", "agent_error_alerts", "agent_error_forecasts")


def _odd_events(end: date) -> pd.DataFrame:
    """ws-odd: a silent agent, a newborn one and a broken one (plus users); ws-noagent: users only."""
    rows = []
    for k in range(200):
        day = datetime.combine(end - timedelta(days=k), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=12)
        for ws in ("ws-odd", "ws-noagent"):
            rows.append((day, ws, f"{ws}-u1", None, "chat", 3.0, "ok", 5))
        if k >= 40:
            rows.append((day, "ws-odd", None, "ag-quiet", "api", 5.0, "ok", 48))
            rows.append((day, "ws-odd", None, "ag-quiet", "api", 0.1, "error", 1))
        if k <= 1:
            rows.append((day, "ws-odd", None, "ag-newborn", "api", 5.0, "ok", 30))
        if k <= 60:
            rows.append((day, "ws-odd", None, "ag-broken", "automation", 0.4, "error", 40))
    return pd.DataFrame(rows, columns=["event_time", "workspace_id", "user_id", "agent_id", "feature", "credits",
                                       "status", "count"])


def settings_for(db_url, root, **kw) -> Settings:
    return Settings(database_url=db_url, data_dir=root / "pae", shards=1, agent_error_training_days=120,
                    api_key_pepper="ae", **kw)


@pytest.fixture(scope="module")
def platform(engine, db_url, tmp_path_factory):
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in (
            *ANALYTICS_TABLES, "agent_error_alerts", "agent_error_forecasts", "agent_daily_metrics",
            "agent_error_thresholds"))))
    root = tmp_path_factory.mktemp("agent_errors")
    generate_platform(30, 260, seed=21, out_dir=root / "gen", end_date=END)
    load_events(engine, root / "gen" / "events", root / "rejects")
    odd = root / "odd" / "odd.parquet"
    odd.parent.mkdir()
    _odd_events(END).to_parquet(odd)
    assert load_events(engine, odd, root / "rejects").rows_rejected == 0
    settings = settings_for(db_url, root)
    published = run_nightly(END, settings, kinds=KIND)
    return settings, published


def _rows(engine, table: str) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"select * from analytics.{table} order by 1, 2, 3, 4")).all()


def test_publishes_forecasts_alerts_and_a_model(platform, engine):
    settings, (result,) = platform
    assert result.kind == KIND and result.status == "success", result
    with engine.connect() as conn:
        alerts = pd.read_sql(sa.text("select * from analytics.v_agent_error_alerts"), conn)
        fc = pd.read_sql(sa.text("select * from analytics.agent_error_forecasts"), conn)
        preds = pd.read_sql(sa.text("select * from analytics.predictions where prediction_type = 'error_rate'"), conn)
        model = conn.execute(sa.text("select * from analytics.ml_models where model_name = 'pae-agent-error-rates'")).one()
        history = conn.execute(sa.text("select count(*) from analytics.agent_daily_metrics")).scalar()
    live = alerts[alerts["status"] != "inactive"]
    assert len(alerts) == alerts["agent_external_id"].nunique() > 20
    assert len(fc) == len(preds) == len(live) * settings.agent_error_horizon_days
    assert set(preds["dimension"]) == set(live["agent_external_id"]) and (preds["target_metric"] == "error_rate").all()
    assert (preds["confidence_lower"] <= preds["predicted_value"]).all()
    assert (preds["predicted_value"] <= preds["confidence_upper"]).all()
    assert (preds["as_of_date"] == END).all() and (preds["prediction_date"] > END).all()
    assert alerts["reason"].str.len().gt(10).all() and alerts["threshold"].between(0, 1).all()
    assert (alerts["threshold_source"] == "default").all() and alerts["is_latest"].all()
    assert model.is_active and model.target_metric == "error_rate" and "oot_pr_auc" in model.performance_metrics
    assert model.training_data_end == END and model.feature_importance
    assert history > 0


def test_odd_agents_and_a_workspace_without_agents_get_explicit_answers(platform, engine):
    with engine.connect() as conn:
        a = pd.read_sql(sa.text("select * from analytics.v_agent_error_alerts where workspace_external_id = 'ws-odd'"),
                        conn).set_index("agent_external_id")
        none = conn.execute(sa.text("select count(*) from analytics.v_agent_error_alerts"
                                    " where workspace_external_id = 'ws-noagent'")).scalar()
        fc_agents = set(conn.execute(sa.text("select distinct dimension from analytics.predictions"
                                             " where prediction_type = 'error_rate'")).scalars())
    assert a.loc["ag-quiet", "status"] == "inactive" and a.loc["ag-quiet", "alert_level"] is None
    assert "No calls for 40 days" in a.loc["ag-quiet", "reason"] and "ag-quiet" not in fc_agents
    assert a.loc["ag-newborn", "status"] in ("ok", "insufficient_volume", "escalating")
    assert "New agent" in a.loc["ag-newborn", "reason"] or "Too little traffic" in a.loc["ag-newborn", "reason"]
    assert 0 < a.loc["ag-newborn", "baseline_rate"] < 0.2  # borrowed from its workspace and feature, not 0%
    assert a.loc["ag-broken", "status"] == "chronic" and a.loc["ag-broken", "alert_level"] == "critical"
    assert a.loc["ag-broken", "baseline_rate"] < 1
    assert none == 0


def test_rerun_leaves_identical_rows_and_reuses_the_model(platform, engine):
    settings, _ = platform
    before = {t: _rows(engine, t) for t in TABLES}
    (again,) = run_nightly(END, settings, kinds=KIND)
    assert again.status == "success" and again.changed == 0 and all(v["changed"] == 0 for v in again.extra.values())
    assert {t: _rows(engine, t) for t in TABLES} == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.ml_models"
                                    " where model_name = 'pae-agent-error-rates'")).scalar() == 1


def test_threshold_override_is_used(platform, engine):
    from pipelines.agent_errors.thresholds import UnknownAgentError, clear_threshold, list_thresholds, set_threshold

    settings, _ = platform
    with engine.connect() as conn:
        ws, agent = conn.execute(sa.text("select workspace_external_id, agent_external_id from analytics.v_agent_error_alerts"
                                         " where status = 'ok' order by agent_external_id limit 1")).one()
    set_threshold(engine, ws, agent, rate=0.5, note="tolerant agent")
    with pytest.raises(UnknownAgentError):
        set_threshold(engine, "ws-odd", agent, rate=0.5)  # not that workspace's agent
    with pytest.raises(ValueError):
        set_threshold(engine, ws, agent, rate=0.5, multiplier=2)
    assert list_thresholds(engine)[["agent_id", "threshold_rate"]].values.tolist() == [[agent, 0.5]]
    run_nightly(END, settings, kinds=KIND)
    with engine.connect() as conn:
        row = conn.execute(sa.text("select threshold, threshold_source from analytics.v_agent_error_alerts"
                                   " where agent_external_id = :a"), {"a": agent}).one()
    assert float(row.threshold) == 0.5 and row.threshold_source == "override_rate"
    assert clear_threshold(engine, ws, agent) and not clear_threshold(engine, ws, agent)
    run_nightly(END, settings, kinds=KIND)


def test_feature_store_agrees_with_the_kind(platform):
    from models.error_rates import FEATURES, baselines, daily_features, frame_at
    from pipelines.agent_errors.data import engine_config, load_panel, scored_rows
    from pipelines.features.sets import AGENT_DAILY
    from pipelines.features.store import read_offline

    settings, _ = platform
    stored = read_offline(settings.offline_store_dir, AGENT_DAILY, END).set_index(["workspace_id", "agent_id"])
    panel = load_panel(settings, END, 0, 1, engine_config(settings).panel_days())
    mine = frame_at(panel, daily_features(panel, baselines(panel)), panel.n_days - 1, scored_rows(panel))
    mine = mine.set_index(["workspace_id", "agent_id"])
    assert set(mine.index) == set(stored.index)
    for col in FEATURES:
        np.testing.assert_allclose(mine.loc[stored.index, col].astype(float), stored[col].astype(float),
                                   rtol=1e-6, atol=1e-9, err_msg=col)


def test_a_refused_challenger_keeps_the_champion_serving(platform, engine, monkeypatch):
    from pipelines.agent_errors import kind as kind_module
    from pipelines.agent_errors import shard as shard_module
    from pipelines.agent_errors.kind import KIND as AGENT_KIND
    from pipelines.registry import Promotion

    settings, _ = platform

    def refuse(engine, settings, **kw):
        return Promotion(kw["model_name"], "99", False, kw["metric"], kw["value"], 1.0, "worse than the champion")

    from pipelines.serving import ServingPlan

    # train tonight (as with no usable version), while the served v1 still scores the shard as the fallback
    monkeypatch.setattr(shard_module, "scoring_plan", lambda *a: ServingPlan(note="forced to train"))
    monkeypatch.setattr(kind_module, "register_version", refuse)
    monkeypatch.setattr(kind_module, "tag_trained_through", lambda *a, **k: None)
    ref = AGENT_KIND.run_shard(settings, engine, END, 0)
    assert ref.details["mode"] == "trained" and ref.details["champion_scored"] and ref.details["champion_version"] == "1"
    result = AGENT_KIND.finalize(settings, engine, END, [ref])
    assert result.status == "success" and result.model_version == "1" and "not promoted" in result.reason
    served = pd.read_parquet(result.extra_sets["agent_error_alerts"])
    assert (served["model_version"] == "1").all() and len(served) == ref.details["n_agents"]
    assert result.details["mode"] == "trained inline" and result.details["train_reason"] == "forced to train"
