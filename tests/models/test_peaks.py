"""Peak-usage models: time-zone inference, the local clock across daylight saving, the forecaster's contract,
sample paths and daily peaks, and the bad inputs of issue 11 (short history, night-only batch, missing hours)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.peaks import PeakForecaster, daily_peaks, infer_time_zones, peak_table
from models.peaks.clock import missing_steps, to_local, utc_steps
from models.peaks.timezones import HUMAN_DAY

# office hours with a clear peak at 11:00 local
OFFICE = np.array([1, 1, 1, 1, 1, 1, 2, 5, 20, 40, 60, 80, 50, 45, 50, 40, 30, 15, 6, 4, 3, 2, 1, 1], float)


def utc_series(zone: str, start: str, weeks: int, seed: int = 0, profile: np.ndarray = OFFICE,
               weekend: float = 0.3) -> pd.DataFrame:
    """Hourly calls in UTC of people in ``zone`` following ``profile`` on their local clock."""
    rng = np.random.default_rng(seed)
    utc = pd.date_range(start, periods=weeks * 168, freq="h", tz="UTC")
    local = utc.tz_convert(zone)
    lam = profile[local.hour] * np.where(local.dayofweek >= 5, weekend, 1.0)
    return pd.DataFrame({"unique_id": zone, "ds": utc.tz_localize(None), "y": rng.poisson(lam).astype(float)})


def test_time_zone_inferred_with_its_daylight_saving_rules():
    frames = [utc_series(z, "2025-01-06", 26, seed=i) for i, z in enumerate(
        ["America/New_York", "Europe/Paris", "Asia/Tokyo", "Australia/Sydney"])]
    hourly = np.stack([f["y"].to_numpy() for f in frames])
    got = [z.time_zone for z in infer_time_zones(hourly, pd.Timestamp("2025-01-06"))]
    assert got[0] == "America/New_York" and got[1] == "Europe/Paris"  # spans March: DST told apart
    assert got[2] == "Asia/Tokyo"
    assert got[3] in ("Australia/Sydney", "Australia/Brisbane")  # +10; April change told apart below
    assert got[3] == "Australia/Sydney"


def test_fixed_offset_without_dst_is_not_taken_for_a_dst_zone():
    rng = np.random.default_rng(1)
    utc = pd.date_range("2025-01-06", periods=26 * 168, freq="h")
    lam = OFFICE[(utc.hour - 8) % 24]  # UTC-08:00 all year (no DST)
    got = infer_time_zones(rng.poisson(lam)[None, :].astype(float), utc[0])[0]
    assert got.time_zone == "Etc/GMT+8" and got.source == "inferred"


def test_no_human_rhythm_or_too_little_history_keeps_utc():
    utc = pd.date_range("2025-01-06", periods=8 * 168, freq="h")
    batch = np.where(np.isin(utc.hour, [2, 3]), 500.0, 0.0)  # a night-only batch job
    tiny = np.zeros(len(utc))
    tiny[::97] = 1.0
    short = np.ones((1, 100))
    out = infer_time_zones(np.stack([batch, tiny]), utc[0])
    assert [z.time_zone for z in out] == ["UTC", "UTC"]
    assert "rhythm" in out[0].source and "calls" in out[1].source
    assert infer_time_zones(short, utc[0])[0].source.startswith("default: less than a week")
    assert len(HUMAN_DAY) == 24


def test_local_clock_keeps_the_peak_hour_across_daylight_saving():
    """A New York office peaks at 11:00 local all year; on the UTC clock the peak moves from 16:00 to 15:00 at
    the March change. Forecasting on the local clock from just after the change keeps 11:00 local."""
    df = utc_series("America/New_York", "2025-01-06", 10)  # to 2025-03-17: the change was 2025-03-09
    cut = df[df["ds"] < pd.Timestamp("2025-03-11")]  # two days after the change: last week is mostly winter
    local = to_local(cut, {"America/New_York": "America/New_York"}, ["y"])
    assert local.groupby("unique_id")["ds"].diff().dropna().eq(pd.Timedelta(hours=1)).all()  # regular wall clock
    model = PeakForecaster(n_paths=100).fit(local)
    peaks = daily_peaks(model.ids_, model.ends_, model.hist_[:, -24:], model.point_forecast(72),
                        model.sample_paths(72), (pd.Timestamp(model.ends_[0]) + pd.Timedelta(hours=1)).date(), 2)
    assert set(peaks["peak_hour"]) == {11}
    # in UTC: 11:00 EDT is 15:00 UTC (a UTC-clock weekly naive would say 16:00 for the days after the change)
    steps = utc_steps("America/New_York", model.ends_[0], np.array(["2025-03-11T15"], dtype="datetime64[h]"))
    assert (pd.Timestamp(model.ends_[0]) + pd.Timedelta(hours=int(steps[0]))).hour == 11


def test_skipped_and_repeated_hours():
    gone = missing_steps("Europe/Paris", np.datetime64("2025-03-30T00", "h"), 4)
    assert gone.tolist() == [False, True, False, False]  # 02:00 does not exist on 30 March
    assert not missing_steps("Europe/Paris", np.datetime64("2025-10-26T00", "h"), 4).any()  # 02:00 twice: exists
    utc = np.array(["2025-10-26T00", "2025-10-26T01"], dtype="datetime64[h]")  # both are 02:xx in Paris
    assert utc_steps("Europe/Paris", np.datetime64("2025-10-26T01", "h"), utc).tolist() == [1, 1]


def test_forecaster_contract_and_determinism():
    df = pd.concat([utc_series("UTC", "2025-01-06", 6, seed=s).assign(unique_id=f"s{s}") for s in range(3)])
    fc = PeakForecaster(n_paths=80).fit(df).predict(h=168, level=95)
    assert len(fc) == 3 * 168 and not fc.duplicated(["unique_id", "ds"]).any()
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert (fc["yhat_lower"] >= 0).all()
    again = PeakForecaster(n_paths=80).fit(df.sample(frac=1, random_state=3)).predict(h=168, level=95)
    pd.testing.assert_frame_equal(fc, again)  # seeded, order-independent


def test_short_history_falls_back_to_the_daily_profile_and_says_so():
    df = utc_series("UTC", "2025-01-06", 1)  # one week
    model = PeakForecaster(n_paths=50).fit(df)
    assert model.short_.all() and "daily-profile" in model.fallbacks[0].reason
    out = peak_table(df, horizon_days=3, level=95, n_paths=50)
    assert len(out) == 3 and set(out["peak_hour"]) <= {10, 11, 12}


def test_missing_hours_are_zeros_and_night_batch_gets_its_peak():
    utc = pd.date_range("2025-01-06", periods=4 * 168, freq="h")
    batch = pd.DataFrame({"unique_id": "batch", "ds": utc, "y": np.where(utc.hour == 3, 900.0, 0.0)})
    sparse = batch[batch["y"] > 0]  # only the busy hours given: the others are zeros, not gaps
    out = peak_table(sparse, horizon_days=7, level=95, n_paths=50)
    assert len(out) == 7 and (out["peak_hour"] == 3).all()
    assert np.allclose(out["peak_value"], 900.0) and (out["capacity"] >= 900.0).all()


def test_daily_peaks_probabilities_and_intervals():
    df = pd.concat([utc_series("UTC", "2025-01-06", 6, seed=s).assign(unique_id=f"s{s}") for s in range(2)])
    out = peak_table(df, horizon_days=7, level=80, n_paths=100)
    assert list(out.columns) == ["unique_id", "date", "peak_hour", "peak_value", "peak_lower", "peak_upper",
                                 "capacity"]
    assert len(out) == 14 and out["peak_hour"].between(0, 23).all()
    assert (out["peak_lower"] <= out["peak_value"]).all() and (out["peak_value"] <= out["peak_upper"]).all()
    assert (out["capacity"] == out["peak_upper"]).all()
    model = PeakForecaster(n_paths=100).fit(df)
    pk = daily_peaks(model.ids_, model.ends_, model.hist_[:, -24:], model.point_forecast(168),
                     model.sample_paths(168), pd.Timestamp("2025-02-17").date(), 7)
    assert pk["top_probs"].map(sum).le(1.0 + 1e-9).all() and pk["top_hours"].map(len).between(1, 3).all()
    assert (pk["peak_hour"] == pk["top_hours"].str[0]).all()


@pytest.mark.parametrize("bad", [pd.DataFrame({"unique_id": [1], "y": [1.0]})])
def test_bad_frames_say_what_to_do(bad):
    with pytest.raises(ValueError, match="unique_id, ds, y"):
        PeakForecaster().fit(bad)
