"""Local statistical members: ETS, damped-trend ETS, ARIMA, Theta, MSTL (statsforecast) and Prophet, fitted series
by series."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .base import PerSeriesForecaster
from .checks import SEASON_LENGTH, ForecastInputError, check_holiday_country
from .panel import Panel

logger = logging.getLogger(__name__)


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


def ets_spec(fitted: Any) -> str:
    """A fitted statsforecast AutoETS's chosen model as four letters: error, trend, season, ``D`` if damped
    (statsforecast's ``model_["components"]``, e.g. ``"ANAN"``)."""
    return str(fitted.model_["components"])


def ets_from_spec(spec: str, season_length: int = 1) -> Any:
    """An AutoETS that fits exactly the model ``spec`` (from :func:`ets_spec`): no search."""
    from statsforecast.models import AutoETS

    if len(spec) != 4 or "Z" in spec:
        raise ForecastInputError(f"An ETS specification is four letters without Z, e.g. 'ANAN'; got {spec!r}.")
    return AutoETS(season_length=season_length, model=spec[:3], damped=spec[3] == "D")


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

    def _spec_one(self, state: tuple) -> str | None:
        return ets_spec(state[0]) if "Z" in self.model else None  # a model string without Z has no search

    def _fit_spec_one(self, y: np.ndarray, start: pd.Timestamp, freq: str, spec: str) -> tuple[Any, None]:
        return ets_from_spec(spec, SEASON_LENGTH[freq]).fit(y), None


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

    def _spec_one(self, state: tuple) -> str | None:
        """With ``auto``: the chosen ``"p,d,q,P,D,Q,mean,drift"`` (statsforecast's ``model_["arma"]`` is
        (p, q, P, Q, m, d, D)); the fixed order has no search."""
        if not self.auto:
            return None
        p, q, P, Q, _, d, D = (int(v) for v in state[0].model_["arma"])
        coef = state[0].model_["coef"]
        return ",".join(map(str, (p, d, q, P, D, Q, int("intercept" in coef), int("drift" in coef))))

    def _fit_spec_one(self, y: np.ndarray, start: pd.Timestamp, freq: str, spec: str) -> tuple[Any, None]:
        from statsforecast.models import ARIMA as SFArima

        p, d, q, P, D, Q, mean, drift = (int(v) for v in spec.split(","))
        return SFArima(order=(p, d, q), seasonal_order=(P, D, Q), season_length=SEASON_LENGTH[freq],
                       include_mean=bool(mean), include_drift=bool(drift)).fit(y), None


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


class DampedETS(ETS):
    """Exponential smoothing with an additive damped trend (statsforecast AutoETS, ``damped=True``).

    For series that grow or shrink: a damped trend follows the recent slope and flattens it out over
    the horizon, where a linear trend (Holt) overshoots and the default no-trend ETS lags behind.
    The default ``model="AAA"`` is one model: additive errors, the damped additive trend and an
    additive weekly (daily data) or daily (hourly data) season. ``"ZAA"`` (AICc also tries
    multiplicative errors) costs twice as much and was no more accurate on the real series of
    ``bench/real_series.py`` (median MASE 1.088 vs 1.044 daily, 1.187 both hourly).

    Args:
        model: AutoETS model string; its trend letter must allow a trend (``"A"`` or ``"Z"``).
        max_history: Seasons of history used per series (52 = one year for daily data).
        n_jobs: Worker processes.
        alias: Column name in backtests (default ``"DampedETS"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "DampedETS"

    def __init__(
        self,
        *,
        model: str = "AAA",
        max_history: int | None = 52,
        n_jobs: int = 1,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        if len(model) != 3 or model[1] not in "AZ":
            raise ForecastInputError(f"DampedETS needs a trend: model[1] must be 'A' or 'Z', got {model!r}.")
        super().__init__(model=model, max_history=max_history, n_jobs=n_jobs, alias=alias, fill=fill)

    def _make_model(self, season_length: int) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season_length, model=self.model, damped=True)

    def _fit_spec_one(self, y: np.ndarray, start: pd.Timestamp, freq: str, spec: str) -> tuple[Any, None]:
        return ets_from_spec(spec[:3] + "D", SEASON_LENGTH[freq]).fit(y), None


MSTL_SEASONS = {"D": (7, 365), "h": (24, 168)}
"""Seasons of :class:`MSTL`: weekly and yearly for daily data, daily and weekly for hourly data."""


def _odd_at_least(x: float) -> int:
    n = int(np.ceil(x))
    return n if n % 2 else n + 1


def mstl_decompose(y: np.ndarray, seasons: Sequence[int], jumps: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """statsforecast's MSTL decomposition (``statsforecast.mstl.mstl``): STL per season, shortest first,
    iterated twice, seasonal windows 11, 15, ... and ``seasonal_deg=0``.

    With ``jumps`` the LOESS fits are evaluated every ``ceil(window / 10)`` points and interpolated in
    between, as R's ``stl`` does by default (statsmodels evaluates every point): for weekly + yearly
    seasons on three years of daily data that is 20 ms instead of 1.5 s per series, and the 30-day
    forecast of US births moves by 0.5%. Without ``jumps`` the result equals statsforecast's.

    Returns:
        The seasonal components (n_seasons, n) in the order of ``seasons`` (sorted), and the
        deseasonalised series (trend + remainder).
    """
    from statsmodels.tsa.seasonal import STL

    seasons = sorted(seasons)
    seas = np.zeros((len(seasons), y.size))
    deseas = np.asarray(y, float).copy()
    for _ in range(2 if len(seasons) > 1 else 1):
        for i, period in enumerate(seasons):
            deseas = deseas + seas[i]
            window = 7 + 4 * (i + 1)
            kwargs: dict[str, int] = {}
            if jumps:
                trend = _odd_at_least(1.5 * period / (1 - 1.5 / window))  # statsmodels' default windows
                low_pass = _odd_at_least(period + 1)
                kwargs = {"seasonal_jump": int(np.ceil(window / 10)), "trend_jump": int(np.ceil(trend / 10)),
                          "low_pass_jump": int(np.ceil(low_pass / 10))}
            seas[i] = STL(deseas, period=period, seasonal=window, seasonal_deg=0, **kwargs).fit().seasonal
            deseas = deseas - seas[i]
    return seas, deseas


class MSTL(PerSeriesForecaster):
    """Multiple seasonal-trend decomposition (MSTL, Bandara et al. 2021), statsforecast's algorithm.

    STL (LOESS) splits each series into one component per season and a deseasonalised rest (trend +
    remainder); the seasons are forecast by repeating their last cycle and the rest by statsforecast
    AutoETS without season, as statsforecast's ``MSTL`` does; intervals are the trend model's. The
    trend model ``"AZN"`` lets AICc pick no, linear or damped trend with additive errors: half the
    cost of statsforecast's default ``"ZZN"`` (which also tries multiplicative errors), with the same
    accuracy on the real series of ``bench/real_series.py``. The decomposition is
    :func:`mstl_decompose` (statsforecast's, with R's interpolation steps; ``jumps=False`` gives
    statsforecast's exactly). Seasons: weekly and yearly (7, 365) for daily data, daily and weekly
    (24, 168) for hourly data.

    **Short series**: STL needs two full cycles of a season, so a season longer than half the history
    is left out: a daily series with less than two years (730 days) is decomposed with its weekly
    season only, an hourly one with less than two weeks with its daily season only. That is still
    MSTL, not a fallback, so it is not in ``fallbacks``: :attr:`seasons_` says which seasons each
    series got, and the count is logged. Series shorter than two of the shortest season get the
    window average like every member. Forwarding to a history long enough for another season refits.

    Args:
        trend_model: AutoETS model string for the trend (its season letter must be ``"N"``).
        jumps: LOESS interpolation steps, see :func:`mstl_decompose`.
        max_history: Seasons of the shortest period used per series (156: three years of daily data,
            156 days of hourly data).
        n_jobs: Worker processes.
        alias: Column name in backtests (default ``"MSTL"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.

    Attributes:
        seasons_: Per series id, the season lengths of its last fit or forward.
    """

    _default_name = "MSTL"
    _forward_in_process = True  # forwarding only stores the new history; the decomposition runs in predict

    def __init__(
        self,
        *,
        trend_model: str = "AZN",
        jumps: bool = True,
        max_history: int | None = 156,
        n_jobs: int = 1,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        if not isinstance(trend_model, str) or len(trend_model) != 3 or trend_model[2] != "N":
            raise ForecastInputError(f"trend_model must be an AutoETS string without season, e.g. 'AZN'; got {trend_model!r}.")
        super().__init__(max_history=max_history, n_jobs=n_jobs, alias=alias, fill=fill)
        self.trend_model = trend_model
        self.jumps = jumps

    @staticmethod
    def seasons_for(n: int, freq: str) -> tuple[int, ...]:
        """Seasons a history of ``n`` points supports: those with two full cycles (at least the shortest)."""
        seasons = MSTL_SEASONS[freq]
        return tuple(m for m in seasons if n >= 2 * m) or seasons[:1]

    def _fit_one(self, y: np.ndarray, start: pd.Timestamp, freq: str) -> tuple:
        from statsforecast.models import AutoETS

        seasons = self.seasons_for(y.size, freq)
        seas, deseas = mstl_decompose(y, seasons, self.jumps)
        return AutoETS(model=self.trend_model).fit(deseas), seasons, seas, None

    def _spec_one(self, state: tuple) -> str | None:
        return ets_spec(state[0]) if "Z" in self.trend_model else None  # the trend model's chosen form

    def _fit_spec_one(self, y: np.ndarray, start: pd.Timestamp, freq: str, spec: str) -> tuple:
        seasons = self.seasons_for(y.size, freq)
        seas, deseas = mstl_decompose(y, seasons, self.jumps)
        return ets_from_spec(spec).fit(deseas), seasons, seas, None

    def _forward_one(self, state: tuple, y: np.ndarray, start: pd.Timestamp, freq: str) -> tuple:
        if state[1] != self.seasons_for(y.size, freq):
            return self._fit_one(y, start, freq)  # the longer history allows another season
        return state[0], state[1], None, y

    def _predict_one(self, state: tuple, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        trend, seasons, seas, y_new = state
        if y_new is None:
            out = trend.predict(h, level=list(levels))
        else:
            seas, deseas = mstl_decompose(y_new, seasons, self.jumps)
            out = trend.forward(deseas, h, level=list(levels))
        future = sum(np.resize(seas[i, -m:], h) for i, m in enumerate(seasons))  # each season's last cycle, repeated
        return np.asarray(out["mean"], float) + future, {
            lv: (np.asarray(out[f"lo-{lv}"], float) + future, np.asarray(out[f"hi-{lv}"], float) + future)
            for lv in levels
        }

    def _fit(self, panel: Panel) -> None:
        super()._fit(panel)
        self._log_seasons(panel)

    def _forward(self, panel: Panel) -> None:
        super()._forward(panel)
        self._log_seasons(panel)

    def _log_seasons(self, panel: Panel) -> None:
        self.seasons_ = {uid: state[1] for uid, state in self._states.items()}
        longest = MSTL_SEASONS[panel.freq][-1]
        short = sum(longest not in s for s in self.seasons_.values())
        if short:
            logger.info("%s: %d of %d series have less than two cycles of season %d; fitted without it",
                        self.name, short, len(self.seasons_), longest)


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
