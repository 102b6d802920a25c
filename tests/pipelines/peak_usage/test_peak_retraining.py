"""Peak usage with training split from scoring, on a small generated platform (5 workspaces x 100 days): the first
night trains inline (no champion), the next scores with the stored version and trains nothing, a retrain records
its row, and A/B arms are served by their versions (rows and snapshots)."""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

import models.peaks.forecaster as forecaster_module
import pipelines.peak_usage.forecast as forecast_module
from core.arms import CHALLENGER_ARM, CHAMPION_ARM, arm_of
from core.ids import entity_uuid
from core.settings import Settings
from pipelines.peak_usage.artifact import MODEL_NAME, load_artifact
from pipelines.serving import version_by_alias

pytestmark = pytest.mark.slow  # three nights and a retrain: about 100 s; the tests are steps of one story (in order)

NEXT = date(2026, 6, 30)
END = NEXT - timedelta(days=7)
FIRST = END - timedelta(days=7)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, engine, db_url) -> Settings:
    from pipelines.ingest.load import load_events
    from pipelines.simulator.generate import generate_platform
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate analytics.retrain_runs, analytics.model_decisions, "
                             "analytics.prediction_snapshots, analytics.prediction_accuracy, "
                             "analytics.capacity_limits, analytics.workspace_time_zones, "
                             + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    root = tmp_path_factory.mktemp("peak_retrain")
    generate_platform(5, 100, seed=4, out_dir=root / "gen", end_date=NEXT)
    load_events(engine, root / "gen" / "events", root / "rejects")
    return Settings(database_url=db_url, data_dir=root / "pae", shards=2, peak_paths=100, threads=1)


def _finalize(engine, d: date) -> dict:
    with engine.connect() as conn:
        return conn.execute(sa.text("select details from analytics.pipeline_runs where step = 'finalize_peak_usage'"
                                    " and logical_date = :d order by started_at desc limit 1"), {"d": d}).scalar()


def _retrain_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from analytics.retrain_runs where kind = 'peak_usage'"
                                    " order by retrain_id")).mappings().all()


def _versions(settings: Settings) -> list[str]:
    from mlflow.tracking import MlflowClient

    from pipelines.registry import configure

    configure(settings)
    return sorted((str(v.version) for v in MlflowClient().search_model_versions(f"name = '{MODEL_NAME}'")), key=int)


def _no_training(monkeypatch) -> None:
    """Scoring must not fit a PeakForecaster (backtests, member choice) nor run the holdout."""
    def refuse(*args, **kwargs):
        raise AssertionError("nightly scoring trained")

    monkeypatch.setattr(forecaster_module.PeakForecaster, "fit", refuse)
    monkeypatch.setattr(forecaster_module.PeakForecaster, "_choose", refuse)
    monkeypatch.setattr(forecast_module, "holdout", refuse)
    monkeypatch.setattr(forecast_module, "train_shard", refuse)


def test_first_night_trains_inline_and_records_a_no_champion_retrain(platform, engine):
    from pipelines.nightly import run_nightly

    published = run_nightly(FIRST, platform, kinds=["peak_usage"])
    assert [(p.kind, p.status) for p in published] == [("peak_usage", "success")]
    details = _finalize(engine, FIRST)["details"]
    assert details["mode"] == "trained inline" and "no champion yet" in details["train_reason"]
    version = version_by_alias(platform, MODEL_NAME, "champion")
    assert details["versions"] == {CHAMPION_ARM: version} and details["workspaces_by_arm"] == {CHAMPION_ARM: 5}
    rows = _retrain_rows(engine)
    assert [(r["reason"], r["status"], r["decision"], r["model_version"]) for r in rows] == [
        ("no-champion", "success", "promote", version)]
    art = load_artifact(platform, MODEL_NAME, version)
    assert art.trained_through == FIRST and art.n_shards == 2
    choices = art.table("choices")
    assert set(choices["metric"]) == {"calls", "credits"} and choices.groupby("metric").size().to_dict() == {
        "calls": 5, "credits": 5}
    assert len(art.table("blocks")) > 0


def test_next_night_scores_with_the_stored_version_and_trains_nothing(platform, engine, monkeypatch):
    from pipelines.nightly import run_nightly

    champion = version_by_alias(platform, MODEL_NAME, "champion")
    before = _versions(platform)
    _no_training(monkeypatch)
    published = run_nightly(END, platform, kinds=["peak_usage"])
    assert published[0].status == "success"
    result = _finalize(engine, END)
    details = result["details"]
    assert details["mode"] == "scored" and details["versions"] == {CHAMPION_ARM: champion}
    assert details["backtests"] == 0 and details["unknown_workspaces"] == {"calls": 0, "credits": 0}
    assert details["workspaces_by_arm"] == {CHAMPION_ARM: 5}
    assert _versions(platform) == before  # no new model version registered
    assert [r["reason"] for r in _retrain_rows(engine)] == ["no-champion"]  # and no inline retrain recorded
    trained = pd.read_parquet(platform.data_dir / "peak_usage" / f"as_of={FIRST}" / "forecast.parquet")
    scored = pd.read_parquet(result["frame_path"])
    assert set(trained.columns) <= set(scored.columns) and len(scored) == len(trained)
    assert (scored["model_version"] == champion).all() and (scored["arm"] == CHAMPION_ARM).all()
    with engine.connect() as conn:
        versions, bad, per_ws = conn.execute(sa.text("""
            select (select array_agg(distinct model_version) from analytics.predictions
                      where prediction_type = 'peak_usage' and as_of_date = :d),
                   (select count(*) from analytics.predictions where prediction_type = 'peak_usage'
                      and as_of_date = :d and not (confidence_lower <= predicted_value
                                                   and predicted_value <= confidence_upper)),
                   (select array_agg(distinct n) from (select count(*) as n from analytics.predictions
                      where prediction_type = 'peak_usage' and as_of_date = :d and target_metric = 'calls'
                      and granularity = 'hour' group by workspace_id) t)"""), {"d": END}).one()
    assert versions == [champion] and bad == 0 and per_ws == [168]
    reader = sa.create_engine(sa.engine.make_url(platform.database_url).set(username="pae_reader"))
    with reader.connect() as conn:
        plan = pd.DataFrame(conn.execute(sa.text("select * from analytics.v_capacity_plan")).mappings().all())
    reader.dispose()
    assert len(plan) == 5 * 7 * 2 and (plan["as_of_date"] == END).all() and (plan["model_version"] == champion).all()
    assert plan["capacity_need"].notna().all() and (pd.to_datetime(plan["day"]) > pd.Timestamp(END)).all()
    assert (plan["capacity_need"] >= plan["peak_upper"].astype(float) * platform.peak_headroom - 1e-3).all()


def test_retrain_records_a_row_with_version_and_decision(platform, engine):
    from pipelines.retrain import retrain

    before = _versions(platform)
    out = retrain("peak_usage", "manual", END.isoformat(), platform)
    assert out["status"] == "success" and out["model_version"] and out["decision"] in ("promote", "keep")
    row = _retrain_rows(engine)[-1]
    assert (row["reason"], row["status"], row["trained_through"]) == ("manual", "success", END)
    assert row["model_version"] == out["model_version"] not in before
    assert row["figures"]["promotion"]["version"] == row["model_version"]
    assert row["figures"]["workspaces"] == 5 and row["figures"]["train_seconds"] > 0
    assert load_artifact(platform, MODEL_NAME, row["model_version"]).trained_through == END
    with engine.connect() as conn:  # a retrain publishes nothing
        n = conn.execute(sa.text("select count(*) from analytics.predictions where prediction_type = 'peak_usage'"
                                 " and as_of_date = :d and model_version = :v"),
                         {"d": END, "v": row["model_version"]}).scalar()
    assert n == 0


def test_ab_challenger_arm_is_served_by_the_challenger_version(platform, engine, monkeypatch):
    from mlflow.tracking import MlflowClient

    from pipelines.nightly import run_nightly
    from pipelines.registry import configure

    versions = _versions(platform)
    old, new = versions[0], versions[-1]
    assert old != new
    configure(platform)
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, "champion", new)
    client.set_registered_model_alias(MODEL_NAME, "challenger", old)
    with engine.connect() as conn:
        workspaces = conn.execute(sa.text("select external_id from analytics.entities"
                                          " where entity_type = 'workspace'")).scalars().all()
    uuids = {w: str(entity_uuid("workspace", w)) for w in workspaces}  # arms hash the UUID, as the snapshots do
    salt = next(s for s in (f"salt-{i}" for i in range(100))  # a salt that puts workspaces in both arms
                if len({arm_of(u, 0.5, s) for u in uuids.values()}) == 2)
    ab = platform.model_copy(update={"ab_challenger_share": 0.5, "ab_salt": salt})
    _no_training(monkeypatch)
    assert run_nightly(NEXT, ab, kinds=["peak_usage"])[0].status == "success"
    result = _finalize(engine, NEXT)
    details = result["details"]
    want_arm = {w: arm_of(uuids[w], 0.5, salt) for w in workspaces}
    want = {w: (old if a == CHALLENGER_ARM else new) for w, a in want_arm.items()}
    assert details["versions"] == {CHAMPION_ARM: new, CHALLENGER_ARM: old}
    n_challenger = sum(a == CHALLENGER_ARM for a in want_arm.values())
    assert details["workspaces_by_arm"] == {CHAMPION_ARM: 5 - n_challenger, CHALLENGER_ARM: n_challenger}
    frame = pd.read_parquet(result["frame_path"])
    assert frame.groupby("workspace_id")["model_version"].agg(set).to_dict() == {w: {v} for w, v in want.items()}
    assert frame.groupby("workspace_id")["arm"].agg(set).to_dict() == {w: {a} for w, a in want_arm.items()}
    with engine.connect() as conn:
        served = conn.execute(sa.text(
            "select e.external_id, array_agg(distinct p.model_version) from analytics.predictions p"
            " join analytics.entities e on e.entity_id = p.workspace_id and e.entity_type = 'workspace'"
            " where p.prediction_type = 'peak_usage' and p.as_of_date = :d group by 1"), {"d": NEXT}).all()
        snaps = conn.execute(sa.text(
            "select e.external_id, array_agg(distinct s.arm), array_agg(distinct s.model_version)"
            " from analytics.prediction_snapshots s"
            " join analytics.entities e on e.entity_id = s.workspace_id and e.entity_type = 'workspace'"
            " where s.prediction_type = 'peak_usage' and s.as_of_date = :d group by 1"), {"d": NEXT}).all()
    assert {w: v for w, v in served} == {w: [v] for w, v in want.items()}
    assert {w: (a, v) for w, a, v in snaps} == {w: ([want_arm[w]], [want[w]]) for w in workspaces}


def test_unknown_workspace_gets_the_group_fallback_and_is_counted(platform, engine, tmp_path, monkeypatch):
    import shutil

    from pipelines.peak_usage.artifact import read_artifact
    from pipelines.peak_usage.scoring import score_shard
    from pipelines.serving import ServingPlan

    version = _versions(platform)[-1]
    art = load_artifact(platform, MODEL_NAME, version)
    copy = tmp_path / "scoring"
    shutil.copytree(art.folder, copy)
    choices = pd.read_parquet(copy / "choices.parquet")
    dropped, shard = choices[choices["metric"] == "calls"][["unique_id", "shard"]].iloc[0]
    keep = ~((choices["unique_id"] == dropped) & (choices["metric"] == "calls"))
    choices[keep].to_parquet(copy / "choices.parquet")
    blocks = pd.read_parquet(copy / "blocks.parquet")
    blocks[~((blocks["unique_id"] == dropped) & (blocks["metric"] == "calls"))].to_parquet(copy / "blocks.parquet")
    _no_training(monkeypatch)
    plan = ServingPlan(models={CHAMPION_ARM: read_artifact(version, copy)}, versions={CHAMPION_ARM: version})
    ref = score_shard(platform, engine, END, int(shard), platform.shards, plan)
    assert ref["mode"] == "scored" and ref["unknown_workspaces"] == {"calls": 1, "credits": 0}
    frame = pd.read_parquet(f"{ref['path']}/forecast.parquet")
    rows = frame[(frame["workspace_id"] == dropped) & (frame["target_metric"] == "calls")]
    assert len(rows) == 168 and (rows["confidence_lower"] <= rows["predicted_value"]).all()
    assert (rows["predicted_value"] <= rows["confidence_upper"]).all() and (rows["model_version"] == version).all()
