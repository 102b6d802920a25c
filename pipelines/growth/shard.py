"""One shard of the growth kind: eligibility, the holdout evaluation and the production projection of its
workspaces, written as Parquet files that ``pipelines.growth.kind`` merges.

1. **Holdout**: the workspaces eligible ``growth_holdout_days`` before the as-of date are projected from the
   history up to then, exactly as in production (same ensemble, paths, coherence), and scored on the days
   after, which no model saw: MASE of ``likely``, of the ensemble mean and of each member at 30 and 90 days;
   coverage of the intervals; milestone calibration.
2. **Production**: the eligible workspaces projected ``growth_horizon_days`` from the as-of date, with their
   milestones and goals; the ensembles' choices (weights per series, chosen specifications) and the error bank
   are saved as the shard's scoring state (``pipelines.growth.artifact``).

That is training (``growth_shard``: a retrain, or a night with no usable champion). A scoring night
(``score_shard``) does neither backtest nor holdout: each workspace is projected with its A/B arm's stored
version (``project(..., stored=...)``), milestones and goals read off the paths as in training. Workspaces the
version does not know (new since training) are projected with the default weights (the mean stored mix of their
training shard) and that shard's error bank; the reference counts them (``unknown_workspaces``).
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
from core.shards import in_shard, shard_of
from pipelines.features.sets import WORKSPACE_GROWTH
from pipelines.features.store import read_offline
from pipelines.growth.artifact import save_shard_state
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
    user_days_for,
)

log = logging.getLogger(__name__)


def run_dir(settings: Settings, as_of: date) -> Path:
    return settings.data_dir / "growth" / f"as_of={as_of.isoformat()}"


def retrain_dir(settings: Settings, as_of: date) -> Path:
    """Where a retrain's shards of ``as_of`` write (apart from the night's files of the same date)."""
    return run_dir(settings, as_of) / "retrain"


def holdout(settings: Settings, growth: pd.DataFrame, as_of: date, out: Path,
            shard: tuple[int, int] | None = None) -> dict:
    """Project from ``as_of - growth_holdout_days`` and score on the days after (``shard``: the ``(k, n)`` whose
    users are read); returns counts."""
    H = settings.growth_holdout_days
    cutoff = as_of - timedelta(days=H)
    status = eligibility(growth, cutoff, settings)
    workspaces = status.loc[status["status"] == "success", "workspace_id"].tolist()
    if not workspaces:
        return {"holdout_workspaces": 0}
    try:
        p = project(settings, growth[growth["day"] <= pd.Timestamp(cutoff)],
                    user_days_for(settings.offline_store_dir, cutoff, settings.growth_mau_window_days, shard),
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


def _inputs(settings: Settings, engine: Engine, as_of: date, shard: int, n_shards: int):
    """The shard's growth rows, eligibility statuses, eligible workspaces and goals."""
    growth = read_offline(settings.offline_store_dir, WORKSPACE_GROWTH, as_of)
    if growth is None:
        raise RuntimeError(f"feature set {WORKSPACE_GROWTH.key} was not built for {as_of}; run the features step")
    growth = growth[in_shard(growth["workspace_id"], shard, n_shards)]
    growth = growth[growth["day"] > pd.Timestamp(as_of) - pd.Timedelta(days=settings.forecast_history_days)]
    status = eligibility(growth, as_of, settings)
    eligible = status.loc[status["status"] == "success", "workspace_id"].tolist()
    goals = load_goals(engine, status["workspace_id"].tolist())
    return growth, status, eligible, goals


def _write(out: Path, ref: dict, frame: pd.DataFrame, milestones: pd.DataFrame, goals: pd.DataFrame,
           status: pd.DataFrame, t0: float) -> dict:
    frame.to_parquet(out / "projection.parquet")
    milestones.to_parquet(out / "milestones.parquet")
    goals.to_parquet(out / "goals.parquet")
    status.to_parquet(out / "status.parquet")
    ref["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "ref.json").write_text(json.dumps(ref, default=str))
    return ref


def growth_shard(settings: Settings, engine: Engine, as_of: date, shard: int, n_shards: int,
                 root: Path | None = None) -> dict:
    """Train one shard: evaluate on the holdout, project, and save the scoring state; writes Parquet files under
    ``root`` (default ``run_dir``; a retrain uses its own folder, so it never overwrites a night's files) and
    returns a reference dict (``mode`` ``trained``, ``backtests`` the ensembles fitted with a backtest)."""
    t0 = time.perf_counter()
    out = (root or run_dir(settings, as_of)) / f"shard={shard}"
    out.mkdir(parents=True, exist_ok=True)
    growth, status, eligible, goals = _inputs(settings, engine, as_of, shard, n_shards)
    ref = {"shard": shard, "path": str(out), "n_workspaces": len(status), "n_eligible": len(eligible),
           "n_series": 0, "n_rows": 0, "as_of": as_of.isoformat(), "mode": "trained", "backtests": 0}
    outside = goal_outside_paths(goals, growth, as_of)
    if eligible:
        ref.update(holdout(settings, growth, as_of, out, (shard, n_shards)))
        p = project(settings, growth, user_days_for(settings.offline_store_dir, as_of, settings.growth_mau_window_days,
                                                    (shard, n_shards)),
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
        save_shard_state(out, p.models, p.bank)
        ref.update(n_series=3 * len(eligible), n_rows=len(frame), n_bank_units=len(p.bank.group),
                   history_start=str(growth["day"].min().date()), n_fallbacks=len(fallbacks),
                   backtests=sum(1 for m in p.models.values() if len(m.backtest_)))
    else:
        frame, milestones, projected_goals = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    ref = _write(out, ref, frame, milestones, pd.concat([projected_goals, outside], ignore_index=True), status, t0)
    log.info("growth shard %d: %d of %d workspaces trained and projected in %.1fs", shard, len(eligible), len(status),
             ref["seconds"])
    return ref


def score_shard(settings: Settings, engine: Engine, as_of: date, shard: int, n_shards: int, plan) -> dict:
    """Score one shard with the stored versions of ``plan`` (a ``pipelines.serving.ServingPlan`` of
    ``GrowthArtifact``, by A/B arm): no backtest, no holdout. Every row carries its arm's ``model_version`` and
    ``arm``; writes Parquet files and returns a reference dict (``mode`` ``scored``)."""
    from core.ids import entity_uuid

    t0 = time.perf_counter()
    out = run_dir(settings, as_of) / f"shard={shard}"
    out.mkdir(parents=True, exist_ok=True)
    growth, status, eligible, goals = _inputs(settings, engine, as_of, shard, n_shards)
    ref = {"shard": shard, "path": str(out), "n_workspaces": len(status), "n_eligible": len(eligible),
           "n_series": 0, "n_rows": 0, "as_of": as_of.isoformat(), "mode": "scored", "backtests": 0,
           "versions": dict(plan.versions), "workspaces_by_arm": {}, "unknown_workspaces": 0}
    outside = goal_outside_paths(goals, growth, as_of)
    frames, milestones, projected_goals = [], [], []
    if eligible:
        ws = pd.Series(sorted(eligible))
        # the arm of a workspace is hashed on its UUID, as the publisher labels the snapshots (pipelines.ab)
        arms = plan.arms(ws.map(lambda w: str(entity_uuid("workspace", w))), settings)
        user_days = user_days_for(settings.offline_store_dir, as_of, settings.growth_mau_window_days,
                                  (shard, n_shards))
        unknown: set[str] = set()
        for arm, art in plan.models.items():
            arm_ws = ws[arms.to_numpy() == arm].tolist()
            if not arm_ws:
                continue
            ref["workspaces_by_arm"][arm] = len(arm_ws)
            by_training_shard = pd.Series(arm_ws).groupby(pd.Series(arm_ws).map(lambda w: shard_of(w, art.n_shards)))
            for training_shard, part in by_training_shard:
                p = project(settings, growth, user_days, part.tolist(), as_of, settings.growth_horizon_days, goals,
                            stored=art.choices(int(training_shard)))
                unknown |= {u.split("|", 1)[0] for u in p.unknown}
                tag = {"model_version": art.version, "arm": arm}
                frames.append(scenario_rows(p.scenarios).assign(**tag))
                milestones.append(p.milestones.assign(**tag))
                if len(p.goals):
                    projected_goals.append(p.goals.assign(**tag))
        ref.update(n_series=3 * len(eligible), unknown_workspaces=len(unknown),
                   history_start=str(growth["day"].min().date()))
    frame = pd.concat(frames, ignore_index=True).sort_values(
        ["workspace_id", "target_metric", "scenario", "prediction_date"]).reset_index(drop=True) if frames \
        else pd.DataFrame()
    ref["n_rows"] = len(frame)
    ref = _write(out, ref, frame, pd.concat(milestones, ignore_index=True) if milestones else pd.DataFrame(),
                 pd.concat([*projected_goals, outside], ignore_index=True), status, t0)
    log.info("growth shard %d scored with %s: %d of %d workspaces in %.1fs", shard, ref["versions"], len(eligible),
             len(status), ref["seconds"])
    return ref
