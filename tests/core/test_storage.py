"""Staging and the offline feature store on an S3-compatible server (moto in server mode, on loopback, started
here), against the same steps on a local folder."""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from core.settings import Settings
from core.storage import (
    RemotePath,
    copy_tree,
    file_mtimes,
    iter_parquet,
    parquet_rows,
    read_frame,
    read_parquet,
    storage_root,
    write_frame,
    write_parquet,
)
from pipelines.features.sets import FEATURE_SETS
from pipelines.features.store import load_daily_aggregates, read_offline
from pipelines.ingest.extract import partition_path, read_staged_events, staged_dates
from pipelines.ingest.load import load_events
from pipelines.nightly import extract_step, features_step, validate_features_step, validate_raw_step
from tests.conftest import S3_BUCKET, make_events

END = date(2026, 3, 31)
NOW = datetime(2026, 4, 2, tzinfo=timezone.utc)
BUCKET = S3_BUCKET


@pytest.fixture(autouse=True)
def aws_env(s3_env):  # credentials and the bucket on moto's server (tests/conftest.py)
    return s3_env


def test_storage_root_and_remote_path_operations(s3_endpoint, tmp_path: Path):
    assert storage_root(tmp_path) == tmp_path and storage_root(f"file://{tmp_path}") == tmp_path
    with pytest.raises(ValueError, match="unsupported storage scheme 'gs'"):
        storage_root("gs://bucket/x")
    with pytest.raises(ValueError, match="without a bucket"):
        storage_root("s3://")
    root = storage_root(f"s3://{BUCKET}/unit/", s3_endpoint)
    assert isinstance(root, RemotePath) and str(root / "a" / "b.parquet") == f"s3://{BUCKET}/unit/a/b.parquet"
    target = root / "x" / "month=2026-01" / "part-0.parquet"
    assert target.parent.name == "month=2026-01" and not target.exists()
    table = pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]})
    write_parquet(table, target)
    assert target.exists() and read_parquet(target).equals(table) and parquet_rows(target) == 3
    assert read_parquet(target, columns=["b"]).column_names == ["b"]
    import pyarrow.compute as pc

    chunks = list(iter_parquet(target, pc.field("a") != 2, batch_rows=1))  # filtered, in the bucket too
    assert [c.to_pydict() for c in chunks] == [{"a": [1], "b": ["x"]}, {"a": [3], "b": ["z"]}]
    listed = file_mtimes(root / "x", "month=*/part-0.parquet")
    assert list(listed) == [target] and listed[target] > 0
    assert list((root / "x").glob("month=*/part-0.parquet")) == [target]
    target.unlink()
    assert not target.exists()


def test_copy_tree_and_frames_between_disk_and_bucket(s3_endpoint, tmp_path: Path):
    root = storage_root(f"s3://{BUCKET}/copy", s3_endpoint)
    src = tmp_path / "shard=1"
    (src / "state").mkdir(parents=True)
    frame = pd.DataFrame({"unique_id": ["a", "b"], "y": [1.5, None]}, index=pd.Index([3, 7], name="row"))
    frame.to_parquet(src / "forecast.parquet")
    (src / "state" / "meta.json").write_text('{"v": 1}')
    sibling = root / "shard=10" / "forecast.parquet"  # a prefix that starts like the target's
    write_frame(frame, sibling)
    write_frame(frame, root / "shard=1" / "stale.parquet")  # left by an earlier copy: must go

    assert copy_tree(src, root / "shard=1") == 2
    assert root.fs.find(f"{BUCKET}/copy/shard=1") == [
        f"{BUCKET}/copy/shard=1/forecast.parquet", f"{BUCKET}/copy/shard=1/state/meta.json"]
    assert sibling.exists()
    pd.testing.assert_frame_equal(read_frame(root / "shard=1" / "forecast.parquet"), frame)  # index kept too

    back = tmp_path / "elsewhere" / "shard=1"
    (back / "old.txt").parent.mkdir(parents=True)
    (back / "old.txt").write_text("x")
    assert copy_tree(root / "shard=1", back) == 2
    assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*") if p.is_file()) == [
        "forecast.parquet", "state/meta.json"]
    assert (back / "state" / "meta.json").read_text() == '{"v": 1}'
    pd.testing.assert_frame_equal(pd.read_parquet(back / "forecast.parquet"), frame)
    # a single file both ways, and a local-to-local copy
    assert copy_tree(src / "forecast.parquet", root / "one.parquet") == 1 and (root / "one.parquet").exists()
    assert copy_tree(root / "one.parquet", tmp_path / "one.parquet") == 1
    assert copy_tree(src, tmp_path / "local-copy") == 2 and (tmp_path / "local-copy" / "state" / "meta.json").exists()


def _frames(settings: Settings) -> dict[str, pd.DataFrame]:
    return {name: read_offline(settings.offline_store_dir, fs, END) for name, fs in FEATURE_SETS.items()}


def test_nightly_staging_and_feature_store_round_trip_through_s3(clean_db, db_url, s3_endpoint, tmp_path: Path):
    events = make_events(2, 40)
    events.to_csv(tmp_path / "e.csv", index=False)
    load_events(clean_db, tmp_path / "e.csv", tmp_path / "rejects", now=NOW)
    local = Settings(database_url=db_url, data_dir=tmp_path / "local")
    remote = Settings(database_url=db_url, data_dir=tmp_path / "remote", storage_uri=f"s3://{BUCKET}/night",
                      s3_endpoint_url=s3_endpoint)
    assert str(remote.staging_dir) == f"s3://{BUCKET}/night/staging"

    run = END.isoformat()
    staged = {name: extract_step(run, settings) for name, settings in (("local", local), ("remote", remote))}
    time.sleep(1.1)  # S3 keeps whole seconds: same-second files count as newer (core.storage.newer)
    outputs = {}
    for name, settings in (("local", local), ("remote", remote)):
        if name == "remote":  # the gates read the staged partitions and the offline store (footers too)
            validate_raw_step(run, settings)
        features = features_step(run, settings)
        if name == "remote":
            validate_features_step(run, settings)
        outputs[name] = (staged[name], features)
    (staged_l, feats_l), (staged_r, feats_r) = outputs["local"], outputs["remote"]
    assert staged_r["staging_dir"] == f"s3://{BUCKET}/night/staging"  # what XCom carries: a URI
    assert staged_r["rows"] == staged_l["rows"] == len(events) and staged_r["n_dates"] == 40
    assert all(p.startswith(f"s3://{BUCKET}/night/offline_store/") for p in feats_r["offline_paths"].values())
    assert feats_r["rows"] == feats_l["rows"] and feats_r["refreshed_days"] == 40
    assert not any((tmp_path / "remote").rglob("*.parquet"))  # nothing staged on the local disk

    # the staged partitions and the offline store hold the same data as the local ones
    assert staged_dates(remote.staging_dir) == staged_dates(local.staging_dir)
    pd.testing.assert_frame_equal(read_staged_events(remote.staging_dir, END),
                                  read_staged_events(local.staging_dir, END))
    day = END - timedelta(days=10)
    assert read_parquet(partition_path(remote.staging_dir, day)).equals(
        read_parquet(partition_path(local.staging_dir, day)))
    local_frames, remote_frames = _frames(local), _frames(remote)
    for name in FEATURE_SETS:
        pd.testing.assert_frame_equal(remote_frames[name], local_frames[name], check_like=False)
    agg_r = load_daily_aggregates(remote.offline_store_dir, END)
    agg_l = load_daily_aggregates(local.offline_store_dir, END)
    pd.testing.assert_frame_equal(agg_r.workspace_total, agg_l.workspace_total)

    # a second night on the object store: the late window is re-staged, the month holding it rebuilt
    assert extract_step(run, remote)["n_dates"] == 4
    assert features_step(run, remote)["refreshed_days"] == 31
    for name, frame in _frames(remote).items():
        pd.testing.assert_frame_equal(frame, local_frames[name])


def test_concat_parquet_unifies_parts_and_skips_empty_ones(tmp_path):
    """Parts whose columns are all-null (an empty shard) take the others' types; a transform's output is written;
    sources that end up empty add nothing, also when every source is empty (the file still has the columns)."""
    import pyarrow as pa

    from core.storage import concat_parquet, write_parquet

    empty = pa.Table.from_pandas(pd.DataFrame(columns=["workspace_id", "x"]), preserve_index=False)
    full = pa.Table.from_pandas(pd.DataFrame({"workspace_id": ["a", "b"], "x": [1.5, 2.5]}), preserve_index=False)
    for name, t in (("p0", empty), ("p1", full), ("p2", empty)):
        write_parquet(t, tmp_path / f"{name}.parquet")
    def doubled(t: pa.Table) -> pa.Table:  # as the user merge rewrites p_alive: a float column, also on empty parts
        return t.set_column(1, "x", pa.array([2 * v for v in t.column("x").to_pylist()], pa.float64()))

    n = concat_parquet([tmp_path / f"p{i}.parquet" for i in range(3)], tmp_path / "out.parquet", transform=doubled)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert n == 2 and out.to_dict("list") == {"workspace_id": ["a", "b"], "x": [3.0, 5.0]}
    assert concat_parquet([tmp_path / "p0.parquet", tmp_path / "p2.parquet"], tmp_path / "none.parquet",
                          transform=doubled) == 0
    assert list(pd.read_parquet(tmp_path / "none.parquet").columns) == ["workspace_id", "x"]
