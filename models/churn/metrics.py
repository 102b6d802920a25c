"""Out-of-time metrics, the risk score and the plots logged with each training run.

**risk_score** = ``round(100 * calibrated probability, 1)``: calibrated, so 30 means about 30%.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
    roc_curve,
)

from .data import _labels


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


def evaluate_by_group(y: Sequence[int], p: Sequence[float], groups: Sequence[object]) -> dict[str, dict[str, float]]:
    """:func:`evaluate` within each group (e.g. each user state), groups in order of first appearance."""
    y, p, groups = _labels(y), np.asarray(p, dtype=float), np.asarray(groups, dtype=object)
    return {str(g): evaluate(y[groups == g], p[groups == g]) for g in dict.fromkeys(groups.tolist())}


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
