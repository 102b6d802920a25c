"""Drift check of the consumption kind: when to retrain before the weekly schedule.

Each scoring night (``ConsumptionKind._finalize_scored``) compares, per workspace, the consumption features of the
champion's last training window (the ``drift_recent_days`` up to its ``trained_through`` date) with the last
``drift_recent_days`` up to the run date, by PSI (``models.drift.psi``):

* ``log_level``: log(1 + mean daily credits);
* ``volatility``: coefficient of variation of daily credits;
* ``zero_share``: share of days without credits;
* ``top_feature_share``: the share of the workspace's credits spent on its largest feature/service (feature mix).

A retrain is requested (a pending row in ``analytics.retrain_runs``, see ``pipelines.retrain``) when a feature's
PSI exceeds ``drift_psi_threshold`` (reason ``drift``), or when the champion was trained on data
``retrain_every_days`` old or more and no retrain has run since (reason ``schedule``, ``retrain_runs.request_if_due``;
what the weekly DAG does when Airflow runs it). The realised-accuracy alert requests an ``accuracy`` retrain in the
monitor step, for every kind (``pipelines.nightly.monitor_step``).
PSI bins adapt to the number of workspaces (25 per bin, 2 to 10 bins), so a small platform's sampling noise
does not read as drift.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from core.settings import Settings

log = logging.getLogger(__name__)

DRIFT_FEATURES = ["log_level", "volatility", "zero_share", "top_feature_share"]


def consumption_features(settings: Settings, until: date, days: int) -> pd.DataFrame:
    """One row per workspace with history in the ``days`` up to ``until``: the drift features above."""
    from pipelines.features.builders import daily_series
    from pipelines.features.store import load_daily_aggregates

    since = until - timedelta(days=days - 1)
    agg = load_daily_aggregates(settings.offline_store_dir, until, since=since)
    totals = daily_series(agg, until)
    totals = totals[totals["ds"] >= pd.Timestamp(since)]
    if totals.empty:
        return pd.DataFrame(columns=["workspace_id", *DRIFT_FEATURES])
    g = totals.groupby("unique_id")["y"]
    mean = g.mean()
    out = pd.DataFrame({"log_level": np.log1p(mean.clip(lower=0)),
                        "volatility": g.std(ddof=0) / mean.where(mean > 0),
                        "zero_share": g.apply(lambda y: float((y == 0).mean()))})
    feat = agg.workspace_feature
    feat = feat[(pd.to_datetime(feat["day"]) >= pd.Timestamp(since)) & (pd.to_datetime(feat["day"]) <= pd.Timestamp(until))]
    if len(feat):
        by = feat.groupby(["workspace_id", "feature"])["credits"].sum().astype(float)
        total = by.groupby(level=0).sum()
        out["top_feature_share"] = (by.groupby(level=0).max() / total.where(total > 0)).reindex(out.index)
    else:
        out["top_feature_share"] = np.nan
    return out.rename_axis("workspace_id").reset_index()


def drift_figures(settings: Settings, trained_through: date, as_of: date) -> dict:
    """PSI per drift feature between the training window and the recent window; ``drift`` if any exceeds
    the threshold."""
    from models.drift import psi_table

    days = settings.drift_recent_days
    reference = consumption_features(settings, trained_through, days)
    recent = consumption_features(settings, as_of, days)
    n = min(len(reference), len(recent))
    out = {"reference_window": [str(trained_through - timedelta(days=days - 1)), str(trained_through)],
           "recent_window": [str(as_of - timedelta(days=days - 1)), str(as_of)], "workspaces": n,
           "threshold": settings.drift_psi_threshold, "psi": {}, "drift": False}
    if n < 2:
        out["note"] = "fewer than 2 workspaces in a window: no drift check"
        return out
    bins = int(np.clip(n // 25, 2, 10))
    table = psi_table(reference, recent, DRIFT_FEATURES, bins=bins)
    out["bins"] = bins
    out["psi"] = {row.feature: round(float(row.psi), 4) for row in table.itertuples()}
    out["drifted"] = [f for f, v in out["psi"].items() if v > settings.drift_psi_threshold]
    out["drift"] = bool(out["drifted"])
    return out


def nightly_drift_check(settings: Settings, engine: Engine, run_date: date, version: str) -> dict:
    """The checks in the module docstring for the version that scored tonight's champion arm; records a pending
    retrain when one fires and returns the figures (for the run's details)."""
    from pipelines.consumption.artifact import load_artifact
    from pipelines.consumption.kind import KIND, MODEL_NAME
    from pipelines.retrain_runs import request_if_due, request_retrain

    art = load_artifact(settings, MODEL_NAME, version)
    figures: dict = {"checked": True, "champion": version, "trained_through": str(art.trained_through)}
    figures["psi"] = drift_figures(settings, art.trained_through, run_date)
    if figures["psi"]["drift"]:
        figures["retrain_id"] = request_retrain(engine, KIND.name, "drift", run_date, dict(figures))
        log.warning("consumption: retrain requested (drift: %s) for champion v%s", figures["psi"]["drifted"], version)
    figures["schedule"] = request_if_due(engine, KIND.name, run_date, version, art.trained_through,
                                         settings.retrain_every_days)
    return figures
