"""Hourly aggregates per workspace and the ``workspace_hourly`` feature set (peak usage).

Two layers, like the daily ones (``pipelines.features.builders``/``store``):
1. ``hourly_aggregates(events)``: staged events → one row per workspace and UTC hour with events: calls,
   credits, errors, distinct active users and distinct agents (concurrent agents in that hour). Stored per
   month under ``<store>/hourly/workspace_hour/month=YYYY-MM/part-0.parquet`` with a declared schema
   (:data:`HOURLY_SCHEMA`, written with it and read back cast to it), rebuilt when a staged day of the
   month is newer, and only for months within :data:`HOURLY_DAYS` of the as-of date (older hours are not
   needed: the peak models look at 12 weeks, the time-zone inference at 26).
2. ``hourly_series(table, as_of)``: zero-filled regular UTC hours per workspace (an hour without events is
   a zero, not a gap) up to the end of ``as_of``; ``build_hourly_features(table, as_of)``: the declared
   ``workspace_hourly`` features as of ``T`` from hours before ``T + 1 day`` only, with the workspace's time
   zone inferred from its daily rhythm (``models.peaks.timezones``).
"""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from core.shards import shard_rows
from core.storage import StoragePath, is_remote, modified_ns, newer, read_parquet, write_parquet
from pipelines.features.sets import WORKSPACE_HOURLY

HOURLY_DAYS = 182  # hours kept in the store (and read by the time-zone inference) before the as-of date
TABLE = "workspace_hour"
HOURLY_SCHEMA = pa.schema([("workspace_id", pa.string()), ("hour", pa.timestamp("us")), ("calls", pa.int64()),
                           ("credits", pa.float64()), ("errors", pa.int64()), ("active_users", pa.int64()),
                           ("active_agents", pa.int64())])
VALUE_COLUMNS = ("calls", "credits", "errors", "active_users", "active_agents")


def hourly_aggregates(events: pd.DataFrame) -> pd.DataFrame:
    """Contract events (UTC ``event_time``, ..., ``count``) → one row per workspace and UTC hour with events."""
    if events.empty:
        return HOURLY_SCHEMA.empty_table().to_pandas()
    ev = events.assign(
        hour=events["event_time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("h"),
        calls=events["count"].astype("int64"),
        errors=np.where(events["status"].to_numpy() == "error", events["count"].to_numpy(), 0),
    )
    keys = ["workspace_id", "hour"]
    out = ev.groupby(keys, sort=True, observed=True).agg(calls=("calls", "sum"), credits=("credits", "sum"),
                                                         errors=("errors", "sum"))
    out["active_users"] = ev[ev["user_id"].notna()].groupby(keys, observed=True)["user_id"].nunique()
    out["active_agents"] = ev[ev["agent_id"].notna()].groupby(keys, observed=True)["agent_id"].nunique()
    return out.fillna({"active_users": 0, "active_agents": 0}).astype(
        {"active_users": "int64", "active_agents": "int64", "errors": "int64"}).reset_index()


def hourly_path(store_dir: StoragePath, month: str) -> StoragePath:
    return store_dir / "hourly" / TABLE / f"month={month}" / "part-0.parquet"


def _write(frame: pd.DataFrame, target: StoragePath) -> None:
    write_parquet(pa.Table.from_pandas(frame[HOURLY_SCHEMA.names], schema=HOURLY_SCHEMA, preserve_index=False),
                  target)


def refresh_hourly_aggregates(staging_dir: StoragePath, store_dir: StoragePath, as_of: date,
                              days: int = HOURLY_DAYS) -> list[date]:
    """(Re)build the monthly hourly partitions of stale months within ``days`` of ``as_of``; returns the days."""
    from pipelines.features.store import staged_mtimes
    from pipelines.ingest.extract import read_staged

    since = as_of - timedelta(days=days)
    staged = staged_mtimes(staging_dir)
    by_month: dict[str, list[date]] = {}
    for d in sorted(staged):
        if since.replace(day=1) <= d <= as_of + timedelta(days=31):
            by_month.setdefault(d.strftime("%Y-%m"), []).append(d)
    rebuilt: list[date] = []
    for month, dates in sorted(by_month.items()):
        target = hourly_path(store_dir, month)
        built = modified_ns(target)
        if not any(newer(staged[d], built, is_remote(store_dir) or is_remote(staging_dir)) for d in dates):
            continue
        # one staged (UTC) day at a time: an hour never spans two days, so the rows are the month's
        hours = pd.concat([hourly_aggregates(read_staged(staging_dir, d).to_pandas()) for d in dates], ignore_index=True)
        _write(hours.sort_values(["workspace_id", "hour"], ignore_index=True), target)
        rebuilt.extend(dates)
    return rebuilt


def load_hourly_aggregates(store_dir: StoragePath, until: date, since: date,
                           shard: tuple[int, int] | None = None) -> pd.DataFrame:
    """Hourly rows of UTC days ``since..until`` from the store, cast to :data:`HOURLY_SCHEMA` (``shard``: ``(k, n)``,
    only the workspaces of shard ``k`` of ``n``)."""
    files = [hourly_path(store_dir, m) for m in pd.period_range(since, until, freq="M").strftime("%Y-%m")]
    files = [f for f in files if f.exists()]
    if not files:
        return HOURLY_SCHEMA.empty_table().to_pandas()
    # one month's full table in memory at a time
    tables = [shard_rows(read_parquet(f).select(HOURLY_SCHEMA.names).cast(HOURLY_SCHEMA), *(shard or (0, 1)))
              for f in files]
    df = pa.concat_tables(tables).to_pandas()
    lo, hi = pd.Timestamp(since), pd.Timestamp(until) + pd.Timedelta(days=1)
    return df[(df["hour"] >= lo) & (df["hour"] < hi)].reset_index(drop=True)


def hourly_series(table: pd.DataFrame, as_of: date, columns: tuple[str, ...] = ("calls", "credits"),
                  since: pd.Timestamp | None = None) -> pd.DataFrame:
    """Regular UTC hours ``(unique_id, ds, *columns)`` per workspace, from its first hour with events (or
    ``since``, whichever is later) to the last hour of ``as_of``; hours without events are zeros."""
    end = pd.Timestamp(as_of) + pd.Timedelta(hours=23)
    t = table[table["hour"] <= end]
    if since is not None:
        t = t[t["hour"] >= since]
    if t.empty:
        return pd.DataFrame({"unique_id": pd.Series(dtype=str), "ds": pd.Series(dtype="datetime64[ns]"),
                             **{c: pd.Series(dtype=float) for c in columns}})
    first = t.groupby("workspace_id")["hour"].min()
    n = ((end - first) / pd.Timedelta(hours=1)).astype("int64").to_numpy() + 1
    ids = np.repeat(first.index.to_numpy(), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    ds = np.repeat(first.to_numpy().astype("datetime64[h]"), n) + offsets.astype("timedelta64[h]")
    grid = pd.DataFrame({"unique_id": ids, "ds": ds.astype("datetime64[ns]")})
    vals = t.rename(columns={"workspace_id": "unique_id", "hour": "ds"})[["unique_id", "ds", *columns]]
    vals = vals.assign(ds=vals["ds"].astype("datetime64[ns]"))
    out = grid.merge(vals, on=["unique_id", "ds"], how="left")
    out[list(columns)] = out[list(columns)].fillna(0).astype(float)
    return out


def build_hourly_features(table: pd.DataFrame, as_of: date, declared_zones: dict[str, str] | None = None
                          ) -> pd.DataFrame:
    """``workspace_hourly`` features, one row per workspace with events in the :data:`HOURLY_DAYS` to ``as_of``.

    ``declared_zones`` (workspace id → IANA zone, e.g. from ``pae capacity set --time-zone``) wins over the
    inferred zone.
    """
    from models.peaks import infer_time_zones, utc_offset_hours
    from models.peaks.clock import wall_hours

    columns = ["workspace_id", *WORKSPACE_HOURLY.columns]
    since = pd.Timestamp(as_of) - pd.Timedelta(days=HOURLY_DAYS - 1)
    series = hourly_series(table, as_of, ("calls", "credits", "active_users", "active_agents"), since=since)
    if series.empty:
        return pd.DataFrame(columns=columns)
    end = pd.Timestamp(as_of) + pd.Timedelta(hours=23)
    span = int((end - since) / pd.Timedelta(hours=1)) + 1
    ids = np.sort(series["unique_id"].unique())
    row = pd.Index(ids).get_indexer(series["unique_id"])
    col = ((series["ds"] - since) / pd.Timedelta(hours=1)).astype("int64").to_numpy()
    mats = {}
    for c in ("calls", "credits", "active_users", "active_agents"):
        m = np.zeros((len(ids), span))
        m[row, col] = series[c].to_numpy()
        mats[c] = m
    first_col = pd.Series(col).groupby(row).min().reindex(range(len(ids))).to_numpy()
    history_hours = span - first_col
    # infer on the hours each workspace has (its first hour onwards), zeros before it are no evidence
    zones = infer_time_zones(mats["calls"], since)
    declared_zones = declared_zones or {}
    out = pd.DataFrame({"workspace_id": ids})
    out["time_zone"] = [declared_zones.get(w, z.time_zone) for w, z in zip(ids, zones)]
    out["time_zone_source"] = ["declared" if w in declared_zones else z.source for w, z in zip(ids, zones)]
    out["time_zone_score"] = [z.score for z in zones]
    out["utc_offset_hours"] = [utc_offset_hours(z, end) for z in out["time_zone"]]
    out["hourly_history_hours"] = history_hours.astype("int64")
    last = slice(span - 28 * 24, span)
    for c in ("calls", "credits"):
        out[f"{c}_hour_max_28"] = mats[c][:, last].max(axis=1)
        out[f"{c}_hour_mean_28"] = mats[c][:, last].mean(axis=1)
    out["active_users_hour_max_28"] = mats["active_users"][:, last].max(axis=1).astype("int64")
    out["active_agents_hour_max_28"] = mats["active_agents"][:, last].max(axis=1).astype("int64")
    out["zero_hour_share_28"] = (mats["calls"][:, last] == 0).mean(axis=1)
    by_hour_utc = mats["calls"][:, last].reshape(len(ids), 28, 24).sum(axis=1)
    out["peak_hour_utc_28"] = by_hour_utc.argmax(axis=1).astype("int64")
    utc_hours = (since + pd.Timedelta(hours=span - 28 * 24) + pd.to_timedelta(np.arange(28 * 24), unit="h")).to_numpy()
    local_peak = []
    for i, zone in enumerate(out["time_zone"]):
        local_hour = wall_hours(zone, utc_hours).astype("int64") % 24
        local_peak.append(int(np.bincount(local_hour, weights=mats["calls"][i, last], minlength=24).argmax()))
    out["peak_hour_local_28"] = np.asarray(local_peak, dtype="int64")
    return out[columns].reset_index(drop=True)
