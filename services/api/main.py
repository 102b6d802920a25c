"""The read-only HTTP API: ``create_app(settings)`` (served by ``pae serve``, see ``pipelines/cli.py``).

The app reads through a pooled engine connected as the read-only role ``pae_reader`` (``deps.reader_url``),
so no request can change data. Routes under ``/api/`` need an API key (``auth``); ``/healthz`` and
``/readyz`` do not. OpenAPI: ``/openapi.json``, docs at ``/docs``. The API never changes the schema: migrations
run from the pipeline side (``pae db migrate``). Outside the embedded demo it refuses to start without a
key pepper (``PAE_API_KEY_PEPPER``).
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.settings import Settings, get_settings
from services.agent_errors import UnknownAgentError
from services.api.auth import VerifiedKeys
from services.api.cache import OrjsonResponse, ResponseCache
from services.data_version import DataVersion
from services.api.deps import create_reader_engine, reader_url
from services.api.routers import churn, consumption, health, peak_usage
from services.api.routers import growth
from services.api.routers import error_rates
from services.api.routers import contacts, workspaces  # the dashboard's own routes
from services.api.routers import scenarios, what_if
from services.api.routers import prediction_jobs
from services.api.routers import model_health
from services.api.static import mount_dashboard
from services.scenarios import create_writer_engine
from services.predictive_analytics import (
    NoPredictionsError,
    PredictiveAnalytics,
    UnknownWorkspaceError,
)


async def _not_found(request: Request, exc: LookupError) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The offending input is not echoed back: it may be huge or hostile.
    issues = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": issues})


async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": "database unavailable; try again later"})


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: Where to connect (``api_database_url``, else ``database_url`` as ``pae_reader``), the key
            pepper, pool size and staleness limit; ``None`` reads them from the environment.

    Returns:
        The app; its engine is ``app.state.engine`` and is disposed on shutdown.
    """
    settings = settings or get_settings()
    settings.require_api_pepper()
    engine = create_reader_engine(settings)
    scenario_engine = create_writer_engine(reader_url(settings))  # may write analytics.scenarios, prediction_jobs only

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Database reads run in the loop's default executor (asyncio.to_thread): one thread per pooled
        # connection, so no thread waits for a connection and no connection idles for want of a thread.
        executor = ThreadPoolExecutor(max_workers=settings.api_pool_size, thread_name_prefix="pae-db")
        asyncio.get_running_loop().set_default_executor(executor)
        yield
        engine.dispose()
        scenario_engine.dispose()

    app = FastAPI(
        title="Predictive Analytics Engine API",
        version="1.0.0",
        summary="Read-only access to credit-consumption forecasts and churn scores written by the nightly pipeline.",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,  # orjson bodies; response models still validate and document
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.scenario_engine = scenario_engine
    data_version = DataVersion(engine, settings.api_cache_version_seconds)  # moves when a run publishes
    app.state.response_cache = ResponseCache(engine, settings, data_version)  # GET answers until it moves
    app.state.verified_keys = VerifiedKeys(settings.api_key_cache_seconds)
    app.state.service = PredictiveAnalytics(engine, history_days=settings.api_history_days,
                                            data_version=data_version if settings.api_response_cache else None)
    app.add_exception_handler(UnknownWorkspaceError, _not_found)
    app.add_exception_handler(NoPredictionsError, _not_found)
    app.add_exception_handler(UnknownAgentError, _not_found)
    app.add_exception_handler(RequestValidationError, _invalid)
    for exc in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.add_exception_handler(exc, _db_unavailable)
    app.include_router(health.router)
    app.include_router(consumption.router)
    app.include_router(churn.router)
    app.include_router(growth.router)
    app.include_router(peak_usage.router)
    app.include_router(error_rates.router)
    app.include_router(workspaces.router)
    app.include_router(contacts.router)
    app.include_router(what_if.router)
    app.include_router(scenarios.router)
    app.include_router(prediction_jobs.router)
    app.include_router(model_health.router)
    mount_dashboard(app)  # the built web/ bundle at /, after every API route
    return app
