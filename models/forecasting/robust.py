"""Robust wrapper: fit on history cleaned of holidays and one-off outliers, then re-apply holiday effects.

A batch job that burns a week of credits in a day, or a platform outage, pulls a local model's
level and weekly profile for weeks. Holidays do the same, and they come back: a workspace in
Japan is quiet on Culture Day every year. :class:`Robust` wraps any forecaster:

1. **Holiday calendar per series**, inferred from its own history when not given: for every
   candidate country, the median ratio of weekday-holiday values to the same weekday in the
   surrounding weeks. The country with the clearest dip is kept if the dip is significant
   (at least ``min_holidays`` holidays, ratio below ``1 - z * standard error`` and below 0.9).
2. **Cleaning**: those holidays, and points further than ``threshold`` robust standard deviations
   from the same-weekday median of the surrounding ``k_weeks`` weeks on each side, are replaced
   by that median. Runs of more than ``max_run`` days off in the same direction are kept: they
   look like a change of level, not a one-off. The wrapped model is fitted on the cleaned history.
3. **Forecast**: the wrapped model's forecast, times the series' holiday ratio on future weekday
   holidays of its calendar (bounds scaled alike).

Only the training slice is looked at, so the wrapper is safe inside backtests: scores are always
against the raw actuals.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .base import BaseForecaster
from .baselines import finalise
from .checks import ForecastInputError, check_holiday_country, check_level, holiday_days
from .panel import Panel

logger = logging.getLogger(__name__)

DEFAULT_COUNTRIES = ("US", "GB", "DE", "FR", "IN", "SG", "JP", "BR", "CA", "AU")


def nanmedian0(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (NaN where all are NaN); faster than ``np.nanmedian`` for a short axis 0."""
    ordered = np.sort(stack, axis=0)  # NaN sorts last
    count = np.isfinite(stack).sum(axis=0)
    lo = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    hi = np.take_along_axis(ordered, np.maximum(count // 2, 0)[None], axis=0)[0]
    return np.where(count > 0, (lo + np.where(count > 0, hi, 0.0)) / 2, np.nan)


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaN for all-NaN rows)."""
    return nanmedian0(values.T)


def same_weekday_median(values: np.ndarray, season: int, k: int) -> np.ndarray:
    """Median of the same season position ``1..k`` seasons before and after each point (NaN-aware).

    ``values`` is (n_series, width), NaN-padded on the left; the point itself is left out.
    """
    n, width = values.shape
    shifted = np.full((2 * k, n, width), np.nan)
    for j in range(k):
        off = (j + 1) * season
        if off < width:
            shifted[2 * j, :, off:] = values[:, :-off]
            shifted[2 * j + 1, :, : width - off] = values[:, off:]
    return nanmedian0(shifted)


class Robust(BaseForecaster):
    """Fit ``model`` on cleaned history; scale its forecast on holidays (see the module docstring).

    Args:
        model: The forecaster to wrap (daily data; hourly panels pass through unchanged).
        countries: Candidate holiday calendars (ISO codes) to infer from.
        calendars: Known calendar per series id (overrides inference; None for "no holidays").
        threshold: Outlier cut in robust standard deviations.
        k_weeks: Weeks on each side for the same-weekday median.
        min_holidays: Fewest weekday holidays in the history to judge a calendar.
        z: Significance of a holiday dip, in standard errors.
        max_run: Longest run of consecutive same-direction outliers that is cleaned; longer runs
            are a change of level, and the model must see them.
        history_days: Days of history looked at (the rest is passed through unchanged).
        alias: Column name in backtests (default: the wrapped model's name).

    Attributes:
        calendars_: Per series id, ``(country, holiday ratio)`` or None, from the last fit.
        n_cleaned_: Points replaced in the last fit.
    """

    _default_name = "Robust"

    def __init__(
        self,
        model: BaseForecaster,
        *,
        countries: Sequence[str] = DEFAULT_COUNTRIES,
        calendars: Mapping[str, str | None] | None = None,
        threshold: float = 4.0,
        k_weeks: int = 3,
        min_holidays: int = 4,
        z: float = 3.0,
        max_run: int = 2,
        history_days: int = 728,
        alias: str | None = None,
    ):
        super().__init__(alias=alias, fill=model.fill)
        for c in countries:
            check_holiday_country(c)
        if threshold <= 0 or k_weeks < 1 or min_holidays < 1:
            raise ForecastInputError("threshold must be > 0, k_weeks and min_holidays >= 1.")
        self.model = model
        self.countries = tuple(countries)
        self.calendars = calendars
        self.threshold = threshold
        self.k_weeks = k_weeks
        self.min_holidays = min_holidays
        self.z = z
        self.max_run = max_run
        self.history_days = history_days
        self.name = alias or model.name

    def fitted_specs(self) -> dict:
        return self.model.fitted_specs()

    def set_specs(self, specs: dict | None) -> Robust:
        self.model.set_specs(specs)
        return self

    # ------------------------------------------------------------------ fit

    def _fit_panel(self, panel: Panel, forward: bool = False) -> Robust:
        self.panel_ = panel
        if panel.freq != "D":
            self._country = np.full(panel.n_series, None, dtype=object)
            self._ratio = np.ones(panel.n_series)
            self.calendars_, self.n_cleaned_ = dict.fromkeys(panel.ids.tolist()), 0
            self.model._fit_panel(panel, forward=forward)
            self.fallbacks = self.model.fallbacks
            return self
        width = int(min(panel.lengths.max(), self.history_days))
        hist = panel.padded(width)
        days = panel.end_index[:, None] - np.arange(width - 1, -1, -1)[None, :]  # whole days since epoch
        weekday = (days + 3) % 7 < 5
        ref = same_weekday_median(hist, 7, self.k_weeks)
        masks = self._holiday_masks(days) & weekday[None]
        self._country, self._ratio, chosen = self._infer_calendars(panel, hist, ref, masks, weekday)

        resid = hist - ref
        with np.errstate(all="ignore"):
            center = nanmedian_rows(resid)[:, None]
            spread = 1.4826 * nanmedian_rows(np.abs(resid - center))[:, None]
        outlier = np.abs(resid - center) > self.threshold * np.maximum(spread, 1e-9)
        outlier &= _run_lengths(np.where(outlier, np.sign(resid - center), 0)) <= self.max_run
        replace = (outlier | chosen) & np.isfinite(ref) & np.isfinite(hist)
        cleaned = np.where(replace, ref, hist)
        if panel.nonneg.all():
            cleaned = np.maximum(cleaned, 0.0)
        self.n_cleaned_ = int(replace.sum())
        self.calendars_ = {
            uid: (None if c is None else (c, float(r))) for uid, c, r in zip(panel.ids.tolist(), self._country, self._ratio)
        }
        self.model._fit_panel(_with_tail(panel, cleaned), forward=forward)
        self.fallbacks = self.model.fallbacks
        return self

    def _holiday_masks(self, days: np.ndarray) -> np.ndarray:
        """(n_countries, n_series, width) holiday flags."""
        first, last = (int(d.astype("datetime64[D]").astype("datetime64[Y]").astype(int)) + 1970
                       for d in (days.min(), days.max()))
        out = np.zeros((len(self.countries), *days.shape), bool)
        for c_idx, c in enumerate(self.countries):
            out[c_idx] = np.isin(days, holiday_days(c, first, last))
        return out

    def _infer_calendars(
        self, panel: Panel, hist: np.ndarray, ref: np.ndarray, masks: np.ndarray, weekday: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per series: country (or None), holiday ratio, and the (n_series, width) holiday flags used."""
        n = panel.n_series
        with np.errstate(all="ignore"):
            rel = np.where(ref > 0, hist / ref, np.nan)
            ordinary = np.where(weekday & ~masks.any(axis=0), rel, np.nan)
            center = nanmedian_rows(ordinary)
            spread = 1.4826 * nanmedian_rows(np.abs(ordinary - center[:, None]))
            ratios = np.ones((len(self.countries), n))
            score = np.full((len(self.countries), n), -np.inf)
            for c_idx in range(len(self.countries)):
                on = np.where(masks[c_idx], rel, np.nan)
                count = np.isfinite(on).sum(axis=1)
                ratio = nanmedian_rows(on) / np.where(center > 0, center, np.nan)
                se = 1.2533 * spread / np.maximum(center, 1e-9) / np.sqrt(np.maximum(count, 1))
                z = (1 - ratio) / np.maximum(se, 1e-9)
                ratios[c_idx] = np.where(np.isfinite(ratio), np.clip(ratio, 0.0, 1.0), 1.0)
                significant = (count >= self.min_holidays) & (ratio < 0.9) & (z > self.z)
                score[c_idx] = np.where(significant, z, -np.inf)
        pick = np.argmax(score, axis=0) if len(self.countries) else np.zeros(n, int)
        found = np.isfinite(score.max(axis=0)) if len(self.countries) else np.zeros(n, bool)
        if self.calendars is not None:  # known calendars win over inference
            for i, uid in enumerate(panel.ids.tolist()):
                if uid in self.calendars:
                    known = self.calendars[uid]
                    found[i] = known in self.countries
                    pick[i] = self.countries.index(known) if found[i] else 0
        country = np.where(found, np.array(self.countries + ("",), dtype=object)[pick], None)
        ratio = np.where(found, ratios[pick, np.arange(n)] if len(self.countries) else 1.0, 1.0)
        chosen = np.zeros(hist.shape, bool)
        rows = np.flatnonzero(found)
        chosen[rows] = masks[pick[rows], rows]
        return country, ratio, chosen

    # ------------------------------------------------------------------ predict

    def predict_arrays(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        if not hasattr(self, "panel_"):
            raise ForecastInputError(f"{self.name} is not fitted yet; call fit(df, freq) before predict.")
        levels = [check_level(lv) for lv in levels]
        mean, bands = self.model.predict_arrays(h, levels)
        factor = self.holiday_factors(h)
        return finalise(self.panel_, mean * factor, {lv: (lo * factor, hi * factor) for lv, (lo, hi) in bands.items()})

    def holiday_factors(self, h: int) -> np.ndarray:
        """(n_series, h) multipliers: the holiday ratio on future weekday holidays, else 1."""
        panel = self.panel_
        factor = np.ones((panel.n_series, h))
        if panel.freq != "D":
            return factor
        days = panel.end_index[:, None] + np.arange(1, h + 1)[None, :]
        weekday = (days + 3) % 7 < 5
        year0 = int(days.min().astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
        for c in set(self._country.tolist()) - {None}:
            rows = np.flatnonzero(self._country == c)
            hol = np.isin(days[rows], holiday_days(c, year0, year0 + h // 365 + 1)) & weekday[rows]
            factor[rows] = np.where(hol, self._ratio[rows, None], 1.0)
        return factor

    def calendar_frame(self) -> pd.DataFrame:
        """One row per series: inferred (or given) holiday country and ratio."""
        rows = [(uid, c, r if c is not None else np.nan) for uid, c, r in
                zip(self.panel_.ids.tolist(), self._country, self._ratio)]
        return pd.DataFrame(rows, columns=[self.panel_.id_col, "holiday_country", "holiday_ratio"])


def _run_lengths(signs: np.ndarray) -> np.ndarray:
    """Per cell, the length of the run of equal values (along axis 1) it belongs to."""
    n, width = signs.shape
    starts = np.ones(signs.shape, bool)
    starts[:, 1:] = signs[:, 1:] != signs[:, :-1]
    run_id = np.cumsum(starts.ravel()) - 1  # rows start new runs since each row's first cell is a start
    return np.bincount(run_id)[run_id].reshape(n, width)


def _with_tail(panel: Panel, tail: np.ndarray) -> Panel:
    """A copy of ``panel`` whose last ``tail.shape[1]`` values per series (right-aligned) are replaced."""
    width = tail.shape[1]
    n_keep = np.minimum(panel.lengths, width)
    y = panel.y.copy()
    for i in range(panel.n_series):
        k = int(n_keep[i])
        if k:
            y[panel.indptr[i + 1] - k : panel.indptr[i + 1]] = tail[i, width - k :]
    return Panel(panel.ids, y, panel.indptr, panel.start, panel.freq, panel.id_col, panel.time_col, panel.tz)
