"""PredictiveAnalytics.extract_features / train_model (issue 13): the nightly run's features from a frame,
errors that name the valid options, and models trained with out-of-sample CV and logged to MLflow."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from core.settings import Settings
from pipelines.analytics import PredictiveAnalytics
from pipelines.analytics.features import FEATURE_SET_NAMES
from pipelines.analytics.training import MODEL_TYPES, train_model
from pipelines.features.sets import FEATURE_SETS
from pipelines.features.store import build_feature_store, read_offline
from pipelines.ingest.extract import extract
from pipelines.ingest.load import load_events
from pipelines.simulator.generate import generate_platform

END = date(2026, 3, 31)
KEYS = {"workspace": ["workspace_id"], "user": ["workspace_id", "user_id"], "agent": ["workspace_id", "agent_id"]}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A small generated platform: (events folder, events frame)."""
    root = tmp_path_factory.mktemp("platform")
    generate_platform(3, 150, seed=3, out_dir=root, end_date=END, users_per_workspace=30)
    events = pd.concat([pd.read_parquet(p) for p in sorted((root / "events").glob("*.parquet"))], ignore_index=True)
    return root / "events", events


@pytest.fixture
def analytics(tmp_path) -> PredictiveAnalytics:
    return PredictiveAnalytics(settings=Settings(data_dir=tmp_path / "pae"))


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


def test_feature_sets_match_the_nightly_store(platform, clean_db, tmp_path, analytics):
    folder, events = platform
    load_events(clean_db, folder, tmp_path / "rejects")
    staging, store = tmp_path / "staging", tmp_path / "store"
    extract(clean_db, END, staging)
    build_feature_store(clean_db, staging, store, END)
    assert set(FEATURE_SET_NAMES) == set(FEATURE_SETS)
    for name, fs in FEATURE_SETS.items():
        nightly = read_offline(store, fs, END)
        ours = analytics.extract_features(events, name)  # as of the last event day: END
        keys = KEYS[fs.entity] + (["day"] if fs.grain == "day" else [])
        assert len(nightly) > 0, name
        assert list(ours.columns) == list(nightly.columns), name
        nightly, ours = _sorted(nightly, keys), _sorted(ours, keys)
        if "day" in keys:
            nightly["day"] = nightly["day"].astype("datetime64[ns]")
            ours["day"] = ours["day"].astype("datetime64[ns]")
        pd.testing.assert_frame_equal(ours, nightly, check_dtype=False, rtol=1e-9, obj=name)


def test_extract_features_errors_name_the_valid_options(platform, analytics):
    _, events = platform
    with pytest.raises(ValueError, match="valid feature sets: .*workspace_daily.*user_behaviour"):
        analytics.extract_features(events, "user_features")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['status'\]; required columns: \['event_time'"):
        analytics.extract_features(events.drop(columns=["status"]), "workspace_daily")
    bad = events.head(200).copy()
    bad.loc[5, "credits"] = -1.0
    with pytest.raises(ValueError, match="1 of 200 event rows are invalid .*row 5: credits is negative"):
        analytics.extract_features(bad, "workspace_daily")
    kept = analytics.extract_features(bad, "agent_daily", drop_invalid=True)
    assert len(kept) > 0


def _daily_series(n_series: int = 2, days: int = 84, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-01-01", periods=days, freq="D")
    week = 10 + 4 * np.sin(np.arange(days) * 2 * np.pi / 7)
    return pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": week * (i + 1) + rng.normal(0, 1, days)})
                      for i in range(n_series)], ignore_index=True)


def test_forecaster_is_cross_validated_out_of_sample_and_logged(analytics):
    import mlflow
    from mlflow.tracking import MlflowClient

    df = _daily_series()
    trained = asyncio.run(analytics.train_model("ets", df, {"model": "ANA"}, horizon=7, n_windows=3))
    windows = trained.cv_windows
    assert len(windows) == 2 * 3
    assert (windows["test_start"] > windows["train_end"]).all()
    cv = trained.cv_predictions
    assert (cv["ds"] > cv["cutoff"]).all() and len(cv) == 2 * 3 * 7
    wape = (cv["y"] - cv["ETS"]).abs().sum() / cv["y"].abs().sum()
    assert trained.metrics["cv_wape"] == pytest.approx(wape)
    # out of sample: changing the values after the last cutoff leaves that window's forecasts unchanged
    last = trained.cv_windows["train_end"].max()
    moved = df.assign(y=np.where(df["ds"] > last, df["y"] * 5, df["y"]))
    again = train_model("ets", moved, {"model": "ANA"}, settings=analytics.settings, horizon=7, n_windows=3)
    pd.testing.assert_series_equal(again.cv_predictions["ETS"], cv["ETS"])
    assert not np.allclose(again.cv_predictions["y"], cv["y"])

    run = MlflowClient().get_run(trained.run_id)
    assert run.data.metrics["cv_wape"] == pytest.approx(wape)
    assert run.data.params["model_type"] == "ets" and run.data.params["hp_model"] == "ANA"
    model = mlflow.pyfunc.load_model(trained.model_uri)
    out = model.predict(df, params={"h": 5})
    assert len(out) == 2 * 5 and {"yhat", "yhat_lower", "yhat_upper"} <= set(out.columns)
    pd.testing.assert_frame_equal(out.reset_index(drop=True),
                                  trained.forecast.groupby("unique_id").head(5).reset_index(drop=True))


def test_churn_classifier_out_of_time_and_seeded(platform, analytics):
    import mlflow

    _, events = platform
    dates = [date(2026, 2, 28) - timedelta(days=7 * i) for i in range(8)]
    data = analytics.churn_training_data(events, dates)
    assert set(data["as_of"].dt.date) == set(dates) and data["churned"].isin([0, 1]).all()
    params = {"n_estimators": 20, "max_depth": 3}
    trained = asyncio.run(analytics.train_model("churn_xgboost", data, params, n_windows=3, gap_days=30))
    w = trained.cv_windows
    assert len(w) == 3
    assert (w["train_end"] + pd.Timedelta(days=30) < w["test_start"]).all()
    assert set(trained.cv_predictions["as_of"]) == set(w["test_start"])
    assert 0.5 < trained.metrics["cv_auc"] <= 1.0
    again = train_model("churn_xgboost", data, params, settings=analytics.settings, n_windows=3)
    assert again.metrics == trained.metrics  # seeded
    scored = mlflow.pyfunc.load_model(trained.model_uri).predict(data.drop(columns=["churned"]))
    features = data.drop(columns=["workspace_id", "user_id", "as_of", "churned"])
    np.testing.assert_allclose(scored["churn_probability"], trained.model.predict_proba(features)[:, 1])
    with pytest.raises(ValueError, match="label window"):
        analytics.churn_training_data(events, [END - timedelta(days=10)])


def test_train_model_errors_list_the_valid_choices(analytics):
    df = _daily_series(1, 40)
    with pytest.raises(ValueError, match=r"unknown model type 'lstm_plus'; valid model types: \[.*'ets'.*'churn_xgboost'"):
        train_model("lstm_plus", df, settings=analytics.settings)
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['depth'\] .*valid hyperparameters: \[.*'model'"):
        train_model("ets", df, {"depth": 3}, settings=analytics.settings)
    with pytest.raises(ValueError, match=r"valid hyperparameters: \[.*'max_depth'.*'n_estimators'"):
        train_model("churn_xgboost", df, {"trees": 3}, settings=analytics.settings)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['as_of', 'churned'\]"):
        train_model("churn_logistic", df.rename(columns={"unique_id": "workspace_id", "ds": "user_id"}),
                    settings=analytics.settings)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['folds'\]; valid options"):
        asyncio.run(analytics.train_model("ets", df, folds=3))
    assert {"ets", "theta", "ensemble", "churn_logistic"} <= set(MODEL_TYPES)
    assert "n_estimators" in analytics.model_types()["churn_xgboost"]["hyperparameters"]


def test_the_notebook_class_reads_like_the_api(engine, db_url, tmp_path):
    from services.predictive_analytics import UnknownWorkspaceError

    pa = PredictiveAnalytics(settings=Settings(database_url=db_url, data_dir=tmp_path / "pae"))
    with pytest.raises(UnknownWorkspaceError):  # the engine is made from the settings on first read
        asyncio.run(pa.predict_credit_consumption("no-such-workspace"))
    assert str(pa.engine.url.database) == str(engine.url.database)
