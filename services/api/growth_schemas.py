"""Response models of the growth projections (``GET /api/analytics/predictions/growth``)."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field

from services.api.schemas import WorkspaceRef

GrowthMetric = Literal["dau", "wau", "mau"]


class GrowthCounts(BaseModel):
    """What the run counted as of its date (behind an ``insufficient_data`` status)."""

    history_days: int = Field(description="Days from the workspace's first event to the as-of date.")
    active_users: int = Field(description="Users active in the MAU window ending the as-of date (its MAU).")
    users_ever: int = Field(description="Users seen up to the as-of date.")
    dau: int = Field(description="Users active on the as-of date.")


class GrowthHistoryPoint(BaseModel):
    date: dt.date
    value: int = Field(description="The requested metric on that day.")
    dau: int
    wau: int
    mau: int
    new_users: int = Field(description="Users whose first active day it is.")
    returning_users: int = Field(description="Active users who were in the previous day's MAU.")
    reactivated_users: int = Field(description="Active users back after a dormant gap longer than the MAU window.")
    lost_users: int = Field(description="Users leaving the MAU that day (last active one window earlier).")


class GrowthPoint(BaseModel):
    date: dt.date
    worst: float | None = Field(description="P10 of the sample paths.")
    likely: float | None = Field(description="P50 of the sample paths.")
    best: float | None = Field(description="P90 of the sample paths.")
    lower_80: float | None = Field(description="80% interval of likely: equal to worst.")
    upper_80: float | None = Field(description="80% interval of likely: equal to best.")
    lower_95: float | None = Field(description="95% interval of likely: P2.5 of the paths.")
    upper_95: float | None = Field(description="95% interval of likely: P97.5 of the paths.")


class Milestone(BaseModel):
    threshold: float
    kind: Literal["round", "goal"] = Field(description="round: one of the next two round numbers above the as-of "
                                                       "value (for DAU, above the last 7 days' peak); goal: a goal's target.")
    probability: float = Field(ge=0, le=1, description="Share of the paths reaching it within horizon_days.")
    date_p10: dt.date | None = Field(description="By this day 10% of the paths have reached it (null: fewer do "
                                                 "within the horizon).")
    date_p50: dt.date | None = Field(description="By this day half of the paths have reached it.")
    date_p90: dt.date | None = Field(description="By this day 90% of the paths have reached it.")
    horizon_days: int = Field(description="Days the paths cover (longer than the projection for far goals).")


class GoalProjection(BaseModel):
    goal_id: uuid.UUID
    target_value: float
    due_date: dt.date
    note: str | None
    status: Literal["projected", "past_due", "beyond_range", "pending", "not_projected"] = Field(
        description="projected: read off the paths; past_due: the due date has passed (realised_value, met); "
                    "beyond_range: due more than 365 days ahead; pending: set after the served run; "
                    "not_projected: the workspace has too little data.")
    current_value: float | None = Field(description="The metric on the as-of date.")
    probability_met: float | None = Field(description="P(the metric reaches the target on or before the due date).")
    probability_on_due_date: float | None = Field(description="P(the metric on the due date is at least the target).")
    value_p10: float | None = Field(description="Projected value on the due date: P10.")
    value_p50: float | None = Field(description="Projected value on the due date: P50.")
    value_p90: float | None = Field(description="Projected value on the due date: P90.")
    required_growth_30d: float | None = Field(description="Compound growth per 30 days needed from the current value "
                                                          "to the target by the due date (0.05 = 5%).")
    projected_growth_30d: float | None = Field(description="Compound growth per 30 days of the likely projection "
                                                           "to the due date.")
    realised_value: float | None = Field(description="past_due: the metric on the due date.")
    met: bool | None = Field(description="past_due: whether the target was met on the due date.")
    milestone: Milestone | None = Field(description="The target as a milestone: when the paths first reach it.")


class GrowthProjection(BaseModel):
    workspace: WorkspaceRef
    metric: GrowthMetric = Field(description="dau: users active that day; wau: in the 7 days ending it; mau: in the "
                                             "MAU window (PAE_GROWTH_MAU_WINDOW_DAYS, 28) ending it.")
    status: Literal["projected", "insufficient_data"]
    reason: str | None = Field(description="Why there is no projection (insufficient_data).")
    counts: GrowthCounts | None
    as_of_date: dt.date = Field(description="The date of the projection (or of the run that found too little "
                                            "data); projections start the day after.")
    model_version: str | None
    horizon_days: int
    current_value: float | None = Field(description="The metric on the as-of date.")
    history: list[GrowthHistoryPoint] = Field(description="Daily realised values up to the as-of date.")
    projection: list[GrowthPoint] = Field(description="Worst/likely/best scenarios per day; empty for "
                                                      "insufficient_data. DAU <= WAU <= MAU holds in every scenario.")
    milestones: list[Milestone]
    goals: list[GoalProjection]
