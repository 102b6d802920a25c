"""The peak-usage model version's scoring artifact: what nightly scoring needs, no pickles.

Layout (logged to the training run as the MLflow artifact folder ``scoring/``)::

    config.json        forecaster parameters, metrics, shard count, trained_through, format
    choices.parquet    metric, shard, unique_id (workspace), group, choice (the candidate its group chose)
    groups.parquet     metric, shard, group, choice (group ``*``: the shard's overall choice)
    blocks.parquet     metric, shard, unique_id, block, h0..h23: the backtest error blocks of the sample paths

One PeakForecaster is trained per metric and training shard, so each (metric, shard) is one
:class:`models.peaks.stored.PeakState`. Training saves each shard's states next to its outputs
(``save_shard_state``); ``build_artifact`` gathers the shards; ``load_artifact`` reads a registered version's
folder back.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.settings import Settings
from pipelines.serving import StoredArtifact, read_artifact_config

ARTIFACT_DIR = "scoring"
FORMAT = 1
MODEL_NAME = "pae-peak-usage"
TABLES = ("choices", "groups", "blocks")


def save_shard_state(out: Path, shard: int, states: dict) -> None:
    """Write a trained shard's states (``{metric: PeakState}``) under ``out/state``."""
    folder = out / "state"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in TABLES:
        frames = [getattr(st, name).assign(metric=metric, shard=shard) for metric, st in states.items()]
        pd.concat(frames, ignore_index=True).astype({"group": str} if name != "blocks" else {}).to_parquet(
            folder / f"{name}.parquet")


def build_artifact(root: Path, refs: list[dict], config: dict) -> Path:
    """Gather the trained shards' states into ``root/scoring`` with ``config.json``; returns the folder."""
    folder = root / ARTIFACT_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in TABLES:
        parts = [pd.read_parquet(p) for r in refs if (p := Path(r["path"]) / "state" / f"{name}.parquet").exists()]
        pd.concat(parts, ignore_index=True).to_parquet(folder / f"{name}.parquet")
    (folder / "config.json").write_text(json.dumps({**config, "format": FORMAT}, default=str))
    return folder


@dataclass
class PeakArtifact(StoredArtifact):
    """A peak-usage model version's scoring artifact, read from a local folder."""

    _tables: dict = field(default_factory=dict, repr=False)

    def params(self, settings: Settings) -> dict:
        """The training run's PeakForecaster parameters, with this machine's thread count."""
        forecaster = self.config["forecaster"]
        return {**forecaster, "members": tuple(forecaster["members"]), "n_jobs": settings.threads}

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            self._tables[name] = pd.read_parquet(self.folder / f"{name}.parquet")
        return self._tables[name]

    def state(self, metric: str, shard: int):
        """The ``PeakState`` of ``metric`` in training shard ``shard``; None when that shard had no series."""
        from models.peaks.stored import PeakState

        parts = {}
        for name in TABLES:
            t = self.table(name)
            parts[name] = t[(t["metric"] == metric) & (t["shard"] == shard)].drop(columns=["metric", "shard"])
        if parts["choices"].empty:
            return None
        return PeakState(**{k: v.reset_index(drop=True) for k, v in parts.items()})

    def pooled_state(self, metric: str):
        """Every training shard's state of ``metric`` as one (for workspaces whose training shard had no series):
        the series' own choices and blocks, and per group the choice most of the shards' series had."""
        from models.peaks.stored import OVERALL, PeakState

        choices = self.table("choices")
        choices = choices[choices["metric"] == metric]
        blocks = self.table("blocks")
        counts = choices.groupby(["group", "choice"]).size().rename("n").reset_index()
        groups = counts.sort_values(["group", "n", "choice"], ascending=[True, False, True]).groupby("group").head(1)
        overall = choices["choice"][choices["choice"] != "DailyProfile"].mode()
        groups = pd.concat([groups[["group", "choice"]],
                            pd.DataFrame({"group": [OVERALL], "choice": [overall.iloc[0] if len(overall) else
                                                                         "+".join(self.config["forecaster"]["members"])]})])
        return PeakState(choices=choices.drop(columns=["metric", "shard"]).reset_index(drop=True),
                         groups=groups.reset_index(drop=True),
                         blocks=blocks[blocks["metric"] == metric].drop(columns=["metric", "shard"]).reset_index(drop=True))


def read_artifact(version: str, folder: Path) -> PeakArtifact:
    """Read and check an artifact folder; ValueError says what is wrong."""
    folder = Path(folder)
    config = read_artifact_config(version, folder, ARTIFACT_DIR, (FORMAT,), {"forecaster"})
    missing = sorted(f"{t}.parquet" for t in TABLES if not (folder / f"{t}.parquet").exists())
    if missing:
        raise ValueError(f"version {version}: artifact lacks {missing}")
    return PeakArtifact(version=str(version), folder=folder, config=config)


def load_artifact(settings: Settings, model_name: str, version: str) -> PeakArtifact:
    """Download (local store: copy) and read the scoring artifact of a registered version."""
    from pipelines.serving import version_artifact_dir

    return read_artifact(str(version), version_artifact_dir(settings, model_name, version, ARTIFACT_DIR))
