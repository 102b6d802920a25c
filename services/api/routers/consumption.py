"""Credit-consumption forecasts."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.api.auth import WorkspaceDep
from services.api.deps import ServiceDep
from services.api.schemas import API_ERRORS, ConsumptionForecast, ErrorMessage
from services.predictive_analytics import MAX_DAYS_AHEAD

router = APIRouter(prefix="/api/analytics/predictions", tags=["predictions"], responses=API_ERRORS)


@router.get(
    "/consumption",
    response_model=ConsumptionForecast,
    summary="Credit-consumption forecast with intervals, per-feature breakdown and recent history",
    responses={404: {"model": ErrorMessage, "description": "Unknown workspace, or no forecast yet."}},
)
async def read_consumption(
    service: ServiceDep,
    workspace_id: WorkspaceDep,
    days_ahead: Annotated[int, Query(ge=1, le=MAX_DAYS_AHEAD, description="Days after the as-of date.")] = 30,
    granularity: Annotated[Literal["day", "week"], Query(description="Daily rows or 7-day sums.")] = "day",
) -> dict:
    """The latest stored forecast of a workspace's credit use.

    Weekly rows sum 7 days from the first forecast day; their bounds are the sums of the daily bounds, a
    conservative interval (exact when daily errors move together, wider when they are independent).
    """
    return await service.predict_credit_consumption(workspace_id, days_ahead, granularity)
