"""The raw-data gate: staged events of a run's window against the source contract.

``validate_raw_events`` checks the exact columns and dtypes of ``EVENT_SCHEMA``, non-null keys,
``credits >= 0``, ``count >= 1``, ``status`` in {ok, error}, no event after the end of the logical date,
the logical date's row volume within ``VOLUME_BAND`` times the median of the previous 14 days, and
freshness (the latest event within ``MAX_AGE_HOURS`` of the end of the logical date).
"""
from __future__ import annotations

import time as timer
from datetime import date, datetime, time, timedelta, timezone
from functools import partial

import pandas as pd

from core.contracts import EVENT_STATUSES
from core.storage import StoragePath, parquet_rows
from pipelines.ingest.extract import EVENT_SCHEMA, partition_path, staged_dates
from pipelines.quality import QualityReport, _blank, _meta, _run, gxe, register_suite

RAW_EVENTS = "raw_events"
EVENT_KEY_COLUMNS = ("event_time", "workspace_id", "feature", "status", "credits", "count")
STATUSES = EVENT_STATUSES
VOLUME_BAND = (0.3, 3.0)  # rows of the logical date / median rows per day of the history
VOLUME_HISTORY_DAYS = 14
VOLUME_MIN_HISTORY_DAYS = 7
MAX_AGE_HOURS = 48

_VOLUME = "raw_events_day"  # GX asset of the logical date's rows
_VOLUME_DESCRIPTION = (f"rows of the logical date are within {VOLUME_BAND[0]:g}x..{VOLUME_BAND[1]:g}x the median"
                       f" of the previous {VOLUME_HISTORY_DAYS} days")
_EVENT_DTYPES = {name: str(dtype) for name, dtype in EVENT_SCHEMA.empty_table().to_pandas().dtypes.items()}


def _raw_expectations() -> list[gxe.Expectation]:
    m = partial(_meta, RAW_EVENTS)
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(EVENT_SCHEMA.names), exact_match=True,
                                         meta=m("schema_columns"),
                                         description=f"columns are exactly {', '.join(EVENT_SCHEMA.names)}"),
        *[gxe.ExpectColumnTypeToBe(column=c, type_=t, meta=m("schema_type"), description=f"{c} has dtype {t}")
          for c, t in _EVENT_DTYPES.items()],
        *[gxe.ExpectColumnValuesToNotBeNull(column=c, meta=m("not_null"), description=f"{c} is never null")
          for c in EVENT_KEY_COLUMNS],
        gxe.ExpectColumnValuesToBeBetween(column="credits", min_value=0, meta=m("credits_non_negative"),
                                          description="credits >= 0"),
        gxe.ExpectColumnValuesToBeBetween(column="count", min_value=1, meta=m("count_at_least_one"),
                                          description="count >= 1"),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES), meta=m("status_known"),
                                        description=f"status is one of {', '.join(STATUSES)}"),
        gxe.ExpectColumnValuesToBeBetween(column="event_time", max_value={"$PARAMETER": "end"}, strict_max=True,
                                          meta=m("no_future_timestamps"),
                                          description="event_time is before the end of the logical date (UTC)"),
        gxe.ExpectColumnMaxToBeBetween(column="event_time", min_value={"$PARAMETER": "fresh_after"},
                                       meta=m("freshness"),
                                       description=f"the latest event is within {MAX_AGE_HOURS} h of the end of"
                                                   " the logical date"),
    ]


def _volume_expectations() -> list[gxe.Expectation]:
    return [gxe.ExpectTableRowCountToBeBetween(min_value={"$PARAMETER": "volume_min"},
                                               max_value={"$PARAMETER": "volume_max"},
                                               meta=_meta(RAW_EVENTS, "volume"), description=_VOLUME_DESCRIPTION)]


register_suite(RAW_EVENTS, _raw_expectations)
register_suite(_VOLUME, _volume_expectations)


def daily_row_counts(staging_dir: StoragePath, until: date, days: int = VOLUME_HISTORY_DAYS) -> pd.Series:
    """Rows per staged day in the ``days`` days before ``until``, read from Parquet footers only.

    Pass it as ``recent_daily_rows`` when the validated window is shorter than the volume history.
    """
    since = until - timedelta(days=days)
    counts = {d: parquet_rows(partition_path(staging_dir, d))
              for d in staged_dates(staging_dir) if since <= d < until}
    return pd.Series(counts, dtype="int64", name="rows")


def _volume_result(events: pd.DataFrame, logical_date: date, recent_daily_rows: pd.Series | None) -> dict:
    """Rows of the logical date against the band around the median of the previous days (or a skip)."""
    result = _blank(RAW_EVENTS, "volume", _VOLUME_DESCRIPTION)
    if not isinstance(events.get("event_time", pd.Series()).dtype, pd.DatetimeTZDtype):
        return {**result, "skipped": True, "note": "event_time is missing or not a UTC timestamp"}
    day = pd.Timestamp(logical_date)
    days = events["event_time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    if recent_daily_rows is None:  # count them in the window, zero-filling days without events
        counts = days[days < day].value_counts()
        start = counts.index.min() if len(counts) else day
        recent_daily_rows = counts.reindex(pd.date_range(start, day, freq="D", inclusive="left"), fill_value=0)
    history_days = pd.to_datetime(recent_daily_rows.index)
    in_window = (history_days >= day - pd.Timedelta(days=VOLUME_HISTORY_DAYS)) & (history_days < day)
    history = recent_daily_rows[in_window]
    if len(history) < VOLUME_MIN_HISTORY_DAYS:
        return {**result, "skipped": True,
                "note": f"only {len(history)} days of history before {logical_date}, need {VOLUME_MIN_HISTORY_DAYS};"
                        " pass recent_daily_rows, e.g. daily_row_counts(staging_dir, logical_date)"}
    median = float(history.median())
    lo, hi = VOLUME_BAND[0] * median, VOLUME_BAND[1] * median
    (result,) = _run(_VOLUME, events.loc[days == day, []], [], {"volume_min": lo, "volume_max": hi})
    result["note"] = (f"expected {lo:,.0f}..{hi:,.0f} rows on {logical_date}"
                      f" (median of {len(history)} days: {median:,.0f})")
    return result


def validate_raw_events(events: pd.DataFrame, logical_date: date, recent_daily_rows: pd.Series | None = None,
                        now: datetime | None = None) -> QualityReport:
    """Validate the staged raw events of a run's window (the days up to ``logical_date``).

    Args:
        events: Staged events as ``read_staged_events`` returns them: the ``EVENT_SCHEMA`` columns, with
            ``event_time`` as ``datetime64[us, UTC]``.
        logical_date: The run's logical date ``D`` (a UTC day).
        recent_daily_rows: Rows per day (index: dates) before ``D``, e.g. ``daily_row_counts``. ``None``:
            counted in ``events``. With fewer than ``VOLUME_MIN_HISTORY_DAYS`` of the last
            ``VOLUME_HISTORY_DAYS`` days, the volume check is skipped with a note.
        now: Wall-clock time of a run that starts before the end of ``D`` (naive means UTC): events after
            ``min(end of D, now)`` are in the future, and freshness is measured from that instant.
            ``None`` (deterministic, the default): the end of ``D``.

    Returns:
        The report; ``enforce`` it to stop the run on failure.
    """
    started = timer.perf_counter()
    reference = datetime.combine(logical_date + timedelta(days=1), time(), tzinfo=timezone.utc)
    if now is not None:
        now = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
        reference = min(reference, now)
    fresh_after = reference - timedelta(hours=MAX_AGE_HOURS)
    params = {"end": pd.Timestamp(reference), "fresh_after": pd.Timestamp(fresh_after)}
    results = _run(RAW_EVENTS, events, [c for c in EVENT_SCHEMA.names if c in events.columns], params)
    for r in results:
        if r["success"] or r["note"]:
            continue
        if r["name"] == "no_future_timestamps":
            r["note"] = f"events must be before {reference.isoformat()}"
        elif r["name"] == "freshness":
            r["note"] = (("no events; " if r["observed"] is None else "")
                         + f"the latest event must be at or after {fresh_after.isoformat()}")
    results.append(_volume_result(events, logical_date, recent_daily_rows))
    return QualityReport(suite=RAW_EVENTS, as_of=logical_date, passed=all(r["success"] for r in results),
                         results=results, rows={RAW_EVENTS: len(events)}, elapsed_s=timer.perf_counter() - started)
