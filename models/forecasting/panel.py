"""The internal panel layout: one regular, gap-free float array per series, stored back to back."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .checks import (
    FILL_OPTIONS,
    SEASON_LENGTH,
    ForecastInputError,
    check_freq,
    to_float,
    to_timestamps,
)

_STEP = {"D": np.timedelta64(1, "D"), "h": np.timedelta64(1, "h")}


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
        ds, tz = to_timestamps(df[time_col], time_col)
        y = to_float(df[target_col], target_col)
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
