"""Statistics that compare synthetic daily series with real ones (used by ``bench/realism.py``)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def series_realism_stats(daily: pd.DataFrame) -> pd.DataFrame:
    """Per-series statistics used to compare synthetic and real daily series.

    Args:
        daily: Long frame ``(unique_id, ds, y)`` of daily values; missing days are not filled.

    Returns:
        One row per ``unique_id`` with ``cv`` (std / mean), ``seasonal_strength`` and
        ``trend_strength`` (STL, period 7, Hyndman's ``max(0, 1 - var(R) / var(X + R))``), ``acf7``
        (lag-7 autocorrelation) and ``zero_share``. Series shorter than 28 days get NaN.
    """
    from statsmodels.tsa.seasonal import STL

    rows = []
    for uid, grp in daily.sort_values(["unique_id", "ds"]).groupby("unique_id", sort=True):
        y = grp["y"].to_numpy(dtype=float)
        stats = dict.fromkeys(("cv", "seasonal_strength", "trend_strength", "acf7", "zero_share"), np.nan)
        if len(y) >= 28:
            mean, dev = y.mean(), y - y.mean()
            ss = float(dev @ dev)
            stats["zero_share"] = float(np.mean(y == 0))
            if mean > 0:
                stats["cv"] = float(y.std() / mean)
            if ss > 0:
                stats["acf7"] = float(dev[7:] @ dev[:-7] / ss)
                fit = STL(y, period=7).fit()
                resid_var = np.var(fit.resid)
                stats["seasonal_strength"] = _strength(resid_var, fit.seasonal + fit.resid)
                stats["trend_strength"] = _strength(resid_var, fit.trend + fit.resid)
        rows.append({"unique_id": uid, **stats})
    return pd.DataFrame(rows, columns=["unique_id", "cv", "seasonal_strength", "trend_strength", "acf7",
                                       "zero_share"])


def _strength(resid_var: float, component: np.ndarray) -> float:
    total = np.var(component)
    return float(max(0.0, 1.0 - resid_var / total)) if total > 0 else np.nan
