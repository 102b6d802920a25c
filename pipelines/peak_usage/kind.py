"""Peak usage as a prediction kind: shards of workspaces forecast hourly in parallel, then one merge.

Training is split from scoring (README, "Retraining and scoring"). Training (``train_shard``, run by
``pipelines.retrain``) is the holdout evaluation, the backtests that choose each group's members and collect the
error blocks of the sample paths, and the production fit; ``finalize_training`` tracks the run in MLflow with its
scoring artifact (``pipelines.peak_usage.artifact``), registers the version with its decision and publishes
nothing. A nightly shard scores with the served version's artifact (``pipelines.peak_usage.scoring``: no holdout,
no backtest; A/B arms by version); with no usable version it trains inline and ``finalize`` registers it, hands the
rows to the publisher and records a ``no-champion`` retrain.

Promotion metric: the ensemble's holdout daily-peak MAPE of calls (lower is better); a challenger worse than the
champion by more than ``peak_promotion_tolerance`` is not published, so the previous predictions stay served.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from core.arms import CHAMPION_ARM
from core.contracts import DAY, HOUR, PEAK_METRICS, PEAK_USAGE, RunStatus
from core.settings import REPO_ROOT, Settings
from pipelines.monitor import SnapshotScope
from pipelines.peak_usage.artifact import MODEL_NAME, build_artifact
from pipelines.peak_usage.evaluation import summarize_days
from pipelines.peak_usage.forecast import forecast_shard, forecaster_params
from pipelines.peak_usage.realised import HOUR_FREE_METRICS, MONITORED_METRICS, REALISED_PEAKS_SQL
from pipelines.registry import (
    ModelRecord,
    fingerprint,
    register_version,
    use_experiment,
)
from pipelines.results import KindResult, ShardResult, merge_shard_files, shard_frames
from pipelines.serving import scored_shards, tag_trained_through, workspaces_by_arm

EXPERIMENT = "peak-usage"
UNKNOWN_FALLBACK = ("the stored choice of the group of their latest hours (else the overall one), paths from that "
                    "group's stored error blocks")

def _log_run(settings: Settings, as_of: date, root: Path, params: dict, metrics: dict,
             tables: dict[str, pd.DataFrame], scoring: Path) -> tuple[str, str, str]:
    use_experiment(settings, EXPERIMENT)
    import mlflow

    with mlflow.start_run(run_name=f"peak_usage {as_of}") as run:
        mlflow.set_tags({"pae.run_date": as_of.isoformat()})
        mlflow.log_params(params)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        for name, table in tables.items():
            if len(table):
                path = root / f"{name}.csv"
                table.to_csv(path, index=False)
                mlflow.log_artifact(str(path), "metrics")
        mlflow.log_artifacts(str(scoring), scoring.name)  # what nightly scoring reads (no pickles)
        config = root / "config.json"
        config.write_text(json.dumps({"forecaster": {k: (list(v) if isinstance(v, tuple) else v)
                                                     for k, v in forecaster_params(settings).items()}}))
        info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("pyfunc.py")),
                                       artifacts={"config": str(config)}, code_paths=[str(REPO_ROOT / "models")])
        return run.info.run_id, info.model_uri, run.info.artifact_uri


class PeakUsageKind:
    name = "peak_usage"
    feature_sets = ("workspace_hourly",)
    # realised accuracy (pipelines/monitor.py): hourly values by UTC hour, daily peaks by local day and hour
    prediction_type = PEAK_USAGE
    model_name = MODEL_NAME
    snapshot_scope = SnapshotScope(granularities=(DAY, HOUR), metrics=MONITORED_METRICS)
    realised_sql = REALISED_PEAKS_SQL
    hour_free_metrics = HOUR_FREE_METRICS
    realised_hour = True
    naive_lookback_days = 7  # horizons of 1 and 7 days: the naive is a week back
    promised_metric = "holdout_calls_Ensemble_peak_mape"  # the daily peak of calls: MAPE, as on the holdout
    alert_measure = "mape"
    alert_metrics = ("calls_peak",)

    def shards(self, settings: Settings) -> list[int]:
        return list(range(settings.shards))

    def run_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> ShardResult:
        """Score the shard with the served version(s), or train it inline when there is none (the ref's ``mode``)."""
        return ShardResult.from_ref(self.name, shard, forecast_shard(settings, engine, run_date, shard, settings.shards))

    # retraining (pipelines.retrain): training apart from nightly scoring
    def train_shards(self, settings: Settings) -> list[int]:
        return list(range(settings.shards))

    def train_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
        from pipelines.peak_usage.forecast import train_shard

        return train_shard(settings, engine, run_date, shard, settings.shards)

    def finalize(self, settings: Settings, engine: Engine, run_date: date, shards: list[ShardResult]) -> KindResult:
        """Merge shard outputs: scored shards are published as they are; trained shards are tracked and registered
        first (``finalize_training``) and recorded as a ``no-champion`` retrain."""
        from pipelines.retrain_runs import record_inline_training

        refs = [r.details for r in shards if r.n_rows]
        if not refs:
            return KindResult(kind=self.name, status=RunStatus.SKIPPED, reason="no workspace had hourly history")
        if scored_shards(self.name, run_date, refs):
            return self._finalize_scored(settings, run_date, refs)
        result = self.finalize_training(settings, engine, run_date, refs)
        result = record_inline_training(engine, self.name, run_date, result, refs)
        result.details.update(versions={CHAMPION_ARM: result.model_version},
                              workspaces_by_arm={CHAMPION_ARM: sum(r["n_workspaces"] for r in refs)})
        return result

    def _finalize_scored(self, settings: Settings, run_date: date, refs: list[dict]) -> KindResult:
        root = settings.data_dir / "peak_usage" / f"as_of={run_date.isoformat()}"
        root.mkdir(parents=True, exist_ok=True)
        frame_path = root / "forecast.parquet"
        rows = merge_shard_files(refs, "forecast.parquet", frame_path)
        versions = refs[0]["versions"]
        unknown: dict[str, int] = {}
        for r in refs:
            for metric, n in r.get("unknown_workspaces", {}).items():
                unknown[metric] = unknown.get(metric, 0) + n
        alert_hours = float(sum(r.get("n_alert_hours", 0) for r in refs))
        details = {"mode": "scored", "versions": versions, "workspaces_by_arm": workspaces_by_arm(refs),
                   "note": refs[0].get("note"),
                   "unknown_workspaces": unknown, "unknown_fallback": UNKNOWN_FALLBACK, "backtests": 0,
                   "scoring_seconds": round(sum(r.get("seconds", 0) for r in refs), 1)}
        return KindResult(kind=self.name, status=RunStatus.SUCCESS, publish_to="predictions", prediction_type=PEAK_USAGE,
                          frame_path=str(frame_path), model_version=versions.get(CHAMPION_ARM),
                          metrics={"alert_hours": alert_hours}, counts={"rows": rows}, details=details)

    def finalize_training(self, settings: Settings, engine: Engine, run_date: date, refs: list[dict]) -> KindResult:
        """Merge trained shards, track the run with its scoring artifact, register the version with its decision.
        Publishes nothing itself: the nightly ``finalize`` hands a promoted inline training's rows on."""
        as_of = run_date
        root = settings.data_dir / "peak_usage" / f"as_of={as_of.isoformat()}"
        frame = shard_frames(refs, "forecast.parquet")
        days = shard_frames(refs, "holdout_days.parquet")
        summary = summarize_days(days) if len(days) else pd.DataFrame()
        metrics: dict = {}
        for row in summary.to_dict("records"):
            for k, v in row.items():
                if k not in ("metric", "model"):
                    metrics[f"holdout_{row['metric']}_{row['model']}_{k}"] = float(v)
        for r in refs:
            for k, v in r.get("holdout_hourly", {}).items():
                metrics[f"holdout_hourly_{k}_shard{r['shard']}"] = float(v)
        metrics["alert_hours"] = float(sum(r.get("n_alert_hours", 0) for r in refs))
        metrics["n_workspaces"] = float(sum(r["n_workspaces"] for r in refs))
        value = metrics.get("holdout_calls_Ensemble_peak_mape", float("nan"))
        params = {"as_of": as_of.isoformat(), "level": settings.peak_level, "headroom": settings.peak_headroom,
                  "horizon_days": settings.peak_horizon_days, "shards": len(refs),
                  **{k: (",".join(v) if isinstance(v, tuple) else v) for k, v in forecaster_params(settings).items()}}
        weights = shard_frames(refs, "weights.parquet")
        choice = (weights.groupby(["metric", "group", "choice"]).size().rename("n_series").reset_index()
                  if len(weights) else pd.DataFrame())
        importance = ({f"{m}:{g}": c for m, g, c in choice[["metric", "group", "choice"]].itertuples(index=False)}
                      if len(choice) else None)
        scoring = build_artifact(root, refs, {"forecaster": {k: (list(v) if isinstance(v, tuple) else v)
                                                             for k, v in forecaster_params(settings).items()
                                                             if k != "n_jobs"},
                                              "metrics": list(PEAK_METRICS), "n_shards": settings.shards,
                                              "trained_through": as_of.isoformat()})
        run_id, model_uri, artifact_uri = _log_run(settings, as_of, root, params, metrics, {
            "holdout_summary": summary, "holdout_days": days, "choices": choice,
            "fallbacks": shard_frames(refs, "fallbacks.parquet"), "time_zones": shard_frames(refs, "time_zones.parquet")},
            scoring)
        record = ModelRecord(model_type="peak_usage_ensemble", target_metric="calls_peak", training_params=params,
                             performance_metrics=metrics, feature_importance=importance,
                             training_data_start=min(date.fromisoformat(r["history_start"]) for r in refs),
                             training_data_end=as_of)
        decision = register_version(engine, settings, model_name=MODEL_NAME, model_uri=model_uri,
                                    artifact_uri=artifact_uri, metric="holdout_peak_mape", value=value,
                                    lower_is_better=True, tolerance=settings.peak_promotion_tolerance,
                                    print_hash=fingerprint(as_of, params, frame), record=record, kind=self.name,
                                    run_date=as_of)
        tag_trained_through(settings, MODEL_NAME, decision.version, as_of)
        frame["model_version"] = decision.version
        frame["arm"] = CHAMPION_ARM
        frame_path = root / "forecast.parquet"
        frame.to_parquet(frame_path)
        return KindResult(
            kind=self.name, status=RunStatus.SUCCESS if decision.promoted else RunStatus.SKIPPED,
            reason=None if decision.promoted else f"challenger not promoted: {decision.reason}",
            publish_to="predictions", prediction_type=PEAK_USAGE,
            frame_path=str(frame_path) if decision.promoted else None, model_version=decision.version,
            mlflow_run_id=run_id, metrics={"holdout_peak_mape": value, "alert_hours": metrics["alert_hours"]},
            counts={"rows": len(frame)},
            details={"promotion": decision.as_dict(), "summary": summary.to_dict("records") if len(summary) else []})


KIND = PeakUsageKind()
