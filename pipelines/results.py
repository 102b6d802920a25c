"""Typed results that nightly steps return and pass on (through Airflow XCom as JSON).

They carry references only (paths under ``data_dir``, MLflow run ids, counts), never data.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from core.contracts import RunStatus

PublishTo = Literal["predictions", "churn_predictions"]


class ShardResult(BaseModel):
    """One shard of one prediction kind: what it wrote and where."""

    kind: str
    shard: int
    status: str = RunStatus.SUCCESS
    path: str | None = None
    n_series: int = 0
    n_rows: int = 0
    mlflow_run_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_ref(cls, kind: str, shard: int, ref: dict[str, Any]) -> ShardResult:
        """A shard's reference dict (``path``, ``n_series``, ``n_rows`` and the rest as details)."""
        return cls(kind=kind, shard=shard, path=ref["path"], n_series=ref["n_series"], n_rows=ref["n_rows"],
                   details=ref)


def shard_frames(refs: list[dict[str, Any]], name: str):
    """The shards' ``name`` Parquet files as one frame (pandas); empty when no shard wrote a non-empty one."""
    from pathlib import Path

    import pandas as pd

    frames = [pd.read_parquet(p) for p in (Path(r["path"]) / name for r in refs) if p.exists()]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class KindResult(BaseModel):
    """A prediction kind's outcome for a date: the prediction set to publish, or why there is none."""

    kind: str
    status: str
    reason: str | None = None
    publish_to: PublishTo | None = None
    prediction_type: str | None = None
    frame_path: str | None = None
    # further sets published with it, in the same transaction: ``pipelines.publish.EXTRA_SETS`` name -> frame path
    extra_sets: dict[str, str] = Field(default_factory=dict)
    model_version: str | None = None
    mlflow_run_id: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def publishable(self) -> bool:
        return self.status == RunStatus.SUCCESS and self.frame_path is not None


class PublishResult(BaseModel):
    """What publishing one kind's prediction set changed."""

    kind: str
    status: str
    rows: int = 0
    changed: int = 0
    deleted_stale: int = 0
    reason: str | None = None
    extra: dict[str, dict[str, int]] = Field(default_factory=dict)  # per extra set (``KindResult.extra_sets``)
