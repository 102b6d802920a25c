"""Local statistical members: ETS, ARIMA, Theta (statsforecast) and Prophet, fitted series by series."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .base import PerSeriesForecaster
from .checks import SEASON_LENGTH, ForecastInputError, check_holiday_country


class _StatsForecastMember(PerSeriesForecaster):
    """A statsforecast model per series; ``forward`` re-filters new history with the fitted parameters."""

    _forward_in_process = True  # forwarding only stores the new history; the filtering runs in predict

    def _make_model(self, season_length: int) -> Any:
        raise NotImplementedError

    def _fit_one(self, y: np.ndarray, start: pd.Timestamp, freq: str) -> tuple[Any, None]:
        return self._make_model(SEASON_LENGTH[freq]).fit(y), None

    def _forward_one(self, state: tuple, y: np.ndarray, start: pd.Timestamp, freq: str) -> tuple[Any, np.ndarray]:
        return state[0], y

    def _predict_one(self, state: tuple, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        model, y_new = state
        out = model.predict(h, level=list(levels)) if y_new is None else model.forward(y_new, h, level=list(levels))
        return np.asarray(out["mean"], float), {
            lv: (np.asarray(out[f"lo-{lv}"], float), np.asarray(out[f"hi-{lv}"], float)) for lv in levels
        }


class ETS(_StatsForecastMember):
    """Exponential smoothing (statsforecast AutoETS) with a weekly (daily data) or daily (hourly data) season.

    The default ``model="ZNA"`` lets AICc pick additive or multiplicative errors with an additive
    season and no trend: about 10x cheaper than the full ``"ZZZ"`` search (13 vs 150-300 ms per
    series of one year here), which is what lets it run on thousands of series.

    Args:
        model: AutoETS model string (error, trend, season), e.g. ``"ZZZ"`` for the full search.
        max_history: Seasons of history used per series (52 = one year for daily data).
        n_jobs: Worker processes.
        alias: Column name in backtests (default ``"ETS"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "ETS"

    def __init__(
        self,
        *,
        model: str = "ZNA",
        max_history: int | None = 52,
        n_jobs: int = 1,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(max_history=max_history, n_jobs=n_jobs, alias=alias, fill=fill)
        self.model = model

    def _make_model(self, season_length: int) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season_length, model=self.model)


class ARIMA(_StatsForecastMember):
    """Seasonal ARIMA (statsforecast), fixed order ``(1,0,0)(0,1,1)`` by default.

    Why fixed: AutoARIMA costs 1.6-3.3 s per daily series here with its default search and still
    0.2-0.6 s with a limited one, versus about 40 ms for one fixed model, so only a fixed order
    scales to thousands of series times backtest windows. The default is a seasonal random walk
    with a seasonal MA(1) (a smoothed weekly profile) and an AR(1) term for short-term persistence.
    Fitting uses CSS-ML: plain CSS in statsforecast 2.1 returns zero forecasts for differenced
    models. ``auto=True`` switches to an AutoARIMA with a small stepwise search, for a few series.

    Args:
        order: Non-seasonal (p, d, q).
        seasonal_order: Seasonal (P, D, Q).
        auto: Use AutoARIMA (max p, q = 2; max P, Q = 1; at most 20 models) instead of the fixed order.
        max_history: Seasons of history used per series (26 = half a year for daily data).
        n_jobs: Worker processes.
        alias: Column name in backtests (default ``"ARIMA"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "ARIMA"

    def __init__(
        self,
        *,
        order: tuple[int, int, int] = (1, 0, 0),
        seasonal_order: tuple[int, int, int] = (0, 1, 1),
        auto: bool = False,
        max_history: int | None = 26,
        n_jobs: int = 1,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(max_history=max_history, n_jobs=n_jobs, alias=alias, fill=fill)
        self.order = tuple(order)
        self.seasonal_order = tuple(seasonal_order)
        self.auto = auto

    def _make_model(self, season_length: int) -> Any:
        from statsforecast.models import ARIMA as SFArima
        from statsforecast.models import AutoARIMA

        if self.auto:
            return AutoARIMA(
                season_length=season_length, max_p=2, max_q=2, max_P=1, max_Q=1, nmodels=20, approximation=True
            )
        return SFArima(order=self.order, season_length=season_length, seasonal_order=self.seasonal_order)


class Theta(_StatsForecastMember):
    """Dynamic optimised Theta (statsforecast ``DynamicOptimizedTheta``) on seasonally adjusted data.

    Theta methods won M3 and stayed among the strongest simple methods in M4; a different model
    family from ETS and ARIMA, so it adds diversity to the ensemble at about ETS's cost.

    Args:
        max_history: Seasons of history used per series (52 = one year for daily data).
        n_jobs: Worker processes.
        alias: Column name in backtests (default ``"Theta"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "Theta"

    def __init__(
        self,
        *,
        max_history: int | None = 52,
        n_jobs: int = 1,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(max_history=max_history, n_jobs=n_jobs, alias=alias, fill=fill)

    def _make_model(self, season_length: int) -> Any:
        from statsforecast.models import DynamicOptimizedTheta

        return DynamicOptimizedTheta(season_length=season_length)


def _import_prophet() -> Any:
    """Import Prophet lazily (about 1 s) and silence its and cmdstanpy's INFO chatter."""
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "plotly failed": plots are not used
    from cmdstanpy.utils import get_logger
    from prophet import Prophet as ProphetModel

    get_logger().setLevel(logging.ERROR)
    logging.getLogger("prophet").setLevel(logging.ERROR)
    return ProphetModel


class Prophet(PerSeriesForecaster):
    """Prophet per series: weekly seasonality, yearly only with at least a year of history,
    daily seasonality for hourly data, and the country's public holidays.

    About 0.15-0.5 s per series, so it is optional in the ensemble. Forecast samples are drawn with
    a fixed seed (Prophet uses NumPy's global generator, which this reseeds per series).

    Args:
        country: ISO country code for holidays (``holidays`` package), or None for none.
        uncertainty_samples: Posterior predictive samples for the intervals.
        seed: Seed for the samples.
        max_history: Seasons of history used per series (None: all).
        n_jobs: Worker processes.
        alias: Column name in backtests (default ``"Prophet"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "Prophet"

    def __init__(
        self,
        *,
        country: str | None = "US",
        uncertainty_samples: int = 300,
        seed: int = 0,
        max_history: int | None = None,
        n_jobs: int = 1,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(max_history=max_history, n_jobs=n_jobs, alias=alias, fill=fill)
        check_holiday_country(country)
        if uncertainty_samples < 1:
            raise ForecastInputError("uncertainty_samples must be at least 1; Prophet draws the intervals from them.")
        self.country = country
        self.uncertainty_samples = uncertainty_samples
        self.seed = seed

    def _fit_one(self, y: np.ndarray, start: pd.Timestamp, freq: str) -> tuple[Any, str]:
        model_cls = _import_prophet()
        ds = pd.date_range(start, periods=y.size, freq=freq)
        model = model_cls(
            weekly_seasonality=True,
            yearly_seasonality=bool(ds[-1] - ds[0] >= pd.Timedelta(days=365)),
            daily_seasonality=freq == "h",
            uncertainty_samples=self.uncertainty_samples,
        )
        if self.country:
            model.add_country_holidays(country_name=self.country)
        return model.fit(pd.DataFrame({"ds": ds, "y": y})), freq

    def _predict_one(self, state: tuple, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        model, freq = state
        future = pd.DataFrame({"ds": pd.date_range(model.history_dates.max(), periods=h + 1, freq=freq)[1:]})
        np.random.seed(self.seed)
        samples = model.predictive_samples(future)["yhat"]  # (h, uncertainty_samples)
        samples_setting, model.uncertainty_samples = model.uncertainty_samples, 0
        try:
            mean = model.predict(future)["yhat"].to_numpy()
        finally:
            model.uncertainty_samples = samples_setting
        return mean, {
            lv: (np.quantile(samples, 0.5 - lv / 200, axis=1), np.quantile(samples, 0.5 + lv / 200, axis=1))
            for lv in levels
        }
