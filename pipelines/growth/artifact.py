"""The growth model version's scoring artifact: the choices a training run made, no pickles.

Layout (logged to the training run as the MLflow artifact folder ``scoring/``)::

    config.json                        members, ensemble parameters, shard count, trained_through, format
    shard=<k>/<metric>_weights.parquet per series (``<workspace>|<metric>``): volume group, choice, member weights
    shard=<k>/<metric>_specs.parquet   per series and searching member, the specification its search chose
    shard=<k>/error_bank.parquet       the backtest's log-error units (one row per workspace x cutoff: its size
                                       group and ``<metric>_<step>`` columns), the scenarios' calibration
    shard=<k>/state.json               member names per metric and the bank's horizon

Training saves each shard's state next to its outputs (``save_shard_state``); ``build_artifact`` gathers the
shards; ``load_artifact`` reads a registered version's folder back for nightly scoring
(``pipelines.growth.scoring``).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import Settings
from pipelines.serving import StoredArtifact, gather_shard_states, read_artifact_config
from pipelines.growth.sample_paths import METRICS, ErrorBank

ARTIFACT_DIR = "scoring"
FORMAT = 1
READABLE_FORMATS = (1,)


def bank_frame(bank: ErrorBank) -> pd.DataFrame:
    """An error bank as a flat frame: ``group`` and one column per (metric, step)."""
    n, H = len(bank.group), bank.horizon
    cols = [f"{m}_{k}" for m in METRICS for k in range(H)]
    out = pd.DataFrame(bank.errors.reshape(n, len(METRICS) * H), columns=cols)
    out.insert(0, "group", np.asarray(bank.group, dtype=str))
    return out


def bank_from_frame(frame: pd.DataFrame, horizon: int) -> ErrorBank:
    cols = [f"{m}_{k}" for m in METRICS for k in range(horizon)]
    errors = frame[cols].to_numpy(float).reshape(len(frame), len(METRICS), horizon)
    return ErrorBank(errors=errors, group=frame["group"].astype(str).to_numpy(object))


def save_shard_state(out: Path, models: dict, bank: ErrorBank) -> None:
    """Write a trained shard's per-metric Ensemble states and its error bank under ``out/state``."""
    from models.forecasting.stored import ensemble_state

    folder = out / "state"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    meta: dict = {"bank_horizon": bank.horizon, "metrics": {}}
    for metric, model in models.items():
        state = ensemble_state(model)
        state.weights.to_parquet(folder / f"{metric}_weights.parquet")
        state.specs.to_parquet(folder / f"{metric}_specs.parquet")
        meta["metrics"][metric] = state.meta
    bank_frame(bank).to_parquet(folder / "error_bank.parquet")
    (folder / "state.json").write_text(json.dumps(meta))


def build_artifact(root: Path, refs: list[dict], config: dict) -> Path:
    """Gather the trained shards' states into ``root/scoring`` with ``config.json``; returns the folder."""
    return gather_shard_states(root, refs, ARTIFACT_DIR, {**config, "format": FORMAT})


class GrowthArtifact(StoredArtifact):
    """A growth model version's scoring artifact, read from a local folder."""

    @property
    def members(self) -> list[str]:
        return list(self.config["members"])

    def shards_with_state(self) -> list[int]:
        return [k for k in range(self.n_shards) if (self.folder / f"shard={k}" / "state.json").exists()]

    def choices(self, shard: int | None):
        """The ``StoredChoices`` of training shard ``shard`` (its weights, specs and error bank); None or a shard
        that had no projected workspace: every shard's weights and the pooled bank (``project.StoredChoices``)."""
        from models.forecasting.stored import EnsembleState
        from pipelines.growth.project import StoredChoices

        shards = [shard] if shard in self.shards_with_state() else self.shards_with_state()
        if not shards:
            raise ValueError(f"version {self.version}: the artifact has no trained shard")
        states, banks = {}, []
        for k in shards:
            folder = self.folder / f"shard={k}"
            meta = json.loads((folder / "state.json").read_text())
            banks.append(bank_from_frame(pd.read_parquet(folder / "error_bank.parquet"), int(meta["bank_horizon"])))
            for metric in METRICS:
                st = EnsembleState(weights=pd.read_parquet(folder / f"{metric}_weights.parquet"),
                                   calibration=pd.DataFrame(columns=["calibrator", "step", "score"]),
                                   meta=meta["metrics"][metric],
                                   specs=pd.read_parquet(folder / f"{metric}_specs.parquet"))
                states.setdefault(metric, []).append(st)
        H = min(b.horizon for b in banks)
        bank = ErrorBank(errors=np.concatenate([b.errors[..., :H] for b in banks]),
                         group=np.concatenate([b.group for b in banks]))
        merged = {m: EnsembleState(weights=pd.concat([s.weights for s in sts], ignore_index=True),
                                   calibration=sts[0].calibration, meta=sts[0].meta,
                                   specs=pd.concat([s.specs for s in sts], ignore_index=True))
                  for m, sts in states.items()}
        return StoredChoices(members=self.members, states=merged, bank=bank)


def read_artifact(version: str, folder: Path) -> GrowthArtifact:
    """Read and check an artifact folder; ValueError says what is wrong."""
    config = read_artifact_config(version, folder, ARTIFACT_DIR, READABLE_FORMATS, {"members"})
    return GrowthArtifact(version=str(version), folder=Path(folder), config=config)


def load_artifact(settings: Settings, model_name: str, version: str) -> GrowthArtifact:
    """Download (local store: copy) and read the scoring artifact of a registered version."""
    from pipelines.serving import version_artifact_dir

    return read_artifact(str(version), version_artifact_dir(settings, model_name, version, ARTIFACT_DIR))
