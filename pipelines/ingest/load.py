"""Load a user's usage events (CSV or Parquet) into ``analytics.usage_events``.

Every row is validated against the source contract (DESIGN.md). Bad rows are never loaded: they go to a
reject report (CSV: source line, reason, raw values) and are counted in the summary. The load is one
transaction, so a failure leaves nothing half-loaded. The idempotency key ``event_key`` is the md5 of the
contract columns plus the row's occurrence number among identical rows of the file (or of ``event_id``
when the file has one), so loading the same file twice adds nothing.
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.contracts import EVENT_STATUSES, REQUIRED_EVENT_COLUMNS
from core.ids import entity_uuid

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = REQUIRED_EVENT_COLUMNS
OPTIONAL_COLUMNS = ("count", "event_id")
STATUSES = EVENT_STATUSES


class EventSchemaError(ValueError):
    """The file as a whole breaks the contract (missing columns, unreadable)."""


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

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        d["reject_report"] = str(self.reject_report) if self.reject_report else None
        return d


def read_events_file(path: Path) -> pd.DataFrame:
    """Read CSV or Parquet with every column as text/object, so validation sees the raw values."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    if suffix in (".parquet", ".pq"):
        return pq.read_table(path).to_pandas()
    raise EventSchemaError(f"{path}: unsupported file type {suffix!r}; give a .csv or .parquet file")


def validate_events(raw: pd.DataFrame, now: datetime, first_line: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``raw`` into (valid rows in canonical types, rejects with line and reason).

    ``first_line`` is the source line of the first row (2 for a CSV with a header; 1-based row number
    for Parquet). Naive timestamps are read as UTC.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise EventSchemaError(
            f"missing column(s) {missing}; the usage-event contract needs {list(REQUIRED_COLUMNS)} "
            f"(optional: {list(OPTIONAL_COLUMNS)}); got {list(raw.columns)}. Rename or add the columns."
        )
    n = len(raw)
    reasons = pd.Series([""] * n, index=raw.index, dtype=object)

    def flag(mask: pd.Series, reason: str) -> None:
        mask = mask.fillna(False).to_numpy(dtype=bool)
        reasons.iloc[mask] = np.where(reasons.iloc[mask] == "", reason, reasons.iloc[mask] + "; " + reason)

    t = pd.to_datetime(raw["event_time"], errors="coerce", utc=True, format="mixed")
    flag(t.isna() & raw["event_time"].notna(), "event_time is not a timestamp")
    flag(raw["event_time"].isna(), "event_time is empty")
    flag(t > pd.Timestamp(now), f"event_time is in the future (after {now:%Y-%m-%dT%H:%M:%SZ})")

    def text(col: str) -> pd.Series:
        s = raw[col].astype("string").str.strip()
        return s.mask(s == "", pd.NA)

    workspace, user, agent, feature = text("workspace_id"), text("user_id"), text("agent_id"), text("feature")
    flag(workspace.isna(), "workspace_id is empty")
    flag(feature.isna(), "feature is empty")

    credits = pd.to_numeric(raw["credits"], errors="coerce")
    flag(credits.isna(), "credits is not a number")
    flag(~np.isfinite(credits.fillna(0)), "credits is not finite")
    flag(credits < 0, "credits is negative")

    status = raw["status"].astype("string").str.strip().str.lower()
    flag(~status.isin(STATUSES), f"status is not one of {list(STATUSES)}")

    if "count" in raw.columns:
        count_num = pd.to_numeric(raw["count"], errors="coerce")
        bad_count = count_num.isna() | (count_num < 1) | (count_num != np.floor(count_num.fillna(0)))
        flag(bad_count, "count is not an integer >= 1")
        count = count_num.where(~bad_count, 1).astype("int64")
    else:
        count = pd.Series(1, index=raw.index, dtype="int64")

    bad = reasons != ""
    rejects = raw.loc[bad].copy()
    rejects.insert(0, "reason", reasons[bad])
    rejects.insert(0, "line", (np.flatnonzero(bad.to_numpy()) + first_line))

    valid = pd.DataFrame(
        {
            "event_time": t,
            "workspace_id": workspace,
            "user_id": user,
            "agent_id": agent,
            "feature": feature,
            "credits": credits.round(6),
            "status": status,
            "count": count,
        }
    ).loc[~bad]
    if "event_id" in raw.columns:
        valid["event_id"] = text("event_id").loc[~bad]
    return valid.reset_index(drop=True), rejects.reset_index(drop=True)


def _occurrence(valid: pd.DataFrame) -> pd.Series:
    """0 for a row's first identical copy in the file, 1 for the second, ... (identical = all columns)."""
    cols = [c for c in ("event_time", "workspace_id", "user_id", "agent_id", "feature", "credits", "status", "count")]
    if not valid.duplicated(cols).any():
        return pd.Series(0, index=valid.index, dtype="int64")
    return valid.groupby(cols, dropna=False, sort=False).cumcount()


def _to_copy_csv(valid: pd.DataFrame, extra: pd.DataFrame | None) -> io.BytesIO:
    """The staging rows as CSV for COPY (pyarrow's writer: nulls are empty unquoted fields)."""
    cols = {
        "event_time": pa.array(valid["event_time"], pa.timestamp("us", tz="UTC")),
        **{c: pa.array(valid[c].astype(object).where(valid[c].notna(), None), pa.string())
           for c in ("workspace_id", "user_id", "agent_id", "feature", "status")},
        "credits": pa.array(valid["credits"], pa.float64()),
        "count": pa.array(valid["count"], pa.int64()),
        "occurrence": pa.array(_occurrence(valid), pa.int64()),
        "event_id": pa.array(valid["event_id"].astype(object).where(valid["event_id"].notna(), None), pa.string())
        if "event_id" in valid else pa.nulls(len(valid), pa.string()),
        "extra": pa.array([json.dumps(r, default=str) for r in extra.to_dict("records")], pa.string())
        if extra is not None else pa.nulls(len(valid), pa.string()),
    }
    table = pa.table({k: cols[k] for k in _STAGE_COLUMNS})
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    buf.seek(0)
    return buf


_STAGE_COLUMNS = ("event_time", "workspace_id", "user_id", "agent_id", "feature", "credits", "status", "count",
                  "occurrence", "event_id", "extra")
_STAGE_TABLE = """
create temp table stage_events (
    event_time timestamptz, workspace_id text, user_id text, agent_id text, feature text,
    credits numeric(20, 6), status text, count integer, occurrence integer, event_id text, extra jsonb
) on commit drop
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
order by 1
on conflict (event_key) do nothing
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


def load_events(
    engine: Engine,
    path: Path,
    rejects_dir: Path,
    now: datetime | None = None,
    future_tolerance_seconds: int = 300,
) -> LoadSummary:
    """Validate and load one CSV/Parquet file (or every file in a directory) in one transaction."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".parquet", ".pq")) if path.is_dir() else [path]
    if not files:
        raise EventSchemaError(f"{path}: no .csv or .parquet files to load")
    now = now or datetime.now(timezone.utc)
    cutoff = now + pd.Timedelta(seconds=future_tolerance_seconds)
    summary = LoadSummary(source=str(path))
    all_rejects: list[pd.DataFrame] = []
    with engine.begin() as conn:
        for file in files:
            raw = read_events_file(file)
            first_line = 2 if file.suffix.lower() == ".csv" else 1
            valid, rejects = validate_events(raw, cutoff, first_line)
            extra_cols = [c for c in raw.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
            summary.extra_columns = sorted(set(summary.extra_columns) | set(extra_cols))
            extra = None
            if extra_cols:
                extra = raw.loc[rejects_mask_inverse(raw, rejects, first_line), extra_cols].reset_index(drop=True)
            summary.rows_read += len(raw)
            summary.rows_valid += len(valid)
            summary.rows_rejected += len(rejects)
            if len(rejects):
                rejects.insert(0, "file", file.name)
                all_rejects.append(rejects)
            if valid.empty:
                continue
            conn.execute(sa.text(_STAGE_TABLE))
            dbapi = conn.connection.dbapi_connection
            with dbapi.cursor() as cur:
                cur.copy_expert("copy stage_events from stdin with (format csv)", _to_copy_csv(valid, extra))
            inserted = conn.execute(sa.text(_INSERT_FROM_STAGE), {"source": file.name}).rowcount
            conn.execute(sa.text("drop table stage_events"))
            summary.rows_inserted += inserted
            summary.rows_already_loaded += len(valid) - inserted
            upsert_entities(conn, valid)
            log.info("%s: %d valid, %d rejected, %d new", file.name, len(valid), len(rejects), inserted)
    if all_rejects:
        report = pd.concat(all_rejects, ignore_index=True)
        summary.reject_reasons = (
            report["reason"].str.split("; ").explode().value_counts().sort_index().to_dict()
        )
        rejects_dir.mkdir(parents=True, exist_ok=True)
        summary.reject_report = rejects_dir / f"{path.stem}.rejects.csv"
        report.to_csv(summary.reject_report, index=False)
    return summary


def rejects_mask_inverse(raw: pd.DataFrame, rejects: pd.DataFrame, first_line: int) -> np.ndarray:
    """Boolean mask of the raw rows that passed validation."""
    keep = np.ones(len(raw), dtype=bool)
    keep[rejects["line"].to_numpy() - first_line] = False
    return keep
