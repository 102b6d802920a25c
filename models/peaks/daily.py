"""Daily peaks from sample paths: the peak hour and the top 3 with their probabilities, the peak value with
its interval, and the capacity it needs.

For each series and day (on the series' clock): each sample path's day (observed hours where the day has
already begun, the path's values after) has a highest hour and a highest value.

* ``peak_hour``: the hour most often highest across the paths (ties: the higher point forecast);
  ``top_hours``/``top_probs``: the three most frequent, with the share of paths in which each is the peak;
* ``peak_value``: the median over paths of the day's highest value (a forecast of the day's peak, which is
  above the point forecast at any one hour: the day's maximum of noisy hours exceeds the maximum of their
  means); ``peak_lower``/``peak_upper``: its quantiles at ``level``;
* ``capacity``: ``peak_upper``, the upper bound at ``level`` of the day's peak, whatever hour it lands on
  (``pae peaks`` writes it without headroom; the pipeline multiplies it by ``peak_headroom``);
* ``yhat_at_peak`` and ``hourly_upper_at_peak``: the point forecast and the hourly upper bound at
  ``peak_hour``, for comparison (an hourly bound at one hour covers that hour, not the day's peak).

Hours that do not exist on the clock (the hour skipped when daylight saving starts) are never the peak.
"""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd


def _day_grid(first: date, days: int, end: np.datetime64) -> np.ndarray:
    """Steps (1 = the hour after ``end``) of each hour of ``days`` days from ``first``: (days, 24)."""
    t0 = np.datetime64(first, "h")
    hours = t0 + np.arange(days * 24).astype("timedelta64[h]")
    return (hours - end).astype("int64").reshape(days, 24)


def daily_peaks(ids, ends: np.ndarray, tail: np.ndarray, point: np.ndarray, paths: np.ndarray, first_dates,
                days: int, level: int = 95, missing: np.ndarray | None = None) -> pd.DataFrame:
    """One row per series and day (module docstring).

    Args:
        ids: Series ids (n).
        ends: Last observed hour of each series on its clock (datetime64[h], n).
        tail: (n, 24) the last 24 observed hours (column -1 = ``ends``), for a day already begun.
        point: (n, h) point forecast of the steps after ``ends``.
        paths: (n, n_paths, h) sample paths of the same steps.
        first_dates: First day to report per series (n dates), or one date for all.
        days: Days to report from it.
        level: Interval level in percent.
        missing: Optional (n, h) True where a step does not exist on the clock (skipped DST hour).

    Returns:
        ``unique_id, date, peak_hour, top_hours, top_probs, peak_value, peak_lower, peak_upper, capacity,
        yhat_at_peak, hourly_upper_at_peak`` (``top_*`` are lists of up to 3).
    """
    n, S, h = paths.shape
    q_lo, q_hi = (1 - level / 100) / 2, 1 - (1 - level / 100) / 2
    if not isinstance(first_dates, (list, tuple, np.ndarray, pd.Series)):
        first_dates = [first_dates] * n
    rows = []
    for i in range(n):
        first = pd.Timestamp(first_dates[i]).date()
        steps = _day_grid(first, days, ends[i])  # (days, 24)
        valid = (steps >= -23) & (steps <= h)
        if missing is not None:
            inside = (steps >= 1) & (steps <= h)
            gone = np.zeros_like(valid)
            gone[inside] = missing[i][steps[inside] - 1]
            valid &= ~gone
        obs_idx = np.clip(23 + steps, 0, 23)  # step 0 is tail[-1]
        fut_idx = np.clip(steps - 1, 0, h - 1)
        future = steps >= 1
        sample = np.where(future[None], paths[i][:, fut_idx], tail[i][obs_idx][None])  # (S, days, 24)
        sample = np.where(valid[None], sample, -np.inf)
        pt = np.where(future, point[i][fut_idx], tail[i][obs_idx])
        pt = np.where(valid, pt, -np.inf)
        hourly_hi = np.quantile(np.where(valid[None], sample, np.nan), q_hi, axis=0) if S else pt
        argmax = sample.argmax(axis=2)  # (S, days)
        day_max = sample.max(axis=2)
        for d in range(days):
            if not valid[d].any():
                continue
            counts = np.bincount(argmax[:, d], minlength=24).astype(float) / S
            order = sorted(range(24), key=lambda k: (-counts[k], -pt[d, k]))
            peak = order[0]
            top = [k for k in order[:3] if counts[k] > 0] or [peak]
            mx = day_max[:, d]
            rows.append({
                "unique_id": ids[i], "date": first + timedelta(days=d), "peak_hour": int(peak),
                "top_hours": [int(k) for k in top], "top_probs": [round(float(counts[k]), 4) for k in top],
                "peak_value": float(np.median(mx)), "peak_lower": float(np.quantile(mx, q_lo)),
                "peak_upper": float(np.quantile(mx, q_hi)), "yhat_at_peak": float(pt[d, peak]),
                "hourly_upper_at_peak": float(max(hourly_hi[d, peak], pt[d, peak])),
            })
    out = pd.DataFrame(rows, columns=["unique_id", "date", "peak_hour", "top_hours", "top_probs", "peak_value",
                                      "peak_lower", "peak_upper", "yhat_at_peak", "hourly_upper_at_peak"])
    out["peak_lower"] = np.minimum(out["peak_lower"], out["peak_value"])
    out["peak_upper"] = np.maximum(out["peak_upper"], out["peak_value"])
    out["capacity"] = out["peak_upper"]
    return out


PEAK_COLUMNS = ["unique_id", "date", "peak_hour", "peak_value", "peak_lower", "peak_upper", "capacity"]


def peak_table(df: pd.DataFrame, horizon_days: int = 7, level: int = 95, **forecaster) -> pd.DataFrame:
    """``pae peaks`` for a long frame ``(unique_id, ds, y)`` of hourly series on their own clock.

    Fits a :class:`~models.peaks.PeakForecaster` (``forecaster``: its arguments) and returns one row per series
    and day for the ``horizon_days`` days after each series' last observed day, with :data:`PEAK_COLUMNS`.
    """
    from .forecaster import PeakForecaster

    model = PeakForecaster(**forecaster).fit(df)
    ends = model.ends_
    first = [(pd.Timestamp(e).normalize() + pd.Timedelta(days=1)).date() for e in ends]
    last = np.array([np.datetime64(f, "h") for f in first]) + np.timedelta64(24 * horizon_days - 1, "h")
    h = int((last - ends).astype("int64").max())
    point = model.point_forecast(h)
    paths = model.sample_paths(h, point)
    out = daily_peaks(model.ids_, ends, np.nan_to_num(model.hist_[:, -24:]), point, paths, first, horizon_days, level)
    return out[PEAK_COLUMNS].sort_values(["unique_id", "date"]).reset_index(drop=True)
