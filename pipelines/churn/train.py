"""Churn training: point-in-time training sets, out-of-time evaluation, MLflow tracking and registration.

Training is split from nightly scoring (README, "Retraining and scoring"): ``train_model`` builds the training set
and fits the model (cross-validated selection over the classifier kinds, calibration, explainer, time-to-churn)
and saves its bundle as the version's scoring artifact; ``track_and_register`` logs the run to MLflow with that
artifact and registers the version with its decision. It runs in a retrain (``pae retrain --kinds churn``, the
retrain DAG) or, when there is no usable champion, in the nightly run itself; other nights score with the stored
version (``pipelines.churn.scoring``).

Population: every user seen within ``settings.churn_lookback_days`` (365) of ``T`` is scored and, in
training snapshots, labelled; each gets a state (``active`` / ``lapsing`` / ``dormant``, from their silence
relative to their usual gap, :mod:`models.churn.rhythm`). Label: a user churns when they have no activity
in ``(T, T + window]`` (``settings.churn_window_days``, default 30). Snapshots are weekly as-of dates; their
features come from the offline store (``user_behaviour`` as of ``T``, built from events up to ``T`` only).
Users with no complete future window yet are never labelled. Out-of-time metrics are reported for the
whole population, for each state (``oot_<metric>_<state>``) and for the users active within
``settings.churn_active_within_days`` of ``T`` (``oot_<metric>_recent``: the population scored before).

Evaluation is strictly out of time: the test snapshot is ``D - window`` (the latest with a complete
label window), and training snapshots end ``window`` days before it, so no training label window
overlaps the test's. The model evaluated is the model that is stored and served: the numbers reported are
the numbers of what scores the following nights. Training is pooled across workspaces (with workspace-level
features), so small workspaces get scores too; the minimum-examples rule applies to the pooled training set.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from core.settings import REPO_ROOT, Settings
from pipelines.features.builders import DailyAggregates, build_user_features
from pipelines.features.sets import USER_BEHAVIOUR
from pipelines.features.store import load_daily_aggregates, read_offline, write_offline

log = logging.getLogger(__name__)

MODEL_NAME = "pae-user-churn"
EXPERIMENT = "user-churn"
_REPORTED = ("auc", "pr_auc", "brier", "ece", "base_rate", "n")  # per state and for the recent population


def snapshot_features(settings: Settings, agg: DailyAggregates, as_of: date) -> pd.DataFrame:
    """``user_behaviour`` as of a date (users seen within ``churn_lookback_days``), from the offline store.

    Computed and stored when missing.
    """
    frame = read_offline(settings.offline_store_dir, USER_BEHAVIOUR, as_of)
    if frame is None:
        frame = build_user_features(agg, as_of)
        write_offline(settings.offline_store_dir, USER_BEHAVIOUR, as_of, frame)
    return frame[frame["recency_days"] < settings.churn_lookback_days].reset_index(drop=True)


def user_states(frame: pd.DataFrame) -> np.ndarray:
    """``active`` / ``lapsing`` / ``dormant`` per row of a ``user_behaviour`` frame."""
    from models.churn import churn_state

    return churn_state(frame["recency_days"], frame["usual_gap_days"])


def segment_metrics(settings: Settings, frame: pd.DataFrame, y, p) -> dict[str, float]:
    """Out-of-time metrics per state (``oot_auc_active``, ...) and for the recently active (``..._recent``)."""
    from models.churn import STATES, evaluate, evaluate_by_group

    y, p = np.asarray(y), np.asarray(p)
    by_state = evaluate_by_group(y, p, user_states(frame))
    recent = (frame["recency_days"] < settings.churn_active_within_days).to_numpy()
    groups = {s: by_state[s] for s in STATES if s in by_state}
    if recent.any():
        groups["recent"] = evaluate(y[recent], p[recent])
    return {f"oot_{k}_{g}": v[k] for g, v in groups.items() for k in _REPORTED}


def active_days(agg: DailyAggregates) -> pd.DataFrame:
    return agg.user_feature[["workspace_id", "user_id", "day"]].drop_duplicates()


def churn_labels(snapshot: pd.DataFrame, active: pd.DataFrame, as_of: date, window: int) -> pd.Series:
    """1 when the user has no active day in ``(as_of, as_of + window]``, else 0."""
    lo, hi = pd.Timestamp(as_of), pd.Timestamp(as_of + timedelta(days=window))
    later = active[(active["day"] > lo) & (active["day"] <= hi)][["workspace_id", "user_id"]].drop_duplicates()
    later["_active"] = 1
    merged = snapshot[["workspace_id", "user_id"]].merge(later, on=["workspace_id", "user_id"], how="left")
    return pd.Series(np.where(merged["_active"].isna(), 1, 0), index=snapshot.index, name="churned")


def snapshot_dates(run_date: date, window: int, n_train: int, step_days: int = 7) -> tuple[date, list[date]]:
    """(test date, training dates oldest first): test = D - window, training ends ``window`` days earlier."""
    test = run_date - timedelta(days=window)
    last_train = test - timedelta(days=window)
    return test, [last_train - timedelta(days=step_days * i) for i in reversed(range(n_train))]


def training_frame(settings: Settings, agg: DailyAggregates, dates: list[date], observed_until: date) -> pd.DataFrame:
    """Labelled snapshot rows (keys, as_of, features, churned, days_to_inactivity) for ``dates``."""
    from models.churn import inactivity_targets

    window = settings.churn_window_days
    active = active_days(agg)
    frames = []
    for t in dates:
        if t + timedelta(days=window) > observed_until:
            raise ValueError(f"snapshot {t} has no complete {window}-day label window before {observed_until}")
        snap = snapshot_features(settings, agg, t)
        frames.append(snap.assign(as_of=pd.Timestamp(t), churned=churn_labels(snap, active, t, window)))
    frame = pd.concat(frames, ignore_index=True)
    frame["days_to_inactivity"] = inactivity_targets(active, frame, observed_until, window)
    return frame


def _log_mlflow(settings: Settings, model, metrics: dict, params: dict, y_test, p_test, scoring: Path,
                importance: dict) -> tuple[str, str, str]:
    """One MLflow run: params, metrics, plots, feature importance, the scoring artifact folder (``scoring/``) and
    the pyfunc model over the same bundle; returns (run id, model uri, artifact uri)."""
    from models.churn import calibration_plot, roc_plot
    from pipelines.churn.scoring import ARTIFACT_DIR
    from pipelines.registry import use_experiment

    use_experiment(settings, EXPERIMENT)
    import mlflow

    with mlflow.start_run(run_name=f"churn {params['run_date']}") as run:
        mlflow.set_tags({"pae.run_date": params["run_date"], "pae.champion_kind": model.kind})
        mlflow.log_params(params)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and np.isfinite(v)})
        for name, fig in (("calibration.png", calibration_plot(y_test, p_test)), ("roc.png", roc_plot(y_test, p_test))):
            mlflow.log_figure(fig, f"plots/{name}")
        mlflow.log_dict(importance, "feature_importance.json")
        mlflow.log_dict(model.metadata, "training_metadata.json")
        mlflow.log_artifacts(str(scoring), ARTIFACT_DIR)  # what nightly scoring loads (pipelines.churn.scoring)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(Path(__file__).with_name("pyfunc.py")),
            artifacts={"bundle": str(scoring)}, code_paths=[str(REPO_ROOT / "models")],
        )
        return run.info.run_id, info.model_uri, run.info.artifact_uri


def _feature_importance(model, X: pd.DataFrame) -> dict:
    """Mean |SHAP| per feature on the test snapshot, from the explainer model."""
    contrib = model.explainer.contributions(X[model.feature_columns])
    mean_abs = np.abs(contrib[:, : len(model.feature_columns)]).mean(axis=0)
    order = np.argsort(-mean_abs)
    return {model.feature_columns[i]: round(float(mean_abs[i]), 6) for i in order}


def training_dir(settings: Settings, run_date: date) -> Path:
    """Where a training of ``run_date`` keeps its outputs until they are tracked in MLflow."""
    return settings.data_dir / "churn" / f"as_of={run_date.isoformat()}" / "training"


def train_model(settings: Settings, run_date: date, n_train_snapshots: int | None = None,
                kinds: tuple[str, ...] | None = None) -> dict:
    """Build the training set, select and fit the model (CV over the candidate kinds), evaluate it out of time.

    Writes to ``training_dir``: ``scoring/`` (the model's bundle and ``config.json``, the version's scoring
    artifact), ``test.parquet`` (the test snapshot's features, labels and probabilities) and ``importance.json``.
    Returns a JSON-ready reference: ``status`` (``trained`` | ``insufficient_data``), ``n_rows`` (training rows,
    0 when nothing was trained), ``n_workspaces``, ``seconds``, metrics, params and ``path``.
    """
    from models.churn import CLASSIFIER_KINDS, ChurnModel, InsufficientDataError, TrainingSet, evaluate
    from pipelines.churn.scoring import ARTIFACT_DIR, save_artifact

    t0, c0 = time.perf_counter(), time.process_time()
    window = settings.churn_window_days
    n_train_snapshots = n_train_snapshots or settings.churn_training_snapshots
    test_date, train_dates = snapshot_dates(run_date, window, n_train_snapshots)
    agg = load_daily_aggregates(settings.offline_store_dir, run_date)
    first_day = agg.user_feature["day"].min()
    train_dates = [d for d in train_dates
                   if pd.Timestamp(d) - first_day >= pd.Timedelta(days=settings.churn_min_history_days)]
    ref: dict = {"run_date": run_date.isoformat(), "test_date": test_date.isoformat(),
                 "train_dates": [d.isoformat() for d in train_dates], "n_rows": 0, "n_workspaces": 0}
    if len(train_dates) < 2:
        ref.update(status="insufficient_data", reason=f"history too short for 2 training snapshots before {test_date}",
                   counts={"train_snapshots": len(train_dates)})
        return ref

    frame = training_frame(settings, agg, [*train_dates, test_date], run_date)
    is_test = frame["as_of"] == pd.Timestamp(test_date)
    features = [c for c in USER_BEHAVIOUR.columns if c in frame]
    train = TrainingSet.from_frame(frame[~is_test].reset_index(drop=True), features=features,
                                   days_to_inactivity="days_to_inactivity")
    test = frame[is_test].reset_index(drop=True)
    ref["n_train"], ref["n_test"] = int((~is_test).sum()), int(is_test.sum())
    kinds = tuple(kinds or CLASSIFIER_KINDS)
    try:
        model = ChurnModel.fit(train, kinds=kinds, n_folds=3, min_per_class=settings.churn_min_examples,
                               random_state=0, feature_set=USER_BEHAVIOUR.key)
    except InsufficientDataError as exc:
        ref.update(status="insufficient_data", reason=str(exc), counts=exc.counts)
        return ref

    p_test = model.predict_proba(test[model.feature_columns])
    metrics = {f"oot_{k}": v for k, v in evaluate(test["churned"], p_test).items()}
    metrics.update(segment_metrics(settings, test, test["churned"], p_test))
    metrics.update({f"cv_auc_{k}": v for k, v in model.metadata["mean_auc"].items() if v is not None})
    params = {"run_date": run_date.isoformat(), "window_days": window, "test_date": test_date.isoformat(),
              "train_dates": ",".join(ref["train_dates"]), "n_train": ref["n_train"], "n_test": ref["n_test"],
              "champion_kind": model.kind, "kinds": ",".join(kinds), "feature_set": USER_BEHAVIOUR.key,
              "min_per_class": settings.churn_min_examples, "lookback_days": settings.churn_lookback_days}
    out = training_dir(settings, run_date)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    save_artifact(out / ARTIFACT_DIR, model, trained_through=run_date)
    test[model.feature_columns].assign(churned=test["churned"].to_numpy(), p=p_test).to_parquet(out / "test.parquet")
    (out / "importance.json").write_text(json.dumps(_feature_importance(model, test)))
    ref.update(status="trained", path=str(out), metrics=metrics, params=params, champion_kind=model.kind,
               n_rows=ref["n_train"], n_workspaces=int(frame["workspace_id"].nunique()),
               seconds=round(time.perf_counter() - t0, 1), cpu_seconds=round(time.process_time() - c0, 1),
               training_data_start=train_dates[0].isoformat(), training_data_end=test_date.isoformat())
    ref["train_seconds"] = ref["seconds"]
    return ref


def track_and_register(settings: Settings, engine: Engine, run_date: date, ref: dict):
    """Track a trained model (``train_model``'s reference) in MLflow with its scoring artifact, register the version
    with its decision (``registry.register_version``: ``promote`` or ``keep`` against the champion's out-of-time
    AUC within ``churn_promotion_tolerance``) and tag the last day of data it saw. Returns (decision, run id)."""
    from models.churn import ChurnModel
    from pipelines.churn.scoring import ARTIFACT_DIR
    from pipelines.registry import ModelRecord, fingerprint, register_version
    from pipelines.serving import tag_trained_through

    out = Path(ref["path"])
    model = ChurnModel.load(out / ARTIFACT_DIR)
    test = pd.read_parquet(out / "test.parquet")
    importance = json.loads((out / "importance.json").read_text())
    metrics, params = ref["metrics"], ref["params"]
    run_id, model_uri, artifact_uri = _log_mlflow(settings, model, metrics, params, test["churned"].to_numpy(),
                                                  test["p"].to_numpy(), out / ARTIFACT_DIR, importance)
    record = ModelRecord(model_type=f"churn_{model.kind}", target_metric="churn_30d", training_params=params,
                         performance_metrics=metrics, feature_importance=importance,
                         training_data_start=date.fromisoformat(ref["training_data_start"]),
                         training_data_end=date.fromisoformat(ref["training_data_end"]))
    print_hash = fingerprint(run_date, params, test[model.feature_columns], pd.DataFrame({"p": test["p"]}))
    decision = register_version(engine, settings, model_name=MODEL_NAME, model_uri=model_uri,
                                artifact_uri=artifact_uri, metric="oot_auc", value=metrics["oot_auc"],
                                lower_is_better=False, tolerance=settings.churn_promotion_tolerance,
                                print_hash=print_hash, record=record, kind="churn", run_date=run_date)
    tag_trained_through(settings, MODEL_NAME, decision.version, run_date)
    return decision, run_id


def score_trained(settings: Settings, run_date: date, ref: dict, version: str | None = None) -> dict:
    """Score the population of ``run_date`` with the model just trained (``train_model``'s folder, champion arm);
    writes ``scores.parquet`` and returns ``{scores_path, n_scored, states, score_seconds}``."""
    from core.arms import CHAMPION_ARM
    from models.churn import ChurnModel
    from pipelines.churn.scoring import ARTIFACT_DIR, population, score_users, write_scores

    t1 = time.perf_counter()
    model = ChurnModel.load(Path(ref["path"]) / ARTIFACT_DIR)
    scores = score_users(population(settings, run_date), model, version, CHAMPION_ARM)
    scores = scores.sort_values(["workspace_id", "user_id"]).reset_index(drop=True)
    out = write_scores(settings, run_date, scores)
    return {"scores_path": str(out), "n_scored": len(scores),
            "states": {k: int(v) for k, v in scores["state"].value_counts().sort_index().items()},
            "score_seconds": round(time.perf_counter() - t1, 1)}


def train_and_score(settings: Settings, engine: Engine, run_date: date, n_train_snapshots: int | None = None,
                    kinds: tuple[str, ...] | None = None) -> dict:
    """Train (``train_model``), track and register (``track_and_register``) and, when the version is promoted,
    score ``run_date`` with it, in one call (benchmarks, tests; the nightly run and retrains go through
    ``pipelines.churn.kind``).

    Returns a reference dict: ``status`` (``success`` | ``insufficient_data`` | ``skipped``), counts,
    metrics, the MLflow run id and model version, and ``scores_path`` (Parquet) when scores were made.
    """
    t0 = time.perf_counter()
    ref = train_model(settings, run_date, n_train_snapshots, kinds)
    if ref["status"] != "trained":
        return ref
    decision, run_id = track_and_register(settings, engine, run_date, ref)
    ref.update(mlflow_run_id=run_id, model_version=decision.version, promotion=decision.as_dict())
    if not decision.promoted:
        ref.update(status="skipped", reason=f"challenger not promoted: {decision.reason}")
        return ref
    ref.update(score_trained(settings, run_date, ref, decision.version), status="success",
               total_seconds=round(time.perf_counter() - t0, 1))
    return ref
