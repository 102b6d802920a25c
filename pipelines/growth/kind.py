"""Growth (DAU, WAU, MAU with worst/likely/best scenarios, milestones and goals) as a prediction kind: shards
of workspaces projected in parallel (``pipelines.growth.shard``), then one merge that records each workspace's
status, the milestones and the goal projections, and hands the scenario rows to the publisher
(``prediction_type = 'growth'``, ``target_metric`` dau/wau/mau, ``scenario`` worst/likely/best).

Training is split from scoring (README, "Retraining and scoring"). A nightly shard scores with the serving
version's stored choices (``pipelines.serving.serving_plan``; per-series member weights, chosen specifications and
the error bank of the scenarios, ``pipelines.growth.artifact``): no holdout, no backtest. With
``ab_challenger_share`` > 0 and a distinct challenger, the challenger arm's workspaces are projected with the
challenger version; every row carries its arm's ``model_version``. A retrain (``train_shard`` and
``finalize_training``, ``pipelines.retrain``) evaluates on the holdout, backtests, tracks the run with its scoring
artifact and registers the version (champion/challenger on the holdout MASE of ``likely`` at 30 days); it
publishes nothing. With no usable champion the night trains inline the same way, publishes, and records a
``no-champion`` retrain.

Workspaces with too little history or too few active users are not projected; their status is
``insufficient_data`` with the counts, and the API says so. A challenger worse than the champion by more than
``growth_promotion_tolerance`` is not published, so the previous projections stay served.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from core.arms import CHAMPION_ARM
from core.contracts import GROWTH, RunStatus
from core.settings import Settings
from pipelines.features.sets import WORKSPACE_GROWTH
from pipelines.features.store import read_offline
from pipelines.growth.artifact import build_artifact, load_artifact
from pipelines.growth.evaluation import LIKELY, calibration_summary, coverage, summarize
from pipelines.growth.project import BANK_HORIZON_DAYS, ensemble_params, growth_members
from pipelines.growth.sample_paths import METRICS
from pipelines.growth.shard import growth_shard, retrain_dir, run_dir, score_shard
from pipelines.growth.tables import write_records
from pipelines.growth.tracking import backtest_summary, log_run
from pipelines.registry import ModelRecord, fingerprint, register_version
from pipelines.results import KindResult, ShardResult, merge_shard_files, shard_frames
from pipelines.serving import scored_shards, serving_plan, tag_trained_through, workspaces_by_arm

MODEL_NAME = "pae-growth"
PROMOTION_METRIC = "holdout_mase_30"


def _finite(d: dict) -> dict:
    """Without NaN/inf values (JSON columns reject them)."""
    return {k: v for k, v in d.items() if not isinstance(v, float) or np.isfinite(v)}


def holdout_metrics(refs: list[dict]) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Metrics (flat, for MLflow and ``ml_models``) and tables of the shards' holdout files."""
    per_series = shard_frames(refs, "holdout_metrics.parquet")
    scenarios = shard_frames(refs, "holdout_scenarios.parquet")
    milestones = shard_frames(refs, "holdout_milestones.parquet")
    tables = {"holdout_per_series": per_series}
    metrics: dict = {}
    if len(per_series):
        summary = summarize(per_series)
        tables["holdout_summary"] = summary
        for r in summary.itertuples():
            for H in (30, 90):
                metrics[f"holdout_{r.model}_{r.target_metric}_median_mase_{H}"] = float(getattr(r, f"median_mase_{H}"))
        likely = summary[(summary["model"] == LIKELY) & (summary["target_metric"] == "all")]
        metrics[PROMOTION_METRIC] = float(likely["median_mase_30"].iloc[0]) if len(likely) else float("nan")
    if len(scenarios):
        cov = coverage(scenarios[["workspace_id", "target_metric", "prediction_date", "y"]], scenarios.drop(columns="y"))
        tables["holdout_coverage"] = cov
        for r in cov.itertuples():
            for col in ("coverage_80", "coverage_95", "above_worst", "above_likely", "above_best"):
                metrics[f"holdout_{r.target_metric}_{col}"] = float(getattr(r, col))
    if len(milestones):
        tables["holdout_milestones"] = milestones
        metrics.update({f"holdout_{k}": v for k, v in calibration_summary(milestones).items()})
    return metrics, tables


class GrowthKind:
    name = "growth"
    feature_sets = (WORKSPACE_GROWTH.name,)
    model_name = MODEL_NAME
    # realised accuracy (pipelines/monitor.py): the exact DAU/WAU/MAU of each day, in the predictions' keys
    prediction_type = GROWTH
    realised_sql = ("select g.workspace_id, m.metric as target_metric, 'total' as dimension, 'day' as granularity,"
                    " g.metric_date as prediction_date, 0 as prediction_hour, m.value::float8 as actual"
                    " from analytics.workspace_growth_metrics g"
                    " cross join lateral (values ('dau', g.dau), ('wau', g.wau), ('mau', g.mau)) as m(metric, value)"
                    " where g.metric_date between :since and :until")

    def shards(self, settings: Settings) -> list[int]:
        return list(range(settings.shards))

    def run_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> ShardResult:
        """Score with the stored version(s); train inline (as a retrain does) when there is no usable one."""
        plan = serving_plan(settings, engine, MODEL_NAME, run_date, lambda v: load_artifact(settings, MODEL_NAME, v),
                            lambda art: art.trained_through)
        if plan.train_inline:
            ref = growth_shard(settings, engine, run_date, shard, settings.shards)
            ref["train_reason"] = plan.note
        else:
            ref = score_shard(settings, engine, run_date, shard, settings.shards, plan)
            ref["plan_note"] = plan.note
        return ShardResult.from_ref(self.name, shard, ref)

    # retraining (pipelines.retrain): training apart from nightly scoring
    def train_shards(self, settings: Settings) -> list[int]:
        return list(range(settings.shards))

    def train_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
        return growth_shard(settings, engine, run_date, shard, settings.shards, retrain_dir(settings, run_date))

    def finalize(self, settings: Settings, engine: Engine, run_date: date, shards: list[ShardResult]) -> KindResult:
        """Merge the shards and record statuses, milestones and goals; trained shards are tracked and registered
        first (``finalize_training``, recorded as a ``no-champion`` retrain); say what to publish."""
        from pipelines.retrain_runs import record_inline_training

        as_of = run_date
        refs = [r.details for r in shards if r.details.get("path")]
        status = shard_frames(refs, "status.parquet")
        counts = {"workspaces": len(status), "projected": int((status.get("status") == "success").sum())
                  if len(status) else 0}
        projected = [r for r in refs if r.get("n_rows")]
        if not projected:
            if len(status):
                with engine.begin() as conn:
                    write_records(conn, as_of, status, None, None, None)
            reasons = status["reason"].value_counts().head(3).to_dict() if len(status) else {}
            return KindResult(kind=self.name, status=RunStatus.INSUFFICIENT_DATA, counts=counts,
                              reason=f"no workspace has enough history and active users to project: {reasons}",
                              details={"statuses": counts})
        scored = scored_shards(self.name, as_of, projected)
        milestones = shard_frames(refs, "milestones.parquet")
        goals = shard_frames(refs, "goals.parquet")
        if scored:
            return self._finalize_scored(settings, engine, as_of, refs, projected, status, milestones, goals, counts)
        result = self.finalize_training(settings, engine, as_of, projected)
        promoted = result.details["promotion"]["promoted"]
        with engine.begin() as conn:
            written = write_records(conn, as_of, status, milestones if promoted else None,
                                    goals if promoted else None, result.model_version if promoted else None)
        result = record_inline_training(engine, self.name, as_of, result, projected)
        result.counts.update(counts)
        result.counts.update({f"records_{k}": v for k, v in written.items()})
        result.details.update(versions={CHAMPION_ARM: result.model_version},
                              workspaces_by_arm={CHAMPION_ARM: counts["projected"]})
        return result

    def _finalize_scored(self, settings: Settings, engine: Engine, as_of: date, refs: list[dict],
                         projected: list[dict], status: pd.DataFrame, milestones: pd.DataFrame, goals: pd.DataFrame,
                         counts: dict) -> KindResult:
        """Scored shards: the frame as it is (each row with its arm's version), and the records of the date."""
        versions = projected[0]["versions"]
        champion = versions[CHAMPION_ARM]
        frame_path = run_dir(settings, as_of) / "projection.parquet"
        rows = merge_shard_files(projected, "projection.parquet", frame_path)
        for part in (milestones, goals):  # goals past due or beyond the range were not projected by any arm
            if len(part):
                part["model_version"] = (part["model_version"] if "model_version" in part
                                         else pd.Series(None, index=part.index, dtype=object)).fillna(champion)
        with engine.begin() as conn:
            written = write_records(conn, as_of, status, milestones, goals, champion)
        details = {"mode": "scored", "versions": versions, "workspaces_by_arm": workspaces_by_arm(projected),
                   "unknown_workspaces": sum(r.get("unknown_workspaces", 0) for r in projected),
                   "unknown_fallback": "default weights (the mean stored mix of the training shard) and that "
                                       "shard's error bank",
                   "backtests": sum(r.get("backtests", 0) for r in projected),
                   "scoring_seconds": round(sum(r.get("seconds", 0) for r in refs), 1),
                   "note": projected[0].get("plan_note", "")}
        return KindResult(kind=self.name, status=RunStatus.SUCCESS, publish_to="predictions", prediction_type=GROWTH,
                          frame_path=str(frame_path), model_version=champion,
                          counts={**counts, "rows": rows, **{f"records_{k}": v for k, v in written.items()}},
                          details=details)

    def finalize_training(self, settings: Settings, engine: Engine, run_date: date, refs: list[dict]) -> KindResult:
        """Merge trained shards, track the run with its scoring artifact in MLflow and register the version with its
        decision; writes no records and publishes nothing (``finalize`` does, for a night that trained inline)."""
        as_of = run_date
        status = shard_frames(refs, "status.parquet")
        projected = [r for r in refs if r.get("n_rows")]
        frame = shard_frames(projected, "projection.parquet")
        milestones = shard_frames(refs, "milestones.parquet")
        metrics, tables = holdout_metrics(refs)
        bt = backtest_summary(projected)
        if len(bt):
            tables["backtest_summary"] = bt
            for r in bt.itertuples():
                for col in ("mase_median", "wape", "coverage_80", "coverage_95"):
                    v = float(getattr(r, col, float("nan")))
                    if np.isfinite(v):
                        metrics[f"backtest_{r.model}_{col}"] = v
        tables["status"] = status
        tables["fallbacks"] = shard_frames(projected, "fallbacks.parquet")
        weights = [(r["n_eligible"], json.loads((Path(r["path"]) / "importance.json").read_text()))
                   for r in projected]
        total = sum(n for n, _ in weights)
        names = sorted({k for _, w in weights for k in w["ensemble_member_weights"]})
        importance = {"ensemble_member_weights": {k: sum(n * w["ensemble_member_weights"].get(k, 0.0)
                                                         for n, w in weights) / total for k in names},
                      "ensemble_member_weights_by_metric": {
                          metric: {k: sum(n * w["ensemble_member_weights_by_metric"].get(metric, {}).get(k, 0.0)
                                          for n, w in weights) / total for k in names} for metric in METRICS}}
        params = {"as_of": as_of.isoformat(), "horizon_days": settings.growth_horizon_days,
                  "holdout_days": settings.growth_holdout_days, "paths": settings.growth_paths,
                  "mau_window_days": settings.growth_mau_window_days, "bank_horizon_days": BANK_HORIZON_DAYS,
                  "min_history_days": settings.growth_min_history_days,
                  "min_active_users": settings.growth_min_active_users, "shards": len(refs),
                  "members": ",".join(m.name for m in growth_members(settings)),
                  **{f"ensemble_{k}": v for k, v in ensemble_params(settings).items()}}
        growth = read_offline(settings.offline_store_dir, WORKSPACE_GROWTH, as_of)
        root = Path(projected[0]["path"]).parent  # the night's folder, or a retrain's own
        scoring = build_artifact(root, projected, {
            "members": [m.name for m in growth_members(settings)], "ensemble": ensemble_params(settings),
            "n_shards": settings.shards, "trained_through": as_of.isoformat(),
            "history_days": settings.forecast_history_days})
        run_id, model_uri, artifact_uri = log_run(settings, as_of, projected, params, metrics, tables, frame, growth,
                                                  importance, scoring)
        value = metrics.get(PROMOTION_METRIC, float("nan"))
        if not np.isfinite(value):  # no holdout (history too short before its cutoff): the backtest's MASE
            value = metrics.get("backtest_Ensemble_mase_median", float("nan"))
            params["promotion_metric_source"] = "backtest (no holdout)"
        value = float(value) if np.isfinite(value) else 0.0
        record = ModelRecord(model_type="growth_scenario_ensemble", target_metric="dau,wau,mau", training_params=params,
                             performance_metrics=_finite(metrics), feature_importance=importance,
                             training_data_start=min(date.fromisoformat(r["history_start"]) for r in projected),
                             training_data_end=as_of)
        decision = register_version(engine, settings, model_name=MODEL_NAME, model_uri=model_uri,
                                    artifact_uri=artifact_uri, metric=PROMOTION_METRIC, value=value,
                                    lower_is_better=True, tolerance=settings.growth_promotion_tolerance,
                                    print_hash=fingerprint(as_of, params, frame, milestones), record=record,
                                    kind=self.name, run_date=as_of)
        tag_trained_through(settings, MODEL_NAME, decision.version, as_of)
        frame["model_version"] = decision.version
        frame_path = root / "projection.parquet"
        frame.to_parquet(frame_path)
        return KindResult(
            kind=self.name, status=RunStatus.SUCCESS if decision.promoted else RunStatus.SKIPPED,
            reason=None if decision.promoted else f"challenger not promoted: {decision.reason}",
            publish_to="predictions", prediction_type=GROWTH,
            frame_path=str(frame_path) if decision.promoted else None, model_version=decision.version,
            mlflow_run_id=run_id, metrics=_finite({PROMOTION_METRIC: value, **{
                k: v for k, v in metrics.items() if "coverage" in k or "milestone" in k}}),
            counts={"rows": len(frame), "workspaces": len(status),
                    "projected": int((status.get("status") == "success").sum()) if len(status) else 0},
            details={"promotion": decision.as_dict(), "backtests": sum(r.get("backtests", 0) for r in projected)})


KIND = GrowthKind()
