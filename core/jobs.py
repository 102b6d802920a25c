"""On-demand prediction jobs: what may be asked for, and the checks shared by the API (enqueue) and the worker.

A job asks for one prediction type and target metric of one workspace over ``horizon`` days. Its rows go to
``analytics.predictions`` with ``scenario = 'on_demand'`` (``ON_DEMAND_SCENARIO``) and ``model_version =
'on-demand:<job id>'``, so the nightly rows (``scenario = 'likely'``, which every read serves) are never
replaced; a later job of the same workspace, type and metric replaces the earlier job's rows.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from core.contracts import CALLS, CREDIT_CONSUMPTION, CREDITS, CREDITS_CUMULATIVE, PEAK_USAGE

ON_DEMAND_SCENARIO: Final = "on_demand"
JOB_STATUSES: Final = ("queued", "running", "succeeded", "failed")
ON_DEMAND_DAG_ID: Final = "predictive_analytics_on_demand"


class JobRequestError(ValueError):
    """A job request the engine cannot run; ``field`` names the offending field of the request body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class OnDemandType:
    """A prediction type that can be generated on demand: its metrics, horizon range and parameters."""

    metrics: tuple[str, ...]
    max_horizon: int
    parameters: tuple[str, ...]


ON_DEMAND_TYPES: Final[dict[str, OnDemandType]] = {
    CREDIT_CONSUMPTION: OnDemandType(metrics=(CREDITS, CREDITS_CUMULATIVE), max_horizon=365,
                                     parameters=("as_of_date", "level", "by_feature")),
    PEAK_USAGE: OnDemandType(metrics=(CALLS, CREDITS), max_horizon=14, parameters=("as_of_date", "level")),
}
LEVELS: Final = (80, 95)  # interval levels a job may ask for (the nightly run publishes 95)


def _check_parameters(spec: OnDemandType, parameters: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(parameters) - set(spec.parameters))
    if unknown:
        raise JobRequestError("parameters", f"unknown parameter(s) {unknown}; valid: {list(spec.parameters)}")
    out: dict[str, Any] = {}
    if parameters.get("as_of_date") is not None:
        try:
            out["as_of_date"] = date.fromisoformat(str(parameters["as_of_date"])).isoformat()
        except ValueError:
            raise JobRequestError("parameters", "parameters.as_of_date must be a date YYYY-MM-DD") from None
    if parameters.get("level") is not None:
        if parameters["level"] not in LEVELS or isinstance(parameters["level"], bool):
            raise JobRequestError("parameters", f"parameters.level must be one of {list(LEVELS)}")
        out["level"] = int(parameters["level"])
    if parameters.get("by_feature") is not None:
        if not isinstance(parameters["by_feature"], bool):
            raise JobRequestError("parameters", "parameters.by_feature must be true or false")
        out["by_feature"] = parameters["by_feature"]
    return out


def validate_job_request(prediction_type: str, target_metric: str, horizon: int,
                         parameters: dict[str, Any] | None) -> dict[str, Any]:
    """The request's parameters, normalised; raises ``JobRequestError`` naming the field and its valid values."""
    spec = ON_DEMAND_TYPES.get(prediction_type)
    if spec is None:
        raise JobRequestError("prediction_type", f"prediction_type {prediction_type!r} cannot be generated on "
                                                 f"demand; supported: {sorted(ON_DEMAND_TYPES)}")
    if target_metric not in spec.metrics:
        raise JobRequestError("target_metric", f"target_metric {target_metric!r} is not a metric of "
                                               f"{prediction_type}; valid: {list(spec.metrics)}")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= spec.max_horizon:
        raise JobRequestError("horizon", f"horizon must be a whole number of days from 1 to {spec.max_horizon} "
                                         f"for {prediction_type}")
    if not isinstance(parameters or {}, dict):
        raise JobRequestError("parameters", "parameters must be an object")
    return _check_parameters(spec, parameters or {})


def request_hash(workspace_id: str, prediction_type: str, target_metric: str, horizon: int,
                 parameters: dict[str, Any]) -> str:
    """A fingerprint of a normalised request (an idempotency key reused with another body is a conflict)."""
    body = json.dumps([workspace_id, prediction_type, target_metric, horizon, parameters], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def model_version(job_id: object) -> str:
    """``analytics.predictions.model_version`` of a job's rows (varchar(50))."""
    return f"on-demand:{job_id}"
