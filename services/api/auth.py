"""Access control: every ``/api/`` request carries an ``X-API-Key`` scoped to the workspaces it may read.

Missing, unknown or revoked key: 401. A valid key asking about a workspace outside its scope: 403, whether or
not that workspace exists (the scope check maps the id to its UUID without the database, so it tells nothing
about other tenants).
"""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Security, status
from fastapi.security import APIKeyHeader

from core.ids import entity_uuid
from services.api.deps import EngineDep, SettingsDep
from services.api.schemas import EntityId
from services.keys import ApiKey, verify_api_key

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="API key scoped to one or more workspaces (`pae api-key create`).")
WorkspaceIdQuery = Annotated[EntityId, Query(description="The workspace's UUID or its external (source) id.",
                                             examples=["acme-corp"])]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "ApiKey"})


async def require_api_key(
    engine: EngineDep, settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)] = None
) -> ApiKey:
    """The verified key of the request; 401 when it is missing, unknown or revoked."""
    if not key:
        raise _unauthorized("missing API key: send it in the X-API-Key header")
    found = await asyncio.to_thread(verify_api_key, engine, key,
                                    pepper=settings.api_key_pepper.get_secret_value())
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
