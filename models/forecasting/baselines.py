"""Simple forecasting methods: the seasonal naive baseline, the window average for short or constant
series, and the clipping every forecast goes through."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .checks import z_value
from .panel import Panel


def seasonal_naive(panel: Panel, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
    """Repeat the last season; intervals from seasonal-difference residuals, widening per season ahead.

    Series of at most one season get the window average instead.
    """
    m = panel.season_length
    short = panel.lengths <= m
    mean = np.full((panel.n_series, h), np.nan)
    bands = {lv: (mean.copy(), mean.copy()) for lv in levels}
    if (~short).any():
        long_idx = np.flatnonzero(~short)
        hist = panel.take(long_idx).padded(min(int(panel.lengths.max()), 53 * m))
        k = np.arange(h)
        mean[long_idx] = hist[:, -m:][:, k % m]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows with one season and a bit are all NaN early on
            sigma = np.sqrt(np.nanmean((hist[:, m:] - hist[:, :-m]) ** 2, axis=1))
        half = sigma[:, None] * np.sqrt(k // m + 1)
        for lv in levels:
            bands[lv][0][long_idx] = mean[long_idx] - z_value(lv) * half
            bands[lv][1][long_idx] = mean[long_idx] + z_value(lv) * half
    if short.any():
        wa_mean, wa_bands = window_average(panel.take(np.flatnonzero(short)), h, levels)
        mean[short] = wa_mean
        for lv in levels:
            bands[lv][0][short], bands[lv][1][short] = wa_bands[lv]
    return mean, bands


def window_average(panel: Panel, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
    """Mean of the last season (or all values if fewer); constant-width intervals from the history's spread."""
    m = panel.season_length
    hist = panel.padded(min(int(panel.lengths.max()), 52 * m))
    n_recent = np.minimum(panel.lengths, m)
    mean = np.repeat(np.nanmean(hist[:, -m:], axis=1)[:, None], h, axis=1)
    n = np.minimum(panel.lengths, hist.shape[1])
    sd = np.where(n > 1, np.nanstd(hist, axis=1, ddof=0) * np.sqrt(n / np.maximum(n - 1, 1)), 0.0)
    half = sd * np.sqrt(1 + 1 / n_recent)
    bands = {lv: (mean - z_value(lv) * half[:, None], mean + z_value(lv) * half[:, None]) for lv in levels}
    return mean, bands


def finalise(panel: Panel, mean: np.ndarray, bands: dict) -> tuple[np.ndarray, dict]:
    """Clip at zero for non-negative series and enforce ``lower <= mean <= upper``."""
    nonneg = panel.nonneg[:, None]
    mean = np.where(nonneg, np.maximum(mean, 0.0), mean)
    out = {}
    for lv, (lo, hi) in bands.items():
        lo = np.minimum(lo, mean)
        out[lv] = (np.where(nonneg, np.maximum(lo, 0.0), lo), np.maximum(hi, mean))
    return mean, out

