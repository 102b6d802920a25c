"""Growth accuracy on a holdout no model saw: MASE of each forecast at 30 and 90 days, coverage of the 80% and
95% intervals of ``likely``, and milestone calibration. Pure functions over long frames keyed by
``(workspace_id, target_metric, prediction_date)``."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines.growth.sample_paths import METRICS

KEYS = ["workspace_id", "target_metric", "prediction_date"]
HORIZONS = (30, 90)
LIKELY = "Ensemble-likely"  # the P50 of the paths (what is published)
MEAN = "Ensemble-mean"  # the ensemble point forecast the paths are drawn around


def long_actuals(growth: pd.DataFrame, workspaces, after: date, until: date) -> pd.DataFrame:
    """Realised DAU/WAU/MAU of ``workspaces`` on the days ``after < d <= until`` as ``(KEYS, y)``."""
    g = growth[growth["workspace_id"].isin(set(workspaces)) & (growth["day"] > pd.Timestamp(after))
               & (growth["day"] <= pd.Timestamp(until))]
    out = g.melt(id_vars=["workspace_id", "day"], value_vars=list(METRICS), var_name="target_metric", value_name="y")
    return out.rename(columns={"day": "prediction_date"})


def mase_scales(growth: pd.DataFrame, workspaces, until: date, days: int = 365) -> pd.Series:
    """In-sample seasonal-naive (lag 7) MAE of each (workspace, metric) over the ``days`` days to ``until``."""
    g = growth[growth["workspace_id"].isin(set(workspaces)) & (growth["day"] <= pd.Timestamp(until))
               & (growth["day"] > pd.Timestamp(until) - pd.Timedelta(days=days))].sort_values(["workspace_id", "day"])
    out = {}
    for ws, grp in g.groupby("workspace_id", sort=True):
        for m in METRICS:
            y = grp[m].to_numpy(float)
            out[(ws, m)] = float(np.mean(np.abs(y[7:] - y[:-7]))) if len(y) > 7 else np.nan
    return pd.Series(out, name="scale").rename_axis(["workspace_id", "target_metric"])


def series_metrics(actual: pd.DataFrame, forecasts: dict[str, pd.DataFrame], scale: pd.Series,
                   after: date) -> pd.DataFrame:
    """One row per (workspace, metric, model): MASE over the first 30 and 90 days (``mase_30``, ``mase_90``).
    ``forecasts``: model name -> ``(KEYS, yhat)``."""
    rows = []
    for name, fc in forecasts.items():
        m = actual.merge(fc[[*KEYS, "yhat"]], on=KEYS)
        m["k"] = (m["prediction_date"] - pd.Timestamp(after)).dt.days
        m["ae"] = (m["y"] - m["yhat"]).abs()
        for (ws, metric), g in m.groupby(["workspace_id", "target_metric"], sort=True):
            s = scale.get((ws, metric), np.nan)
            row = {"workspace_id": ws, "target_metric": metric, "model": name}
            for H in HORIZONS:
                part = g[g["k"] <= H]
                row[f"mase_{H}"] = float(part["ae"].mean() / s) if s > 0 and len(part) >= H else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def summarize(per_series: pd.DataFrame) -> pd.DataFrame:
    """Median MASE per model and metric (and over all three metrics, ``all``), with the series counts."""
    parts = []
    for metric, df in [*per_series.groupby("target_metric"), ("all", per_series)]:
        g = df.groupby("model")
        parts.append(pd.DataFrame({"target_metric": metric, "n_series": g["mase_30"].count(),
                                   **{f"median_mase_{H}": g[f"mase_{H}"].median() for H in HORIZONS}}))
    return pd.concat(parts).reset_index()


def coverage(actual: pd.DataFrame, scenarios: pd.DataFrame) -> pd.DataFrame:
    """Share of realised days inside the 80% (P10..P90) and 95% (P2.5..P97.5) intervals, and above each
    scenario (about 0.9 for worst, 0.5 for likely, 0.1 for best when calibrated), per metric and overall."""
    m = actual.merge(scenarios, on=KEYS)
    m["in_80"] = m["y"].between(m["q10"], m["q90"])
    m["in_95"] = m["y"].between(m["q025"], m["q975"])
    for q, name in (("q10", "worst"), ("q50", "likely"), ("q90", "best")):
        m[f"above_{name}"] = m["y"] >= m[q]
    cols = ["in_80", "in_95", "above_worst", "above_likely", "above_best"]
    per = m.groupby("target_metric")[cols].mean()
    per.loc["all"] = m[cols].mean()
    per["n_days"] = [*m.groupby("target_metric").size(), len(m)]
    return per.rename(columns={"in_80": "coverage_80", "in_95": "coverage_95"}).reset_index()


def milestone_calibration(actual: pd.DataFrame, milestones: pd.DataFrame) -> pd.DataFrame:
    """Per round-number milestone: whether the realised series crossed it in the holdout and, if so, whether the
    first crossing date fell inside the projected P10..P90 dates (an open end when P90 is beyond the horizon;
    outside when fewer than 10% of paths reached it)."""
    ms = milestones[milestones["kind"] == "round"]
    first = {}
    for (ws, metric), g in actual.sort_values("prediction_date").groupby(["workspace_id", "target_metric"]):
        first[(ws, metric)] = (g["prediction_date"].to_numpy(), g["y"].to_numpy())
    rows = []
    for r in ms.itertuples():
        dates, y = first.get((r.workspace_id, r.target_metric), (np.array([]), np.array([])))
        hit = np.flatnonzero(y >= r.threshold)
        crossed = pd.Timestamp(dates[hit[0]]).date() if hit.size else None
        lo = r.date_p10 if r.date_p10 is not None and not pd.isna(r.date_p10) else None
        hi = r.date_p90 if r.date_p90 is not None and not pd.isna(r.date_p90) else None
        inside = None
        if crossed is not None:
            inside = lo is not None and pd.Timestamp(lo).date() <= crossed and (
                hi is None or crossed <= pd.Timestamp(hi).date())
        rows.append({"workspace_id": r.workspace_id, "target_metric": r.target_metric, "threshold": r.threshold,
                     "probability": r.probability, "crossed": crossed is not None, "crossed_on": crossed,
                     "inside_p10_p90": inside})
    return pd.DataFrame(rows, columns=["workspace_id", "target_metric", "threshold", "probability", "crossed",
                                       "crossed_on", "inside_p10_p90"])


def calibration_summary(cal: pd.DataFrame) -> dict[str, float]:
    """Share of crossed milestones whose crossing fell inside P10..P90; the Brier score of the probability of
    crossing within the horizon over all milestones."""
    crossed = cal[cal["crossed"]]
    return {"milestones": float(len(cal)), "milestones_crossed": float(len(crossed)),
            "milestone_inside_p10_p90": float(crossed["inside_p10_p90"].astype(bool).mean()) if len(crossed)
            else float("nan"),
            "milestone_brier": float(((cal["probability"] - cal["crossed"].astype(float)) ** 2).mean()) if len(cal)
            else float("nan")}
