"""Churn training split from scoring, on a small generated platform (25 workspaces x 300 days, about 1,250 users):
the first night trains inline (no champion) and records why, a retrain registers a version with its decision, the
next night scores with the stored version (no fit, no new version), and A/B arms score each workspace's users
with their arm's version, published with version and arm."""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

import models.churn.model as churn_model_module
from core.arms import CHALLENGER_ARM, CHAMPION_ARM, workspace_arm
from core.settings import Settings
from pipelines.churn.train import MODEL_NAME
from pipelines.serving import version_by_alias

pytestmark = pytest.mark.slow

END = date(2026, 6, 30)             # first night: no champion, trains inline
RETRAIN = END + timedelta(days=7)   # `pae retrain --kinds churn` trains through this date
SCORE = RETRAIN + timedelta(days=1)  # the next night scores with the stored version


@pytest.fixture(scope="module")
def platform(engine, db_url, tmp_path_factory) -> Settings:
    from pipelines.ingest.load import load_events
    from pipelines.simulator.generate import generate_platform
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate analytics.retrain_runs, analytics.model_decisions, "
                             + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    root = tmp_path_factory.mktemp("churn-retrain")
    settings = Settings(database_url=db_url, data_dir=root / "pae", threads=1, shards=1, churn_min_examples=20,
                        churn_training_snapshots=4)
    generate_platform(25, 300, seed=3, out_dir=root / "gen", end_date=SCORE)
    load_events(engine, root / "gen" / "events", root / "rejects")
    mp = pytest.MonkeyPatch()
    mp.setattr("models.churn.CLASSIFIER_KINDS", ("logistic", "xgboost"))  # two candidate kinds keep it small
    yield settings
    mp.undo()


def _finalize(engine, d: date) -> dict:
    with engine.connect() as conn:
        return conn.execute(sa.text("select details from analytics.pipeline_runs where step = 'finalize_churn'"
                                    " and logical_date = :d order by started_at desc limit 1"), {"d": d}).scalar()


def _retrain_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from analytics.retrain_runs where kind = 'churn' order by retrain_id")
                            ).mappings().all()


def _versions(settings: Settings) -> list[str]:
    from mlflow.tracking import MlflowClient

    from pipelines.registry import configure

    configure(settings)
    return sorted((str(v.version) for v in MlflowClient().search_model_versions(f"name = '{MODEL_NAME}'")), key=int)


def _published(engine, d: date) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(
            "select w.external_id as workspace_id, c.model_version, c.arm from analytics.churn_predictions c"
            " join analytics.entities w on w.entity_type = 'workspace' and w.entity_id = c.workspace_id"
            " where c.prediction_date = :d"), conn, params={"d": d})


def _no_training(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("nightly churn scoring trained a model")

    monkeypatch.setattr(churn_model_module, "select_model", refuse)
    monkeypatch.setattr(churn_model_module.ChurnModel, "fit", classmethod(refuse))


def test_first_night_trains_inline_and_records_a_no_champion_retrain(platform, engine):
    from pipelines.churn.scoring import load_version
    from pipelines.nightly import run_nightly

    published = run_nightly(END, platform, kinds="churn")
    assert [(p.kind, p.status) for p in published] == [("churn", "success")] and published[0].rows > 0
    details = _finalize(engine, END)["details"]
    assert details["mode"] == "trained inline" and "no champion yet" in details["train_reason"]
    (row,) = _retrain_rows(engine)
    assert (row["reason"], row["status"], row["decision"]) == ("no-champion", "success", "promote")
    champion = version_by_alias(platform, MODEL_NAME, "champion")  # moved by the publish step
    assert row["model_version"] == champion == details["versions"][CHAMPION_ARM]
    stored = load_version(platform, champion)  # the run's scoring artifact: the model's bundle, no pickle
    assert stored.trained_through == END and stored.model.kind in ("logistic", "xgboost")
    rows = _published(engine, END)
    assert set(rows["model_version"]) == {champion} and set(rows["arm"]) == {CHAMPION_ARM}


def test_retrain_records_a_version_and_its_decision(platform, engine):
    from pipelines.nightly import extract_step, features_step
    from pipelines.retrain import retrain

    extract_step(RETRAIN.isoformat(), platform)
    features_step(RETRAIN.isoformat(), platform)
    before = _versions(platform)
    out = retrain("churn", "manual", RETRAIN.isoformat(), platform)
    assert out["status"] == "success" and out["model_version"] not in before
    row = _retrain_rows(engine)[-1]
    assert (row["reason"], row["status"], row["trained_through"]) == ("manual", "success", RETRAIN)
    assert row["model_version"] == out["model_version"] and row["decision"] in ("promote", "keep")
    promotion = row["figures"]["promotion"]
    assert promotion["version"] == row["model_version"] and promotion["decision"] == row["decision"]
    assert promotion["metric"] == "oot_auc" and row["figures"]["workspaces"] > 0
    with engine.connect() as conn:
        decision = conn.execute(sa.text("select kind, decision from analytics.model_decisions where model_name = :n"
                                        " and version = :v"), {"n": MODEL_NAME, "v": row["model_version"]}).one()
    assert tuple(decision) == ("churn", row["decision"])
    # a retrain publishes nothing: the served scores are still the first night's
    assert version_by_alias(platform, MODEL_NAME, "champion") == before[0]
    assert set(_published(engine, END)["model_version"]) == {before[0]} and _published(engine, RETRAIN).empty


def test_next_night_scores_with_the_stored_version_without_training(platform, engine, monkeypatch):
    from pipelines.nightly import run_nightly

    first, retrained = _versions(platform)
    decision = _retrain_rows(engine)[-1]["decision"]
    served = retrained if decision == "promote" else first  # registry.serving_version
    _no_training(monkeypatch)
    published = run_nightly(SCORE, platform, kinds="churn")
    assert published[0].status == "success" and published[0].rows > 0
    details = _finalize(engine, SCORE)["details"]
    assert details["mode"] == "scored" and details["versions"] == {CHAMPION_ARM: served}
    assert details["backtests"] == 0 and details["fits"] == 0 and "promotion" not in details
    assert details["workspaces_by_arm"] == {CHAMPION_ARM: 25}
    assert _versions(platform) == [first, retrained]  # no new version registered
    assert len([r for r in _retrain_rows(engine) if r["status"] != "pending"]) == 2  # no inline training
    rows = _published(engine, SCORE)
    assert set(rows["model_version"]) == {served} and set(rows["arm"]) == {CHAMPION_ARM}
    assert len(rows) == details["n_scored"]
    assert version_by_alias(platform, MODEL_NAME, "champion") == served  # publishing applied a promote decision
    check = details["retrain_check"]
    assert check["trained_through"] == (RETRAIN if served == retrained else END).isoformat()
    # the age counts from the newest training, the served version's or a later retrain's (refused or not)
    assert check["last_retrained_through"] == RETRAIN.isoformat()
    assert check["age_days"] == (SCORE - RETRAIN).days
    assert check["retrain_requested"] == (check["age_days"] >= platform.retrain_every_days)


def test_ab_challenger_arm_users_carry_the_challenger_version(platform, engine, monkeypatch):
    from mlflow.tracking import MlflowClient

    from pipelines.churn.realised import _scores
    from pipelines.monitor import outcome_rows
    from pipelines.nightly import run_nightly
    from pipelines.registry import configure

    first, retrained = _versions(platform)
    configure(platform)
    client = MlflowClient()
    client.set_registered_model_alias(MODEL_NAME, "champion", retrained)
    client.set_registered_model_alias(MODEL_NAME, "challenger", first)
    workspaces = sorted(_published(engine, SCORE)["workspace_id"].unique())
    assert len(workspaces) == 25
    ab = platform.model_copy(update={"ab_challenger_share": 0.3})
    want = {w: workspace_arm(w, 0.3, ab.ab_salt) for w in workspaces}  # external ids, hashed on the UUID
    assert set(want.values()) == {CHAMPION_ARM, CHALLENGER_ARM}  # both arms have workspaces
    _no_training(monkeypatch)
    assert run_nightly(SCORE, ab, kinds="churn")[0].status == "success"
    details = _finalize(engine, SCORE)["details"]
    assert details["versions"] == {CHAMPION_ARM: retrained, CHALLENGER_ARM: first}
    n_challenger = sum(a == CHALLENGER_ARM for a in want.values())
    assert details["workspaces_by_arm"] == {CHAMPION_ARM: 25 - n_challenger, CHALLENGER_ARM: n_challenger}
    rows = _published(engine, SCORE)
    got = rows.groupby("workspace_id")[["arm", "model_version"]].agg(set)
    for w, arm in want.items():
        assert got.loc[w, "arm"] == {arm}
        assert got.loc[w, "model_version"] == {first if arm == CHALLENGER_ARM else retrained}
    # the realised-accuracy step reads each score's version and arm: one accuracy row per version x arm
    scores = _scores(engine, SCORE)
    outcomes = scores.assign(target_metric="churned", as_of_date=SCORE, outcome=(scores["probability"] > 0.5),
                             predicted_positive=scores["probability"] >= 0.5)
    keys = {(r["model_version"], r["arm"]) for r in outcome_rows(outcomes, SCORE + timedelta(days=30))}
    assert keys == {(retrained, CHAMPION_ARM), (first, CHALLENGER_ARM)}


def test_workspace_shards_score_the_rows_one_shard_scores(platform, engine, monkeypatch):
    """Scoring in three workspace shards (mapped tasks) publishes the rows one shard publishes: each user once, with
    the same probability, risk factors, actions and version; the parts are merged and the counts summed."""
    from pipelines.nightly import run_nightly

    def scores() -> pd.DataFrame:
        with engine.connect() as conn:
            return pd.read_sql(sa.text(
                "select workspace_id, user_id, churn_probability, risk_score, risk_factors::text,"
                " recommended_actions::text, days_until_churn, model_version, arm from analytics.churn_predictions"
                " where prediction_date = :d order by workspace_id, user_id"), conn, params={"d": SCORE})

    _no_training(monkeypatch)
    assert run_nightly(SCORE, platform, kinds="churn")[0].status == "success"
    one, one_details = scores(), _finalize(engine, SCORE)["details"]
    three = platform.model_copy(update={"shards": 3})
    assert run_nightly(SCORE, three, kinds="churn")[0].status == "success"
    details = _finalize(engine, SCORE)["details"]
    assert details["mode"] == "scored" and details["shards"] == 3
    for key in ("n_scored", "workspaces_by_arm", "users_by_arm", "states", "versions"):
        assert details[key] == one_details[key], key
    pd.testing.assert_frame_equal(scores(), one)
    assert not one.duplicated(["workspace_id", "user_id"]).any() and len(one) == details["n_scored"]
