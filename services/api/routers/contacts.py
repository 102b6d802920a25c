"""Churn contacts: users marked as contacted from the dashboard (the API's only write, one table)."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, status

from core.ids import entity_uuid
from services.api.auth import ApiKeyDep, WorkspaceDep
from services.api.deps import EngineDep
from services.api.schemas import API_ERRORS, ErrorMessage
from services.api.schemas_dashboard import ChurnContactList, ChurnContactRequest, ChurnContactsMarked
from services.dashboard import UnscoredUsersError, churn_contacts, mark_contacted

router = APIRouter(prefix="/api/analytics/predictions/churn", tags=["predictions"], responses=API_ERRORS)


@router.get("/contacts", response_model=ChurnContactList, summary="Users marked as contacted",
            responses={404: {"model": ErrorMessage, "description": "Unknown workspace."}})
async def read_contacts(engine: EngineDep, workspace_id: WorkspaceDep) -> dict:
    """The latest contact of each contacted user of the workspace, newest first."""
    return await asyncio.to_thread(churn_contacts, engine, workspace_id)


@router.post(
    "/contacts",
    response_model=ChurnContactsMarked,
    summary="Mark users as contacted about their churn risk",
    responses={404: {"model": ErrorMessage, "description": "Unknown workspace, or no churn scores yet."}},
)
async def create_contacts(engine: EngineDep, key: ApiKeyDep, body: ChurnContactRequest) -> dict:
    """Record a contact for each user (scored on the latest churn date); marking again for the same scores
    changes nothing (200 either way, with the counts). 422 names the users that were not scored, and then nothing is written."""
    if str(entity_uuid("workspace", body.workspace_id)) not in key.workspace_ids:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key does not cover the requested workspace")
    try:
        return await asyncio.to_thread(mark_contacted, engine, body.workspace_id, body.user_ids, body.note, key.id)
    except UnscoredUsersError as exc:
        raise HTTPException(422, str(exc)) from exc
