"""MLflow for the agent error-rate kind: one run per training (params, metrics, the candidates' out-of-time
table, feature importance, path parameters, the model bundle as JSON and as a pyfunc), and a version's bundle
for the nights that score with it instead of retraining.

The scoring artifact is the run's ``bundle/`` folder: ``bundle.json`` (per shard the escalation model's JSON
and the forecast path parameters, the settings it was made with, ``trained_through``). No pickles."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import REPO_ROOT, Settings
from pipelines.agent_errors.data import EXPERIMENT, MODEL_NAME
from pipelines.registry import use_experiment

BUNDLE = "bundle.json"
BUNDLE_DIR = "bundle"  # the run's artifact folder holding BUNDLE: the scoring artifact


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
        mlflow.log_artifact(str(bundle_path), BUNDLE_DIR)
        info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name("pyfunc.py")),
                                       artifacts={"bundle": str(bundle_path)}, code_paths=[str(REPO_ROOT / "models")])
        run_id, artifact_uri = run.info.run_id, run.info.artifact_uri
    return run_id, info.model_uri, artifact_uri


@dataclass
class Champion:
    """A stored version's bundle (the champion, the challenger or any version to score with)."""

    version: str
    trained_through: date
    bundle: dict


def load_version(settings: Settings, version: str) -> Champion:
    """Version ``version``'s bundle (its run's ``bundle/`` folder, ``pipelines.serving.version_artifact_dir``)."""
    from pipelines.serving import version_artifact_dir

    folder = version_artifact_dir(settings, MODEL_NAME, str(version), BUNDLE_DIR)
    bundle = json.loads((folder / BUNDLE).read_text())
    return Champion(version=str(version), trained_through=date.fromisoformat(bundle["trained_through"]), bundle=bundle)
