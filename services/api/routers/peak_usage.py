"""Peak usage and capacity planning: hourly forecasts, daily peaks, capacity needs and alerts."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from services.api.auth import WorkspaceDep
from services.api.cache import NOT_MODIFIED, ResponseCacheDep
from services.api.deps import ServiceDep
from services.api.schemas import API_ERRORS, ErrorMessage, WorkspaceRef
from services.peak_usage import MAX_DAYS_AHEAD

router = APIRouter(prefix="/api/analytics/predictions", tags=["predictions"], responses=API_ERRORS)


class PeakHour(BaseModel):
    hour_local: int = Field(description="Hour of the day on the workspace's clock (0-23).")
    probability: float = Field(description="Share of sample paths in which this hour is the day's peak.")


class DailyPeak(BaseModel):
    day: dt.date = Field(description="The workspace's local day.")
    peak_hour_local: int
    peak_hour_utc: int
    top_hours: list[PeakHour] = Field(description="The three likeliest peak hours, likeliest first.")
    peak_value: float | None = Field(description="Forecast of the day's peak (median over sample paths).")
    peak_lower: float | None
    peak_upper: float | None = Field(description="Upper bound of the day's peak at the confidence level.")
    capacity_need: float | None = Field(description="peak_upper x the headroom factor (PAE_PEAK_HEADROOM).")
    capacity_limit: float | None = Field(description="The limit the alerts compare with.")
    limit_source: str | None = Field(description="capacity_limits (pae capacity set) or max_hour_28d.")
    alert: bool
    alert_hours: int
    first_alert_local: dt.datetime | None
    first_alert_utc: dt.datetime | None


class HourlyPoint(BaseModel):
    hour_utc: dt.datetime
    hour_local: dt.datetime
    value: float | None
    lower: float | None = Field(description="Lower bound at the confidence level.")
    upper: float | None = Field(description="Upper bound at the confidence level.")
    lower_80: float | None
    upper_80: float | None
    capacity_limit: float | None
    alert: bool


class WeekPeak(BaseModel):
    date: dt.date
    peak_hour_local: int
    peak_value: float | None
    peak_lower: float | None
    peak_upper: float | None


class CapacityAlert(BaseModel):
    hour_utc: dt.datetime
    hour_local: dt.datetime
    upper: float | None
    capacity_limit: float | None
    limit_source: str | None
    hours_ahead: int = Field(description="Hours from the data cutoff (end of as_of_date, UTC) to the hour.")


class MetricPeaks(BaseModel):
    daily: list[DailyPeak]
    hourly: list[HourlyPoint] = Field(description="Empty for granularity=daily.")
    week_peak: WeekPeak | None
    alerts: list[CapacityAlert]


class PeakUsageForecast(BaseModel):
    workspace: WorkspaceRef
    as_of_date: dt.date
    time_zone: str | None = Field(description="IANA zone of local hours (declared, inferred from the daily rhythm, "
                                              "or UTC when no human rhythm shows).")
    granularity: Literal["hourly", "daily"]
    days_ahead: int
    confidence_level: float | None
    model_version: str | None
    metrics: dict[str, MetricPeaks] = Field(description="calls and credits.")


@router.get(
    "/peak-usage",
    response_model=PeakUsageForecast,
    summary="Peak hours and capacity needs: hourly forecast with intervals, daily peaks, alerts",
    responses={404: {"model": ErrorMessage, "description": "Unknown workspace, or no forecast yet."}, **NOT_MODIFIED},
)
async def read_peak_usage(
    request: Request,
    cache: ResponseCacheDep,
    service: ServiceDep,
    workspace_id: WorkspaceDep,
    granularity: Annotated[Literal["hourly", "daily"], Query(description="Hourly forecast and daily peaks, or "
                                                                          "daily peaks only.")] = "hourly",
    days_ahead: Annotated[int, Query(ge=1, le=MAX_DAYS_AHEAD, description="Days after the as-of date.")] = 7,
) -> Response:
    """The latest stored peak-usage forecast of a workspace, in local time and UTC."""
    return await cache.respond(request, PeakUsageForecast, workspace_id,
                               {"granularity": granularity, "days_ahead": days_ahead},
                               lambda: service.predict_peak_usage(workspace_id, granularity, days_ahead))
