"""MLflow for the agent error-rate kind: one run per training (params, metrics, the candidates' out-of-time
table, feature importance, path parameters, the model bundle as JSON and as a pyfunc), and the champion's
bundle for the nights that score with it instead of retraining."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import REPO_ROOT, Settings
from pipelines.agent_errors.data import EXPERIMENT, MODEL_NAME
from pipelines.registry import CHAMPION, configure, use_experiment

BUNDLE = "bundle.json"
TRAINED_THROUGH_TAG = "pae_trained_through"


def log_run(settings: Settings, as_of: date, root: Path, bundle: dict, params: dict, metrics: dict,
            candidates: pd.DataFrame, importance: dict, summary: dict) -> tuple[str, str, str]:
    """One MLflow run for the merged shards; returns (run id, model URI, artifact URI)."""
    use_experiment(settings, EXPERIMENT)
    import mlflow

    root.mkdir(parents=True, exist_ok=True)
    bundle_path = root / BUNDLE
    bundle_path.write_text(json.dumps(bundle, default=float))
    with mlflow.start_run(run_name=f"agent error rates {as_of}") as run:
        mlflow.set_tags({"pae.run_date": as_of.isoformat()})
        mlflow.log_params({k: (v if not isinstance(v, (dict, list)) else json.dumps(v)) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and np.isfinite(v)})
        if len(candidates):
            candidates.to_csv(root / "candidates_oot.csv", index=False)
            mlflow.log_artifact(str(root / "candidates_oot.csv"), "metrics")
        mlflow.log_dict(importance, "feature_importance.json")
        mlflow.log_dict(summary, "alerts_summary.json")
        mlflow.log_artifact(str(bundle_path), "bundle")
        info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("pyfunc.py")),
                                       artifacts={"bundle": str(bundle_path)}, code_paths=[str(REPO_ROOT / "models")])
        run_id, artifact_uri = run.info.run_id, run.info.artifact_uri
    return run_id, info.model_uri, artifact_uri


def tag_trained_through(settings: Settings, version: str, as_of: date) -> None:
    configure(settings)
    from mlflow.tracking import MlflowClient

    MlflowClient().set_model_version_tag(MODEL_NAME, version, TRAINED_THROUGH_TAG, as_of.isoformat())


@dataclass
class Champion:
    version: str
    trained_through: date
    bundle: dict


def load_champion(settings: Settings) -> Champion | None:
    """The ``champion`` version's bundle, or None when there is none yet (or it predates the tag)."""
    configure(settings)
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    through = mv.tags.get(TRAINED_THROUGH_TAG)
    if not through or not mv.run_id:
        return None
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{mv.run_id}/bundle/{BUNDLE}")
    return Champion(version=str(mv.version), trained_through=date.fromisoformat(through),
                    bundle=json.loads(Path(local).read_text()))
