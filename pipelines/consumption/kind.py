"""Credit consumption as a prediction kind: shards of workspaces forecast in parallel, then one merge.

Training is split from scoring (README, "Retraining and scoring"). A nightly shard scores with the champion
version's stored model (``pipelines.consumption.scoring``); the merge then only checks drift and records a pending
retrain when it fires (``pipelines.drift``). With no usable champion the shards train inline, as a retrain does
(``pipelines.retrain``), and the merge tracks the run in MLflow with its scoring artifact, registers it
(champion/challenger) and hands the forecasts to the publisher.

A challenger whose holdout WAPE is worse than the champion's by more than ``promotion_tolerance`` is
not published, so the previous forecasts stay served.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from core.contracts import CREDIT_CONSUMPTION, RunStatus
from core.settings import Settings
from pipelines.consumption.evaluation import (
    merge_importance,
    summarize,
    summarize_cumulative,
)
from pipelines.consumption.artifact import build_artifact
from pipelines.consumption.forecast import DAILY_METRIC, ensemble_params, forecast_shard
from pipelines.consumption.tracking import log_run
from pipelines.registry import ModelRecord, fingerprint, register_version
from pipelines.results import KindResult, ShardResult, merge_shard_files, shard_frames
from pipelines.serving import scored_shards, tag_trained_through, workspaces_by_arm

MODEL_NAME = "pae-credit-consumption"


class ConsumptionKind:
    name = "consumption"
    feature_sets = ("workspace_daily",)
    # realised accuracy (pipelines/monitor.py): what happened, in the predictions' key space
    prediction_type = CREDIT_CONSUMPTION
    model_name = MODEL_NAME
    promised_metric = "holdout_Ensemble_pooled_wape"
    realised_sql = ("select workspace_id, 'credits' as target_metric, dimension, 'day' as granularity,"
                    " metric_date as prediction_date, 0 as prediction_hour, credits::float8 as actual"
                    " from analytics.workspace_daily_metrics where metric_date between :since and :until")

    def shards(self, settings: Settings) -> list[int]:
        return list(range(settings.shards))

    def run_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> ShardResult:
        return ShardResult.from_ref(self.name, shard, forecast_shard(settings, run_date, shard, settings.shards))

    # retraining (pipelines.retrain): training apart from nightly scoring
    def train_shards(self, settings: Settings) -> list[int]:
        return list(range(settings.shards))

    def train_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
        from pipelines.consumption.forecast import train_shard

        return train_shard(settings, run_date, shard, settings.shards)

    def finalize(self, settings: Settings, engine: Engine, run_date: date, shards: list[ShardResult]) -> KindResult:
        """Merge shard outputs: scored shards are published as they are (after the drift check); trained shards
        are tracked and registered first (``finalize_training``)."""
        from pipelines.retrain_runs import record_inline_training

        refs = [r.details for r in shards if r.n_rows]
        if not refs:
            return KindResult(kind=self.name, status=RunStatus.SKIPPED, reason="no workspace had history to forecast")
        if scored_shards(self.name, run_date, refs):
            return self._finalize_scored(settings, engine, run_date, refs)
        result = self.finalize_training(settings, engine, run_date, refs)
        return record_inline_training(engine, self.name, run_date, result, refs)

    def _finalize_scored(self, settings: Settings, engine: Engine, run_date: date, refs: list[dict]) -> KindResult:
        from pipelines.drift import nightly_drift_check

        root = settings.data_dir / "forecasts" / f"as_of={run_date.isoformat()}"
        root.mkdir(parents=True, exist_ok=True)
        frame_path = root / "forecast.parquet"
        rows = merge_shard_files(refs, "forecast.parquet", frame_path)
        versions = refs[0]["versions"]
        drift = nightly_drift_check(settings, engine, run_date, versions["champion"])
        details = {"mode": "scored", "versions": versions, "workspaces_by_arm": workspaces_by_arm(refs),
                   "unknown_workspaces": sum(r.get("unknown_workspaces", 0) for r in refs),
                   "unknown_feature_series": sum(r.get("unknown_feature_series", 0) for r in refs),
                   "unknown_fallback": "default weights (the mean stored mix) and pooled interval calibration",
                   "backtests": 0, "scoring_seconds": round(sum(r.get("seconds", 0) for r in refs), 1),
                   "drift": drift}
        return KindResult(kind=self.name, status=RunStatus.SUCCESS, publish_to="predictions",
                          prediction_type=CREDIT_CONSUMPTION, frame_path=str(frame_path),
                          model_version=versions.get("champion"), counts={"rows": rows}, details=details)

    def finalize_training(self, settings: Settings, engine: Engine, run_date: date, refs: list[dict]) -> KindResult:
        """Merge trained shards, track the run with its scoring artifact, register and promote the version."""
        as_of = run_date
        root = settings.data_dir / "forecasts" / f"as_of={as_of.isoformat()}"
        frame = pd.concat([pd.read_parquet(Path(r["path"]) / "forecast.parquet") for r in refs], ignore_index=True)
        per_series = shard_frames(refs, "holdout_metrics.parquet")
        summary = summarize(per_series) if len(per_series) else pd.DataFrame()
        metrics: dict = {}
        if len(summary):
            for row in summary.itertuples():
                for col in ("median_mase", "median_mape", "median_smape", "pooled_wape", "pooled_period_err",
                            "coverage_80", "coverage_95"):
                    if hasattr(row, col):
                        metrics[f"holdout_{row.model}_{col}"] = float(getattr(row, col))
        cumulative = shard_frames(refs, "holdout_cumulative.parquet")
        if len(cumulative):
            metrics.update({f"holdout_Ensemble_{k}": v for k, v in summarize_cumulative(cumulative).items()})
        ens = summary[summary["model"] == "Ensemble"].iloc[0] if len(summary) else None
        value = float(ens["pooled_wape"]) if ens is not None else float("nan")

        importance = merge_importance([(r["n_workspaces"], json.loads((Path(r["path"]) / "importance.json").read_text()))
                                       for r in refs if (Path(r["path"]) / "importance.json").exists()])
        frame_path = root / "forecast.parquet"
        params = {"as_of": as_of.isoformat(), "horizon_days": settings.forecast_horizon_days,
                  "level": settings.forecast_level, "holdout_days": settings.forecast_holdout_days,
                  "shards": len(refs), "history_days": settings.forecast_history_days,
                  **{f"ensemble_{k}": v for k, v in ensemble_params(settings).items()}}
        scoring = build_artifact(root, refs, {"ensemble": ensemble_params(settings),
                                              "ensemble_features": ensemble_params(settings, "feature"),
                                              "n_shards": settings.shards, "trained_through": as_of.isoformat(),
                                              "history_days": settings.forecast_history_days})
        run_id, model_uri, artifact_uri = log_run(settings, as_of, refs, frame, params, metrics, per_series, summary,
                                                  cumulative, importance, scoring)
        record = ModelRecord(model_type="ensemble_forecaster", target_metric=DAILY_METRIC, training_params=params,
                             performance_metrics=metrics, feature_importance=importance or None,
                             training_data_start=min(date.fromisoformat(r["history_start"]) for r in refs),
                             training_data_end=as_of)
        decision = register_version(engine, settings, model_name=MODEL_NAME, model_uri=model_uri,
                                    artifact_uri=artifact_uri, metric="holdout_wape", value=value,
                                    lower_is_better=True, tolerance=settings.promotion_tolerance,
                                    print_hash=fingerprint(as_of, params, frame), record=record,
                                    backtest=_windows_decision(settings, refs), kind=self.name, run_date=as_of)
        tag_trained_through(settings, MODEL_NAME, decision.version, as_of)
        frame["model_version"] = decision.version
        frame.to_parquet(frame_path)
        return KindResult(
            kind=self.name, status=RunStatus.SUCCESS if decision.promoted else RunStatus.SKIPPED,
            reason=None if decision.promoted else f"challenger not promoted: {decision.reason}",
            publish_to="predictions", prediction_type=CREDIT_CONSUMPTION,
            frame_path=str(frame_path) if decision.promoted else None, model_version=decision.version,
            mlflow_run_id=run_id, metrics={"holdout_wape": value}, counts={"rows": len(frame)},
            details={"promotion": decision.as_dict(),
                     "summary": summary.to_dict("records") if len(summary) else []})


def _windows_decision(settings: Settings, refs: list[dict]):
    """``compare_on_windows`` of the champion's stored weights and the new ensemble on the same backtest windows
    (every shard compared against the same champion), else None (the registry's tolerance rule decides)."""
    from models.promotion import compare_on_windows
    from pipelines.consumption.windows import window_frames

    versions = {r.get("champion_version") for r in refs}
    if len(versions) != 1 or None in versions:
        return None
    errors = shard_frames(refs, "promotion_windows.parquet")
    if errors.empty:
        return None
    champion, challenger = window_frames(errors)
    try:
        return compare_on_windows(champion, challenger, lower_is_better=True, min_wins=settings.promotion_min_wins,
                                  min_improvement=settings.promotion_min_improvement)
    except ValueError:  # e.g. no common window: the registry's tolerance rule decides
        return None


KIND = ConsumptionKind()
