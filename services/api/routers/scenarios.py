"""Saved what-if scenarios: save (through the scenario writer role) and list (read-only role)."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse

from core.ids import entity_uuid
from services.api.auth import ApiKeyDep, WorkspaceDep
from services.api.deps import EngineDep, ServiceDep
from services.api.schemas import API_ERRORS, ErrorMessage
from services.api.what_if_schemas import (
    ScenarioList,
    ScenarioSaved,
    ScenarioSaveRequest,
)
from services.predictive_analytics import resolve_workspace
from services.scenarios import list_scenarios, save_scenario
from services.what_if import WhatIfInputError

router = APIRouter(prefix="/api/analytics/scenarios", tags=["scenarios"], responses=API_ERRORS)


@router.get("", response_model=ScenarioList, summary="A workspace's saved what-if scenarios",
            responses={404: {"model": ErrorMessage, "description": "Unknown workspace."}})
async def read_scenarios(engine: EngineDep, workspace_id: WorkspaceDep) -> dict:
    def read() -> dict:
        with engine.connect() as conn:
            ws = resolve_workspace(conn, workspace_id).as_dict()
        return list_scenarios(engine, ws)
    return await asyncio.to_thread(read)


@router.post("", response_model=ScenarioSaved, summary="Save a named what-if scenario (same name: updated)",
             responses={404: {"model": ErrorMessage, "description": "Unknown workspace, or nothing predicted yet."}})
async def create_scenario(request: Request, service: ServiceDep, key: ApiKeyDep, body: ScenarioSaveRequest):
    """Computes the scenario on the latest predictions (so it is valid, with its as-of date and differences) and
    stores it with the key's name as who saved it."""
    if str(entity_uuid("workspace", body.workspace_id)) not in key.workspace_ids:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key does not cover the requested workspace")
    what_if = body.model_dump(exclude={"name", "description"})
    try:
        answer = await service.what_if(what_if)
    except WhatIfInputError as exc:
        return JSONResponse(status_code=422, content={"detail": [{"loc": exc.loc, "msg": str(exc),
                                                                  "type": "value_error"}]})
    writer = request.app.state.scenario_engine
    return await asyncio.to_thread(save_scenario, writer, answer["workspace"], body.name, body.description,
                                   what_if, answer, key.name, key.id)
