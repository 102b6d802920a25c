"""Growth training split from scoring, on the awkward workspaces (``test_growth_kind``): the first night has no
champion and trains inline (a ``no-champion`` retrain), the next scores with the stored version (no holdout, no
backtest, no new version), a retrain records its version and decision, the A/B challenger arm is projected with
the challenger's version, and a workspace unknown to the artifact gets the default weights."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import models.forecasting.ensemble as ensemble_module
from core.arms import CHALLENGER_ARM, CHAMPION_ARM, arm_of
from core.ids import entity_uuid
from core.settings import Settings
from pipelines.growth.kind import MODEL_NAME
from tests.pipelines.growth.test_growth_kind import T, _settings, awkward_events

D1, D2, D3 = T - timedelta(days=14), T - timedelta(days=7), T
PROJECTED = ["growing", "spike", "steady"]
pytestmark = pytest.mark.slow  # three nights and a retrain: about a minute


@pytest.fixture(scope="module")
def platform(engine, db_url, tmp_path_factory) -> Settings:
    """The awkward workspaces' events through ``T`` loaded; 1 shard, 200 paths, 2 backtest windows."""
    from pipelines.ingest.load import load_events
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text(
            "truncate analytics.retrain_runs, analytics.model_decisions, analytics.prediction_snapshots,"
            " analytics.prediction_accuracy, analytics.growth_goals, analytics.growth_status,"
            " analytics.growth_milestones, analytics.growth_goal_projections, analytics.workspace_growth_metrics, "
            + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    root = tmp_path_factory.mktemp("growth_retrain")
    (root / "in").mkdir()
    awkward_events(2).to_parquet(root / "in" / "events.parquet")
    load_events(engine, root / "in" / "events.parquet", root / "rejects")
    return _settings(root).model_copy(update={"database_url": db_url})


def _finalize(engine, d) -> dict:
    with engine.connect() as conn:
        return conn.execute(sa.text("select details from analytics.pipeline_runs where step = 'finalize_growth'"
                                    " and logical_date = :d order by started_at desc limit 1"), {"d": d}).scalar()


def _retrains(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from analytics.retrain_runs where kind = 'growth'"
                                    " order by retrain_id")).mappings().all()


def _versions(settings: Settings) -> list[str]:
    from mlflow.tracking import MlflowClient

    from pipelines.registry import configure

    configure(settings)
    return sorted((str(v.version) for v in MlflowClient().search_model_versions(f"name = '{MODEL_NAME}'")), key=int)


def _no_backtest(monkeypatch) -> None:
    import pipelines.growth.kind as kind_module
    import pipelines.growth.shard as shard_module

    def refuse(*args, **kwargs):
        raise AssertionError("nightly scoring trained")

    monkeypatch.setattr(ensemble_module, "backtest", refuse)
    monkeypatch.setattr(shard_module, "holdout", refuse)
    monkeypatch.setattr(shard_module, "growth_shard", refuse)
    monkeypatch.setattr(kind_module, "growth_shard", refuse)


def test_first_night_trains_inline_and_records_no_champion(platform, engine):
    from pipelines.growth.artifact import load_artifact
    from pipelines.nightly import run_nightly
    from pipelines.serving import version_by_alias

    published = run_nightly(D1, platform, kinds="growth")
    assert [(p.kind, p.status) for p in published] == [("growth", "success")]
    details = _finalize(engine, D1)["details"]
    assert details["mode"] == "trained inline" and "no champion yet" in details["train_reason"]
    assert details["backtests"] == 3  # one ensemble per metric
    rows = _retrains(engine)
    assert [(r["reason"], r["status"], r["decision"]) for r in rows] == [("no-champion", "success", "promote")]
    version = version_by_alias(platform, MODEL_NAME, "champion")
    assert rows[0]["model_version"] == version == details["versions"][CHAMPION_ARM]
    art = load_artifact(platform, MODEL_NAME, version)
    assert art.trained_through == D1 and art.n_shards == 1
    choices = art.choices(0)
    assert set(choices.states) == {"dau", "wau", "mau"} and len(choices.bank.group) > 0
    assert set(choices.states["mau"].weights["unique_id"]) == {f"{w}|mau" for w in PROJECTED}


def test_next_night_scores_with_the_stored_version(platform, engine, monkeypatch):
    from pipelines.nightly import run_nightly

    before = _versions(platform)
    _no_backtest(monkeypatch)
    published = run_nightly(D2, platform, kinds="growth")
    assert [(p.kind, p.status) for p in published] == [("growth", "success")]
    assert _versions(platform) == before  # nothing trained, nothing registered
    result = _finalize(engine, D2)
    details = result["details"]
    assert details["mode"] == "scored" and details["versions"] == {CHAMPION_ARM: before[-1]}
    assert details["backtests"] == 0 and details["workspaces_by_arm"] == {CHAMPION_ARM: 3}
    assert details["unknown_workspaces"] == 0
    frame = pd.read_parquet(result["frame_path"])
    assert sorted(frame["workspace_id"].unique()) == PROJECTED and (frame["model_version"] == before[-1]).all()
    assert len(frame) == 3 * 3 * 3 * platform.growth_horizon_days
    assert (frame["confidence_lower"] <= frame["predicted_value"]).all()
    assert (frame["predicted_value"] <= frame["confidence_upper"]).all()
    with engine.connect() as conn:
        versions = conn.execute(sa.text("select array_agg(distinct model_version) from analytics.predictions"
                                        " where as_of_date = :d"), {"d": D2}).scalar()
        milestones = conn.execute(sa.text("select count(*), array_agg(distinct model_version)"
                                          " from analytics.growth_milestones where as_of_date = :d"), {"d": D2}).one()
    assert versions == [before[-1]] and milestones[0] > 0 and milestones[1] == [before[-1]]


def test_retrain_records_a_version_and_a_decision(platform, engine):
    from pipelines.retrain import retrain, retrainable_kinds

    assert "growth" in retrainable_kinds()
    before = _versions(platform)
    out = retrain("growth", "manual", D2.isoformat(), platform)
    assert out["status"] == "success" and out["model_version"] not in before
    row = _retrains(engine)[-1]
    assert (row["reason"], row["status"], row["trained_through"]) == ("manual", "success", D2)
    assert row["model_version"] == out["model_version"] and row["decision"] in ("promote", "keep")
    assert row["figures"]["promotion"]["version"] == row["model_version"]
    # the night's files of D2 (published) are not overwritten by the retrain of D2
    assert (platform.data_dir / "growth" / f"as_of={D2}" / "retrain" / "scoring" / "config.json").exists()


def test_ab_challenger_arm_carries_the_challengers_version(platform, engine, monkeypatch):
    from mlflow.tracking import MlflowClient

    from pipelines.nightly import run_nightly
    from pipelines.registry import configure

    old, new = _versions(platform)[0], _versions(platform)[-1]
    assert old != new
    configure(platform)
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, "champion", new)
    client.set_registered_model_alias(MODEL_NAME, "challenger", old)
    uuids = {w: str(entity_uuid("workspace", w)) for w in PROJECTED}
    salt = next(s for s in (f"salt-{i}" for i in range(100))  # a salt that puts workspaces in both arms
                if len({arm_of(u, 0.5, s) for u in uuids.values()}) == 2)
    ab = platform.model_copy(update={"ab_challenger_share": 0.5, "ab_salt": salt})
    _no_backtest(monkeypatch)
    published = run_nightly(D3, ab, kinds="growth")
    assert [(p.kind, p.status) for p in published] == [("growth", "success")]
    details = _finalize(engine, D3)["details"]
    assert details["versions"] == {CHAMPION_ARM: new, CHALLENGER_ARM: old}
    want_arm = {w: arm_of(u, 0.5, salt) for w, u in uuids.items()}
    assert sum(details["workspaces_by_arm"].values()) == 3
    assert details["workspaces_by_arm"][CHALLENGER_ARM] == sum(a == CHALLENGER_ARM for a in want_arm.values())
    with engine.connect() as conn:
        served = dict(conn.execute(sa.text(
            "select workspace_id::text, array_agg(distinct model_version) from analytics.predictions"
            " where as_of_date = :d group by 1"), {"d": D3}).all())
        arms = dict(conn.execute(sa.text(
            "select workspace_id::text, array_agg(distinct arm || ':' || model_version)"
            " from analytics.prediction_snapshots where prediction_type = 'growth' and as_of_date = :d group by 1"),
            {"d": D3}).all())
        goals_ms = conn.execute(sa.text("select count(*) from analytics.growth_milestones where as_of_date = :d"
                                        " and model_version is null"), {"d": D3}).scalar()
    for w, u in uuids.items():
        version = old if want_arm[w] == CHALLENGER_ARM else new
        assert served[u] == [version]
        assert arms[u] == [f"{want_arm[w]}:{version}"]  # realised accuracy is scored by arm and version
    assert goals_ms == 0


def test_unknown_workspace_gets_the_default_weights(platform, engine, tmp_path):
    from pipelines.growth.artifact import load_artifact, read_artifact
    from pipelines.growth.shard import score_shard
    from pipelines.serving import ServingPlan

    version = _versions(platform)[-1]
    art = load_artifact(platform, MODEL_NAME, version)
    copy = tmp_path / "scoring"
    shutil.copytree(art.folder, copy)
    for metric in ("dau", "wau", "mau"):
        path = copy / "shard=0" / f"{metric}_weights.parquet"
        weights = pd.read_parquet(path)
        weights[~weights["unique_id"].str.startswith("growing|")].to_parquet(path)
    edited = read_artifact(version, copy)
    plan = ServingPlan(models={CHAMPION_ARM: edited}, versions={CHAMPION_ARM: version})
    ref = score_shard(platform, engine, D3, 0, 1, plan)
    assert ref["mode"] == "scored" and ref["backtests"] == 0 and ref["unknown_workspaces"] == 1
    frame = pd.read_parquet(Path(ref["path"]) / "projection.parquet")
    growing = frame[frame["workspace_id"] == "growing"]
    assert len(growing) == 3 * 3 * platform.growth_horizon_days and (growing["predicted_value"] >= 0).all()
    milestones = pd.read_parquet(Path(ref["path"]) / "milestones.parquet")
    assert "growing" in set(milestones["workspace_id"])
