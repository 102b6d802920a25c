"""Hourly members of the peak-usage ensemble, over right-aligned history matrices.

Every member maps ``(hist, ends, h)`` to an (n_series, h) point forecast: ``hist`` is (n_series, width)
hourly values on each series' own clock (the workspace's local time in the pipeline), right-aligned so
that column ``-1`` is every series' last hour, NaN before a series' first hour; ``ends`` the timestamp of
each series' last hour; ``h`` the steps ahead.

* :class:`WeeklyNaive`: the same hour one week earlier (the weekly seasonal naive, strong on real hourly
  data);
* :class:`WeeklyProfile`: the mean of the same hour of the week over the last ``weeks`` weeks (smoother
  than one week, slower to follow a change);
* :class:`LevelProfile`: last week's level times the 4-week hour-of-week shape (a fast decomposition);
* :class:`DailyProfile`: the mean of the same hour of the day over the last ``days`` days, no weekly
  shape: the fallback for series with less than two weeks of history;
* :class:`StatsMSTL`: MSTL with seasons 24 and 168 (``models.forecasting.MSTL``, statsforecast), per series;
* :class:`HourlyGBM`: the global gradient-boosted model (``models.forecasting.GlobalGBM``) with hour-of-day
  and day-of-week features, one model for all series.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

WEEK, DAY = 168, 24


def _season_lookup(hist: np.ndarray, h: int, period: int, back: int) -> np.ndarray:
    """Values ``back`` periods before each forecast step's same phase: (n, h)."""
    width = hist.shape[1]
    k = np.arange(h)
    cols = width - back * period + (k % period)
    out = np.full((hist.shape[0], h), np.nan)
    ok = cols >= 0
    out[:, ok] = hist[:, cols[ok]]
    return out


class WeeklyNaive:
    name = "WeeklyNaive"

    def forecast(self, hist: np.ndarray, ends: np.ndarray, h: int) -> np.ndarray:
        f = _season_lookup(hist, h, WEEK, 1)
        return np.where(np.isnan(f), DailyProfile().forecast(hist, ends, h), f)


class WeeklyProfile:
    def __init__(self, weeks: int = 4):
        self.weeks = weeks
        self.name = f"WeeklyProfile{weeks}"

    def forecast(self, hist: np.ndarray, ends: np.ndarray, h: int) -> np.ndarray:
        stack = np.stack([_season_lookup(hist, h, WEEK, w) for w in range(1, self.weeks + 1)])
        with np.errstate(invalid="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                f = np.nanmean(stack, axis=0)
        return np.where(np.isnan(f), DailyProfile().forecast(hist, ends, h), f)


class LevelProfile:
    """Last week's mean level times the average hour-of-week shape of the last ``weeks`` weeks.

    A fast multiplicative decomposition (level x daily-and-weekly season, vectorised over all series): it
    follows a level change within a week, where the weekly profile averages over ``weeks`` weeks.
    """

    def __init__(self, weeks: int = 4):
        self.weeks = weeks
        self.name = "LevelProfile"

    def forecast(self, hist: np.ndarray, ends: np.ndarray, h: int) -> np.ndarray:
        import warnings

        n, width = hist.shape
        k = min(self.weeks, width // WEEK)
        if k == 0:
            return DailyProfile().forecast(hist, ends, h)
        weeks = hist[:, width - k * WEEK:].reshape(n, k, WEEK)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(weeks, axis=2, keepdims=True)
            shape = np.nanmean(np.where(means > 0, weeks / np.where(means > 0, means, 1), np.nan), axis=1)
        level = means[:, -1, 0]
        f = level[:, None] * shape[:, np.arange(h) % WEEK]
        return np.where(np.isfinite(f), f, WeeklyProfile(self.weeks).forecast(hist, ends, h))


class DailyProfile:
    def __init__(self, days: int = 7):
        self.days = days
        self.name = "DailyProfile"

    def forecast(self, hist: np.ndarray, ends: np.ndarray, h: int) -> np.ndarray:
        import warnings

        stack = np.stack([_season_lookup(hist, h, DAY, d) for d in range(1, self.days + 1)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            f = np.nanmean(stack, axis=0)
        return np.nan_to_num(f)


def _long_frame(hist: np.ndarray, ends: np.ndarray, max_hours: int) -> pd.DataFrame:
    """The non-NaN tail (at most ``max_hours``) of each row as a long frame ``(unique_id, ds, y)``."""
    n, width = hist.shape
    take = hist[:, -max_hours:] if width > max_hours else hist
    w = take.shape[1]
    offs = np.arange(w - 1, -1, -1, dtype="int64")  # hours before the end
    ds = ends.astype("datetime64[h]")[:, None] - offs[None, :].astype("timedelta64[h]")
    ids = np.repeat(np.arange(n), w)
    frame = pd.DataFrame({"unique_id": ids, "ds": ds.ravel(), "y": take.ravel()})
    return frame[~np.isnan(frame["y"].to_numpy())]


def _pivot(fc: pd.DataFrame, n: int, h: int) -> np.ndarray:
    out = np.full((n, h), np.nan)
    fc = fc.sort_values(["unique_id", "ds"])
    step = fc.groupby("unique_id").cumcount().to_numpy()
    out[fc["unique_id"].to_numpy(dtype=int), step] = fc["yhat"].to_numpy()
    return out


class StatsMSTL:
    """MSTL (seasons 24 and 168, AutoETS trend) on the last ``weeks`` weeks of each series."""

    name = "MSTL"

    def __init__(self, weeks: int = 8, n_jobs: int = 1):
        self.weeks, self.n_jobs = weeks, n_jobs

    def forecast(self, hist: np.ndarray, ends: np.ndarray, h: int) -> np.ndarray:
        from models.forecasting import MSTL

        frame = _long_frame(hist, ends, self.weeks * WEEK)
        model = MSTL(n_jobs=self.n_jobs, max_history=self.weeks * 7).fit(frame, freq="h")
        f = _pivot(model.predict(h=h, level=80), hist.shape[0], h)
        return np.where(np.isnan(f), WeeklyNaive().forecast(hist, ends, h), f)


class HourlyGBM:
    """The global GBM (``models.forecasting.GlobalGBM``): lags 1-24, 48, 72, 96, 168, rolling means, hour
    and day of week, trained on the last ``weeks`` weeks of every series at once."""

    name = "GlobalGBM"

    def __init__(self, weeks: int = 6, n_jobs: int = 1, seed: int = 0, n_estimators: int = 150,
                 max_train_rows: int = 300_000):
        self.weeks, self.n_jobs, self.seed = weeks, n_jobs, seed
        self.n_estimators, self.max_train_rows = n_estimators, max_train_rows

    def forecast(self, hist: np.ndarray, ends: np.ndarray, h: int) -> np.ndarray:
        from models.forecasting import GlobalGBM

        frame = _long_frame(hist, ends, self.weeks * WEEK + WEEK)
        model = GlobalGBM(country=None, n_jobs=self.n_jobs, seed=self.seed, n_estimators=self.n_estimators,
                          train_seasons=self.weeks * 7, max_train_rows=self.max_train_rows)
        f = _pivot(model.fit(frame, freq="h").predict(h=h, level=80), hist.shape[0], h)
        return np.where(np.isnan(f), WeeklyNaive().forecast(hist, ends, h), f)


MEMBERS = {"WeeklyNaive": WeeklyNaive, "WeeklyProfile4": WeeklyProfile, "LevelProfile": LevelProfile,
           "MSTL": StatsMSTL, "GlobalGBM": HourlyGBM}
DEFAULT_MEMBERS = ("WeeklyNaive", "WeeklyProfile4", "LevelProfile")
"""Members of the nightly run: vectorised, about a millisecond per series. ``MSTL`` (about 1 s of CPU per series
and origin) and ``GlobalGBM`` (about 30 s per fit) can be added (``PAE_PEAK_MEMBERS``) on small platforms."""
