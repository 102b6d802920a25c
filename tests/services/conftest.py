"""API tests reseed the database between requests of one app without publishing, and revoke keys mid-test.

So by default here the API re-reads the data version and looks every key up on every request (both TTLs 0; the
response cache itself stays on). ``test_api_cache.py`` sets the production TTLs where it tests them.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

os.environ.setdefault("PAE_API_CACHE_VERSION_SECONDS", "0")
os.environ.setdefault("PAE_API_KEY_CACHE_SECONDS", "0")


@contextmanager
def api_client(db_url: str, data_dir: Path, pepper: str, **settings: Any) -> Iterator[TestClient]:
    """The API app on ``db_url`` with key pepper ``pepper`` (and other ``Settings`` fields), started; its
    engine is disposed on exit."""
    from core.settings import Settings
    from services.api.main import create_app

    app = create_app(Settings(database_url=db_url, data_dir=data_dir, api_key_pepper=pepper, **settings))
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def api_key_header(engine: Engine, workspaces: list[str], name: str, pepper: str) -> dict[str, str]:
    """A new API key for ``workspaces``, as the request header that sends it."""
    from services.keys import create_api_key

    return {"X-API-Key": create_api_key(engine, workspaces, name, pepper=pepper)}
