"""Nightly consumption scoring with stored model versions: no backtest, no weight search.

The champion version's artifact (``pipelines.consumption.artifact``) gives each series its member weights and
the interval calibration; scoring refits only the members each series needs on the latest history and
combines them (``models.forecasting.stored.StoredEnsemble``), then reconciles features to totals and adds the
cumulative rows exactly as training does. With ``ab_challenger_share`` > 0 the workspaces of the challenger
arm (``core.arms.workspace_arm``, on the workspace UUID as the snapshots) are scored with the challenger version's artifact; every row carries its version
in ``model_version`` and its arm in ``arm``.

Workspaces (or workspace x feature series) the artifact does not know get the default weights (the mean
stored mix, ``EnsembleState.default_weights``) and the pooled interval calibration; they are counted in the
shard's reference (``unknown_workspaces``, ``unknown_feature_series``).

Members that search a specification per series (ETS's AutoETS model, MSTL's trend model) fit the one training
chose for the series (artifact format 2), without the search; the reference counts them (``fixed_specs``). A
format-1 artifact still scores, with the search as training did (``specs`` says which).

When there is no champion, its artifact cannot be read, or it was trained on data through the run date or later
(a re-run of its training date trains again and, on the same data, gets the same version and rows), the nightly
run trains inline instead (``scoring_versions`` says why).
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date

import pandas as pd

from core.arms import CHALLENGER_ARM, CHAMPION_ARM, workspace_arm
from core.db import get_engine
from core.settings import Settings
from pipelines.consumption.artifact import ScoringArtifact, load_artifact
from core.shards import shard_of
from pipelines.consumption.forecast import forecast_frame, load_shard_series, shard_dir
from pipelines.serving import serving_plan

log = logging.getLogger(__name__)
MODEL_NAME = "pae-credit-consumption"  # pipelines.consumption.kind.MODEL_NAME (no import: kind imports this)


def scoring_versions(settings: Settings, as_of: date) -> tuple[dict[str, ScoringArtifact], str]:
    """The artifacts to score with, by arm, and a note; empty when the night must train inline (the note says why).
    The plan is the same for every kind (``pipelines.serving.serving_plan``)."""
    plan = serving_plan(settings, get_engine(settings), MODEL_NAME, as_of,
                        lambda v: load_artifact(settings, MODEL_NAME, v), lambda art: art.trained_through)
    return plan.models, plan.note


def _stored_model(art: ScoringArtifact, settings: Settings, level: str, training_shard: int,
                  series: pd.DataFrame):
    """A StoredEnsemble fitted on ``series`` with the training shard's state (default weights if it has none)."""
    from models.forecasting import Ensemble
    from models.forecasting.stored import EnsembleState, StoredEnsemble

    params = art.params(level, settings)
    members = Ensemble(**params)._new_members()
    state = art.state(training_shard, level)
    if state is None:  # the training shard had no series: every series is unknown
        names = [m.name for m in members]
        state = EnsembleState(pd.DataFrame(columns=["unique_id", "group", "choice", *names]),
                              pd.DataFrame(columns=["calibrator", "step", "score"]),
                              {"members": names, "calibrators": {}})
    return StoredEnsemble(state, members).fit(series, freq="D")


class _Stacked:
    """Several fitted models over disjoint series, predicted as one (for ``forecast_frame``); None when empty."""

    def __init__(self, models: list):
        self.models = models

    def predict(self, h: int, level: int = 95) -> pd.DataFrame:
        return pd.concat([m.predict(h=h, level=level) for m in self.models], ignore_index=True)

    def predict_cumulative(self, h: int, level: int = 95) -> pd.DataFrame:
        return pd.concat([m.predict_cumulative(h, level) for m in self.models], ignore_index=True)


def _new_counts() -> dict:
    return {"unknown_workspaces": 0, "unknown_feature_series": 0, "fitted_members": {}, "member_seconds": {},
            "fixed_specs": {}, "fallbacks": []}


def stored_models(settings: Settings, art: ScoringArtifact, totals: pd.DataFrame, bottom: pd.DataFrame,
                  counts: dict | None = None) -> tuple[_Stacked, _Stacked | None]:
    """StoredEnsembles of one version fitted on these workspaces' totals and workspace x feature series (each
    workspace with its training shard's state): ``(totals model, features model or None if no series)``.
    ``counts`` (see ``_new_counts``) gathers unknown series, fitted members, their seconds, stored specs used and
    fallbacks."""
    counts = _new_counts() if counts is None else counts
    workspaces = pd.Series(totals["unique_id"].unique())
    bottom_ws = bottom["unique_id"].str.split("|", n=1).str[0]
    totals_models, bottom_models = [], []
    for training_shard, ws in workspaces.groupby(workspaces.map(lambda w: shard_of(w, art.n_shards))):
        ws_set = set(ws)
        t_model = _stored_model(art, settings, "total", int(training_shard), totals[totals["unique_id"].isin(ws_set)])
        totals_models.append(t_model)
        counts["unknown_workspaces"] += len(t_model.unknown_)
        sub = bottom[bottom_ws.isin(ws_set)]
        models = [("total", t_model)]
        if len(sub):
            b_model = _stored_model(art, settings, "feature", int(training_shard), sub)
            bottom_models.append(b_model)
            counts["unknown_feature_series"] += len(b_model.unknown_)
            models.append(("feature", b_model))
        for level, m in models:
            for name, n in m.fitted_members_.items():
                key = f"{level}:{name}"
                counts["fitted_members"][key] = counts["fitted_members"].get(key, 0) + n
                seconds = counts["member_seconds"].get(key, 0.0) + m.member_seconds_[name]
                counts["member_seconds"][key] = round(seconds, 2)
            for name, n in m.fixed_specs_.items():
                counts["fixed_specs"][f"{level}:{name}"] = counts["fixed_specs"].get(f"{level}:{name}", 0) + n
            counts["fallbacks"] += [{**f.__dict__, "level": level} for f in m.fallbacks]
    return _Stacked(totals_models), (_Stacked(bottom_models) if bottom_models else None)


def score_shard(settings: Settings, as_of: date, shard: int, n_shards: int,
                versions: dict[str, ScoringArtifact]) -> dict:
    """Score one shard with stored versions (by A/B arm); writes ``forecast.parquet`` and returns a reference."""
    t0 = time.perf_counter()
    totals, bottom = load_shard_series(settings, as_of, shard, n_shards)
    out = shard_dir(settings, as_of, shard)
    out.mkdir(parents=True, exist_ok=True)
    ref: dict = {"shard": shard, "path": str(out), "n_series": 0, "n_rows": 0, "n_workspaces": 0, "mode": "scored",
                 "versions": {arm: a.version for arm, a in versions.items()}, "backtests": 0}
    if totals.empty:
        pd.DataFrame().to_parquet(out / "forecast.parquet")
        return ref
    workspaces = pd.Series(totals["unique_id"].unique())
    share = settings.ab_challenger_share if CHALLENGER_ARM in versions else 0.0
    arms = workspaces.map(lambda w: workspace_arm(w, share, settings.ab_salt)) if share > 0 else \
        pd.Series(CHAMPION_ARM, index=workspaces.index)
    frames, counts = [], _new_counts()
    for arm, art in versions.items():
        arm_ws = set(workspaces[arms == arm])
        if not arm_ws:
            continue
        bottom_ws = bottom["unique_id"].str.split("|", n=1).str[0]
        totals_model, bottom_model = stored_models(settings, art, totals[totals["unique_id"].isin(arm_ws)],
                                                   bottom[bottom_ws.isin(arm_ws)], counts)
        frame = forecast_frame(settings, totals_model, bottom_model)
        frames.append(frame.assign(model_version=art.version, arm=arm))
    fallbacks = counts.pop("fallbacks")
    frame = pd.concat(frames, ignore_index=True).sort_values(
        ["workspace_id", "target_metric", "dimension", "prediction_date"]).reset_index(drop=True)
    frame.to_parquet(out / "forecast.parquet")
    pd.DataFrame(fallbacks, columns=["unique_id", "model", "reason", "used", "level"]).astype(
        {"unique_id": str}).to_parquet(out / "fallbacks.parquet")
    ref.update(n_series=int(totals["unique_id"].nunique() + bottom["unique_id"].nunique()), n_rows=len(frame),
               n_workspaces=int(workspaces.size), workspaces_by_arm={k: int(v) for k, v in arms.value_counts().items()},
               **counts,
               specs={arm: ("stored" if a.has_specs else f"searched (artifact format {a.format})")
                      for arm, a in versions.items()},
               n_fallbacks=len(fallbacks), seconds=round(time.perf_counter() - t0, 1),
               history_start=str(totals["ds"].min().date()), history_end=as_of.isoformat())
    (out / "ref.json").write_text(json.dumps(ref, default=str))
    log.info("consumption shard %d scored with %s: %d series in %.1fs", shard, ref["versions"], ref["n_series"],
             ref["seconds"])
    return ref
