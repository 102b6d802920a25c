"""Growth goals a workspace sets (``pae goal set|list|remove``), stored in ``analytics.growth_goals``.

A goal is a target for one metric (``dau``, ``wau`` or ``mau``) by a due date; one goal per workspace, metric
and due date (setting it again changes the target and keeps the goal's id). Each nightly growth run projects
every goal of a projected workspace (``analytics.growth_goal_projections``); a goal set since the last run is
shown as pending until the next one.
"""
from __future__ import annotations

import uuid
from datetime import date

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.ids import entity_uuid
from pipelines.growth.sample_paths import METRICS


class GoalError(ValueError):
    """A goal that cannot be stored (unknown workspace or metric, non-positive target)."""


def set_goal(engine: Engine, workspace: str, metric: str, target: float, due: date, note: str | None = None) -> dict:
    """Create or update the workspace's goal for ``metric`` due on ``due``; returns the stored goal."""
    if metric not in METRICS:
        raise GoalError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if not target > 0:
        raise GoalError(f"target must be a positive number of users, got {target}")
    ws = str(entity_uuid("workspace", workspace))
    with engine.begin() as conn:
        known = conn.execute(sa.text("select external_id from analytics.entities"
                                     " where entity_type = 'workspace' and entity_id = :ws"), {"ws": ws}).first()
        if known is None:
            raise GoalError(f"unknown workspace {workspace!r}: no workspace has this UUID or external id")
        row = conn.execute(sa.text("""
            insert into analytics.growth_goals (workspace_id, target_metric, target_value, due_date, note)
            values (:ws, :metric, :target, :due, :note)
            on conflict (workspace_id, target_metric, due_date) do update
                set target_value = excluded.target_value, note = coalesce(excluded.note, analytics.growth_goals.note),
                    updated_at = now()
            returning goal_id, (xmax = 0) as created
        """), {"ws": ws, "metric": metric, "target": target, "due": due, "note": note}).one()
    return {"goal_id": str(row.goal_id), "created": bool(row.created), "workspace_id": ws,
            "workspace_external_id": known.external_id, "target_metric": metric, "target_value": target,
            "due_date": due}


def list_goals(engine: Engine, workspace: str | None = None) -> pd.DataFrame:
    """Goals (of one workspace, or all) with their latest projection (``analytics.v_growth_goals``)."""
    query = "select * from analytics.v_growth_goals"
    params = {}
    if workspace is not None:
        query += " where workspace_id = :ws"
        params["ws"] = str(entity_uuid("workspace", workspace))
    with engine.connect() as conn:
        return pd.read_sql(sa.text(query + " order by workspace_external_id, target_metric, due_date"), conn,
                           params=params)


def remove_goal(engine: Engine, goal_id: str) -> bool:
    """Delete a goal (its past projections stay, for the record); False when there is no such goal."""
    try:
        key = str(uuid.UUID(goal_id))
    except ValueError as exc:
        raise GoalError(f"not a goal id: {goal_id!r} (see `pae goal list`)") from exc
    with engine.begin() as conn:
        return conn.execute(sa.text("delete from analytics.growth_goals where goal_id = :id"), {"id": key}).rowcount > 0


def load_goals(engine: Engine, workspaces: list[str]) -> pd.DataFrame:
    """Goals of these workspaces (source ids) as ``(goal_id, workspace_id, target_metric, target_value,
    due_date)`` with ``workspace_id`` the source id."""
    by_uuid = {str(entity_uuid("workspace", w)): w for w in workspaces}
    cols = ["goal_id", "workspace_id", "target_metric", "target_value", "due_date"]
    if not by_uuid:
        return pd.DataFrame(columns=cols)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select goal_id, workspace_id, target_metric, target_value, due_date from analytics.growth_goals"
            " where workspace_id = any(cast(:ws as uuid[])) order by goal_id"), {"ws": list(by_uuid)}).all()
    out = pd.DataFrame(rows, columns=cols)
    out["goal_id"] = out["goal_id"].astype(str)
    out["workspace_id"] = out["workspace_id"].astype(str).map(by_uuid)
    out["target_value"] = out["target_value"].astype(float)
    return out
