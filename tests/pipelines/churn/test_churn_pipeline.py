"""Churn pipeline on a small generated platform: labels, out-of-time training, scores, publish."""
import json
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.churn.train import (
    churn_labels,
    snapshot_dates,
    train_and_score,
    training_frame,
)
from pipelines.features.sets import USER_BEHAVIOUR
from pipelines.features.store import build_feature_store, load_daily_aggregates
from pipelines.ingest.extract import extract
from pipelines.ingest.load import load_events
from pipelines.publish import publish_churn_scores
from pipelines.simulator.generate import generate_platform

END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, engine):
    """Generated events, loaded and featurised once for the module (its own data dir)."""
    from core.settings import Settings
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    root = tmp_path_factory.mktemp("churn")
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False), data_dir=root / "pae",
                        churn_min_examples=20)
    gen = generate_platform(25, 300, seed=3, out_dir=root / "gen", end_date=END)
    load_events(engine, root / "gen" / "events", root / "rejects")
    extract(engine, END, settings.staging_dir)
    build_feature_store(engine, settings.staging_dir, settings.offline_store_dir, END)
    return settings, gen


def test_snapshot_dates_keep_label_windows_apart():
    test, train = snapshot_dates(date(2026, 6, 30), 30, 4)
    assert test == date(2026, 5, 31)
    assert train[-1] + timedelta(days=30) <= test and train == sorted(train)


def test_labels_only_look_at_the_window():
    snap = pd.DataFrame({"workspace_id": ["w"] * 3, "user_id": ["a", "b", "c"]})
    active = pd.DataFrame({"workspace_id": ["w"] * 4, "user_id": ["a", "b", "b", "c"],
                           "day": pd.to_datetime(["2026-01-05", "2026-01-01", "2026-02-15", "2026-01-31"])})
    y = churn_labels(snap, active, date(2026, 1, 1), 30)
    assert y.tolist() == [0, 1, 0]  # b: active on T itself and after the window only -> churned


def test_train_score_and_publish_idempotently(platform, engine):
    settings, _ = platform
    ref = train_and_score(settings, engine, END, n_train_snapshots=4, kinds=("logistic", "xgboost"))
    assert ref["status"] == "success", ref
    assert 0.5 < ref["metrics"]["oot_auc"] <= 1.0
    scores = pd.read_parquet(ref["scores_path"])
    assert scores["churn_probability"].between(0, 1).all()
    assert scores["risk_score"].between(0, 100).all()
    assert not scores.duplicated(["workspace_id", "user_id"]).any()
    factors = [f for v in scores["risk_factors"] for f in json.loads(v)]
    assert factors and {f["feature"] for f in factors} <= set(USER_BEHAVIOUR.columns)
    for _ in range(2):
        with engine.begin() as conn:
            publish_churn_scores(conn, scores, END)
    with engine.connect() as conn:
        first = conn.execute(sa.text("select * from analytics.churn_predictions order by id")).all()
        model = conn.execute(sa.text("select model_name, is_active, performance_metrics from analytics.ml_models"
                                     " where model_name = 'pae-user-churn'")).all()
    assert len(first) == len(scores) and model and model[-1].is_active
    with engine.begin() as conn:
        assert publish_churn_scores(conn, scores, END)["changed"] == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text("select * from analytics.churn_predictions order by id")).all() == first


def test_insufficient_data_publishes_nothing(platform, engine):
    settings, _ = platform
    strict = settings.model_copy(update={"churn_min_examples": 10**6})
    ref = train_and_score(strict, engine, END, n_train_snapshots=3, kinds=("logistic",))
    assert ref["status"] == "insufficient_data"
    assert "scores_path" not in ref
    # The counts reported are the training rows' labels, and the generated platform has both classes.
    agg = load_daily_aggregates(strict.offline_store_dir, END)
    train = training_frame(strict, agg, [date.fromisoformat(d) for d in ref["train_dates"]], END)
    labels = train["churned"]
    assert ref["counts"] == {"churned": int((labels == 1).sum()), "retained": int((labels == 0).sum())}
    assert sum(ref["counts"].values()) == ref["n_train"] == len(train)
    assert ref["counts"]["churned"] > 0 and ref["counts"]["retained"] > 0
