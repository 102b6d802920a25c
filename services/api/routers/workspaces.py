"""The workspaces an API key may read (the dashboard's workspace picker)."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter

from services.api.auth import ApiKeyDep
from services.api.deps import EngineDep
from services.api.schemas import API_ERRORS
from services.api.schemas_dashboard import WorkspaceList
from services.dashboard import list_workspaces

router = APIRouter(prefix="/api/analytics", tags=["workspaces"], responses=API_ERRORS)


@router.get("/workspaces", response_model=WorkspaceList, summary="The workspaces this API key may read")
async def read_workspaces(engine: EngineDep, key: ApiKeyDep) -> dict:
    """Each workspace in the key's scope that exists, with its UUID and external id, by external id."""
    return {"workspaces": await asyncio.to_thread(list_workspaces, engine, key.workspace_ids)}
