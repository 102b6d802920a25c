"""Time to churn: median days until a user's lapse starts, from a discrete-time XGBoost model."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from .classifiers import _load_booster, _matrix, _save_booster, _xgb_params


class TimeToChurnModel:
    """Days until a user's lapse starts, from a discrete-time model of the lapse-start CDF.

    One XGBoost classifier is fitted on rows stacked once per horizon ``k`` (``k`` is an extra input
    with a monotone-increasing constraint) to estimate ``F(k) = P(lapse starts within k days)``.
    The prediction is the median: the day where the piecewise-linear ``F`` (``F(0) = 0``) reaches
    0.5, rounded up; ``-1`` when ``F(window) < 0.5``, i.e. not expected within the window.
    A lapse is ``window`` days without activity; see :func:`~models.churn.data.inactivity_targets`.

    Args:
        horizons: Increasing horizons in days; the last is the window.
        n_estimators: Boosting rounds.
        learning_rate: Shrinkage per round.
        max_depth: Tree depth.
        max_rows: Seeded sample of snapshot rows used for fitting (bounds memory and time).
        random_state: Seed.
        nthread: OpenMP threads.
    """

    def __init__(
        self,
        horizons: Sequence[int] = (1, 7, 14, 21, 30),
        n_estimators: int = 150,
        learning_rate: float = 0.1,
        max_depth: int = 4,
        max_rows: int = 100_000,
        random_state: int = 0,
        nthread: int = 2,
    ):
        if list(horizons) != sorted(set(horizons)) or horizons[0] < 1:
            raise ValueError("horizons must be distinct, increasing and at least 1")
        self.horizons = tuple(int(k) for k in horizons)
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.max_rows = max_rows
        self.random_state = random_state
        self.nthread = nthread

    @property
    def window(self) -> int:
        """The longest horizon, in days."""
        return self.horizons[-1]

    def _stacked(self, m: np.ndarray) -> xgb.DMatrix:
        ks = np.repeat(np.asarray(self.horizons, dtype=float), len(m))
        return xgb.DMatrix(
            np.column_stack([np.tile(m, (len(self.horizons), 1)), ks]),
            feature_names=[*self.feature_names_in_, "_horizon_days"], nthread=self.nthread,
        )

    def fit(self, X: pd.DataFrame, days_to_inactivity: Sequence[float], churned: Sequence[bool]) -> TimeToChurnModel:
        """Fit on snapshot rows whose outcome is known.

        Args:
            X: Feature frame.
            days_to_inactivity: Days from as-of to the first day of the lapse (1 = inactive from the
                next day on); read only where ``churned`` is true.
            churned: True when a lapse starts within the window.
        """
        self.feature_names_in_ = list(X.columns)
        m = _matrix(X, self.feature_names_in_)
        event = np.asarray(churned, dtype=bool)
        days = np.where(event, np.clip(np.asarray(days_to_inactivity, dtype=float), 1, None), np.inf)
        if len(m) > self.max_rows:
            keep = np.sort(np.random.default_rng(self.random_state).choice(len(m), self.max_rows, replace=False))
            m, days = m[keep], days[keep]
        dtrain = self._stacked(m)
        dtrain.set_label(np.concatenate([(days <= k).astype(float) for k in self.horizons]))
        constraints = "(" + ",".join(["0"] * len(self.feature_names_in_) + ["1"]) + ")"
        params = _xgb_params(self.max_depth, self.learning_rate, self.random_state, self.nthread,
                             monotone_constraints=constraints)
        self.booster_ = xgb.train(params, dtrain, num_boost_round=self.n_estimators)
        return self

    def predict_cdf(self, X: pd.DataFrame) -> np.ndarray:
        """``P(lapse starts within k days)`` for each horizon, shape ``(n, len(horizons))``, non-decreasing."""
        m = _matrix(X, self.feature_names_in_)
        cdf = self.booster_.predict(self._stacked(m)).reshape(len(self.horizons), len(m)).T
        return np.maximum.accumulate(cdf.astype(np.float64), axis=1)

    def predict_days(self, X: pd.DataFrame) -> np.ndarray:
        """Median days until the lapse starts: integers in ``1..window``, or ``-1`` if not expected within it."""
        cdf = np.column_stack([np.zeros(len(X)), self.predict_cdf(X)])
        ks = np.asarray((0, *self.horizons), dtype=float)
        reached = cdf >= 0.5
        j = np.where(reached.any(axis=1), reached.argmax(axis=1), 0)
        rows = np.arange(len(X))
        lo, hi = cdf[rows, np.maximum(j - 1, 0)], cdf[rows, j]
        frac = np.divide(0.5 - lo, hi - lo, out=np.ones(len(X)), where=hi > lo)
        days = ks[np.maximum(j - 1, 0)] + frac * (ks[j] - ks[np.maximum(j - 1, 0)])
        days = np.clip(np.ceil(days - 1e-9), 1, self.window).astype(int)
        return np.where(j > 0, days, -1)

    def save(self, directory: Path, name: str) -> dict[str, Any]:
        """Write the booster as JSON; return the manifest entry."""
        return {
            "params": {
                "horizons": list(self.horizons), "n_estimators": self.n_estimators,
                "learning_rate": self.learning_rate, "max_depth": self.max_depth, "max_rows": self.max_rows,
                "random_state": self.random_state, "nthread": self.nthread,
            },
            "feature_names": self.feature_names_in_,
            "file": _save_booster(self.booster_, Path(directory) / name),
        }

    @classmethod
    def load(cls, entry: dict[str, Any], directory: Path) -> TimeToChurnModel:
        """Inverse of :meth:`save`."""
        model = cls(**entry["params"])
        model.feature_names_in_ = list(entry["feature_names"])
        model.booster_ = _load_booster(Path(directory) / entry["file"], model.nthread)
        return model
