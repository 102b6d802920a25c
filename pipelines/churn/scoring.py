"""Nightly churn scoring with stored model versions: no cross-validation, no fit, no out-of-time evaluation.

A churn model version's **scoring artifact** is the MLflow artifact folder ``scoring/`` of its training run: the
model's own bundle (``models.churn.ChurnModel.save``: ``manifest.json``, XGBoost boosters as JSON, scikit-learn
pipelines as skops files; no pickle) plus ``config.json`` (``format``, ``trained_through``, the champion kind and
the feature set). ``load_version`` downloads and reads it (``pipelines.serving.version_artifact_dir``).

``score_shard`` scores every user seen within ``churn_lookback_days`` of the run date (``user_behaviour`` from the
offline store) with the versions of the serving plan (``pipelines.serving.serving_plan``): users whose WORKSPACE
is in the challenger arm (``ServingPlan.arms``) are scored with the challenger version, the rest with the champion.
Every row carries its ``model_version`` and ``arm``; drivers are put in words (``pipelines.churn.wording``) and
the frame is written to ``scores.parquet``, the frame the publisher reads.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from core.arms import CHAMPION_ARM
from core.settings import Settings
from pipelines.features.sets import USER_BEHAVIOUR
from pipelines.serving import ServingPlan, serving_plan

log = logging.getLogger(__name__)

MODEL_NAME = "pae-user-churn"  # pipelines.churn.train.MODEL_NAME (no import: train imports this module)
ARTIFACT_DIR = "scoring"
FORMAT = 1


@dataclass
class StoredChurnModel:
    """A registered churn version's model, read from its scoring artifact."""

    version: str
    model: object  # models.churn.ChurnModel
    config: dict

    @property
    def trained_through(self) -> date:
        return date.fromisoformat(self.config["trained_through"])


def save_artifact(folder: Path, model, trained_through: date) -> Path:
    """Write ``model``'s bundle and ``config.json`` to ``folder`` (the run's ``scoring/`` folder); returns it."""
    folder = Path(folder)
    model.save(folder)
    config = {"format": FORMAT, "trained_through": trained_through.isoformat(), "champion_kind": model.kind,
              "feature_set": model.metadata.get("feature_set"), "n_features": len(model.feature_columns)}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def read_artifact(version: str, folder: Path) -> StoredChurnModel:
    """Read an artifact folder; ValueError says what is wrong."""
    from models.churn import ChurnModel

    path = Path(folder) / "config.json"
    if not path.exists():
        raise ValueError(f"no {ARTIFACT_DIR}/config.json in the artifact of churn version {version}")
    config = json.loads(path.read_text())
    if config.get("format") != FORMAT or "trained_through" not in config:
        raise ValueError(f"churn version {version}: artifact format {config.get('format')!r} "
                         f"(expected {FORMAT} with trained_through)")
    return StoredChurnModel(version=str(version), model=ChurnModel.load(folder), config=config)


def load_version(settings: Settings, version: str) -> StoredChurnModel:
    """Download (local store: copy) and read the scoring artifact of a registered churn version."""
    from pipelines.serving import version_artifact_dir

    return read_artifact(str(version), version_artifact_dir(settings, MODEL_NAME, version, ARTIFACT_DIR))


def scoring_plan(settings: Settings, engine: Engine, run_date: date) -> ServingPlan[StoredChurnModel]:
    """The stored versions to score ``run_date`` with, by arm (empty: train inline; ``note`` says why)."""
    return serving_plan(settings, engine, MODEL_NAME, run_date, lambda v: load_version(settings, v),
                        lambda m: m.trained_through)


def population(settings: Settings, run_date: date) -> pd.DataFrame:
    """``user_behaviour`` as of ``run_date`` for the users seen within ``churn_lookback_days``."""
    from pipelines.features.store import read_offline

    frame = read_offline(settings.offline_store_dir, USER_BEHAVIOUR, run_date)
    if frame is None:  # not built by the features step (e.g. a manual run): build and store it
        from pipelines.churn.train import snapshot_features
        from pipelines.features.store import load_daily_aggregates

        return snapshot_features(settings, load_daily_aggregates(settings.offline_store_dir, run_date), run_date)
    return frame[frame["recency_days"] < settings.churn_lookback_days].reset_index(drop=True)


def score_users(users: pd.DataFrame, model, version: str | None, arm: str) -> pd.DataFrame:
    """Scores of ``users`` (a ``user_behaviour`` frame) by ``model``: keys, probability, risk score, risk factors
    and recommended actions (JSON text), ``days_until_churn``, ``state``, ``model_version`` and ``arm``."""
    from pipelines.churn.wording import with_words

    X = users[model.feature_columns]
    scored = with_words(model.predict(X), X)  # drivers (data) -> risk_factors and recommended_actions
    scores = pd.concat([users[["workspace_id", "user_id"]].reset_index(drop=True), scored.reset_index(drop=True)],
                       axis=1)
    for col in ("risk_factors", "recommended_actions"):  # JSON text: Parquet would turn lists into arrays
        scores[col] = [json.dumps(v, sort_keys=True, default=float) for v in scores[col]]
    return scores.assign(model_version=version, arm=arm)


def scores_path(settings: Settings, run_date: date, shard: int | None = None) -> Path:
    """The scores of ``run_date`` (``shard``: one workspace shard's part, merged by ``merge_scored``)."""
    name = "scores.parquet" if shard is None else f"scores-{shard}.parquet"
    return settings.data_dir / "churn" / f"as_of={run_date.isoformat()}" / name


def write_scores(settings: Settings, run_date: date, scores: pd.DataFrame, shard: int | None = None) -> Path:
    out = scores_path(settings, run_date, shard)
    out.parent.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(out)
    return out


def score_shard(settings: Settings, run_date: date, plan: ServingPlan[StoredChurnModel], shard: int = 0,
                n_shards: int = 1) -> dict:
    """Score the population of ``run_date`` (of workspace shard ``shard`` of ``n_shards``) with the plan's stored
    versions by arm; writes the scores (one shard's part with ``n_shards > 1``) and returns a reference
    (``mode = 'scored'``, ``versions``, ``workspaces_by_arm``, ``users_by_arm``, counts)."""
    from core.shards import in_shard

    t0 = time.perf_counter()
    users = population(settings, run_date)
    if n_shards > 1:
        users = users[in_shard(users["workspace_id"], shard, n_shards)].reset_index(drop=True)
    arms = plan.arms(users["workspace_id"], settings)
    frames = []
    for arm, stored in plan.models.items():
        mine = users[(arms == arm).to_numpy()]
        if len(mine):
            frames.append(score_users(mine, stored.model, stored.version, arm))
    scores = (pd.concat(frames, ignore_index=True) if frames else
              score_users(users, plan.models[CHAMPION_ARM].model, plan.versions[CHAMPION_ARM], CHAMPION_ARM))
    scores = scores.sort_values(["workspace_id", "user_id"]).reset_index(drop=True)
    out = write_scores(settings, run_date, scores, shard if n_shards > 1 else None)
    ws_arm = scores.drop_duplicates("workspace_id")["arm"].value_counts()
    ref = {"run_date": run_date.isoformat(), "status": "success", "mode": "scored", "note": plan.note,
           "versions": dict(plan.versions),
           "trained_through": {arm: m.trained_through.isoformat() for arm, m in plan.models.items()},
           "scores_path": str(out), "n_scored": len(scores),
           "workspaces_by_arm": {k: int(v) for k, v in ws_arm.items()},
           "users_by_arm": {k: int(v) for k, v in scores["arm"].value_counts().items()},
           "states": {k: int(v) for k, v in scores["state"].value_counts().sort_index().items()},
           "backtests": 0, "fits": 0, "score_seconds": round(time.perf_counter() - t0, 2)}
    log.info("churn scored %d users with %s in %.1fs", len(scores), ref["versions"], ref["score_seconds"])
    return ref


def _summed(refs: list[dict], key: str) -> dict[str, int]:
    from pipelines.features.store import sum_rows

    return dict(sorted(sum_rows([r[key] for r in refs]).items()))


def merge_scored(settings: Settings, run_date: date, refs: list[dict]) -> dict:
    """One reference for the workspace shards' scored parts: their frames in one ``scores.parquet`` (sorted, so the
    same rows whatever the shard count), counts summed. Shards scored with different versions (a version promoted
    while the night ran) are an error: a re-run scores every shard with one plan."""
    if len(refs) == 1:
        return refs[0]
    versions = {json.dumps(r["versions"], sort_keys=True) for r in refs}
    if len(versions) > 1:
        raise RuntimeError(f"churn shards of {run_date} were scored with different versions ({sorted(versions)}):"
                           " a version changed during the run; run the night again")
    scores = pd.concat([pd.read_parquet(r["scores_path"]) for r in refs], ignore_index=True)
    scores = scores.sort_values(["workspace_id", "user_id"]).reset_index(drop=True)
    out = write_scores(settings, run_date, scores)
    return {**refs[0], "scores_path": str(out), "n_scored": len(scores), "shards": len(refs),
            "workspaces_by_arm": _summed(refs, "workspaces_by_arm"), "users_by_arm": _summed(refs, "users_by_arm"),
            "states": _summed(refs, "states"), "score_seconds": round(sum(r["score_seconds"] for r in refs), 2)}
