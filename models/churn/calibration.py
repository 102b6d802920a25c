"""Calibration: a base classifier fitted on earlier snapshots, a monotone map fitted on the latest ones.

The base model is fitted on the snapshots before the latest ``calibration_snapshots`` as-of dates of
the training set; an isotonic map (Platt scaling when that later slice has fewer than 5,000 rows or
250 of either class, where isotonic steps would tie many users) is fitted on that slice. The test
snapshot is never touched.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from .classifiers import ChurnClassifier, make_classifier
from .data import TrainingSet, _iso, _labels

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class Calibrator:
    """Monotone map from raw scores to probabilities: isotonic or Platt (sigmoid of the logit).

    Args:
        method: ``"isotonic"`` or ``"sigmoid"``.
    """

    def __init__(self, method: str = "isotonic"):
        if method not in ("isotonic", "sigmoid"):
            raise ValueError(f"calibration method must be 'isotonic' or 'sigmoid', not {method!r}")
        self.method = method

    def fit(self, p: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on raw scores ``p`` and labels ``y`` of held-out rows."""
        if self.method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
            self.x_ = iso.X_thresholds_.astype(float)
            self.y_ = iso.y_thresholds_.astype(float)
        else:
            lr = LogisticRegression(C=np.inf).fit(_logit(p)[:, None], y)
            self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw scores ``p``."""
        if self.method == "isotonic":
            return np.interp(p, self.x_, self.y_)
        return 1.0 / (1.0 + np.exp(-(self.a_ * _logit(p) + self.b_)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        if self.method == "isotonic":
            return {"method": self.method, "x": self.x_.tolist(), "y": self.y_.tolist()}
        return {"method": self.method, "a": self.a_, "b": self.b_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        """Inverse of :meth:`to_dict`."""
        cal = cls(d["method"])
        if cal.method == "isotonic":
            cal.x_, cal.y_ = np.asarray(d["x"], dtype=float), np.asarray(d["y"], dtype=float)
        else:
            cal.a_, cal.b_ = float(d["a"]), float(d["b"])
        return cal


class CalibratedClassifier:
    """A fitted churn classifier followed by a fitted :class:`Calibrator`.

    Args:
        estimator: The fitted base classifier.
        calibrator: The calibrator fitted on a later, held-out slice.
        info: What was fitted on which dates, for the model's metadata.
    """

    def __init__(self, estimator: ChurnClassifier, calibrator: Calibrator, info: dict[str, Any] | None = None):
        self.estimator = estimator
        self.calibrator = calibrator
        self.info = info
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated columns P(retained), P(churned)."""
        p = self.calibrator.transform(self.estimator.predict_proba(X)[:, 1])
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where calibrated P(churned) ≥ 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _calibration_method(method: str, y_cal: np.ndarray) -> str:
    if method != "auto":
        return method
    big = len(y_cal) >= 5000 and min(y_cal.sum(), len(y_cal) - y_cal.sum()) >= 250
    return "isotonic" if big else "sigmoid"


def fit_calibrated(
    kind: str,
    train: TrainingSet,
    *,
    params: dict[str, Any] | None = None,
    method: str = "auto",
    calibration_snapshots: int = 1,
    gap_days: int = 0,
    random_state: int = 0,
) -> CalibratedClassifier:
    """Fit ``kind`` on earlier snapshots and calibrate it on the latest ones.

    Args:
        kind: Classifier kind, see :func:`make_classifier`.
        train: Training snapshots (the test snapshot must not be among them).
        params: Constructor arguments for the classifier.
        method: ``"isotonic"``, ``"sigmoid"`` (Platt) or ``"auto"`` (isotonic when the calibration
            slice has at least 5,000 rows and 250 of each class, else Platt).
        calibration_snapshots: How many of the latest as-of dates form the calibration slice.
        gap_days: Base-model snapshots must be at least this many days before the slice.
        random_state: Seed passed to the classifier unless ``params`` sets one.

    Raises:
        ValueError: With too few dates, or a part that holds one class only.
    """
    dates = train.dates
    if len(dates) <= calibration_snapshots:
        raise ValueError(
            f"calibration needs more than {calibration_snapshots} as-of date(s) in the training set; got {len(dates)}"
        )
    cal_start = dates[-calibration_snapshots]
    as_of = train.as_of.to_numpy()
    fit_mask = as_of < cal_start - np.timedelta64(gap_days, "D")
    cal_mask = as_of >= cal_start
    if not fit_mask.any():
        raise ValueError("no training snapshots lie before the calibration slice; lower gap_days or add dates")
    y = _labels(train.y)
    y_cal = y[cal_mask]
    if len(np.unique(y_cal)) < 2:
        raise ValueError("the calibration slice holds one class only; add snapshots or raise calibration_snapshots")
    base = make_classifier(kind, **{"random_state": random_state, **(params or {})})
    base.fit(train.X[fit_mask], y[fit_mask])
    method = _calibration_method(method, y_cal)
    calibrator = Calibrator(method).fit(base.predict_proba(train.X[cal_mask])[:, 1], y_cal)
    info = {
        "kind": kind,
        "method": method,
        "fit_dates": [_iso(dates[0]), _iso(pd.Timestamp(as_of[fit_mask].max()))],
        "calibration_dates": [_iso(cal_start), _iso(dates[-1])],
        "n_fit": int(fit_mask.sum()),
        "n_calibration": int(cal_mask.sum()),
    }
    return CalibratedClassifier(base, calibrator, info)
