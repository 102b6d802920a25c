"""Training split from scoring, on a tiny platform: the first night trains inline (no champion), the next
scores with the champion's stored model and runs no backtest, A/B arms are scored by their versions, unknown
workspaces get the default weights, and each retrain records why it ran."""
from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import models.forecasting.ensemble as ensemble_module
import models.forecasting.evaluation as evaluation_module
from core.arms import CHALLENGER_ARM, CHAMPION_ARM, workspace_arm
from core.settings import Settings
from pipelines.consumption.artifact import ScoringArtifact, load_artifact
from pipelines.serving import version_by_alias
from pipelines.consumption.kind import MODEL_NAME
from tests.conftest import make_events

END = date(2026, 3, 24)
NEXT = END + timedelta(days=7)
COLUMNS = ["workspace_id", "prediction_date", "predicted_value", "confidence_lower", "confidence_upper", "dimension",
           "target_metric", "confidence_level"]


@pytest.fixture(scope="module")
def platform(engine, db_url, tmp_path_factory) -> Settings:
    """4 workspaces x 97 days loaded; small, fast ensemble settings."""
    from pipelines.ingest.load import load_events
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate analytics.retrain_runs, analytics.prediction_snapshots, "
                             "analytics.prediction_accuracy, " + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    root = tmp_path_factory.mktemp("retrain")
    settings = Settings(database_url=db_url, data_dir=root / "pae", threads=1, shards=2, forecast_backtest_windows=2,
                        forecast_backtest_horizon_days=14, forecast_horizon_days=14, forecast_holdout_days=14,
                        forecast_robust=False, churn_min_examples=10_000)
    make_events(4, 97, end=NEXT, seed=5).to_csv(root / "events.csv", index=False)
    load_events(engine, root / "events.csv", root / "rejects")
    return settings


def _finalize_details(engine, d: date) -> dict:
    with engine.connect() as conn:
        return conn.execute(sa.text("select details from analytics.pipeline_runs where step = 'finalize_consumption'"
                                    " and logical_date = :d order by started_at desc limit 1"), {"d": d}).scalar()


def _retrain_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from analytics.retrain_runs order by retrain_id")).mappings().all()


def _no_backtest(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("nightly scoring ran a backtest")

    monkeypatch.setattr(ensemble_module, "backtest", refuse)
    monkeypatch.setattr(evaluation_module, "backtest", refuse)


def test_first_night_trains_inline_and_records_why(platform, engine):
    from pipelines.nightly import run_nightly

    published = run_nightly(END, platform, kinds="consumption")
    assert [(p.kind, p.status) for p in published] == [("consumption", "success")]
    details = _finalize_details(engine, END)["details"]
    assert details["mode"] == "trained inline" and "no champion yet" in details["train_reason"]
    rows = _retrain_rows(engine)
    assert [(r["reason"], r["status"], r["decision"]) for r in rows] == [("no-champion", "success", "promote")]
    version = version_by_alias(platform, MODEL_NAME, "champion")
    art = load_artifact(platform, MODEL_NAME, version)
    assert art.trained_through == END and art.n_shards == 2 and rows[0]["model_version"] == version
    assert art.state(0, "total") is not None or art.state(1, "total") is not None


def test_next_night_scores_with_the_champion_and_no_backtest(platform, engine, monkeypatch):
    from pipelines.nightly import run_nightly

    champion = version_by_alias(platform, MODEL_NAME, "champion")
    _no_backtest(monkeypatch)
    published = run_nightly(NEXT, platform, kinds="consumption")
    assert published[0].status == "success"
    result = _finalize_details(engine, NEXT)
    details = result["details"]
    assert details["mode"] == "scored" and details["versions"] == {CHAMPION_ARM: champion}
    assert details["backtests"] == 0 and details["unknown_workspaces"] == 0
    assert set(details["drift"]["psi"]["psi"]) == {"log_level", "volatility", "zero_share", "top_feature_share"}
    trained = pd.read_parquet(platform.data_dir / "forecasts" / f"as_of={END}" / "forecast.parquet")
    scored = pd.read_parquet(result["frame_path"])
    assert set(COLUMNS + ["model_version"]) <= set(scored.columns) and set(trained.columns) <= set(scored.columns)
    assert (scored["model_version"] == champion).all()
    assert len(scored) == len(trained)  # same workspaces, features, horizon and cumulative rows
    assert scored["prediction_date"].min() == pd.Timestamp(NEXT + timedelta(days=1))
    with engine.connect() as conn:
        incoherent, bad_bounds, versions = conn.execute(sa.text("""
            select (select count(*) from (
                      select workspace_id, prediction_date,
                             sum(predicted_value) filter (where dimension <> 'total') as parts,
                             max(predicted_value) filter (where dimension = 'total') as total
                      from analytics.predictions where target_metric = 'credits' and as_of_date = :d
                      group by 1, 2) s where abs(parts - total) > 1e-3 * greatest(1, total)),
                   (select count(*) from analytics.predictions where as_of_date = :d
                      and not (confidence_lower <= predicted_value and predicted_value <= confidence_upper)),
                   (select array_agg(distinct model_version) from analytics.predictions where as_of_date = :d)"""),
            {"d": NEXT}).one()
    assert incoherent == 0 and bad_bounds == 0 and versions == [champion]


def test_retrain_records_its_reason_and_takes_over_a_pending_request(platform, engine):
    from pipelines.retrain import retrain
    from pipelines.retrain_runs import pending_retrain, request_retrain

    # the scoring night's check asked for one: the champion is 7 days old (schedule), and on 4 workspaces
    # the PSI of 2 bins may read drift
    pending = pending_retrain(engine, "consumption")
    reasons = [pending["reason"]] + [r["reason"] for r in pending["figures"].get("later_requests", [])]
    assert "schedule" in reasons and set(reasons) <= {"drift", "schedule"}
    first = request_retrain(engine, "consumption", "accuracy", NEXT, {"alert": True})
    assert first == pending["retrain_id"] and pending_retrain(engine, "consumption")["reason"] == pending["reason"]
    out = retrain("consumption", "manual", NEXT.isoformat(), platform)
    assert out["reason"] == pending["reason"] and out["status"] == "success" and out["model_version"]
    row = _retrain_rows(engine)[-1]
    assert (row["retrain_id"], row["reason"], row["status"]) == (first, pending["reason"], "success")
    assert row["figures"]["run_by"] == "manual" and row["figures"]["later_requests"][-1]["reason"] == "accuracy"
    assert row["figures"]["promotion"]["version"] == row["model_version"] and row["decision"] in ("promote", "keep")
    assert row["started_at"] <= row["finished_at"] and row["trained_through"] == NEXT
    # judged against the champion's stored weights on the same backtest windows (models.promotion)
    assert row["figures"]["promotion"]["policy"] == "backtest_windows"
    assert row["figures"]["promotion"]["figures"]["n_windows"] == platform.forecast_backtest_windows
    assert pending_retrain(engine, "consumption") is None
    manual = retrain("consumption", "manual", NEXT.isoformat(), platform)
    assert manual["reason"] == "manual" and _retrain_rows(engine)[-1]["reason"] == "manual"
    with pytest.raises(ValueError, match="consumption"):
        retrain("no_such_kind", "manual", NEXT.isoformat(), platform)
    with pytest.raises(ValueError, match="unknown retrain reason"):
        request_retrain(engine, "consumption", "whim", NEXT, {})


def _two_versions(platform) -> tuple[str, str]:
    """Versions of the first training (END) and of the retrain (NEXT)."""
    from mlflow.tracking import MlflowClient

    from pipelines.registry import configure

    configure(platform)
    versions = sorted(MlflowClient().search_model_versions(f"name = '{MODEL_NAME}'"), key=lambda v: int(v.version))
    return str(versions[0].version), str(versions[-1].version)


def test_ab_arms_are_scored_by_their_versions(platform, engine, monkeypatch):
    from mlflow.tracking import MlflowClient

    from pipelines.consumption.forecast import forecast_shard
    from pipelines.registry import configure

    old, new = _two_versions(platform)
    assert old != new
    configure(platform)
    client = MlflowClient()
    # the newest version serves the champion arm (registry.serving_version), the older one the challenger arm
    client.set_registered_model_alias(MODEL_NAME, "champion", new)
    client.set_registered_model_alias(MODEL_NAME, "challenger", old)
    workspaces = [f"ws{i}" for i in range(4)]
    salt = next(s for s in (f"salt-{i}" for i in range(50))  # a salt that puts workspaces in both arms
                if len({workspace_arm(w, 0.5, s) for w in workspaces}) == 2)
    ab = platform.model_copy(update={"ab_challenger_share": 0.5, "ab_salt": salt})
    _no_backtest(monkeypatch)
    day = NEXT + timedelta(days=1)  # after both versions' training data
    frames = [pd.read_parquet(Path(forecast_shard(ab, day, s, ab.shards)["path"]) / "forecast.parquet")
              for s in range(ab.shards)]
    frame = pd.concat(frames, ignore_index=True)
    want = {w: (old if workspace_arm(w, 0.5, salt) == CHALLENGER_ARM else new) for w in workspaces}
    got = frame.groupby("workspace_id")["model_version"].agg(set).to_dict()
    assert got == {w: {v} for w, v in want.items()}
    assert set(frame["arm"]) == {CHAMPION_ARM, CHALLENGER_ARM}


def test_unknown_workspace_is_scored_with_default_weights(platform, tmp_path):
    from pipelines.consumption.artifact import read_artifact
    from pipelines.consumption.scoring import score_shard

    _, new = _two_versions(platform)
    art = load_artifact(platform, MODEL_NAME, new)
    copy = tmp_path / "scoring"
    shutil.copytree(art.folder, copy)
    shard = next(k for k in range(art.n_shards) if (copy / f"shard={k}" / "total_weights.parquet").exists())
    weights = pd.read_parquet(copy / f"shard={shard}" / "total_weights.parquet")
    dropped = weights["unique_id"].iloc[0]
    weights.iloc[1:].to_parquet(copy / f"shard={shard}" / "total_weights.parquet")
    edited: ScoringArtifact = read_artifact(new, copy)
    ref = score_shard(platform, NEXT + timedelta(days=1), shard, art.n_shards, {CHAMPION_ARM: edited})
    frame = pd.read_parquet(Path(ref["path"]) / "forecast.parquet")
    assert ref["unknown_workspaces"] == 1 and ref["mode"] == "scored"
    rows = frame[(frame["workspace_id"] == dropped) & (frame["dimension"] == "total")]
    assert len(rows) == 2 * platform.forecast_horizon_days  # daily and cumulative rows all the same
    assert (rows["confidence_lower"] <= rows["predicted_value"]).all()


def test_stored_specifications_and_an_older_artifact_format(platform, tmp_path):
    """Format 2 stores each searching member's chosen specification per series and scoring fits it; a format-1
    artifact (no specifications) still scores, with the search; an unknown format is refused."""
    import json

    from pipelines.consumption.artifact import FORMAT, read_artifact
    from pipelines.consumption.scoring import score_shard

    _, new = _two_versions(platform)
    art = load_artifact(platform, MODEL_NAME, new)
    assert FORMAT == 2 and art.format == 2 and art.has_specs
    shard = next(k for k in range(art.n_shards) if (art.folder / f"shard={k}" / "total_weights.parquet").exists())
    specs = pd.concat([art.state(shard, level).specs.assign(level=level) for level in ("total", "feature")])
    assert set(specs["member"]) <= {"ETS", "MSTL"} and specs["spec"].str.fullmatch(r"[AM][NA][NA][ND]").all()
    night = NEXT + timedelta(days=2)
    stored = score_shard(platform, night, shard, art.n_shards, {CHAMPION_ARM: art})
    assert stored["specs"] == {CHAMPION_ARM: "stored"}
    used = {k: v for k, v in stored["fitted_members"].items() if k.split(":")[1] in {"ETS", "MSTL"}}
    assert stored["fixed_specs"] and set(stored["fixed_specs"]) <= set(used)  # fitted series with a stored spec
    assert all(n <= used[k] for k, n in stored["fixed_specs"].items())
    stored_frame = pd.read_parquet(Path(stored["path"]) / "forecast.parquet")

    old = tmp_path / "format1"
    shutil.copytree(art.folder, old)
    for path in old.glob("shard=*/*_specs.parquet"):
        path.unlink()
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "format": 1}))
    searched = score_shard(platform, night, shard, art.n_shards, {CHAMPION_ARM: read_artifact(new, old)})
    assert searched["specs"] == {CHAMPION_ARM: "searched (artifact format 1)"} and searched["fixed_specs"] == {}
    searched_frame = pd.read_parquet(Path(searched["path"]) / "forecast.parquet")
    assert len(searched_frame) == len(stored_frame) and searched["n_fallbacks"] == stored["n_fallbacks"]
    (old / "config.json").write_text(json.dumps({**config, "format": 3}))
    with pytest.raises(ValueError, match="artifact format 3"):
        read_artifact(new, old)


def test_champion_weights_are_judged_on_the_challengers_windows():
    import numpy as np

    from models.forecasting import ETS, Ensemble, SeasonalNaive, Theta
    from models.forecasting.stored import ensemble_state
    from pipelines.consumption.windows import window_errors, window_frames
    from tests.models.test_forecasting import make_series

    df = make_series(n_series=6, n_steps=90, ragged=False)
    ens = Ensemble(members=[SeasonalNaive(), ETS(), Theta()], backtest_h=10, n_windows=3, min_group_size=2).fit(df)
    state = ensemble_state(ens)
    champion, challenger = window_frames(window_errors(ens.backtest_, df, state))
    assert len(champion) == len(challenger) == 3 and list(champion["window"]) == list(challenger["window"])
    np.testing.assert_allclose(champion["metric"], challenger["metric"])  # the same weights: the same errors
    state.weights[state.members] = 0.0
    state.weights["SeasonalNaive"] = 1.0
    naive = ens.backtest_.assign(Ensemble=ens.backtest_["SeasonalNaive"])
    champion, naive_windows = window_frames(window_errors(naive, df, state))
    np.testing.assert_allclose(champion["metric"], naive_windows["metric"])
    state.meta["members"] = [*state.members, "LSTM"]
    assert window_errors(ens.backtest_, df, state).empty  # a member the backtest lacks: no comparison
