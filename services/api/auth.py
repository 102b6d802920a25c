"""Access control: every ``/api/`` request carries an ``X-API-Key`` scoped to the workspaces it may read.

Missing, unknown or revoked key: 401. A valid key asking about a workspace outside its scope: 403, whether or
not that workspace exists (the scope check maps the id to its UUID without the database, so it tells nothing
about other tenants).

A verified key is remembered for ``api_key_cache_seconds`` (30 s) per worker, by its HMAC, so most requests skip
the lookup: a revoked key keeps working for at most that long. Unknown and revoked keys are never remembered.
"""
from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security, status
from fastapi.security import APIKeyHeader

from core.ids import entity_uuid
from services.api.deps import EngineDep, SettingsDep
from services.api.schemas import EntityId
from services.keys import ApiKey, hash_api_key, verify_api_key

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="API key scoped to one or more workspaces (`pae api-key create`).")
WorkspaceIdQuery = Annotated[EntityId, Query(description="The workspace's UUID or its external (source) id.",
                                             examples=["acme-corp"])]


class VerifiedKeys:
    """Keys verified within the last ``seconds``, by HMAC (never the key itself), at most ``max_keys``."""

    def __init__(self, seconds: float, max_keys: int = 10_000):
        self.seconds = seconds
        self.max_keys = max_keys
        self._keys: dict[str, tuple[float, ApiKey]] = {}

    def get(self, key_hash: str) -> ApiKey | None:
        hit = self._keys.get(key_hash)
        if hit is None:
            return None
        if time.monotonic() >= hit[0]:
            del self._keys[key_hash]
            return None
        return hit[1]

    def put(self, key_hash: str, key: ApiKey) -> None:
        if self.seconds <= 0:
            return
        if len(self._keys) >= self.max_keys:
            now = time.monotonic()
            self._keys = {h: v for h, v in self._keys.items() if v[0] > now}
            if len(self._keys) >= self.max_keys:
                self._keys.clear()
        self._keys[key_hash] = (time.monotonic() + self.seconds, key)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "ApiKey"})


async def require_api_key(
    request: Request, engine: EngineDep, settings: SettingsDep,
    key: Annotated[str | None, Security(api_key_header)] = None,
) -> ApiKey:
    """The verified key of the request; 401 when it is missing, unknown or revoked."""
    if not key:
        raise _unauthorized("missing API key: send it in the X-API-Key header")
    pepper = settings.api_key_pepper.get_secret_value()
    remembered: VerifiedKeys | None = getattr(request.app.state, "verified_keys", None)
    key_hash = hash_api_key(key, pepper)
    if remembered is not None and (found := remembered.get(key_hash)) is not None:
        return found
    found = await asyncio.to_thread(verify_api_key, engine, key, pepper=pepper)
    if found is not None and not found.revoked and remembered is not None:
        remembered.put(key_hash, found)
    if found is None:
        raise _unauthorized("invalid API key")
    if found.revoked:
        raise _unauthorized("API key revoked")
    return found


ApiKeyDep = Annotated[ApiKey, Depends(require_api_key)]


async def authorized_workspace(key: ApiKeyDep, workspace_id: WorkspaceIdQuery) -> str:
    """The ``workspace_id`` query parameter, once the key is known to cover it (else 403)."""
    if str(entity_uuid("workspace", workspace_id)) not in key.workspace_ids:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key does not cover the requested workspace")
    return workspace_id


WorkspaceDep = Annotated[str, Depends(authorized_workspace)]
