"""User churn as a prediction kind: one unit of work (training is pooled across workspaces), scores for
every user seen within ``churn_lookback_days``, each with a state, published to ``analytics.churn_predictions``.

Training is split from scoring (README, "Retraining and scoring"). A nightly run scores with the stored version to
serve (``pipelines.churn.scoring``: the champion, or a newer ``promote`` version a retrain registered; the
challenger for the users of the challenger arm's workspaces): no cross-validation, no fit, no out-of-time
evaluation. With no usable version it trains inline, as a retrain does (``train_shard`` + ``finalize_training``),
scores with the new model and records a ``no-champion`` retrain. A retrain (``pae retrain --kinds churn``, the
retrain DAG) runs ``train_shard`` and ``finalize_training`` only and publishes nothing.

On scoring nights the merge also records a pending ``schedule`` retrain when the served champion was trained on
data ``retrain_every_days`` old or more (``pipelines.retrain_runs.request_if_due``); the monitor step records an
``accuracy`` retrain when the realised Brier alert fires, as for every kind.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy.engine import Engine

from core.arms import CHAMPION_ARM
from core.contracts import CHURN_30D, RunStatus
from core.settings import Settings
from pipelines.churn.realised import CHURN_TARGET, arm_churn_outcomes, realised_churn_outcomes
from pipelines.churn.scoring import score_shard, scoring_plan
from pipelines.churn.train import MODEL_NAME, score_trained, track_and_register, train_model
from pipelines.results import KindResult, ShardResult


class ChurnKind:
    name = "churn"
    feature_sets = ("user_behaviour",)
    # realised accuracy (pipelines/monitor.py): scores of D - window against who went inactive (AUC, Brier)
    prediction_type = CHURN_30D
    model_name = MODEL_NAME
    outcome_alert = {"target_metric": CHURN_TARGET, "promised_metric": "oot_brier", "measure": "brier"}

    def realised_outcomes(self, settings: Settings, engine: Engine, run_date: date):
        return realised_churn_outcomes(settings, engine, run_date)

    def ab_outcomes(self, settings: Settings, engine: Engine, run_date: date):
        """Outcomes of the last ``ab_window_days`` with their arm: the arms are compared on Brier (``pipelines.ab``)."""
        return arm_churn_outcomes(settings, engine, run_date)

    def shards(self, settings: Settings) -> list[int]:
        return list(range(settings.shards))

    def run_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> ShardResult:
        """Score one workspace shard with the stored versions by arm. With none usable, shard 0 trains inline (the
        training set pools every user) and scores every user with the new model; the other shards skip."""
        plan = scoring_plan(settings, engine, run_date)
        if not plan.train_inline:
            ref = score_shard(settings, run_date, plan, shard, settings.shards)
        elif shard != 0:
            reason = f"no stored churn version to score with ({plan.note}): shard 0 trains inline and scores every user"
            return ShardResult(kind=self.name, shard=shard, status=RunStatus.SKIPPED,
                               details={"status": "skipped", "mode": "inline_in_shard_0", "reason": reason})
        else:
            ref = {**self.train_shard(settings, engine, run_date, shard), "mode": "trained", "train_reason": plan.note}
            if ref["status"] == "trained":
                ref.update(score_trained(settings, run_date, ref))  # the version is known after registration
        status = RunStatus.INSUFFICIENT_DATA if ref["status"] == "insufficient_data" else RunStatus.SUCCESS
        return ShardResult(kind=self.name, shard=shard, status=status, path=ref.get("scores_path"),
                           n_rows=ref.get("n_scored", 0), details=ref)

    # retraining (pipelines.retrain): training apart from nightly scoring
    def train_shards(self, settings: Settings) -> list[int]:
        return [0]

    def train_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
        """Train on data through ``run_date`` (the whole pooled training set is one unit)."""
        return train_model(settings, run_date)

    def finalize_training(self, settings: Settings, engine: Engine, run_date: date, refs: list[dict]) -> KindResult:
        """Track the trained model with its scoring artifact in MLflow and register the version with its decision;
        publishes nothing."""
        (ref,) = refs
        decision, run_id = track_and_register(settings, engine, run_date, ref)
        return KindResult(kind=self.name, status=RunStatus.SUCCESS if decision.promoted else RunStatus.SKIPPED,
                          reason=None if decision.promoted else f"challenger not promoted: {decision.reason}",
                          model_version=decision.version, mlflow_run_id=run_id, metrics=ref.get("metrics", {}),
                          counts={"training_rows": ref.get("n_train", 0)},
                          details={"promotion": decision.as_dict(), "champion_kind": ref.get("champion_kind"),
                                   "train_seconds": ref.get("seconds"), "cpu_seconds": ref.get("cpu_seconds")})

    def finalize(self, settings: Settings, engine: Engine, run_date: date, shards: list[ShardResult]) -> KindResult:
        """Shard 0 trained inline (or found too little data): its result covers every user. Otherwise every shard
        scored its workspaces with the stored versions, and their parts are merged."""
        from pipelines.churn.scoring import merge_scored

        refs = [r.details for r in sorted(shards, key=lambda r: r.shard)]
        ref = refs[0]
        if ref.get("mode") == "scored":
            odd = [i for i, r in enumerate(refs) if r.get("mode") != "scored"]
            if odd:
                raise RuntimeError(f"churn shards {odd} of {run_date} did not score with stored versions while shard 0"
                                   f" did ({refs[odd[0]].get('reason')}); run the night again")
            ref = merge_scored(settings, run_date, refs)
        if ref["status"] == "insufficient_data":
            return KindResult(kind=self.name, status=RunStatus.INSUFFICIENT_DATA, reason=ref.get("reason"),
                              counts={"training_rows": ref.get("n_train", 0)}, details=ref)
        if ref.get("mode") == "scored":
            return self._finalize_scored(settings, engine, run_date, ref)
        return self._finalize_trained(settings, engine, run_date, ref)

    def _finalize_scored(self, settings: Settings, engine: Engine, run_date: date, ref: dict) -> KindResult:
        from pipelines.retrain_runs import request_if_due

        versions = ref["versions"]
        through = date.fromisoformat(ref["trained_through"][CHAMPION_ARM])
        details = {**ref, "retrain_check": request_if_due(engine, self.name, run_date, versions[CHAMPION_ARM], through,
                                                          settings.retrain_every_days)}
        return KindResult(kind=self.name, status=RunStatus.SUCCESS, publish_to="churn_predictions",
                          frame_path=ref["scores_path"], model_version=versions[CHAMPION_ARM],
                          counts={"scored_users": ref["n_scored"], "training_rows": 0}, details=details)

    def _finalize_trained(self, settings: Settings, engine: Engine, run_date: date, ref: dict) -> KindResult:
        from pipelines.retrain_runs import record_inline_training

        result = record_inline_training(engine, self.name, run_date,
                                        self.finalize_training(settings, engine, run_date, [ref]), [ref])
        details = {**ref, **result.details,
                   "versions": {CHAMPION_ARM: result.model_version}, "mlflow_run_id": result.mlflow_run_id,
                   "model_version": result.model_version}
        frame_path = None
        if result.status == RunStatus.SUCCESS:  # promoted: its scores are published, which moves the alias
            scores = pd.read_parquet(ref["scores_path"]).assign(model_version=result.model_version)
            scores.to_parquet(ref["scores_path"])
            frame_path = ref["scores_path"]
            by_arm = scores.drop_duplicates("workspace_id")["arm"].value_counts()
            details["workspaces_by_arm"] = {k: int(v) for k, v in by_arm.items()}
        return KindResult(kind=self.name, status=result.status, reason=result.reason, publish_to="churn_predictions",
                          frame_path=frame_path, model_version=result.model_version,
                          mlflow_run_id=result.mlflow_run_id, metrics=result.metrics,
                          counts={"scored_users": ref.get("n_scored", 0), "training_rows": ref.get("n_train", 0)},
                          details=details)


KIND = ChurnKind()
