"""GlobalLSTM (models/forecasting/lstm.py): tiny panels, a few seconds each."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecasting import Ensemble, ForecastInputError, GlobalLSTM, Robust, SeasonalNaive, default_members

SMALL = {"hidden_size": 16, "max_windows": 400, "max_epochs": 3, "horizon": 14, "validation_steps": 14}


def seasonal_panel(n: int = 6, days: int = 200, noise: float = 0.15, seed: int = 0) -> pd.DataFrame:
    """Weekly-seasonal series of different levels with multiplicative noise."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2025-01-01", periods=days, freq="D")
    frames = []
    for i in range(n):
        profile = 1 + 0.6 * np.sin(2 * np.pi * (np.arange(7) + i) / 7)
        y = rng.uniform(10, 1000) * profile[np.arange(days) % 7] * (1 + noise * rng.standard_normal(days))
        frames.append(pd.DataFrame({"unique_id": f"ws{i}", "ds": ds, "y": np.maximum(y, 0)}))
    return pd.concat(frames, ignore_index=True)


def test_shapes_bounds_and_long_horizons():
    df = seasonal_panel()
    model = GlobalLSTM(**SMALL).fit(df, freq="D")
    assert model.fallbacks == []
    assert model.n_windows_["train"] == 400 and model.n_windows_["validation"] > 0
    assert 1 <= model.epochs_ <= 3 and len(model.validation_loss_) == model.epochs_
    for h in (10, 45):  # 45 > horizon 14: forecast block by block
        fc = model.predict(h=h, level=80)
        assert list(fc.columns) == ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]
        assert len(fc) == 6 * h and not fc.duplicated(["unique_id", "ds"]).any()
        assert np.isfinite(fc[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
        assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
        assert (fc["yhat_lower"] >= 0).all()
        assert fc.groupby("unique_id")["ds"].min().eq(pd.Timestamp("2025-07-20")).all()
    mean, bands = model.predict_arrays(14, [80, 95])
    assert (bands[95][1] - bands[95][0] >= bands[80][1] - bands[80][0] - 1e-9).all()


def test_two_fits_give_the_same_forecast():
    df = seasonal_panel(seed=3)
    first = GlobalLSTM(**SMALL, seed=5).fit(df).predict(h=20)
    second = GlobalLSTM(**SMALL, seed=5).fit(df).predict(h=20)
    pd.testing.assert_frame_equal(first, second)
    other = GlobalLSTM(**SMALL, seed=6).fit(df).predict(h=20)
    assert not np.allclose(first["yhat"], other["yhat"])


def test_beats_seasonal_naive_on_a_clean_seasonal_panel():
    df = seasonal_panel(n=12, days=300, noise=0.25, seed=1)
    cutoff = df["ds"].max() - pd.Timedelta(days=28)
    train, actual = df[df["ds"] <= cutoff], df[df["ds"] > cutoff]
    lstm = GlobalLSTM(hidden_size=32, max_windows=2000, max_epochs=8, horizon=28, seed=0).fit(train)
    errors = {}
    for name, model in (("lstm", lstm), ("naive", SeasonalNaive().fit(train))):
        j = actual.merge(model.predict(h=28), on=["unique_id", "ds"])
        errors[name] = ((j["y"] - j["yhat"]).abs().groupby(j["unique_id"]).sum() / j.groupby("unique_id")["y"].sum())
    # seasonal naive repeats last week's noise; the LSTM averages it out on most series
    assert errors["lstm"].median() < 0.85 * errors["naive"].median()
    assert (errors["lstm"] < errors["naive"]).mean() >= 0.75


def test_inside_the_ensemble_only_through_the_backtest():
    df = seasonal_panel(n=8, days=240, seed=2)
    names = [m.name for m in default_members(include_lstm=True, lstm_params=SMALL)]
    assert names[-1] == "LSTM" and isinstance(default_members(include_lstm=True)[-1], Robust)
    assert "LSTM" not in [m.name for m in default_members()]
    ens = Ensemble(include_lstm=True, lstm_params=SMALL, n_windows=2, backtest_h=14, robust=False).fit(df)
    assert "LSTM" in ens.backtest_.columns and "LSTM" in ens.weights_.columns
    assert np.allclose(ens.weights_.drop(columns=["unique_id", "group", "choice"]).sum(axis=1), 1.0)
    fc = ens.predict(h=14)
    assert len(fc) == 8 * 14 and (fc["yhat_lower"] <= fc["yhat_upper"]).all()
    clone = ens.clone()
    assert clone.include_lstm and clone.lstm_params == SMALL


def test_consumption_setting_adds_the_lstm():
    from core.settings import Settings
    from pipelines.consumption.forecast import ensemble_params

    assert ensemble_params(Settings())["include_lstm"] is False
    params = ensemble_params(Settings(forecast_include_lstm=True, forecast_lstm_max_windows=500,
                                      forecast_lstm_max_epochs=2))
    assert params["include_lstm"] is True
    assert params["lstm_params"]["max_windows"] == 500 and params["lstm_params"]["max_epochs"] == 2


def test_too_short_history_falls_back_with_the_reason():
    df = seasonal_panel(n=3, days=40)
    model = GlobalLSTM(**SMALL).fit(df)
    assert {fb.used for fb in model.fallbacks} == {"SeasonalNaive"} and len(model.fallbacks) == 3
    assert "GlobalLSTM needs a series with at least 56 points" in model.fallbacks[0].reason
    naive = SeasonalNaive().fit(df).predict(h=7)
    pd.testing.assert_frame_equal(model.predict(h=7), naive)


@pytest.mark.parametrize("bad", [{"horizon": 0}, {"context_seasons": 2}, {"max_windows": 0},
                                 {"learning_rate": 0.0}, {"max_epochs": 1.5}])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(ForecastInputError, match="GlobalLSTM"):
        GlobalLSTM(**bad)
