"""Object storage by URI: a local folder, or ``s3://bucket/prefix`` on any S3-compatible server.

``storage_root(uri)`` gives a :class:`pathlib.Path` for a local folder (behaviour unchanged) and a
:class:`RemotePath` for ``s3://`` (fsspec/s3fs for listing, existence and modification times; pyarrow
through ``pyarrow.fs`` for Parquet). Both support the few path operations the stores use (``/``,
``parent``, ``name``, ``exists()``, ``stat().st_mtime_ns``, ``glob``), and the Parquet helpers below take
either, so a store's code is the same for both. ``str()`` of a remote path is its URI: what steps pass
between machines (XCom) instead of local paths. ``read_frame``/``write_frame`` read and write a pandas frame at
either; ``copy_tree`` copies a file or folder between the local disk and a bucket, replacing the target (how the
prediction kinds' shard outputs are shared: ``pipelines.results``).

The S3 endpoint and credentials come from the standard variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``) and the endpoint given to :func:`storage_root`
(``PAE_S3_ENDPOINT_URL`` through the settings; MinIO or moto on loopback). Listings are never cached:
another process may have written since.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Callable, Iterator, Union

if TYPE_CHECKING:  # pyarrow is imported when a file is read or written: settings import this module, DAG files
    import pyarrow as pa  # parse without pyarrow

REMOTE_SCHEMES = ("s3",)


@lru_cache(maxsize=8)
def _filesystems(scheme: str, endpoint_url: str | None):
    """(fsspec filesystem, pyarrow filesystem) for a scheme and endpoint, one pair per process."""
    import fsspec
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    options: dict = {"use_listings_cache": False, "skip_instance_cache": True}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    fs = fsspec.filesystem(scheme, **options)
    return fs, PyFileSystem(FSSpecHandler(fs))


@dataclass(frozen=True)
class RemoteStat:
    st_mtime_ns: int
    st_size: int


@dataclass(frozen=True, order=True)
class RemotePath:
    """A key (or prefix) in a bucket: ``scheme://bucket/key``, with the pathlib operations the stores use."""

    scheme: str
    key: str  # "bucket/prefix/...", no scheme, no trailing slash
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        if self.scheme not in REMOTE_SCHEMES:
            raise ValueError(f"unsupported storage scheme {self.scheme!r}: use a local path or "
                             f"{', '.join(s + '://bucket/prefix' for s in REMOTE_SCHEMES)}")
        if not self.key.strip("/"):
            raise ValueError(f"{self.scheme}:// URI without a bucket: use {self.scheme}://bucket/prefix")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.key}"

    def __truediv__(self, part: str) -> RemotePath:
        return RemotePath(self.scheme, f"{self.key}/{str(part).strip('/')}", self.endpoint_url)

    @property
    def fs(self):
        return _filesystems(self.scheme, self.endpoint_url)[0]

    @property
    def arrow_fs(self):
        return _filesystems(self.scheme, self.endpoint_url)[1]

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self.scheme, str(PurePosixPath(self.key).parent), self.endpoint_url)

    def with_suffix(self, suffix: str) -> RemotePath:
        return RemotePath(self.scheme, str(PurePosixPath(self.key).with_suffix(suffix)), self.endpoint_url)

    def exists(self) -> bool:
        return bool(self.fs.exists(self.key))

    def stat(self) -> RemoteStat:
        return _stat(self.fs.info(self.key))

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        for key in sorted(self.fs.glob(f"{self.key}/{pattern}")):
            yield RemotePath(self.scheme, key.rstrip("/"), self.endpoint_url)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: object stores have no folders."""

    def unlink(self, missing_ok: bool = False) -> None:
        if missing_ok and not self.exists():
            return
        self.fs.rm(self.key)


StoragePath = Union[Path, RemotePath]


def _stat(info: dict) -> RemoteStat:
    modified = info.get("LastModified") or info.get("mtime")
    ns = int(modified.timestamp() * 1e9) if modified is not None else 0
    return RemoteStat(st_mtime_ns=ns, st_size=int(info.get("size") or info.get("Size") or 0))


def storage_root(uri: str | Path, endpoint_url: str | None = None) -> StoragePath:
    """A local folder (``/path`` or ``file:///path``) as a Path, ``s3://bucket/prefix`` as a RemotePath."""
    text = str(uri)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    if "://" in text:
        scheme, _, key = text.partition("://")
        return RemotePath(scheme.lower(), key.rstrip("/"), endpoint_url)
    return Path(text)


def is_remote(path: StoragePath) -> bool:
    return isinstance(path, RemotePath)


def modified_ns(path: StoragePath) -> int:
    """Modification time in ns, -1 when missing."""
    return path.stat().st_mtime_ns if path.exists() else -1


def newer(a_ns: int, b_ns: int, remote: bool) -> bool:
    """True when a file modified at ``a_ns`` may be newer than one modified at ``b_ns``. Object stores keep
    whole seconds, so the same second counts as newer there (a rebuild too many, never one missed)."""
    return a_ns >= b_ns if remote and b_ns >= 0 else a_ns > b_ns


def read_parquet(path: StoragePath, columns: list[str] | None = None) -> pa.Table:
    import pyarrow.parquet as pq

    if isinstance(path, RemotePath):
        return pq.read_table(path.key, columns=columns, filesystem=path.arrow_fs)
    return pq.read_table(path, columns=columns)


def iter_parquet(path: StoragePath, filters=None, batch_rows: int = 200_000):
    """A Parquet file's rows (those matching ``filters``, a ``pyarrow.compute`` expression) as Arrow tables of at
    most ``batch_rows`` rows, read row group by row group: a large file is never in memory at once."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if isinstance(path, RemotePath):
        dataset = ds.dataset(path.key, format="parquet", filesystem=path.arrow_fs)
    else:
        dataset = ds.dataset(str(path), format="parquet")
    for batch in dataset.to_batches(filter=filters, batch_size=batch_rows):
        if batch.num_rows:
            yield pa.Table.from_batches([batch])


def parquet_metadata(path: StoragePath):
    """A Parquet file's footer (``pyarrow.parquet.FileMetaData``: rows, schema), without reading its data."""
    import pyarrow.parquet as pq

    if isinstance(path, RemotePath):
        with path.arrow_fs.open_input_file(path.key) as f:
            return pq.ParquetFile(f).metadata
    return pq.ParquetFile(path).metadata


def parquet_rows(path: StoragePath) -> int:
    """Rows of a Parquet file, from its footer."""
    return parquet_metadata(path).num_rows


def write_parquet(table: pa.Table, target: StoragePath, compression: str = "zstd") -> None:
    """Write atomically: a local file through a temporary file and a rename; an object in one upload
    (readers see the old object or the new one, never a part)."""
    import pyarrow.parquet as pq

    if isinstance(target, RemotePath):
        pq.write_table(table, target.key, compression=compression, filesystem=target.arrow_fs)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    pq.write_table(table, tmp, compression=compression)
    os.replace(tmp, target)


def concat_parquet(sources: list[StoragePath], target: StoragePath, compression: str = "zstd",
                   transform: Callable | None = None, drop: tuple[str, ...] = ()) -> int:
    """Stream Parquet files into one at ``target``, one source in memory at a time, atomically like
    ``write_parquet``; returns the rows written. Schemas are unified (a column that is all null in one source takes
    the others' type; a column a source lacks is null there); the pandas metadata is the first non-empty source's.
    The output has the sources' columns less ``drop``; ``transform`` maps each source's Arrow table before it is
    written (e.g. rewrites a column), and a table it leaves empty adds nothing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    footers = [(m.schema.to_arrow_schema(), m.num_rows) for m in map(parquet_metadata, sources)]
    if not footers:
        raise ValueError(f"nothing to concatenate into {target}")
    schema = pa.unify_schemas([f[0] for f in footers], promote_options="permissive")
    schema = pa.schema([f for f in schema if f.name not in drop]).with_metadata(
        next((f[0] for f in footers if f[1]), footers[0][0]).metadata)
    if isinstance(target, RemotePath):
        sink, tmp = target.arrow_fs.open_output_stream(target.key), None
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        sink = str(tmp)
    rows = 0
    try:
        with pq.ParquetWriter(sink, schema, compression=compression) as writer:
            for src in sources:
                t = read_parquet(src)
                t = transform(t) if transform is not None else t
                if not t.num_rows:  # nothing to add (and its columns may be typed where every source had nulls)
                    continue
                cols = [t.column(n).cast(schema.field(n).type) if n in t.column_names
                        else pa.nulls(t.num_rows, schema.field(n).type) for n in schema.names]
                writer.write_table(pa.Table.from_arrays(cols, schema=schema))
                rows += t.num_rows
    finally:
        if tmp is None:
            sink.close()
    if tmp is not None:
        os.replace(tmp, target)
    return rows


def file_mtimes(root: StoragePath, pattern: str) -> dict[StoragePath, int]:
    """Files under ``root`` matching ``pattern`` with their modification times (ns), in one listing when
    remote (a HEAD per file would cost a round trip each)."""
    if isinstance(root, RemotePath):
        found = root.fs.glob(f"{root.key}/{pattern}", detail=True)
        return {RemotePath(root.scheme, k, root.endpoint_url): _stat(info).st_mtime_ns
                for k, info in sorted(found.items()) if info.get("type", "file") == "file"}
    return {p: p.stat().st_mtime_ns for p in sorted(root.glob(pattern)) if p.is_file()}


def read_frame(path: StoragePath, columns: list[str] | None = None):
    """A Parquet file as a pandas frame (``pd.read_parquet`` on a local path, through ``pyarrow.fs`` remotely)."""
    import pandas as pd

    if isinstance(path, RemotePath):
        return pd.read_parquet(path.key, columns=columns, filesystem=path.arrow_fs)
    return pd.read_parquet(path, columns=columns)


def write_frame(frame, target: StoragePath) -> None:
    """``frame.to_parquet`` at a local path (folders made) or as one object."""
    if isinstance(target, RemotePath):
        frame.to_parquet(target.key, filesystem=target.arrow_fs)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target)


def _files(src: StoragePath) -> list[tuple[str, str]]:
    """(file, path relative to ``src``) for every file under folder ``src``, or ``[(src, "")]`` for a file."""
    if isinstance(src, RemotePath):
        keys = sorted(src.fs.find(src.key))
        if keys == [src.key]:
            return [(src.key, "")]
        return [(k, k[len(src.key) + 1:]) for k in keys if k.startswith(src.key + "/")]
    if src.is_file():
        return [(str(src), "")]
    return [(str(p), p.relative_to(src).as_posix()) for p in sorted(src.rglob("*")) if p.is_file()]


def remove_tree(target: StoragePath) -> None:
    """Delete a file, or a folder (every key under it) with what it holds; nothing if it is not there."""
    if isinstance(target, RemotePath):
        keys = [key for key, _ in _files(target)]  # the key itself or the keys under "key/", never a sibling
        if keys:
            target.fs.rm(keys)
    elif target.is_dir():
        import shutil

        shutil.rmtree(target)
    elif target.exists():
        target.unlink()


def copy_tree(src: StoragePath, dst: StoragePath) -> int:
    """Copy a file or folder ``src`` to ``dst`` (local or remote, either way round), replacing what ``dst`` held
    (files left from an earlier copy would otherwise look like this run's); returns the files copied."""
    if isinstance(src, RemotePath) and isinstance(dst, RemotePath):
        raise ValueError(f"copying between object stores is not supported ({src} -> {dst})")
    files = _files(src)
    remove_tree(dst)
    if not files:  # an empty (or missing) folder: nothing left at dst either
        return 0
    targets = [f"{dst.key}/{rel}" if rel else dst.key for _, rel in files] if isinstance(dst, RemotePath) \
        else [str(dst / rel) if rel else str(dst) for _, rel in files]
    sources = [f for f, _ in files]
    if isinstance(dst, RemotePath):
        dst.fs.put(sources, targets)
    elif isinstance(src, RemotePath):
        for t in targets:
            Path(t).parent.mkdir(parents=True, exist_ok=True)
        src.fs.get(sources, targets)
    else:
        import shutil

        for s, t in zip(sources, targets):
            Path(t).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, t)
    return len(files)
