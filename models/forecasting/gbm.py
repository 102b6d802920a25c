"""GlobalGBM: one XGBoost model for all series (M5 style), forecasting recursively."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import BaseForecaster
from .checks import SEASON_LENGTH, check_holiday_country, holiday_days, z_value
from .panel import Panel


@dataclass(frozen=True)
class _Spec:
    lags: tuple[int, ...]
    windows: tuple[int, ...]  # rolling mean/std windows; the last one is also the scale window
    season_lags: tuple[int, ...]

    @property
    def context(self) -> int:
        return max(max(self.lags), max(self.windows))

    def feature_names(self, freq: str) -> list[str]:
        """Column names of the feature matrix, in ``GlobalGBM._features`` order."""
        names = [f"lag_{lag}" for lag in self.lags]
        for w in self.windows:
            names += [f"rolling_mean_{w}", f"rolling_std_{w}"]
        names += [f"zero_share_{self.windows[-1]}", "same_season_mean", "log_scale",
                  "day_of_week", "day_of_month", "month", "holiday"]
        return names + (["hour"] if freq == "h" else [])


_SPECS = {
    "D": _Spec(lags=(*range(1, 8), 14, 21, 28), windows=(7, 28), season_lags=(7, 14, 21, 28)),
    "h": _Spec(lags=(*range(1, 25), 48, 72, 96, 168), windows=(24, 168), season_lags=(24, 48, 72, 96)),
}


def _left_cumsum(a: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 1 with a leading zero column."""
    out = np.zeros((a.shape[0], a.shape[1] + 1))
    np.cumsum(a, axis=1, out=out[:, 1:])
    return out


class GlobalGBM(BaseForecaster):
    """One gradient-boosted tree model trained on all series at once, forecasting recursively.

    Each series is divided by its recent mean absolute level (the last 28 days or 168 hours), so
    one model serves series of very different sizes. Features: lags (1-7, 14, 21, 28 for daily
    data; 1-24, 48, 72, 96, 168 for hourly), rolling mean and standard deviation (7 and 28 days;
    24 and 168 hours), the same-season mean, the share of zeros, the log scale, and calendar
    features (day of week, day of month, month, public holiday, hour for hourly data). Lags a
    short series does not have yet are missing values, which XGBoost handles. Forecasts feed back
    as lags, step by step, so any horizon works (e.g. 365 days).

    Raw intervals are ``z * sigma * sqrt(1 + seasons ahead)`` with ``sigma`` the series' in-sample
    one-step residual spread; they are optimistic, so calibrate them with conformal intervals.

    Args:
        n_estimators: Boosting rounds.
        learning_rate: Shrinkage per round.
        max_depth: Tree depth.
        train_seasons: Seasons of recent history per series used as training targets (52 = a year).
        max_train_rows: Cap on training rows; a seeded random sample is drawn above it.
        country: ISO country code for the holiday feature, or None.
        n_jobs: XGBoost threads.
        seed: Seed for row sampling and XGBoost.
        alias: Column name in backtests (default ``"GlobalGBM"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "GlobalGBM"

    def __init__(
        self,
        *,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 7,
        train_seasons: int = 52,
        max_train_rows: int = 500_000,
        country: str | None = "US",
        n_jobs: int = 1,
        seed: int = 0,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(alias=alias, fill=fill)
        check_holiday_country(country)
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.train_seasons = train_seasons
        self.max_train_rows = max_train_rows
        self.country = country
        self.n_jobs = n_jobs
        self.seed = seed

    # ----------------------------------------------------------------- features

    def _calendar(self, t: np.ndarray, freq: str) -> list[np.ndarray]:
        day = t // 24 if freq == "h" else t
        uniq, inv = np.unique(day, return_inverse=True)
        dates = pd.DatetimeIndex(uniq.astype("datetime64[D]"))
        holiday = np.zeros(uniq.size)
        if self.country:
            holiday = np.isin(uniq, holiday_days(self.country, int(dates.year.min()), int(dates.year.max())))
        cols = [(day + 3) % 7, dates.day.to_numpy()[inv], dates.month.to_numpy()[inv], holiday[inv]]
        if freq == "h":
            cols.append(t % 24)
        return cols

    def _features(self, z: np.ndarray, rows: np.ndarray, cols: np.ndarray, t: np.ndarray, freq: str) -> np.ndarray:
        """Feature matrix for targets ``z[rows, cols]`` from values strictly before them.

        Args:
            z: Normalised history, (n_series, width), NaN where a series has no value yet.
            rows: Series position of each target.
            cols: Column of each target in ``z``.
            t: Time index of each target (whole steps since 1970-01-01).
            freq: ``"D"`` or ``"h"``.
        """
        spec = _SPECS[freq]
        lags = {lag: np.where(cols >= lag, z[rows, np.maximum(cols - lag, 0)], np.nan) for lag in spec.lags}
        finite = np.isfinite(z)
        zf = np.where(finite, z, 0.0)
        s1, s2 = _left_cumsum(zf), _left_cumsum(zf * zf)
        count, zeros = _left_cumsum(finite), _left_cumsum(finite & (zf == 0))
        feats = list(lags.values())
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # empty windows give NaN features on purpose
            for w in spec.windows:
                lo = np.maximum(cols - w, 0)
                n = count[rows, cols] - count[rows, lo]
                mean = (s1[rows, cols] - s1[rows, lo]) / n
                var = (s2[rows, cols] - s2[rows, lo]) / n - mean**2
                feats += [mean, np.sqrt(np.maximum(var, 0.0))]
                if w == spec.windows[-1]:
                    feats.append((zeros[rows, cols] - zeros[rows, lo]) / n)  # share of zeros
            feats.append(np.nanmean(np.column_stack([lags[lag] for lag in spec.season_lags]), axis=1))
        feats.append(self._log_scale[rows])
        feats += self._calendar(t, freq)
        return np.column_stack(feats).astype(np.float32)

    def _normalise(self, panel: Panel, width: int) -> np.ndarray:
        """Right-aligned history of ``width`` steps divided by each series' recent level; sets the scale."""
        hist = panel.padded(width)
        recent = hist[:, -_SPECS[panel.freq].windows[-1] :]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scale = np.nanmean(np.abs(recent), axis=1)
            scale = np.where(scale > 0, scale, np.nanmean(np.abs(hist), axis=1))
        self._scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self._log_scale = np.log1p(self._scale)
        return hist / self._scale[:, None]

    # ----------------------------------------------------------------- fit / predict

    def _fit(self, panel: Panel) -> None:
        import xgboost as xgb

        spec = _SPECS[panel.freq]
        width = spec.context + self.train_seasons * panel.season_length
        z = self._normalise(panel, width)
        valid = np.isfinite(z)
        valid[:, 1:] &= valid[:, :-1].copy()
        valid[:, 0] = False
        rows, cols = np.nonzero(valid)
        if rows.size > self.max_train_rows:
            keep = np.sort(np.random.default_rng(self.seed).choice(rows.size, self.max_train_rows, replace=False))
            rows, cols = rows[keep], cols[keep]
        t = panel.end_index[rows] - (width - 1 - cols)
        features = self._features(z, rows, cols, t, panel.freq)
        data = xgb.QuantileDMatrix(features, z[rows, cols].astype(np.float32), nthread=self.n_jobs, max_bin=128)
        params = {
            "objective": "reg:squarederror",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": 20,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "tree_method": "hist",
            "max_bin": 128,
            "nthread": self.n_jobs,
            "seed": self.seed,
        }
        self._booster = xgb.train(params, data, num_boost_round=self.n_estimators)
        self._forward(panel)

    def feature_importance(self, kind: str = "total_gain") -> dict[str, float]:
        """Share of the trees' ``kind`` (an XGBoost importance type) per named feature; sums to 1.

        Raises:
            RuntimeError: If the model has not been fitted.
        """
        if not hasattr(self, "_booster"):
            raise RuntimeError("GlobalGBM is not fitted: call fit() before feature_importance().")
        names = _SPECS[self._freq].feature_names(self._freq)
        raw = self._booster.get_score(importance_type=kind)  # keys f0, f1, ...; unused features are absent
        values = np.array([raw.get(f"f{i}", 0.0) for i in range(len(names))])
        total = values.sum()
        return {n: float(v / total) if total > 0 else 0.0 for n, v in zip(names, values)}

    def _forward(self, panel: Panel) -> None:
        """Keep the trained trees; take the new history, scale and residual spread."""
        spec = _SPECS[panel.freq]
        context, window = spec.context, spec.windows[-1]
        z = self._normalise(panel, context + window)
        self._context = z[:, -context:]
        self._end_index = panel.end_index
        self._nonneg = panel.nonneg
        self._freq = panel.freq
        # one-step in-sample residuals over the last scale window give each series' spread
        rows, cols = np.nonzero(np.isfinite(z[:, context:]) & np.isfinite(z[:, context - 1 : -1]))
        cols = cols + context
        t = self._end_index[rows] - (z.shape[1] - 1 - cols)
        resid = z[rows, cols] - self._booster.inplace_predict(self._features(z, rows, cols, t, panel.freq))
        n = np.bincount(rows, minlength=panel.n_series)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = np.sqrt(np.bincount(rows, resid**2, minlength=panel.n_series) / n)
        self._sigma = np.where(np.isfinite(sigma), sigma, np.nanmedian(sigma) if np.isfinite(sigma).any() else 0.0)

    def _predict(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        context = self._context.shape[1]
        n = self._context.shape[0]
        buf = np.full((n, context + h), np.nan)
        buf[:, :context] = self._context
        rows, cols = np.arange(n), np.full(n, context)
        self._booster.set_param({"nthread": self.n_jobs})
        for k in range(h):
            x = self._features(buf[:, k : context + k + 1], rows, cols, self._end_index + 1 + k, self._freq)
            pred = self._booster.inplace_predict(x)
            buf[:, context + k] = np.where(self._nonneg, np.maximum(pred, 0.0), pred)
        mean = buf[:, context:] * self._scale[:, None]
        seasons_ahead = np.arange(h) // SEASON_LENGTH[self._freq]
        half = (self._sigma * self._scale)[:, None] * np.sqrt(seasons_ahead + 1)
        return mean, {lv: (mean - z_value(lv) * half, mean + z_value(lv) * half) for lv in levels}
