"""Model selection: expanding-window cross-validation over as-of dates.

The kind with the best mean out-of-time AUC wins and is refitted with calibration
(:func:`~models.churn.calibration.fit_calibrated`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .calibration import CalibratedClassifier, fit_calibrated
from .classifiers import CLASSIFIER_KINDS, CLASSIFIERS, make_classifier
from .data import TrainingSet, _iso, _labels


@dataclass
class ModelSelection:
    """Outcome of :func:`select_model`.

    Attributes:
        kind: The winning kind.
        model: The winner, fitted and calibrated on the training snapshots.
        cv: One row per kind and fold: ``kind, fold_date, n_train, n_valid, auc, fit_seconds``.
        mean_auc: Mean out-of-time AUC per kind.
    """

    kind: str
    model: CalibratedClassifier
    cv: pd.DataFrame
    mean_auc: dict[str, float]


def select_model(
    frames: TrainingSet,
    kinds: Sequence[str] = CLASSIFIER_KINDS,
    n_folds: int = 3,
    *,
    params: Mapping[str, dict[str, Any]] | None = None,
    calibration: str = "auto",
    calibration_snapshots: int = 1,
    gap_days: int = 0,
    random_state: int = 0,
) -> ModelSelection:
    """Pick the classifier kind with the best mean out-of-time AUC, then fit it with calibration.

    Folds are the latest ``n_folds`` as-of dates. For each, every kind trains on the snapshots
    before that date (minus ``gap_days``) and is scored by AUC on that date's snapshot (uncalibrated:
    AUC depends on ranks only). Ties go to the kind listed first. The winner is then fitted by
    :func:`fit_calibrated` on all of ``frames``.

    Args:
        frames: Training snapshots; keep the test snapshot out.
        kinds: Candidate kinds.
        n_folds: Folds (at least 2); needs ``n_folds + 1`` distinct as-of dates.
        params: Constructor arguments per kind, e.g. ``{"xgboost": {"n_estimators": 500}}``.
        calibration: Calibration method, see :func:`fit_calibrated`.
        calibration_snapshots: Latest as-of dates used for calibration of the final model.
        gap_days: Minimum days between training snapshots and the fold (or calibration) date;
            set it to the label window (30) to mirror production, where recent labels are unknown.
        random_state: Seed for every classifier.

    Raises:
        ValueError: For bad arguments, too few dates, or no fold with both classes.
    """
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    unknown = [k for k in kinds if k not in CLASSIFIERS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {list(CLASSIFIERS)}; unknown: {unknown}")
    dates = frames.dates
    if len(dates) < n_folds + 1:
        raise ValueError(f"{n_folds} folds need {n_folds + 1} as-of dates; got {len(dates)}. Lower n_folds.")
    params = params or {}
    as_of = frames.as_of.to_numpy()
    y = _labels(frames.y)
    rows = []
    for fold_date in dates[-n_folds:]:
        train = as_of < np.datetime64(fold_date) - np.timedelta64(gap_days, "D")
        valid = as_of == np.datetime64(fold_date)
        usable = len(np.unique(y[train])) == 2 and len(np.unique(y[valid])) == 2
        for kind in kinds:
            auc, seconds = float("nan"), float("nan")
            if usable:
                start = time.perf_counter()
                clf = make_classifier(kind, **{"random_state": random_state, **params.get(kind, {})})
                clf.fit(frames.X[train], y[train])
                auc = float(roc_auc_score(y[valid], clf.predict_proba(frames.X[valid])[:, 1]))
                seconds = round(time.perf_counter() - start, 3)
            rows.append({
                "kind": kind, "fold_date": _iso(fold_date), "n_train": int(train.sum()),
                "n_valid": int(valid.sum()), "auc": auc, "fit_seconds": seconds,
            })
    cv = pd.DataFrame(rows)
    mean_auc = {k: float(cv.loc[cv["kind"] == k, "auc"].mean()) for k in kinds}
    scored = [k for k in kinds if not math.isnan(mean_auc[k])]
    if not scored:
        raise ValueError("no fold has both classes in its training and validation rows")
    best = max(scored, key=lambda k: mean_auc[k])
    model = fit_calibrated(
        best, frames, params=params.get(best), method=calibration,
        calibration_snapshots=calibration_snapshots, gap_days=gap_days, random_state=random_state,
    )
    return ModelSelection(kind=best, model=model, cv=cv, mean_auc=mean_auc)
