"""Churn classifiers: ``xgboost`` (native booster, ``hist``), ``random_forest``, ``logistic`` and ``mlp``.

``logistic`` and ``mlp`` apply a signed ``log1p`` to the heavy-tailed counts in :data:`HEAVY_TAILED`,
impute medians and standardise. All take a DataFrame, treat ``±inf`` as missing, run on 2 threads and
are seeded. Persistence: XGBoost boosters as JSON (``booster.save_model``), scikit-learn pipelines as
skops files; no pickle.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .data import _labels

CLASSIFIER_KINDS: tuple[str, ...] = ("xgboost", "random_forest", "logistic", "mlp")

#: Counts and ratios with long right tails; ``logistic`` and ``mlp`` see ``sign(x) * log1p(|x|)``.
HEAVY_TAILED: frozenset[str] = frozenset({
    "tenure_days", "recency_days", "calls_7", "calls_28", "credits_28", "credits_90", "errors_28",
    "wow_ratio", "ws_active_users_28", "ws_users_ever", "ws_credits_trend", "credits_per_active_day_28",
})

# skops refuses unknown types; these are the only non-default ones our pipelines hold.
_SKOPS_TRUSTED = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
})


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
