"""Platforms for the dashboard's browser test and budget benchmark.

``nightly_platform`` generates a small synthetic platform, loads it and runs the real nightly steps (every
prediction kind there is) without Airflow, so the browser sees what ``pae run`` publishes. ``bulk_platform``
writes prediction rows straight into the tables (1,000 workspaces, one with 5,000 scored users) for the
budget benchmark, where running the models would take many minutes and measure nothing the dashboard does.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from core.db import get_engine, migrate
from core.settings import Settings

END = date(2026, 6, 30)


def nightly_settings(db_url: str, data_dir: Path, pepper: str) -> Settings:
    return Settings(database_url=db_url, data_dir=data_dir, shards=1, churn_min_examples=20,
                    forecast_backtest_windows=2, api_key_pepper=pepper)


def nightly_platform(settings: Settings, workspaces: int = 6, days: int = 200, seed: int = 17,
                     kinds: str | None = None) -> None:
    """Generate, load and run the nightly steps for END on ``settings.database_url``."""
    from pipelines.ingest.load import load_events
    from pipelines.nightly import run_nightly
    from pipelines.simulator.generate import generate_platform

    engine = get_engine(url=settings.database_url)
    migrate(engine)
    gen = settings.data_dir / "gen"
    generate_platform(workspaces, days, seed=seed, out_dir=gen, end_date=END)
    load_events(engine, gen / "events", settings.data_dir / "rejects")
    run_nightly(END, settings, kinds=kinds)
    engine.dispose()


DIMENSIONS = {"chat": 0.45, "search": 0.25, "api": 0.2, "automation": 0.1}

_BULK_SQL = """
    insert into analytics.entities (entity_type, entity_id, external_id)
    select 'workspace', w.id, w.ext from unnest(cast(:ws as uuid[]), cast(:ext as text[])) as w(id, ext)
    on conflict do nothing;

    insert into analytics.predictions (workspace_id, prediction_type, target_metric, dimension, granularity, scenario,
        prediction_date, predicted_value, confidence_lower, confidence_upper, confidence_level, model_version, as_of_date)
    select w.id, 'credit_consumption', 'credits', s.key, 'day', 'likely', cast(:as_of as date) + d,
           lvl * s.value::float8 * (1 + 0.2 * sin(d)), 0.7 * lvl * s.value::float8, 1.4 * lvl * s.value::float8,
           0.95, '1', :as_of
    from (select id, 50 + (row_number() over ()) % 400 as lvl from unnest(cast(:ws as uuid[])) as id) w,
         generate_series(1, 30) d, jsonb_each_text(cast(:shares as jsonb)) s
    union all
    select w.id, 'credit_consumption', 'credits_cumulative', 'total', 'day', 'likely', cast(:as_of as date) + d,
           lvl * d, 0.85 * lvl * d, 1.15 * lvl * d, 0.95, '1', :as_of
    from (select id, 50 + (row_number() over ()) % 400 as lvl from unnest(cast(:ws as uuid[])) as id) w,
         generate_series(1, 30) d;

    insert into analytics.workspace_daily_metrics (workspace_id, metric_date, dimension, credits, calls, errors,
        active_users)
    select id, cast(:as_of as date) - i, 'total', 40 + 30 * sin(i / 3.0) + (i % 11), 100, 2, 10
    from unnest(cast(:ws as uuid[])) as id, generate_series(0, 89) i;
"""

_CHURN_SQL = """
    insert into analytics.entities (entity_type, entity_id, external_id, workspace_id)
    select 'user', u.id, u.ext, cast(:ws as uuid) from unnest(cast(:ids as uuid[]), cast(:exts as text[])) as u(id, ext)
    on conflict do nothing;

    insert into analytics.churn_predictions (workspace_id, user_id, prediction_date, churn_probability, risk_score,
        risk_factors, recommended_actions, days_until_churn, model_version)
    select cast(:ws as uuid), u.id, :as_of, p, 100 * p,
           jsonb_build_array(
             jsonb_build_object('feature', 'recency_days', 'driver', (array['recency','activity_drop','low_usage','errors',
               'narrow_usage'])[1 + n % 5], 'contribution', round((2 * p)::numeric, 3), 'value', n % 60,
               'direction', 'raises risk', 'text', 'no activity for ' || (n % 60) || ' days'),
             jsonb_build_object('feature', 'active_days_28', 'driver', 'activity_drop', 'contribution',
               round(p::numeric, 3), 'value', n % 28, 'direction', 'raises risk',
               'text', 'active on ' || (n % 28) || ' of the last 28 days'),
             jsonb_build_object('feature', 'silence_ratio', 'driver', 'state', 'contribution', 0, 'value', 1,
               'direction', 'state', 'state', (array['active','lapsing','dormant'])[1 + n % 3], 'text', 'state')),
           jsonb_build_array(jsonb_build_object('action_id', 're_engagement_email', 'title', 'Re-engagement email',
               'reason', 'no activity', 'priority', case when p >= 0.7 then 'high' when p >= 0.4 then 'medium'
               else 'low' end, 'drivers', jsonb_build_array('recency_days'))),
           case when p > 0.5 then 1 + n % 30 end, '1'
    from (select id, n, ((n * 7919) % 1000) / 1000.0 as p
          from unnest(cast(:ids as uuid[])) with ordinality as t(id, n)) u;
"""


def bulk_platform(db_url: str, workspaces: int = 1000, big_users: int = 5000, users_per_workspace: int = 20,
                  as_of: date = END) -> str:
    """Prediction rows for ``workspaces`` workspaces (ws-0001…): a 30-day forecast per workspace and feature,
    90 days of history, and churn scores for ``users_per_workspace`` users each, ``big_users`` in the first.

    Returns the external id of the big workspace.
    """
    from core.ids import entity_uuid

    engine = get_engine(url=db_url)
    migrate(engine)
    exts = [f"ws-{i:04d}" for i in range(1, workspaces + 1)]
    shares = json.dumps({"total": 1.0, **DIMENSIONS})
    with engine.begin() as conn:
        conn.exec_driver_sql("set local synchronous_commit = off")
        params = {"ws": [str(entity_uuid("workspace", e)) for e in exts], "ext": exts, "as_of": as_of, "shares": shares}
        for stmt in _BULK_SQL.split(";\n"):
            if stmt.strip():
                conn.execute(sa.text(stmt), params)
        for w, ext in enumerate(exts):
            n = big_users if w == 0 else users_per_workspace
            users = [f"{ext}-u{i:05d}" for i in range(n)]
            p = {"ws": params["ws"][w], "ids": [str(entity_uuid("user", u)) for u in users], "exts": users,
                 "as_of": as_of}
            for stmt in _CHURN_SQL.split(";\n"):
                if stmt.strip():
                    conn.execute(sa.text(stmt), p)
    engine.dispose()
    return exts[0]
