"""An on-demand peak-usage job end to end: hourly and daily peak rows for one metric of one workspace under
scenario ``on_demand``, an as-of date no later than the workspace's nightly one, and the peak reads unchanged."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from core.jobs import ON_DEMAND_SCENARIO
from pipelines.jobs.runner import run_job
from services.peak_usage import PeakUsageReader
from services.prediction_jobs import enqueue_job
from tests.pipelines.jobs.conftest import END, WS0


def _metrics(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "select target_metric, count(*) from analytics.predictions where prediction_type = 'peak_usage'"
            f" and scenario = '{ON_DEMAND_SCENARIO}' group by 1")).all())


def test_peak_usage_job_end_to_end(platform, engine, writer):
    job = enqueue_job(writer, WS0, "peak_usage", "calls", 3, {}, None, None, "test").job  # level 95 and 80
    outcome = run_job(platform, engine, job["id"])
    assert outcome["status"] == "succeeded", outcome
    result = outcome["result"]
    assert result["as_of_date"] == END.isoformat() and result["first_date"] == (END + timedelta(1)).isoformat()
    counts = _metrics(engine)
    assert counts["calls"] == counts["calls_80"] == 3 * 24  # hourly, UTC
    assert counts["calls_peak"] == counts["calls_capacity"] == 3 and counts["calls_week_peak"] == 1
    assert 3 <= counts["calls_peak_hour_probability"] <= 9
    assert sum(counts.values()) == result["rows"] and set(counts) == set(result["target_metrics"])
    with engine.connect() as conn:
        bad = conn.execute(sa.text(
            "select count(*) from analytics.predictions where scenario = :s and target_metric in ('calls', 'calls_80')"
            " and not (confidence_lower <= predicted_value and predicted_value <= confidence_upper)"),
            {"s": ON_DEMAND_SCENARIO}).scalar()
    assert bad == 0
    # reads serve nightly rows only: a workspace without nightly peaks still has none to show
    assert PeakUsageReader(engine).read("ws0", "hourly", 3)["as_of_date"] is None


def test_peak_usage_job_may_not_run_past_the_nightly_as_of(platform, engine, writer):
    with engine.begin() as conn:  # a nightly peak forecast made 5 days before the store's last day
        conn.execute(sa.text(
            "insert into analytics.predictions (workspace_id, prediction_type, target_metric, granularity, scenario,"
            " prediction_date, prediction_hour, predicted_value, as_of_date) values (:ws, 'peak_usage', 'calls',"
            " 'hour', 'likely', :d, 0, 1, :as_of)"),
            {"ws": str(WS0), "d": END - timedelta(4), "as_of": END - timedelta(5)})
    late = enqueue_job(writer, WS0, "peak_usage", "credits", 2, {"as_of_date": END.isoformat()}, None, None, "t").job
    out = run_job(platform, engine, late["id"])
    assert out["status"] == "failed" and "is after the workspace's latest nightly" in out["error"]
    default = enqueue_job(writer, WS0, "peak_usage", "credits", 2, {}, None, None, "t").job
    out = run_job(platform, engine, default["id"])
    assert out["status"] == "succeeded" and out["result"]["as_of_date"] == (END - timedelta(5)).isoformat()


def test_peak_reads_serve_the_nightly_rows_beside_on_demand_ones_of_the_same_date(platform, engine, writer):
    as_of = END - timedelta(5)
    with engine.begin() as conn:  # the nightly day row (the hourly one is from the test above)
        conn.execute(sa.text(
            "insert into analytics.predictions (workspace_id, prediction_type, target_metric, granularity, scenario,"
            " prediction_date, prediction_hour, predicted_value, confidence_lower, confidence_upper, as_of_date)"
            " values (:ws, 'peak_usage', 'calls_peak', 'day', 'likely', :d, 10, 5, 4, 6, :as_of)"
            " on conflict do nothing"), {"ws": str(WS0), "d": as_of + timedelta(1), "as_of": as_of})
    job = enqueue_job(writer, WS0, "peak_usage", "calls", 2, {}, None, None, "t").job
    assert run_job(platform, engine, job["id"])["result"]["as_of_date"] == as_of.isoformat()
    calls = PeakUsageReader(engine).read("ws0", "hourly", 2)["metrics"]["calls"]
    assert [d["peak_value"] for d in calls["daily"]] == [5] and calls["daily"][0]["top_hours"] == []
    assert len(calls["hourly"]) == 1 and calls["hourly"][0]["upper_80"] is None and calls["week_peak"] is None
