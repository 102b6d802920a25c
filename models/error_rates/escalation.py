"""The escalation model: P(a breach is confirmed within the horizon) and, if so, in how many days.

Trained on point-in-time snapshots (agent × day, features as of the day, label from the following
``horizon`` days, ``models.error_rates.breaches``). Two classifiers compete, a gradient-boosted tree model
(XGBoost) and a standardised logistic regression; the one with the better out-of-time log loss is refitted on
every labelled snapshot. A second, small XGBoost regression on the positive snapshots predicts
``log(days until the breach)``: the expected breach date. Serialised as JSON (no pickle).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CLASSIFIER_KINDS = ("xgboost", "logistic")
XGB_PARAMS = {"n_estimators": 250, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.8,
              "colsample_bytree": 0.8, "min_child_weight": 5.0, "reg_lambda": 1.0, "tree_method": "hist"}
DELAY_PARAMS = {"n_estimators": 120, "max_depth": 3, "learning_rate": 0.08, "subsample": 0.8,
                "min_child_weight": 5.0, "tree_method": "hist"}


def evaluate(y, p) -> dict[str, float]:
    """AUC, average precision, Brier, log loss, expected calibration error (10 bins), base rate, n."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y, p = np.asarray(y, dtype=float), np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    out = {"n": float(len(y)), "base_rate": float(y.mean()) if len(y) else float("nan")}
    if len(y) == 0 or y.min() == y.max():
        return {**out, "auc": float("nan"), "pr_auc": float("nan"), "brier": float("nan"),
                "log_loss": float("nan"), "ece": float("nan")}
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(y[bins == b].mean() - p[bins == b].mean()) * (bins == b).mean() for b in range(10) if (bins == b).any())
    return {**out, "auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
            "brier": float(brier_score_loss(y, p)), "log_loss": float(log_loss(y, p)), "ece": float(ece)}


@dataclass
class EscalationModel:
    """A fitted escalation model; ``predict`` gives P(breach within the horizon), ``expected_days`` the delay."""

    kind: str
    features: list[str]
    horizon: int
    classifier: object
    delay: object | None
    delay_sd: float
    fallback_days: float
    means: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scales: np.ndarray = field(default_factory=lambda: np.ones(0))
    metrics: dict = field(default_factory=dict)

    def _x(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame]
        if missing:
            raise ValueError(f"escalation model needs columns {missing}")
        return frame[self.features].to_numpy(dtype=float)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if len(frame) == 0:
            return np.zeros(0)
        x = self._x(frame)
        if self.kind == "xgboost":
            return self.classifier.predict_proba(x)[:, 1]
        return self.classifier.predict_proba((x - self.means) / self.scales)[:, 1]

    def expected_days(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected days until the breach is confirmed, given that it comes within the horizon (1..horizon)."""
        if len(frame) == 0:
            return np.zeros(0)
        if self.delay is None:
            return np.full(len(frame), self.fallback_days)
        return np.clip(np.exp(self.delay.predict(self._x(frame))), 1, self.horizon)

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions to the log-odds, ``(rows, features)`` (SHAP values for XGBoost)."""
        if len(frame) == 0:
            return np.zeros((0, len(self.features)))
        x = self._x(frame)
        if self.kind == "xgboost":
            import xgboost as xgb

            return self.classifier.get_booster().predict(xgb.DMatrix(x), pred_contribs=True)[:, :-1]
        return ((x - self.means) / self.scales) * self.classifier.coef_[0]

    def importance(self) -> dict[str, float]:
        """Share of total importance per feature (gain for XGBoost, |coefficient| for the logistic model)."""
        if self.kind == "xgboost":
            gain = self.classifier.get_booster().get_score(importance_type="total_gain")
            raw = np.array([gain.get(f"f{i}", 0.0) for i in range(len(self.features))])
        else:
            raw = np.abs(self.classifier.coef_[0])
        total = raw.sum() or 1.0
        return {f: float(v / total) for f, v in zip(self.features, raw)}

    def to_json(self) -> dict:
        """Everything needed to rebuild the model (trees as XGBoost JSON, coefficients as lists)."""
        out = {"kind": self.kind, "features": self.features, "horizon": self.horizon, "delay_sd": self.delay_sd,
               "fallback_days": self.fallback_days, "means": self.means.tolist(), "scales": self.scales.tolist(),
               "metrics": self.metrics}
        if self.kind == "xgboost":
            out["classifier"] = json.loads(self.classifier.get_booster().save_raw("json").decode())
        else:
            out["classifier"] = {"coef": self.classifier.coef_.tolist(), "intercept": self.classifier.intercept_.tolist()}
        out["delay"] = json.loads(self.delay.get_booster().save_raw("json").decode()) if self.delay is not None else None
        return out

    @classmethod
    def from_json(cls, data: dict) -> EscalationModel:
        import xgboost as xgb
        from sklearn.linear_model import LogisticRegression

        if data["kind"] == "xgboost":
            clf = xgb.XGBClassifier()
            clf.load_model(bytearray(json.dumps(data["classifier"]).encode()))
        else:
            clf = LogisticRegression()
            clf.coef_ = np.array(data["classifier"]["coef"])
            clf.intercept_ = np.array(data["classifier"]["intercept"])
            clf.classes_ = np.array([0.0, 1.0])
        delay = None
        if data.get("delay") is not None:
            delay = xgb.XGBRegressor()
            delay.load_model(bytearray(json.dumps(data["delay"]).encode()))
        return cls(kind=data["kind"], features=list(data["features"]), horizon=int(data["horizon"]), classifier=clf,
                   delay=delay, delay_sd=float(data["delay_sd"]), fallback_days=float(data["fallback_days"]),
                   means=np.array(data["means"]), scales=np.array(data["scales"]), metrics=data.get("metrics", {}))


def _fit_classifier(kind: str, x: np.ndarray, y: np.ndarray, w: np.ndarray, seed: int, threads: int):
    if kind == "xgboost":
        import xgboost as xgb

        clf = xgb.XGBClassifier(**XGB_PARAMS, n_jobs=threads, random_state=seed, eval_metric="logloss")
        clf.fit(x, y, sample_weight=w)
        return clf, np.zeros(x.shape[1]), np.ones(x.shape[1])
    from sklearn.linear_model import LogisticRegression

    means, scales = x.mean(axis=0), x.std(axis=0)
    scales = np.where(scales > 1e-9, scales, 1.0)
    clf = LogisticRegression(C=1.0, max_iter=500)
    clf.fit((x - means) / scales, y, sample_weight=w)
    return clf, means, scales


def _sample(y: np.ndarray, negative_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept (every positive, a seeded share of the negatives) and their weights (1 / share for negatives)."""
    if negative_share >= 1:
        return np.arange(len(y)), np.ones(len(y))
    keep = (y == 1) | (np.random.default_rng(seed).random(len(y)) < negative_share)
    idx = np.flatnonzero(keep)
    return idx, np.where(y[idx] == 1, 1.0, 1.0 / negative_share)


def _fit_delay(x: np.ndarray, days: np.ndarray, seed: int, threads: int):
    import xgboost as xgb

    if len(days) < 30:
        return None, 0.6
    reg = xgb.XGBRegressor(**DELAY_PARAMS, n_jobs=threads, random_state=seed)
    reg.fit(x, np.log(days))
    resid = np.log(days) - reg.predict(x)
    return reg, float(np.clip(np.std(resid), 0.1, 1.5))


def fit(frame: pd.DataFrame, features: list[str], horizon: int, kind: str = "xgboost", seed: int = 0,
        threads: int = 2, negative_share: float = 1.0) -> EscalationModel:
    """Fit one escalation model on snapshot rows with ``label`` (0/1) and ``days_to_breach`` (NaN when none).

    ``negative_share`` < 1 trains on every positive and that share of the negatives (seeded), reweighted so
    that probabilities stay calibrated: most snapshots are quiet agents, and they teach little.

    Raises:
        ValueError: Unknown ``kind``, or the rows hold only one class.
    """
    if kind not in CLASSIFIER_KINDS:
        raise ValueError(f"unknown classifier kind {kind!r}; choose from {CLASSIFIER_KINDS}")
    y = frame["label"].to_numpy(dtype=float)
    if len(y) == 0 or y.min() == y.max():
        raise ValueError(f"escalation training rows hold one class only ({int(y.sum())} breaches in {len(y)} rows)")
    x = frame[features].to_numpy(dtype=float)
    idx, w = _sample(y, negative_share, seed)
    clf, means, scales = _fit_classifier(kind, x[idx], y[idx], w, seed, threads)
    pos = y == 1
    days = frame["days_to_breach"].to_numpy(dtype=float)[pos]
    delay, sd = _fit_delay(x[pos], days, seed, threads)
    fallback = float(np.median(days)) if len(days) else horizon / 2
    return EscalationModel(kind=kind, features=list(features), horizon=horizon, classifier=clf, delay=delay,
                           delay_sd=sd, fallback_days=fallback, means=means, scales=scales)


def select_and_fit(train: pd.DataFrame, valid: pd.DataFrame, full: pd.DataFrame, features: list[str], horizon: int,
                   seed: int = 0, threads: int = 2, kinds=CLASSIFIER_KINDS,
                   negative_share: float = 1.0) -> tuple[EscalationModel, pd.DataFrame, EscalationModel]:
    """Fit each kind on ``train``, score it out of time on ``valid``, refit the best (log loss) on ``full``.

    Returns:
        The refitted model (its ``metrics`` hold the chosen kind's out-of-time metrics), one row of
        out-of-time metrics per kind, and the chosen kind as fitted on ``train`` (for further out-of-time checks).
    """
    rows, scored, fitted = [], {}, {}
    for kind in kinds:
        try:
            model = fit(train, features, horizon, kind, seed, threads, negative_share)
        except ValueError:
            continue
        metrics = evaluate(valid["label"], model.predict(valid))
        rows.append({"model": kind, **metrics})
        scored[kind], fitted[kind] = metrics, model
    if not rows:
        raise ValueError("no escalation model could be fitted: the training rows hold one class only")
    table = pd.DataFrame(rows)
    finite = table[np.isfinite(table["log_loss"])]
    best = finite.sort_values("log_loss")["model"].iloc[0] if len(finite) else table["model"].iloc[0]
    model = fit(full, features, horizon, best, seed, threads, negative_share)
    model.metrics = scored[best]
    return model, table, fitted[best]
