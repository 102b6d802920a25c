"""Consumption accuracy: holdout metrics per series and model, their summary, and the holdout total's
interval coverage. Pure functions over long frames."""
from __future__ import annotations

import numpy as np
import pandas as pd

LEVELS = (80, 95)


def series_metrics(actual: pd.DataFrame, forecasts: dict[str, pd.DataFrame], history: pd.DataFrame) -> pd.DataFrame:
    """Per (series, model) holdout metrics; MASE scaled by the in-sample seasonal-naive (7) MAE."""
    from models.forecasting import mape, mase, smape, wape

    hist = history.sort_values(["unique_id", "ds"])
    scale = hist.groupby("unique_id")["y"].apply(
        lambda y: float(np.mean(np.abs(y.to_numpy()[7:] - y.to_numpy()[:-7]))) if len(y) > 7 else np.nan)
    rows = []
    for name, fc in forecasts.items():
        merged = actual.merge(fc, on=["unique_id", "ds"], how="inner")
        for uid, g in merged.groupby("unique_id", sort=True):
            y, yhat = g["y"].to_numpy(), g["yhat"].to_numpy()
            row = {"unique_id": uid, "model": name, "mape": mape(y, yhat), "smape": smape(y, yhat),
                   "mase": mase(y, yhat, scale.get(uid, np.nan)), "wape": wape(y, yhat),
                   "actual_sum": float(y.sum()), "abs_err_sum": float(np.abs(y - yhat).sum()),
                   "period_abs_err": float(abs(yhat.sum() - y.sum()))}
            for lv in LEVELS:
                if f"lo-{lv}" in g:
                    row[f"coverage_{lv}"] = float(((y >= g[f"lo-{lv}"]) & (y <= g[f"hi-{lv}"])).mean())
                    row[f"hits_{lv}"], row[f"n_{lv}"] = int(row[f"coverage_{lv}"] * len(y) + 0.5), len(y)
            rows.append(row)
    return pd.DataFrame(rows)


def summarize(per_series: pd.DataFrame) -> pd.DataFrame:
    """One row per model: median MASE, median MAPE/sMAPE, pooled WAPE, pooled error of the horizon
    totals and pooled coverage."""
    g = per_series.groupby("model")
    out = pd.DataFrame({
        "n_series": g.size(),
        "median_mase": g["mase"].median(),
        "median_mape": g["mape"].median(),
        "median_smape": g["smape"].median(),
        "median_wape": g["wape"].median(),
        "pooled_wape": g["abs_err_sum"].sum() / g["actual_sum"].sum().replace(0, np.nan),
    })
    if "period_abs_err" in per_series:  # error of each series' whole-horizon total (e.g. its 30-day credits)
        out["pooled_period_err"] = g["period_abs_err"].sum() / g["actual_sum"].sum().replace(0, np.nan)
    for lv in LEVELS:
        if f"hits_{lv}" in per_series:
            out[f"coverage_{lv}"] = g[f"hits_{lv}"].sum() / g[f"n_{lv}"].sum().replace(0, np.nan)
    return out.reset_index()


def cumulative_holdout(actual: pd.DataFrame, model, daily: pd.DataFrame, h: int) -> pd.DataFrame:
    """Per series, the holdout's credit total against two intervals for it: the last step of the
    ensemble's cumulative forecast (calibrated for totals) and the sum of the daily bounds.

    ``daily`` is the ensemble's daily holdout forecast with ``lo-<level>``/``hi-<level>`` columns.
    """
    bounds = [f"{b}-{lv}" for lv in LEVELS for b in ("lo", "hi")]
    out = actual.groupby("unique_id")["y"].sum().rename("actual_total").to_frame()
    out = out.join(daily.groupby("unique_id")[bounds].sum().add_prefix("summed_"), how="inner")
    for lv in LEVELS:
        cum = model.predict_cumulative(h, lv)
        last = cum[cum["ds"] == cum.groupby("unique_id")["ds"].transform("max")].set_index("unique_id")
        out["forecast_total"] = last["yhat"]
        out[f"lo-{lv}"], out[f"hi-{lv}"] = last["yhat_lower"], last["yhat_upper"]
    return out.reset_index()


def summarize_cumulative(per_series: pd.DataFrame) -> dict[str, float]:
    """Coverage and median width (relative to the forecast total) of both intervals for the holdout total."""
    y, f = per_series["actual_total"], per_series["forecast_total"]
    out = {}
    for lv in LEVELS:
        for name, prefix in (("cumulative", ""), ("summed_daily", "summed_")):
            lo, hi = per_series[f"{prefix}lo-{lv}"], per_series[f"{prefix}hi-{lv}"]
            out[f"{name}_total_coverage_{lv}"] = float(((y >= lo) & (y <= hi)).mean())
            out[f"{name}_total_width_{lv}"] = float(((hi - lo) / f.where(f > 0)).median())
    return out


def merge_importance(parts: list[tuple[int, dict]]) -> dict:
    """Average ``model_importance`` dicts of the shards, weighted by their series counts."""
    merged: dict = {}
    for key in sorted({k for _, imp in parts for k in imp}):
        weighted = [(n, imp[key]) for n, imp in parts if key in imp]
        total = sum(n for n, _ in weighted)
        names = sorted({name for _, d in weighted for name in d})
        merged[key] = {name: sum(n * d.get(name, 0.0) for n, d in weighted) / total for name in names}
    return merged


