"""Request and response models of ``POST /api/analytics/predictions/what-if`` (ranges: ``services.what_if.RANGES``)."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.api.schemas import EntityId, WorkspaceRef
from services.what_if import MAX_HORIZON_DAYS, RANGES, check_range

Name = Annotated[str, Field(min_length=1, max_length=255, description="A feature/service name.")]


def _range_doc(kind: str, name: str) -> str:
    lo, hi = RANGES[(kind, name)]
    return f"{lo:g} to {hi:g}"


class _Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserGrowth(_Adjustment):
    type: Literal["user_growth"]
    percent_per_week: float = Field(description="More (or fewer) new users per week than usual, percent: "
                                                + _range_doc("user_growth", "percent_per_week") + ".")
    start_date: dt.date | None = Field(None, description="From this day (default: the first forecast day).")

    @field_validator("percent_per_week")
    @classmethod
    def _r(cls, v: float) -> float:
        return check_range("user_growth", "percent_per_week", v)


class ChurnRetention(_Adjustment):
    type: Literal["churn_retention"]
    share: float = Field(description="Share of the users now at high churn risk (>= 0.7) who stay: "
                                     + _range_doc("churn_retention", "share") + ".")

    @field_validator("share")
    @classmethod
    def _r(cls, v: float) -> float:
        return check_range("churn_retention", "share", v)


class Agents(_Adjustment):
    type: Literal["agents"]
    kind: Name = Field(description="The agents' kind: the feature/service an agent spends most credits on.")
    count: int = Field(description="Agents to add (negative: remove): " + _range_doc("agents", "count") + ".")
    start_date: dt.date | None = None

    @field_validator("count")
    @classmethod
    def _r(cls, v: int) -> int:
        return int(check_range("agents", "count", v))


class UsageChange(_Adjustment):
    type: Literal["usage_change"]
    percent: float = Field(description="Change in all credits, percent: " + _range_doc("usage_change", "percent") + ".")
    start_date: dt.date | None = None

    @field_validator("percent")
    @classmethod
    def _r(cls, v: float) -> float:
        return check_range("usage_change", "percent", v)


class Price(_Adjustment):
    type: Literal["price"]
    dimension: Name
    multiplier: float = Field(description="Credit-price multiplier: " + _range_doc("price", "multiplier") + ".")

    @field_validator("multiplier")
    @classmethod
    def _r(cls, v: float) -> float:
        return check_range("price", "multiplier", v)


Adjustment = Annotated[UserGrowth | ChurnRetention | Agents | UsageChange | Price, Field(discriminator="type")]
WhatIfMetric = Literal["credits", "dau", "wau", "mau"]


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace_id: EntityId
    base_scenario: Literal["worst", "likely", "best"] = "likely"
    adjustments: list[Adjustment] = Field(default_factory=list, max_length=20,
                                          description="None: the baseline itself (adjusted = baseline).")
    metrics: list[WhatIfMetric] = Field(default_factory=lambda: ["credits"], min_length=1, max_length=4,
                                        description="credits (total and per feature/service), dau, wau, mau.")
    horizon_days: int = Field(90, ge=1, le=MAX_HORIZON_DAYS)


class WhatIfPoint(BaseModel):
    date: dt.date
    value: float
    lower: float | None = Field(description="Lower bound of the 95% interval.")
    upper: float | None = Field(description="Upper bound of the 95% interval.")


class WhatIfTotal(BaseModel):
    label: str = Field(description="30_days, 90_days or horizon.")
    days: int
    value: float
    lower: float | None = Field(description="95% interval of the sum (stored cumulative forecast; total only).")
    upper: float | None


class WhatIfDifference(BaseModel):
    value: float = Field(description="Adjusted minus baseline: credits over the horizon, users on the last day.")
    basis: str
    over_30_days: float | None
    over_90_days: float | None
    baseline_totals: list[WhatIfTotal]
    adjusted_totals: list[WhatIfTotal]


class MilestoneDates(BaseModel):
    probability: float | None = Field(description="P(reached within the horizon), stored; null after adjusting.")
    date_p10: dt.date | None
    date_p50: dt.date | None
    date_p90: dt.date | None


class WhatIfMilestone(BaseModel):
    threshold: float
    kind: str
    before: MilestoneDates
    after: MilestoneDates


class Contribution(BaseModel):
    index: int = Field(description="Position of the adjustment in the request.")
    type: str
    credits_difference: float | None = Field(description="Credits it adds (negative: removes) over the horizon.")
    mau_difference: float | None = Field(description="MAU it adds on the last day of the growth projection.")
    text: str


class WhatIfMetricResult(BaseModel):
    metric: WhatIfMetric
    dimension: str = Field(description="total, or a feature/service (credits only).")
    unit: Literal["credits", "users"]
    status: str
    as_of_date: dt.date | None
    model_version: str | None
    confidence_level: float | None
    baseline: list[WhatIfPoint]
    adjusted: list[WhatIfPoint]
    difference: WhatIfDifference
    milestones: list[WhatIfMilestone]
    explanations: list[Contribution]


class WhatIfResponse(BaseModel):
    workspace: WorkspaceRef
    as_of_date: dt.date
    credits_as_of_date: dt.date | None
    growth_as_of_date: dt.date | None
    base_scenario: str
    horizon_days: int
    adjustments: list[dict]
    metrics: list[WhatIfMetricResult]
    explanations: list[Contribution]


class ScenarioSaveRequest(WhatIfRequest):
    """A what-if request with a name: saved (or, under the same name, updated) for the workspace."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
    description: Annotated[str, Field(max_length=1000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")] | None = None


class ScenarioDifference(BaseModel):
    metric: str
    dimension: str
    difference: float
    basis: str


class SavedScenario(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    request: dict = Field(description="base_scenario, adjustments, metrics and horizon_days, as saved.")
    as_of_date: dt.date = Field(description="The as-of date of the predictions it was computed on when saved.")
    summary: list[ScenarioDifference] = Field(description="The differences it gave then, per metric and dimension.")
    saved_by: str | None = Field(description="The name of the API key that saved it.")
    created_at: dt.datetime
    updated_at: dt.datetime


class ScenarioSaved(SavedScenario):
    workspace: WorkspaceRef


class ScenarioList(BaseModel):
    workspace: WorkspaceRef
    scenarios: list[SavedScenario] = Field(description="Most recently saved first.")
