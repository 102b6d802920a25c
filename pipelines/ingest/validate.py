"""Read a usage-event file (CSV or Parquet) and validate its rows against the source contract (DESIGN.md).

A file that cannot be read or interpreted (empty, not UTF-8, not Parquet, a non-timestamp ``event_time``
column) raises :class:`EventFileError` with one line saying what is wrong; a file that lacks contract
columns raises :class:`EventSchemaError`. Everything else is a row problem: the row is rejected with its
source line and reason, and the rest of the file loads. Limits come from the columns the values end up in
(``ColumnLimits``; ``load.column_limits`` reads them from the database).
"""
from __future__ import annotations

import codecs
import csv
import json
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.contracts import EVENT_STATUSES, REQUIRED_EVENT_COLUMNS

REQUIRED_COLUMNS = REQUIRED_EVENT_COLUMNS
OPTIONAL_COLUMNS = ("count", "event_id")
STATUSES = EVENT_STATUSES
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
ID_COLUMNS = ("workspace_id", "user_id", "agent_id")
# The columns two rows with the same event_id must agree on (the contract columns; extras may differ).
CONTENT_COLUMNS = ("event_time", "workspace_id", "user_id", "agent_id", "feature", "credits", "status", "count")
CONFLICT_IN_FILE = "event_id conflict: an earlier row of the file has this event_id with different content"
CONFLICT_LOADED = "event_id conflict: already loaded with different content"


class EventSchemaError(ValueError):
    """The file as a whole breaks the contract (missing columns, unreadable)."""


class EventFileError(EventSchemaError):
    """One file cannot be read or interpreted; a folder load skips it and reports it in ``files_failed``."""

    def __init__(self, file: Path, reason: str):
        self.file, self.reason = Path(file).name, reason
        super().__init__(f"{self.file}: {reason}")


@dataclass(frozen=True)
class TextLimit:
    max: int
    unit: str  # "characters" (varchar(n)) or "bytes" (UTF-8, for unbounded text in a btree key)
    why: str


# A btree index entry holds at most 2704 bytes (PostgreSQL: "index row size ... exceeds btree maximum");
# entities.external_id is in the primary key, so ids are capped below that, whatever their compression.
KEY_TEXT_MAX_BYTES = 2000


@dataclass(frozen=True)
class ColumnLimits:
    """What the database columns hold. Defaults: sql/001_core_schema.sql (``load.column_limits`` reads them)."""

    credits_precision: int = 20
    credits_scale: int = 6
    count_max: int = 2**31 - 1
    count_type: str = "integer"
    text: dict[str, tuple[TextLimit, ...]] = field(default_factory=lambda: {
        "feature": (TextLimit(255, "characters", "analytics.workspace_daily_metrics.dimension is varchar(255)"),),
        **{c: (TextLimit(KEY_TEXT_MAX_BYTES, "bytes", "analytics.entities.external_id is an index key"),)
           for c in ID_COLUMNS},
    })

    @property
    def credits_below(self) -> float:
        return 10.0 ** (self.credits_precision - self.credits_scale)

    @property
    def credits_max_text(self) -> str:
        digits = self.credits_precision - self.credits_scale
        return "9" * digits + ("." + "9" * self.credits_scale if self.credits_scale else "")


# ---------------------------------------------------------------------------------------------- reading
@dataclass
class RawEvents:
    """A file's rows as text/objects, with what is needed to name each row's source line."""

    frame: pd.DataFrame
    file: Path
    first_line: int  # source line of the first row: 2 for a CSV with a header, 1 (row number) for Parquet
    skipped: list[tuple[int, int]] = field(default_factory=list)  # CSV lines pandas skipped: (line, fields)
    _lines: tuple[np.ndarray, list[tuple[int, list[str]]]] | None = field(default=None, init=False, repr=False)

    @property
    def is_csv(self) -> bool:
        return self.file.suffix.lower() in CSV_SUFFIXES

    def _csv_lines(self) -> tuple[np.ndarray, list[tuple[int, list[str]]]]:
        """Source line of every row, and the skipped lines with their fields (csv module; blank lines and
        quoted line breaks counted). Falls back to one line per row when the two parsers disagree."""
        if self._lines is None:
            ncols = len(self.frame.columns)
            rows: list[int] = []
            bad: list[tuple[int, list[str]]] = []
            try:
                with open(self.file, newline="", encoding="utf-8-sig") as fh:
                    reader = csv.reader(fh)
                    prev = reader.line_num
                    for i, rec in enumerate(reader):
                        start, prev = prev + 1, reader.line_num
                        if i == 0 or not rec or (len(rec) == 1 and not rec[0].strip()):
                            continue
                        (bad.append((start, rec)) if len(rec) > ncols else rows.append(start))
            except (csv.Error, OSError, UnicodeError):
                rows, bad = [], []
            if len(rows) != len(self.frame) or len(bad) != len(self.skipped):  # pandas' own line numbers
                skipped = {line for line, _ in self.skipped}
                physical = (ln for ln in range(self.first_line, 1 << 62) if ln not in skipped)
                rows = [next(physical) for _ in range(len(self.frame))]
                bad = [(line, []) for line, _ in self.skipped]
            self._lines = (np.asarray(rows, dtype="int64"), bad)
        return self._lines

    def line_of(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype="int64")
        if not self.is_csv or not len(positions):
            return positions + self.first_line
        return self._csv_lines()[0][positions]

    def skipped_rejects(self) -> pd.DataFrame:
        """Lines with more fields than the header (pandas skips them) as reject rows."""
        cols = list(self.frame.columns)
        if not self.skipped:
            return pd.DataFrame(columns=["line", "reason", *cols])
        out = []
        for (_, n), (line, values) in zip(self.skipped, self._csv_lines()[1]):
            out.append({"line": line, "reason": f"line has {n} fields, the header has {len(cols)}",
                        **dict(zip(cols, values[:len(cols) - 1] + [",".join(values[len(cols) - 1:])]))})
        return pd.DataFrame(out, columns=["line", "reason", *cols])


def read_events_file(path: Path) -> pd.DataFrame:
    """Read CSV or Parquet with every column as text/object, so validation sees the raw values."""
    return read_events(path).frame


def read_events(path: Path) -> RawEvents:
    """Read one file; any problem with the file as a whole is an :class:`EventFileError` (one line)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise EventFileError(path, f"unsupported file type {suffix!r}; give a .csv or .parquet file")
    try:
        if path.stat().st_size == 0:
            raise EventFileError(path, "the file is empty (0 bytes); expected a header line and event rows"
                                 if suffix in CSV_SUFFIXES else "the file is empty (0 bytes)")
        raw = _read_csv(path) if suffix in CSV_SUFFIXES else _read_parquet(path)
    except EventSchemaError:
        raise
    except FileNotFoundError:
        raise EventFileError(path, "no such file") from None
    except (OSError, ValueError, pa.ArrowException) as exc:  # anything else the readers say about the file
        raise EventFileError(path, f"could not read the file ({type(exc).__name__}: {_first_line(exc)})") from None
    nul = [c for c in raw.frame.columns if "\x00" in str(c)]
    if nul:
        raise EventFileError(path, "the header contains a NUL byte; re-save the file as UTF-8 text")
    return raw


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _scan_utf8(path: Path) -> tuple[int | None, bool]:
    """(offset of the first byte that is not valid UTF-8 or None, whether the file has a NUL byte)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, has_nul = 0, False
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 24)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return offset - pending + exc.start, has_nul
            if not chunk:
                return None, has_nul
            has_nul = has_nul or b"\x00" in chunk
            offset += len(chunk)


def _not_utf8(path: Path, offset: int) -> EventFileError:
    with open(path, "rb") as fh:
        head = fh.read(max(offset + 1, 2))
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return EventFileError(path, "the file is UTF-16, not UTF-8; re-save the file as UTF-8")
    line = head[:offset].count(b"\n") + 1
    return EventFileError(path, f"not valid UTF-8 at byte {offset} (0x{head[offset]:02x}, line {line}); "
                                "re-save the file as UTF-8")


def _last_record_line(path: Path) -> int | str:
    """The line the last CSV record starts on (an unclosed quote runs to the end of the file)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            start = prev = 0
            for _ in reader:
                start, prev = prev + 1, reader.line_num
            return start
    except (csv.Error, OSError, UnicodeError):
        return "?"


_SKIPPED = re.compile(r"line (\d+).*?saw (\d+)", re.DOTALL)


def _read_csv(path: Path) -> RawEvents:
    bad_offset, has_nul = _scan_utf8(path)
    if bad_offset is not None:
        raise _not_utf8(path, bad_offset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            # The C parser cuts a value at a NUL byte; the python parser keeps it (and validation rejects it).
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], on_bad_lines="warn",
                                engine="python" if has_nul else "c")
        except pd.errors.EmptyDataError:
            raise EventFileError(path, "no header line; expected a header line with the contract columns") from None
        except pd.errors.ParserError as exc:
            detail = _first_line(exc).split("C error: ")[-1]
            if "EOF inside string" in detail:
                detail = f"the quoted value starting on line {_last_record_line(path)} is never closed"
            raise EventFileError(path, f"not a well-formed CSV: {detail}") from None
    skipped: list[tuple[int, int]] = []
    for w in caught:
        if issubclass(w.category, pd.errors.ParserWarning):
            for part in str(w.message).strip().split("\n"):
                m = _SKIPPED.search(part)
                if m:
                    skipped.append((int(m.group(1)), int(m.group(2))))
    return RawEvents(frame, path, 2, skipped)


def _read_parquet(path: Path) -> RawEvents:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        detail = re.sub(r"^Could not open Parquet input source '.*?': ", "", _first_line(exc))
        raise EventFileError(path, f"not a readable Parquet file ({detail})") from None
    names = table.schema.names
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise EventFileError(path, f"duplicate column(s) {dup}; each column must appear once")
    if "event_time" in names:
        t = table.schema.field("event_time").type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
            raise EventFileError(path, f"column event_time is {t}; the contract needs a timestamp (or ISO 8601 "
                                       "text): convert epoch numbers before loading, e.g. "
                                       "pd.to_datetime(df['event_time'], unit='s', utc=True)")
    frame = table.to_pandas()
    if any(name is not None for name in frame.index.names):  # a pandas index saved with the file: its columns
        frame = frame.reset_index()
    return RawEvents(frame.reset_index(drop=True), path, 1)


# ------------------------------------------------------------------------------------------- validation
def _jsonable(v):
    """A value of an extra column as JSON: missing -> null (never NaN), numpy -> Python, others -> text."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float):
        return None if math.isnan(v) else (v if math.isfinite(v) else str(v))
    if isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if isinstance(v, (np.ndarray, list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return v.hex()
    if isinstance(v, (datetime, date, pd.Timestamp)):
        return v.isoformat()
    return str(v)


_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not an escaped backslash + "u0000"


def _encode_column(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each value of ``s`` as JSON text, and whether it holds a NUL (each distinct value encoded once)."""
    try:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists, dicts from Parquet)
        codes, uniques = np.arange(len(s)), s.to_numpy(dtype=object)
    enc = [json.dumps(_jsonable(u), allow_nan=False, ensure_ascii=False) for u in uniques] + ["null"]
    nul = np.array([bool(_JSON_NUL.search(e)) for e in enc])
    return np.asarray(enc, dtype=object)[codes], nul[codes]  # code -1 (missing) -> the last entry, null


def extra_json(extra: pd.DataFrame) -> tuple[list[str], dict[str, np.ndarray]]:
    """The extra columns of each row as a JSON object (missing values are null), and per column the rows
    whose value holds a NUL byte (jsonb cannot store it)."""
    keys, values, nul = [], [], {}
    for c in extra.columns:
        enc, has_nul = _encode_column(extra[c])
        keys.append(json.dumps(str(c), ensure_ascii=False) + ": ")
        values.append(enc)
        nul[str(c)] = has_nul
    return ["{" + ", ".join(k + v for k, v in zip(keys, row)) + "}" for row in zip(*values)], nul


def reject_rows(raw: pd.DataFrame, positions: np.ndarray, reasons, line_of: Callable) -> pd.DataFrame:
    """Reject-report rows (line, reason, raw values) for the raw rows at ``positions``."""
    rejects = raw.iloc[positions].copy()
    rejects.insert(0, "reason", list(reasons) if not isinstance(reasons, str) else reasons)
    rejects.insert(0, "line", line_of(positions))
    return rejects.reset_index(drop=True)


def _too_long(s: pd.Series, limit: TextLimit) -> pd.Series:
    chars = s.str.len()
    if limit.unit == "characters":
        return chars > limit.max
    out = pd.Series(False, index=s.index)
    maybe = (chars > limit.max // 4).fillna(False).to_numpy(dtype=bool)  # a character is at most 4 UTF-8 bytes
    if maybe.any():
        out[maybe] = [len(v.encode("utf-8")) > limit.max for v in s[maybe]]
    return out


def validate_events(
    raw: pd.DataFrame,
    now: datetime,
    first_line: int = 2,
    *,
    earliest: date | datetime | None = None,
    limits: ColumnLimits | None = None,
    line_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``raw`` into (valid rows in canonical types, rejects with line and reason).

    ``first_line`` is the source line of the first row (2 for a CSV with a header; 1-based row number
    for Parquet); ``line_of`` maps row positions to source lines when rows and lines do not line up.
    Naive timestamps are read as UTC. Valid rows carry ``extra`` (JSON text of the extra columns, or None)
    and ``row`` (position in ``raw``).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        hint = ("; the header looks semicolon-separated: use commas"
                if len(raw.columns) == 1 and ";" in str(raw.columns[0]) else "")
        raise EventSchemaError(
            f"missing column(s) {missing}; the usage-event contract needs {list(REQUIRED_COLUMNS)} "
            f"(optional: {list(OPTIONAL_COLUMNS)}); got {list(raw.columns)}. Rename or add the columns{hint}."
        )
    raw = raw.reset_index(drop=True)
    limits = limits or ColumnLimits()
    line_of = line_of or (lambda pos: np.asarray(pos) + first_line)
    n = len(raw)
    reasons = pd.Series([""] * n, index=raw.index, dtype=object)

    def flag(mask: pd.Series, reason: str) -> None:
        mask = pd.Series(mask).fillna(False).to_numpy(dtype=bool)
        reasons.iloc[mask] = np.where(reasons.iloc[mask] == "", reason, reasons.iloc[mask] + "; " + reason)

    t = pd.to_datetime(raw["event_time"], errors="coerce", utc=True, format="mixed")
    t = t.dt.floor("us")  # what timestamptz holds
    flag(t.isna() & raw["event_time"].notna(), "event_time is not a timestamp")
    flag(raw["event_time"].isna(), "event_time is empty")
    flag(t > pd.Timestamp(now), f"event_time is in the future (after {now:%Y-%m-%dT%H:%M:%SZ})")
    if earliest is not None:
        start = pd.Timestamp(earliest)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        flag(t < start, f"event_time is before {start:%Y-%m-%d} (PAE_EARLIEST_EVENT_DATE)")

    def text(col: str) -> pd.Series:
        s = raw[col].astype("string").str.strip()
        flag(s.str.contains("\x00", regex=False), f"{col} contains a NUL byte")
        return s.mask(s == "", pd.NA)

    workspace, user, agent, feature = text("workspace_id"), text("user_id"), text("agent_id"), text("feature")
    flag(workspace.isna(), "workspace_id is empty")
    flag(feature.isna(), "feature is empty")
    for col, s in (("workspace_id", workspace), ("user_id", user), ("agent_id", agent), ("feature", feature)):
        for lim in limits.text.get(col, ()):
            flag(_too_long(s, lim), f"{col} is longer than {lim.max} {lim.unit} ({lim.why})")

    credits = pd.to_numeric(raw["credits"], errors="coerce").astype("float64")
    finite = np.isfinite(credits.fillna(0))
    flag(credits.isna(), "credits is not a number")
    flag(~finite, "credits is not finite")
    flag(credits < 0, "credits is negative")
    credits = credits.round(limits.credits_scale)
    flag(finite & (credits.abs() >= limits.credits_below),
         f"credits exceeds {limits.credits_max_text} (analytics.usage_events.credits is "
         f"numeric({limits.credits_precision},{limits.credits_scale}))")

    status = text("status").str.lower()
    flag(~status.isin(STATUSES), f"status is not one of {list(STATUSES)}")

    if "count" in raw.columns:
        count_num = pd.to_numeric(raw["count"], errors="coerce").astype("float64")
        bad_count = count_num.isna() | (count_num < 1) | (count_num != np.floor(count_num.fillna(0)))
        flag(bad_count, "count is not an integer >= 1")
        too_big = ~bad_count & (count_num > limits.count_max)
        flag(too_big, f"count exceeds {limits.count_max} (analytics.usage_events.count is {limits.count_type})")
        count = count_num.where(~(bad_count | too_big), 1).astype("int64")
    else:
        count = pd.Series(1, index=raw.index, dtype="int64")
    event_id = text("event_id") if "event_id" in raw.columns else None

    extra_cols = [c for c in raw.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    extra = None
    if extra_cols:
        texts, nul = extra_json(raw[extra_cols])
        extra = pd.Series(texts, index=raw.index, dtype=object)
        for c, has_nul in nul.items():
            flag(pd.Series(has_nul, index=raw.index), f"extra column {c!r} contains a NUL byte")

    valid = pd.DataFrame({
        "event_time": t, "workspace_id": workspace, "user_id": user, "agent_id": agent, "feature": feature,
        "credits": credits, "status": status, "count": count,
    })
    if event_id is not None:
        valid["event_id"] = event_id
        # Same event_id, different content: the first row wins, later ones are conflicts (not "already loaded").
        ok = (reasons == "") & event_id.notna()
        if ok.any():
            sub = valid.loc[ok]
            h = pd.Series(pd.util.hash_pandas_object(sub[list(CONTENT_COLUMNS)], index=False).to_numpy(),
                          index=sub.index)
            first = h.groupby(sub["event_id"], sort=False).transform("first")
            flag((h != first).reindex(raw.index, fill_value=False), CONFLICT_IN_FILE)
    valid["extra"] = extra if extra is not None else None
    valid["row"] = np.arange(n)

    bad = (reasons != "").to_numpy()
    rejects = reject_rows(raw, np.flatnonzero(bad), reasons[bad], line_of)
    return valid.loc[~bad].reset_index(drop=True), rejects
