"""On-demand prediction jobs: enqueue (through the API's write role) and follow one (read-only role)."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.ids import entity_uuid
from core.jobs import JobRequestError, validate_job_request
from services.api.auth import ApiKeyDep
from services.api.deps import EngineDep, SettingsDep
from services.api.schemas import API_ERRORS, EntityId, ErrorMessage
from services.predictive_analytics import resolve_workspace
from services.prediction_jobs import IdempotencyConflict, dispatch_to_airflow, enqueue_job, get_job

router = APIRouter(prefix="/api/analytics/predictions", tags=["prediction jobs"], responses=API_ERRORS)
JOB_PATH = "/api/analytics/predictions/jobs/{job_id}"
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workspace_id: EntityId
    prediction_type: Name = Field(description="What to predict: `credit_consumption` or `peak_usage`.",
                                  examples=["credit_consumption"])
    target_metric: Name = Field(description="credit_consumption: `credits` (daily, total and per feature/service "
                                            "unless `by_feature` is false) or `credits_cumulative`; peak_usage: "
                                            "`calls` or `credits` (hourly, daily peaks, capacity).",
                                examples=["credits"])
    horizon: int = Field(description="Days ahead: 1-365 for credit_consumption, 1-14 for peak_usage.", examples=[30])
    parameters: dict[str, Any] = Field(default_factory=dict, description="Optional: `as_of_date` (default: the "
                                       "feature store's last day; peak_usage: the workspace's latest nightly as-of "
                                       "date), `level` (80 or 95), `by_feature` (credit_consumption; true).")


class JobAccepted(BaseModel):
    job_id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed"]


class JobStatus(BaseModel):
    job_id: uuid.UUID
    workspace_id: uuid.UUID
    prediction_type: str
    target_metric: str
    horizon: int
    parameters: dict[str, Any]
    status: Literal["queued", "running", "succeeded", "failed"]
    attempts: int = Field(description="Times a worker took the job (a dead worker's job is taken again).")
    created_at: dt.datetime
    started_at: dt.datetime | None = Field(description="Start of the latest attempt.")
    finished_at: dt.datetime | None
    run_seconds: float | None
    error: str | None
    dispatched_to: str | None = Field(description="`airflow:<dag_run_id>` when run through Airflow.")
    result: dict[str, Any] | None = Field(description="Where the rows it wrote are: table, prediction_type, "
                                                      "scenario (`on_demand`), model_version, as_of_date, rows.")


def _invalid(field: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": [{"loc": ["body", field], "msg": message,
                                                              "type": "value_error"}]})


@router.post("/generate", status_code=202, response_model=JobAccepted,
             summary="Enqueue an on-demand prediction for one workspace",
             responses={404: {"model": ErrorMessage, "description": "Unknown workspace."},
                        409: {"model": ErrorMessage, "description": "Idempotency-Key reused with another body."}})
async def generate(request: Request, engine: EngineDep, settings: SettingsDep, key: ApiKeyDep,
                   body: GenerateRequest,
                   idempotency_key: Annotated[str | None, Header(max_length=200, pattern=r"^[\x21-\x7e]+$")] = None):
    """Validates the request (an unknown type or metric, or a horizon out of range, is a 422 naming the field and
    its valid values), enqueues a job and answers 202 with its id and `Location`. The same `Idempotency-Key`
    again returns the same job; with another body, 409."""
    if str(entity_uuid("workspace", body.workspace_id)) not in key.workspace_ids:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this API key does not cover the requested workspace")
    try:
        parameters = validate_job_request(body.prediction_type, body.target_metric, body.horizon, body.parameters)
    except JobRequestError as exc:
        return _invalid(exc.field, str(exc))
    writer = request.app.state.scenario_engine  # the API's one write role

    def write() -> tuple[dict, bool]:
        with engine.connect() as conn:
            ws = resolve_workspace(conn, body.workspace_id)
        done = enqueue_job(writer, ws.id, body.prediction_type, body.target_metric, body.horizon, parameters,
                           idempotency_key, key.id, key.name)
        if done.created and settings.airflow_api_url:
            dispatch_to_airflow(settings, writer, done.job["id"])
        return done.job, done.created

    try:
        job, created = await asyncio.to_thread(write)
    except IdempotencyConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    location = JOB_PATH.format(job_id=job["id"])
    headers = {"Location": location, **({} if created else {"Idempotent-Replayed": "true"})}
    return JSONResponse(status_code=202, headers=headers,
                        content={"job_id": str(job["id"]), "status": job["status"]})


@router.get("/jobs/{job_id}", response_model=JobStatus, summary="An on-demand job's status, timings and result",
            responses={404: {"model": ErrorMessage, "description": "No such job among the key's workspaces."}})
async def read_job(engine: EngineDep, key: ApiKeyDep, job_id: uuid.UUID) -> dict:
    job = await asyncio.to_thread(get_job, engine, job_id, key.workspace_ids)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id} in this API key's workspaces")
    return {"job_id": job.pop("id"), **job}
