"""Champion and challenger on the SAME rolling-origin windows, for ``models.promotion.compare_on_windows``.

A retrain's production backtest (workspace totals) holds, per series and cutoff, every member's forecast and the
challenger Ensemble's. The champion's configuration is its stored per-series weights (``EnsembleState``; unknown
series: the default weights) applied to the same members' forecasts on the same windows, so both are judged on
identical windows and histories without refitting anything. Per window the metric is the mean over series of
MASE (absolute error over the series' in-sample weekly seasonal-naive MAE, as in the holdout metrics). Both
configurations' weights were chosen on backtest windows (the challenger's on exactly these), so the comparison
leans towards the challenger; the 2% improvement and 6-of-8 wins bar it has to clear stay the policy's.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

CHAMPION_ROLE, CHALLENGER_ROLE = "champion", "challenger"


def _scale(history: pd.DataFrame) -> pd.Series:
    h = history.sort_values(["unique_id", "ds"])
    return h.groupby("unique_id")["y"].apply(
        lambda y: float(np.mean(np.abs(y.to_numpy()[7:] - y.to_numpy()[:-7]))) if len(y) > 7 else np.nan)


def window_errors(backtest: pd.DataFrame, history: pd.DataFrame, champion_state) -> pd.DataFrame:
    """Per (series, window): ``mase`` of the challenger (``Ensemble`` column) and of the champion's stored weights.

    Returns an empty frame when the champion uses a member the backtest lacks (other member set).
    """
    cols = ["unique_id", "window", "role", "mase"]
    members = champion_state.members
    if backtest.empty or "Ensemble" not in backtest or any(m not in backtest for m in members):
        return pd.DataFrame(columns=cols)
    stored = champion_state.weights.set_index("unique_id")[members]
    ids = backtest["unique_id"].astype(str)
    weights = stored.reindex(ids.unique())
    weights = weights.fillna(pd.Series(champion_state.default_weights(), index=members))
    w = weights.loc[ids].to_numpy(float)
    champion = (w * backtest[members].to_numpy(float)).sum(axis=1)
    scale = ids.map(_scale(history)).to_numpy(float)
    ok = np.isfinite(scale) & (scale > 0)
    y = backtest["y"].to_numpy(float)
    frames = []
    for role, pred in ((CHALLENGER_ROLE, backtest["Ensemble"].to_numpy(float)), (CHAMPION_ROLE, champion)):
        err = pd.DataFrame({"unique_id": ids[ok], "window": backtest["cutoff"][ok].astype(str),
                            "e": np.abs(y - pred)[ok] / scale[ok]})
        per = err.groupby(["unique_id", "window"], as_index=False)["e"].mean().rename(columns={"e": "mase"})
        frames.append(per.assign(role=role))
    return pd.concat(frames, ignore_index=True)[cols]


def window_frames(errors: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(champion, challenger) frames ``(window, metric)``: mean MASE over the series of each window, on the
    windows both have."""
    per = errors.groupby(["role", "window"])["mase"].mean().rename("metric").reset_index()
    champ, chall = (per[per["role"] == r][["window", "metric"]] for r in (CHAMPION_ROLE, CHALLENGER_ROLE))
    common = sorted(set(champ["window"]) & set(chall["window"]))
    return (champ[champ["window"].isin(common)].reset_index(drop=True),
            chall[chall["window"].isin(common)].reset_index(drop=True))
