"""The main job on demo data: generate and load a synthetic platform, then run the nightly DAG through
Airflow (``dag.test()``, in this process) for the latest date, and say where everything is."""
from __future__ import annotations

import time
from datetime import date

import sqlalchemy as sa

from core.db import database_url, get_engine, migrate
from core.runs import recorded_step
from core.settings import Settings
from pipelines.ingest.load import load_events
from pipelines.simulator.generate import generate_platform

SUMMARY_TABLES = ("usage_events", "entities", "workspace_daily_metrics", "ml_features", "predictions",
                  "churn_predictions", "ml_models", "pipeline_runs")


def _redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def run_demo(settings: Settings, workspaces: int, days: int, seed: int, as_of: date, airflow: bool = True) -> int:
    from pipelines.airflow_env import run_dag_in_process
    from pipelines.nightly import run_nightly

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
    if airflow:
        state = timed("nightly_dag", run_dag_in_process, settings, as_of)
        if state != "success":
            print(f"the nightly DAG run ended as {state}; see analytics.pipeline_runs and {settings.data_dir}/airflow")
            return 1
    else:
        timed("nightly", run_nightly, as_of, settings)

    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"select count(*) from analytics.{t}")).scalar_one() for t in SUMMARY_TABLES}
        steps = conn.execute(sa.text(
            "select distinct on (step) step, status, round(duration_s::numeric, 1) from analytics.pipeline_runs"
            " where logical_date = :d order by step, started_at desc"), {"d": as_of}).all()
    print("\nPredictive Analytics Engine: nightly run as of", as_of)
    print(f"  database        {_redact(url)}{'' if settings.database_url else '  (embedded, under ' + str(settings.pgdata_dir) + ')'}")
    print(f"  demo data       {gen.n_workspaces} workspaces, {gen.n_users:,} users, {gen.n_agents} agents, "
          f"{gen.start_date}..{gen.end_date}; ground truth in {demo_dir / 'ground_truth'}")
    print(f"  loaded          {loaded.rows_inserted:,} new events ({loaded.rows_already_loaded:,} already loaded, "
          f"{loaded.rows_rejected} rejected)")
    print(f"  stores          staging {settings.staging_dir}, offline features {settings.offline_store_dir}")
    print("  table rows      " + ", ".join(f"analytics.{t}={n:,}" for t, n in counts.items()))
    print("  steps           " + ", ".join(f"{s}={st} ({d}s)" for s, st, d in steps))
    print("  timings (s)     " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    print("\nWhere to look:")
    print("  predictions     psql: select * from analytics.predictions order by workspace_id, prediction_date limit 20;")
    print(f"  MLflow UI       .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri} --port 5000")
    pepper = "" if settings.embedded_database else "export PAE_API_KEY_PEPPER=<a long random secret>; "
    print(f"  API             {pepper}.venv/bin/pae api-key create --workspace ws-0001   then   "
          ".venv/bin/pae serve --port 8000")
    print(f"  Airflow state   {settings.data_dir / 'airflow'} (AIRFLOW_HOME; airflow.cfg in the repo)")
    print(f"  dashboard       {pepper}.venv/bin/pae serve --port 8000   then open http://127.0.0.1:8000/?workspace=ws-0001"
          "   and paste a key from   .venv/bin/pae api-key create --workspace ws-0001")
    return 0
