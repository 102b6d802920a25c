"""Liveness and readiness probes (no API key)."""
from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from services.api.deps import EngineDep, SettingsDep
from services.api.schemas import Liveness, Readiness, Unavailable

router = APIRouter(tags=["health"])

# created_at columns are timestamps without time zone written in the server's zone; ::timestamptz reads them
# in the session's zone, which is the same unless a client overrides it.
_PREDICTIONS_AT = sa.text("""
    select (select max(created_at) from analytics.predictions)::timestamptz as predictions_at,
           (select max(created_at) from analytics.churn_predictions)::timestamptz as churn_at,
           now() as now
""")
_LATEST_RUN = sa.text("""
    select step, logical_date, finished_at
    from analytics.pipeline_runs
    where status = 'success' and finished_at is not null
    order by finished_at desc
    limit 1
""")


def _freshness(latest_at, now, stale_after_hours: float) -> dict[str, Any]:
    age = None if latest_at is None else (now - latest_at).total_seconds() / 3600
    return {"latest_at": latest_at, "age_hours": age, "stale": age is None or age > stale_after_hours}


def _readiness(engine: Engine, stale_after_hours: float) -> dict[str, Any]:
    with engine.connect() as conn:
        times = conn.execute(_PREDICTIONS_AT).one()
        run = conn.execute(_LATEST_RUN).first()
    run_at, step, logical_date = (run.finished_at, run.step, run.logical_date) if run else (None, None, None)
    parts = {
        "predictions": _freshness(times.predictions_at, times.now, stale_after_hours),
        "churn_predictions": _freshness(times.churn_at, times.now, stale_after_hours),
        "pipeline_run": {**_freshness(run_at, times.now, stale_after_hours), "step": step,
                         "logical_date": logical_date},
    }
    stale = any(p["stale"] for p in parts.values())
    return {"status": "stale" if stale else "ok", "database": "ok", "stale_after_hours": stale_after_hours, **parts}


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process serves requests")
async def healthz() -> dict:
    """Answers without touching the database."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the database answers; how fresh predictions and pipeline runs are",
    responses={503: {"model": Unavailable, "description": "The database is unreachable or not migrated."}},
)
async def readyz(engine: EngineDep, settings: SettingsDep) -> Any:
    """200 while the database answers, with ``status`` ``stale`` when predictions or the latest successful
    pipeline run are older than ``stale_after_hours`` (or missing); 503 when the database does not answer."""
    try:
        return await asyncio.to_thread(_readiness, engine, settings.api_stale_after_hours)
    except sa.exc.DBAPIError as exc:
        return JSONResponse(status_code=503, content={
            "status": "unavailable", "detail": f"database unavailable ({type(exc.orig).__name__})"})
