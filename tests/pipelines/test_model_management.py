"""Done-when of issue 16 (champion/challenger and A/B): two consecutive nightly runs on a small platform with A/B
on produce realised-accuracy rows for the first run's predictions, an A/B comparison and recorded promotion
decisions; a run killed after registration leaves the champion where it was."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from core.arms import arm_of
from core.settings import Settings
from tests.conftest import make_events

pytestmark = pytest.mark.slow
END = date(2026, 3, 24)
SHARE = 0.3
N_WORKSPACES = 10  # with the default salt, 2 of them fall in the challenger arm


@pytest.fixture(scope="module")
def platform(engine, db_url, tmp_path_factory) -> Settings:
    from pipelines.ingest.load import load_events
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate analytics.retrain_runs, analytics.prediction_snapshots, analytics.prediction_accuracy,"
                             " analytics.model_decisions, analytics.ab_comparisons, "
                             + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    root = tmp_path_factory.mktemp("model_management")
    settings = Settings(database_url=db_url, data_dir=root / "pae", threads=1, shards=1, forecast_backtest_windows=2,
                        forecast_backtest_horizon_days=14, forecast_horizon_days=14, forecast_holdout_days=14,
                        forecast_robust=False, churn_min_examples=10_000, ab_challenger_share=SHARE,
                        ab_min_workspace_days=2, ab_bootstrap_samples=500)
    make_events(N_WORKSPACES, 90, end=END + timedelta(days=2), seed=3).to_csv(root / "events.csv", index=False)
    load_events(engine, root / "events.csv", root / "rejects")
    return settings


def _champion(settings: Settings) -> str | None:
    from pipelines.consumption.kind import MODEL_NAME
    from pipelines.registry import champion_version

    mv = champion_version(MODEL_NAME, settings)
    return str(mv.version) if mv is not None else None


def test_two_nights_give_realised_accuracy_an_ab_comparison_and_decisions(platform, engine):
    from pipelines.nightly import run_nightly

    first = run_nightly(END, platform, kinds="consumption")
    assert [(p.kind, p.status) for p in first] == [("consumption", "success")]
    v1 = _champion(platform)
    assert v1 is not None  # moved by the publish step
    second = run_nightly(END + timedelta(days=1), platform, kinds="consumption")
    assert [(p.kind, p.status) for p in second] == [("consumption", "success")]

    with engine.connect() as conn:
        # realised accuracy of the first run's 1-day-ahead forecasts, per arm
        rows = conn.execute(sa.text(
            "select a.workspace_id::text as ws, a.arm, a.model_version, a.n, a.abs_error, a.naive_abs_error"
            " from analytics.prediction_accuracy a where a.prediction_type = 'credit_consumption'"
            " and a.scored_date = :d and a.horizon_bucket = '1d' and a.target_metric = 'credits'"),
            {"d": END + timedelta(days=1)}).mappings().all()
        ab = conn.execute(sa.text("select * from analytics.v_ab_comparisons where kind = 'consumption'"
                                  " and run_date = :d"), {"d": END + timedelta(days=1)}).mappings().one()
        decisions = conn.execute(sa.text(
            "select * from analytics.v_model_decisions where kind = 'consumption' order by run_date")).mappings().all()
        runs = conn.execute(sa.text("select details from analytics.pipeline_runs where step = 'monitor'"
                                    " and logical_date = :d"), {"d": END + timedelta(days=1)}).scalar()
    assert len(rows) == N_WORKSPACES and all(r["n"] == 1 and r["naive_abs_error"] is not None for r in rows)
    assert {r["model_version"] for r in rows} <= {v1}  # the first run's version served both arms
    assert {r["ws"]: r["arm"] for r in rows} == {r["ws"]: arm_of(r["ws"], SHARE) for r in rows}
    n_chall = sum(r["arm"] == "challenger" for r in rows)
    assert 0 < n_chall < N_WORKSPACES
    # the A/B comparison of that day: both arms counted, a difference with its interval, and a verdict
    assert (ab["workspace_days_challenger"], ab["workspace_days_champion"]) == (n_chall, N_WORKSPACES - n_chall)
    assert ab["verdict"] in ("challenger_better", "champion_better", "no_difference")
    assert ab["ci_low"] <= ab["diff"] <= ab["ci_high"] and ab["mlflow_run_id"]
    assert ab["champion_version"] == v1 and runs["ab"]["consumption"]["verdict"] == ab["verdict"]
    # the first night's registration decision, with its figures, applied when its predictions were published
    registered = [d for d in decisions if d["source"] == "registration"]
    assert registered and registered[0]["version"] == v1 and registered[0]["decision"] == "promote"
    assert registered[0]["applied"] and registered[0]["figures"]["reason"] == registered[0]["reason"]
    with engine.connect() as conn:
        active = conn.execute(sa.text("select version from analytics.ml_models where is_active"
                                      " and model_name = 'pae-credit-consumption'")).scalars().all()
    assert active == [_champion(platform)]


def test_a_run_killed_after_registration_leaves_the_champion(platform, engine):
    """Train and register (finalize) for the next date, then stop before publishing."""
    from pipelines.consumption.kind import KIND
    from pipelines.retrain import retrain_shard_step

    before = _champion(platform)
    d = END + timedelta(days=2)
    refs = [retrain_shard_step(d.isoformat(), s, platform) for s in range(platform.shards)]
    result = KIND.finalize_training(platform, engine, d, [r for r in refs if r.get("n_rows")])
    assert result.model_version not in (None, before)
    with engine.connect() as conn:
        row = conn.execute(sa.text("select decision, applied from analytics.v_model_decisions"
                                   " where model_name = 'pae-credit-consumption' and version = :v"),
                           {"v": result.model_version}).one()
        active = conn.execute(sa.text("select is_active from analytics.ml_models where model_name ="
                                      " 'pae-credit-consumption' and version = :v"), {"v": result.model_version}).scalar()
    assert not row.applied and active is False  # decided (promote or keep), never applied: nothing was published
    assert _champion(platform) == before
