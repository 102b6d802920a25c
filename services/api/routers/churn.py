"""Churn risk of a workspace's users."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.api.auth import WorkspaceDep
from services.api.cache import NOT_MODIFIED, ResponseCacheDep
from services.api.deps import ServiceDep
from services.api.schemas import API_ERRORS, ChurnRiskPage, ChurnState, EntityId, ErrorMessage

router = APIRouter(prefix="/api/analytics/predictions", tags=["predictions"], responses=API_ERRORS)

MAX_LIMIT = 1000
MAX_OFFSET = 10_000_000
MAX_USERS = 1000


@router.get(
    "/churn",
    response_model=ChurnRiskPage,
    summary="Users by churn risk, with risk factors and recommended actions",
    responses={404: {"model": ErrorMessage, "description": "Unknown workspace, or no churn scores yet."},
               **NOT_MODIFIED},
)
async def read_churn(
    request: Request,
    cache: ResponseCacheDep,
    service: ServiceDep,
    workspace_id: WorkspaceDep,
    risk_threshold: Annotated[float, Query(ge=0, le=1, description="Minimum churn probability.")] = 0.0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Users to skip.")] = 0,
    users: Annotated[
        list[EntityId] | None,
        Query(max_length=MAX_USERS, description="Only these users (UUIDs or external ids); repeat the parameter."),
    ] = None,
    state: Annotated[
        ChurnState | None,
        Query(description="Only users in this state: active, lapsing or dormant (silence relative to the "
                          "user's usual gap between active days)."),
    ] = None,
) -> Response:
    """The latest churn scores of a workspace's users, riskiest first, each with their state."""
    params = {"risk_threshold": risk_threshold, "limit": limit, "offset": offset, "users": users, "state": state}
    return await cache.respond(request, ChurnRiskPage, workspace_id, params, lambda: service.predict_user_churn(
        workspace_id, users, risk_threshold, limit, offset, state=state))
