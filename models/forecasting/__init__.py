"""Forecasting: one long-frame contract for every model, Nixtla style.

Input ``(unique_id, ds, y)``; output ``(unique_id, ds, yhat, yhat_lower, yhat_upper)`` for ``h``
steps after each series' own last timestamp, at frequency ``"D"`` or ``"h"``::

    from models.forecasting import Ensemble
    fcst = Ensemble(n_jobs=2).fit(df, freq="D").predict(h=30, level=95)

Members: :class:`SeasonalNaive` (the baseline), :class:`ETS`, :class:`DampedETS` (damped trend), :class:`ARIMA`,
:class:`Theta`, :class:`MSTL` (weekly + yearly seasons for daily data, daily + weekly for hourly data),
:class:`Prophet`, :class:`GlobalGBM` (one XGBoost model for all series) and the :class:`Ensemble` of them, whose
weights and conformal intervals come from a rolling-origin backtest; :class:`GlobalLSTM` (PyTorch, one small
LSTM for all series) joins it with ``include_lstm=True``. :class:`ConformalForecaster`
gives any member calibrated intervals. :func:`cross_validation` and :func:`evaluate` backtest and
score any list of models.

Choices:

* Gaps: ``fill="zero"`` (default) treats a missing timestamp or NaN value as no usage;
  ``fill="interpolate"`` interpolates linearly; ``fill=None`` rejects gaps.
* Outliers and holidays: :class:`Robust` fits a member on history cleaned of one-off spikes and
  dips and of holidays (each series' holiday calendar is inferred from its history among a few
  countries), then scales its forecast on future holidays. The ensemble's members other than
  SeasonalNaive are wrapped this way by default.
* Robustness: series shorter than two seasons (14 days, 48 hours) or constant get a window
  average; a member that raises on a series gives that series the seasonal naive forecast. Both
  are listed in the model's ``fallbacks`` with the reason and logged. MSTL leaves out a season
  with fewer than two cycles in the history (the yearly one below 730 days) and says so in ``seasons_``.
* Intervals never go below zero for series whose history is non-negative, and always satisfy
  ``yhat_lower <= yhat <= yhat_upper``.
* Scale: per-series models (ETS, DampedETS, ARIMA, Theta, MSTL, Prophet) fork ``n_jobs`` processes and
  use at most a year (ETS, DampedETS, Theta), half a year (ARIMA) or three years (MSTL, daily data) of
  history; GlobalGBM uses ``n_jobs`` XGBoost threads.
* Models are deterministic given their seeds.
"""
from .base import Fallback, Forecaster, SeasonalNaive
from .checks import SEASON_LENGTH, ForecastInputError
from .ensemble import (
    ConformalCalibrator,
    ConformalForecaster,
    Ensemble,
    default_members,
)
from .evaluation import (
    Evaluation,
    coverage,
    cross_validation,
    evaluate,
    mape,
    mase,
    smape,
    wape,
)
from .gbm import GlobalGBM
from .lstm import GlobalLSTM
from .members import ARIMA, ETS, MSTL, DampedETS, Prophet, Theta
from .panel import Panel
from .robust import Robust

MODELS = {
    "seasonal_naive": SeasonalNaive,
    "ets": ETS,
    "arima": ARIMA,
    "theta": Theta,
    "mstl": MSTL,
    "damped_ets": DampedETS,
    "prophet": Prophet,
    "gbm": GlobalGBM,
    "ensemble": Ensemble,
}
"""Model names accepted by ``pae forecast --model``."""

__all__ = [
    "ARIMA",
    "ETS",
    "MODELS",
    "MSTL",
    "SEASON_LENGTH",
    "ConformalCalibrator",
    "ConformalForecaster",
    "DampedETS",
    "Ensemble",
    "Evaluation",
    "Fallback",
    "ForecastInputError",
    "Forecaster",
    "GlobalGBM",
    "GlobalLSTM",
    "Panel",
    "Prophet",
    "Robust",
    "SeasonalNaive",
    "Theta",
    "coverage",
    "cross_validation",
    "default_members",
    "evaluate",
    "mape",
    "mase",
    "smape",
    "wape",
]
