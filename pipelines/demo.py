"""The main job on demo data: one call from an empty machine to a populated feature store."""
from __future__ import annotations

import time
from datetime import date

import sqlalchemy as sa

from pipelines.db import database_url, get_engine, migrate
from pipelines.extract import extract
from pipelines.feature_store import build_feature_store
from pipelines.generate import generate_platform
from pipelines.load import load_events
from pipelines.runs import recorded_step
from pipelines.settings import Settings

SUMMARY_TABLES = ("usage_events", "entities", "workspace_daily_metrics", "ml_features", "pipeline_runs")


def _redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def run_demo(settings: Settings, workspaces: int, days: int, seed: int, as_of: date) -> int:
    timings: dict[str, float] = {}

    def timed(name: str, fn, *a, **kw):
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        timings[name] = time.perf_counter() - t0
        return out

    url = timed("database", database_url, settings)
    engine = get_engine(url=url)
    timed("migrate", migrate, engine)
    demo_dir = settings.data_dir / "demo"
    gen = timed("generate", generate_platform, workspaces, days, seed, demo_dir, end_date=as_of)
    with recorded_step(engine, "load_events", as_of) as rec:
        loaded = timed("load", load_events, engine, demo_dir / "events", settings.rejects_dir)
        rec.row_counts = {"inserted": loaded.rows_inserted, "rejected": loaded.rows_rejected}
    with recorded_step(engine, "extract", as_of) as rec:
        ex = timed("extract", extract, engine, as_of, settings.staging_dir, settings.late_window_days)
        rec.row_counts = {"rows": ex.rows, "days": len(ex.dates)}
    with recorded_step(engine, "features", as_of) as rec:
        fs = timed("features", build_feature_store, engine, settings.staging_dir, settings.offline_store_dir, as_of)
        rec.row_counts = fs.rows

    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"select count(*) from analytics.{t}")).scalar_one() for t in SUMMARY_TABLES}
    print("\nPredictive Analytics Engine: demo run as of", as_of)
    print(f"  database        {_redact(url)}{'' if settings.database_url else '  (embedded)'}")
    print(f"  demo data       {gen.n_workspaces} workspaces, {gen.n_users:,} users, {gen.n_agents} agents, "
          f"{gen.start_date}..{gen.end_date}")
    print(f"  loaded          {loaded.rows_inserted:,} new events ({loaded.rows_already_loaded:,} already loaded, "
          f"{loaded.rows_rejected} rejected)")
    print(f"  staged          {ex.rows:,} rows in {len(ex.dates)} day partitions under {settings.staging_dir}")
    print(f"  feature store   {settings.offline_store_dir} (offline), analytics.ml_features (online)")
    print(f"  ground truth    {demo_dir / 'ground_truth'}")
    print("  table rows      " + ", ".join(f"analytics.{t}={n:,}" for t, n in counts.items()))
    print("  timings (s)     " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    return 0
