"""The growth run's records beside its prediction rows: each workspace's status, the milestones and the goal
projections, written through the one publisher's ``replace_set`` (staged, upserted, idempotent).

They are keyed by the as-of date and carry the model version, and the API reads those of the as-of date its
projection comes from, so they are written when the run finalizes: if publishing the projection later fails,
the served projection keeps the milestones of its own date. A refused challenger writes no milestones or goal
projections (its projection is not published), only the statuses, which describe the data.
"""
from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from core.ids import entity_uuid
from pipelines.publish import PublishTarget, replace_set

STATUS = PublishTarget(
    table="analytics.growth_status",
    stage={"workspace_id": "uuid", "status": "text", "reason": "text", "counts": "jsonb", "model_version": "text"},
    constants={"as_of_date": ":as_of"},
    key=("workspace_id", "as_of_date"),
    scope="t.as_of_date = :as_of",
)
MILESTONES = PublishTarget(
    table="analytics.growth_milestones",
    stage={"workspace_id": "uuid", "target_metric": "text", "kind": "text", "threshold": "numeric",
           "current_value": "numeric", "probability": "numeric", "date_p10": "date", "date_p50": "date",
           "date_p90": "date", "horizon_days": "integer", "model_version": "text"},
    constants={"as_of_date": ":as_of"},
    key=("workspace_id", "as_of_date", "target_metric", "kind", "threshold"),
    scope="t.as_of_date = :as_of",
)
GOAL_PROJECTIONS = PublishTarget(
    table="analytics.growth_goal_projections",
    stage={"goal_id": "uuid", "workspace_id": "uuid", "target_metric": "text", "target_value": "numeric",
           "due_date": "date", "status": "text", "current_value": "numeric", "probability_met": "numeric",
           "probability_on_due_date": "numeric", "value_p10": "numeric", "value_p50": "numeric",
           "value_p90": "numeric", "required_growth_30d": "numeric", "projected_growth_30d": "numeric",
           "realised_value": "numeric", "met": "boolean", "model_version": "text"},
    constants={"as_of_date": ":as_of"},
    key=("goal_id", "as_of_date"),
    scope="t.as_of_date = :as_of",
)
COUNTS = ("history_days", "active_users", "users_ever", "dau")


def _uuid(ids: pd.Series) -> pd.Series:
    return ids.astype(str).map(lambda w: str(entity_uuid("workspace", w)))


def _rows(frame: pd.DataFrame, target: PublishTarget, model_version: str | None) -> pd.DataFrame:
    """A frame's rows for ``target``; a ``model_version`` column in the frame (the A/B arm's version of each row)
    wins over the argument."""
    version = frame["model_version"] if "model_version" in frame and model_version is not None else model_version
    df = frame.assign(workspace_id=_uuid(frame["workspace_id"]), model_version=version)
    for col in target.stage:
        if col not in df:
            df[col] = None
    df = df[list(target.stage)].copy()
    for col, kind in target.stage.items():
        if kind == "numeric":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float).round(6)
        elif kind == "date":
            df[col] = pd.to_datetime(df[col]).dt.strftime("%Y-%m-%d")
        elif kind == "integer":
            df[col] = df[col].astype("Int64")
        elif kind == "boolean":
            df[col] = df[col].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else bool(v))
    return df


def status_rows(status: pd.DataFrame, model_version: str | None) -> pd.DataFrame:
    counts = [json.dumps({c: int(r[c]) for c in COUNTS}, sort_keys=True) for _, r in status.iterrows()]
    return _rows(status.assign(counts=counts), STATUS, model_version)


def write_records(conn: sa.Connection, as_of: date, status: pd.DataFrame, milestones: pd.DataFrame | None,
                  goals: pd.DataFrame | None, model_version: str | None) -> dict[str, int]:
    """Replace the as-of date's statuses and, unless ``None``, its milestones and goal projections."""
    out = {"status": replace_set(conn, STATUS, status_rows(status, model_version), {"as_of": as_of})["rows"]}
    for name, frame, target in (("milestones", milestones, MILESTONES), ("goals", goals, GOAL_PROJECTIONS)):
        if frame is not None:
            rows = _rows(frame, target, model_version) if len(frame) else pd.DataFrame(columns=list(target.stage))
            out[name] = replace_set(conn, target, rows, {"as_of": as_of})["rows"]
    return out
