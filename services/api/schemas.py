"""Parameter types and response models: what requests may say and what every answer looks like."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

MAX_ID_LENGTH = 256


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters (such as NUL, tab or newline)")
    return value


EntityId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(_printable)]
"""A workspace or user id as given: a UUID or the source's text id."""


class WorkspaceRef(BaseModel):
    id: uuid.UUID = Field(description="The UUID the tables key on.")
    external_id: str = Field(description="The workspace id in the source data.")


class ForecastPoint(BaseModel):
    date: dt.date = Field(description="The day, or the first day of the week.")
    days: int = Field(description="Days covered: 1 for daily rows, up to 7 for weekly ones.")
    predicted_value: float | None
    lower: float | None = Field(description="Lower bound of the prediction interval (weekly: sum of daily bounds).")
    upper: float | None = Field(description="Upper bound of the prediction interval (weekly: sum of daily bounds).")


class HistoryPoint(BaseModel):
    date: dt.date
    days: int
    value: float = Field(description="Credits used.")


class DimensionForecast(BaseModel):
    dimension: str = Field(description="Feature or service name.")
    predictions: list[ForecastPoint]


class ConsumptionForecast(BaseModel):
    workspace: WorkspaceRef
    as_of_date: dt.date = Field(description="The date the forecast was made; predictions start the day after.")
    model_version: str | None
    confidence_level: float | None
    granularity: Literal["day", "week"]
    days_ahead: int
    predictions: list[ForecastPoint] = Field(description="Workspace total.")
    breakdown: list[DimensionForecast] = Field(description="Per feature/service, largest first; sums to the total.")
    cumulative: list[ForecastPoint] = Field(
        default_factory=list,
        description="Daily whatever the granularity: credits from the first forecast day through `date` (`days` "
                    "days), with an interval calibrated for that total, unlike summed daily bounds. The last "
                    "point is the total over `days_ahead`.")
    history: list[HistoryPoint] = Field(description="Credits used up to the as-of date, same granularity.")


class RiskFactor(BaseModel):
    feature: str
    contribution: float
    value: float | str | bool | None = None
    direction: str | None = None
    text: str | None = None
    driver: str | None = Field(default=None, description="The risk driver the feature belongs to (recency, "
                               "activity_drop, ...; pipelines/churn/wording.py), or state for the state entry.")


class RecommendedAction(BaseModel):
    """An intervention from the documented driver → action mapping (``pipelines/churn/wording.py``, ``ACTIONS``)."""

    action_id: str
    title: str
    reason: str | None = None
    priority: int | str | None = None
    drivers: list[str] = []


ChurnState = Literal["active", "lapsing", "dormant"]


class UserChurnRisk(BaseModel):
    user_id: uuid.UUID
    user_external_id: str | None
    churn_probability: float = Field(ge=0, le=1)
    risk_score: float = Field(ge=0, le=100)
    risk_factors: list[RiskFactor]
    recommended_actions: list[RecommendedAction] | None
    days_until_churn: int | None
    model_version: str | None
    state: ChurnState | None = Field(
        default=None,
        description="active: silent no longer than max(3 usual gaps between the user's active days, 7 days); "
                    "dormant: longer than max(10 usual gaps, 30 days); lapsing: in between. Null for scores "
                    "made before states existed.")


class ChurnRiskPage(BaseModel):
    workspace: WorkspaceRef
    prediction_date: dt.date = Field(description="The latest scoring date of the workspace.")
    risk_threshold: float
    state: ChurnState | None = Field(default=None, description="The state filter, if any.")
    total: int = Field(description="Users passing the filters, over all pages.")
    limit: int
    offset: int
    users: list[UserChurnRisk] = Field(description="Riskiest first.")


class Liveness(BaseModel):
    status: Literal["ok"]


class Freshness(BaseModel):
    latest_at: dt.datetime | None = Field(description="When the latest one was written; null if never.")
    age_hours: float | None
    stale: bool = Field(description="Never written, or older than stale_after_hours.")


class RunFreshness(Freshness):
    step: str | None
    logical_date: dt.date | None


class Readiness(BaseModel):
    status: Literal["ok", "stale"]
    database: Literal["ok"]
    stale_after_hours: float
    predictions: Freshness
    churn_predictions: Freshness
    pipeline_run: RunFreshness = Field(description="The latest successful pipeline step.")


class Unavailable(BaseModel):
    status: Literal["unavailable"]
    detail: str


class ErrorMessage(BaseModel):
    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorMessage(BaseModel):
    detail: list[ValidationIssue]


API_ERRORS: dict[int | str, dict] = {
    401: {"model": ErrorMessage, "description": "Missing, invalid or revoked API key."},
    403: {"model": ErrorMessage, "description": "The API key does not cover this workspace."},
    422: {"model": ValidationErrorMessage, "description": "Malformed or out-of-range parameters."},
    503: {"model": ErrorMessage, "description": "The database is unavailable."},
}
"""Error answers shared by every ``/api/`` route, for the OpenAPI schema."""
