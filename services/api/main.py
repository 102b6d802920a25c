"""The read-only HTTP API: ``create_app(settings)``, and the ``serve`` / ``api-key`` commands of the ``pae`` CLI.

The app reads through a pooled engine connected as the read-only role ``pae_reader`` (``deps.reader_url``),
so no request can change data. Routes under ``/api/`` need an API key (``auth``); ``/healthz`` and
``/readyz`` do not. OpenAPI: ``/openapi.json``, docs at ``/docs``.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.settings import Settings, get_settings
from services.api.deps import create_reader_engine
from services.api.routers import churn, consumption, health
from services.predictive_analytics import NoPredictionsError, PredictiveAnalytics, UnknownWorkspaceError


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
    engine = create_reader_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Database reads run in the loop's default executor (asyncio.to_thread): one thread per pooled
        # connection, so no thread waits for a connection and no connection idles for want of a thread.
        executor = ThreadPoolExecutor(max_workers=settings.api_pool_size, thread_name_prefix="pae-db")
        asyncio.get_running_loop().set_default_executor(executor)
        yield
        engine.dispose()

    app = FastAPI(
        title="Predictive Analytics Engine API",
        version="1.0.0",
        summary="Read-only access to credit-consumption forecasts and churn scores written by the nightly pipeline.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.service = PredictiveAnalytics(engine, history_days=settings.api_history_days)
    app.add_exception_handler(UnknownWorkspaceError, _not_found)
    app.add_exception_handler(NoPredictionsError, _not_found)
    app.add_exception_handler(RequestValidationError, _invalid)
    for exc in (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError):
        app.add_exception_handler(exc, _db_unavailable)
    app.include_router(health.router)
    app.include_router(consumption.router)
    app.include_router(churn.router)
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(create_app(get_settings()), host=args.host, port=args.port, workers=1)
    return 0


def _admin_engine(settings: Settings):
    """The ``DATABASE_URL`` engine (the schema owner may write ``analytics.api_keys``), schema migrated."""
    from core.db import get_engine, migrate

    engine = get_engine(settings)
    migrate(engine)
    return engine


def cmd_api_key_create(args: argparse.Namespace) -> int:
    from services.keys import create_api_key

    settings = get_settings()
    try:
        key = create_api_key(_admin_engine(settings), args.workspace, args.name,
                             pepper=settings.api_key_pepper.get_secret_value())
    except (UnknownWorkspaceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("API key created; it is shown only this once:", file=sys.stderr)
    print(key)
    return 0


def cmd_api_key_list(args: argparse.Namespace) -> int:
    from services.keys import list_api_keys

    for k in list_api_keys(_admin_engine(get_settings())):
        state = f"revoked {k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "active"
        print(f"{k['id']}  …{k['key_hint']}  {state:<24} {k['name']!r}  workspaces: {', '.join(k['workspace_ids'])}")
    return 0


def cmd_api_key_revoke(args: argparse.Namespace) -> int:
    from services.keys import revoke_api_key

    try:
        revoked = revoke_api_key(_admin_engine(get_settings()), args.key_id)
    except ValueError:
        print(f"error: {args.key_id!r} is not a key id (a UUID from `pae api-key list`)", file=sys.stderr)
        return 2
    if not revoked:
        print(f"error: no active key has id {args.key_id}", file=sys.stderr)
        return 2
    print(f"revoked {args.key_id}")
    return 0


def add_api_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve`` and ``api-key create|list|revoke`` on the main CLI's subparsers.

    Args:
        subparsers: The ``add_subparsers()`` result of the ``pae`` parser; each command sets ``func``.
    """
    serve = subparsers.add_parser("serve", help="serve the read-only HTTP API (uvicorn, one worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    keys = subparsers.add_parser("api-key", help="manage API keys").add_subparsers(dest="api_key_command",
                                                                                   required=True)
    create = keys.add_parser("create", help="create a key for one or more workspaces; prints it once")
    create.add_argument("--workspace", action="append", required=True,
                        help="workspace UUID or external id; repeat for several")
    create.add_argument("--name", default="api key", help="who or what the key is for")
    create.set_defaults(func=cmd_api_key_create)
    keys.add_parser("list", help="list keys (hints only, never the keys)").set_defaults(func=cmd_api_key_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_api_key_revoke)
