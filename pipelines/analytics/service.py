"""``PredictiveAnalytics`` for notebooks: the API's read side plus ``extract_features`` and ``train_model``.

The API's class (``services.predictive_analytics``) may import only ``core``; the two methods that run
pipeline and model code live here, on a subclass, so one object does everything the seed's service names.
This module is an entry point (.importlinter: nothing imports it; it alone may import the service).
"""
from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from core.settings import Settings
from pipelines.analytics import features as _features
from pipelines.analytics import training as _training
from services.predictive_analytics import PredictiveAnalytics as _Reader


class PredictiveAnalytics(_Reader):
    """Read stored predictions (``await predict_credit_consumption(...)``, ``predict_user_churn``, ...), build
    feature sets from an events frame and train any registered model type.

    Args:
        engine: For the read methods; default: an engine on ``settings`` (``DATABASE_URL`` or the embedded
            server), made on first read. ``extract_features`` and ``train_model`` need no database.
        settings: Holiday country, MAU window, churn window, and where MLflow tracks (default ``Settings()``).
        history_days: Days of history served with forecasts (default ``PAE_API_HISTORY_DAYS``).
    """

    def __init__(self, engine: Engine | None = None, *, settings: Settings | None = None,
                 history_days: int | None = None):
        self.settings = settings or Settings()
        super().__init__(engine, self.settings.api_history_days if history_days is None else history_days)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from core.db import get_engine

            self._engine = get_engine(self.settings)
        return self._engine

    @engine.setter
    def engine(self, value: Engine | None) -> None:
        self._engine = value

    @staticmethod
    def model_types() -> dict[str, dict[str, Any]]:
        """Registered model types: family (``forecast`` / ``churn``), description and hyperparameter defaults."""
        return {name: {"family": t.family, "description": t.description, "hyperparameters": t.hyperparameters()}
                for name, t in _training.MODEL_TYPES.items()}

    def extract_features(self, data: pd.DataFrame, feature_set: str, as_of: date | None = None, *,
                         declared_time_zones: dict[str, str] | None = None, drop_invalid: bool = False) -> pd.DataFrame:
        """A declared feature set built from an events frame with the nightly run's code; see
        :func:`pipelines.analytics.features.extract_features` (holiday country and MAU window from settings)."""
        return _features.extract_features(
            data, feature_set, as_of, holiday_country=self.settings.holiday_country,
            growth_mau_window_days=self.settings.growth_mau_window_days,
            declared_time_zones=declared_time_zones, drop_invalid=drop_invalid)

    def churn_training_data(self, data: pd.DataFrame, as_of_dates: list[date], *,
                            drop_invalid: bool = False) -> pd.DataFrame:
        """Labelled ``user_behaviour`` snapshots for ``train_model("churn_<kind>", ...)`` (churn window and
        lookback from settings); see :func:`pipelines.analytics.features.churn_training_data`."""
        return _features.churn_training_data(data, as_of_dates, self.settings.churn_window_days,
                                             self.settings.churn_lookback_days, drop_invalid=drop_invalid)

    async def train_model(self, model_type: str, training_data: pd.DataFrame,
                          hyperparameters: dict[str, Any] | None = None, **options: Any) -> _training.TrainedModel:
        """Cross-validate, fit and log a model to MLflow (in a worker thread); see
        :func:`pipelines.analytics.training.train_model` for ``options`` (``horizon``, ``n_windows``, ``freq``,
        ``gap_days``, ``seed``, ``experiment``).

        Raises:
            ValueError: Unknown model type, hyperparameter or option (the valid ones listed), or bad data.
        """
        allowed = {"horizon", "n_windows", "freq", "gap_days", "seed", "experiment"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; valid options: {sorted(allowed)}")
        return await asyncio.to_thread(_training.train_model, model_type, training_data, hyperparameters,
                                       settings=self.settings, **options)
