"""Explanations: XGBoost TreeSHAP contributions (log-odds) grouped into drivers, returned as data.

Explanations always come from XGBoost TreeSHAP contributions. When the champion is XGBoost its own
booster explains; otherwise an XGBoost explainer is fitted on the same training set (smaller trees,
:data:`EXPLAINER_PARAMS`). One method for every champion keeps drivers comparable across model
versions. Related columns are grouped into drivers (:data:`DRIVER_COLUMNS`); each driver is reported
by its strongest column, with the group's summed contribution; drivers below 0.05 log-odds are
dropped. Turning drivers into words and actions is the caller's job.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .classifiers import _matrix

#: Columns grouped into drivers; a driver's contribution is the sum over its columns.
DRIVER_COLUMNS: dict[str, tuple[str, ...]] = {
    "recency": ("recency_days", "silence_ratio", "p_alive"),
    "activity_drop": (
        "active_days_28", "active_days_prev_28", "engagement_drop_28", "active_days_7", "active_days_90",
        "frequency_90", "activity_slope_8w", "wow_ratio", *[f"weekly_active_w{i}" for i in range(8)],
        "active_days_365", "gap_mean_days", "gap_cv", "usual_gap_days", "longest_gap_days",
    ),
    "low_usage": ("calls_7", "calls_28", "credits_28", "credits_90", "credits_per_active_day_28"),
    "narrow_usage": ("features_used_28", "features_used_90"),
    "errors": ("errors_28", "error_rate_28"),
    "tenure": ("tenure_days",),
    "workspace_decline": ("ws_active_users_28", "ws_users_ever", "ws_credits_trend", "share_of_ws_credits_28",
                          "ws_usual_gap_days"),
}
DRIVER_OF_COLUMN: dict[str, str] = {c: d for d, cols in DRIVER_COLUMNS.items() for c in cols}
#: XGBoost explainer settings when the champion is another kind: small trees keep TreeSHAP cheap.
EXPLAINER_PARAMS: dict[str, Any] = {"n_estimators": 150, "learning_rate": 0.1, "max_depth": 4}


def explain_drivers(
    contributions: np.ndarray, X: pd.DataFrame, top_k: int = 3, min_contribution: float = 0.05
) -> list[list[dict[str, Any]]]:
    """Top-k risk-raising drivers per row, as data.

    Columns are grouped by :data:`DRIVER_OF_COLUMN` (others form their own group); a group's
    contribution is the sum of its columns' contributions, and it is represented by its column with
    the largest contribution.

    Args:
        contributions: Per-row, per-column contributions to the log-odds, shape ``(n, len(X.columns))``.
        X: The rows' feature values, columns in the same order.
        top_k: Drivers per row at most; only risk-raising ones are returned.
        min_contribution: Smallest log-odds contribution reported (0.05 is about one percentage
            point at a 30% probability); weaker drivers are noise, not reasons.

    Returns:
        Per row, a list of ``{"feature", "driver", "contribution", "value"}``, strongest first:
        ``feature`` is the group's strongest column, ``driver`` the group, ``contribution`` the
        group's summed log-odds contribution (rounded to 4 decimals, always positive) and ``value``
        the row's value of ``feature`` (None when missing or infinite).
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
        drivers = []
        for g in order[i]:
            total = float(totals[i, g])
            if total < min_contribution:
                break
            j = rep[i, g]
            value = values[i, j]
            drivers.append({
                "feature": columns[j],
                "driver": names[g],
                "contribution": round(total, 4),
                "value": None if np.isnan(value) else float(value),
            })
        out.append(drivers)
    return out
