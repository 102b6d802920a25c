"""Input checks shared by every forecaster: frequency, horizon, level, holiday country, and the
conversion of timestamp and value columns."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

SEASON_LENGTH = {"D": 7, "h": 24}
"""Season length used by every member: weekly for daily data, daily for hourly data."""

FILL_OPTIONS = ("zero", "interpolate", None)
_FREQ_ALIASES = {"D": "D", "d": "D", "1D": "D", "h": "h", "H": "h", "1h": "h", "1H": "h"}


class ForecastInputError(ValueError):
    """The input frame or a forecasting argument is unusable; the message says how to fix it."""


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


def to_timestamps(col: pd.Series, name: str) -> tuple[np.ndarray, Any]:
    """Column ``name`` as naive ``datetime64[ns]`` values and its time zone, or raise ForecastInputError."""
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


def to_float(col: pd.Series, name: str) -> np.ndarray:
    """Column ``name`` as float64 (NaN for missing), or raise ForecastInputError."""
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
