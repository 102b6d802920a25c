"""One shard of the growth kind: eligibility, the holdout evaluation and the production projection of its
workspaces, written as Parquet files that ``pipelines.growth.kind`` merges.

1. **Holdout**: the workspaces eligible ``growth_holdout_days`` before the as-of date are projected from the
   history up to then, exactly as in production (same ensemble, paths, coherence), and scored on the days
   after, which no model saw: MASE of ``likely``, of the ensemble mean and of each member at 30 and 90 days;
   coverage of the intervals; milestone calibration.
2. **Production**: the eligible workspaces projected ``growth_horizon_days`` from the as-of date, with their
   milestones and goals.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from core.settings import Settings
from pipelines.features.sets import WORKSPACE_GROWTH
from pipelines.features.store import read_offline
from pipelines.growth.evaluation import (
    LIKELY,
    MEAN,
    long_actuals,
    mase_scales,
    milestone_calibration,
    series_metrics,
)
from pipelines.growth.goals import load_goals
from pipelines.growth.project import (
    eligibility,
    goal_outside_paths,
    long_series,
    project,
    scenario_rows,
    shard_of,
    user_days_for,
)

log = logging.getLogger(__name__)


def run_dir(settings: Settings, as_of: date) -> Path:
    return settings.data_dir / "growth" / f"as_of={as_of.isoformat()}"


def holdout(settings: Settings, growth: pd.DataFrame, as_of: date, out: Path) -> dict:
    """Project from ``as_of - growth_holdout_days`` and score on the days after; returns counts."""
    H = settings.growth_holdout_days
    cutoff = as_of - timedelta(days=H)
    status = eligibility(growth, cutoff, settings)
    workspaces = status.loc[status["status"] == "success", "workspace_id"].tolist()
    if not workspaces:
        return {"holdout_workspaces": 0}
    try:
        p = project(settings, growth[growth["day"] <= pd.Timestamp(cutoff)],
                    user_days_for(settings.offline_store_dir, cutoff, settings.growth_mau_window_days),
                    workspaces, cutoff, H, members=True)
    except RuntimeError as exc:  # too little history before the cutoff for a backtest
        log.warning("growth holdout skipped: %s", exc)
        return {"holdout_workspaces": 0, "holdout_skipped": str(exc)}
    actual = long_actuals(growth, workspaces, cutoff, as_of)
    forecasts = {LIKELY: p.scenarios.rename(columns={"q50": "yhat"}), MEAN: p.point, **p.members}
    scale = mase_scales(growth, workspaces, cutoff)
    series_metrics(actual, forecasts, scale, cutoff).to_parquet(out / "holdout_metrics.parquet")
    actual.merge(p.scenarios, on=["workspace_id", "target_metric", "prediction_date"]).to_parquet(
        out / "holdout_scenarios.parquet")
    milestone_calibration(actual, p.milestones).to_parquet(out / "holdout_milestones.parquet")
    return {"holdout_workspaces": len(workspaces), "holdout_cutoff": cutoff.isoformat()}


def growth_shard(settings: Settings, engine: Engine, as_of: date, shard: int, n_shards: int) -> dict:
    """Evaluate and project one shard; writes Parquet files and returns a reference dict."""
    t0 = time.perf_counter()
    out = run_dir(settings, as_of) / f"shard={shard}"
    out.mkdir(parents=True, exist_ok=True)
    growth = read_offline(settings.offline_store_dir, WORKSPACE_GROWTH, as_of)
    if growth is None:
        raise RuntimeError(f"feature set {WORKSPACE_GROWTH.key} was not built for {as_of}; run the features step")
    growth = growth[growth["workspace_id"].map(lambda w: shard_of(w, n_shards) == shard)]
    growth = growth[growth["day"] > pd.Timestamp(as_of) - pd.Timedelta(days=settings.forecast_history_days)]
    status = eligibility(growth, as_of, settings)
    eligible = status.loc[status["status"] == "success", "workspace_id"].tolist()
    goals = load_goals(engine, status["workspace_id"].tolist())
    ref = {"shard": shard, "path": str(out), "n_workspaces": len(status), "n_eligible": len(eligible),
           "n_series": 0, "n_rows": 0, "as_of": as_of.isoformat()}
    outside = goal_outside_paths(goals, growth, as_of)
    if eligible:
        ref.update(holdout(settings, growth, as_of, out))
        p = project(settings, growth, user_days_for(settings.offline_store_dir, as_of, settings.growth_mau_window_days),
                    eligible, as_of, settings.growth_horizon_days, goals)
        frame = scenario_rows(p.scenarios)
        milestones, projected_goals = p.milestones, p.goals
        p.backtest.to_parquet(out / "backtest.parquet")
        long_series(growth, eligible, as_of, settings.forecast_history_days).to_parquet(out / "history.parquet")
        weights = pd.concat([m.weights_.assign(metric=metric) for metric, m in p.models.items()], ignore_index=True)
        weights.to_parquet(out / "weights.parquet")
        fallbacks = pd.DataFrame([f.__dict__ for m in p.models.values() for f in m.fallbacks],
                                 columns=["unique_id", "model", "reason", "used"])
        fallbacks.astype({"unique_id": str}).to_parquet(out / "fallbacks.parquet")
        names = [c for c in weights.columns if c not in ("unique_id", "group", "choice", "metric")]
        (out / "importance.json").write_text(json.dumps({
            "ensemble_member_weights": {n: float(weights[n].fillna(0).mean()) for n in names},
            "ensemble_member_weights_by_metric": {metric: {n: float(g[n].fillna(0).mean()) for n in names}
                                                  for metric, g in weights.groupby("metric")}}))
        np.savez_compressed(out / "error_bank.npz", errors=p.bank.errors, group=p.bank.group.astype(str))
        ref.update(n_series=3 * len(eligible), n_rows=len(frame), n_bank_units=len(p.bank.group),
                   history_start=str(growth["day"].min().date()), n_fallbacks=len(fallbacks))
    else:
        frame, milestones, projected_goals = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    frame.to_parquet(out / "projection.parquet")
    milestones.to_parquet(out / "milestones.parquet")
    pd.concat([projected_goals, outside], ignore_index=True).to_parquet(out / "goals.parquet")
    status.to_parquet(out / "status.parquet")
    ref["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "ref.json").write_text(json.dumps(ref, default=str))
    log.info("growth shard %d: %d of %d workspaces projected in %.1fs", shard, len(eligible), len(status),
             ref["seconds"])
    return ref
