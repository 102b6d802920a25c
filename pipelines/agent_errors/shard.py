"""One shard of the agent error-rate kind: its agents' history, then train (or reuse the champion) and score.

Training happens when there is no usable champion: none yet, trained on data more than
``agent_error_retrain_days`` old (or on data after the run date: a re-run of an earlier date never uses a
model that saw its future), made for other settings or another shard count. Otherwise the champion scores
the night (the model is retrained weekly by default, alerts are scored nightly). A training night also scores
with the champion, when there is one, so that a refused challenger does not stop today's alerts.

Outputs (Parquet, under ``data_dir/agent_errors/as_of=D/shard=k/``): ``alerts`` and ``forecast`` of the model
that scored, ``champion_alerts`` / ``champion_forecast`` on training nights with a champion, and ``bundle.json``
(the trained model). The returned reference says which.
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

from core.contracts import RunStatus
from core.settings import Settings
from models.error_rates import EngineConfig, EscalationModel, PathParams, Prepared, backtest_forecast, prepare, score, train
from pipelines.agent_errors.data import config_params, engine_config, load_overrides, load_panel, scored_rows
from pipelines.agent_errors.tracking import Champion, load_champion

log = logging.getLogger(__name__)
BUNDLE_VERSION = 1


def shard_dir(settings: Settings, as_of: date, shard: int) -> Path:
    return settings.data_dir / "agent_errors" / f"as_of={as_of.isoformat()}" / f"shard={shard}"


def params_to_json(p: PathParams) -> dict:
    d = asdict(p)
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}


def params_from_json(d: dict) -> PathParams:
    return PathParams(**{k: (np.asarray(v, dtype=float) if isinstance(v, list) else v) for k, v in d.items()})


def _usable(champion: Champion | None, settings: Settings, run_date: date, shard: int) -> tuple[bool, str]:
    if champion is None:
        return False, "no champion yet"
    b = champion.bundle
    if champion.trained_through > run_date:
        return False, f"champion v{champion.version} was trained on data through {champion.trained_through}, after {run_date}"
    if (run_date - champion.trained_through).days >= settings.agent_error_retrain_days:
        return False, f"champion v{champion.version} trained through {champion.trained_through}: due for retraining"
    if b.get("bundle_version") != BUNDLE_VERSION or b.get("config") != json.loads(json.dumps(config_params(settings))):
        return False, f"champion v{champion.version} was made with other settings"
    if b.get("n_shards") != settings.agent_error_shards or str(shard) not in b.get("shards", {}):
        return False, f"champion v{champion.version} was made for another shard count"
    return True, f"scored with champion v{champion.version} (trained through {champion.trained_through})"


def _write(out: Path, prefix: str, prep: Prepared, model: EscalationModel, params: PathParams, cfg: EngineConfig,
           rows: np.ndarray, sources: np.ndarray) -> dict[str, int]:
    alerts, fc = score(prep, prep.panel.n_days - 1, model, params, cfg, rows)
    src = pd.Series(sources[rows], index=pd.MultiIndex.from_arrays([prep.panel.workspace_id[rows],
                                                                    prep.panel.agent_id[rows]]))
    alerts["threshold_source"] = src.reindex(pd.MultiIndex.from_frame(alerts[["workspace_id", "agent_id"]])).to_numpy()
    alerts["drivers"] = [json.dumps(d, default=float) for d in alerts["drivers"]]
    alerts.to_parquet(out / f"{prefix}alerts.parquet")
    fc.to_parquet(out / f"{prefix}forecast.parquet")
    return {"alerts": len(alerts), "forecast_rows": len(fc)}


def run_shard(settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
    """Train or reuse, then score one shard; returns a reference (status, paths, metrics, counts)."""
    t0 = time.perf_counter()
    cfg = engine_config(settings)
    out = shard_dir(settings, run_date, shard)
    out.mkdir(parents=True, exist_ok=True)
    panel = load_panel(settings, run_date, shard, settings.agent_error_shards, cfg.panel_days())
    ref: dict = {"shard": shard, "path": str(out), "n_agents_in_panel": panel.n_agents}
    rows = scored_rows(panel)
    if len(rows) == 0:
        return {**ref, "status": RunStatus.INSUFFICIENT_DATA,
                "reason": f"no agent of shard {shard} had calls in the 90 days to {run_date}"}
    rate, mult, sources = load_overrides(engine, panel)
    prep = prepare(panel, cfg, rate, mult)
    ref["load_prepare_seconds"] = round(time.perf_counter() - t0, 2)
    champion = load_champion(settings)
    usable, why = _usable(champion, settings, run_date, shard)
    ref.update(n_agents=len(rows), champion_version=champion.version if champion else None, champion_note=why)
    if usable:
        b = champion.bundle["shards"][str(shard)]
        counts = _write(out, "", prep, EscalationModel.from_json(b["escalation"]), params_from_json(b["path_params"]),
                        cfg, rows, sources)
        return {**ref, "status": RunStatus.SUCCESS, "mode": "reused", "model_version": champion.version,
                "counts": counts, "seconds": round(time.perf_counter() - t0, 2)}

    t1 = time.perf_counter()
    try:
        trained = train(prep, panel.n_days - 1, cfg)
    except ValueError as exc:
        return {**ref, "status": RunStatus.INSUFFICIENT_DATA, "reason": str(exc)}
    metrics = {**trained.metrics, **backtest_forecast(prep, panel.n_days - 1, trained, cfg),
               "n_train": float(trained.n_train), "n_train_breaches": float(trained.n_positive)}
    ref["train_seconds"] = round(time.perf_counter() - t1, 2)
    bundle = {"escalation": trained.model.to_json(), "path_params": params_to_json(trained.path_params)}
    (out / "shard_bundle.json").write_text(json.dumps(bundle, default=float))
    trained.candidates.to_parquet(out / "candidates.parquet")
    counts = _write(out, "", prep, trained.model, trained.path_params, cfg, rows, sources)
    compatible = champion is not None and str(shard) in champion.bundle.get("shards", {}) \
        and champion.trained_through <= run_date and champion.bundle.get("bundle_version") == BUNDLE_VERSION
    if compatible:
        b = champion.bundle["shards"][str(shard)]
        _write(out, "champion_", prep, EscalationModel.from_json(b["escalation"]), params_from_json(b["path_params"]),
               cfg, rows, sources)
    return {**ref, "status": RunStatus.SUCCESS, "mode": "trained", "metrics": metrics, "counts": counts,
            "importance": trained.model.importance(), "kind": trained.model.kind,
            "path_params": trained.path_params.as_dict(), "champion_scored": compatible,
            "training_start": str((panel.start + pd.Timedelta(days=max(0, panel.n_days - cfg.horizon
                                                                    - cfg.training_days))).date()),
            "seconds": round(time.perf_counter() - t0, 2)}
