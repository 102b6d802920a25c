"""Feature store I/O: daily aggregate partitions, the Parquet offline store, ``analytics.ml_features``.

Layout under ``store_dir``:
- ``daily/<table>/month=YYYY-MM/part-0.parquet``: daily aggregates of one month of staged days (rebuilt
  when one of its staged partitions is newer), tables as in ``pipelines.features.DailyAggregates``;
- ``<feature_set>/v<version>/as_of=YYYY-MM-DD/part-0.parquet``: a feature set as of a date (offline store,
  for training: one file per snapshot).
The online copy, ``analytics.ml_features``, keeps the latest as-of row per entity, set and version.
"""
from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.contracts import TOTAL
from core.ids import entity_uuid
from pipelines.features.builders import (
    DailyAggregates,
    build_agent_features,
    build_user_features,
    build_workspace_features,
    daily_aggregates,
)
from pipelines.features.sets import (
    AGENT_DAILY,
    USER_BEHAVIOUR,
    WORKSPACE_DAILY,
    FeatureSet,
)
from pipelines.ingest.extract import EVENT_SCHEMA, partition_path, read_staged, staged_dates

log = logging.getLogger(__name__)

DAILY_TABLES = ("workspace_feature", "workspace_total", "user_feature", "agent")
_DAY, _STR, _INT, _FLOAT = pa.timestamp("us"), pa.string(), pa.int64(), pa.float64()
# Every partition is written with these schemas, whatever it holds (a month without agents still has a typed
# agent_id column), and read back cast to them, so files written by older versions (null-typed columns)
# concatenate with new ones.
DAILY_SCHEMAS: dict[str, pa.Schema] = {
    "workspace_feature": pa.schema([("workspace_id", _STR), ("day", _DAY), ("feature", _STR), ("credits", _FLOAT),
                                    ("calls", _INT), ("errors", _INT), ("active_users", _INT)]),
    "workspace_total": pa.schema([("workspace_id", _STR), ("day", _DAY), ("credits", _FLOAT), ("calls", _INT),
                                  ("errors", _INT), ("active_users", _INT)]),
    "user_feature": pa.schema([("workspace_id", _STR), ("user_id", _STR), ("day", _DAY), ("feature", _STR),
                               ("credits", _FLOAT), ("calls", _INT), ("errors", _INT)]),
    "agent": pa.schema([("workspace_id", _STR), ("agent_id", _STR), ("day", _DAY), ("calls", _INT),
                        ("errors", _INT), ("credits", _FLOAT)]),
}


def daily_table(name: str, frame: pd.DataFrame) -> pa.Table:
    """A daily-aggregate frame as an Arrow table with its declared schema."""
    schema = DAILY_SCHEMAS[name]
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def read_daily(path: Path, name: str) -> pa.Table:
    """One daily-aggregate partition, cast to the declared schema (older files may hold null-typed columns)."""
    schema = DAILY_SCHEMAS[name]
    return pq.read_table(path).select(schema.names).cast(schema)


def _atomic_write(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, target)


def daily_path(store_dir: Path, table: str, month: str) -> Path:
    return store_dir / "daily" / table / f"month={month}" / "part-0.parquet"


def _month(d: date) -> str:
    return d.strftime("%Y-%m")


def stale_months(staging_dir: Path, store_dir: Path) -> dict[str, list[date]]:
    """Months with a staged day newer than the month's aggregates (or none yet), with their staged days."""
    by_month: dict[str, list[date]] = {}
    for d in staged_dates(staging_dir):
        by_month.setdefault(_month(d), []).append(d)
    out = {}
    for month, days in by_month.items():
        marker = daily_path(store_dir, DAILY_TABLES[-1], month)
        built = marker.stat().st_mtime_ns if marker.exists() else -1
        if any(partition_path(staging_dir, d).stat().st_mtime_ns > built for d in days):
            out[month] = days
    return out


def refresh_daily_aggregates(staging_dir: Path, store_dir: Path) -> list[date]:
    """(Re)build the monthly daily-aggregate partitions of stale months; returns the days rebuilt."""
    rebuilt: list[date] = []
    for month, days in sorted(stale_months(staging_dir, store_dir).items()):
        events = pa.concat_tables([read_staged(staging_dir, d) for d in days]).to_pandas()
        tables = daily_aggregates(events).tables()
        for name in DAILY_TABLES:  # "agent" last: its file marks the month as built
            _atomic_write(daily_table(name, tables[name]), daily_path(store_dir, name, month))
        rebuilt.extend(days)
    return rebuilt


def load_daily_aggregates(store_dir: Path, until: date, since: date | None = None) -> DailyAggregates:
    """The daily aggregates of days ``since..until`` from the store."""
    lo = pd.Timestamp(since) if since else None
    tables = {}
    for name in DAILY_TABLES:
        files = sorted((store_dir / "daily" / name).glob("month=*/part-0.parquet"))
        keep = [f for f in files if f.parent.name[6:] <= _month(until) and (since is None or f.parent.name[6:] >= _month(since))]
        if not keep:
            tables[name] = getattr(daily_aggregates(EVENT_SCHEMA.empty_table().to_pandas()), name)
            continue
        df = pa.concat_tables([read_daily(f, name) for f in keep]).to_pandas()
        mask = df["day"] <= pd.Timestamp(until)
        if lo is not None:
            mask &= df["day"] >= lo
        tables[name] = df[mask].reset_index(drop=True)
    return DailyAggregates(**tables)


def offline_path(store_dir: Path, fs: FeatureSet, as_of: date) -> Path:
    return store_dir / fs.name / f"v{fs.version}" / f"as_of={as_of.isoformat()}" / "part-0.parquet"


def write_offline(store_dir: Path, fs: FeatureSet, as_of: date, frame: pd.DataFrame) -> Path:
    path = offline_path(store_dir, fs, as_of)
    _atomic_write(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def read_offline(store_dir: Path, fs: FeatureSet, as_of: date) -> pd.DataFrame | None:
    path = offline_path(store_dir, fs, as_of)
    return pq.read_table(path).to_pandas() if path.exists() else None


_UPSERT_FEATURES = """
insert into analytics.ml_features (entity_type, entity_id, feature_set, features, computed_at, version, as_of_date)
select entity_type, entity_id, feature_set, features, computed_at, version, as_of_date from stage_features
on conflict (entity_type, entity_id, feature_set, version) do update set
    features = excluded.features, computed_at = excluded.computed_at, as_of_date = excluded.as_of_date
where analytics.ml_features.as_of_date <= excluded.as_of_date
"""


def _entity_column(fs: FeatureSet) -> str:
    return {"workspace": "workspace_id", "user": "user_id", "agent": "agent_id"}[fs.entity]


def publish_online(conn: sa.Connection, fs: FeatureSet, as_of: date, frame: pd.DataFrame) -> int:
    """Upsert the latest features per entity into ``analytics.ml_features`` (never regresses to older dates)."""
    if frame.empty:
        return 0
    col = _entity_column(fs)
    computed_at = datetime.combine(as_of + timedelta(days=1), time())  # data cutoff, not wall clock
    payload = frame[["workspace_id", *([col] if col != "workspace_id" else []), *fs.columns]]
    records = payload.to_dict("records")
    stage = pd.DataFrame(
        {
            "entity_type": fs.entity,
            "entity_id": [str(entity_uuid(fs.entity, r[col])) for r in records],
            "feature_set": fs.name,
            "features": [json.dumps(r, default=float, sort_keys=True) for r in records],
            "computed_at": computed_at.isoformat(),
            "version": fs.version,
            "as_of_date": as_of.isoformat(),
        }
    ).drop_duplicates(["entity_id"], keep="last")
    conn.execute(sa.text(
        "create temp table stage_features (entity_type text, entity_id uuid, feature_set text, features jsonb,"
        " computed_at timestamp, version int, as_of_date date) on commit drop"
    ))
    buf = io.StringIO()
    stage.to_csv(buf, index=False, header=False)
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert("copy stage_features from stdin with (format csv)", buf)
    n = conn.execute(sa.text(_UPSERT_FEATURES)).rowcount
    conn.execute(sa.text("drop table stage_features"))
    return n


def replace_daily_metrics(conn: sa.Connection, agg: DailyAggregates, days: list[date]) -> int:
    """Swap ``analytics.workspace_daily_metrics`` rows of ``days`` for the freshly aggregated ones."""
    if not days:
        return 0
    day_set = pd.to_datetime(pd.Series(days))
    wf = agg.workspace_feature[agg.workspace_feature["day"].isin(day_set)].rename(columns={"feature": "dimension"})
    wt = agg.workspace_total[agg.workspace_total["day"].isin(day_set)].assign(dimension=TOTAL)
    rows = pd.concat([wt, wf], ignore_index=True)
    ids = {w: str(entity_uuid("workspace", w)) for w in rows["workspace_id"].unique()}
    out = pd.DataFrame(
        {
            "workspace_id": rows["workspace_id"].map(ids),
            "metric_date": rows["day"].dt.strftime("%Y-%m-%d"),
            "dimension": rows["dimension"],
            "credits": rows["credits"],
            "calls": rows["calls"].astype("int64"),
            "errors": rows["errors"].astype("int64"),
            "active_users": rows["active_users"].astype("int64"),
        }
    )
    conn.execute(
        sa.text("delete from analytics.workspace_daily_metrics where metric_date = any(:days)"),
        {"days": list(days)},
    )
    buf = io.StringIO()
    out.to_csv(buf, index=False, header=False)
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(
            "copy analytics.workspace_daily_metrics (workspace_id, metric_date, dimension, credits, calls, errors,"
            " active_users) from stdin with (format csv)",
            buf,
        )
    return len(out)


@dataclass
class FeatureSummary:
    as_of: date
    refreshed_days: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    offline_paths: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "refreshed_days": self.refreshed_days, "rows": self.rows,
                "offline_paths": self.offline_paths}


def build_feature_store(engine: Engine, staging_dir: Path, store_dir: Path, as_of: date,
                        holiday_country: str = "US") -> FeatureSummary:
    """Refresh daily aggregates, compute every feature set as of ``as_of``, write offline and online stores.

    The database writes (daily metrics of refreshed days, online features) are one transaction.
    """
    summary = FeatureSummary(as_of=as_of)
    refreshed = [d for d in refresh_daily_aggregates(staging_dir, store_dir) if d <= as_of]
    summary.refreshed_days = len(refreshed)
    agg = load_daily_aggregates(store_dir, as_of)
    frames = {
        WORKSPACE_DAILY: build_workspace_features(agg, as_of, holiday_country),
        USER_BEHAVIOUR: build_user_features(agg, as_of),
        AGENT_DAILY: build_agent_features(agg, as_of),
    }
    for fs, frame in frames.items():
        summary.offline_paths[fs.name] = str(write_offline(store_dir, fs, as_of, frame))
    with engine.begin() as conn:
        summary.rows["workspace_daily_metrics"] = replace_daily_metrics(conn, agg, refreshed)
        for fs, frame in frames.items():
            summary.rows[f"ml_features:{fs.name}"] = publish_online(conn, fs, as_of, frame)
    log.info("features as of %s: %s", as_of, summary.rows)
    return summary
