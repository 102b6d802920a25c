"""The prediction kinds the nightly run iterates over, and the interface each one implements.

A kind lives in its own folder under ``pipelines/`` and exposes ``KIND``, an object with this interface.
Adding a kind means adding its folder and one line in ``KINDS``, plus its reader, schema and router in
the API. This module stays light (no pandas, no models): the DAG file imports it at parse time.
"""
from __future__ import annotations

import importlib
from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from core.settings import Settings
    from pipelines.results import KindResult, ShardResult

# name -> module exposing ``KIND``; the order is the order of the nightly run
KINDS: dict[str, str] = {
    "consumption": "pipelines.consumption.kind",
    "churn": "pipelines.churn.kind",
    "growth": "pipelines.growth.kind",
    "peak_usage": "pipelines.peak_usage.kind",
    "agent_errors": "pipelines.agent_errors.kind",
}


class PredictionKind(Protocol):
    name: str
    feature_sets: tuple[str, ...]  # feature-set names (``pipelines.features.sets``) it reads

    def shards(self, settings: Settings) -> list[int]:
        """Independent units of work (e.g. workspace shards) the DAG maps ``run_shard`` over."""

    def run_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> ShardResult:
        """Train, backtest and predict one shard; outputs go to files, the result references them."""

    def finalize(self, settings: Settings, engine: Engine, run_date: date, shards: list[ShardResult]) -> KindResult:
        """Merge the shards, track the run in MLflow, register and promote; say what to publish."""


class RetrainableKind(PredictionKind, Protocol):
    """A kind whose training is split from nightly scoring (``pipelines.retrain``, ``pipelines.serving``).

    Its nightly ``run_shard`` scores with the stored serving version (and the challenger for the A/B arm), and
    trains inline only when there is no usable version (``finalize`` then records a ``no-champion`` retrain).
    """

    def train_shards(self, settings: Settings) -> list[int]:
        """Units of training work the retrain DAG maps ``train_shard`` over."""

    def train_shard(self, settings: Settings, engine: Engine, run_date: date, shard: int) -> dict:
        """Train one unit on data through ``run_date``; a JSON-ready reference (``n_rows`` > 0 when it trained,
        ``seconds``, ``n_workspaces``)."""

    def finalize_training(self, settings: Settings, engine: Engine, run_date: date, refs: list[dict]) -> KindResult:
        """Merge trained units, track the run with its scoring artifact in MLflow and register the version with
        its decision (``details['promotion']``); publishes nothing."""


def kind_names() -> list[str]:
    return list(KINDS)


def select_kinds(requested: str | list[str] | None) -> list[str]:
    """Kinds to run, in the run's order: all by default, else a comma-separated string or a list of names."""
    if requested is None or requested == "" or requested == []:
        return kind_names()
    names = [k.strip() for k in requested.split(",")] if isinstance(requested, str) else list(requested)
    unknown = sorted(set(names) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown prediction kind(s) {unknown}; choose from {kind_names()}")
    return [k for k in KINDS if k in names]


def get_kind(name: str) -> PredictionKind:
    if name not in KINDS:
        raise ValueError(f"unknown prediction kind {name!r}; choose from {kind_names()}")
    return importlib.import_module(KINDS[name]).KIND
