import pandas as pd

from core.shards import in_shard, shard_of


def test_shard_mask_on_an_empty_frame_keeps_its_columns():
    empty = pd.DataFrame({"workspace_id": pd.Series(dtype=object), "hour": pd.Series(dtype="datetime64[ns]")})
    kept = empty[in_shard(empty["workspace_id"], 0, 4)]
    assert list(kept.columns) == ["workspace_id", "hour"] and kept.empty


def test_shard_mask_agrees_with_shard_of():
    ids = pd.Series([f"ws-{i}" for i in range(40)])
    for shard in range(4):
        mask = in_shard(ids, shard, 4)
        assert mask.dtype == bool and list(ids[mask]) == [w for w in ids if shard_of(w, 4) == shard]
