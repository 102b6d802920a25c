"""Agent error rates as a prediction kind: per-agent daily error-rate forecasts (14 days, 80/95% intervals) and
escalation alerts, from ``models.error_rates``.

Training is split from scoring (README, "Retraining and scoring"). Shards (``agent_error_shards``, default 1: one
pool of all agents) score nightly with the stored version(s) (``pipelines.agent_errors.shard``: the served
version's bundle, and the challenger's for the A/B arm); ``finalize`` merges them and, when the served version was
trained ``agent_error_retrain_days`` or more before the run date, records a pending ``schedule`` retrain
(``pipelines.retrain_runs.request_retrain``) while it keeps scoring. A retrain (``pae retrain --kinds
agent_errors``, the retrain DAG) runs ``train_shard`` per shard and ``finalize_training``: it tracks the run in
MLflow with its scoring artifact (``bundle/bundle.json``), registers the model (``pae-agent-error-rates``,
champion/challenger on the out-of-time average precision of the breach classifier,
``agent_error_promotion_tolerance``, recorded in ``analytics.ml_models`` and ``analytics.model_decisions``) and
publishes nothing. With no usable version the nightly shards train inline and ``finalize`` runs the same
``finalize_training``, then records a ``no-champion`` retrain.

What a night publishes, in one transaction: forecast rows in ``analytics.predictions`` (``error_rate``,
dimension = the agent, 95% interval), every agent's forecast detail in ``analytics.agent_error_forecasts`` (both
intervals, expected calls, breach probability by day) and the as-of date's alerts in
``analytics.agent_error_alerts``; every row carries the ``model_version`` of its workspace's arm. A refused
challenger trained inline does not stop the night: the served version's scores of the same night are published.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from core.arms import CHAMPION_ARM
from core.contracts import ERROR_RATE, RunStatus
from core.settings import Settings
from models.error_rates import MODEL_FEATURES
from pipelines.agent_errors.data import MODEL_NAME, config_params
from pipelines.agent_errors.realised import BREACH_TARGET, REALISED_RATES_SQL, realised_alert_outcomes
from pipelines.agent_errors.shard import BUNDLE_VERSION, run_shard, train_shard
from pipelines.agent_errors.tracking import load_version, log_run
from pipelines.monitor import SnapshotScope
from pipelines.registry import ModelRecord, fingerprint, register_version
from pipelines.results import KindResult, ShardResult
from pipelines.serving import scored_shards, tag_trained_through, workspaces_by_arm

METRIC = "oot_pr_auc"


def _pooled(refs: list[dict]) -> dict[str, float]:
    """Shards' metrics averaged with their out-of-time row counts as weights (exact with one shard)."""
    keys = sorted({k for r in refs for k in r["metrics"]})
    out = {}
    for k in keys:
        vals = [(r["metrics"].get(k, np.nan), r["metrics"].get("oot_n", 1.0)) for r in refs]
        vals = [(v, w) for v, w in vals if v is not None and np.isfinite(v)]
        if vals:
            out[k] = float(sum(v * w for v, w in vals) / max(sum(w for _, w in vals), 1e-9))
    return out


def _merge(refs: list[dict], prefix: str, version: str, root: Path) -> dict[str, str]:
    alerts = pd.concat([pd.read_parquet(Path(r["path"]) / f"{prefix}alerts.parquet") for r in refs], ignore_index=True)
    fc = pd.concat([pd.read_parquet(Path(r["path"]) / f"{prefix}forecast.parquet") for r in refs], ignore_index=True)
    for frame in (alerts, fc):  # scored rows carry their arm's version; trained rows get ``version``
        frame["model_version"] = frame["model_version"].fillna(version) if "model_version" in frame else version
        frame["arm"] = frame["arm"].fillna(CHAMPION_ARM) if "arm" in frame else CHAMPION_ARM
    alerts = alerts.sort_values(["risk_rank", "workspace_id", "agent_id"], ascending=[False, True, True])
    predictions = pd.DataFrame({
        "workspace_id": fc["workspace_id"], "target_metric": ERROR_RATE, "dimension": fc["agent_id"],
        "prediction_date": fc["prediction_date"], "predicted_value": fc["predicted_rate"],
        "confidence_lower": fc["lower_95"], "confidence_upper": fc["upper_95"], "confidence_level": 0.95,
        "model_version": fc["model_version"], "arm": fc["arm"]})
    paths = {"predictions": root / "predictions.parquet", "agent_error_alerts": root / "alerts.parquet",
             "agent_error_forecasts": root / "forecasts.parquet"}
    predictions.to_parquet(paths["predictions"])
    alerts.reset_index(drop=True).to_parquet(paths["agent_error_alerts"])
    fc.to_parquet(paths["agent_error_forecasts"])
    return {k: str(v) for k, v in paths.items()}


def _summary(alerts_path: str) -> dict:
    a = pd.read_parquet(alerts_path)
    return {"agents": len(a), "status": {k: int(v) for k, v in a["status"].value_counts().items()},
            "alert_level": {k: int(v) for k, v in a["alert_level"].value_counts().items()}}


class AgentErrorKind:
    name = "agent_errors"
    feature_sets = ("agent_daily",)
    # realised accuracy (pipelines/monitor.py): each agent's daily rate, and alerts against confirmed breaches
    prediction_type = ERROR_RATE
    model_name = MODEL_NAME
    snapshot_scope = SnapshotScope(all_dimensions=True)  # dimension = the agent
    realised_sql = REALISED_RATES_SQL
    promised_metric = "forecast_wmae"  # calls-weighted on held-out weeks; realised: the plain mean per agent-day
    alert_measure = "mae"
    outcome_alert = {"target_metric": BREACH_TARGET, "promised_metric": METRIC, "measure": "pr_auc"}

    def realised_outcomes(self, settings: Settings, engine: Engine, run_date: date):
        return realised_alert_outcomes(settings, engine, run_date)

    def shards(self, settings: Settings) -> list[int]:
        return list(range(settings.agent_error_shards))

    def run_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> ShardResult:
        ref = run_shard(settings, engine, run_date, shard)
        return ShardResult(kind=self.name, shard=shard, status=ref["status"], path=ref.get("path"),
                           n_series=ref.get("n_agents", 0), n_rows=ref.get("counts", {}).get("forecast_rows", 0),
                           details=ref)

    # retraining (pipelines.retrain): training apart from nightly scoring
    def train_shards(self, settings: Settings) -> list[int]:
        return list(range(settings.agent_error_shards))

    def train_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
        return train_shard(settings, engine, run_date, shard)

    def finalize(self, settings: Settings, engine: Engine, run_date: date, shards: list[ShardResult]) -> KindResult:
        """Merge shard outputs: scored shards are published as they are (after the retrain-age check); a night
        that trained inline tracks and registers first (``finalize_training``) and records a ``no-champion``
        retrain."""
        from pipelines.retrain_runs import record_inline_training

        refs = [r.details for r in shards if r.status == RunStatus.SUCCESS]
        if not refs:
            reasons = "; ".join(sorted({str(r.details.get("reason")) for r in shards}))
            return KindResult(kind=self.name, status=RunStatus.INSUFFICIENT_DATA, reason=reasons or "no shard ran")
        if all(r["mode"] == "scored" for r in refs) and scored_shards(self.name, run_date, refs):
            return self._finalize_scored(settings, engine, run_date, refs)
        result = self.finalize_training(settings, engine, run_date, refs)
        return record_inline_training(engine, self.name, run_date, result, [r for r in refs if r["mode"] == "trained"])

    def _finalize_scored(self, settings: Settings, engine: Engine, run_date: date, refs: list[dict]) -> KindResult:
        from pipelines.retrain_runs import request_if_due

        versions = refs[0]["versions"]
        root = settings.data_dir / "agent_errors" / f"as_of={run_date.isoformat()}"
        paths = _merge(refs, "", versions[CHAMPION_ARM], root)
        details = {"mode": "scored", "versions": versions, "workspaces_by_arm": workspaces_by_arm(refs),
                   "modes": {str(r["shard"]): r["mode"] for r in refs},
                   "champion_notes": sorted({r["champion_note"] for r in refs}), "backtests": 0,
                   "scoring_seconds": round(sum(r.get("seconds", 0) for r in refs), 2),
                   "schedule": request_if_due(engine, self.name, run_date, versions[CHAMPION_ARM],
                                              date.fromisoformat(refs[0]["trained_through"]),
                                              settings.agent_error_retrain_days)}
        return self._result(paths, versions[CHAMPION_ARM], None, {}, details, refs[0]["champion_note"])

    def finalize_training(self, settings: Settings, engine: Engine, run_date: date, refs: list[dict]) -> KindResult:
        """Merge trained shards into one bundle, track the run with it (the scoring artifact) in MLflow, register
        the version with its decision and tag what it was trained through. Publishes nothing itself: the
        result names the merged files for a night that trained inline (the new version's scores if it is to be
        promoted, else the served version's when every shard could score with it)."""
        trained = [r for r in refs if r["mode"] == "trained"]
        root = Path(trained[0]["path"]).parent  # the night's folder, or the retrain's (``shard.shard_dir``)
        shard_bundles = {str(r["shard"]): json.loads((Path(r["path"]) / "shard_bundle.json").read_text())
                         for r in trained}
        scored = [r for r in refs if r["mode"] == "scored"]
        if scored:  # shards that scored with the served version keep its model in the new bundle
            served = load_version(settings, scored[0]["versions"][CHAMPION_ARM])
            for r in scored:
                shard_bundles[str(r["shard"])] = served.bundle["shards"][str(r["shard"])]
        params = {"as_of": run_date.isoformat(), "features": MODEL_FEATURES, **config_params(settings),
                  "kinds": sorted({r["kind"] for r in trained})}
        bundle = {"bundle_version": BUNDLE_VERSION, "n_shards": settings.agent_error_shards,
                  "config": config_params(settings), "trained_through": run_date.isoformat(),
                  "horizon": settings.agent_error_horizon_days, "features": MODEL_FEATURES, "shards": shard_bundles}
        metrics = _pooled(trained)
        value = metrics.get(METRIC, float("nan"))
        value = value if np.isfinite(value) else 0.0
        importance = {f: float(np.mean([r["importance"].get(f, 0.0) for r in trained])) for f in MODEL_FEATURES}
        candidates = pd.concat([pd.read_parquet(Path(r["path"]) / "candidates.parquet").assign(shard=r["shard"])
                                for r in trained], ignore_index=True)
        summary = _summary(str(Path(trained[0]["path"]) / "alerts.parquet"))
        run_id, model_uri, artifact_uri = log_run(settings, run_date, root, bundle, params, metrics, candidates,
                                                  importance, summary)
        record = ModelRecord(model_type=f"escalation_{'+'.join(params['kinds'])}", target_metric=ERROR_RATE,
                             training_params=params, performance_metrics=metrics, feature_importance=importance,
                             training_data_start=min(date.fromisoformat(r["training_start"]) for r in trained),
                             training_data_end=run_date)
        decision = register_version(engine, settings, model_name=MODEL_NAME, model_uri=model_uri,
                                    artifact_uri=artifact_uri, metric=METRIC, value=value, lower_is_better=False,
                                    tolerance=settings.agent_error_promotion_tolerance,
                                    print_hash=fingerprint(run_date, json.dumps(bundle, sort_keys=True, default=float)),
                                    record=record, kind=self.name, run_date=run_date)
        tag_trained_through(settings, MODEL_NAME, decision.version, run_date)
        details: dict = {"modes": {str(r["shard"]): r["mode"] for r in refs},
                         "champion_notes": sorted({r.get("champion_note", "") for r in refs} - {""}),
                         "promotion": decision.as_dict(), "candidates": candidates.to_dict("records"),
                         "path_params": [r["path_params"] for r in trained],
                         "versions": {CHAMPION_ARM: decision.version},
                         "workspaces_by_arm": {CHAMPION_ARM: sum(r.get("n_workspaces", 0) for r in refs)}}
        if decision.promoted:
            paths = _merge(refs, "", decision.version, root)
            return self._result(paths, decision.version, run_id, metrics, details, None)
        fallback = {r.get("champion_version") for r in trained}
        if len(fallback) == 1 and None not in fallback and all(r.get("champion_scored") for r in trained) \
                and all(r["versions"][CHAMPION_ARM] in fallback for r in scored):
            version = fallback.pop()
            details["versions"] = {CHAMPION_ARM: version}
            paths = _merge_champion(refs, version, root)
            return self._result(paths, version, run_id, metrics, details,
                                f"challenger v{decision.version} not promoted ({decision.reason}); "
                                f"scored with v{version}")
        return KindResult(kind=self.name, status=RunStatus.SKIPPED, mlflow_run_id=run_id, metrics=metrics,
                          model_version=decision.version, details=details,
                          reason=f"challenger not promoted: {decision.reason}")

    def _result(self, paths: dict[str, str], version: str, run_id: str | None, metrics: dict, details: dict,
                note: str | None) -> KindResult:
        summary = _summary(paths["agent_error_alerts"])
        details["summary"] = summary
        return KindResult(kind=self.name, status=RunStatus.SUCCESS, reason=note, publish_to="predictions",
                          prediction_type=ERROR_RATE, frame_path=paths["predictions"],
                          extra_sets={k: v for k, v in paths.items() if k != "predictions"}, model_version=version,
                          mlflow_run_id=run_id, metrics=metrics,
                          counts={"agents": summary["agents"], **{f"alerts_{k}": v for k, v in
                                                                  summary["alert_level"].items()}},
                          details=details)


def _merge_champion(refs: list[dict], version: str, root: Path) -> dict[str, str]:
    """Merge the served version's scores: ``champion_*`` files of trained shards, the plain ones of scored shards."""
    for r in refs:
        if r["mode"] == "trained":
            for name in ("alerts", "forecast"):
                src = Path(r["path"]) / f"champion_{name}.parquet"
                (Path(r["path"]) / f"served_{name}.parquet").write_bytes(src.read_bytes())
        else:
            for name in ("alerts", "forecast"):
                src = Path(r["path"]) / f"{name}.parquet"
                (Path(r["path"]) / f"served_{name}.parquet").write_bytes(src.read_bytes())
    return _merge(refs, "served_", version, root)


KIND = AgentErrorKind()
