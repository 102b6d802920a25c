"""Response model of ``GET /api/analytics/models/health`` (``services/model_health.py``)."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class ModelVersion(BaseModel):
    version: str
    created_at: dt.datetime | None
    training_data_end: dt.date | None
    promised: dict[str, float] = Field(description="The validation metrics the realised accuracy is compared with "
                                                   "(e.g. holdout WAPE, out-of-time Brier), as recorded at training.")


class RealisedAccuracy(BaseModel):
    target_metric: str
    horizon_bucket: str = Field(description="How far ahead the prediction was made: 1d, 7d, 14d or 30d.")
    n: int = Field(description="Predictions scored (workspace x day, or x hour / x agent).")
    wape: float | None = Field(description="Pooled: sum of absolute errors / sum of realised values.")
    error_vs_seasonal_naive: float | None = Field(description="Absolute error / a weekly seasonal naive's, made at "
                                                              "the same as-of date (below 1: better than naive).")
    coverage: float | None = Field(description="Share of realised values inside the prediction interval.")
    peak_hour_hit_rate: float | None = Field(description="Daily peaks: share whose hour was hit within one hour.")


class DailyAccuracy(BaseModel):
    scored_date: dt.date
    n: int
    wape: float | None
    coverage: float | None


class OutcomeAccuracy(BaseModel):
    target_metric: str = Field(description="e.g. churned (30 days), breach_within_horizon (agent alerts).")
    as_of_date: dt.date = Field(description="When the scores were made; the outcome window then closed.")
    scored_date: dt.date
    model_version: str
    arm: str
    n: int
    base_rate: float | None
    mean_probability: float | None
    calibration_in_the_large: float | None = Field(description="Mean probability - base rate.")
    brier: float | None
    auc: float | None
    pr_auc: float | None
    precision: float | None
    recall: float | None


class AccuracyAlert(BaseModel):
    measure: str = Field(description="wape, mape, mae (values) or brier, auc, pr_auc (outcomes).")
    target_metric: str | None
    promised_metric: str | None
    realised: float | None
    promised: float | None
    n: int
    window_days: int
    margin: float | None
    status: Literal["alert", "ok", "no_data"]


class AbComparison(BaseModel):
    run_date: dt.date
    metric: str
    verdict: str
    metric_champion: float | None
    metric_challenger: float | None
    diff: float | None = Field(description="Challenger - champion (negative: the challenger is better).")
    ci_low: float | None
    ci_high: float | None
    relative_diff: float | None
    champion_version: str | None
    challenger_version: str | None


class KindHealth(BaseModel):
    kind: str
    prediction_type: str
    model_name: str | None
    alert: bool = Field(description="Realised accuracy worse than promised by more than the margin.")
    champion: ModelVersion | None
    challenger: ModelVersion | None
    realised: list[RealisedAccuracy]
    daily: list[DailyAccuracy]
    outcomes: list[OutcomeAccuracy]
    alerts: list[AccuracyAlert]
    ab_comparison: AbComparison | None


class ModelHealth(BaseModel):
    as_of_date: dt.date | None = Field(description="The latest monitored night (null: none yet).")
    window_days: int
    kinds: list[KindHealth]
