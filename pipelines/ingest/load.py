"""Load a user's usage events (CSV or Parquet) into ``analytics.usage_events``.

Every row is validated against the source contract (DESIGN.md; ``validate.py``). Bad rows are never loaded:
they go to a reject report (CSV: source line, reason, raw values) and are counted in the summary. A file
that cannot be read stops a one-file load with a one-line message; in a folder it is skipped and listed in
``files_failed`` (a file missing contract columns still stops the whole load). The load is one transaction,
so a failure leaves nothing half-loaded. The idempotency key ``event_key`` is the md5 of the contract columns
plus the row's occurrence number among identical rows of the file (or of ``event_id`` when the file has
one), so loading the same file twice adds nothing; a row whose ``event_id`` is already loaded with different
content is rejected as a conflict.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.ids import entity_uuid
from core.progress import progress
from core.settings import get_settings
from pipelines.ingest.validate import (
    CONFLICT_LOADED,
    CSV_SUFFIXES,
    KEY_TEXT_MAX_BYTES,
    OPTIONAL_COLUMNS,
    PARQUET_SUFFIXES,
    REQUIRED_COLUMNS,
    STATUSES,
    ColumnLimits,
    EventFileError,
    EventSchemaError,
    TextLimit,
    read_events,
    read_events_file,
    reject_rows,
    validate_events,
)

log = logging.getLogger(__name__)

__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "STATUSES", "EventFileError", "EventSchemaError", "LoadSummary",
           "column_limits", "load_events", "read_events_file", "validate_events"]


@dataclass
class LoadSummary:
    source: str
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_inserted: int = 0
    rows_already_loaded: int = 0
    reject_report: Path | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    files_loaded: int = 0
    files_failed: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}: skipped, nothing loaded

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        d["reject_report"] = str(self.reject_report) if self.reject_report else None
        return d


# Where each text column of an event ends up; its limit is the tightest of these columns.
_TEXT_TARGETS = {
    "feature": (("usage_events", "feature"), ("workspace_daily_metrics", "dimension"), ("predictions", "dimension")),
    **{c: (("usage_events", c), ("entities", "external_id")) for c in ("workspace_id", "user_id", "agent_id")},
}
_KEY_COLUMNS = {("entities", "external_id")}  # unbounded text in a btree key: capped at KEY_TEXT_MAX_BYTES
_INT_MAX = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}


def column_limits(conn: sa.Connection) -> ColumnLimits:
    """What the analytics columns the event values end up in can hold (read from the catalog)."""
    rows = conn.execute(sa.text(
        "select table_name, column_name, data_type, character_maximum_length, numeric_precision, numeric_scale"
        " from information_schema.columns where table_schema = 'analytics'"
        " and table_name in ('usage_events', 'entities', 'workspace_daily_metrics', 'predictions')"
    )).all()
    cols = {(r.table_name, r.column_name): r for r in rows}
    default = ColumnLimits()
    text: dict[str, tuple[TextLimit, ...]] = {}
    for name, targets in _TEXT_TARGETS.items():
        limits: list[TextLimit] = []
        for table, column in targets:
            r = cols.get((table, column))
            if r is not None and r.character_maximum_length:
                limits.append(TextLimit(r.character_maximum_length, "characters",
                                        f"analytics.{table}.{column} is varchar({r.character_maximum_length})"))
            elif r is not None and (table, column) in _KEY_COLUMNS:
                limits.append(TextLimit(KEY_TEXT_MAX_BYTES, "bytes", f"analytics.{table}.{column} is an index key"))
        chars = [lim for lim in limits if lim.unit == "characters"]
        text[name] = tuple(([min(chars, key=lambda lim: lim.max)] if chars else [])
                           + [lim for lim in limits if lim.unit == "bytes"])
    credits, count = cols.get(("usage_events", "credits")), cols.get(("usage_events", "count"))
    return ColumnLimits(
        credits_precision=(credits.numeric_precision if credits is not None and credits.data_type == "numeric"
                           and credits.numeric_precision else default.credits_precision),
        credits_scale=(credits.numeric_scale if credits is not None and credits.numeric_precision
                       else default.credits_scale),
        count_max=_INT_MAX.get(count.data_type, default.count_max) if count is not None else default.count_max,
        count_type=count.data_type if count is not None and count.data_type in _INT_MAX else default.count_type,
        text=text,
    )


def _occurrence(valid: pd.DataFrame) -> pd.Series:
    """0 for a row's first identical copy in the file, 1 for the second, ... (identical = all columns)."""
    cols = [c for c in ("event_time", "workspace_id", "user_id", "agent_id", "feature", "credits", "status", "count")]
    if not valid.duplicated(cols).any():
        return pd.Series(0, index=valid.index, dtype="int64")
    return valid.groupby(cols, dropna=False, sort=False).cumcount()


def _to_copy_csv(valid: pd.DataFrame) -> io.BytesIO:
    """The staging rows as CSV for COPY (pyarrow's writer: nulls are empty unquoted fields)."""
    def text(col: str) -> pa.Array:
        if col not in valid:
            return pa.nulls(len(valid), pa.string())
        return pa.array(valid[col].astype(object).where(valid[col].notna(), None), pa.string())

    cols = {
        "event_time": pa.array(valid["event_time"], pa.timestamp("us", tz="UTC")),
        **{c: text(c) for c in ("workspace_id", "user_id", "agent_id", "feature", "status", "event_id", "extra")},
        "credits": pa.array(valid["credits"], pa.float64()),
        "count": pa.array(valid["count"], pa.int64()),
        "occurrence": pa.array(_occurrence(valid), pa.int64()),
        "row": pa.array(valid["row"], pa.int64()),
    }
    table = pa.table({k: cols[k] for k in _STAGE_COLUMNS})
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    buf.seek(0)
    return buf


_STAGE_COLUMNS = ("event_time", "workspace_id", "user_id", "agent_id", "feature", "credits", "status", "count",
                  "occurrence", "event_id", "extra", "row")
_STAGE_TABLE = """
create temp table stage_events (
    event_time timestamptz, workspace_id text, user_id text, agent_id text, feature text,
    credits numeric(20, 6), status text, count integer, occurrence integer, event_id text, extra jsonb,
    src_row integer
) on commit drop
"""

# Rows whose event_id is already loaded with different contract columns: conflicts, taken out of the stage.
_DELETE_CONFLICTS = """
delete from stage_events s using analytics.usage_events u
where s.event_id is not null and u.event_key = md5('id:' || s.event_id)::uuid
  and (u.event_time, u.workspace_id, u.user_id, u.agent_id, u.feature, u.credits, u.status, u.count)
      is distinct from (s.event_time, s.workspace_id, s.user_id, s.agent_id, s.feature, s.credits, s.status, s.count)
returning s.src_row
"""

_INSERT_FROM_STAGE = """
insert into analytics.usage_events
    (event_key, event_time, workspace_id, user_id, agent_id, feature, credits, status, count, extra, source_file)
select
    case when event_id is not null then md5('id:' || event_id)::uuid
         else md5(concat_ws(chr(31), to_char(event_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                            workspace_id, coalesce(user_id, ''), coalesce(agent_id, ''), feature,
                            credits::text, status, count::text, occurrence::text))::uuid
    end,
    event_time, workspace_id, user_id, agent_id, feature, credits, status, count, extra, :source
from stage_events
order by date_trunc('month', event_time at time zone 'UTC'), 1
on conflict (event_key, event_time) do nothing
"""

# usage_events is partitioned by UTC month (sql/019): create the partitions of the staged months first (else
# their rows would land in the default partition). Inserting month by month, in key order, keeps the index
# pages touched to one month's at a time, so loading stays linear in the rows loaded.
_ENSURE_PARTITIONS = """
select analytics.ensure_usage_events_partition(m)
from (select distinct date_trunc('month', event_time at time zone 'UTC') at time zone 'UTC' as m
      from stage_events) months
order by m
"""


def upsert_entities(conn: sa.Connection, valid: pd.DataFrame) -> int:
    """Record the uuid of every workspace, user and agent id seen (first workspace wins for users/agents)."""
    rows: list[dict] = []
    ws_first = valid.groupby("workspace_id", sort=True)["event_time"].min()
    for ws, first in ws_first.items():
        rows.append({"t": "workspace", "id": str(entity_uuid("workspace", ws)), "ext": ws, "ws": None, "f": first})
    for kind, col in (("user", "user_id"), ("agent", "agent_id")):
        sub = valid.loc[valid[col].notna(), [col, "workspace_id", "event_time"]]
        if sub.empty:
            continue
        first = sub.sort_values("event_time").drop_duplicates(col)
        for ext, ws, t in first.itertuples(index=False):
            rows.append({"t": kind, "id": str(entity_uuid(kind, ext)), "ext": ext,
                         "ws": str(entity_uuid("workspace", ws)), "f": t})
    if rows:
        conn.execute(
            sa.text(
                "insert into analytics.entities (entity_type, entity_id, external_id, workspace_id, first_seen_at)"
                " values (:t, :id, :ext, :ws, :f)"
                " on conflict (entity_type, external_id) do update set"
                "  first_seen_at = least(analytics.entities.first_seen_at, excluded.first_seen_at),"
                "  workspace_id = coalesce(analytics.entities.workspace_id, excluded.workspace_id)"
            ),
            rows,
        )
    return len(rows)


def _files(path: Path) -> tuple[list[Path], bool]:
    if path.is_dir():
        suffixes = CSV_SUFFIXES + PARQUET_SUFFIXES
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise EventSchemaError(f"{path}: no .csv or .parquet files to load")
        return files, True
    if not path.exists():
        raise EventSchemaError(f"{path}: no such file or folder")
    return [path], False


def _load_file(conn: sa.Connection, file: Path, cutoff: datetime, earliest: date, limits: ColumnLimits,
               summary: LoadSummary) -> pd.DataFrame:
    """Validate and stage one file, insert its new rows; returns its rejects. Raises EventFileError when the
    file cannot be read, EventSchemaError when it lacks contract columns."""
    raw = read_events(file)
    try:
        valid, rejects = validate_events(raw.frame, cutoff, raw.first_line, earliest=earliest, limits=limits,
                                         line_of=raw.line_of)
    except EventSchemaError as exc:  # missing columns: stops the whole load
        raise EventSchemaError(f"{file.name}: {exc}") from None
    rejects = [raw.skipped_rejects(), rejects]
    extra_cols = [c for c in raw.frame.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    summary.extra_columns = sorted(set(summary.extra_columns) | set(map(str, extra_cols)))
    inserted = 0
    if not valid.empty:
        conn.execute(sa.text(_STAGE_TABLE))
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.copy_expert("copy stage_events from stdin with (format csv)", _to_copy_csv(valid))
        if "event_id" in valid and valid["event_id"].notna().any():
            conn.execute(sa.text("analyze stage_events"))
            conflicts = np.sort(np.asarray(conn.execute(sa.text(_DELETE_CONFLICTS)).scalars().all(), dtype="int64"))
            if len(conflicts):
                rejects.append(reject_rows(raw.frame, conflicts, CONFLICT_LOADED, raw.line_of))
                valid = valid.loc[~valid["row"].isin(conflicts)]
        conn.execute(sa.text(_ENSURE_PARTITIONS))
        inserted = conn.execute(sa.text(_INSERT_FROM_STAGE), {"source": file.name}).rowcount
        conn.execute(sa.text("drop table stage_events"))
        upsert_entities(conn, valid)
    report = pd.concat([r for r in rejects if len(r)] or [rejects[1]], ignore_index=True)
    report = report.sort_values("line", kind="stable").reset_index(drop=True)
    summary.rows_read += len(raw.frame) + len(raw.skipped)
    summary.rows_valid += len(valid)
    summary.rows_rejected += len(report)
    summary.rows_inserted += inserted
    summary.rows_already_loaded += len(valid) - inserted
    summary.files_loaded += 1
    log.info("%s: %d valid, %d rejected, %d new", file.name, len(valid), len(report), inserted)
    return report


def load_events(
    engine: Engine,
    path: Path,
    rejects_dir: Path,
    now: datetime | None = None,
    future_tolerance_seconds: int = 300,
    earliest_event_date: date | None = None,
) -> LoadSummary:
    """Validate and load one CSV/Parquet file (or every file in a directory) in one transaction.

    One file that cannot be read raises :class:`EventFileError`; in a folder such files are skipped and
    listed in ``files_failed`` (EventSchemaError when none could be read). ``earliest_event_date``
    defaults to the ``earliest_event_date`` setting (``PAE_EARLIEST_EVENT_DATE``).
    """
    path = Path(path)
    files, folder = _files(path)
    now = now or datetime.now(timezone.utc)
    cutoff = now + pd.Timedelta(seconds=future_tolerance_seconds)
    earliest = earliest_event_date or get_settings().earliest_event_date
    summary = LoadSummary(source=str(path))
    all_rejects: list[pd.DataFrame] = []
    with engine.begin() as conn, progress(f"loading {path.name}", len(files), "files") as advance:
        limits = column_limits(conn)
        for file in files:
            advance(0, f"loading {file.name} ({summary.rows_inserted:,} rows so far)")
            try:
                rejects = _load_file(conn, file, cutoff, earliest, limits, summary)
            except EventFileError as exc:
                if not folder:
                    raise
                log.info("skipped %s", exc)
                summary.files_failed.append({"file": exc.file, "reason": exc.reason})
                advance()
                continue
            advance()
            if len(rejects):
                rejects.insert(0, "file", file.name)
                all_rejects.append(rejects)
        if not summary.files_loaded:
            raise EventSchemaError(f"{path.name}: none of the {len(files)} file(s) could be read: "
                                   + "; ".join(f"{f['file']}: {f['reason']}" for f in summary.files_failed))
    if all_rejects:
        report = pd.concat(all_rejects, ignore_index=True)
        summary.reject_reasons = (
            report["reason"].str.split("; ").explode().value_counts().sort_index().to_dict()
        )
        rejects_dir.mkdir(parents=True, exist_ok=True)
        summary.reject_report = rejects_dir / f"{path.stem}.rejects.csv"
        # CRLF rows, so a raw value holding a carriage return is quoted too (pandas quotes only the terminator)
        report.to_csv(summary.reject_report, index=False, lineterminator="\r\n")
    return summary
