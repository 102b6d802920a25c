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


@pytest.fixture(scope="module")
def trained(platform, engine) -> dict:
    settings, _ = platform
    return train_and_score(settings, engine, END, n_train_snapshots=4, kinds=("logistic", "xgboost"))


def test_train_score_and_publish_idempotently(trained, platform, engine):
    from pipelines.registry import apply_published

    ref = trained
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
    # as the publish step does once the transaction committed: the published version becomes the active champion
    apply_published(engine, platform[0], model_name="pae-user-churn", version=ref["model_version"])
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


def test_every_user_seen_in_the_lookback_is_scored_with_a_state(trained, platform):
    settings, _ = platform
    scores = pd.read_parquet(trained["scores_path"])
    agg = load_daily_aggregates(settings.offline_store_dir, END)
    seen = agg.user_feature[agg.user_feature["day"] > pd.Timestamp(END - timedelta(days=settings.churn_lookback_days))]
    assert len(scores) == len(seen[["workspace_id", "user_id"]].drop_duplicates())
    assert set(scores["state"]) == {"active", "lapsing", "dormant"}
    assert trained["states"] == scores["state"].value_counts().sort_index().to_dict()
    last = [json.loads(v)[-1] for v in scores["risk_factors"]]
    assert [f["state"] for f in last] == scores["state"].tolist()
    assert all(0 <= f["p_alive"] <= 1 for f in last)
    metrics = trained["metrics"]
    assert {f"oot_n_{s}" for s in ("active", "lapsing", "dormant", "recent")} <= set(metrics)
    assert sum(metrics[f"oot_n_{s}"] for s in ("active", "lapsing", "dormant")) == metrics["oot_n"]
    assert metrics["oot_n_recent"] < metrics["oot_n"]


def test_api_returns_state_and_filters_by_it(trained, platform, engine):
    from fastapi.testclient import TestClient

    from core.settings import Settings
    from services.api.main import create_app
    from services.keys import create_api_key

    settings, _ = platform
    scores = pd.read_parquet(trained["scores_path"])
    with engine.begin() as conn:
        publish_churn_scores(conn, scores, END)
    ws = scores["workspace_id"].value_counts().index[0]  # the workspace with most scored users
    mine = scores[scores["workspace_id"] == ws]
    key = {"X-API-Key": create_api_key(engine, [ws], "churn-test", pepper="pepper")}
    app = create_app(Settings(database_url=settings.database_url, data_dir=settings.data_dir, api_key_pepper="pepper"))
    url = "/api/analytics/predictions/churn"
    try:
        with TestClient(app) as client:
            body = client.get(url, params={"workspace_id": ws, "limit": 1000}, headers=key).json()
            assert body["total"] == len(mine) and body["state"] is None
            expected = dict(zip(mine["user_id"], mine["state"]))
            assert {u["user_external_id"]: u["state"] for u in body["users"]} == expected
            for state, n in mine["state"].value_counts().items():
                page = client.get(url, params={"workspace_id": ws, "state": state, "limit": 1000}, headers=key).json()
                assert page["total"] == n and page["state"] == state
                assert {u["state"] for u in page["users"]} == {state}
            assert client.get(url, params={"workspace_id": ws, "state": "gone"}, headers=key).status_code == 422
    finally:
        app.state.engine.dispose()
