"""The growth kind on workspaces built to be awkward: steady, growing, a one-day sign-up spike, users who all
leave, one that started yesterday, agent traffic only. Fast: the projection itself (no database); slow: the
nightly run twice (identical rows), the records, the API answers and goals."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core.settings import Settings
from pipelines.features.builders import build_growth_features, daily_aggregates
from pipelines.growth.project import eligibility, project, scenario_rows

T = date(2026, 6, 30)
DAYS = 200


def awkward_events(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = T - timedelta(days=DAYS - 1)
    rows = []

    def active(ws: str, user: str, days) -> None:
        for d in days:
            t = datetime.combine(start + timedelta(days=int(d)), datetime.min.time(), tzinfo=UTC)
            rows.append((t + timedelta(hours=int(rng.integers(0, 24))), ws, user, None, "chat", 1.0, "ok", 1))

    weekday = np.array([(start + timedelta(days=d)).weekday() < 5 for d in range(DAYS)])
    for i in range(40):  # steady: 40 users active on about half the weekdays
        active("steady", f"s{i}", np.flatnonzero(weekday & (rng.random(DAYS) < 0.5)))
    for i in range(80):  # growing: users join over the whole window
        join = int(i * DAYS / 90)
        active("growing", f"g{i}", [d for d in np.flatnonzero(weekday & (rng.random(DAYS) < 0.4)) if d >= join])
    for i in range(30):  # spike: 30 regular users and 400 who sign up on one day ten days ago and never return
        active("spike", f"r{i}", np.flatnonzero(weekday & (rng.random(DAYS) < 0.5)))
    for i in range(400):
        active("spike", f"x{i}", [DAYS - 11])
    for i in range(60):  # leavers: everyone gone 50 days ago
        active("leavers", f"l{i}", np.flatnonzero(weekday[:150] & (rng.random(150) < 0.5)))
    for i in range(30):  # newborn: started yesterday
        active("newborn", f"n{i}", [DAYS - 2, DAYS - 1])
    for d in range(DAYS):  # agents: no user ids at all
        t = datetime.combine(start + timedelta(days=d), datetime.min.time(), tzinfo=UTC)
        rows.append((t, "agents", None, "bot", "automation", 2.0, "ok", 10))
    return pd.DataFrame(rows, columns=["event_time", "workspace_id", "user_id", "agent_id", "feature", "credits",
                                       "status", "count"])


def _settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "pae", growth_paths=200, growth_backtest_windows=2, shards=1,
                    growth_holdout_days=60, api_key_pepper="growth")


def test_awkward_workspaces_get_a_status_or_a_sane_projection(tmp_path):
    settings = _settings(tmp_path)
    agg = daily_aggregates(awkward_events())
    growth = build_growth_features(agg, T)
    status = eligibility(growth, T, settings).set_index("workspace_id")
    assert status.loc[["steady", "growing", "spike"], "status"].eq("success").all()
    assert status.loc["leavers", "status"] == "insufficient_data" and "no active users" in status.loc["leavers", "reason"]
    assert status.loc["leavers", "users_ever"] == 60
    assert "2 days of history" in status.loc["newborn", "reason"]
    assert "no user activity" in status.loc["agents", "reason"] and status.loc["agents", "users_ever"] == 0

    eligible = ["growing", "spike", "steady"]
    p = project(settings, growth, agg.user_feature, eligible, T, 90)
    rows = scenario_rows(p.scenarios)
    assert len(rows) == 3 * 3 * 3 * 90 and (rows["predicted_value"] >= 0).all()
    assert (rows["confidence_lower"] <= rows["predicted_value"]).all()
    assert (rows["predicted_value"] <= rows["confidence_upper"]).all()
    wide = rows.pivot_table(index=["workspace_id", "prediction_date", "scenario"], columns="target_metric",
                            values="predicted_value")
    assert ((wide["dau"] <= wide["wau"]) & (wide["wau"] <= wide["mau"])).all()
    by = rows.pivot_table(index=["workspace_id", "target_metric", "prediction_date"], columns="scenario",
                          values="predicted_value")
    assert ((by["worst"] <= by["likely"]) & (by["likely"] <= by["best"])).all()
    # the spike's 400 one-day users are still in MAU (and counted as carried over) until they age out of it
    spike_mau = by.loc[("spike", "mau")]
    assert (spike_mau["worst"].iloc[:17] >= 400).all()
    assert spike_mau["likely"].iloc[-1] < 200  # ... and are not projected to stay after they have left
    growing = by.loc[("growing", "mau")]["likely"]
    assert growing.iloc[-1] > growing.iloc[0]
    assert set(p.milestones["kind"]) == {"round"} and p.milestones["probability"].between(0, 1).all()
    # seeded: the same inputs give the same paths
    again = project(settings, growth, agg.user_feature, eligible, T, 90)
    pd.testing.assert_frame_equal(p.scenarios, again.scenarios)


@pytest.mark.slow
def test_nightly_growth_run_records_publishes_and_serves(clean_db, db_url, tmp_path):
    from fastapi.testclient import TestClient

    from pipelines.growth.goals import set_goal
    from pipelines.ingest.load import load_events
    from pipelines.nightly import run_nightly
    from services.api.main import create_app
    from services.keys import create_api_key

    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate analytics.growth_goals, analytics.growth_status, analytics.growth_milestones,"
                             " analytics.growth_goal_projections, analytics.workspace_growth_metrics"))
    events = awkward_events(1)
    (tmp_path / "in").mkdir()
    events.to_parquet(tmp_path / "in" / "events.parquet")
    load_events(clean_db, tmp_path / "in" / "events.parquet", tmp_path / "rejects")
    settings = _settings(tmp_path).model_copy(update={"database_url": db_url})
    set_goal(clean_db, "growing", "mau", 120, T + timedelta(days=45), "double it")
    set_goal(clean_db, "growing", "wau", 10, T - timedelta(days=30))  # already past
    set_goal(clean_db, "steady", "mau", 5000, T + timedelta(days=800))  # beyond the projection's range

    def snapshot() -> dict:
        with clean_db.connect() as conn:
            return {t: conn.execute(sa.text(f"select * from analytics.{t} order by 1, 2, 3")).all()
                    for t in ("predictions", "growth_status", "growth_milestones", "growth_goal_projections")}

    published = run_nightly(T, settings, kinds="growth")
    assert [(p.kind, p.status) for p in published] == [("growth", "success")]
    first = snapshot()
    assert len(first["predictions"]) == 3 * 3 * 3 * settings.growth_horizon_days
    with clean_db.connect() as conn:
        bad = conn.execute(sa.text("""
            select count(*) from (
              select workspace_id, scenario, prediction_date,
                     max(predicted_value) filter (where target_metric = 'dau') as dau,
                     max(predicted_value) filter (where target_metric = 'wau') as wau,
                     max(predicted_value) filter (where target_metric = 'mau') as mau
              from analytics.predictions where prediction_type = 'growth' group by 1, 2, 3) s
            where not (0 <= dau and dau <= wau and wau <= mau)""")).scalar()
        goals = dict(conn.execute(sa.text("select status, count(*) from analytics.growth_goal_projections"
                                          " group by 1")).all())
        model = conn.execute(sa.text("select performance_metrics, feature_importance from analytics.ml_models"
                                     " where model_name = 'pae-growth'")).one()
    assert bad == 0 and goals == {"projected": 1, "past_due": 1, "beyond_range": 1}
    assert "holdout_mase_30" in model.performance_metrics and model.feature_importance["ensemble_member_weights"]
    assert run_nightly(T, settings, kinds="growth")[0].status == "success"
    assert snapshot() == first  # the same date again: identical rows, ids and model version included

    key = create_api_key(clean_db, ["growing", "leavers", "newborn", "agents", "spike"], "t", pepper="growth")
    with TestClient(create_app(settings)) as client:
        get = lambda ws, **p: client.get("/api/analytics/predictions/growth",
                                         params={"workspace_id": ws, **p}, headers={"X-API-Key": key}).json()
        growing = get("growing")
        assert growing["status"] == "projected" and len(growing["projection"]) == settings.growth_horizon_days
        assert [g["status"] for g in growing["goals"]] == ["projected"]
        assert 0 <= growing["goals"][0]["probability_met"] <= 1 and growing["goals"][0]["milestone"]["kind"] == "goal"
        for ws, words in (("leavers", "no active users"), ("newborn", "days of history"), ("agents", "no user activity")):
            body = get(ws)
            assert body["status"] == "insufficient_data" and words in body["reason"] and body["projection"] == []
        spike = get("spike", metric="dau")
        assert min(p["worst"] for p in spike["projection"]) >= 0
