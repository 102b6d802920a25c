"""One shard of the agent error-rate kind: its agents' history, then score with the stored version(s) or train.

Training is split from scoring (README, "Retraining and scoring"). A nightly shard (``run_shard``) asks
``pipelines.serving.serving_plan`` which versions to serve: the champion arm's (``registry.serving_version``:
the champion, or a newer version a retrain registered with a ``promote`` decision) and, with
``ab_challenger_share`` > 0 and a distinct ``challenger`` alias, the challenger's for the workspaces of the
challenger arm (``core.arms.arm_of`` on the workspace's UUID, the key ``pipelines.ab.assign_snapshot_arms``
labels snapshots with). It scores with their stored bundles (``tracking.load_version``): no training, no
backtest. Every alert and forecast row carries its arm's ``model_version`` and ``arm``.

It trains (``train_shard``, what a retrain runs per shard: fit, out-of-time choice, forecast backtest) only when
there is no usable version: none yet, an unreadable bundle, one made with other settings or another shard
count, or one trained on data through the run date or later (a re-run of its training date trains again and,
on the same data, gets the same version). Such a night also scores with the served version when it has a
compatible one (``champion_*`` files), so that a refused challenger does not stop today's alerts.

Outputs (Parquet, under ``data_dir/agent_errors/as_of=D/shard=k/``): ``alerts`` and ``forecast`` of the model(s)
that scored, ``champion_alerts`` / ``champion_forecast`` on inline-training nights with a served version,
``shard_bundle.json`` and ``candidates`` when it trained. The returned reference says which (``mode``).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from core.arms import CHAMPION_ARM
from core.contracts import RunStatus
from core.ids import entity_uuid
from core.settings import Settings
from models.error_rates import EngineConfig, EscalationModel, PathParams, Prepared, backtest_forecast, prepare, score, train
from pipelines.agent_errors.data import MODEL_NAME, config_params, engine_config, load_overrides, load_panel, scored_rows
from pipelines.agent_errors.tracking import Champion, load_version
from pipelines.registry import serving_version
from pipelines.serving import ServingPlan, serving_plan

log = logging.getLogger(__name__)
BUNDLE_VERSION = 1


def shard_dir(settings: Settings, as_of: date, shard: int, retrain: bool = False) -> Path:
    """A nightly shard's output folder; a retrain's (``retrain=True``) is apart, so it never overwrites a night's."""
    base = settings.data_dir / "agent_errors" / ("retrain" if retrain else "")
    return base / f"as_of={as_of.isoformat()}" / f"shard={shard}"


def params_to_json(p: PathParams) -> dict:
    d = asdict(p)
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def params_from_json(d: dict) -> PathParams:
    return PathParams(**{k: (np.asarray(v, dtype=float) if isinstance(v, list) else v) for k, v in d.items()})


def check_bundle(version: Champion, settings: Settings, shard: int) -> Champion:
    """``version`` if its bundle can score shard ``shard`` with these settings; raises ValueError otherwise."""
    b = version.bundle
    if b.get("bundle_version") != BUNDLE_VERSION or b.get("config") != json.loads(json.dumps(config_params(settings))):
        raise ValueError(f"v{version.version} was made with other settings")
    if b.get("n_shards") != settings.agent_error_shards or str(shard) not in b.get("shards", {}):
        raise ValueError(f"v{version.version} was made for another shard count")
    return version


def scoring_plan(settings: Settings, engine: Engine, run_date: date, shard: int) -> ServingPlan[Champion]:
    """The stored versions shard ``shard`` scores with tonight, by arm (empty: train inline; the note says why)."""
    return serving_plan(settings, engine, MODEL_NAME, run_date,
                        lambda v: check_bundle(load_version(settings, v), settings, shard),
                        lambda c: c.trained_through)


def _fallback(settings: Settings, engine: Engine, run_date: date, shard: int) -> Champion | None:
    """On an inline-training night: the served version, when it can still score the shard (else None)."""
    version = serving_version(engine, settings, MODEL_NAME)
    if version is None:
        return None
    try:
        served = check_bundle(load_version(settings, version), settings, shard)
    except Exception:  # noqa: BLE001 - unusable: the night trains without a fallback
        return None
    return served if served.trained_through <= run_date else None


def _models(version: Champion, shard: int) -> tuple[EscalationModel, PathParams]:
    b = version.bundle["shards"][str(shard)]
    return EscalationModel.from_json(b["escalation"]), params_from_json(b["path_params"])


def _frames(prep: Prepared, model: EscalationModel, params: PathParams, cfg: EngineConfig, rows: np.ndarray,
            sources: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    alerts, fc = score(prep, prep.panel.n_days - 1, model, params, cfg, rows)
    src = pd.Series(sources[rows], index=pd.MultiIndex.from_arrays([prep.panel.workspace_id[rows],
                                                                    prep.panel.agent_id[rows]]))
    alerts["threshold_source"] = src.reindex(pd.MultiIndex.from_frame(alerts[["workspace_id", "agent_id"]])).to_numpy()
    alerts["drivers"] = [json.dumps(d, default=float) for d in alerts["drivers"]]
    return alerts, fc


def _save(out: Path, prefix: str, alerts: pd.DataFrame, fc: pd.DataFrame) -> dict[str, int]:
    alerts.to_parquet(out / f"{prefix}alerts.parquet")
    fc.to_parquet(out / f"{prefix}forecast.parquet")
    return {"alerts": len(alerts), "forecast_rows": len(fc)}


def _write(out: Path, prefix: str, prep: Prepared, model: EscalationModel, params: PathParams, cfg: EngineConfig,
           rows: np.ndarray, sources: np.ndarray, version: str | None = None) -> dict[str, int]:
    alerts, fc = _frames(prep, model, params, cfg, rows, sources)
    if version is not None:
        alerts, fc = (f.assign(model_version=version, arm=CHAMPION_ARM) for f in (alerts, fc))
    return _save(out, prefix, alerts, fc)


def _inputs(settings: Settings, engine: Engine, run_date: date, shard: int,
            retrain: bool = False) -> tuple[dict, tuple | None]:
    """The shard's reference so far and its scoring inputs ``(prep, cfg, rows, sources, out)``; None when no
    agent of the shard had calls (the reference then says why)."""
    t0 = time.perf_counter()
    cfg = engine_config(settings)
    out = shard_dir(settings, run_date, shard, retrain)
    out.mkdir(parents=True, exist_ok=True)
    panel = load_panel(settings, run_date, shard, settings.agent_error_shards, cfg.panel_days())
    ref: dict = {"shard": shard, "path": str(out), "n_agents_in_panel": panel.n_agents, "n_rows": 0,
                 "n_workspaces": 0, "seconds": 0.0}
    rows = scored_rows(panel)
    if len(rows) == 0:
        return {**ref, "status": RunStatus.INSUFFICIENT_DATA,
                "reason": f"no agent of shard {shard} had calls in the 90 days to {run_date}"}, None
    rate, mult, sources = load_overrides(engine, panel)
    prep = prepare(panel, cfg, rate, mult)
    ref.update(load_prepare_seconds=round(time.perf_counter() - t0, 2), n_agents=len(rows),
               n_workspaces=int(pd.unique(panel.workspace_id[rows]).size))
    return ref, (prep, cfg, rows, sources, out)


def run_shard(settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
    """The nightly shard: score with the stored version(s), or train inline when there is none usable."""
    t0 = time.perf_counter()
    ref, inputs = _inputs(settings, engine, run_date, shard)
    if inputs is None:
        return ref
    plan = scoring_plan(settings, engine, run_date, shard)
    if plan.train_inline:
        fallback = _fallback(settings, engine, run_date, shard)
        return _train(settings, run_date, shard, {**ref, "train_reason": plan.note, "champion_note": plan.note},
                      inputs, fallback, t0)
    return score_shard(settings, ref, inputs, plan, t0)


def score_shard(settings: Settings, ref: dict, inputs: tuple, plan: ServingPlan[Champion], t0: float) -> dict:
    """Score the shard's agents with the plan's stored bundles, each workspace with its arm's version."""
    prep, cfg, rows, sources, out = inputs
    shard = ref["shard"]
    ws = pd.Series(prep.panel.workspace_id[rows])
    uuids = ws.map(lambda w: str(entity_uuid("workspace", w)))
    arms = plan.arms(uuids, settings).to_numpy()
    alerts, forecasts = [], []
    for arm, version in plan.models.items():
        arm_rows = rows[arms == arm]
        if len(arm_rows) == 0:
            continue
        a, f = _frames(prep, *_models(version, shard), cfg, arm_rows, sources)
        alerts.append(a.assign(model_version=version.version, arm=arm))
        forecasts.append(f.assign(model_version=version.version, arm=arm))
    counts = _save(out, "", pd.concat(alerts, ignore_index=True), pd.concat(forecasts, ignore_index=True))
    by_arm = pd.Series(uuids.to_numpy()).groupby(arms).nunique()
    champion = plan.models[CHAMPION_ARM]
    return {**ref, "status": RunStatus.SUCCESS, "mode": "scored", "versions": dict(plan.versions),
            "model_version": champion.version, "trained_through": champion.trained_through.isoformat(),
            "champion_note": plan.note, "workspaces_by_arm": {str(k): int(v) for k, v in by_arm.items()},
            "agents_by_arm": {str(k): int(v) for k, v in pd.Series(arms).value_counts().items()},
            "counts": counts, "n_rows": counts["forecast_rows"], "backtests": 0,
            "seconds": round(time.perf_counter() - t0, 2)}


def train_shard(settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
    """Train one shard on data through ``run_date`` (what a retrain runs per shard); writes ``shard_bundle.json``,
    the candidates and the new model's scores, and returns a JSON-ready reference (``n_rows`` > 0 when trained)."""
    t0 = time.perf_counter()
    ref, inputs = _inputs(settings, engine, run_date, shard, retrain=True)
    if inputs is None:
        return ref
    return _train(settings, run_date, shard, ref, inputs, None, t0)


def _train(settings: Settings, run_date: date, shard: int, ref: dict, inputs: tuple, fallback: Champion | None,
           t0: float) -> dict:
    prep, cfg, rows, sources, out = inputs
    panel = prep.panel
    t1 = time.perf_counter()
    try:
        trained = train(prep, panel.n_days - 1, cfg)
    except ValueError as exc:
        return {**ref, "status": RunStatus.INSUFFICIENT_DATA, "reason": str(exc), "n_rows": 0}
    metrics = {**trained.metrics, **backtest_forecast(prep, panel.n_days - 1, trained, cfg),
               "n_train": float(trained.n_train), "n_train_breaches": float(trained.n_positive)}
    ref["train_seconds"] = round(time.perf_counter() - t1, 2)
    bundle = {"escalation": trained.model.to_json(), "path_params": params_to_json(trained.path_params)}
    (out / "shard_bundle.json").write_text(json.dumps(bundle, default=float))
    trained.candidates.to_parquet(out / "candidates.parquet")
    counts = _write(out, "", prep, trained.model, trained.path_params, cfg, rows, sources)
    if fallback is not None:
        _write(out, "champion_", prep, *_models(fallback, shard), cfg, rows, sources, fallback.version)
    return {**ref, "status": RunStatus.SUCCESS, "mode": "trained", "metrics": metrics, "counts": counts,
            "n_rows": counts["forecast_rows"], "importance": trained.model.importance(), "kind": trained.model.kind,
            "path_params": trained.path_params.as_dict(), "champion_scored": fallback is not None,
            "champion_version": fallback.version if fallback is not None else None,
            "training_start": str((panel.start + pd.Timedelta(days=max(0, panel.n_days - cfg.horizon
                                                                    - cfg.training_days))).date()),
            "seconds": round(time.perf_counter() - t0, 2)}
