"""MLflow tracking and the champion/challenger registry, plus the ``analytics.ml_models`` record.

Tracking goes to ``settings.tracking_uri`` (a local SQLite file unless ``MLFLOW_TRACKING_URI`` is set) with
artifacts under ``settings.artifact_dir``. Experiments are looked up by name, never by id.

Promotion policy (``promote``): every newly registered version gets the ``challenger`` alias. It also
becomes ``champion`` when there is no champion yet, or when its validation metric is no worse than the
champion's recorded metric by more than ``tolerance`` (relative). The decision and both values are
returned, logged to the run and stored in ``analytics.ml_models.performance_metrics``. Aliases only; the
deprecated registry stages are never used.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from core.settings import Settings

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"


def configure(settings: Settings):
    """Point MLflow at the configured store; returns the ``mlflow`` module (imported lazily: it is heavy)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)  # "signature cannot be inferred" on every log

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(settings.tracking_uri)
    # MLflow also exports the URI to the environment, where a later Settings() in this process would read
    # it as configuration (another run's store): keep the environment as it was
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    return mlflow


def use_experiment(settings: Settings, name: str) -> str:
    """Get or create the experiment ``name`` (artifacts under ``artifact_dir/name``); returns its id."""
    mlflow = configure(settings)
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        location = (settings.artifact_dir / name).resolve()
        location.mkdir(parents=True, exist_ok=True)
        exp_id = mlflow.create_experiment(name, artifact_location=location.as_uri())
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


@dataclass
class Promotion:
    model_name: str
    version: str
    promoted: bool
    metric: str
    value: float
    champion_value: float | None
    reason: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def register(model_uri: str, model_name: str, metric: str, value: float, settings: Settings,
             fingerprint: str | None = None) -> str:
    """Register ``model_uri`` as a new version, tagged with its validation metric; returns the version.

    With a ``fingerprint`` (a hash of what the model produced), a version with the same fingerprint is
    reused instead: re-running a date on the same data keeps the same model version, so published rows
    stay identical.
    """
    mlflow = configure(settings)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if fingerprint:
        same = _versions_with_fingerprint(client, model_name, fingerprint)
        if same:
            return str(min(int(v.version) for v in same))
    mv = mlflow.register_model(model_uri, model_name)
    client.set_model_version_tag(model_name, mv.version, f"val_{metric}", repr(float(value)))
    if fingerprint:
        client.set_model_version_tag(model_name, mv.version, "pae_fingerprint", fingerprint)
    return str(mv.version)


def _versions_with_fingerprint(client, model_name: str, fingerprint: str) -> list:
    """Versions of ``model_name`` tagged with ``fingerprint``; none when the model is not registered yet.
    Any other registry error (connection, permissions) propagates."""
    from mlflow.exceptions import MlflowException

    try:
        return client.search_model_versions(f"name = '{model_name}' and tag.pae_fingerprint = '{fingerprint}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise


def fingerprint(*parts) -> str:
    """A short stable hash of frames/values, for ``register``."""
    import hashlib

    import pandas as pd

    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.DataFrame):
            h.update(pd.util.hash_pandas_object(part, index=False).values.tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()[:32]


def promote(model_name: str, version: str, metric: str, value: float, settings: Settings,
            lower_is_better: bool = True, tolerance: float = 0.02) -> Promotion:
    """Apply the promotion policy in the module docstring to a registered version."""
    configure(settings)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    try:
        champ = client.get_model_version_by_alias(model_name, CHAMPION)
        champ_value = float(champ.tags.get(f"val_{metric}", "nan"))
    except MlflowException as exc:  # no champion alias yet; anything else is a real registry error
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        champ, champ_value = None, None
    if champ is None or champ_value is None or champ_value != champ_value:
        promoted, reason = True, "no champion yet"
    else:
        bound = champ_value * (1 + tolerance) if lower_is_better else champ_value * (1 - tolerance)
        promoted = value <= bound if lower_is_better else value >= bound
        reason = (f"{metric} {value:.4f} vs champion v{champ.version} {champ_value:.4f} "
                  f"({'within' if promoted else 'outside'} {tolerance:.0%} tolerance)")
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    log.info("%s v%s: %s (%s)", model_name, version, "champion" if promoted else "challenger", reason)
    return Promotion(model_name, version, promoted, metric, float(value), champ_value, reason)


def record_ml_model(
    conn: sa.Connection,
    *,
    model_name: str,
    model_type: str,
    version: str,
    target_metric: str,
    training_params: dict,
    performance_metrics: dict,
    feature_importance: dict | None,
    artifacts_path: str,
    training_data_start: date | None,
    training_data_end: date | None,
    is_active: bool,
    workspace_id: str | None = None,
) -> None:
    """Upsert the model's row in ``analytics.ml_models``; an active model deactivates its predecessors."""
    if is_active:
        conn.execute(sa.text("update analytics.ml_models set is_active = false where model_name = :n and version <> :v"),
                     {"n": model_name, "v": version})
    conn.execute(
        sa.text(
            "insert into analytics.ml_models (model_name, model_type, version, workspace_id, target_metric,"
            " training_params, performance_metrics, feature_importance, model_artifacts_path,"
            " training_data_start, training_data_end, is_active)"
            " values (:name, :type, :version, :ws, :target, cast(:params as jsonb), cast(:perf as jsonb),"
            " cast(:fi as jsonb), :path, :start, :end, :active)"
            " on conflict (model_name, version) do update set model_type = excluded.model_type,"
            " target_metric = excluded.target_metric, training_params = excluded.training_params,"
            " performance_metrics = excluded.performance_metrics, feature_importance = excluded.feature_importance,"
            " model_artifacts_path = excluded.model_artifacts_path, training_data_start = excluded.training_data_start,"
            " training_data_end = excluded.training_data_end, is_active = excluded.is_active"
        ),
        {"name": model_name, "type": model_type, "version": version, "ws": workspace_id, "target": target_metric,
         "params": json.dumps(training_params, default=str), "perf": json.dumps(performance_metrics, default=str),
         "fi": json.dumps(feature_importance, default=str) if feature_importance is not None else None,
         "path": artifacts_path, "start": training_data_start, "end": training_data_end, "active": is_active},
    )


@dataclass
class ModelRecord:
    """What ``register_version`` records in ``analytics.ml_models`` beside the registry's own data."""

    model_type: str
    target_metric: str
    training_params: dict
    performance_metrics: dict
    feature_importance: dict | None
    training_data_start: date | None
    training_data_end: date | None


def register_version(engine, settings: Settings, *, model_name: str, model_uri: str, artifact_uri: str,
                     metric: str, value: float, lower_is_better: bool, tolerance: float, print_hash: str,
                     record: ModelRecord) -> Promotion:
    """Register a trained model, apply the promotion policy and record it in ``analytics.ml_models``.

    The one path every prediction kind takes from an MLflow run to a served model version.
    """
    version = register(model_uri, model_name, metric, value, settings, fingerprint=print_hash)
    decision = promote(model_name, version, metric, value, settings, lower_is_better=lower_is_better,
                       tolerance=tolerance)
    with engine.begin() as conn:
        record_ml_model(conn, model_name=model_name, model_type=record.model_type, version=version,
                        target_metric=record.target_metric, training_params=record.training_params,
                        performance_metrics={**record.performance_metrics, "promotion": decision.as_dict()},
                        feature_importance=record.feature_importance, artifacts_path=f"{artifact_uri}/model",
                        training_data_start=record.training_data_start, training_data_end=record.training_data_end,
                        is_active=decision.promoted)
    return decision
