"""Contracts other parts rely on, defined once: prediction kinds, metric names, statuses, the event schema.

The API, the BI views, the dashboard and the pipeline all use these names; the storage contract is in
DESIGN.md and the migrations under ``sql/``.
"""
from __future__ import annotations

from typing import Final

# analytics.predictions.dimension of a workspace's whole (not broken down by feature/service or agent)
TOTAL: Final = "total"

# analytics.predictions.prediction_type
CREDIT_CONSUMPTION: Final = "credit_consumption"
GROWTH: Final = "growth"
PEAK_USAGE: Final = "peak_usage"
ERROR_RATE: Final = "error_rate"

# analytics.predictions.target_metric of credit_consumption
CREDITS: Final = "credits"
CREDITS_CUMULATIVE: Final = "credits_cumulative"  # running total from the first forecast day

# analytics.predictions.target_metric of peak_usage (sql/009_peak_usage.sql): hourly ``calls``/``credits`` (UTC
# date and hour) at the published level and ``<metric>_80`` at 80%; per LOCAL day ``<metric>_peak`` (the peak
# value, prediction_hour = the local peak hour), ``<metric>_capacity`` (capacity need with headroom),
# ``<metric>_peak_hour_probability`` (the three likeliest peak hours) and ``<metric>_week_peak``.
CALLS: Final = "calls"
PEAK_METRICS: Final = (CALLS, CREDITS)
PEAK_SUFFIX: Final = "_peak"
CAPACITY_SUFFIX: Final = "_capacity"
PEAK_HOUR_PROBABILITY_SUFFIX: Final = "_peak_hour_probability"
WEEK_PEAK_SUFFIX: Final = "_week_peak"
INTERVAL_80_SUFFIX: Final = "_80"

# analytics.predictions.granularity and scenario defaults
DAY: Final = "day"
HOUR: Final = "hour"
LIKELY: Final = "likely"
# the scenarios the nightly run publishes (growth: worst/likely/best; the other kinds: likely); on-demand jobs publish
# under their own, core.jobs.ON_DEMAND_SCENARIO. Each publish target owns one of these sets (pipelines/publish.py).
NIGHTLY_SCENARIOS: Final = ("worst", LIKELY, "best")

# analytics.churn_predictions target (ml_models.target_metric)
CHURN_30D: Final = "churn_30d"

# usage_events.status
EVENT_STATUSES: Final = ("ok", "error")

# The source contract (DESIGN.md): column -> Arrow type name, in staging order. ``count`` is optional in
# input files (rows that aggregate identical calls) and always present once staged.
EVENT_COLUMNS: Final = {
    "event_time": "timestamp[us, tz=UTC]",
    "workspace_id": "string",
    "user_id": "string",
    "agent_id": "string",
    "feature": "string",
    "credits": "float64",
    "status": "string",
    "count": "int64",
}
REQUIRED_EVENT_COLUMNS: Final = tuple(c for c in EVENT_COLUMNS if c != "count")


class RunStatus:
    """analytics.pipeline_runs.status and the status of a prediction kind's result."""

    RUNNING: Final = "running"
    SUCCESS: Final = "success"
    FAILED: Final = "failed"
    SKIPPED: Final = "skipped"
    INSUFFICIENT_DATA: Final = "insufficient_data"
    ABANDONED: Final = "abandoned"  # left running by a process that died


def event_arrow_schema():
    """The staged events' Arrow schema (pyarrow is imported only by callers that need it)."""
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(),
             "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC")}
    return pa.schema([(name, types[t]) for name, t in EVENT_COLUMNS.items()])
