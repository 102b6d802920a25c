"""User churn as a prediction kind: one unit of work (training is pooled across workspaces), scores for
every user seen within ``churn_lookback_days``, each with a state, published to ``analytics.churn_predictions``."""
from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Engine

from core.contracts import CHURN_30D
from core.settings import Settings
from pipelines.churn.realised import CHURN_TARGET, realised_churn_outcomes
from pipelines.churn.train import MODEL_NAME, train_and_score
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

    def shards(self, settings: Settings) -> list[int]:
        return [0]

    def run_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> ShardResult:
        ref = train_and_score(settings, engine, run_date)
        return ShardResult(kind=self.name, shard=shard, status=ref["status"], path=ref.get("scores_path"),
                           n_rows=ref.get("n_scored", 0), mlflow_run_id=ref.get("mlflow_run_id"), details=ref)

    def finalize(self, settings: Settings, engine: Engine, run_date: date, shards: list[ShardResult]) -> KindResult:
        (result,) = shards
        ref = result.details
        return KindResult(kind=self.name, status=ref["status"], reason=ref.get("reason"),
                          publish_to="churn_predictions", frame_path=ref.get("scores_path"),
                          model_version=ref.get("model_version"), mlflow_run_id=ref.get("mlflow_run_id"),
                          metrics=ref.get("metrics", {}),
                          counts={"scored_users": ref.get("n_scored", 0), "training_rows": ref.get("n_train", 0)},
                          details=ref)


KIND = ChurnKind()
