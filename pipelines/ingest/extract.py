"""Extract: source usage events → date-partitioned Parquet staging (``staging/events/date=YYYY-MM-DD``).

Incremental by logical date ``D``: the first run backfills every day from the first event to ``D``; later
runs re-read the last ``late_window_days`` days before ``D`` (late-arriving events) plus any day not yet
staged. Each partition is rewritten whole and atomically (temp file + rename), so re-runs give the same
files. Days are UTC days. Events after the end of ``D`` are never staged. ``staging_dir`` is a local folder or
an object-store location (``core.storage``, e.g. ``s3://bucket/prefix/staging``): the ``storage_uri`` setting.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy.engine import Engine

from core.contracts import event_arrow_schema
from core.storage import StoragePath, read_parquet, write_parquet

log = logging.getLogger(__name__)

EVENT_SCHEMA = event_arrow_schema()
_CHUNK_DAYS = 31

_COPY_SQL = """
copy (
    select event_time, workspace_id, user_id, agent_id, feature, credits::float8, status, count::int8
    from analytics.usage_events
    where event_time >= %(start)s and event_time < %(end)s
    order by event_time, event_key
) to stdout with (format csv, header true)
"""


@dataclass
class ExtractSummary:
    logical_date: date
    dates: list[date] = field(default_factory=list)
    rows: int = 0
    staging_dir: StoragePath | None = None

    @property
    def first(self) -> date | None:
        return self.dates[0] if self.dates else None

    def as_dict(self) -> dict:
        return {
            "logical_date": self.logical_date.isoformat(),
            "first_date": self.first.isoformat() if self.first else None,
            "n_dates": len(self.dates),
            "rows": self.rows,
            "staging_dir": str(self.staging_dir),
        }


def events_dir(staging_dir: StoragePath) -> StoragePath:
    return staging_dir / "events"


def partition_path(staging_dir: StoragePath, day: date) -> StoragePath:
    return events_dir(staging_dir) / f"date={day.isoformat()}" / "part-0.parquet"


def staged_dates(staging_dir: StoragePath) -> list[date]:
    """Days with a staged partition (one listing, also on an object store)."""
    return sorted(date.fromisoformat(p.parent.name[5:]) for p in events_dir(staging_dir).glob("date=*/part-0.parquet"))


def _source_first_date(engine: Engine) -> date | None:
    conn = engine.raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("select min(event_time) at time zone 'UTC' from analytics.usage_events")
            first = cur.fetchone()[0]
    finally:
        conn.close()
    return first.date() if first else None


def dates_to_extract(staged: list[date], source_first: date | None, logical_date: date, late_window_days: int,
                     backfill_days: int | None = None) -> list[date]:
    """The days to (re)write: backfill on the first run, else the late window plus any missing day.

    The backfill never reaches further back than ``backfill_days`` before ``logical_date`` (a stray event
    from 1970 must not make 20,000 daily partitions).
    """
    if source_first is None or source_first > logical_date:
        return []
    if backfill_days is not None:
        source_first = max(source_first, logical_date - timedelta(days=backfill_days - 1))
    everything = pd.date_range(source_first, logical_date, freq="D").date.tolist()
    window_start = logical_date - timedelta(days=late_window_days)
    have = set(staged)
    return [d for d in everything if d >= window_start or d not in have]


def _write_partition(staging_dir: StoragePath, day: date, table: pa.Table) -> None:
    write_parquet(table.cast(EVENT_SCHEMA), partition_path(staging_dir, day))


def _read_range(engine: Engine, start: date, end: date) -> pa.Table:
    conn = engine.raw_connection()
    try:
        with conn.cursor() as cur:
            buf = io.BytesIO()
            cur.execute("set time zone 'UTC'")  # timestamps print as ...+00, which pyarrow parses
            params = {
                "start": datetime.combine(start, time(), tzinfo=timezone.utc),
                "end": datetime.combine(end, time(), tzinfo=timezone.utc),
            }
            cur.copy_expert(cur.mogrify(_COPY_SQL, params).decode(), buf)
        conn.rollback()
    finally:
        conn.close()
    buf.seek(0)
    convert = pacsv.ConvertOptions(column_types=EVENT_SCHEMA, strings_can_be_null=True)
    return pacsv.read_csv(buf, convert_options=convert).select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)


def extract(engine: Engine, logical_date: date, staging_dir: StoragePath, late_window_days: int = 3,
            backfill_days: int | None = None) -> ExtractSummary:
    """Stage the days ``dates_to_extract`` picks, reading the source in month-sized chunks."""
    summary = ExtractSummary(logical_date=logical_date, staging_dir=staging_dir)
    days = dates_to_extract(staged_dates(staging_dir), _source_first_date(engine), logical_date, late_window_days,
                            backfill_days)
    summary.dates = days
    i = 0
    while i < len(days):
        # contiguous chunk of at most _CHUNK_DAYS days
        j = i
        while j + 1 < len(days) and (days[j + 1] - days[j]).days == 1 and j + 1 - i < _CHUNK_DAYS:
            j += 1
        table = _read_range(engine, days[i], days[j] + timedelta(days=1))
        day_of = pc.cast(table["event_time"], pa.date32())
        for k in range(i, j + 1):
            part = table.filter(pc.equal(day_of, pa.scalar(days[k], pa.date32())))
            _write_partition(staging_dir, days[k], part)
            summary.rows += part.num_rows
        i = j + 1
    log.info("extract %s: %d days, %d rows", logical_date, len(days), summary.rows)
    return summary


def read_staged(staging_dir: StoragePath, day: date, columns: list[str] | None = None) -> pa.Table:
    """One staged partition cast to ``EVENT_SCHEMA`` (partitions of older versions may hold null-typed columns)."""
    schema = EVENT_SCHEMA if columns is None else pa.schema([EVENT_SCHEMA.field(c) for c in columns])
    return read_parquet(partition_path(staging_dir, day), columns=schema.names).cast(schema)


def read_staged_events(staging_dir: StoragePath, until: date, since: date | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """Staged events with ``since <= day <= until`` as one long frame (the source contract columns)."""
    frames = [
        read_staged(staging_dir, d, columns)
        for d in staged_dates(staging_dir)
        if d <= until and (since is None or d >= since)
    ]
    if not frames:
        return EVENT_SCHEMA.empty_table().to_pandas() if columns is None else EVENT_SCHEMA.empty_table().select(columns).to_pandas()
    return pa.concat_tables(frames).to_pandas()
