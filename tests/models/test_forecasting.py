"""Forecasting contract: shapes, invariants, fallbacks, calibration, validation and the file command."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.forecasting import (
    ARIMA,
    ETS,
    ConformalForecaster,
    Ensemble,
    Forecaster,
    ForecastInputError,
    GlobalGBM,
    Prophet,
    Robust,
    SeasonalNaive,
    Theta,
    coverage,
    cross_validation,
    evaluate,
    mape,
    mase,
    smape,
    wape,
)
from pipelines.forecast_file import add_forecast_parser, forecast_file

DATA = Path(__file__).parents[1] / "data"
FORECAST_COLS = ["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"]


def make_series(
    n_series: int = 4, n_steps: int = 70, freq: str = "D", seed: int = 0, ragged: bool = True
) -> pd.DataFrame:
    """Seeded seasonal series of different scales; with ``ragged`` they differ in length and end."""
    rng = np.random.default_rng(seed)
    season = 7 if freq == "D" else 24
    frames = []
    for i in range(n_series):
        n = n_steps - (3 * i if ragged else 0)
        end = pd.Timestamp("2025-03-31") - pd.Timedelta(days=i if ragged else 0)
        if freq == "h":
            end += pd.Timedelta(hours=23)
        ds = pd.date_range(end=end, periods=n, freq=freq)
        t = np.arange(n)
        level = 10.0 ** (i % 3 + 1)
        y = level * (1 + 0.4 * np.sin(2 * np.pi * t / season)) * rng.lognormal(0, 0.15, n)
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def small_gbm() -> GlobalGBM:
    return GlobalGBM(n_estimators=40, n_jobs=1)


def small_ensemble() -> Ensemble:
    return Ensemble(members=[SeasonalNaive(), ETS(), small_gbm()], backtest_h=12)


def check_forecast(fcst: pd.DataFrame, df: pd.DataFrame, h: int, freq: str = "D") -> None:
    """The output contract every forecaster must meet."""
    assert list(fcst.columns) == FORECAST_COLS
    assert len(fcst) == df["unique_id"].nunique() * h
    assert not fcst.duplicated(["unique_id", "ds"]).any()
    assert np.isfinite(fcst[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
    assert (fcst["yhat_lower"] <= fcst["yhat"]).all() and (fcst["yhat"] <= fcst["yhat_upper"]).all()
    step = pd.Timedelta(1, unit=freq)
    for uid, g in fcst.groupby("unique_id"):
        last = pd.to_datetime(df.loc[df["unique_id"] == uid, "ds"]).max()
        assert g["ds"].tolist() == list(pd.date_range(last + step, periods=h, freq=freq))
    nonneg_ids = df.groupby("unique_id")["y"].min().ge(0)
    assert (fcst.loc[fcst["unique_id"].map(nonneg_ids), "yhat_lower"] >= 0).all()


# --------------------------------------------------------------------------- members


@pytest.mark.parametrize(
    "model_factory",
    [SeasonalNaive, ETS, ARIMA, Theta, small_gbm, small_ensemble, lambda: Robust(ETS())],
    ids=["snaive", "ets", "arima", "theta", "gbm", "ensemble", "robust-ets"],
)
def test_member_contract_daily(model_factory):
    df = make_series()
    model = model_factory()
    assert isinstance(model, Forecaster)
    check_forecast(model.fit(df, freq="D").predict(h=10, level=80), df, 10)
    assert model.fallbacks == []


@pytest.mark.parametrize(
    "model_factory",
    [SeasonalNaive, ETS, small_gbm, small_ensemble, lambda: Robust(ETS())],
    ids=["snaive", "ets", "gbm", "ensemble", "robust-ets"],
)
def test_member_contract_hourly(model_factory):
    df = make_series(n_series=3, n_steps=24 * 6, freq="h")
    check_forecast(model_factory().fit(df, freq="h").predict(h=36, level=95), df, 36, freq="h")


def test_gbm_long_horizon_and_determinism():
    df = make_series(n_series=5, n_steps=120)
    first = small_gbm().fit(df).predict(h=365)
    check_forecast(first, df, 365)
    pd.testing.assert_frame_equal(first, small_gbm().fit(df).predict(h=365))


@pytest.mark.parametrize("freq,n_steps", [("D", 120), ("h", 24 * 10)])
def test_gbm_feature_importance_names_every_column(freq, n_steps):
    with pytest.raises(RuntimeError, match="fit"):
        small_gbm().feature_importance()
    model = small_gbm().fit(make_series(n_series=4, n_steps=n_steps, freq=freq), freq=freq)
    importance = model.feature_importance()
    width = model._context.shape[1]
    rows, cols = np.zeros(1, dtype=int), np.array([width - 1])
    n_columns = model._features(model._context, rows, cols, model._end_index[:1], freq).shape[1]
    assert len(importance) == n_columns
    assert all(v >= 0 for v in importance.values()) and sum(importance.values()) == pytest.approx(1.0)
    assert max(importance, key=importance.get).startswith(("lag_", "rolling_", "same_season"))


def test_arima_auto_and_prophet_small():
    df = make_series(n_series=2, n_steps=60)
    check_forecast(ARIMA(auto=True).fit(df).predict(7), df, 7)
    prophet = Prophet(uncertainty_samples=100)
    first = prophet.fit(df).predict(7)
    check_forecast(first, df, 7)
    pd.testing.assert_frame_equal(first, prophet.predict(7))


def test_worker_processes_give_the_same_forecast():
    df = make_series(n_series=20, n_steps=40, ragged=False)
    pd.testing.assert_frame_equal(ETS(n_jobs=2).fit(df).predict(7), ETS(n_jobs=1).fit(df).predict(7))


def test_wider_level_gives_wider_interval():
    model = ETS().fit(make_series())
    narrow, wide = model.predict(7, level=80), model.predict(7, level=95)
    assert ((wide.yhat_upper - wide.yhat_lower) >= (narrow.yhat_upper - narrow.yhat_lower) - 1e-9).all()


# --------------------------------------------------------------------------- robustness


def test_short_series_fall_back_and_are_recorded():
    df = pd.concat([make_series(n_series=2), make_series(n_series=1, n_steps=3).assign(unique_id="tiny")])
    model = ETS().fit(df)
    check_forecast(model.predict(5), df, 5)
    [fb] = model.fallbacks
    assert (fb.unique_id, fb.used) == ("tiny", "WindowAverage") and "short history" in fb.reason


def test_member_error_on_one_series_falls_back_to_seasonal_naive(monkeypatch, caplog):
    df = make_series(n_series=3)
    original = ETS._fit_one

    def flaky(self, y, start, freq):
        if y.max() > 500:  # only s2 has level 1000
            raise RuntimeError("boom")
        return original(self, y, start, freq)

    monkeypatch.setattr(ETS, "_fit_one", flaky)
    with caplog.at_level(logging.WARNING):
        model = ETS().fit(df)
    fcst = model.predict(7)
    check_forecast(fcst, df, 7)
    [fb] = model.fallbacks
    assert (fb.unique_id, fb.used) == ("s2", "SeasonalNaive") and "boom" in fb.reason
    assert "boom" in caplog.text and "'s2'" in caplog.text
    expected = SeasonalNaive().fit(df[df.unique_id == "s2"]).predict(7)
    np.testing.assert_allclose(fcst.loc[fcst.unique_id == "s2", "yhat"], expected["yhat"])


def test_global_member_failure_falls_back_for_all(monkeypatch):
    df = make_series(n_series=2)
    monkeypatch.setattr(GlobalGBM, "_fit", lambda self, panel: (_ for _ in ()).throw(MemoryError("no room")))
    model = small_gbm().fit(df)
    check_forecast(model.predict(4), df, 4)
    assert {fb.unique_id for fb in model.fallbacks} == {"s0", "s1"}
    assert all("MemoryError: no room" in fb.reason for fb in model.fallbacks)


def test_all_zero_and_intermittent_series():
    rng = np.random.default_rng(3)
    ds = pd.date_range("2025-01-01", periods=60, freq="D")
    df = pd.concat(
        [
            pd.DataFrame({"unique_id": "zero", "ds": ds, "y": 0.0}),
            pd.DataFrame({"unique_id": "bursty", "ds": ds, "y": rng.poisson(2, 60) * (rng.random(60) < 0.3)}),
        ]
    )
    for model in (SeasonalNaive(), ETS(), ARIMA(), small_gbm()):
        fcst = model.fit(df).predict(14)
        check_forecast(fcst, df, 14)
        zero = fcst[fcst.unique_id == "zero"]
        assert (zero[["yhat", "yhat_lower", "yhat_upper"]] == 0).all().all()


def test_gap_handling_options():
    df = make_series(n_series=1, n_steps=40, ragged=False)
    gappy = df.drop(index=[10, 11, 12]).reset_index(drop=True)
    gappy.loc[20, "y"] = np.nan
    zero = SeasonalNaive(fill="zero").fit(gappy)
    assert zero.panel_.lengths.tolist() == [40]
    assert np.count_nonzero(zero.panel_.y == 0) == 4
    interp = SeasonalNaive(fill="interpolate").fit(gappy)
    assert np.all(interp.panel_.y > 0)
    check_forecast(interp.predict(7), gappy, 7)
    with pytest.raises(ForecastInputError, match="fill='zero'"):
        SeasonalNaive(fill=None).fit(gappy)


def test_timezone_is_kept():
    df = make_series(n_series=2)
    df["ds"] = df["ds"].dt.tz_localize("UTC")
    fcst = ETS().fit(df).predict(3)
    assert str(fcst["ds"].dt.tz) == "UTC"
    assert fcst.groupby("unique_id")["ds"].min().sub(df.groupby("unique_id")["ds"].max()).eq(pd.Timedelta(days=1)).all()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("mutate", "freq", "message"),
    [
        (lambda d: d.drop(columns="ds"), "D", "Column 'ds' is missing. The input needs columns unique_id, ds, y"),
        (
            lambda d: pd.concat([d, d.iloc[[0, 1, 2]]]),
            "D",
            r"Duplicate \(unique_id, ds\) rows: 3 found, e.g. \('s0', 2025-01-21\)\. Aggregate them first",
        ),
        (
            lambda d: d.assign(y=d["y"].astype(object).where(d.index != 5, "n/a")),
            "D",
            "must be numeric.*'n/a'.*pd.to_numeric",
        ),
        (lambda d: d, "W", "freq must be 'D' \\(daily\\) or 'h' \\(hourly\\), got 'W'"),
        (lambda d: d.assign(ds=d["ds"] + pd.Timedelta(hours=6)), "D", "not whole days.*Aggregate to days first"),
        (lambda d: d.assign(ds="yesterday"), "D", "must hold timestamps"),
        (lambda d: d.iloc[0:0], "D", "no rows"),
        (lambda d: d, "h", "looks like daily data; pass freq='D'"),
    ],
    ids=["missing-column", "duplicates", "non-numeric", "bad-freq", "off-grid", "bad-ds", "empty", "daily-as-hourly"],
)
def test_validation_errors_say_what_to_do(mutate, freq, message):
    with pytest.raises(ForecastInputError, match=message):
        SeasonalNaive().fit(mutate(make_series(n_series=2)), freq=freq)


def test_bad_arguments():
    model = SeasonalNaive().fit(make_series(n_series=1))
    with pytest.raises(ForecastInputError, match="positive integer"):
        model.predict(0)
    with pytest.raises(ForecastInputError, match="between 0 and 100"):
        model.predict(3, level=120)
    with pytest.raises(ForecastInputError, match="not fitted"):
        ETS().predict(3)
    with pytest.raises(ForecastInputError, match="alias"):
        cross_validation(make_series(n_series=1), [ETS(), ETS()], h=3)
    with pytest.raises(ForecastInputError, match="country"):
        GlobalGBM(country="Atlantis")


# --------------------------------------------------------------------------- backtests and metrics


def test_metric_helpers():
    y, yhat = np.array([0.0, 2.0, 4.0]), np.array([1.0, 1.0, 4.0])
    assert mape(y, yhat) == pytest.approx(0.25)  # the zero actual is ignored
    assert smape(y, yhat) == pytest.approx((2 + 2 / 3 + 0) / 3)
    assert wape(y, yhat) == pytest.approx(2 / 6)
    assert mase(y, yhat, scale=2.0) == pytest.approx(1 / 3)
    assert coverage(y, yhat - 1, yhat + 0.5) == pytest.approx(2 / 3)


def test_cross_validation_frame_and_evaluate():
    df = make_series(n_series=3, n_steps=60)
    cv = cross_validation(df, [SeasonalNaive(), ETS(alias="ets")], h=5, n_windows=4, step=3, level=[80, 95])
    expected = ["unique_id", "ds", "cutoff", "y", "SeasonalNaive", "SeasonalNaive-lo-80", "SeasonalNaive-hi-80",
                "SeasonalNaive-lo-95", "SeasonalNaive-hi-95", "ets", "ets-lo-80", "ets-hi-80", "ets-lo-95", "ets-hi-95"]
    assert list(cv.columns) == expected
    assert len(cv) == 3 * 4 * 5
    assert (cv["ds"] > cv["cutoff"]).all() and not cv.duplicated(["unique_id", "ds", "cutoff"]).any()
    assert cv.groupby("unique_id")["cutoff"].nunique().eq(4).all()
    merged = cv.merge(df, on=["unique_id", "ds"], suffixes=("", "_true"))
    np.testing.assert_allclose(merged["y"], merged["y_true"])
    per_series, summary = evaluate(cv, df)
    assert set(summary["model"]) == {"SeasonalNaive", "ets"}
    assert len(per_series) == 3 * 2
    assert summary[["mase", "wape", "coverage_80", "coverage_95"]].notna().all().all()


def simulate_ar_seasonal(n_series: int, n_days: int, seed: int) -> pd.DataFrame:
    """AR(1) noise around a weekly profile, levels from 5 to 500."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=n_days, freq="D")
    profile = np.where(ds.dayofweek >= 5, 0.6, 1.1)
    frames = []
    for i in range(n_series):
        noise = np.zeros(n_days)
        eps = rng.normal(0, 0.15, n_days)
        for t in range(1, n_days):
            noise[t] = 0.5 * noise[t - 1] + eps[t]
        level = rng.uniform(5, 500)
        frames.append(pd.DataFrame({"unique_id": f"ar{i}", "ds": ds, "y": level * profile * (1 + noise)}))
    return pd.concat(frames, ignore_index=True)


def test_conformal_coverage_is_close_to_nominal():
    df = simulate_ar_seasonal(n_series=120, n_days=200, seed=11)
    h = 14
    cutoff = df["ds"].max() - pd.Timedelta(days=h)
    train, test = df[df.ds <= cutoff], df[df.ds > cutoff]
    calibrated = ConformalForecaster(small_gbm(), backtest_h=h, n_windows=4).fit(train)
    for level, (low, high) in {95: (0.88, 0.99), 80: (0.72, 0.88)}.items():
        conf = calibrated.predict(h, level).merge(test, on=["unique_id", "ds"])
        assert len(conf) == 120 * h
        assert low <= coverage(conf.y, conf.yhat_lower, conf.yhat_upper) <= high


def test_cumulative_interval_is_calibrated_and_narrower_than_summed_daily_bounds():
    df = simulate_ar_seasonal(n_series=200, n_days=200, seed=12)
    h = 14
    cutoff = df["ds"].max() - pd.Timedelta(days=h)
    train, test = df[df.ds <= cutoff], df[df.ds > cutoff]
    ens = Ensemble(members=[SeasonalNaive(), ETS()], backtest_h=h, n_windows=4).fit(train)
    actual = test.groupby("unique_id")["y"].sum()
    daily = ens.predict(h, 80).groupby("unique_id")[["yhat", "yhat_lower", "yhat_upper"]].sum()
    running = ens.predict_cumulative(h, 80)
    check_forecast(running, train, h)
    assert (running.groupby("unique_id")["yhat"].diff().dropna() >= -1e-9).all()  # totals of non-negative days
    last = running[running["ds"] == running["ds"].max()].set_index("unique_id").loc[actual.index]
    assert np.allclose(last["yhat"], daily.loc[actual.index, "yhat"])
    cov_running = coverage(actual, last["yhat_lower"], last["yhat_upper"])
    cov_summed = coverage(actual, daily.loc[actual.index, "yhat_lower"], daily.loc[actual.index, "yhat_upper"])
    assert 0.70 <= cov_running <= 0.90 and cov_summed > 0.95
    assert ((last["yhat_upper"] - last["yhat_lower"]) < (daily["yhat_upper"] - daily["yhat_lower"]).loc[actual.index]).mean() > 0.9
    longer = ens.predict_cumulative(2 * h, 80)  # beyond the backtest horizon: extrapolated, still widening
    width = (longer["yhat_upper"] - longer["yhat_lower"]).groupby(longer["unique_id"]).diff().dropna()
    assert (width >= -1e-9).all()


def test_cumulative_interval_is_calibrated_per_volume_group():
    """Large smooth series with persistent level errors next to small noisy ones: pooled quantiles for
    totals under-cover the large ones and over-cover the small ones; per-group quantiles do not."""
    def simulate(n, levels, phi, sigma, seed, prefix):
        rng = np.random.default_rng(seed)
        ds = pd.date_range("2024-01-01", periods=200, freq="D")
        profile = np.where(ds.dayofweek >= 5, 0.6, 1.1)
        frames = []
        for i in range(n):
            x, e = np.zeros(200), rng.normal(0, sigma, 200)
            for t in range(1, 200):
                x[t] = phi * x[t - 1] + e[t]
            frames.append(pd.DataFrame({"unique_id": f"{prefix}{i}", "ds": ds,
                                        "y": rng.uniform(*levels) * profile * np.exp(x)}))
        return pd.concat(frames)

    df = pd.concat([simulate(60, (500, 1000), 0.97, 0.04, 1, "big"), simulate(60, (5, 10), 0.0, 0.25, 2, "small")])
    h = 14
    cutoff = df["ds"].max() - pd.Timedelta(days=h)
    train, test = df[df.ds <= cutoff], df[df.ds > cutoff]
    ens = Ensemble(members=[SeasonalNaive(), ETS()], backtest_h=h, n_windows=4, n_buckets=2).fit(train)
    assert len(ens.cumulative_group_calibrators_) == 2
    actual = test.groupby("unique_id")["y"].sum()
    big = actual.index.str.startswith("big")

    def coverage_by_group():
        fc = ens.predict_cumulative(h, 80)
        last = fc[fc["ds"] == fc["ds"].max()].set_index("unique_id").loc[actual.index]
        inside = (actual >= last["yhat_lower"]) & (actual <= last["yhat_upper"])
        return inside[big].mean(), inside[~big].mean()

    grouped = coverage_by_group()
    ens.cumulative_group_calibrators_ = {}
    pooled = coverage_by_group()
    assert all(0.65 <= c <= 0.95 for c in grouped)
    assert pooled[0] < grouped[0] - 0.1 and pooled[1] > grouped[1] + 0.1


def test_ensemble_is_no_worse_than_its_best_member():
    df = pd.concat([simulate_ar_seasonal(30, 160, seed=5), make_series(n_series=6, n_steps=150, seed=2)])
    members = [SeasonalNaive(), ETS(), ARIMA(), small_gbm()]
    ens = Ensemble(members=members, backtest_h=14, n_windows=4, min_group_size=10)
    fcst = ens.fit(df).predict(21, 90)
    check_forecast(fcst, df, 21)
    _, summary = evaluate(ens.backtest_, df)
    mase_by_model = summary.set_index("model")["mase"]
    assert mase_by_model["Ensemble"] <= mase_by_model.drop("Ensemble").min() + 1e-12
    weights = ens.weights_
    assert len(weights) == 36 and np.allclose(weights[["SeasonalNaive", "ETS", "ARIMA", "GlobalGBM"]].sum(axis=1), 1)


def test_ensemble_can_choose_equal_weights_over_close_members():
    rng = np.random.default_rng(0)
    y = np.full(600, 10.0)
    preds = np.column_stack([y + rng.normal(0, 3, 600)] + [y + rng.normal(0, 1, 600) for _ in range(3)])
    weights, label = Ensemble._choose(preds, y, np.ones(600), np.repeat(np.arange(20), 30), ["naive", "a", "b", "c"])
    assert label.startswith("equal, 3 members") and np.allclose(weights, [0, 1 / 3, 1 / 3, 1 / 3])
    preds[:, 2:] += 5  # now only one good member: no equal candidate, the best one alone
    weights, label = Ensemble._choose(preds, y, np.ones(600), np.repeat(np.arange(20), 30), ["naive", "a", "b", "c"])
    assert label == "best: a" and np.allclose(weights, [0, 1, 0, 0])


def test_shared_backtest_windows_reuse_forecasts_without_changing_them(monkeypatch):
    from models.forecasting.evaluation import shared_backtest_windows

    df = make_series(n_series=5, n_steps=120, seed=4, ragged=False)
    holdout_train = df[df["ds"] <= df["ds"].max() - pd.Timedelta(days=10)]

    def ensemble() -> Ensemble:
        return Ensemble(members=[SeasonalNaive(), ETS(), small_gbm()], backtest_h=10, n_windows=3, refit=True)

    fits = []
    original = ETS._fit
    monkeypatch.setattr(ETS, "_fit", lambda self, panel: (fits.append(panel.n_series), original(self, panel))[1])
    alone = ensemble().fit(df)
    n_alone = len(fits)
    fits.clear()
    with shared_backtest_windows() as cache:
        ensemble().fit(holdout_train)
        n_first = len(fits)
        shared = ensemble().fit(df)
    assert len(cache) == 4 * 3  # the first backtest's 3 windows and 1 new one, for each of 3 members
    assert len(fits) - n_first == n_alone - 2  # two of the three windows came from the first backtest
    pd.testing.assert_frame_equal(shared.backtest_, alone.backtest_)
    pd.testing.assert_frame_equal(shared.predict(7, 80), alone.predict(7, 80))


def test_ensemble_on_short_and_mixed_history():
    df = pd.concat(
        [
            make_series(n_series=2, n_steps=80),
            make_series(n_series=1, n_steps=20).assign(unique_id="young"),
            make_series(n_series=1, n_steps=6).assign(unique_id="new"),
        ]
    )
    ens = Ensemble(members=[SeasonalNaive(), ETS(), small_gbm()], backtest_h=7)
    check_forecast(ens.fit(df).predict(10), df, 10)
    groups = ens.weights_.set_index("unique_id")["group"]
    assert (groups["young"], groups["new"]) == ("rest", "global")  # partial backtest; none at all
    assert any(fb.unique_id == "new" and fb.used == "global weights" for fb in ens.fallbacks)
    tiny = make_series(n_series=2, n_steps=9, ragged=False)
    check_forecast(Ensemble(members=[SeasonalNaive(), ETS()]).fit(tiny).predict(5), tiny, 5)


@pytest.mark.slow
def test_default_ensemble_with_prophet(tmp_path):
    df = make_series(n_series=3, n_steps=120)
    ens = Ensemble(include_prophet=True, backtest_h=14)
    check_forecast(ens.fit(df).predict(14), df, 14)
    assert "Prophet" in ens.weights_.columns
    src = DATA / "forecast_series.csv"
    check_forecast(forecast_file(src, tmp_path / "f.csv", horizon=30), pd.read_csv(src, parse_dates=["ds"]), 30)


# --------------------------------------------------------------------------- pae forecast


def test_forecast_file_round_trip(tmp_path):
    src = DATA / "forecast_series.csv"
    out = tmp_path / "out" / "forecast.csv"
    fcst = forecast_file(src, out, horizon=14, freq="D", level=80, model="ets")
    written = pd.read_csv(out, parse_dates=["ds"])
    pd.testing.assert_frame_equal(written, fcst, check_dtype=False)
    check_forecast(written, pd.read_csv(src, parse_dates=["ds"]), 14)
    parquet = forecast_file(src, tmp_path / "f.parquet", horizon=7, model="seasonal_naive")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "f.parquet"), parquet)


def test_forecast_command_exit_codes(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="pae")
    add_forecast_parser(parser.add_subparsers(dest="command"))
    src, out = str(DATA / "forecast_series.csv"), str(tmp_path / "f.csv")
    args = parser.parse_args(["forecast", "--input", src, "--horizon", "7", "--output", out, "--model", "seasonal_naive"])
    assert args.func(args) == 0
    assert "21 rows" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    pd.read_csv(DATA / "forecast_series.csv").rename(columns={"y": "credits"}).to_csv(bad, index=False)
    args = parser.parse_args(["forecast", "--input", str(bad), "--horizon", "7", "--output", str(tmp_path / "g.csv")])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Column 'y' is missing") and "\n" not in err
    args = parser.parse_args(["forecast", "--input", str(bad), "--horizon", "7", "--output", str(tmp_path / "g.csv"),
                              "--model", "lstm"])
    assert args.func(args) == 2
    assert "choose one of seasonal_naive, ets" in capsys.readouterr().err


# --------------------------------------------------------------------------- robust wrapper


def weekly_series(uid: str, days: int = 728, end: str = "2025-11-20", level: float = 100.0, seed: int = 0,
                  holiday_country: str | None = None, holiday_ratio: float = 0.3) -> pd.DataFrame:
    """A weekday-heavy daily series; weekday holidays of ``holiday_country`` drop to ``holiday_ratio``."""
    import holidays

    rng = np.random.default_rng(seed)
    ds = pd.date_range(end=end, periods=days, freq="D")
    y = level * np.where(ds.dayofweek < 5, 1.0, 0.3) * rng.lognormal(0, 0.05, days)
    if holiday_country:
        hol = holidays.country_holidays(holiday_country, years=range(ds.year.min(), ds.year.max() + 2))
        on = np.array([d.date() in hol for d in ds]) & (ds.dayofweek < 5)
        y = np.where(on, y * holiday_ratio, y)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": y})


def test_robust_ignores_a_one_off_spike():
    clean = weekly_series("a")
    spiked = clean.copy()
    spiked.loc[spiked.index[-10], "y"] *= 8  # a batch job worth a week of credits, ten days ago
    plain = ETS().fit(spiked).predict(h=14, level=80)
    robust = Robust(ETS())
    fc = robust.fit(spiked).predict(h=14, level=80)
    reference = ETS().fit(clean).predict(h=14, level=80)
    assert robust.n_cleaned_ >= 1
    err_plain = np.abs(plain["yhat"] - reference["yhat"]).mean()
    err_robust = np.abs(fc["yhat"] - reference["yhat"]).mean()
    assert err_robust < 0.25 * err_plain


def test_robust_keeps_a_recent_change_of_level():
    df = weekly_series("a")
    df.loc[df.index[-10:], "y"] *= 2  # the workspace doubled its usage ten days ago
    plain = ETS().fit(df).predict(h=7, level=80)["yhat"].to_numpy()
    robust = Robust(ETS()).fit(df).predict(h=7, level=80)["yhat"].to_numpy()
    assert np.abs(robust - plain).max() < 0.05 * plain.max()


def test_robust_infers_holiday_calendars_and_applies_them():
    df = pd.concat([weekly_series("us", seed=1, holiday_country="US"),
                    weekly_series("jp", seed=2, holiday_country="JP", holiday_ratio=0.5),
                    weekly_series("none", seed=3)])
    model = Robust(ETS()).fit(df)
    cal = model.calendar_frame().set_index("unique_id")
    assert cal.loc["us", "holiday_country"] == "US" and cal.loc["us", "holiday_ratio"] == pytest.approx(0.3, abs=0.05)
    assert cal.loc["jp", "holiday_country"] == "JP" and cal.loc["jp", "holiday_ratio"] == pytest.approx(0.5, abs=0.05)
    assert cal.loc["none", "holiday_country"] is None
    fc = model.predict(h=10, level=95).set_index(["unique_id", "ds"])["yhat"]
    thanksgiving, day_before = pd.Timestamp("2025-11-27"), pd.Timestamp("2025-11-26")
    assert fc[("us", thanksgiving)] == pytest.approx(0.3 * fc[("us", day_before)], rel=0.15)
    assert fc[("none", thanksgiving)] == pytest.approx(fc[("none", day_before)], rel=0.15)
    assert fc[("jp", pd.Timestamp("2025-11-24"))] == pytest.approx(0.5 * fc[("jp", day_before)], rel=0.15)  # observed


def test_robust_known_calendars_override_inference_and_hourly_passes_through():
    df = weekly_series("us", holiday_country="US")
    model = Robust(ETS(), calendars={"us": None}).fit(df)
    assert model.calendar_frame()["holiday_country"].isna().all()
    assert (model.holiday_factors(30) == 1).all()
    hourly = make_series(n_series=2, n_steps=24 * 6, freq="h")
    check_forecast(Robust(ETS()).fit(hourly, freq="h").predict(h=24, level=80), hourly, 24, freq="h")
    with pytest.raises(ForecastInputError, match="Unknown holiday country"):
        Robust(ETS(), countries=["XX"])


def test_robust_is_cloned_and_used_by_the_default_ensemble():
    model = Ensemble(n_jobs=1, backtest_h=7, n_windows=2)
    members = model._new_members()
    assert [type(m).__name__ for m in members] == ["SeasonalNaive"] + ["Robust"] * 6
    assert [m.name for m in members] == ["SeasonalNaive", "ETS", "ARIMA", "Theta", "GlobalGBM", "MSTL", "DampedETS"]
    clone = members[1].clone()
    assert isinstance(clone.model, ETS) and clone.model is not members[1].model
    plain = Ensemble(robust=False)._new_members()
    assert [type(m).__name__ for m in plain] == ["SeasonalNaive", "ETS", "ARIMA", "Theta", "GlobalGBM", "MSTL", "DampedETS"]
