"""Workspace shards: the stable hash every kind splits its workspaces by."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np


def shard_of(workspace_id: str, n_shards: int) -> int:
    """Stable workspace shard (md5 of the id, so every process and kind agrees)."""
    return int(hashlib.md5(workspace_id.encode()).hexdigest()[:8], 16) % n_shards


def in_shard(workspace_ids: Iterable, shard: int, n_shards: int) -> np.ndarray:
    """A boolean mask: which ids fall in ``shard``. Always a bool array, also for no ids (a ``Series.map`` over an
    empty frame gives an object Series, which pandas takes as a list of column names, not as a mask)."""
    ids = list(workspace_ids)
    return np.fromiter((shard_of(str(w), n_shards) == shard for w in ids), dtype=bool, count=len(ids))


def shard_members(column, shard: int, n_shards: int) -> list:
    """The distinct ids of an Arrow array or column that fall in ``shard`` (each id hashed once, not each row)."""
    import pyarrow.compute as pc

    ids = pc.unique(column).to_pylist()
    return [w for w, inside in zip(ids, in_shard(ids, shard, n_shards)) if inside and w is not None]


def shard_rows(table, shard: int, n_shards: int, column: str = "workspace_id"):
    """The rows of an Arrow table whose ``column`` (a workspace id) falls in ``shard``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if n_shards == 1:
        return table
    keep = shard_members(table.column(column), shard, n_shards)
    return table.filter(pc.is_in(table.column(column), value_set=pa.array(keep, type=table.schema.field(column).type)))
