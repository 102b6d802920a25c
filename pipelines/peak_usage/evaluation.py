"""Peak-usage accuracy on held-out days: per series and day, then per model. Pure functions over frames.

Per day (the workspace's local day, all 24 hours held out): the real peak hour and value against the
predicted ones. ``hit`` = the real peak hour within +-1 hour of the predicted one; ``in_top3``; ``ape`` = |peak
value - real peak| / real peak (days whose real peak is 0 are left out of both); ``covered`` = real peak <=
``capacity`` (the upper bound of the day's peak, no headroom); ``covered_hourly`` = real peak <= the hourly
upper bound at the predicted peak hour; ``capacity_ratio`` = capacity / real peak (what the coverage costs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def actual_days(local: pd.DataFrame) -> pd.DataFrame:
    """Complete local days of a long frame ``(unique_id, ds, y)``: the real peak hour (first of ties) and value."""
    df = local.assign(date=local["ds"].dt.date, hour=local["ds"].dt.hour)
    full = df.groupby(["unique_id", "date"])["hour"].transform("size") == 24
    df = df[full]
    idx = df.sort_values(["unique_id", "date", "y", "hour"], ascending=[True, True, False, True]).groupby(
        ["unique_id", "date"]).head(1)
    return idx.rename(columns={"y": "actual_peak", "hour": "actual_hour"})[["unique_id", "date", "actual_peak",
                                                                           "actual_hour"]]


def day_metrics(peaks: pd.DataFrame, actual: pd.DataFrame, model: str) -> pd.DataFrame:
    """Per (series, day) scores of ``peaks`` (``models.peaks.daily_peaks`` rows) against ``actual_days``."""
    m = peaks.merge(actual, on=["unique_id", "date"], how="inner")
    pos = m["actual_peak"] > 0
    return pd.DataFrame({
        "unique_id": m["unique_id"], "date": m["date"], "model": model,
        "actual_peak": m["actual_peak"], "actual_hour": m["actual_hour"], "peak_hour": m["peak_hour"],
        "peak_value": m["peak_value"], "capacity": m["capacity"],
        "hit": np.where(pos, (m["peak_hour"] - m["actual_hour"]).abs() <= 1, np.nan),
        "in_top3": np.where(pos, [a in t for a, t in zip(m["actual_hour"], m["top_hours"])], np.nan),
        "ape": np.where(pos, (m["peak_value"] - m["actual_peak"]).abs() / m["actual_peak"].where(pos, 1), np.nan),
        "covered": (m["actual_peak"] <= m["capacity"] + 1e-9).astype(float),
        "covered_hourly": (m["actual_peak"] <= m["hourly_upper_at_peak"] + 1e-9).astype(float),
        "capacity_ratio": np.where(pos, m["capacity"] / m["actual_peak"].where(pos, 1), np.nan),
        "interval_width": np.where(pos, (m["peak_upper"] - m["peak_lower"]) / m["actual_peak"].where(pos, 1), np.nan),
    })


def summarize_days(days: pd.DataFrame) -> pd.DataFrame:
    """One row per model (and metric, when a ``metric`` column is there)."""
    keys = [k for k in ("metric", "model") if k in days]
    g = days.groupby(keys)
    return pd.DataFrame({
        "n_days": g.size(),
        "peak_hour_hit": g["hit"].mean(),
        "top3_share": g["in_top3"].mean(),
        "peak_mape": g["ape"].mean(),
        "peak_median_ape": g["ape"].median(),
        "capacity_coverage": g["covered"].mean(),
        "hourly_bound_coverage": g["covered_hourly"].mean(),
        "capacity_ratio": g["capacity_ratio"].mean(),
        "interval_width": g["interval_width"].mean(),
    }).reset_index()


def hourly_coverage(actual: pd.DataFrame, bounds: pd.DataFrame) -> dict[str, float]:
    """Share of held-out hours inside the ``lo-<lv>``/``hi-<lv>`` bounds, per level, and the hourly WAPE."""
    m = actual.merge(bounds, on=["unique_id", "ds"], how="inner")
    out = {"hours": float(len(m))}
    if not len(m):
        return out
    for lv in (80, 95):
        if f"lo-{lv}" in m:
            out[f"coverage_{lv}"] = float(((m["y"] >= m[f"lo-{lv}"] - 1e-9) & (m["y"] <= m[f"hi-{lv}"] + 1e-9)).mean())
    out["wape"] = float((m["y"] - m["yhat"]).abs().sum() / max(m["y"].abs().sum(), 1e-9))
    return out
