"""Churn models: scikit-learn style classifiers, calibration, time-based selection and explanations.

A training row is a point-in-time snapshot of one user's behaviour as of a date ``T`` (any numeric
feature columns); its label is 1 when the user has no activity in ``(T, T + 30 days]`` (churned) and
0 otherwise. Nothing here depends on how the rows were made, and nothing here imports the rest of
the project: feature sets, wording and storage belong to the callers.

Choices (the contract for the pipeline, the API and the dashboard), one module each:

* **Data** (:mod:`.data`): :class:`TrainingSet`, the minimum-rows rule (:func:`check_sufficient`,
  :class:`InsufficientDataError`) and the time-to-lapse targets (:func:`inactivity_targets`).
* **Classifiers** (:mod:`.classifiers`, :func:`make_classifier`): ``xgboost`` (native booster,
  ``hist``), ``random_forest``, ``logistic`` (the interpretable one) and ``mlp``. ``logistic`` and
  ``mlp`` apply a signed ``log1p`` to the heavy-tailed counts in :data:`HEAVY_TAILED`, impute medians
  and standardise. All take a DataFrame, treat ``±inf`` as missing, run on 2 threads and are seeded.
* **Calibration** (:mod:`.calibration`, :func:`fit_calibrated`): the base model is fitted on the
  snapshots before the latest ``calibration_snapshots`` as-of dates of the training set; an isotonic
  map (Platt scaling when that later slice has fewer than 5,000 rows or 250 of either class, where
  isotonic steps would tie many users) is fitted on that slice. The test snapshot is never touched.
* **Selection** (:mod:`.selection`, :func:`select_model`): expanding-window cross-validation over
  as-of dates; the kind with the best mean out-of-time AUC wins and is refitted with calibration.
* **Explanations** (:mod:`.explanation`, :func:`explain_drivers`) always come from XGBoost TreeSHAP
  contributions (log-odds). When the champion is XGBoost its own booster explains; otherwise an
  XGBoost explainer is fitted on the same training set (smaller trees, :data:`EXPLAINER_PARAMS`).
  One method for every champion keeps drivers comparable across model versions. Related columns are
  grouped into drivers (:data:`DRIVER_COLUMNS`); each driver is reported by its strongest column,
  with the group's summed contribution and the column's value; drivers below 0.05 log-odds are
  dropped. Drivers are data: their wording and the recommended actions are made by the caller
  (``pipelines.churn.wording``).
* **Metrics** (:mod:`.metrics`): :func:`evaluate`, the plots, and **risk_score** =
  ``round(100 * calibrated probability, 1)``: calibrated, so 30 means about 30%.
* **Rhythm and state** (:mod:`.rhythm`): the usual gap between a user's active days, the state
  (``active`` / ``lapsing`` / ``dormant``: silence within ``max(3g, 7)`` days, beyond ``max(10g, 30)``,
  or between) and the MBG/NBD probability of being alive (closed form, pooled maximum likelihood).
* **days_until_churn** (:mod:`.time_to_churn`, :class:`TimeToChurnModel`): median days until the
  user's lapse starts (a lapse is ``window`` days without activity), from a discrete-time model;
  ``-1`` from :meth:`TimeToChurnModel.predict_days`, NULL in :meth:`ChurnModel.predict`, when the
  lapse is not expected within the window.
* **The bundle** (:mod:`.model`, :class:`ChurnModel`): fit, predict, explain; :meth:`ChurnModel.save`
  writes a directory holding ``manifest.json``, XGBoost boosters as JSON (``booster.save_model``) and
  scikit-learn pipelines as skops files. No pickle.
"""
from .calibration import CalibratedClassifier, Calibrator, fit_calibrated
from .classifiers import (
    CLASSIFIER_KINDS,
    CLASSIFIERS,
    HEAVY_TAILED,
    ChurnClassifier,
    LogisticChurnClassifier,
    MLPChurnClassifier,
    RandomForestChurnClassifier,
    XGBoostChurnClassifier,
    make_classifier,
)
from .data import (
    KEYS,
    InsufficientDataError,
    TrainingSet,
    check_sufficient,
    inactivity_targets,
)
from .explanation import (
    DRIVER_COLUMNS,
    DRIVER_OF_COLUMN,
    EXPLAINER_PARAMS,
    explain_drivers,
)
from .metrics import (
    calibration_plot,
    evaluate,
    evaluate_by_group,
    expected_calibration_error,
    risk_score,
    roc_plot,
    top_decile_lift,
)
from .model import MODEL_FORMAT, ChurnModel
from .rhythm import MBGNBD, STATES, churn_state, state_thresholds, usual_gap
from .selection import ModelSelection, select_model
from .time_to_churn import TimeToChurnModel

__all__ = [
    "CLASSIFIERS",
    "CLASSIFIER_KINDS",
    "DRIVER_COLUMNS",
    "DRIVER_OF_COLUMN",
    "EXPLAINER_PARAMS",
    "HEAVY_TAILED",
    "KEYS",
    "MBGNBD",
    "MODEL_FORMAT",
    "STATES",
    "CalibratedClassifier",
    "Calibrator",
    "ChurnClassifier",
    "ChurnModel",
    "InsufficientDataError",
    "LogisticChurnClassifier",
    "MLPChurnClassifier",
    "ModelSelection",
    "RandomForestChurnClassifier",
    "TimeToChurnModel",
    "TrainingSet",
    "XGBoostChurnClassifier",
    "calibration_plot",
    "check_sufficient",
    "churn_state",
    "evaluate",
    "evaluate_by_group",
    "expected_calibration_error",
    "explain_drivers",
    "fit_calibrated",
    "inactivity_targets",
    "make_classifier",
    "risk_score",
    "roc_plot",
    "select_model",
    "state_thresholds",
    "top_decile_lift",
    "usual_gap",
]
