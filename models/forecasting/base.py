"""Input validation, the internal panel layout and the shared forecaster machinery.

Every forecaster takes a long frame ``(unique_id, ds, y)`` and returns
``(unique_id, ds, yhat, yhat_lower, yhat_upper)``. Internally the frame becomes a
:class:`Panel`: one regular, gap-free float array per series, stored back to back.
"""
from __future__ import annotations

import functools
import inspect
import logging
import multiprocessing
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy.stats import norm

logger = logging.getLogger(__name__)

SEASON_LENGTH = {"D": 7, "h": 24}
"""Season length used by every member: weekly for daily data, daily for hourly data."""

FILL_OPTIONS = ("zero", "interpolate", None)
_STEP = {"D": np.timedelta64(1, "D"), "h": np.timedelta64(1, "h")}
_FREQ_ALIASES = {"D": "D", "d": "D", "1D": "D", "h": "h", "H": "h", "1h": "h", "1H": "h"}
_LOG_EXAMPLES = 5


class ForecastInputError(ValueError):
    """The input frame or a forecasting argument is unusable; the message says how to fix it."""


@runtime_checkable
class Forecaster(Protocol):
    """The interface every forecaster (members and ensemble) follows."""

    name: str

    def fit(self, df: pd.DataFrame, freq: str = "D") -> Forecaster: ...

    def predict(self, h: int, level: int = 95) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Fallback:
    """One series that a member did not forecast with its own method.

    Attributes:
        unique_id: The series id.
        model: Name of the member that fell back.
        reason: Why, e.g. ``"short history: 5 < 14 points"`` or the exception message.
        used: The method used instead (``"SeasonalNaive"`` or ``"WindowAverage"``).
    """

    unique_id: Any
    model: str
    reason: str
    used: str


# --------------------------------------------------------------------------- validation


def check_freq(freq: str) -> str:
    """Return the canonical frequency (``"D"`` or ``"h"``) or raise ForecastInputError."""
    if isinstance(freq, str) and freq in _FREQ_ALIASES:
        return _FREQ_ALIASES[freq]
    raise ForecastInputError(
        f"freq must be 'D' (daily) or 'h' (hourly), got {freq!r}. Resample your data to days or hours first."
    )


def check_horizon(h: Any) -> int:
    """Return ``h`` as a positive int or raise ForecastInputError."""
    if isinstance(h, (bool, np.bool_)) or not isinstance(h, (int, np.integer)) or h < 1:
        raise ForecastInputError(f"Horizon h must be a positive integer number of steps, got {h!r}.")
    return int(h)


def check_level(level: Any) -> int:
    """Return ``level`` as an int percentage in (0, 100) or raise ForecastInputError."""
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer, float)) or not 0 < level < 100:
        raise ForecastInputError(f"level is a confidence in percent, between 0 and 100 (e.g. 80 or 95); got {level!r}.")
    if float(level) != int(level):
        raise ForecastInputError(f"level must be a whole percentage such as 80 or 95, got {level!r}.")
    return int(level)


def z_value(level: int) -> float:
    """Two-sided standard normal quantile for a confidence level in percent."""
    return float(norm.ppf(0.5 + level / 200))


def check_holiday_country(country: str | None) -> None:
    """Raise ForecastInputError unless ``country`` is None or a code the ``holidays`` package knows."""
    if country is None:
        return
    import holidays

    if country not in holidays.list_supported_countries():
        raise ForecastInputError(
            f"Unknown holiday country {country!r}; use an ISO code such as 'US', 'DE' or 'GB', or None for no holidays."
        )


@functools.lru_cache(maxsize=32)
def holiday_days(country: str, first_year: int, last_year: int) -> np.ndarray:
    """Public holidays of ``country`` in the given years, as whole days since 1970-01-01."""
    import holidays

    days = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    return np.array(sorted(days), dtype="datetime64[D]").astype(np.int64)


def _to_timestamps(col: pd.Series, name: str) -> tuple[np.ndarray, Any]:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_datetime64_any_dtype(col):
        raise ForecastInputError(
            f"Column '{name}' holds numbers, not timestamps. Convert it first, "
            f"e.g. pd.to_datetime(df['{name}'], unit='s')."
        )
    if not pd.api.types.is_datetime64_any_dtype(col):
        try:
            parsed = pd.to_datetime(col)
        except (ValueError, TypeError, OverflowError):
            parsed = None
        if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):
            coerced = pd.to_datetime(col, errors="coerce", format="mixed", utc=True)
            bad = coerced.isna() & col.notna()
            example = col[bad].iloc[0] if bad.any() else col.iloc[0]
            raise ForecastInputError(
                f"Column '{name}' must hold timestamps of one time zone: could not parse {example!r}. "
                f"Convert it with pd.to_datetime first."
            )
        col = parsed
    if col.isna().any():
        raise ForecastInputError(f"Column '{name}' has {int(col.isna().sum())} missing timestamps; drop those rows.")
    tz = col.dt.tz
    if tz is not None:
        col = col.dt.tz_localize(None)  # work on wall-clock time, restore the zone on output
    return col.to_numpy("datetime64[ns]"), tz


def _to_float(col: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    elif not pd.api.types.is_numeric_dtype(col):
        coerced = pd.to_numeric(col, errors="coerce")
        bad = coerced.isna() & col.notna()
        if bad.any():
            raise ForecastInputError(
                f"Column '{name}' must be numeric: found non-numeric values such as {col[bad].iloc[0]!r} "
                f"({int(bad.sum())} rows). Convert it with pd.to_numeric(df['{name}'], errors='coerce') "
                f"and decide what the blanks mean."
            )
        col = coerced
    values = col.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(values).any():
        raise ForecastInputError(
            f"Column '{name}' has {int(np.isinf(values).sum())} infinite values; replace or drop them first."
        )
    return values


def _fill_missing(y: np.ndarray, indptr: np.ndarray, ids: np.ndarray, fill: str | None, freq: str) -> np.ndarray:
    missing = np.isnan(y)
    if not missing.any():
        return y
    per_series = np.add.reduceat(missing, indptr[:-1])
    first = int(np.flatnonzero(per_series)[0])
    if fill is None:
        raise ForecastInputError(
            f"{int(per_series.astype(bool).sum())} series have missing {'days' if freq == 'D' else 'hours'} or NaN y, "
            f"e.g. {ids[first]!r} ({int(per_series[first])} missing). Pass fill='zero' (a missing step means no usage) "
            f"or fill='interpolate'."
        )
    if fill == "zero":
        return np.where(missing, 0.0, y)
    out = y.copy()
    for i in np.flatnonzero(per_series):
        seg = out[indptr[i] : indptr[i + 1]]
        known = ~np.isnan(seg)
        if not known.any():
            raise ForecastInputError(
                f"Series {ids[i]!r} has no numeric y values, so it cannot be interpolated; drop it or use fill='zero'."
            )
        pos = np.arange(seg.size)
        seg[~known] = np.interp(pos[~known], pos[known], seg[known])  # edges take the nearest value
    return out


def _format_time(ts: np.datetime64, freq: str) -> str:
    stamp = pd.Timestamp(ts)
    return str(stamp.date()) if freq == "D" else str(stamp)


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(c)`` for each count."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


# --------------------------------------------------------------------------- panel


@dataclass(frozen=True, eq=False)
class Panel:
    """Regular, gap-free series stored back to back (the internal form of a long frame).

    Attributes:
        ids: Series ids, sorted.
        y: All values, series after series, as float64.
        indptr: Offsets into ``y``: series ``i`` is ``y[indptr[i]:indptr[i + 1]]``.
        start: First timestamp of each series (naive ``datetime64[ns]``).
        freq: ``"D"`` or ``"h"``.
        id_col: Name of the id column in input and output.
        time_col: Name of the timestamp column in input and output.
        tz: Time zone of the input timestamps, restored on output (None if naive).
    """

    ids: np.ndarray
    y: np.ndarray
    indptr: np.ndarray
    start: np.ndarray
    freq: str
    id_col: str = "unique_id"
    time_col: str = "ds"
    tz: Any = None

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        freq: str = "D",
        fill: str | None = "zero",
        id_col: str = "unique_id",
        time_col: str = "ds",
        target_col: str = "y",
    ) -> Panel:
        """Validate a long frame and build a panel.

        Args:
            df: Long frame with one row per series and timestamp.
            freq: ``"D"`` or ``"h"``.
            fill: How to treat missing timestamps and NaN y: ``"zero"`` (default; for count and
                credit data a missing step means no usage), ``"interpolate"`` (linear), or None
                (raise if anything is missing).
            id_col: Series id column.
            time_col: Timestamp column.
            target_col: Value column.

        Returns:
            The panel.

        Raises:
            ForecastInputError: If the frame breaks the contract; the message says how to fix it.
        """
        freq = check_freq(freq)
        if fill not in FILL_OPTIONS:
            raise ForecastInputError(f"fill must be 'zero', 'interpolate' or None, got {fill!r}.")
        cols = f"{id_col}, {time_col}, {target_col}"
        if not isinstance(df, pd.DataFrame):
            raise ForecastInputError(f"Expected a pandas DataFrame with columns {cols}; got {type(df).__name__}.")
        for col, kw in ((id_col, "id_col"), (time_col, "time_col"), (target_col, "target_col")):
            if col not in df.columns:
                raise ForecastInputError(
                    f"Column '{col}' is missing. The input needs columns {cols}; rename yours or pass {kw}=... "
                    f"(found: {', '.join(map(str, df.columns[:10]))})."
                )
        if df.empty:
            raise ForecastInputError(f"The input has no rows. It needs columns {cols} and a row per series and step.")
        if df[id_col].isna().any():
            raise ForecastInputError(
                f"Column '{id_col}' has {int(df[id_col].isna().sum())} missing values; drop or label those rows."
            )
        ds, tz = _to_timestamps(df[time_col], time_col)
        y = _to_float(df[target_col], target_col)
        step = _STEP[freq]
        off_grid = ds != ds.astype(f"datetime64[{freq}]").astype("datetime64[ns]")
        if off_grid.any():
            unit = "day" if freq == "D" else "hour"
            raise ForecastInputError(
                f"Column '{time_col}' has {int(off_grid.sum())} timestamps that are not whole {unit}s, "
                f"e.g. {pd.Timestamp(ds[off_grid][0])}. Aggregate to {unit}s first, e.g. "
                f"df.groupby(['{id_col}', df['{time_col}'].dt.floor('{freq}')])['{target_col}'].sum()."
            )
        if freq == "h" and len(ds) > 1 and (ds == ds.astype("datetime64[D]").astype("datetime64[ns]")).all():
            raise ForecastInputError(
                f"All timestamps in '{time_col}' are at midnight, which looks like daily data; pass freq='D'."
            )
        codes, uniques = pd.factorize(df[id_col], sort=True)
        order = np.lexsort((ds, codes))
        codes, ds, y = codes[order], ds[order], y[order]
        dup = (codes[1:] == codes[:-1]) & (ds[1:] == ds[:-1])
        if dup.any():
            k = int(np.flatnonzero(dup)[0])
            raise ForecastInputError(
                f"Duplicate ({id_col}, {time_col}) rows: {int(dup.sum())} found, e.g. "
                f"({uniques[codes[k]]!r}, {_format_time(ds[k], freq)}). Aggregate them first, e.g. "
                f"df.groupby(['{id_col}', '{time_col}'], as_index=False)['{target_col}'].sum()."
            )
        first = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        last = np.r_[first[1:], codes.size] - 1
        start = ds[first]
        pos = ((ds - start[codes]) // step).astype(np.int64)
        indptr = np.r_[0, np.cumsum(pos[last] + 1)].astype(np.int64)
        full = np.full(indptr[-1], np.nan)
        full[indptr[codes] + pos] = y
        ids = np.asarray(uniques.to_numpy())
        full = _fill_missing(full, indptr, ids, fill, freq)
        return cls(ids, full, indptr, start, freq, id_col, time_col, tz)

    @property
    def n_series(self) -> int:
        return self.ids.size

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def season_length(self) -> int:
        return SEASON_LENGTH[self.freq]

    @property
    def step(self) -> np.timedelta64:
        return _STEP[self.freq]

    @property
    def end(self) -> np.ndarray:
        """Last timestamp of each series."""
        return self.start + (self.lengths - 1) * self.step

    @property
    def end_index(self) -> np.ndarray:
        """Last timestamp of each series as whole steps since 1970-01-01."""
        return self.end.astype(f"datetime64[{self.freq}]").astype(np.int64)

    @property
    def nonneg(self) -> np.ndarray:
        """Whether each series has only non-negative values."""
        return np.minimum.reduceat(self.y, self.indptr[:-1]) >= 0

    @property
    def constant(self) -> np.ndarray:
        """Whether each series holds a single repeated value."""
        starts = self.indptr[:-1]
        return np.maximum.reduceat(self.y, starts) == np.minimum.reduceat(self.y, starts)

    def values(self, i: int) -> np.ndarray:
        """Values of series ``i``."""
        return self.y[self.indptr[i] : self.indptr[i + 1]]

    def head(self, idx: np.ndarray, keep: np.ndarray) -> Panel:
        """Series ``idx`` (positions), each cut to its first ``keep`` values."""
        pos = np.repeat(self.indptr[idx], keep) + _ragged_arange(keep)
        return Panel(
            self.ids[idx], self.y[pos], np.r_[0, np.cumsum(keep)].astype(np.int64), self.start[idx],
            self.freq, self.id_col, self.time_col, self.tz,
        )  # fmt: skip

    def take(self, idx: np.ndarray) -> Panel:
        """Subset of series by position."""
        idx = np.asarray(idx, dtype=np.int64)
        return self.head(idx, self.lengths[idx])

    def drop_last(self, k: int) -> tuple[Panel, np.ndarray]:
        """Drop the last ``k`` values of each series; series left empty are removed.

        Returns:
            The shorter panel and the positions (in this panel) of the series it keeps.
        """
        keep = self.lengths - k
        idx = np.flatnonzero(keep > 0)
        return self.head(idx, keep[idx]), idx

    def padded(self, width: int) -> np.ndarray:
        """The last ``width`` values of each series as a right-aligned 2-D array, NaN-padded on the left."""
        n_keep = np.minimum(self.lengths, width)
        offsets = _ragged_arange(n_keep)
        rows = np.repeat(np.arange(self.n_series), n_keep)
        out = np.full((self.n_series, width), np.nan)
        out[rows, width - n_keep[rows] + offsets] = self.y[self.indptr[1:][rows] - n_keep[rows] + offsets]
        return out

    def future_timestamps(self, h: int) -> np.ndarray:
        """The ``h`` timestamps after each series' own end, as an (n_series, h) array."""
        return self.end[:, None] + self.step * np.arange(1, h + 1)

    def datetime_index(self, ds: np.ndarray) -> pd.DatetimeIndex:
        """Naive timestamps as an index in the input's time zone."""
        index = pd.DatetimeIndex(ds.ravel())
        if self.tz is not None:
            index = index.tz_localize(self.tz, ambiguous=False, nonexistent="shift_forward")
        return index

    def forecast_frame(self, mean: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> pd.DataFrame:
        """Long output frame from (n_series, h) arrays."""
        h = mean.shape[1]
        return pd.DataFrame(
            {
                self.id_col: np.repeat(self.ids, h),
                self.time_col: self.datetime_index(self.future_timestamps(h)),
                "yhat": mean.ravel(),
                "yhat_lower": lower.ravel(),
                "yhat_upper": upper.ravel(),
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """The panel as a long ``(id_col, time_col, y)`` frame (gaps filled)."""
        offsets = _ragged_arange(self.lengths)
        ds = np.repeat(self.start, self.lengths) + offsets * self.step
        return pd.DataFrame(
            {self.id_col: np.repeat(self.ids, self.lengths), self.time_col: self.datetime_index(ds), "y": self.y}
        )


# --------------------------------------------------------------------------- simple methods


def mase_scale(panel: Panel, max_seasons: int = 52) -> np.ndarray:
    """Per-series noise scale: in-sample seasonal-naive MAE over the last ``max_seasons`` seasons.

    Falls back to the mean absolute value when seasonal differences are all zero or unavailable,
    and is 0 only for all-zero series.
    """
    m = panel.season_length
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are handled below
        hist = panel.padded(min(int(panel.lengths.max()), (max_seasons + 1) * m))
        scale = np.full(len(hist), np.nan)
        if hist.shape[1] > m:
            scale = np.nanmean(np.abs(hist[:, m:] - hist[:, :-m]), axis=1)
        level = np.nanmean(np.abs(hist), axis=1)
    return np.where(np.isfinite(scale) & (scale > 0), scale, level)


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


# --------------------------------------------------------------------------- base classes


class BaseForecaster:
    """Shared fit/predict flow: validation, short-series and error fallbacks, clipping.

    Subclasses implement ``_fit(panel)``, ``_predict(h, levels)`` and optionally
    ``_forward(panel)`` (condition on new history without re-estimating parameters).
    ``_predict`` returns ``(mean, {level: (lower, upper)})`` as (n_series, h) arrays for the
    series given to ``_fit``; a row of NaN marks a series that failed.

    Attributes:
        name: Column name of this model in backtests (``alias`` or the class default).
        fallbacks: Series forecast by a simpler method in the last fit, with the reason.
    """

    _default_name = "Base"
    min_seasons = 2

    def __init__(self, *, alias: str | None = None, fill: str | None = "zero"):
        if fill not in FILL_OPTIONS:
            raise ForecastInputError(f"fill must be 'zero', 'interpolate' or None, got {fill!r}.")
        self.alias = alias
        self.fill = fill
        self.name = alias or self._default_name
        self.fallbacks: list[Fallback] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, scikit-learn style."""
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in params if k != "self"}

    def clone(self) -> BaseForecaster:
        """An unfitted copy with the same constructor arguments (nested forecasters are cloned too)."""

        def copy(value: Any) -> Any:
            if isinstance(value, BaseForecaster):
                return value.clone()
            if isinstance(value, (list, tuple)) and any(isinstance(v, BaseForecaster) for v in value):
                return type(value)(copy(v) for v in value)
            return value

        return type(self)(**{k: copy(v) for k, v in self.get_params().items()})

    def fit(
        self,
        df: pd.DataFrame,
        freq: str = "D",
        *,
        id_col: str = "unique_id",
        time_col: str = "ds",
        target_col: str = "y",
    ) -> BaseForecaster:
        """Fit on a long frame.

        Args:
            df: Long frame ``(unique_id, ds, y)``; series may have different lengths and end dates.
            freq: ``"D"`` (daily) or ``"h"`` (hourly).
            id_col: Series id column.
            time_col: Timestamp column.
            target_col: Value column.

        Returns:
            self.

        Raises:
            ForecastInputError: If the frame breaks the input contract.
        """
        return self._fit_panel(Panel.from_frame(df, freq, self.fill, id_col, time_col, target_col))

    def predict(self, h: int, level: int = 95) -> pd.DataFrame:
        """Forecast ``h`` steps after each series' own last timestamp.

        Args:
            h: Number of steps.
            level: Confidence of the interval, in percent.

        Returns:
            Frame ``(unique_id, ds, yhat, yhat_lower, yhat_upper)`` with ``n_series * h`` rows.
        """
        level = check_level(level)
        mean, bands = self.predict_arrays(h, [level])
        return self.panel_.forecast_frame(mean, *bands[level])

    # ----------------------------------------------------------------- internals

    def _fit_panel(self, panel: Panel, forward: bool = False) -> BaseForecaster:
        """Fit on a validated panel, or with ``forward`` condition the fitted parameters on it."""
        self.panel_ = panel
        self.fallbacks = []
        self._errors: dict[int, str] = {}
        self._n_logged = 0
        min_len = self.min_seasons * panel.season_length
        short = panel.lengths < min_len
        constant = panel.constant & ~short
        self._simple = short | constant
        for mask, reason in ((short, f"short history (< {min_len} points)"), (constant, "constant history")):
            for i in np.flatnonzero(mask):
                self.fallbacks.append(Fallback(panel.ids[i], self.name, reason, "WindowAverage"))
            if mask.any():
                logger.info("%s: %d series with %s use WindowAverage", self.name, int(mask.sum()), reason)
        self._model_idx = np.flatnonzero(~self._simple)
        self._sub = panel.take(self._model_idx)
        if self._model_idx.size:
            try:
                if forward and getattr(self, "_fitted", False):
                    self._forward(self._sub)
                else:
                    self._fit(self._sub)
                    self._fitted = True
            except Exception as exc:  # noqa: BLE001 - a failing member falls back, it must not stop the run
                self._fail_all(exc)
        self._log_errors()
        return self

    def _fit(self, panel: Panel) -> None:
        raise NotImplementedError

    def _forward(self, panel: Panel) -> None:
        self._fit(panel)

    def _predict(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def predict_arrays(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        """Forecast as arrays: ``(mean, {level: (lower, upper)})``, each (n_series, h), rows in panel order.

        Used by backtests and the ensemble to get several levels from one pass.
        """
        if not hasattr(self, "panel_"):
            raise ForecastInputError(f"{self.name} is not fitted yet; call fit(df, freq) before predict.")
        h = check_horizon(h)
        levels = [check_level(lv) for lv in levels]
        panel = self.panel_
        mean = np.full((panel.n_series, h), np.nan)
        bands = {lv: (mean.copy(), mean.copy()) for lv in levels}
        idx = self._model_idx
        if idx.size and len(self._errors) < idx.size:
            try:
                sub_mean, sub_bands = self._predict(h, levels)
                mean[idx] = sub_mean
                for lv in levels:
                    bands[lv][0][idx], bands[lv][1][idx] = sub_bands[lv]
            except Exception as exc:  # noqa: BLE001
                self._fail_all(exc)
        bad = ~np.isfinite(mean).all(axis=1) & ~self._simple
        for i in np.flatnonzero(bad):
            if i not in self._errors:
                self._record_error(i, "non-finite forecast")
        self._log_errors()
        for rows, method in ((np.flatnonzero(self._simple), window_average), (np.flatnonzero(bad), seasonal_naive)):
            if rows.size:
                fb_mean, fb_bands = method(panel.take(rows), h, levels)
                mean[rows] = fb_mean
                for lv in levels:
                    bands[lv][0][rows], bands[lv][1][rows] = fb_bands[lv]
        return finalise(panel, mean, bands)

    def _record_error(self, i: int, message: str) -> None:
        """Record that series ``i`` (position in ``panel_``) failed; it gets the seasonal naive forecast."""
        self._errors[int(i)] = message
        self.fallbacks.append(Fallback(self.panel_.ids[i], self.name, message, "SeasonalNaive"))

    def _record_sub_error(self, j: int, message: str) -> None:
        """Like ``_record_error`` for position ``j`` in the panel given to ``_fit``."""
        if int(self._model_idx[j]) not in self._errors:
            self._record_error(self._model_idx[j], message)

    def _fail_all(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        for j in range(self._model_idx.size):
            self._record_sub_error(j, message)

    def _log_errors(self) -> None:
        errors = [fb for fb in self.fallbacks if fb.used == "SeasonalNaive"]
        new = errors[self._n_logged :]
        for fb in new[:_LOG_EXAMPLES]:
            logger.warning(
                "%s failed on series %r (%s); using SeasonalNaive for it", self.name, fb.unique_id, fb.reason
            )
        if len(new) > _LOG_EXAMPLES:
            logger.warning("%s failed on %d more series; see .fallbacks", self.name, len(new) - _LOG_EXAMPLES)
        self._n_logged = len(errors)


class SeasonalNaive(BaseForecaster):
    """Repeat the last season (7 days for daily data, 24 hours for hourly): the baseline to beat.

    Args:
        alias: Column name in backtests (default ``"SeasonalNaive"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "SeasonalNaive"

    def __init__(self, *, alias: str | None = None, fill: str | None = "zero"):
        super().__init__(alias=alias, fill=fill)

    def _fit(self, panel: Panel) -> None:
        self._history = panel

    def _predict(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        return seasonal_naive(self._history, h, levels)


def _run_chunk(model: Any, method: str, items: list[tuple]) -> list[tuple[bool, Any]]:
    """Call ``model.<method>(*item)`` for each item; return ``(ok, result or error message)`` pairs."""
    func = getattr(model, method)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-series convergence warnings are noise at this scale
        for item in items:
            try:
                out.append((True, func(*item)))
            except Exception as exc:  # noqa: BLE001 - reported per series, the series falls back
                out.append((False, f"{type(exc).__name__}: {exc}"))
    return out


class PerSeriesForecaster(BaseForecaster):
    """A local model fitted series by series, optionally over ``n_jobs`` forked processes.

    Subclasses implement ``_fit_one(y, start, freq) -> state``,
    ``_predict_one(state, h, levels) -> (mean, {level: (lower, upper)})`` and optionally
    ``_forward_one(state, y, start, freq) -> state`` (set ``_forward_in_process`` when it is cheap
    enough to run without workers).

    Args:
        max_history: Seasons of history used per series (None: all). Caps the cost per series.
        n_jobs: Worker processes.
        alias: Column name in backtests.
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _forward_in_process = False

    def __init__(
        self,
        *,
        max_history: int | None = None,
        n_jobs: int = 1,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(alias=alias, fill=fill)
        self.max_history = max_history
        self.n_jobs = n_jobs

    def _forward_one(self, state: Any, y: np.ndarray, start: pd.Timestamp, freq: str) -> Any:
        return self._fit_one(y, start, freq)

    def _condition_one(self, state: Any, y: np.ndarray, start: pd.Timestamp, freq: str) -> Any:
        return self._fit_one(y, start, freq) if state is None else self._forward_one(state, y, start, freq)

    def _histories(self, panel: Panel) -> list[tuple[np.ndarray, pd.Timestamp, str]]:
        cap = None if self.max_history is None else self.max_history * panel.season_length
        items = []
        for i in range(panel.n_series):
            y = panel.values(i)
            if cap is not None and y.size > cap:
                y = y[-cap:]
            items.append((y, pd.Timestamp(panel.end[i] - (y.size - 1) * panel.step), panel.freq))
        return items

    def _map(self, method: str, items: list[tuple]) -> list[tuple[bool, Any]]:
        n_jobs = max(1, int(self.n_jobs))
        can_fork = "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon
        if n_jobs == 1 or len(items) < 8 * n_jobs or not can_fork:  # daemonic workers may not have children
            return _run_chunk(self, method, items)
        bounds = np.linspace(0, len(items), 4 * n_jobs + 1).astype(int)
        chunks = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        # fork: workers inherit imports and compiled code; send a blank clone, not the fitted state
        with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            parts = pool.map(_run_chunk, repeat(self.clone()), repeat(method), chunks)
            return [r for part in parts for r in part]

    def _store(self, panel: Panel, results: list[tuple[bool, Any]]) -> None:
        for j, (ok, value) in enumerate(results):
            if ok:
                self._states[panel.ids[j]] = value
            else:
                self._states.pop(panel.ids[j], None)
                self._record_sub_error(j, value)

    def _fit(self, panel: Panel) -> None:
        self._states: dict[Any, Any] = {}
        self._store(panel, self._map("_fit_one", self._histories(panel)))

    def _forward(self, panel: Panel) -> None:
        items = [(self._states.get(uid), *hist) for uid, hist in zip(panel.ids, self._histories(panel))]
        if not self._forward_in_process:
            self._store(panel, self._map("_condition_one", items))
            return
        # cheap forwards run here; only series without a fitted state go to the workers
        new = [j for j, item in enumerate(items) if item[0] is None]
        known = [j for j, item in enumerate(items) if item[0] is not None]
        results = dict(zip(new, self._map("_fit_one", [items[j][1:] for j in new])))
        results.update(zip(known, _run_chunk(self, "_forward_one", [items[j] for j in known])))
        self._store(panel, [results[j] for j in range(len(items))])

    def _predict(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        panel = self._sub
        mean = np.full((panel.n_series, h), np.nan)
        bands = {lv: (mean.copy(), mean.copy()) for lv in levels}
        todo = [j for j, uid in enumerate(panel.ids) if uid in self._states]
        results = self._map("_predict_one", [(self._states[panel.ids[j]], h, levels) for j in todo])
        for j, (ok, value) in zip(todo, results):
            if not ok:
                self._record_sub_error(j, value)
                continue
            mean[j], series_bands = value
            for lv in levels:
                bands[lv][0][j], bands[lv][1][j] = series_bands[lv]
        return mean, bands
