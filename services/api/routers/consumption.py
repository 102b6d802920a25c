"""Credit-consumption forecasts."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from services.api.auth import WorkspaceDep
from services.api.cache import NOT_MODIFIED, ResponseCacheDep
from services.api.deps import ServiceDep
from services.api.schemas import API_ERRORS, ConsumptionForecast, ErrorMessage
from services.predictive_analytics import MAX_DAYS_AHEAD

router = APIRouter(prefix="/api/analytics/predictions", tags=["predictions"], responses=API_ERRORS)


@router.get(
    "/consumption",
    response_model=ConsumptionForecast,
    summary="Credit-consumption forecast with intervals, per-feature breakdown and recent history",
    responses={404: {"model": ErrorMessage, "description": "Unknown workspace, or no forecast yet."}, **NOT_MODIFIED},
)
async def read_consumption(
    request: Request,
    cache: ResponseCacheDep,
    service: ServiceDep,
    workspace_id: WorkspaceDep,
    days_ahead: Annotated[int, Query(ge=1, le=MAX_DAYS_AHEAD, description="Days after the as-of date.")] = 30,
    granularity: Annotated[Literal["day", "week"], Query(description="Daily rows or 7-day sums.")] = "day",
) -> Response:
    """The latest stored forecast of a workspace's credit use.

    Weekly rows sum 7 days from the first forecast day; their bounds are the sums of the daily bounds, a
    conservative interval (exact when daily errors move together, wider when they are independent).
    """
    return await cache.respond(request, ConsumptionForecast, workspace_id,
                               {"days_ahead": days_ahead, "granularity": granularity},
                               lambda: service.predict_credit_consumption(workspace_id, days_ahead, granularity))
