"""Typed results that nightly steps return and pass on (through Airflow XCom as JSON).

They carry references only (paths, MLflow run ids, counts), never data.

Shared outputs (issue 14). A kind writes its shard folders and merged frames under ``settings.data_dir`` on the
disk of the process that runs it, and reads them there; it never knows where they are shared. With
``storage_uri`` set, the nightly and retrain steps copy a shard's output to ``settings.runs_root`` (the same
relative path, e.g. ``s3://bucket/prefix/runs/forecasts/as_of=D/shard=0``) before returning it
(``share_shard``, ``share_ref``: its ``path`` and every other top-level entry naming a file or folder under
``data_dir``, e.g. churn's ``scores_path``), so its reference names shared copies only; the merge step copies
them back to its own ``data_dir`` first (``localize_shards``, ``localize_refs``) and shares the frames it
hands to the publisher (``share_kind``), which reads them by URI. Unset (the default), nothing is copied and
every path stays the local one it is today.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from core.contracts import RunStatus
from core.storage import concat_parquet, copy_tree

if TYPE_CHECKING:
    from core.settings import Settings

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


def merge_shard_files(refs: list[dict[str, Any]], name: str, target: Path) -> int:
    """The shards' ``name`` Parquet files streamed into one at ``target``, one shard in memory at a time (so a
    merge's memory follows the largest shard, not the platform); returns its rows. No shard file: an empty frame."""
    sources = [p for p in (Path(r["path"]) / name for r in refs) if p.exists()]
    if sources:
        return concat_parquet(sources, target)
    import pandas as pd

    target.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame().to_parquet(target)
    return 0


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


# --- shared outputs: a local folder or file under data_dir <-> the same relative path under runs_root ---------

def share(path: str | None, settings: Settings) -> str | None:
    """Copy a file or folder written under ``data_dir`` to ``runs_root``; returns the shared address (``path``
    itself when ``storage_uri`` is unset or it is shared already)."""
    if path is None or not settings.storage_uri or _under(path, str(settings.runs_root)) is not None:
        return path
    data_dir = Path(settings.data_dir).resolve()
    try:
        rel = Path(path).resolve().relative_to(data_dir)
    except ValueError:
        raise ValueError(f"{path} is not under data_dir ({data_dir}): outputs shared through storage_uri "
                         f"({settings.runs_root}) must be written under data_dir") from None
    target = settings.runs_root / rel.as_posix()
    copy_tree(Path(path), target)
    return str(target)


def localize(path: str | None, settings: Settings) -> str | None:
    """Copy a shared file or folder (under ``runs_root``) to the same relative path under this process's
    ``data_dir``, replacing what was there; returns the local path (``path`` itself when not shared)."""
    if path is None or not settings.storage_uri:
        return path
    rel = _under(path, str(settings.runs_root))
    if rel is None:
        return path
    local = Path(settings.data_dir) / rel
    copy_tree(settings.storage_path(path), local)
    return str(local)


def _under(path: str, root: str) -> str | None:
    root = root.rstrip("/")
    return path[len(root) + 1:] if path.startswith(root + "/") else None


def _share_values(values: dict[str, Any], settings: Settings, done: dict[str, str | None]) -> dict[str, Any]:
    """``values`` with each top-level string naming a file or folder under ``data_dir`` shared (once each)."""
    data_dir = str(settings.data_dir)
    out = {}
    for k, v in values.items():
        if isinstance(v, str) and (v in done or (_under(v, data_dir) is not None and Path(v).exists())):
            if v not in done:
                done[v] = share(v, settings)
            v = done[v]
        out[k] = v
    return out


def _localize_values(values: dict[str, Any], settings: Settings, done: dict[str, str | None]) -> dict[str, Any]:
    """``values`` with each top-level string naming a shared file or folder localized (once each)."""
    runs_root = str(settings.runs_root)
    out = {}
    for k, v in values.items():
        if isinstance(v, str) and _under(v, runs_root) is not None:
            if v not in done:
                done[v] = localize(v, settings)
            v = done[v]
        out[k] = v
    return out


def json_ready(ref: dict[str, Any]) -> dict[str, Any]:
    """``ref`` as Airflow's XCom can carry it: JSON types only, NaN and infinities as None (as a ``ShardResult``'s
    JSON has them); a retrain shard of agent errors on a platform without incidents returned NaN figures, which the
    task runner refused ("Out of range float values are not JSON compliant") and the retrain failed."""
    import json

    from pydantic_core import to_json

    def plain(value: Any) -> Any:  # numpy scalars and arrays
        if hasattr(value, "tolist"):
            return value.tolist()
        raise TypeError(f"not JSON-ready: {type(value).__name__}")

    return json.loads(to_json(ref, inf_nan_mode="null", fallback=plain))


def share_ref(ref: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A shard reference with its ``path`` (and any other entry naming a file or folder under ``data_dir``,
    e.g. churn's ``scores_path``) shared."""
    if not settings.storage_uri:
        return ref
    return _share_values(ref, settings, {})


def localize_refs(refs: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """Shard references whose shared entries (``share_ref``) name local copies (``localize``)."""
    if not settings.storage_uri:
        return refs
    done: dict[str, str | None] = {}
    return [_localize_values(r, settings, done) for r in refs]


def share_shard(result: ShardResult, settings: Settings) -> ShardResult:
    if not settings.storage_uri:
        return result
    done: dict[str, str | None] = {}
    path = _share_values({"path": result.path}, settings, done)["path"]
    return result.model_copy(update={"path": path, "details": _share_values(result.details, settings, done)})


def localize_shards(results: list[ShardResult], settings: Settings) -> list[ShardResult]:
    if not settings.storage_uri:
        return results
    done: dict[str, str | None] = {}
    return [r.model_copy(update={"path": _localize_values({"path": r.path}, settings, done)["path"],
                                 "details": _localize_values(r.details, settings, done)}) for r in results]


def share_kind(result: KindResult, settings: Settings) -> KindResult:
    """A kind's result with the frames it hands to the publisher shared."""
    if not settings.storage_uri or (result.frame_path is None and not result.extra_sets):
        return result
    return result.model_copy(update={"frame_path": share(result.frame_path, settings),
                                     "extra_sets": {k: share(v, settings) for k, v in result.extra_sets.items()}})
