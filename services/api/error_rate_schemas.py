"""Response models of ``GET /api/analytics/predictions/error-rates``."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field

from services.api.schemas import WorkspaceRef

AlertLevel = Literal["watch", "warning", "critical"]
AgentStatus = Literal["ok", "escalating", "breach", "chronic", "insufficient_volume", "inactive"]


class AgentRef(BaseModel):
    id: uuid.UUID = Field(description="The agent's UUID.")
    external_id: str | None = Field(description="The agent id in the source data.")


class Driver(BaseModel):
    driver: str = Field(description="What pushes the probability up: today, recent, trend, users, other_agents, ...")
    contribution: float | None = Field(description="Its contribution to the log-odds of a breach.")
    text: str = Field(description="In words, with the agent's numbers.")


class AgentAlert(BaseModel):
    alert_level: AlertLevel | None = Field(description="Null: no alert (status ok, too little traffic, inactive).")
    probability: float | None = Field(ge=0, le=1, description="Probability the error rate crosses the threshold "
                                      "(a breach: two consecutive days with calls at or above it) within the "
                                      "horizon; 1 in breach; null when there is too little traffic to judge.")
    expected_breach_date: dt.date | None = Field(description="When the breach is expected to be confirmed (in "
                                                 "breach: since when).")
    threshold: float = Field(description="The agent's threshold (an error rate).")
    threshold_source: Literal["default", "override_rate", "override_multiplier"]
    current_rate: float | None = Field(description="Error rate over the last 3 days (shrunk toward the baseline "
                                       "with 5 pseudo-calls).")
    baseline_rate: float | None = Field(description="The agent's usual error rate (days T-62..T-7, incidents "
                                        "capped, shrunk toward its workspace and feature).")
    calls_last_7d: int
    errors_last_7d: int
    trend_per_day: float | None = Field(description="Change of the 3-day rate per day over the last 3 days.")
    failing_users_share: float | None = Field(description="Share of the workspace's active users with a failed "
                                              "call on the as-of date.")
    calls_at_risk: float | None = Field(description="Failed calls above the baseline's expectation over 3 days.")
    reason: str
    drivers: list[Driver]


class RateForecastPoint(BaseModel):
    date: dt.date
    predicted_rate: float = Field(description="Expected daily error rate (failed / calls).")
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    expected_calls: float
    p_breach_by: float = Field(description="Probability the breach is confirmed by this day.")


class RateHistoryPoint(BaseModel):
    date: dt.date
    calls: int
    errors: int
    error_rate: float | None = Field(description="Null on days without calls.")


class AgentErrorRates(BaseModel):
    agent: AgentRef
    status: AgentStatus
    alert: AgentAlert
    model_version: str | None
    forecast: list[RateForecastPoint] = Field(description="Empty for inactive agents.")
    history: list[RateHistoryPoint]


class ErrorRatePredictions(BaseModel):
    workspace: WorkspaceRef
    as_of_date: dt.date = Field(description="The latest error-rate run; forecasts start the day after.")
    status: Literal["ok", "no_agents"]
    note: str | None = None
    min_level: AlertLevel | None
    agents_in_workspace: int = Field(description="Agents of the workspace in the latest run.")
    total: int = Field(description="Agents passing the filters, over all pages.")
    alerting: int = Field(description="Of those, agents with an alert level.")
    limit: int
    offset: int
    agents: list[AgentErrorRates] = Field(description="Riskiest first (level, then probability).")
