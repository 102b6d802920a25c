"""MLflow tracking and the champion/challenger registry, plus the ``analytics.ml_models`` record.

Tracking goes to ``settings.tracking_uri`` (a local SQLite file unless ``MLFLOW_TRACKING_URI`` is set) with
artifacts under ``settings.artifact_dir``, or on the object store when ``storage_uri`` is ``s3://…``
(``<storage_uri>/mlflow/<experiment>``, MLflow's S3 artifact repository on ``s3_endpoint_url``), so any process
can read a run's artifacts. Experiments are looked up by name, never by id; an experiment keeps the artifact
location it was created with.

Registration decides, publishing moves (issue 16). ``promote`` gives every newly registered version the
``challenger`` alias and decides whether it should replace the champion: with a ``backtest`` decision
(``models.promotion.compare_on_windows``: the same rolling-origin windows, 6 of 8 wins, >= 2% better, coverage
within ±5 points) that decision stands; otherwise the nightly-retrain rule applies: no champion yet, or a
validation metric no worse than the champion's by more than ``tolerance`` (relative). The decision, its
figures and reason go to MLflow tags on the version (``pae_decision*``), ``analytics.ml_models``
(``performance_metrics.promotion``; ``is_active`` untouched) and ``analytics.model_decisions``. The
``champion`` alias and ``ml_models.is_active`` move only in ``apply_published``, which the publish step calls
after a kind's publish transaction has committed: a run killed after registration leaves the champion
where it was. Aliases only; the deprecated registry stages are never used.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.settings import Settings

if TYPE_CHECKING:
    from models.promotion import PromotionDecision

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
PROMOTE, KEEP = "promote", "keep"
DECISION_TAG, REASON_TAG, FIGURES_TAG = "pae_decision", "pae_decision_reason", "pae_decision_figures"
REGISTRATION, AB_REALISED = "registration", "ab_realised"  # analytics.model_decisions.source


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
    if settings.mlflow_artifact_root and settings.s3_endpoint_url:  # read by MLflow's S3 artifact repository
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    # MLflow also exports the URI to the environment, where a later Settings() in this process would read
    # it as configuration (another run's store): keep the environment as it was
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    return mlflow


def use_experiment(settings: Settings, name: str) -> str:
    """Get or create the experiment ``name`` (artifacts under ``<storage_uri>/mlflow/name`` when the storage is
    remote, else ``artifact_dir/name``); returns its id."""
    mlflow = configure(settings)
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        if settings.mlflow_artifact_root:
            location = f"{settings.mlflow_artifact_root}/{name}"
        else:
            local = (settings.artifact_dir / name).resolve()
            local.mkdir(parents=True, exist_ok=True)
            location = local.as_uri()
        exp_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


@contextmanager
def keyed_run(settings: Settings, experiment: str, key_tags: dict[str, str], run_name: str) -> Iterator[Any]:
    """The one MLflow run of ``experiment`` tagged ``key_tags`` (e.g. kind and date): reopened when a re-run finds
    it, else started as ``run_name``; ``key_tags`` are set on it. Yields the active run."""
    import mlflow

    exp_id = use_experiment(settings, experiment)
    where = " and ".join(f"tags.`{k}` = '{v}'" for k, v in key_tags.items())
    found = mlflow.search_runs([exp_id], filter_string=where, output_format="list", max_results=1)
    with mlflow.start_run(run_id=found[0].info.run_id if found else None,
                          run_name=None if found else run_name) as run:
        mlflow.set_tags(key_tags)
        yield run


@dataclass
class Promotion:
    """A registration decision: ``promoted`` means "promote when published", never "already champion"."""

    model_name: str
    version: str
    promoted: bool
    metric: str
    value: float
    champion_value: float | None
    reason: str
    champion_version: str | None = None
    policy: str = "tolerance"  # or "backtest_windows" (models.promotion.compare_on_windows)
    figures: dict = field(default_factory=dict)

    @property
    def decision(self) -> str:
        return PROMOTE if self.promoted else KEEP

    def as_dict(self) -> dict:
        return {**json_ready(asdict(self)), "decision": self.decision}


def json_ready(value: Any) -> Any:
    """``value`` with non-finite floats as None (PostgreSQL's jsonb and strict JSON reject NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


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


def champion_version(model_name: str, settings: Settings):
    """The version holding the ``champion`` alias (an MLflow ModelVersion), or None when there is none."""
    configure(settings)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient().get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as exc:  # no champion alias (or no model) yet; anything else is a real registry error
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise
        return None


def tag_decision(settings: Settings, model_name: str, version: str, decision: str, reason: str, figures: dict,
                 prefix: str = "") -> None:
    """Record a decision on the MLflow version: ``<prefix>pae_decision``, ``..._reason``, ``..._figures`` (JSON)."""
    configure(settings)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.set_model_version_tag(model_name, version, prefix + DECISION_TAG, decision)
    client.set_model_version_tag(model_name, version, prefix + REASON_TAG, reason[:4900])
    client.set_model_version_tag(model_name, version, prefix + FIGURES_TAG,
                                 json.dumps(json_ready(figures), default=str, sort_keys=True)[:4900])


def promote(model_name: str, version: str, metric: str, value: float, settings: Settings,
            lower_is_better: bool = True, tolerance: float = 0.02,
            backtest: PromotionDecision | None = None) -> Promotion:
    """Decide on a registered version (policy in the module docstring) and tag it; moves ``challenger`` only."""
    configure(settings)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    champ = champion_version(model_name, settings)
    champ_value = float(champ.tags.get(f"val_{metric}", "nan")) if champ is not None else None
    figures: dict = {"tolerance": tolerance, "lower_is_better": lower_is_better}
    policy = "tolerance"
    if champ is None:
        promoted, reason = True, "no champion yet"
    elif backtest is not None:
        policy, figures = "backtest_windows", backtest.as_dict()
        promoted, reason = backtest.promote, f"vs champion v{champ.version}: {backtest.reason}"
    elif champ_value != champ_value:
        promoted, reason = True, f"champion v{champ.version} has no recorded {metric}"
    else:
        bound = champ_value * (1 + tolerance) if lower_is_better else champ_value * (1 - tolerance)
        promoted = value <= bound if lower_is_better else value >= bound
        reason = (f"{metric} {value:.4f} vs champion v{champ.version} {champ_value:.4f} "
                  f"({'within' if promoted else 'outside'} {tolerance:.0%} tolerance)")
    decision = Promotion(model_name, version, promoted, metric, float(value), champ_value, reason,
                         champion_version=str(champ.version) if champ is not None else None, policy=policy,
                         figures=figures)
    tag_decision(settings, model_name, version, decision.decision, reason,
                 {k: v for k, v in decision.as_dict().items() if k != "reason"})
    log.info("%s v%s: %s when published (%s)", model_name, version, decision.decision, reason)
    return decision


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
    is_active: bool | None,
    workspace_id: str | None = None,
) -> None:
    """Upsert the model's row in ``analytics.ml_models``; an active model deactivates its predecessors.

    ``is_active=None`` (registration) inserts the row inactive and leaves an existing row's flag as it is:
    ``apply_published`` sets it once the version's predictions are published.
    """
    keep_active = is_active is None
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
            " training_data_end = excluded.training_data_end"
            + ("" if keep_active else ", is_active = excluded.is_active")
        ),
        {"name": model_name, "type": model_type, "version": version, "ws": workspace_id, "target": target_metric,
         "params": json.dumps(training_params, default=str),
         "perf": json.dumps(json_ready(performance_metrics), default=str),
         "fi": json.dumps(feature_importance, default=str) if feature_importance is not None else None,
         "path": artifacts_path, "start": training_data_start, "end": training_data_end, "active": bool(is_active)},
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
                     record: ModelRecord, backtest: PromotionDecision | None = None, kind: str | None = None,
                     run_date: date | None = None) -> Promotion:
    """Register a trained model, decide on it and record the decision (tags, ``ml_models``, ``model_decisions``).

    The one path every prediction kind takes from an MLflow run to a model version. The ``champion`` alias does
    not move here: the publish step moves it (``apply_published``) once the version's predictions are served.
    ``run_date`` (default ``record.training_data_end``) keys the decision row, so re-running a date updates it.
    """
    version = register(model_uri, model_name, metric, value, settings, fingerprint=print_hash)
    decision = promote(model_name, version, metric, value, settings, lower_is_better=lower_is_better,
                       tolerance=tolerance, backtest=backtest)
    decided_for = run_date or record.training_data_end
    if decided_for is None:
        raise ValueError(f"{model_name} v{version}: pass run_date (or record.training_data_end) to key the decision")
    with engine.begin() as conn:
        record_ml_model(conn, model_name=model_name, model_type=record.model_type, version=version,
                        target_metric=record.target_metric, training_params=record.training_params,
                        performance_metrics={**record.performance_metrics, "promotion": decision.as_dict()},
                        feature_importance=record.feature_importance, artifacts_path=f"{artifact_uri}/model",
                        training_data_start=record.training_data_start, training_data_end=record.training_data_end,
                        is_active=None)
        record_decision(conn, kind=kind, model_name=model_name, version=version, source=REGISTRATION,
                        run_date=decided_for, decision=decision.decision, reason=decision.reason,
                        figures=decision.as_dict())
    return decision


def record_decision(conn: sa.Connection, *, kind: str | None, model_name: str, version: str, source: str,
                    run_date: date, decision: str, reason: str, figures: dict) -> None:
    """Upsert one row of ``analytics.model_decisions`` (one per version × source × run date).

    A row already applied keeps its ``applied_at``; a known ``kind`` fills a missing one.
    """
    if decision not in (PROMOTE, KEEP):
        raise ValueError(f"decision must be {PROMOTE!r} or {KEEP!r}, got {decision!r}")
    conn.execute(sa.text(
        "insert into analytics.model_decisions (kind, model_name, version, source, run_date, decision, reason,"
        " figures) values (:kind, :name, :version, :source, :run_date, :decision, :reason, cast(:figures as jsonb))"
        " on conflict (model_name, version, source, run_date) do update set"
        " kind = coalesce(excluded.kind, analytics.model_decisions.kind), decision = excluded.decision,"
        " reason = excluded.reason, figures = excluded.figures, decided_at = now()"),
        {"kind": kind, "name": model_name, "version": str(version), "source": source, "run_date": run_date,
         "decision": decision, "reason": reason,
         "figures": json.dumps(json_ready(figures), default=str, sort_keys=True)})


def serving_version(engine, settings: Settings, model_name: str) -> str | None:
    """The version a scoring run should serve as champion: the newest version with a ``promote`` decision not
    applied yet (a retrain's registration, an A/B promotion) when it is newer than the champion, else the
    champion (None when there is neither). Publishing its predictions then moves the alias (``apply_published``)."""
    champ = champion_version(model_name, settings)
    current = int(champ.version) if champ is not None else 0
    with engine.connect() as conn:
        pending = conn.execute(sa.text(
            "select version from analytics.model_decisions where model_name = :n and decision = 'promote'"
            " and applied_at is null"), {"n": model_name}).scalars().all()
    newer = sorted({int(v) for v in pending if v.isdigit() and int(v) > current}, reverse=True)
    if newer:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        for version in newer:  # the registry is the truth: a decision about a version it lacks is skipped
            try:
                client.get_model_version(model_name, str(version))
                return str(version)
            except MlflowException:
                log.warning("%s: a promote decision names v%s, which the registry does not hold; skipped",
                            model_name, version)
    return str(champ.version) if champ is not None else None


def apply_published(engine, settings: Settings, *, model_name: str, version: str,
                    served_versions: Iterable[str] = ()) -> dict:
    """After a kind's publish transaction committed: move ``champion`` to the version its decisions earned.

    A pending A/B promotion (``source = 'ab_realised'``) applies when its version is among the versions just
    served (``served_versions``, e.g. the challenger arm's); otherwise the published ``version`` becomes
    champion if its registration decision (the MLflow tag) is ``promote``. ``ml_models.is_active`` follows the
    champion and the applied decisions get ``applied_at``. Idempotent; returns what it did.
    """
    configure(settings)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    served = {str(v) for v in served_versions} | {str(version)}
    with engine.connect() as conn:
        pending = conn.execute(sa.text(
            "select version from analytics.model_decisions where model_name = :n and source = :src"
            " and decision = 'promote' and applied_at is null order by run_date desc, decided_at desc"),
            {"n": model_name, "src": AB_REALISED}).scalars().all()
    target, source = next(((v, AB_REALISED) for v in pending if v in served), (None, None))
    if target is None and client.get_model_version(model_name, str(version)).tags.get(DECISION_TAG) == PROMOTE:
        target, source = str(version), REGISTRATION
    current = champion_version(model_name, settings)
    before = str(current.version) if current is not None else None
    if target is None:
        return {"model_name": model_name, "champion": before, "moved": False,
                "reason": f"v{version} was published without a promote decision"}
    if before != target:
        client.set_registered_model_alias(model_name, CHAMPION, target)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "update analytics.ml_models set is_active = (version = :v) where model_name = :n"
            " and exists (select 1 from analytics.ml_models where model_name = :n and version = :v)"),
            {"n": model_name, "v": target})
        conn.execute(sa.text(
            "update analytics.model_decisions set applied_at = now() where model_name = :n and version = :v"
            " and decision = 'promote' and applied_at is null"), {"n": model_name, "v": target})
    if before != target:
        log.info("%s: champion v%s -> v%s (%s decision, published)", model_name, before, target, source)
    return {"model_name": model_name, "champion": target, "previous": before, "moved": before != target,
            "source": source}
