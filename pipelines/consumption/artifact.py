"""The consumption model version's scoring artifact: everything nightly scoring needs, no pickles.

Layout (logged to the training run as the MLflow artifact folder ``scoring/``)::

    config.json                   ensemble parameters of totals and features, shard count, trained_through
    shard=<k>/total_weights.parquet       per-series group, choice and member weights (workspace totals)
    shard=<k>/total_calibration.parquet   conformal scores per calibrator and step (daily, cumulative, per group)
    shard=<k>/total_specs.parquet         per series and member, the specification its search chose (format 2)
    shard=<k>/feature_*.parquet           the same for the workspace x feature series
    shard=<k>/state.json                  member names and calibrator settings per level

Format 2 added ``*_specs.parquet``: scoring fits each series' stored specification (AutoETS model string, the
MSTL trend's) without the search. A format-1 artifact still scores: its members search as training did
(``ScoringArtifact.has_specs`` is False and the shard's reference says so).

Training saves each shard's state next to its outputs (``save_shard_state``); ``build_artifact`` gathers the
shards; ``load_artifact`` reads a registered version's folder back.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from core.settings import Settings
from pipelines.serving import StoredArtifact, gather_shard_states, read_artifact_config

ARTIFACT_DIR = "scoring"
FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: no stored specifications (scoring searches them)
LEVELS = ("total", "feature")


def save_shard_state(out: Path, total_model, bottom_model) -> None:
    """Write a trained shard's Ensemble states (totals and features) under ``out/state``."""
    from models.forecasting.stored import ensemble_state

    folder = out / "state"
    folder.mkdir(parents=True, exist_ok=True)
    meta = {}
    for level, model in zip(LEVELS, (total_model, bottom_model)):
        state = ensemble_state(model)
        state.weights.to_parquet(folder / f"{level}_weights.parquet")
        state.calibration.to_parquet(folder / f"{level}_calibration.parquet")
        state.specs.to_parquet(folder / f"{level}_specs.parquet")
        meta[level] = state.meta
    (folder / "state.json").write_text(json.dumps(meta))


def build_artifact(root: Path, refs: list[dict], config: dict) -> Path:
    """Gather the trained shards' states into ``root/scoring`` with ``config.json``; returns the folder."""
    return gather_shard_states(root, refs, ARTIFACT_DIR, {**config, "format": FORMAT})


class ScoringArtifact(StoredArtifact):
    """A consumption model version's scoring artifact, read from a local folder."""

    @property
    def format(self) -> int:
        return int(self.config["format"])

    @property
    def has_specs(self) -> bool:
        """Whether the members' chosen specifications are stored (format 2); else scoring searches them."""
        return self.format >= 2

    def params(self, level: str, settings: Settings) -> dict:
        """The training run's Ensemble parameters for ``level``, with this machine's thread count."""
        key = "ensemble" if level == "total" else "ensemble_features"
        return {**self.config[key], "n_jobs": settings.threads}

    def state(self, shard: int, level: str):
        """The ``EnsembleState`` of training shard ``shard`` at ``level`` (None when that shard had no series)."""
        from models.forecasting.stored import EnsembleState, empty_specs

        folder = self.folder / f"shard={shard}"
        if not (folder / "state.json").exists():
            return None
        meta = json.loads((folder / "state.json").read_text())[level]
        specs = folder / f"{level}_specs.parquet"
        return EnsembleState(weights=pd.read_parquet(folder / f"{level}_weights.parquet"),
                             calibration=pd.read_parquet(folder / f"{level}_calibration.parquet"), meta=meta,
                             specs=pd.read_parquet(specs) if self.has_specs and specs.exists() else empty_specs())


    def combined_state(self, level: str):
        """All training shards' weights at ``level`` as one ``EnsembleState`` (no calibration), or None."""
        from models.forecasting.stored import EnsembleState

        states = [st for k in range(self.n_shards) if (st := self.state(k, level)) is not None]
        if not states:
            return None
        return EnsembleState(weights=pd.concat([st.weights for st in states], ignore_index=True),
                             calibration=states[0].calibration.iloc[0:0], meta=states[0].meta)


def read_artifact(version: str, folder: Path) -> ScoringArtifact:
    """Read and check an artifact folder; ValueError says what is wrong."""
    config = read_artifact_config(version, folder, ARTIFACT_DIR, READABLE_FORMATS, {"ensemble", "ensemble_features"})
    return ScoringArtifact(version=str(version), folder=Path(folder), config=config)


def load_artifact(settings: Settings, model_name: str, version: str) -> ScoringArtifact:
    """Download (local store: copy) and read the scoring artifact of a registered version."""
    from pipelines.serving import version_artifact_dir

    return read_artifact(str(version), version_artifact_dir(settings, model_name, version, ARTIFACT_DIR))
