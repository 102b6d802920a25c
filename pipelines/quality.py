"""Data-quality gates with Great Expectations 1.x: staged raw events and feature sets.

Two gates, each a pure function over frames that returns a ``QualityReport``:

- ``validate_raw_events``: the staged events of a run's window (as ``read_staged_events`` returns them)
  against the source contract: the exact columns and dtypes of ``EVENT_SCHEMA``, non-null keys,
  ``credits >= 0``, ``count >= 1``, ``status`` in {ok, error}, no event after the end of the logical
  date, the logical date's row volume within ``VOLUME_BAND`` times the median of the previous 14 days,
  and freshness (the latest event within ``MAX_AGE_HOURS`` of the end of the logical date).
- ``validate_features``: the declared feature sets (``pipelines.features.sets``): a non-empty frame,
  entity keys and declared columns present with their declared dtypes, unique non-null entity keys,
  null rates, value ranges (``feature_bounds``) and orderings between columns (recency <= tenure, ...).

``enforce(report)`` raises ``QualityGateError``, whose message is the readable summary, when a gate
failed; that fails the Airflow task. ``report.as_dict()`` is JSON-safe for ``analytics.pipeline_runs``.

GX runs in one ephemeral context per process, with no usage statistics, no network and no progress
bars. Each suite is built once per process; the bounds that depend on the run (end of the logical date,
freshness limit, volume band) are suite parameters. Up to ``MAX_EXAMPLES`` unexpected rows per
expectation come from GX's ``partial_unexpected_index_list``.
"""
from __future__ import annotations

import math
import os
import time as timer
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

from pipelines.ingest.extract import EVENT_SCHEMA, partition_path, staged_dates  # noqa: E402
from pipelines.features.sets import FEATURE_SETS, WEEKLY_SEQUENCE_WEEKS, FeatureSet  # noqa: E402

RAW_EVENTS = "raw_events"
EVENT_KEY_COLUMNS = ("event_time", "workspace_id", "feature", "status", "credits", "count")
STATUSES = ("ok", "error")
VOLUME_BAND = (0.3, 3.0)  # rows of the logical date / median rows per day of the history
VOLUME_HISTORY_DAYS = 14
VOLUME_MIN_HISTORY_DAYS = 7
MAX_AGE_HOURS = 48
MAX_NULL_RATE = 0.0  # per declared feature column
MAX_EXAMPLES = 5
ENTITY_KEYS = {"workspace": ["workspace_id"], "user": ["workspace_id", "user_id"],
               "agent": ["workspace_id", "agent_id"]}

_VOLUME = "raw_events_day"  # GX asset of the logical date's rows
_VOLUME_DESCRIPTION = (f"rows of the logical date are within {VOLUME_BAND[0]:g}x..{VOLUME_BAND[1]:g}x the median"
                       f" of the previous {VOLUME_HISTORY_DAYS} days")
_DETAIL_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
_EVENT_DTYPES = {name: str(dtype) for name, dtype in EVENT_SCHEMA.empty_table().to_pandas().dtypes.items()}
_FEATURE_DTYPES = {"float": "float64", "int": "int64", "bool": "bool"}

# Feature ranges: a numeric column not listed here is >= 0, unless it is unbounded.
_UNIT = (0, 1)
_FEATURE_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "error_rate_28": _UNIT,
    "error_rate_t": _UNIT,
    **{f"error_rate_roll_{w}_{stat}": _UNIT for w in (7, 28) for stat in ("mean", "std", "max")},
    "error_rate_trend_7": (-1, 1),
    "zero_share_28": _UNIT,
    "seasonal_strength_7": _UNIT,
    "trend_strength": _UNIT,
    "frequency_90": _UNIT,
    "share_of_ws_credits_28": _UNIT,
    "dow_t": (0, 6),
    "history_days": (1, None),
    "tenure_days": (1, None),
    "active_days_7": (0, 7),
    "active_days_28": (0, 28),
    "active_days_prev_28": (0, 28),
    "active_days_90": (0, 90),
    **{f"weekly_active_w{i}": (0, 7) for i in range(WEEKLY_SEQUENCE_WEEKS)},
    "engagement_drop_28": (-28, 28),
}
_UNBOUNDED = {"stl_trend_t", "stl_trend_slope_28", "activity_slope_8w", "error_rate_zscore_t"}
# Column pairs (a, b) with b <= a on every row.
_FEATURE_ORDER = {
    "workspace_daily": [("active_users_7", "active_users_t"), ("active_users_28", "active_users_7"),
                        ("users_ever", "active_users_28")],
    "user_behaviour": [("tenure_days", "recency_days"), ("active_days_28", "active_days_7"),
                       ("active_days_90", "active_days_28")],
    "agent_daily": [],
}


class QualityGateError(RuntimeError):
    """A data-quality gate failed. The message is the report's summary; ``report`` holds the details."""

    def __init__(self, report: QualityReport):
        super().__init__(report.summary())
        self.report = report


@dataclass
class QualityReport:
    """Outcome of one gate.

    Attributes:
        suite: What was validated: ``raw_events`` or ``features``.
        as_of: The logical date (raw events) or the as-of date (features).
        passed: True when no expectation failed.
        results: One dict per expectation: ``dataset``, ``name``, ``column``, ``description``, ``success``,
            ``skipped``, ``unexpected_count``, ``unexpected_percent``, ``element_count``, ``observed``,
            ``examples`` (up to 5 unexpected rows or values) and ``note``.
        rows: Rows validated per dataset.
        elapsed_s: Wall time of the validation.
    """

    suite: str
    as_of: date
    passed: bool
    results: list[dict] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if not r["success"]]

    def summary(self) -> str:
        """A readable multi-line report: each failed expectation with counts and examples, then skipped ones."""
        failed = self.failures
        rows = ", ".join(f"{name} {n:,} rows" for name, n in self.rows.items())
        lines = [f"Data quality {'PASSED' if self.passed else 'FAILED'}: {self.suite} as of {self.as_of.isoformat()},"
                 f" {len(failed)} of {len(self.results)} expectations failed ({rows})"]
        for r in failed:
            lines.append(f"  FAILED {_label(r)}: {r['description']}")
            if r["unexpected_count"] is not None:
                lines.append(f"    {r['unexpected_count']:,} of {r['element_count'] or 0:,} rows unexpected"
                             f" ({r['unexpected_percent'] or 0:.2f}%)")
            elif r["observed"] is not None:
                lines.append(f"    observed: {r['observed']}")
            if r["note"]:
                lines.append(f"    {r['note']}")
            lines += [f"    e.g. {example}" for example in r["examples"]]
        skipped: dict[tuple[str, str], list[str]] = {}
        for r in self.results:
            if r["skipped"]:
                skipped.setdefault((r["dataset"], r["note"]), []).append(_label(r))
        for (dataset, note), labels in skipped.items():
            which = ", ".join(labels) if len(labels) <= 3 else f"{len(labels)} {dataset} checks"
            lines.append(f"  skipped {which}: {note}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-safe form, for ``analytics.pipeline_runs.details``."""
        return {
            "suite": self.suite,
            "as_of": self.as_of.isoformat(),
            "passed": self.passed,
            "n_expectations": len(self.results),
            "n_failed": len(self.failures),
            "rows": dict(self.rows),
            "elapsed_s": round(self.elapsed_s, 3),
            "results": [_json_safe(r) for r in self.results],
        }


def enforce(report: QualityReport) -> QualityReport:
    """Return ``report`` if it passed.

    Raises:
        QualityGateError: The report failed; the message is ``report.summary()``.
    """
    if not report.passed:
        raise QualityGateError(report)
    return report


def _label(r: dict) -> str:
    return f"{r['dataset']}.{r['name']}" + (f" [{r['column']}]" if r["column"] else "")


# --- suites -----------------------------------------------------------------------------------------


def _meta(dataset: str, name: str) -> dict:
    return {"dataset": dataset, "name": name}


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


def feature_bounds(fs: FeatureSet) -> dict[str, tuple[float | None, float | None]]:
    """The ``(min, max)`` range checked for each bounded column of a feature set (``None``: open end)."""
    return {f.name: _FEATURE_BOUNDS.get(f.name, (0, None))
            for f in fs.features if f.dtype != "bool" and f.name not in _UNBOUNDED}


def _feature_expectations(fs: FeatureSet) -> list[gxe.Expectation]:
    m, keys = partial(_meta, fs.name), ENTITY_KEYS[fs.entity]
    unique = (gxe.ExpectColumnValuesToBeUnique(column=keys[0], meta=m("unique_key"),
                                               description=f"one row per {keys[0]}")
              if len(keys) == 1 else
              gxe.ExpectCompoundColumnsToBeUnique(column_list=keys, meta=m("unique_key"),
                                                  description=f"one row per ({', '.join(keys)})"))
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=m("not_empty"), description=f"at least one {fs.entity}"),
        gxe.ExpectTableColumnsToMatchSet(column_set=[*keys, *fs.columns], exact_match=False, meta=m("columns_present"),
                                         description=f"entity keys and the {len(fs.columns)} declared columns"
                                                     " are present"),
        *[gxe.ExpectColumnTypeToBe(column=f.name, type_=_FEATURE_DTYPES[f.dtype], meta=m("type"),
                                   description=f"{f.name} has dtype {_FEATURE_DTYPES[f.dtype]}") for f in fs.features],
        *[gxe.ExpectColumnValuesToNotBeNull(column=k, meta=m("key_not_null"), description=f"{k} is never null")
          for k in keys],
        unique,
        *[gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=1 - MAX_NULL_RATE, meta=m("null_rate"),
                                            description=f"{c} has at most {MAX_NULL_RATE:.0%} nulls")
          for c in fs.columns],
        *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi, meta=m("range"),
                                            description=f"{lo} <= {c}" + ("" if hi is None else f" <= {hi}"))
          for c, (lo, hi) in feature_bounds(fs).items()],
        *[gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True, meta=m("column_order"),
                                                      description=f"{b} <= {a}")
          for a, b in _FEATURE_ORDER[fs.name]],
    ]


_SUITES: dict[str, Callable[[], list[gxe.Expectation]]] = {
    RAW_EVENTS: _raw_expectations,
    _VOLUME: _volume_expectations,
    **{name: partial(_feature_expectations, fs) for name, fs in FEATURE_SETS.items()},
}


@lru_cache(maxsize=None)
def _context() -> Any:
    """The process's ephemeral GX context, with one pandas data source."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.data_sources.add_pandas("pae")
    return context


@lru_cache(maxsize=None)
def _gate(dataset: str) -> tuple[gx.ExpectationSuite, Any]:
    """Suite and batch definition of a dataset, built once per process."""
    context = _context()
    suite = context.suites.add(gx.ExpectationSuite(name=dataset, expectations=_SUITES[dataset]()))
    asset = context.data_sources.get("pae").add_dataframe_asset(dataset)
    return suite, asset.add_batch_definition_whole_dataframe("whole")


def _run(dataset: str, frame: pd.DataFrame, shown: list[str], params: dict | None = None) -> list[dict]:
    """Validate ``frame`` against the dataset's suite: one result per expectation, in suite order.

    The suite runs with GX's BASIC result format (counts); only failed expectations run again with
    SUMMARY for the index of their unexpected rows: about a third less time on clean data.

    Args:
        dataset: Suite name (see ``_SUITES``).
        frame: The data.
        shown: Columns shown in every example row, besides the checked ones.
        params: Suite parameters.
    """
    suite, batch_definition = _gate(dataset)
    params = params or {}
    # one consolidated copy: GX filters the frame per column check, and merging blocks each time is slow
    frame = frame.copy() if frame.index.is_unique else frame.reset_index(drop=True)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    by_id = {r.expectation_config.id: r for r in batch.validate(suite, expectation_parameters=params,
                                                                 result_format="BASIC").results}
    out = []
    for expectation in suite.expectations:
        r = by_id[expectation.id]
        if not r.success and not r.exception_info.get("raised_exception"):
            r = batch.validate(expectation, expectation_parameters=params, result_format=_DETAIL_FORMAT)
        out.append(_result(r, frame, shown))
    return out


def _blank(dataset: str, name: str, description: str, column: str | None = None) -> dict:
    return {"dataset": dataset, "name": name, "column": column, "description": description, "success": True,
            "skipped": False, "unexpected_count": None, "unexpected_percent": None, "element_count": None,
            "observed": None, "examples": [], "note": None}


def _checked_columns(kwargs: dict) -> list[str]:
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_A" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return list(kwargs.get("column_list") or [])


def _result(r: Any, frame: pd.DataFrame, shown: list[str]) -> dict:
    """A GX expectation result as a plain dict."""
    cfg, res = r.expectation_config, r.result or {}
    columns = _checked_columns(cfg.kwargs)
    out = _blank(cfg.meta["dataset"], cfg.meta["name"], cfg.description, ", ".join(columns) or None)
    out.update(success=bool(r.success), unexpected_count=res.get("unexpected_count"),
               unexpected_percent=res.get("unexpected_percent"), element_count=res.get("element_count"),
               observed=_json_safe(res.get("observed_value")))
    missing = [c for c in columns if c not in frame.columns]
    if missing:  # the schema expectation reports the drift; checks of a missing column cannot run
        out.update(success=True, skipped=True, note=f"column {', '.join(missing)} is missing")
    elif r.exception_info.get("raised_exception"):
        out.update(success=False, note=f"could not evaluate: {r.exception_info.get('exception_message')}")
    elif not r.success:
        out["examples"] = _examples(res, frame, list(dict.fromkeys([*shown, *columns])))
    return out


def _examples(res: dict, frame: pd.DataFrame, columns: list[str]) -> list:
    """Up to ``MAX_EXAMPLES`` unexpected rows (index label and ``columns``), else values or mismatches."""
    index = res.get("partial_unexpected_index_list")
    mismatched = (res.get("details") or {}).get("mismatched")
    if index:
        rows = frame.loc[list(index)[:MAX_EXAMPLES], columns]
        examples = [{"row": label, **row} for label, row in zip(rows.index, rows.to_dict("records"))]
    elif mismatched:
        examples = [{k: v for k, v in mismatched.items() if v}]
    else:
        examples = list(res.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]
    return _json_safe(examples)


def _json_safe(value: Any) -> Any:
    """Plain JSON types: timestamps as ISO strings, NaN/NaT as None, numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [_json_safe(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if isinstance(value, (str, int, bool)) else str(value)


# --- gates ------------------------------------------------------------------------------------------


def daily_row_counts(staging_dir: Path, until: date, days: int = VOLUME_HISTORY_DAYS) -> pd.Series:
    """Rows per staged day in the ``days`` days before ``until``, read from Parquet footers only.

    Pass it as ``recent_daily_rows`` when the validated window is shorter than the volume history.
    """
    since = until - timedelta(days=days)
    counts = {d: pq.ParquetFile(partition_path(staging_dir, d)).metadata.num_rows
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


def validate_features(frames: dict[str, pd.DataFrame], as_of: date) -> QualityReport:
    """Validate feature-set frames as of a date.

    Args:
        frames: Feature set name (``workspace_daily``, ``user_behaviour``, ``agent_daily``) → its frame, as
            the ``build_*_features`` functions return it (entity keys plus the declared columns). Sets not
            given are not checked.
        as_of: The as-of date of the frames.

    Returns:
        The report; ``enforce`` it to stop the run on failure.

    Raises:
        ValueError: A key is not a declared feature set.
    """
    unknown = sorted(set(frames) - set(FEATURE_SETS))
    if unknown:
        raise ValueError(f"Unknown feature sets {unknown}: keys must be among {sorted(FEATURE_SETS)}.")
    started = timer.perf_counter()
    results = []
    for name, frame in frames.items():
        keys = [k for k in ENTITY_KEYS[FEATURE_SETS[name].entity] if k in frame.columns]
        checked = _run(name, frame, keys)
        if frame.empty:  # one clear failure instead of dtype noise from an empty frame
            for r in checked:
                if r["name"] == "not_empty":
                    r["note"] = f"{name} has no rows as of {as_of}: nothing to train on or score"
                elif r["name"] != "columns_present" and not r["skipped"]:
                    r.update(success=True, skipped=True, note="no rows")
        results += checked
    return QualityReport(suite="features", as_of=as_of, passed=all(r["success"] for r in results), results=results,
                         rows={name: len(frame) for name, frame in frames.items()},
                         elapsed_s=timer.perf_counter() - started)
