"""Load a user's usage events (CSV or Parquet) into ``analytics.usage_events``.

Every row is validated against the source contract (DESIGN.md; ``validate.py``). Bad rows are never loaded:
they go to a reject report (CSV: source line, reason, raw values) and are counted in the summary. A file
that cannot be read stops a one-file load with a one-line message; in a folder it is skipped and listed in
``files_failed`` (a file missing contract columns still stops the whole load). The load is one transaction,
so a failure leaves nothing half-loaded. The idempotency key ``event_key`` is the md5 of the contract columns
plus the row's occurrence number among identical rows of the file (or of ``event_id`` when the file has
one), so loading the same file twice adds nothing; a row whose ``event_id`` is already loaded with different
content is rejected as a conflict.

Each file's valid rows are keyed into a staging table; the rows of several files (``PAE_LOAD_BATCH_ROWS``) are
inserted together, month by month in key order: a file's rows alone land a row or two on each index page they
touch once a month's index is large, and those page reads made the cost per row rise with the table (README,
"Loading at 10,000 workspaces"). The summary's
``seconds`` say where a load's time went (read, validate, stage, conflicts, insert, entities).
"""
from __future__ import annotations

import io
import logging
import time
from contextlib import contextmanager
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
    seconds: dict[str, float] = field(default_factory=dict)  # read, validate, stage, conflicts, insert, entities

    @contextmanager
    def timed(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started

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


def _stage_table(valid: pd.DataFrame) -> pa.Table:
    """The staging rows, in ``stage_events``' column order."""
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
        "src_row": pa.array(valid["row"], pa.int64()),
    }
    return pa.table({k: cols[k] for k in _STAGE_COLUMNS})


_STAGE_COLUMNS = ("event_time", "workspace_id", "user_id", "agent_id", "feature", "credits", "status", "count",
                  "occurrence", "event_id", "extra", "src_row")
_STAGE_TABLE = """
create temp table stage_events (
    event_time timestamptz, workspace_id text, user_id text, agent_id text, feature text,
    credits numeric(20, 6), status text, count integer, occurrence integer, event_id text, extra jsonb,
    src_row integer
) on commit drop
"""

# The rows of several files, keyed, waiting for one insert into usage_events (see ``load_events``).
_BATCH_TABLE = """
create temp table batch_events (
    event_key uuid, event_time timestamptz, workspace_id text, user_id text, agent_id text, feature text,
    credits numeric(20, 6), status text, count integer, extra jsonb, source_file text, file_no integer
) on commit drop
"""

# Rows whose event_id is already loaded (or staged from an earlier file of this load) with different contract
# columns: conflicts, taken out of the stage.
_DELETE_CONFLICTS = """
delete from stage_events s using {table} u
where s.event_id is not null and u.event_key = md5('id:' || s.event_id)::uuid
  and (u.event_time, u.workspace_id, u.user_id, u.agent_id, u.feature, u.credits, u.status, u.count)
      is distinct from (s.event_time, s.workspace_id, s.user_id, s.agent_id, s.feature, s.credits, s.status, s.count)
returning s.src_row
"""

_BATCH_FROM_STAGE = """
insert into batch_events
select
    case when event_id is not null then md5('id:' || event_id)::uuid
         else md5(concat_ws(chr(31), to_char(event_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                            workspace_id, coalesce(user_id, ''), coalesce(agent_id, ''), feature,
                            credits::text, status, count::text, occurrence::text))::uuid
    end,
    event_time, workspace_id, user_id, agent_id, feature, credits, status, count, extra, :source, :file_no
from stage_events
"""

# A key staged twice (the same row in two files of the load) is inserted from the first file: the insert
# goes in (month, key, file) order, and a later copy conflicts with the first.
_INSERT_BATCH = """
insert into analytics.usage_events
    (event_key, event_time, workspace_id, user_id, agent_id, feature, credits, status, count, extra, source_file)
select event_key, event_time, workspace_id, user_id, agent_id, feature, credits, status, count, extra, source_file
from batch_events
order by date_trunc('month', event_time at time zone 'UTC'), event_key, file_no
on conflict (event_key, event_time) do nothing
"""

# usage_events is partitioned by UTC month (sql/019): create the partitions of the staged months first (else
# their rows would land in the default partition). Inserting month by month, in key order, keeps the index
# pages touched to one month's at a time; inserting many files' rows at once puts more rows on each index page
# touched, so loading stays close to linear as the table grows.
_ENSURE_PARTITIONS = """
select analytics.ensure_usage_events_partition(m)
from (select distinct date_trunc('month', event_time at time zone 'UTC') at time zone 'UTC' as m
      from batch_events) months
order by m
"""


_ENTITY_STAGE = """
create temp table stage_entities (
    entity_type text, entity_id uuid, external_id text, workspace_id uuid, first_seen_at timestamptz
) on commit drop
"""
_UPSERT_ENTITIES = """
insert into analytics.entities (entity_type, entity_id, external_id, workspace_id, first_seen_at)
select entity_type, entity_id, external_id, workspace_id, first_seen_at from stage_entities
order by entity_type, external_id
on conflict (entity_type, external_id) do update set
    first_seen_at = least(analytics.entities.first_seen_at, excluded.first_seen_at),
    workspace_id = coalesce(analytics.entities.workspace_id, excluded.workspace_id)
"""


def upsert_entities(conn: sa.Connection, valid: pd.DataFrame) -> int:
    """Record the uuid of every workspace, user and agent id seen (first workspace wins for users/agents):
    copied into a staging table and upserted in one statement."""
    ws_first = valid.groupby("workspace_id", sort=True)["event_time"].min()
    parts = [pd.DataFrame({"entity_type": "workspace", "external_id": ws_first.index, "workspace_id": None,
                           "first_seen_at": ws_first.to_numpy()})]
    for kind, col in (("user", "user_id"), ("agent", "agent_id")):
        sub = valid.loc[valid[col].notna(), [col, "workspace_id", "event_time"]]
        first = sub.sort_values("event_time", kind="stable").drop_duplicates(col)
        parts.append(pd.DataFrame({
            "entity_type": kind, "external_id": first[col].to_numpy(),
            "workspace_id": [str(entity_uuid("workspace", ws)) for ws in first["workspace_id"]],
            "first_seen_at": first["event_time"].to_numpy()}))
    rows = pd.concat([p for p in parts if len(p)], ignore_index=True) if len(valid) else parts[0].iloc[:0]
    if rows.empty:
        return 0
    rows.insert(1, "entity_id", [str(entity_uuid(t, e)) for t, e in zip(rows["entity_type"], rows["external_id"])])
    table = pa.table({
        **{c: pa.array(rows[c].astype(object).where(rows[c].notna(), None), pa.string())
           for c in ("entity_type", "entity_id", "external_id", "workspace_id")},
        "first_seen_at": pa.array(pd.to_datetime(rows["first_seen_at"], utc=True), pa.timestamp("us", tz="UTC")),
    })
    conn.execute(sa.text(_ENTITY_STAGE))
    _copy_csv(conn, "stage_entities", table)
    conn.execute(sa.text(_UPSERT_ENTITIES))
    conn.execute(sa.text("drop table stage_entities"))
    return len(rows)


def _copy_csv(conn: sa.Connection, table: str, rows: pa.Table) -> None:
    """COPY ``rows`` into ``table`` as CSV (pyarrow's writer: nulls are empty unquoted fields)."""
    buf = io.BytesIO()
    pacsv.write_csv(rows, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f"copy {table} ({', '.join(rows.column_names)}) from stdin with (format csv)", buf)


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


def _stage_file(conn: sa.Connection, file: Path, file_no: int, cutoff: datetime, earliest: date,
                limits: ColumnLimits, summary: LoadSummary) -> tuple[pd.DataFrame, int]:
    """Validate one file and add its valid rows to ``batch_events``; returns its rejects and the rows added.
    Raises EventFileError when the file cannot be read, EventSchemaError when it lacks contract columns."""
    with summary.timed("read"):
        raw = read_events(file)
    try:
        with summary.timed("validate"):
            valid, rejects = validate_events(raw.frame, cutoff, raw.first_line, earliest=earliest, limits=limits,
                                             line_of=raw.line_of)
    except EventSchemaError as exc:  # missing columns: stops the whole load
        raise EventSchemaError(f"{file.name}: {exc}") from None
    rejects = [raw.skipped_rejects(), rejects]
    extra_cols = [c for c in raw.frame.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    summary.extra_columns = sorted(set(summary.extra_columns) | set(map(str, extra_cols)))
    if not valid.empty:
        with summary.timed("stage"):
            conn.execute(sa.text(_STAGE_TABLE))
            _copy_csv(conn, "stage_events", _stage_table(valid))
        if "event_id" in valid and valid["event_id"].notna().any():
            with summary.timed("conflicts"):
                conn.execute(sa.text("analyze stage_events"))
                conflicts = np.sort(np.asarray(
                    [r for table in ("analytics.usage_events", "batch_events")
                     for r in conn.execute(sa.text(_DELETE_CONFLICTS.format(table=table))).scalars()],
                    dtype="int64"))
            if len(conflicts):
                rejects.append(reject_rows(raw.frame, conflicts, CONFLICT_LOADED, raw.line_of))
                valid = valid.loc[~valid["row"].isin(conflicts)]
        with summary.timed("stage"):
            conn.execute(sa.text(_BATCH_FROM_STAGE), {"source": file.name, "file_no": file_no})
            conn.execute(sa.text("drop table stage_events"))
        with summary.timed("entities"):
            upsert_entities(conn, valid)
    report = pd.concat([r for r in rejects if len(r)] or [rejects[1]], ignore_index=True)
    report = report.sort_values("line", kind="stable").reset_index(drop=True)
    summary.rows_read += len(raw.frame) + len(raw.skipped)
    summary.rows_valid += len(valid)
    summary.rows_rejected += len(report)
    summary.files_loaded += 1
    log.info("%s: %d valid, %d rejected", file.name, len(valid), len(report))
    return report, len(valid)


def _insert_batch(conn: sa.Connection, staged: int, summary: LoadSummary) -> None:
    """Insert the staged rows that are new, month by month in key order, and empty the batch."""
    with summary.timed("insert"):
        conn.execute(sa.text(_ENSURE_PARTITIONS))
        conn.execute(sa.text("set local work_mem = '256MB'"))  # the batch's sort in memory, for this load only
        inserted = conn.execute(sa.text(_INSERT_BATCH)).rowcount
        conn.execute(sa.text("truncate batch_events"))
    summary.rows_inserted += inserted
    summary.rows_already_loaded += staged - inserted
    log.info("inserted %d new of %d staged rows", inserted, staged)


def load_events(
    engine: Engine,
    path: Path,
    rejects_dir: Path,
    now: datetime | None = None,
    future_tolerance_seconds: int = 300,
    earliest_event_date: date | None = None,
    batch_rows: int | None = None,
) -> LoadSummary:
    """Validate and load one CSV/Parquet file (or every file in a directory) in one transaction.

    One file that cannot be read raises :class:`EventFileError`; in a folder such files are skipped and
    listed in ``files_failed`` (EventSchemaError when none could be read). ``earliest_event_date``
    defaults to the ``earliest_event_date`` setting (``PAE_EARLIEST_EVENT_DATE``). The valid rows of several
    files are inserted together once ``batch_rows`` are staged (``PAE_LOAD_BATCH_ROWS``; 0: file by file).
    """
    path = Path(path)
    files, folder = _files(path)
    now = now or datetime.now(timezone.utc)
    cutoff = now + pd.Timedelta(seconds=future_tolerance_seconds)
    earliest = earliest_event_date or get_settings().earliest_event_date
    batch_rows = get_settings().load_batch_rows if batch_rows is None else batch_rows
    summary = LoadSummary(source=str(path))
    all_rejects: list[pd.DataFrame] = []
    staged = 0
    with engine.begin() as conn, progress(f"loading {path.name}", len(files), "files") as advance:
        limits = column_limits(conn)
        conn.execute(sa.text(_BATCH_TABLE))
        for file_no, file in enumerate(files):
            advance(0, f"loading {file.name} ({summary.rows_inserted + staged:,} rows so far)")
            try:
                rejects, rows = _stage_file(conn, file, file_no, cutoff, earliest, limits, summary)
            except EventFileError as exc:
                if not folder:
                    raise
                log.info("skipped %s", exc)
                summary.files_failed.append({"file": exc.file, "reason": exc.reason})
                advance()
                continue
            staged += rows
            if staged and staged >= batch_rows:
                _insert_batch(conn, staged, summary)
                staged = 0
            advance()
            if len(rejects):
                rejects.insert(0, "file", file.name)
                all_rejects.append(rejects)
        if staged:
            _insert_batch(conn, staged, summary)
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
