"""Nightly peak-usage scoring with stored model versions: no holdout, no backtest, no choice of members.

The served version's artifact (``pipelines.peak_usage.artifact``) gives, per metric and workspace, the candidate
(members) its group chose in training and its backtest error blocks (the sample paths' calibration). Scoring
reads each workspace's latest hours on its local clock, forecasts with the stored candidate
(``models.peaks.stored.StoredPeakForecaster``: only the members some workspace uses are run), draws the paths
from the stored blocks, and builds the hourly rows, daily peaks, capacity needs, peak-hour probabilities and the
week's peak exactly as training does (``pipelines.peak_usage.forecast.production_rows``).

With ``ab_challenger_share`` > 0 and a distinct challenger, the workspaces of the challenger arm
(``core.arms.arm_of`` on the workspace's UUID, the key ``pipelines.ab.assign_snapshot_arms`` labels the snapshots
with at publish) are scored
with the challenger version; every row carries its version in ``model_version`` and its arm in ``arm``.

Fallback for workspaces the artifact does not know (new since training): the stored choice of the group their
latest hours fall in (volume x intermittency), else the training shard's overall choice, and paths drawn from
that group's stored error blocks only; a workspace whose training shard had no series uses every shard's state
pooled. They are counted in the shard's reference (``unknown_workspaces``, per metric). Workspaces with less than
two weeks of hours get the daily profile, as in training.

With no champion, an unreadable artifact, or a version trained through the run date or later, the nightly shard
trains inline instead (``pipelines.serving.serving_plan`` says why).
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date

import pandas as pd

from core.contracts import PEAK_METRICS
from core.ids import entity_uuid
from core.settings import Settings
from core.shards import shard_of
from pipelines.peak_usage.artifact import MODEL_NAME, PeakArtifact, load_artifact
from pipelines.peak_usage.forecast import (
    _limits,
    load_shard_hours,
    production_rows,
    shard_dir,
    sort_frame,
)
from pipelines.serving import ServingPlan, serving_plan

log = logging.getLogger(__name__)


def scoring_plan(settings: Settings, engine, as_of: date) -> ServingPlan[PeakArtifact]:
    """The artifacts to score ``as_of`` with, by arm (empty: train inline; ``note`` says why)."""
    return serving_plan(settings, engine, MODEL_NAME, as_of, lambda v: load_artifact(settings, MODEL_NAME, v),
                        lambda art: art.trained_through)


def stored_models(settings: Settings, art: PeakArtifact, metric: str, series: pd.DataFrame) -> list:
    """StoredPeakForecasters of one version fitted on ``series`` (``unique_id, ds, y``), one per training shard of
    the workspaces (each with its shard's state, or the pooled state when that shard had none)."""
    from models.peaks.stored import StoredPeakForecaster

    params = art.params(settings)
    ids = pd.Series(series["unique_id"].unique())
    models = []
    for training_shard, ws in ids.groupby(ids.map(lambda w: shard_of(str(w), art.n_shards))):
        state = art.state(metric, int(training_shard)) or art.pooled_state(metric)
        models.append(StoredPeakForecaster(**params, cache={}, state=state)
                      .fit(series[series["unique_id"].isin(set(ws))]))
    return models


def score_shard(settings: Settings, engine, as_of: date, shard: int, n_shards: int,
                plan: ServingPlan[PeakArtifact]) -> dict:
    """Score one shard with the plan's version(s) by A/B arm; writes ``forecast.parquet`` and returns a reference."""
    t0 = time.perf_counter()
    out = shard_dir(settings, as_of, shard)
    out.mkdir(parents=True, exist_ok=True)
    ref: dict = {"shard": shard, "path": str(out), "n_series": 0, "n_rows": 0, "n_workspaces": 0, "mode": "scored",
                 "versions": dict(plan.versions), "backtests": 0, "note": plan.note}
    data = load_shard_hours(settings, as_of, shard, n_shards)
    if data is None:
        pd.DataFrame().to_parquet(out / "forecast.parquet")
        return ref
    local, zones, feats = data["local"], data["zones"], data["feats"]
    workspaces = pd.Series(sorted(local["unique_id"].unique()))
    # the arm is the hash of the workspace's UUID: the key assign_snapshot_arms labels the snapshots with
    arms = plan.arms(workspaces.map(lambda w: str(entity_uuid("workspace", w))), settings)
    limits = _limits(engine)
    frames, alerts, fallbacks = [], 0, []
    unknown = {m: 0 for m in PEAK_METRICS}
    regrouped = {m: 0 for m in PEAK_METRICS}
    for arm, art in plan.models.items():
        arm_ws = set(workspaces[arms == arm])
        if not arm_ws:
            continue
        arm_frames = []
        for metric in PEAK_METRICS:
            series = local[local["unique_id"].isin(arm_ws)][["unique_id", "ds", metric]].rename(columns={metric: "y"})
            for model in stored_models(settings, art, metric, series):
                rows, n_alerts = production_rows(settings, model, zones, feats, limits, as_of, metric)
                arm_frames += rows
                alerts += n_alerts
                unknown[metric] += len(model.unknown_)
                regrouped[metric] += len(model.regrouped_)
                fallbacks += [{**f.__dict__, "metric": metric, "arm": arm} for f in model.fallbacks]
        frames.append(pd.concat(arm_frames, ignore_index=True).assign(model_version=art.version, arm=arm))
    frame = sort_frame(frames)
    frame.to_parquet(out / "forecast.parquet")
    pd.DataFrame(fallbacks, columns=["unique_id", "model", "reason", "used", "metric", "arm"]).astype(
        {"unique_id": str}).to_parquet(out / "fallbacks.parquet")
    n_ws = int(workspaces.size)
    ref.update(n_series=n_ws * len(PEAK_METRICS), n_rows=len(frame), n_workspaces=n_ws, n_alert_hours=alerts,
               workspaces_by_arm={k: int(v) for k, v in arms.value_counts().items()},
               unknown_workspaces=unknown, regrouped_workspaces=regrouped, n_fallbacks=len(fallbacks),
               seconds=round(time.perf_counter() - t0, 1), history_start=str(data["utc"]["ds"].min().date()),
               history_end=as_of.isoformat())
    (out / "ref.json").write_text(json.dumps(ref, default=str))
    log.info("peak_usage shard %d scored with %s: %d workspaces in %.1fs", shard, ref["versions"], n_ws,
             ref["seconds"])
    return ref
