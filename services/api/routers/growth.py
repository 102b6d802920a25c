"""Growth projections: DAU, WAU and MAU scenarios, milestones and goals."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.api.auth import WorkspaceDep
from services.api.cache import NOT_MODIFIED, ResponseCacheDep
from services.api.deps import ServiceDep
from services.api.growth_schemas import GrowthMetric, GrowthProjection
from services.api.schemas import API_ERRORS, ErrorMessage
from services.growth import MAX_HORIZON_DAYS

router = APIRouter(prefix="/api/analytics/predictions", tags=["predictions"], responses=API_ERRORS)


@router.get(
    "/growth",
    response_model=GrowthProjection,
    summary="DAU/WAU/MAU projection: worst/likely/best scenarios, milestones, goals and recent history",
    responses={404: {"model": ErrorMessage, "description": "Unknown workspace, or no growth run has looked at it."},
               **NOT_MODIFIED},
)
async def read_growth(
    request: Request,
    cache: ResponseCacheDep,
    service: ServiceDep,
    workspace_id: WorkspaceDep,
    metric: Annotated[GrowthMetric, Query(description="dau, wau or mau.")] = "mau",
    horizon_days: Annotated[int, Query(ge=1, le=MAX_HORIZON_DAYS, description="Days after the as-of date.")] = 90,
) -> Response:
    """The latest growth projection of a workspace's metric.

    Scenarios come from seeded sample paths: worst, likely and best are their P10, P50 and P90 per day, so the
    80% interval of likely is worst..best. A workspace with too little history or too few active users gets
    `status = insufficient_data` with the counts, and no projection.
    """
    return await cache.respond(request, GrowthProjection, workspace_id,
                               {"metric": metric, "horizon_days": horizon_days},
                               lambda: service.predict_growth_metrics(workspace_id, metric, horizon_days))
