"""The forecaster interface and the shared fit/predict machinery.

Every forecaster takes a long frame ``(unique_id, ds, y)`` and returns
``(unique_id, ds, yhat, yhat_lower, yhat_upper)``. Internally the frame becomes a
:class:`~models.forecasting.panel.Panel`: one regular, gap-free float array per series, stored back to back.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from .baselines import finalise, seasonal_naive, window_average
from .checks import FILL_OPTIONS, ForecastInputError, check_horizon, check_level
from .panel import Panel
from .parallel import parallel_map, run_chunk

logger = logging.getLogger(__name__)

_LOG_EXAMPLES = 5


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

    def fitted_specs(self) -> dict[Any, str]:
        """Per series id, the model specification the last fit chose by search (e.g. an AutoETS model string),
        for members that search one; empty for the others. :meth:`set_specs` fits them again without the search."""
        return {}

    def set_specs(self, specs: dict[Any, str] | None) -> BaseForecaster:
        """Fit these series' specifications (from :meth:`fitted_specs`) instead of searching; a no-op for
        members without a search. Series not in ``specs``, or whose spec fails on the new history, search."""
        return self

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
    specs: dict[str, str] | None = None  # set_specs: per series id, a specification to fit without searching

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
                # drop whole seasons only: a state fitted on one window and forwarded on a later one (refit=False)
                # then sees its first observation in the same seasonal position (else ETS's stored initial season
                # is applied shifted, e.g. a weekly profile moved by the days between the two ends)
                y = y[(y.size - cap) // panel.season_length * panel.season_length:]
            items.append((y, pd.Timestamp(panel.end[i] - (y.size - 1) * panel.step), panel.freq))
        return items

    def _map(self, method: str, items: list[tuple]) -> list[tuple[bool, Any]]:
        return parallel_map(self, method, items, self.n_jobs)

    def _store(self, panel: Panel, results: list[tuple[bool, Any]]) -> None:
        for j, (ok, value) in enumerate(results):
            if ok:
                self._states[panel.ids[j]] = value
            else:
                self._states.pop(panel.ids[j], None)
                self._record_sub_error(j, value)

    def _spec_one(self, state: Any) -> str | None:
        """The specification a fitted state's search chose (None: this member does not search)."""
        return None

    def _fit_spec_one(self, y: np.ndarray, start: pd.Timestamp, freq: str, spec: str) -> Any:
        """Fit the given specification without searching (members that search override this)."""
        return self._fit_one(y, start, freq)

    def _fit_with_spec(self, y: np.ndarray, start: pd.Timestamp, freq: str, spec: str | None) -> Any:
        if spec is None:
            return self._fit_one(y, start, freq)
        try:
            return self._fit_spec_one(y, start, freq, spec)
        except Exception:  # noqa: BLE001 - e.g. multiplicative errors on a history that now has zeros: search
            return self._fit_one(y, start, freq)

    def fitted_specs(self) -> dict[Any, str]:
        out = {}
        for uid, state in getattr(self, "_states", {}).items():
            spec = self._spec_one(state)
            if spec is not None:
                out[uid] = spec
        return out

    def set_specs(self, specs: dict[Any, str] | None) -> PerSeriesForecaster:
        self.specs = {str(k): str(v) for k, v in specs.items()} if specs else None
        return self

    def _fit(self, panel: Panel) -> None:
        self._states: dict[Any, Any] = {}
        items = self._histories(panel)
        if not self.specs:
            self._store(panel, self._map("_fit_one", items))
            return
        # the specification goes with each item: workers get a blank clone, without ``specs``
        with_specs = [(*item, self.specs.get(str(uid))) for uid, item in zip(panel.ids, items)]
        self._store(panel, self._map("_fit_with_spec", with_specs))

    def _forward(self, panel: Panel) -> None:
        items = [(self._states.get(uid), *hist) for uid, hist in zip(panel.ids, self._histories(panel))]
        if not self._forward_in_process:
            self._store(panel, self._map("_condition_one", items))
            return
        # cheap forwards run here; only series without a fitted state go to the workers
        new = [j for j, item in enumerate(items) if item[0] is None]
        known = [j for j, item in enumerate(items) if item[0] is not None]
        results = dict(zip(new, self._map("_fit_one", [items[j][1:] for j in new])))
        results.update(zip(known, run_chunk(self, "_forward_one", [items[j] for j in known])))
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
