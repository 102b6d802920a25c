"""The churn model bundle: calibrated champion, explainer and time-to-churn model.

:meth:`ChurnModel.fit` selects the champion kind (:func:`~models.churn.selection.select_model`),
calibrates it, fits the XGBoost explainer when the champion is another kind and, when the training
set has ``days_to_inactivity``, the :class:`~models.churn.time_to_churn.TimeToChurnModel`.
:meth:`ChurnModel.predict` returns per user the calibrated probability, the risk score
(``round(100 * p, 1)``), the risk-raising drivers as data (see
:func:`~models.churn.explanation.explain_drivers`) and ``days_until_churn`` (NULL when the lapse is
not expected within the window). Words and recommended actions are not made here.

**Persistence** (:meth:`ChurnModel.save`): a directory holding ``manifest.json``, XGBoost boosters as
JSON (``booster.save_model``) and scikit-learn pipelines as skops files. No pickle.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb

from .calibration import CalibratedClassifier, Calibrator
from .classifiers import (
    CLASSIFIER_KINDS,
    ChurnClassifier,
    XGBoostChurnClassifier,
    make_classifier,
)
from .data import InsufficientDataError, TrainingSet, _iso, check_sufficient
from .explanation import EXPLAINER_PARAMS, explain_drivers
from .metrics import risk_score
from .rhythm import churn_state
from .selection import select_model
from .time_to_churn import TimeToChurnModel

MODEL_FORMAT = "pae-churn/1"


@dataclass
class ChurnModel:
    """Everything needed to score users: calibrated classifier, explainer, time-to-churn model.

    Attributes:
        kind: The champion kind.
        classifier: The calibrated champion.
        explainer: XGBoost model whose TreeSHAP contributions give the risk factors: the champion's
            own base model when the champion is XGBoost, otherwise one fitted on the same training set.
        time_model: Time-to-churn model, or None when the training set had no ``days_to_inactivity``.
        feature_columns: Feature columns, in training order.
        metadata: JSON-able training facts: dates, counts, CV scores, calibration, versions.
    """

    kind: str
    classifier: CalibratedClassifier
    explainer: XGBoostChurnClassifier
    time_model: TimeToChurnModel | None
    feature_columns: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        train: TrainingSet,
        *,
        kinds: Sequence[str] = CLASSIFIER_KINDS,
        n_folds: int = 3,
        params: Mapping[str, dict[str, Any]] | None = None,
        calibration: str = "auto",
        calibration_snapshots: int = 1,
        gap_days: int = 0,
        min_per_class: int = 100,
        explainer_params: dict[str, Any] | None = None,
        time_horizons: Sequence[int] = (1, 7, 14, 21, 30),
        random_state: int = 0,
        feature_set: str | None = None,
    ) -> ChurnModel:
        """Select, calibrate and fit the champion, its explainer and the time-to-churn model.

        Args:
            train: Training snapshots (keep the test snapshot out).
            kinds: Candidate classifier kinds.
            n_folds: Expanding-window folds for :func:`select_model`.
            params: Constructor arguments per kind.
            calibration: Calibration method, see :func:`~models.churn.calibration.fit_calibrated`.
            calibration_snapshots: Latest as-of dates held out for calibration.
            gap_days: Gap between training snapshots and validation/calibration dates.
            min_per_class: Minimum churned and retained rows, see :func:`check_sufficient`.
            explainer_params: XGBoost explainer arguments when the champion is not XGBoost;
                default :data:`EXPLAINER_PARAMS`.
            time_horizons: Horizons of the time-to-churn model; the last is its window.
            random_state: Seed for every model.
            feature_set: Name of the feature set the columns come from, kept in :attr:`metadata`
                (``feature_set``) for the record; the model does not read it.

        Raises:
            InsufficientDataError: Too few rows of either class.
        """
        ok, counts = check_sufficient(train.y, min_per_class)
        if not ok:
            raise InsufficientDataError(counts, min_per_class)
        params = dict(params or {})
        selection = select_model(
            train, kinds, n_folds, params=params, calibration=calibration,
            calibration_snapshots=calibration_snapshots, gap_days=gap_days, random_state=random_state,
        )
        if selection.kind == "xgboost":
            explainer = selection.model.estimator
        else:
            explainer_params = {"random_state": random_state, **(explainer_params or EXPLAINER_PARAMS)}
            explainer = make_classifier("xgboost", **explainer_params)
            explainer.fit(train.X, train.y)
        time_model = None
        if train.days_to_inactivity is not None:
            days = train.days_to_inactivity.to_numpy(dtype=float)
            known = ~np.isnan(days)
            if known.any():
                time_model = TimeToChurnModel(time_horizons, random_state=random_state)
                time_model.fit(train.X[known], days[known], days[known] <= time_horizons[-1])
        columns = list(train.X.columns)
        metadata = {
            "feature_set": feature_set,
            "train_dates": [_iso(d) for d in train.dates],
            "n_train": len(train.y),
            "class_counts": counts,
            "cv": selection.cv.astype(object).where(selection.cv.notna(), None).to_dict("records"),
            "mean_auc": {k: None if math.isnan(v) else v for k, v in selection.mean_auc.items()},
            "calibration": selection.model.info,
            "time_to_churn": {"horizons": list(time_horizons), "trained": time_model is not None},
            "random_state": random_state,
            "versions": {"xgboost": xgb.__version__, "scikit-learn": sklearn.__version__},
        }
        return cls(selection.kind, selection.model, explainer, time_model, columns, metadata)

    def _features(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_columns if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks feature columns {missing}; score with the columns the model was trained on")
        return X[self.feature_columns]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability per row."""
        return self.classifier.predict_proba(self._features(X))[:, 1]

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[dict[str, Any]]]:
        """Top-k risk-raising drivers per row, as data; see :func:`~models.churn.explanation.explain_drivers`."""
        frame = self._features(X)
        return explain_drivers(self.explainer.contributions(frame), frame, top_k)

    def predict(self, X: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
        """Score users.

        Args:
            X: Feature frame holding at least :attr:`feature_columns`.
            top_k: Drivers per user at most.

        Returns:
            Frame on ``X``'s index with ``churn_probability``, ``risk_score`` (0–100), ``drivers``
            (per user a list of ``{"feature", "driver", "contribution", "value"}`` dicts, strongest
            first, see :meth:`explain`), ``days_until_churn`` (nullable Int64; NULL = lapse not
            expected within the window, or no time-to-churn model) and ``state`` (``active``, ``lapsing``
            or ``dormant`` from ``recency_days`` and ``usual_gap_days``, see
            :func:`~models.churn.rhythm.churn_state`; None when the model has no such columns).
        """
        columns = ["churn_probability", "risk_score", "drivers", "days_until_churn", "state"]
        if len(self._features(X)) == 0:
            return pd.DataFrame(columns=columns, index=X.index)
        p = self.predict_proba(X)
        drivers = self.explain(X, top_k)
        days = np.full(len(X), np.nan)
        if self.time_model is not None:
            raw = self.time_model.predict_days(self._features(X))
            days = np.where(raw > 0, raw, np.nan)
        has_rhythm = {"recency_days", "usual_gap_days"} <= set(self.feature_columns)
        state = churn_state(X["recency_days"], X["usual_gap_days"]) if has_rhythm else np.full(len(X), None)
        values = [
            p,
            risk_score(p),
            drivers,
            pd.array(days, dtype="Int64"),
            state,
        ]
        return pd.DataFrame(dict(zip(columns, values)), index=X.index)

    def save(self, path: str | Path) -> None:
        """Write the bundle to directory ``path``: ``manifest.json`` plus JSON boosters and skops files."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        classifier = self.classifier.estimator.save(path, "classifier")
        explainer = (
            "classifier" if self.explainer is self.classifier.estimator else self.explainer.save(path, "explainer")
        )
        manifest = {
            "format": MODEL_FORMAT,
            "kind": self.kind,
            "feature_columns": self.feature_columns,
            "classifier": classifier,
            "calibrator": self.classifier.calibrator.to_dict(),
            "calibration_info": self.classifier.info,
            "explainer": explainer,
            "time_model": None if self.time_model is None else self.time_model.save(path, "time_model"),
            "metadata": self.metadata,
        }
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_json_default))

    @classmethod
    def load(cls, path: str | Path) -> ChurnModel:
        """Read a bundle written by :meth:`save`."""
        path = Path(path)
        manifest = json.loads((path / "manifest.json").read_text())
        if manifest.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path} is not a {MODEL_FORMAT} churn model bundle")
        base = ChurnClassifier.load(manifest["classifier"], path)
        calibrator = Calibrator.from_dict(manifest["calibrator"])
        classifier = CalibratedClassifier(base, calibrator, manifest["calibration_info"])
        entry = manifest["explainer"]
        explainer = base if entry == "classifier" else ChurnClassifier.load(entry, path)
        entry = manifest["time_model"]
        time_model = None if entry is None else TimeToChurnModel.load(entry, path)
        return cls(
            manifest["kind"], classifier, explainer, time_model, manifest["feature_columns"], manifest["metadata"]
        )


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")
