"""Dependencies: the settings, the read-only engine and the service, as ``Annotated`` types for routes."""
from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from core.db import database_url
from core.settings import Settings
from services.predictive_analytics import PredictiveAnalytics

READER_ROLE = "pae_reader"


def reader_url(settings: Settings) -> str:
    """The API's database URL: ``api_database_url``, else ``database_url`` as the reader role, no password."""
    if settings.api_database_url:
        return settings.api_database_url
    url = sa.engine.make_url(database_url(settings))
    return sa.engine.URL.create(url.drivername, username=READER_ROLE, host=url.host, port=url.port,
                                database=url.database, query=url.query).render_as_string(hide_password=False)


def create_reader_engine(settings: Settings) -> Engine:
    """A pooled psycopg2 engine for the API, sized by the settings, with a per-statement time limit.

    Autocommit: each read is its own snapshot, with no BEGIN and ROLLBACK round trips around it (a request's
    two or three reads may straddle a nightly publish; each one alone is consistent). No ping on checkout
    either, for the same reason: after a database restart the first query on a dead connection fails (503),
    and SQLAlchemy then discards every pooled connection.
    """
    url = sa.engine.make_url(reader_url(settings)).set(drivername="postgresql+psycopg2")
    options = f"-c statement_timeout={settings.api_statement_timeout_ms} -c application_name=pae-api"
    return sa.create_engine(
        url,
        pool_size=settings.api_pool_size,
        max_overflow=0,
        pool_timeout=5,
        pool_recycle=3600,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3, "options": options},
    )


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_service(request: Request) -> PredictiveAnalytics:
    return request.app.state.service


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ServiceDep = Annotated[PredictiveAnalytics, Depends(get_service)]
