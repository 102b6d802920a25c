"""End to end on platforms that look nothing like the demo (issue: real data): no agents at all, agents that
appear later (partitions written without them), an empty month and a day without events, hourly aggregates
with a ``count`` column, UUID ids, a workspace whose events stop, agent-only traffic (no user ids), and a
single workspace. Each runs the nightly steps without Airflow (``run_nightly``) and must publish what the
data supports, record why the rest was skipped, and never crash."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from core.settings import Settings
from pipelines.ingest.load import load_events
from pipelines.nightly import run_nightly
from pipelines.simulator.generate import generate_platform

pytestmark = pytest.mark.slow
END = date(2026, 6, 30)


def _settings(db_url: str, root) -> Settings:
    return Settings(database_url=db_url, data_dir=root / "pae", shards=1, churn_min_examples=20,
                    forecast_backtest_windows=2, api_key_pepper="odd")


@pytest.fixture
def fresh(engine):
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
    return engine


def _events(root, workspaces: int, days: int, seed: int, end: date = END) -> pd.DataFrame:
    generate_platform(workspaces, days, seed=seed, out_dir=root / "gen", end_date=end)
    return pd.concat([pd.read_parquet(p) for p in sorted((root / "gen" / "events").glob("*.parquet"))],
                     ignore_index=True)


def _load(engine, frame: pd.DataFrame, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    summary = load_events(engine, path, path.parent / "rejects")
    assert summary.rows_rejected == 0, summary.reject_reasons


def _published(engine) -> dict:
    with engine.connect() as conn:
        return {
            "credits_ws": conn.execute(sa.text("select count(distinct workspace_id) from analytics.predictions"
                                               " where prediction_type = 'credit_consumption'")).scalar_one(),
            "churn_rows": conn.execute(sa.text("select count(*) from analytics.churn_predictions")).scalar_one(),
            "steps": dict(conn.execute(sa.text(
                "select distinct on (step) step, status from analytics.pipeline_runs"
                " order by step, started_at desc")).all()),
        }


def test_no_agents_then_an_agent_appears_with_gaps_hourly_counts_and_uuids(fresh, db_url, tmp_path):
    ev = _events(tmp_path, 6, 200, seed=5, end=END + timedelta(days=1))
    ev["agent_id"] = None  # a platform without AI agents
    next_day = ev["event_time"] >= pd.Timestamp(END + timedelta(days=1), tz="UTC")
    later, ev = ev[next_day].copy(), ev[~next_day]
    ws = sorted(ev["workspace_id"].unique())
    ev.loc[ev["workspace_id"] == ws[0], "workspace_id"] = str(uuid.UUID(int=7))  # a UUID id, kept as is
    stopped = ws[1]  # a customer whose events stop 45 days before the run
    ev = ev[~((ev["workspace_id"] == stopped) & (ev["event_time"] >= pd.Timestamp(END - timedelta(days=45), tz="UTC")))]
    month = (ev["event_time"] >= pd.Timestamp("2026-03-01", tz="UTC")) & (ev["event_time"] < pd.Timestamp("2026-04-01", tz="UTC"))
    day = ev["event_time"].dt.date == date(2026, 5, 10)
    ev = ev[~month & ~day]  # an empty month and a day without any event
    # hourly aggregates with a count column: identical calls of an hour become one row
    ev["event_time"] = ev["event_time"].dt.floor("h")
    hourly = (ev.groupby(["event_time", "workspace_id", "user_id", "agent_id", "feature", "status"], dropna=False)
              .agg(credits=("credits", "sum"), count=("count", "sum")).reset_index())
    assert len(hourly) < len(ev)
    _load(fresh, hourly, tmp_path / "in" / "hourly.csv")

    settings = _settings(db_url, tmp_path)
    run_nightly(END, settings)
    first = _published(fresh)
    assert first["credits_ws"] == 6 and first["churn_rows"] > 0
    assert first["steps"]["finalize_consumption"] == "success" and first["steps"]["finalize_churn"] == "success"
    with fresh.connect() as conn:
        empty = conn.execute(sa.text("select details->'empty_feature_sets' from analytics.pipeline_runs"
                                     " where step = 'validate_features'")).scalar_one()
        uuid_ws = conn.execute(sa.text("select count(*) from analytics.entities where external_id = :id"
                                       " and entity_id = cast(:id as uuid)"), {"id": str(uuid.UUID(int=7))}).scalar_one()
    assert empty == ["agent_daily"] and uuid_ws == 1

    # the next day one agent appears: its partition has agent ids, the older ones have none
    later.loc[later["workspace_id"] == ws[0], "workspace_id"] = str(uuid.UUID(int=7))
    later.loc[later.index[0], "agent_id"] = "agent-1"
    _load(fresh, later, tmp_path / "in2" / "next_day.parquet")
    run_nightly(END + timedelta(days=1), settings)
    second = _published(fresh)
    assert second["steps"]["nightly"] == "success" and second["credits_ws"] == 6
    # realised accuracy: the first run's 1-day-ahead forecast of END + 1 is scored against what happened
    with fresh.connect() as conn:
        scored = conn.execute(sa.text(
            "select count(*), sum(n), bool_and(abs_error >= 0 and actual_total >= 0)"
            " from analytics.prediction_accuracy where prediction_type = 'credit_consumption'"
            " and scored_date = :d and horizon_bucket = '1d' and dimension = 'total'"),
            {"d": END + timedelta(days=1)}).one()
    assert scored[0] >= 5 and scored[1] == scored[0] and scored[2]


def test_agent_only_traffic_on_a_single_workspace(fresh, db_url, tmp_path):
    ev = _events(tmp_path, 4, 150, seed=9)
    recent = ev[ev["event_time"] >= pd.Timestamp(END - timedelta(days=14), tz="UTC")]
    ev = ev[ev["workspace_id"] == recent["workspace_id"].value_counts().index[0]].copy()  # one live workspace
    ev["user_id"] = None  # only agents act: nothing to score for churn
    ev["agent_id"] = ev["agent_id"].fillna("agent-x")
    _load(fresh, ev, tmp_path / "in" / "agents.parquet")
    run_nightly(END, _settings(db_url, tmp_path))
    out = _published(fresh)
    assert out["credits_ws"] == 1 and out["churn_rows"] == 0
    assert out["steps"]["finalize_churn"] == "insufficient_data" and out["steps"]["nightly"] == "success"
    with fresh.connect() as conn:
        reason = conn.execute(sa.text("select details->>'reason' from analytics.pipeline_runs"
                                      " where step = 'finalize_churn'")).scalar_one()
    assert "user_behaviour" in reason
