"""Population stability index (PSI): how far a feature's distribution moved between two samples.

``PSI = sum_b (a_b - e_b) * ln(a_b / e_b)`` over bins ``b``, with ``e_b`` / ``a_b`` the shares of the expected
(reference, e.g. the training window) and actual (recent) samples in each bin. Bins are quantiles of the
expected sample, so each holds about the same share of it; empty shares are floored at ``eps`` so the
logarithm stays finite. Usual reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PSI_STABLE, PSI_SHIFT = 0.1, 0.25


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """PSI of ``actual`` against ``expected`` on ``bins`` quantile bins of ``expected`` (NaNs dropped).

    Raises:
        ValueError: If either sample is empty after dropping NaNs, or ``bins`` < 2.
    """
    if bins < 2:
        raise ValueError(f"psi needs at least 2 bins, got {bins}")
    e = np.asarray(expected, float)
    a = np.asarray(actual, float)
    e, a = e[np.isfinite(e)], a[np.isfinite(a)]
    if e.size == 0 or a.size == 0:
        raise ValueError(f"psi needs values in both samples (expected: {e.size}, actual: {a.size})")
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    e_share = np.bincount(np.searchsorted(edges, e, side="right"), minlength=edges.size + 1) / e.size
    a_share = np.bincount(np.searchsorted(edges, a, side="right"), minlength=edges.size + 1) / a.size
    e_share, a_share = np.maximum(e_share, eps), np.maximum(a_share, eps)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def psi_table(expected: pd.DataFrame, actual: pd.DataFrame, columns: list[str], bins: int = 10) -> pd.DataFrame:
    """PSI per column: ``(feature, psi, n_expected, n_actual)``; columns with no values on a side are skipped."""
    rows = []
    for col in columns:
        e, a = expected[col].to_numpy(float), actual[col].to_numpy(float)
        if np.isfinite(e).any() and np.isfinite(a).any():
            rows.append({"feature": col, "psi": psi(e, a, bins), "n_expected": int(np.isfinite(e).sum()),
                         "n_actual": int(np.isfinite(a).sum())})
    return pd.DataFrame(rows, columns=["feature", "psi", "n_expected", "n_actual"])
