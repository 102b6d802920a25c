"""Model health: champion/challenger, realised accuracy against the promise, alerts and A/B, per kind."""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from services.api.auth import ApiKeyDep
from services.api.deps import EngineDep
from services.api.model_health_schemas import ModelHealth
from services.api.schemas import API_ERRORS
from services.model_health import MAX_WINDOW_DAYS, model_health

router = APIRouter(prefix="/api/analytics/models", tags=["models"], responses=API_ERRORS)


@router.get("/health", response_model=ModelHealth, summary="Per prediction kind: models, realised accuracy, alerts")
async def read_model_health(
    engine: EngineDep,
    key: ApiKeyDep,
    window_days: Annotated[int, Query(ge=1, le=MAX_WINDOW_DAYS, description="Days of realised accuracy.")] = 14,
) -> dict:
    """For each kind the nightly monitor scored: the champion and challenger versions with the validation
    metrics they promised, realised accuracy over the window (per metric and horizon; per day; churn and alert
    outcomes), the alerts and the latest A/B comparison. Figures are pooled over all workspaces: no
    workspace's own values."""
    return await asyncio.to_thread(model_health, engine, window_days)
