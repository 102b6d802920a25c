"""What-if scenarios on the stored predictions (no retraining)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse

from core.ids import entity_uuid
from services.api.auth import ApiKeyDep
from services.api.deps import ServiceDep
from services.api.schemas import API_ERRORS, ErrorMessage
from services.api.what_if_schemas import WhatIfRequest, WhatIfResponse
from services.what_if import WhatIfInputError

router = APIRouter(prefix="/api/analytics/predictions", tags=["predictions"], responses=API_ERRORS)


@router.post(
    "/what-if",
    response_model=WhatIfResponse,
    summary="What-if: baseline and adjusted series, differences, milestones and each adjustment's contribution",
    responses={404: {"model": ErrorMessage, "description": "Unknown workspace, or nothing asked for predicted yet."}},
)
async def what_if(service: ServiceDep, key: ApiKeyDep, body: WhatIfRequest):
    """Adjust the latest stored forecasts of a workspace: user growth, retaining high-risk users, a price per
    feature/service, agents of a kind, a one-off usage change. Empty `adjustments` return the baseline. An
    adjustment out of range is a 422 naming the field and its range; an unknown feature/service or agent kind too."""
    if str(entity_uuid("workspace", body.workspace_id)) not in key.workspace_ids:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key does not cover the requested workspace")
    try:
        return await service.what_if(body.model_dump())
    except WhatIfInputError as exc:
        return JSONResponse(status_code=422, content={"detail": [{"loc": exc.loc, "msg": str(exc),
                                                                  "type": "value_error"}]})
