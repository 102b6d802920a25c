"""A tiny platform for on-demand jobs: 3 workspaces x 60 days loaded, staged and aggregated (daily and hourly),
as the nightly features step leaves them, and the API's write role to enqueue jobs with."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from core.ids import entity_uuid
from core.settings import Settings
from pipelines.features.hourly import refresh_hourly_aggregates
from pipelines.features.store import refresh_daily_aggregates
from pipelines.ingest.extract import extract
from pipelines.ingest.load import load_events
from services.api.deps import reader_url
from services.scenarios import create_writer_engine
from tests.conftest import make_events

END = date(2026, 3, 31)
WS0 = entity_uuid("workspace", "ws0")


@pytest.fixture(scope="module")
def platform(engine, db_url, tmp_path_factory) -> Settings:
    """3 workspaces x 60 days loaded, staged and aggregated (the data the nightly features step leaves)."""
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate analytics.prediction_jobs, " + ", ".join(f"analytics.{t}"
                                                                                 for t in ANALYTICS_TABLES)))
    root = tmp_path_factory.mktemp("jobs")
    settings = Settings(database_url=db_url, data_dir=root / "pae", threads=1, forecast_backtest_windows=1,
                        forecast_backtest_horizon_days=14, forecast_refit_totals=False, forecast_robust=False,
                        job_lease_seconds=30)
    make_events(3, 60, end=END, seed=3).to_csv(root / "events.csv", index=False)
    load_events(engine, root / "events.csv", root / "rejects")
    extract(engine, END, settings.staging_dir)
    refresh_daily_aggregates(settings.staging_dir, settings.offline_store_dir)
    refresh_hourly_aggregates(settings.staging_dir, settings.offline_store_dir, END)
    with engine.begin() as conn:  # a nightly row of ws0 that on-demand rows must never replace
        conn.execute(sa.text(
            "insert into analytics.predictions (workspace_id, prediction_type, target_metric, dimension, scenario,"
            " prediction_date, predicted_value, model_version, as_of_date) values (:ws, 'credit_consumption',"
            " 'credits', 'total', 'likely', :d, 123, 'nightly', :as_of)"), {"ws": str(WS0), "d": END + timedelta(1),
                                                                          "as_of": END})
    return settings


@pytest.fixture(scope="module")
def writer(platform):
    eng = create_writer_engine(reader_url(platform))  # the API's role
    yield eng
    eng.dispose()
