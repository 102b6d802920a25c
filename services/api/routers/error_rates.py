"""Agent error rates: per-agent forecasts with intervals and escalation alerts."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.agent_errors import MAX_HISTORY_DAYS
from services.api.auth import WorkspaceDep
from services.api.cache import NOT_MODIFIED, ResponseCacheDep
from services.api.deps import ServiceDep
from services.api.error_rate_schemas import AlertLevel, ErrorRatePredictions
from services.api.schemas import API_ERRORS, EntityId, ErrorMessage

router = APIRouter(prefix="/api/analytics/predictions", tags=["predictions"], responses=API_ERRORS)

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000


@router.get(
    "/error-rates",
    response_model=ErrorRatePredictions,
    summary="Agents' error-rate forecasts (80/95% intervals) and escalation alerts, riskiest first",
    responses={404: {"model": ErrorMessage,
                     "description": "Unknown workspace or agent, or no error-rate predictions yet."},
               **NOT_MODIFIED},
)
async def read_error_rates(
    request: Request,
    cache: ResponseCacheDep,
    service: ServiceDep,
    workspace_id: WorkspaceDep,
    agent_id: Annotated[EntityId | None, Query(description="Only this agent (UUID or external id).")] = None,
    min_level: Annotated[AlertLevel | None, Query(description="Only agents alerting at this level or above "
                                                              "(watch < warning < critical).")] = None,
    history_days: Annotated[int, Query(ge=1, le=MAX_HISTORY_DAYS, description="Days of daily history.")] = 28,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Agents to skip.")] = 0,
) -> Response:
    """Per agent of the workspace: its status and alert (level, probability of crossing its threshold within the
    horizon, expected date, current and baseline rates, calls, reason in words), the daily error-rate forecast
    with 80% and 95% intervals, and recent history. Agents with too little traffic are listed with status
    `insufficient_volume` and no level; a workspace without agents answers `status = no_agents`."""
    params = {"agent_id": agent_id, "min_level": min_level, "history_days": history_days, "limit": limit,
              "offset": offset}
    return await cache.respond(request, ErrorRatePredictions, workspace_id, params, lambda: service.predict_error_rates(
        workspace_id, agent_id, min_level, history_days, limit, offset))
