"""The MSTL and damped-trend members, the conformal quantiles' monotone fit, and `pae forecast`'s builder."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from models.forecasting import (
    ETS,
    MSTL,
    ConformalCalibrator,
    DampedETS,
    Ensemble,
    ForecastInputError,
    Robust,
    SeasonalNaive,
    default_members,
)
from models.forecasting.ensemble import isotonic_increasing
from models.forecasting.members import mstl_decompose
from pipelines.forecast_file import build_forecaster
from tests.models.test_forecasting import check_forecast, make_series


def yearly_series(n_series: int = 3, n_days: int = 800, seed: int = 0) -> pd.DataFrame:
    """Daily series with a weekly and a yearly season, levels 50 to 500."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(end="2025-06-30", periods=n_days, freq="D")
    frames = []
    for i in range(n_series):
        level = 50.0 * (1 + 4.5 * i / max(n_series - 1, 1))
        y = level * (1 + 0.3 * np.sin(2 * np.pi * ds.dayofyear / 365.25)) \
            * np.where(ds.dayofweek >= 5, 0.7, 1.1) * rng.lognormal(0, 0.05, n_days)
        frames.append(pd.DataFrame({"unique_id": f"y{i}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def holdout_mae(model, df: pd.DataFrame, h: int) -> float:
    cutoff = df["ds"].max() - pd.Timedelta(days=h)
    train, test = df[df.ds <= cutoff], df[df.ds > cutoff]
    fc = model.fit(train).predict(h, 80).merge(test, on=["unique_id", "ds"])
    return float((fc["y"] - fc["yhat"]).abs().mean())


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize(
    "factory", [MSTL, DampedETS, lambda: Robust(MSTL(), history_days=1092)], ids=["mstl", "damped-ets", "robust-mstl"]
)
def test_new_members_follow_the_contract(factory):
    daily = make_series(n_series=4, n_steps=120)
    model = factory()
    check_forecast(model.fit(daily, freq="D").predict(h=30, level=95), daily, 30)
    assert model.fallbacks == []
    hourly = make_series(n_series=3, n_steps=24 * 16, freq="h")
    check_forecast(factory().fit(hourly, freq="h").predict(h=48, level=80), hourly, 48, freq="h")


def test_mstl_uses_the_yearly_season_only_with_two_years(caplog):
    df = pd.concat([yearly_series(n_series=1, n_days=800), yearly_series(n_series=1, n_days=400).assign(unique_id="young"),
                    make_series(n_series=1, n_steps=10).assign(unique_id="new")])
    with caplog.at_level(logging.INFO, logger="models.forecasting.members"):
        model = MSTL().fit(df)
    check_forecast(model.predict(60, 95), df, 60)
    assert model.seasons_ == {"y0": (7, 365), "young": (7,)}
    assert "1 of 2 series have less than two cycles of season 365" in caplog.text
    [fb] = model.fallbacks  # too short even for the weekly season: the window average, as for every member
    assert (fb.unique_id, fb.used) == ("new", "WindowAverage")
    hourly = make_series(n_series=2, n_steps=24 * 10, freq="h")  # under two weeks: daily season only
    assert set(MSTL().fit(hourly, freq="h").seasons_.values()) == {(24,)}


def test_mstl_refits_when_forwarded_history_allows_the_yearly_season():
    df = yearly_series(n_series=2, n_days=760)
    early = df[df["ds"] <= df["ds"].min() + pd.Timedelta(days=700)]
    model = MSTL().fit(early)
    assert set(model.seasons_.values()) == {(7,)}
    model._fit_panel(model.panel_.__class__.from_frame(df, "D"), forward=True)
    assert set(model.seasons_.values()) == {(7, 365)}
    check_forecast(model.predict(14, 80), df, 14)


def test_mstl_decomposition_matches_statsforecast():
    from statsforecast.mstl import mstl

    y = yearly_series(n_series=1, n_days=760)["y"].to_numpy()
    ref = mstl(y, [7, 365])
    seas, deseas = mstl_decompose(y, (7, 365), jumps=False)
    np.testing.assert_allclose(seas[0], ref["seasonal7"], atol=1e-9)
    np.testing.assert_allclose(seas[1], ref["seasonal365"], atol=1e-9)
    np.testing.assert_allclose(deseas, ref["trend"] + ref["remainder"], atol=1e-9)
    fast_seas, fast_deseas = mstl_decompose(y, (7, 365))  # R's interpolation steps: close to the exact one
    assert np.abs(fast_deseas + fast_seas.sum(axis=0) - y).max() < 1e-6
    assert np.abs(fast_seas[1] - ref["seasonal365"]).max() < 0.1 * y.std()


def test_mstl_beats_weekly_ets_on_a_yearly_season():
    df = yearly_series(n_series=3, n_days=900, seed=2)
    assert holdout_mae(MSTL(), df, 60) < 0.7 * holdout_mae(ETS(), df, 60)


def test_damped_ets_follows_a_trend_that_plain_ets_misses():
    rng = np.random.default_rng(3)
    ds = pd.date_range(end="2025-06-30", periods=300, freq="D")
    df = pd.concat([pd.DataFrame({"unique_id": f"g{i}", "ds": ds, "y": 100 + slope * np.arange(300)
                                  + 10 * np.where(ds.dayofweek >= 5, -1, 0.4) + rng.normal(0, 3, 300)})
                    for i, slope in enumerate([0.5, 1.0, 2.0])])  # growing level, weekly season
    assert holdout_mae(DampedETS(), df, 21) < 0.5 * holdout_mae(ETS(), df, 21)
    with pytest.raises(ForecastInputError, match="needs a trend"):
        DampedETS(model="ANA")
    with pytest.raises(ForecastInputError, match="without season"):
        MSTL(trend_model="ZZA")


def test_default_members_include_mstl_and_damped_ets_wrapped_in_robust():
    members = default_members()
    assert [m.name for m in members] == ["SeasonalNaive", "ETS", "ARIMA", "Theta", "GlobalGBM", "MSTL", "DampedETS"]
    assert all(isinstance(m, Robust) for m in members[1:])
    mstl = members[5]
    assert isinstance(mstl.model, MSTL) and mstl.history_days == 7 * mstl.model.max_history  # cleans all it sees
    assert isinstance(members[6].model, DampedETS) and members[6].history_days == 728
    plain = default_members(robust=False)
    assert [type(m).__name__ for m in plain][5:] == ["MSTL", "DampedETS"]


def test_ensemble_with_the_new_members_on_short_and_long_series():
    df = pd.concat([yearly_series(n_series=2, n_days=760, seed=4), make_series(n_series=2, n_steps=90)])
    ens = Ensemble(members=[SeasonalNaive(), ETS(), MSTL(), DampedETS()], backtest_h=14, n_windows=3)
    check_forecast(ens.fit(df).predict(30, 95), df, 30)
    assert np.allclose(ens.weights_[["SeasonalNaive", "ETS", "MSTL", "DampedETS"]].sum(axis=1), 1)


# --------------------------------------------------------------------------- conformal quantiles


def test_isotonic_increasing():
    np.testing.assert_allclose(isotonic_increasing(np.array([1, 3, 2, 4.0]), np.ones(4)), [1, 2.5, 2.5, 4])
    np.testing.assert_allclose(isotonic_increasing(np.array([3, 1.0]), np.array([3, 1.0])), [2.5, 2.5])
    np.testing.assert_allclose(isotonic_increasing(np.array([1, 2, 5.0]), np.ones(3)), [1, 2, 5])
    assert isotonic_increasing(np.array([]), np.array([])).size == 0


def test_conformal_quantiles_do_not_follow_the_upper_envelope_of_noise():
    """Scores of the same distribution at every step: the quantile stays near the pooled one, where a
    running maximum over 30 noisy per-step quantiles would sit well above it."""
    rng = np.random.default_rng(0)
    h, per_step = 30, 60
    errors = rng.standard_normal(h * per_step)
    steps = np.repeat(np.arange(h), per_step)
    cal = ConformalCalibrator(errors, steps, np.ones_like(errors), h)
    q = cal.quantiles(95, h)
    pooled = np.quantile(np.abs(errors), 0.95)
    running_max = np.max([np.quantile(np.abs(errors[steps == k]), 0.95) for k in range(h)])
    assert np.all(np.diff(q) >= -1e-12)
    assert abs(q.mean() - pooled) < 0.1 * pooled < running_max - pooled
    growing = ConformalCalibrator(errors * (1 + steps / 10), steps, np.ones_like(errors), h).quantiles(80, h)
    assert growing[-1] > 2.5 * growing[0]  # a real widening with the horizon is kept


def test_pae_forecast_ensemble_backtests_on_the_requested_horizon():
    ens = build_forecaster("ensemble", n_series=3, horizon=168, n_jobs=1)
    assert isinstance(ens, Ensemble) and ens.backtest_h == 168 and ens.include_prophet
    assert build_forecaster("ensemble", n_series=500, horizon=30).include_prophet is False
    assert isinstance(build_forecaster("mstl", 1, 7), MSTL) and isinstance(build_forecaster("damped_ets", 1, 7), DampedETS)
