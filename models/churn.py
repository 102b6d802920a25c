"""Churn models: scikit-learn style classifiers, calibration, time-based selection and explanations.

A training row is a point-in-time snapshot of one user's behaviour as of a date ``T`` (the
``user_behaviour`` columns, or any subset of them); its label is 1 when the user has no activity
in ``(T, T + 30 days]`` (churned) and 0 otherwise. Nothing here depends on how the rows were made.

Choices (the contract for the pipeline, the API and the dashboard):

* **Classifiers** (:func:`make_classifier`): ``xgboost`` (native booster, ``hist``), ``random_forest``,
  ``logistic`` (the interpretable one) and ``mlp``. ``logistic`` and ``mlp`` apply a signed
  ``log1p`` to the heavy-tailed counts in :data:`HEAVY_TAILED`, impute medians and standardise.
  All take a DataFrame, treat ``±inf`` as missing, run on 2 threads and are seeded.
* **Calibration** (:func:`fit_calibrated`): the base model is fitted on the snapshots before the
  latest ``calibration_snapshots`` as-of dates of the training set; an isotonic map (Platt scaling
  when that later slice has fewer than 5,000 rows or 250 of either class, where isotonic steps
  would tie many users) is fitted on that slice.
  The test snapshot is never touched.
* **Selection** (:func:`select_model`): expanding-window cross-validation over as-of dates; the
  kind with the best mean out-of-time AUC wins and is refitted with calibration as above.
* **Explanations** always come from XGBoost TreeSHAP contributions (log-odds). When the champion is
  XGBoost its own booster explains; otherwise an XGBoost explainer is fitted on the same training
  set (smaller trees, :data:`EXPLAINER_PARAMS`). One method for every champion keeps risk factors
  comparable across model versions. Related columns are grouped into drivers
  (:data:`DRIVER_COLUMNS`); each driver is reported by its strongest column, with the group's
  summed contribution; drivers below 0.05 log-odds are dropped. Actions follow
  :data:`DRIVER_ACTIONS`.
* **risk_score** = ``round(100 * calibrated probability, 1)``: calibrated, so 30 means about 30%.
* **days_until_churn** (:class:`TimeToChurnModel`): median days until the user's lapse starts
  (a lapse is ``window`` days without activity), from a discrete-time model; ``-1`` from
  :meth:`TimeToChurnModel.predict_days`, NULL in :meth:`ChurnModel.predict`, when the lapse is
  not expected within the window.
* **Persistence** (:meth:`ChurnModel.save`): a directory holding ``manifest.json``, XGBoost boosters
  as JSON (``booster.save_model``) and scikit-learn pipelines as skops files. No pickle.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import skops.io as sio
import xgboost as xgb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from pipelines.features.sets import USER_BEHAVIOUR

CLASSIFIER_KINDS: tuple[str, ...] = ("xgboost", "random_forest", "logistic", "mlp")
MODEL_FORMAT = "pae-churn/1"
KEYS = ("workspace_id", "user_id")

#: Counts and ratios with long right tails; ``logistic`` and ``mlp`` see ``sign(x) * log1p(|x|)``.
HEAVY_TAILED: frozenset[str] = frozenset({
    "tenure_days", "recency_days", "calls_7", "calls_28", "credits_28", "credits_90", "errors_28",
    "wow_ratio", "ws_active_users_28", "ws_users_ever", "ws_credits_trend", "credits_per_active_day_28",
})

#: Columns grouped into drivers; a driver's contribution is the sum over its columns.
DRIVER_COLUMNS: dict[str, tuple[str, ...]] = {
    "recency": ("recency_days",),
    "activity_drop": (
        "active_days_28", "active_days_prev_28", "engagement_drop_28", "active_days_7", "active_days_90",
        "frequency_90", "activity_slope_8w", "wow_ratio", *[f"weekly_active_w{i}" for i in range(8)],
    ),
    "low_usage": ("calls_7", "calls_28", "credits_28", "credits_90", "credits_per_active_day_28"),
    "narrow_usage": ("features_used_28", "features_used_90"),
    "errors": ("errors_28", "error_rate_28"),
    "tenure": ("tenure_days",),
    "workspace_decline": ("ws_active_users_28", "ws_users_ever", "ws_credits_trend", "share_of_ws_credits_28"),
}
DRIVER_OF_COLUMN: dict[str, str] = {c: d for d, cols in DRIVER_COLUMNS.items() for c in cols}

#: Interventions, by id. ``recommend_actions`` picks them through :data:`DRIVER_ACTIONS`.
#:
#: ======================= ===================================== ==========================================
#: driver                  action id                             title
#: ======================= ===================================== ==========================================
#: recency, activity_drop  ``re_engagement_email``               Re-engagement email
#: narrow_usage            ``feature_training``                  Training on an unused feature
#: errors                  ``support_follow_up``                 Support follow-up after error spikes
#: workspace_decline       ``admin_outreach``                    Admin outreach (account manager)
#: low_usage               ``usage_review``                      Usage review with the user
#: tenure, or no driver    ``success_check_in``                  Customer success check-in
#: ======================= ===================================== ==========================================
ACTIONS: dict[str, dict[str, str]] = {
    "re_engagement_email": {
        "title": "Re-engagement email",
        "description": "Send a personal email with recent product news and a link back to their last work.",
    },
    "feature_training": {
        "title": "Training on an unused feature",
        "description": "Offer a short session or guide on a feature the workspace uses but this user does not.",
    },
    "support_follow_up": {
        "title": "Support follow-up after error spikes",
        "description": "Have support contact the user about the failing calls and confirm they are fixed.",
    },
    "admin_outreach": {
        "title": "Admin outreach (account manager)",
        "description": "Account manager contacts the workspace admin about the workspace's falling usage.",
    },
    "usage_review": {
        "title": "Usage review with the user",
        "description": "Share a summary of what they achieved and suggest a next use case.",
    },
    "success_check_in": {
        "title": "Customer success check-in",
        "description": "Ask whether the user reached their goal; for new users, whether onboarding finished.",
    },
}
DRIVER_ACTIONS: dict[str, str] = {
    "recency": "re_engagement_email",
    "activity_drop": "re_engagement_email",
    "narrow_usage": "feature_training",
    "errors": "support_follow_up",
    "workspace_decline": "admin_outreach",
    "tenure": "success_check_in",
    "low_usage": "usage_review",
}
FALLBACK_ACTION = "success_check_in"
_DESCRIPTIONS = {f.name: f.description for f in USER_BEHAVIOUR.features}
#: XGBoost explainer settings when the champion is another kind: small trees keep TreeSHAP cheap.
EXPLAINER_PARAMS: dict[str, Any] = {"n_estimators": 150, "learning_rate": 0.1, "max_depth": 4}
HIGH_RISK = 0.7
MEDIUM_RISK = 0.4

# skops refuses unknown types; these are the only non-default ones our pipelines hold.
_SKOPS_TRUSTED = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
})


class InsufficientDataError(ValueError):
    """Too few churned or retained training rows; the pipeline records an "insufficient data" status.

    Attributes:
        counts: ``{"churned": int, "retained": int}``.
        min_per_class: The minimum that was required for each class.
    """

    def __init__(self, counts: dict[str, int], min_per_class: int):
        self.counts = counts
        self.min_per_class = min_per_class
        super().__init__(
            f"insufficient data: {counts['churned']} churned and {counts['retained']} retained rows, "
            f"need at least {min_per_class} of each. Add snapshot dates or lower min_per_class."
        )


def check_sufficient(y: Sequence[int] | pd.Series, min_per_class: int = 100) -> tuple[bool, dict[str, int]]:
    """Check that both classes have enough rows to train and calibrate on.

    Args:
        y: Labels, 1 = churned, 0 = retained.
        min_per_class: Minimum rows needed in each class.

    Returns:
        ``(ok, {"churned": n1, "retained": n0})``.
    """
    labels = _labels(y)
    counts = {"churned": int(labels.sum()), "retained": int(len(labels) - labels.sum())}
    return min(counts.values()) >= min_per_class, counts


# ---------------------------------------------------------------------------------------------
# Training data
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainingSet:
    """Snapshot rows for training, aligned by position.

    Attributes:
        X: Feature columns (a subset of ``USER_BEHAVIOUR.columns``), one row per user snapshot.
        y: 1 = churned (no activity in the 30 days after ``as_of``), 0 = retained.
        as_of: Snapshot date of each row, kept outside ``X`` for time-based splits.
        keys: ``workspace_id`` and ``user_id`` of each row.
        days_to_inactivity: Optional target for :class:`TimeToChurnModel`, as made by
            :func:`inactivity_targets`: ``1..window`` = the user's lapse starts that many days after
            ``as_of``; ``inf`` = no lapse starts within the window; NaN = not known yet (row skipped).
    """

    X: pd.DataFrame
    y: pd.Series
    as_of: pd.Series
    keys: pd.DataFrame
    days_to_inactivity: pd.Series | None = None

    def __post_init__(self) -> None:
        n = len(self.X)
        sizes = {"y": len(self.y), "as_of": len(self.as_of), "keys": len(self.keys)}
        if self.days_to_inactivity is not None:
            sizes["days_to_inactivity"] = len(self.days_to_inactivity)
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise ValueError(f"TrainingSet parts must all have len(X) = {n} rows; got {wrong}")
        missing = [k for k in KEYS if k not in self.keys.columns]
        if missing:
            raise ValueError(f"keys must have columns {list(KEYS)}; missing {missing}")
        _labels(self.y)
        self.as_of = pd.Series(pd.to_datetime(np.asarray(self.as_of)), index=self.X.index, name="as_of")

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        label: str = "churned",
        features: Sequence[str] | None = None,
        days_to_inactivity: str | None = None,
    ) -> TrainingSet:
        """Split one long frame (keys, ``as_of``, features, label) into a TrainingSet.

        Args:
            frame: Rows with ``workspace_id``, ``user_id``, ``as_of``, the features and the label.
            label: Name of the label column.
            features: Feature columns; by default every ``USER_BEHAVIOUR`` column present.
            days_to_inactivity: Optional name of the time-to-inactivity column.
        """
        cols = list(features) if features is not None else [c for c in USER_BEHAVIOUR.columns if c in frame]
        return cls(
            X=frame[cols],
            y=frame[label],
            as_of=frame["as_of"],
            keys=frame[list(KEYS)],
            days_to_inactivity=frame[days_to_inactivity] if days_to_inactivity else None,
        )

    @property
    def dates(self) -> list[pd.Timestamp]:
        """Distinct as-of dates, oldest first."""
        return sorted(self.as_of.unique())

    def subset(self, mask: np.ndarray) -> TrainingSet:
        """Rows where the boolean ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return TrainingSet(
            X=self.X[mask],
            y=self.y[mask],
            as_of=self.as_of[mask],
            keys=self.keys[mask],
            days_to_inactivity=None if self.days_to_inactivity is None else self.days_to_inactivity[mask],
        )


def inactivity_targets(
    active_days: pd.DataFrame, snapshots: pd.DataFrame, observed_until: Any, window: int = 30
) -> pd.Series:
    """Targets for :class:`TimeToChurnModel`: in how many days does each snapshot's user lapse?

    A lapse is ``window`` days without activity. It starts the day after the user's last active
    day; for a user with no activity in ``(as_of, as_of + window]`` (label churned) it starts on
    day 1. Deciding whether a later last activity starts a lapse needs events up to that day plus
    ``window``.

    Args:
        active_days: One row per active day: ``workspace_id``, ``user_id``, ``day``.
        snapshots: ``workspace_id``, ``user_id``, ``as_of`` of the snapshot rows.
        observed_until: Last day with complete events.
        window: Lapse length and horizon, in days.

    Returns:
        Float series aligned with ``snapshots``: ``1..window`` = lapse starts that many days after
        ``as_of``; ``inf`` = no lapse starts within the window; NaN = not known yet.
    """
    keys = list(KEYS)
    w = np.timedelta64(window, "D")
    until = np.datetime64(pd.Timestamp(observed_until), "ns")
    snap = snapshots[keys].copy()
    snap["as_of"] = pd.to_datetime(snapshots["as_of"].to_numpy()).astype("datetime64[ns]")
    snap["_row"] = np.arange(len(snap))
    snap["_end"] = snap["as_of"] + w
    snap = snap.sort_values("_end")
    act = active_days[[*keys, "day"]].assign(day=lambda d: pd.to_datetime(d["day"]).astype("datetime64[ns]"))
    act = act.drop_duplicates()
    act = act.sort_values("day")
    last = pd.merge_asof(snap, act.rename(columns={"day": "_last"}), left_on="_end", right_on="_last", by=keys)
    nxt = pd.merge_asof(
        snap, act.rename(columns={"day": "_next"}), left_on="_end", right_on="_next", by=keys,
        direction="forward", allow_exact_matches=False,
    )
    last = last.sort_values("_row")
    t = last["as_of"].to_numpy()
    last_day = last["_last"].to_numpy()
    next_day = nxt.sort_values("_row")["_next"].to_numpy()

    quiet = pd.isna(last_day) | (last_day <= t)  # no activity in (T, T + window]
    start = (last_day - t) / np.timedelta64(1, "D") + 1
    known = ~pd.isna(next_day) | (last_day + w <= until)
    lapses = pd.isna(next_day) | (next_day - last_day > w)
    out = np.where(lapses, start, np.inf)
    out = np.where(known, out, np.nan)
    out = np.where(start > window, np.inf, out)  # active on the window's last day
    out = np.where(quiet, 1.0, out)
    out[t + w > until] = np.nan
    return pd.Series(out, index=snapshots.index, name="days_to_inactivity")


# ---------------------------------------------------------------------------------------------
# Classifiers
# ---------------------------------------------------------------------------------------------


def _labels(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("labels must be 0 (retained) or 1 (churned)")
    return arr.astype(np.int8)


def _matrix(X: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Float matrix of ``columns`` in order, with ``±inf`` as NaN."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError("X must be a pandas DataFrame with named feature columns")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(f"X lacks feature columns {missing}; score with the columns the model was trained on")
    m = X[list(columns)].astype("float64").to_numpy(copy=True)
    m[~np.isfinite(m)] = np.nan
    return m


def _signed_log1p(m: np.ndarray) -> np.ndarray:
    return np.sign(m) * np.log1p(np.abs(m))


class ChurnClassifier(ClassifierMixin, BaseEstimator):
    """Base of the churn classifiers: DataFrame in, ``predict_proba`` of shape ``(n, 2)`` out."""

    kind: str = ""

    def fit(self, X: pd.DataFrame, y: Sequence[int] | pd.Series) -> ChurnClassifier:
        """Fit on feature frame ``X`` and labels ``y`` (1 = churned)."""
        labels = _labels(y)
        if len(labels) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(labels)}")
        if len(np.unique(labels)) < 2:
            raise ValueError("training labels hold one class only; need churned and retained rows")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.classes_ = np.array([0, 1])
        self._fit(_matrix(X, self.feature_names_in_), labels)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Columns: P(retained), P(churned)."""
        m = _matrix(X, self.feature_names_in_)
        p = self._proba(m) if len(m) else np.empty(0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where P(churned) ≥ 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _proba(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # Persistence: JSON-able state in the manifest, the fitted model in one file.
    def _state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state` returned."""

    def _save_model(self, stem: Path) -> str:
        raise NotImplementedError

    def _load_model(self, path: Path) -> None:
        raise NotImplementedError

    def save(self, directory: Path, name: str) -> dict[str, Any]:
        """Write the fitted model to ``directory`` and return its manifest entry."""
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}
        return {
            "kind": self.kind,
            "params": params,
            "feature_names": list(self.feature_names_in_),
            "state": self._state(),
            "file": self._save_model(Path(directory) / name),
        }

    @staticmethod
    def load(entry: dict[str, Any], directory: Path) -> ChurnClassifier:
        """Rebuild a classifier from a manifest entry written by :meth:`save`."""
        clf = make_classifier(entry["kind"], **entry["params"])
        clf.feature_names_in_ = np.asarray(entry["feature_names"], dtype=object)
        clf.n_features_in_ = len(clf.feature_names_in_)
        clf.classes_ = np.array([0, 1])
        clf._set_state(entry["state"])
        clf._load_model(Path(directory) / entry["file"])
        return clf


def _xgb_params(max_depth: int, learning_rate: float, random_state: int, nthread: int, **extra: Any) -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": max_depth,
        "eta": learning_rate,
        "seed": random_state,
        "nthread": nthread,
        **extra,
    }


def _save_booster(booster: xgb.Booster, stem: Path) -> str:
    path = stem.with_suffix(".json")
    booster.save_model(path)
    return path.name


def _load_booster(path: Path, nthread: int) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(path)
    booster.set_param({"nthread": nthread})
    return booster


class XGBoostChurnClassifier(ChurnClassifier):
    """Gradient-boosted trees (XGBoost ``hist``); the default champion candidate.

    Args:
        n_estimators: Boosting rounds.
        learning_rate: Shrinkage per round.
        max_depth: Tree depth.
        min_child_weight: Minimum hessian per leaf.
        subsample: Row share per tree.
        colsample_bytree: Column share per tree.
        reg_lambda: L2 penalty on leaf weights.
        random_state: Seed.
        nthread: OpenMP threads; keep at or below the core count.
    """

    kind = "xgboost"

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.08,
        max_depth: int = 5,
        min_child_weight: float = 5.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        random_state: int = 0,
        nthread: int = 2,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.nthread = nthread

    def _dmatrix(self, X: np.ndarray, y: np.ndarray | None = None) -> xgb.DMatrix:
        return xgb.DMatrix(X, label=y, feature_names=list(self.feature_names_in_), nthread=self.nthread)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        params = _xgb_params(
            self.max_depth, self.learning_rate, self.random_state, self.nthread,
            min_child_weight=self.min_child_weight, subsample=self.subsample,
            colsample_bytree=self.colsample_bytree, reg_lambda=self.reg_lambda,
        )
        self.booster_ = xgb.train(params, self._dmatrix(X, y), num_boost_round=self.n_estimators)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return self.booster_.predict(self._dmatrix(X)).astype(np.float64)

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-prediction TreeSHAP contributions to the log-odds, shape ``(n, n_features)``.

        The bias column XGBoost appends is dropped; rows sum to log-odds minus that bias.
        """
        m = _matrix(X, self.feature_names_in_)
        contribs = self.booster_.predict(self._dmatrix(m), pred_contribs=True)
        return contribs.reshape(len(m), self.n_features_in_ + 1)[:, :-1]

    def _save_model(self, stem: Path) -> str:
        return _save_booster(self.booster_, stem)

    def _load_model(self, path: Path) -> None:
        self.booster_ = _load_booster(path, self.nthread)


class _SklearnChurnClassifier(ChurnClassifier):
    """A scikit-learn pipeline behind the churn classifier interface, saved with skops."""

    def _build(self, n_rows: int) -> Pipeline:
        raise NotImplementedError

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        if self.log_idx_:
            X[:, self.log_idx_] = _signed_log1p(X[:, self.log_idx_])
        return X

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        names = list(self.feature_names_in_)
        wanted = HEAVY_TAILED if self.log_columns is None else set(self.log_columns)
        self.log_idx_ = [j for j, c in enumerate(names) if c in wanted]
        self.model_ = self._build(len(X)).fit(self._inputs(X), y)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(self._inputs(X))[:, 1]

    def _state(self) -> dict[str, Any]:
        return {"log_idx": self.log_idx_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.log_idx_ = list(state["log_idx"])

    def _save_model(self, stem: Path) -> str:
        path = stem.with_suffix(".skops")
        sio.dump(self.model_, path)
        return path.name

    def _load_model(self, path: Path) -> None:
        untrusted = set(sio.get_untrusted_types(file=path))
        if untrusted - _SKOPS_TRUSTED:
            raise ValueError(f"{path} holds unexpected types {sorted(untrusted - _SKOPS_TRUSTED)}; refusing to load")
        self.model_ = sio.load(path, trusted=sorted(untrusted))


class RandomForestChurnClassifier(_SklearnChurnClassifier):
    """Random forest on raw features (missing values handled by the trees).

    Args:
        n_estimators: Trees.
        max_depth: Tree depth.
        min_samples_leaf: Minimum rows per leaf.
        max_features: Features tried per split.
        max_samples: Bootstrap rows per tree: a count (capped at the training rows), a share, or
            None for all rows. The default count keeps fits fast on millions of rows.
        random_state: Seed.
        n_jobs: Worker threads.
    """

    kind = "random_forest"

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int | None = 10,
        min_samples_leaf: int = 20,
        max_features: str | float = "sqrt",
        max_samples: int | float | None = 30_000,
        random_state: int = 0,
        n_jobs: int = 2,
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.log_idx_ = []
        self.model_ = self._build(len(X)).fit(X, y)
        # Threads add up tree votes in any order; one thread keeps scores bit-identical.
        self.model_.set_params(randomforestclassifier__n_jobs=1)

    def _build(self, n_rows: int) -> Pipeline:
        max_samples = min(self.max_samples, n_rows) if isinstance(self.max_samples, int) else self.max_samples
        return make_pipeline(RandomForestClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, max_samples=max_samples,
            random_state=self.random_state, n_jobs=self.n_jobs,
        ))


class LogisticChurnClassifier(_SklearnChurnClassifier):
    """L2 logistic regression on signed-log1p, median-imputed, standardised features.

    Args:
        C: Inverse regularisation strength.
        max_iter: Solver iterations.
        log_columns: Columns to log-transform; None = those in :data:`HEAVY_TAILED`.
        random_state: Seed (kept for a uniform interface; lbfgs is deterministic).
    """

    kind = "logistic"

    def __init__(
        self, C: float = 1.0, max_iter: int = 1000, log_columns: Sequence[str] | None = None, random_state: int = 0
    ):
        self.C = C
        self.max_iter = max_iter
        self.log_columns = log_columns
        self.random_state = random_state

    def _build(self, n_rows: int) -> Pipeline:
        return make_pipeline(
            SimpleImputer(strategy="median"),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state),
        )


class MLPChurnClassifier(_SklearnChurnClassifier):
    """Small multilayer perceptron on the same inputs as the logistic model, with early stopping.

    Args:
        hidden_layer_sizes: Units per hidden layer.
        alpha: L2 penalty.
        learning_rate_init: Adam step size.
        batch_size: Minibatch size.
        max_iter: Maximum epochs.
        n_iter_no_change: Epochs without validation gain before stopping.
        log_columns: Columns to log-transform; None = those in :data:`HEAVY_TAILED`.
        random_state: Seed (weights, shuffling and the early-stopping split).
    """

    kind = "mlp"
    validation_fraction = 0.1  # rows held out for early stopping

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (32, 16),
        alpha: float = 1e-3,
        learning_rate_init: float = 1e-3,
        batch_size: int = 512,
        max_iter: int = 60,
        n_iter_no_change: int = 5,
        log_columns: Sequence[str] | None = None,
        random_state: int = 0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.n_iter_no_change = n_iter_no_change
        self.log_columns = log_columns
        self.random_state = random_state

    def _build(self, n_rows: int) -> Pipeline:
        return make_pipeline(
            SimpleImputer(strategy="median"),
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                alpha=self.alpha,
                learning_rate_init=self.learning_rate_init,
                batch_size=min(self.batch_size, int(n_rows * (1 - self.validation_fraction))),
                max_iter=self.max_iter,
                early_stopping=True,
                validation_fraction=self.validation_fraction,
                n_iter_no_change=self.n_iter_no_change,
                random_state=self.random_state,
            ),
        )


CLASSIFIERS: dict[str, type[ChurnClassifier]] = {
    "xgboost": XGBoostChurnClassifier,
    "random_forest": RandomForestChurnClassifier,
    "logistic": LogisticChurnClassifier,
    "mlp": MLPChurnClassifier,
}


def make_classifier(kind: str, **params: Any) -> ChurnClassifier:
    """A new, unfitted churn classifier.

    Args:
        kind: One of ``xgboost``, ``random_forest``, ``logistic``, ``mlp``.
        **params: Constructor arguments of that kind's class.

    Raises:
        ValueError: For an unknown kind.
    """
    if kind not in CLASSIFIERS:
        raise ValueError(f"unknown classifier kind {kind!r}; use one of {list(CLASSIFIERS)}")
    return CLASSIFIERS[kind](**params)


# ---------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------

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


def _iso(ts: Any) -> str:
    return pd.Timestamp(ts).date().isoformat()


# ---------------------------------------------------------------------------------------------
# Metrics and plots
# ---------------------------------------------------------------------------------------------


def expected_calibration_error(y: Sequence[int], p: Sequence[float], n_bins: int = 10) -> float:
    """Expected calibration error over ``n_bins`` equal-width probability bins.

    The row-weighted mean of ``|churn rate - mean probability|`` across non-empty bins.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    return float(np.abs(sum_y - sum_p).sum() / len(y))


def top_decile_lift(y: Sequence[int], p: Sequence[float]) -> float:
    """Churn rate among the 10% highest scores divided by the overall churn rate."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    n_top = max(1, math.ceil(0.1 * len(y)))
    top = np.argsort(-p, kind="stable")[:n_top]
    return float(y[top].mean() / y.mean()) if y.mean() > 0 else float("nan")


def evaluate(y: Sequence[int], p: Sequence[float]) -> dict[str, float]:
    """Out-of-time metrics of churn probabilities.

    Returns:
        ``auc``, ``pr_auc`` (average precision), ``brier``, ``ece``, ``top_decile_lift``,
        ``base_rate`` and ``n``. AUC and PR-AUC are NaN when ``y`` holds one class.
    """
    y, p = _labels(y), np.asarray(p, dtype=float)
    two = len(np.unique(y)) == 2
    return {
        "auc": float(roc_auc_score(y, p)) if two else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if two else float("nan"),
        "brier": float(brier_score_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": top_decile_lift(y, p),
        "base_rate": float(y.mean()),
        "n": int(len(y)),
    }


def _figure(width: float = 5.0, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def calibration_plot(y: Sequence[int], p: Sequence[float], n_bins: int = 10) -> Figure:
    """Reliability diagram (churn rate against mean probability per bin) with a score histogram."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    seen = count > 0
    mean_p = np.bincount(bins, weights=p, minlength=n_bins)[seen] / count[seen]
    rate = np.bincount(bins, weights=y, minlength=n_bins)[seen] / count[seen]
    fig = _figure()
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.plot(mean_p, rate, marker="o", label=f"model (ECE {expected_calibration_error(y, p, n_bins):.3f})")
    ax.set_ylabel("observed churn rate")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    hist.hist(p, bins=n_bins, range=(0, 1), color="tab:blue", alpha=0.6)
    hist.set_xlabel("predicted churn probability")
    hist.set_ylabel("users")
    fig.tight_layout()
    return fig


def roc_plot(y: Sequence[int], p: Sequence[float]) -> Figure:
    """ROC curve with its AUC."""
    fpr, tpr, _ = roc_curve(_labels(y), np.asarray(p, dtype=float))
    fig = _figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(_labels(y), p):.3f}")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def risk_score(p: float | Sequence[float]) -> np.ndarray:
    """Risk score 0–100: ``round(100 * p, 1)`` of the calibrated probability."""
    return np.round(100.0 * np.clip(np.asarray(p, dtype=float), 0.0, 1.0), 1)


# ---------------------------------------------------------------------------------------------
# Model selection
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Explanations and actions
# ---------------------------------------------------------------------------------------------

_PERCENT = {"frequency_90", "error_rate_28", "wow_ratio", "ws_credits_trend", "share_of_ws_credits_28"}


def format_value(column: str, value: float | None) -> str:
    """A feature value as the risk-factor texts write it (``18``, ``18%``, ``1,234.5``, ``-0.6``)."""
    if value is None or not np.isfinite(value):
        return "unknown"
    if column in _PERCENT:
        return f"{100 * value:.0f}%"
    if column == "activity_slope_8w":
        return f"{value:+.1f}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _plural(n: float, word: str) -> str:
    return f"{format_value('', n)} {word}{'' if n == 1 else 's'}"


def describe_driver(column: str, row: Mapping[str, float]) -> str:
    """Words for one feature of one user, using related columns of ``row`` where present.

    Args:
        column: The feature that drives the risk.
        row: The user's feature values by column name (may hold NaN).

    Returns:
        A short phrase that includes the value, e.g. "active days in last 28 fell from 18 to 4".
    """
    def get(c: str) -> float | None:
        v = row.get(c)
        return None if v is None or not np.isfinite(v) else float(v)

    v = get(column)
    f = lambda c: format_value(c, get(c))  # noqa: E731
    if v is None:
        return f"{_DESCRIPTIONS.get(column, column)}: unknown"
    cur, prev = get("active_days_28"), get("active_days_prev_28")
    pair = cur is not None and prev is not None
    if column in ("active_days_28", "active_days_prev_28", "engagement_drop_28") and pair:
        if prev == cur:
            text = f"active on {f('active_days_28')} of the last 28 days (same as the 28 before)"
        else:
            trend = "fell" if prev > cur else "rose"
            text = f"active days in last 28 {trend} from {f('active_days_prev_28')} to {f('active_days_28')}"
        return text + (f" (change {format_value(column, -v)})" if column == "engagement_drop_28" else "")
    if column.startswith("weekly_active_w"):
        week = int(column.removeprefix("weekly_active_w"))
        return f"active on {_plural(v, 'day')} of the 7 days {7 * week}-{7 * week + 6} days ago"
    if column in ("features_used_28", "features_used_90") and get("features_used_28") is not None:
        text = f"uses {_plural(get('features_used_28'), 'feature')}"
        if get("features_used_90") is not None:
            return f"{text} (of {f('features_used_90')} in last 90 days)"
        return f"{text} in the last 28 days"
    ws_pair = get("ws_active_users_28") is not None and get("ws_users_ever") is not None
    if column in ("ws_active_users_28", "ws_users_ever") and ws_pair:
        return f"workspace has {_plural(get('ws_active_users_28'), 'active user')} (of {f('ws_users_ever')} ever)"
    if column == "share_of_ws_credits_28":
        text = f"accounts for {f(column)} of workspace credits (last 28 days)"
        trend = get("ws_credits_trend")
        if trend is not None and trend < 1:
            text += f" in a shrinking workspace (credits at {f('ws_credits_trend')} of the 28 days before)"
        return text
    if column == "errors_28" and get("error_rate_28") is not None:
        return f"{_plural(v, 'failed call')} in last 28 days (error rate {f('error_rate_28')})"
    templates = {
        "recency_days": lambda: (
            "last active on the as-of day (recency 0 days)" if v == 0 else f"no activity for {_plural(v, 'day')}"
        ),
        "tenure_days": lambda: (
            f"new user, first seen {_plural(v, 'day')} ago" if v < 30 else f"user for {_plural(v, 'day')}"
        ),
        "frequency_90": lambda: f"active on {f(column)} of days in the last 90",
        "active_days_7": lambda: f"active on {f(column)} of the last 7 days",
        "active_days_28": lambda: f"active on {f(column)} of the last 28 days",
        "active_days_prev_28": lambda: f"active on {f(column)} days in the 28 days before the last 28",
        "engagement_drop_28": lambda: f"active days changed by {format_value(column, -v)} vs the previous 28 days",
        "active_days_90": lambda: f"active on {f(column)} of the last 90 days",
        "activity_slope_8w": lambda: (
            f"weekly active days trending {'down' if v < 0 else 'up'} ({f(column)} days/week over 8 weeks)"
        ),
        "wow_ratio": lambda: f"activity in the last 7 days at {f(column)} of the week before",
        "calls_7": lambda: f"{_plural(v, 'call')} in the last 7 days",
        "calls_28": lambda: f"{_plural(v, 'call')} in the last 28 days",
        "credits_28": lambda: f"{f(column)} credits used in the last 28 days",
        "credits_90": lambda: f"{f(column)} credits used in the last 90 days",
        "credits_per_active_day_28": lambda: f"{f(column)} credits per active day (last 28 days)",
        "features_used_90": lambda: f"used {_plural(v, 'feature')} in the last 90 days",
        "errors_28": lambda: f"{_plural(v, 'failed call')} in last 28 days",
        "error_rate_28": lambda: f"error rate {f(column)} in last 28 days",
        "ws_active_users_28": lambda: f"workspace has {_plural(v, 'active user')} in the last 28 days",
        "ws_users_ever": lambda: f"workspace has {_plural(v, 'user')} in total",
        "ws_credits_trend": lambda: (
            f"workspace credits {'fell' if v < 1 else 'rose'} to {f(column)} of the previous 28 days"
        ),
    }
    if column in templates:
        return templates[column]()
    return f"{column} = {f(column)}"


def explain_drivers(
    contributions: np.ndarray, X: pd.DataFrame, top_k: int = 3, min_contribution: float = 0.05
) -> list[list[dict[str, Any]]]:
    """Top-k risk-raising drivers per row, in words.

    Columns are grouped by :data:`DRIVER_OF_COLUMN` (others form their own group); a group's
    contribution is the sum of its columns' contributions, and it is described by its column with
    the largest contribution.

    Args:
        contributions: Per-row, per-column contributions to the log-odds, shape ``(n, len(X.columns))``.
        X: The rows' feature values, columns in the same order.
        top_k: Drivers per row at most; only risk-raising ones are returned.
        min_contribution: Smallest log-odds contribution reported (0.05 is about one percentage
            point at a 30% probability); weaker drivers are noise, not reasons.

    Returns:
        Per row, a list of ``{"feature", "driver", "contribution", "value", "direction", "text"}``,
        strongest first.
    """
    columns = list(X.columns)
    groups: dict[str, list[int]] = {}
    for j, c in enumerate(columns):
        groups.setdefault(DRIVER_OF_COLUMN.get(c, c), []).append(j)
    names = list(groups)
    member = np.zeros((len(columns), len(names)))
    rep = np.empty((len(X), len(names)), dtype=int)
    for g, idx in enumerate(groups.values()):
        member[idx, g] = 1.0
        rep[:, g] = np.asarray(idx)[contributions[:, idx].argmax(axis=1)]
    totals = contributions @ member
    order = np.argsort(-totals, axis=1, kind="stable")[:, :top_k]
    values = _matrix(X, columns)
    out = []
    for i in range(len(X)):
        row: dict[str, float] | None = None
        drivers = []
        for g in order[i]:
            total = float(totals[i, g])
            if total < min_contribution:
                break
            row = row or dict(zip(columns, values[i]))
            j = rep[i, g]
            value = values[i, j]
            drivers.append({
                "feature": columns[j],
                "driver": names[g],
                "contribution": round(total, 4),
                "value": None if np.isnan(value) else float(value),
                "direction": "raises risk",
                "text": describe_driver(columns[j], row),
            })
        out.append(drivers)
    return out


def _priority(probability: float) -> str:
    return "high" if probability >= HIGH_RISK else "medium" if probability >= MEDIUM_RISK else "low"


def recommend_actions(drivers: list[dict[str, Any]], probability: float) -> list[dict[str, Any]]:
    """Interventions for one user from their drivers, through :data:`DRIVER_ACTIONS`.

    Drivers that map to the same action are merged; the order follows the strongest driver.
    Priority is ``high`` from probability 0.7, ``medium`` from 0.4, else ``low``. Without a mapped
    driver, users at medium or high risk get the fallback ``success_check_in``.

    Args:
        drivers: Output of :func:`explain_drivers` for one user.
        probability: The user's calibrated churn probability.

    Returns:
        ``[{"action_id", "title", "reason", "priority", "drivers"}]``; ``reason`` quotes the drivers.
    """
    priority = _priority(probability)
    actions: dict[str, dict[str, Any]] = {}
    for d in drivers:
        action_id = DRIVER_ACTIONS.get(d.get("driver") or DRIVER_OF_COLUMN.get(d["feature"], ""))
        if action_id is None:
            continue
        act = actions.setdefault(action_id, {
            "action_id": action_id, "title": ACTIONS[action_id]["title"], "reason": [],
            "priority": priority, "drivers": [],
        })
        act["reason"].append(d["text"])
        act["drivers"].append(d["feature"])
    if not actions and priority != "low":
        actions[FALLBACK_ACTION] = {
            "action_id": FALLBACK_ACTION, "title": ACTIONS[FALLBACK_ACTION]["title"],
            "reason": [f"churn probability {probability:.0%}"], "priority": priority, "drivers": [],
        }
    return [{**a, "reason": "; ".join(a["reason"])} for a in actions.values()]


# ---------------------------------------------------------------------------------------------
# Time to churn
# ---------------------------------------------------------------------------------------------


class TimeToChurnModel:
    """Days until a user's lapse starts, from a discrete-time model of the lapse-start CDF.

    One XGBoost classifier is fitted on rows stacked once per horizon ``k`` (``k`` is an extra input
    with a monotone-increasing constraint) to estimate ``F(k) = P(lapse starts within k days)``.
    The prediction is the median: the day where the piecewise-linear ``F`` (``F(0) = 0``) reaches
    0.5, rounded up; ``-1`` when ``F(window) < 0.5``, i.e. not expected within the window.
    A lapse is ``window`` days without activity; see :func:`inactivity_targets`.

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


# ---------------------------------------------------------------------------------------------
# The bundle
# ---------------------------------------------------------------------------------------------


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
    ) -> ChurnModel:
        """Select, calibrate and fit the champion, its explainer and the time-to-churn model.

        Args:
            train: Training snapshots (keep the test snapshot out).
            kinds: Candidate classifier kinds.
            n_folds: Expanding-window folds for :func:`select_model`.
            params: Constructor arguments per kind.
            calibration: Calibration method, see :func:`fit_calibrated`.
            calibration_snapshots: Latest as-of dates held out for calibration.
            gap_days: Gap between training snapshots and validation/calibration dates.
            min_per_class: Minimum churned and retained rows, see :func:`check_sufficient`.
            explainer_params: XGBoost explainer arguments when the champion is not XGBoost;
                default :data:`EXPLAINER_PARAMS`.
            time_horizons: Horizons of the time-to-churn model; the last is its window.
            random_state: Seed for every model.

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
            "feature_set": USER_BEHAVIOUR.key if set(columns) <= set(USER_BEHAVIOUR.columns) else None,
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
        """Top-k risk-raising drivers per row; see :func:`explain_drivers`."""
        frame = self._features(X)
        return explain_drivers(self.explainer.contributions(frame), frame, top_k)

    def predict(self, X: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
        """Score users.

        Args:
            X: Feature frame holding at least :attr:`feature_columns`.
            top_k: Risk factors per user.

        Returns:
            Frame on ``X``'s index with ``churn_probability``, ``risk_score`` (0–100),
            ``risk_factors`` (list of dicts), ``recommended_actions`` (list of dicts) and
            ``days_until_churn`` (nullable Int64; NULL = lapse not expected within the window, or
            no time-to-churn model).
        """
        columns = ["churn_probability", "risk_score", "risk_factors", "recommended_actions", "days_until_churn"]
        if len(self._features(X)) == 0:
            return pd.DataFrame(columns=columns, index=X.index)
        p = self.predict_proba(X)
        drivers = self.explain(X, top_k)
        days = np.full(len(X), np.nan)
        if self.time_model is not None:
            raw = self.time_model.predict_days(self._features(X))
            days = np.where(raw > 0, raw, np.nan)
        values = [
            p,
            risk_score(p),
            drivers,
            [recommend_actions(d, pi) for d, pi in zip(drivers, p)],
            pd.array(days, dtype="Int64"),
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
