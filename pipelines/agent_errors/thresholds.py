"""Per-agent threshold overrides (``analytics.agent_error_thresholds``), set with ``pae agent-threshold``.

An override is either an absolute rate (``--rate 0.08``: alert when the agent's error rate heads above 8%) or a
multiplier of the agent's own baseline replacing the default (``--multiplier 5``). Without one, an agent's
threshold is ``min(ceiling, max(multiplier × baseline, baseline + min_excess))`` from the settings.
"""
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.ids import entity_uuid

_AGENT = sa.text("""
    select e.external_id as agent_external_id, w.external_id as workspace_external_id
    from analytics.entities e
    left join analytics.entities w on w.entity_type = 'workspace' and w.entity_id = e.workspace_id
    where e.entity_type = 'agent' and e.entity_id = :agent
""")


class UnknownAgentError(LookupError):
    """No such agent in ``analytics.entities`` (load events that mention it first)."""


def _ids(engine: Engine, workspace: str, agent: str) -> tuple[str, str]:
    ws, ag = str(entity_uuid("workspace", workspace)), str(entity_uuid("agent", agent))
    with engine.connect() as conn:
        row = conn.execute(_AGENT, {"agent": ag}).first()
    if row is None:
        raise UnknownAgentError(f"unknown agent {agent!r}: no agent has this UUID or external id")
    if row.workspace_external_id is not None and str(entity_uuid("workspace", row.workspace_external_id)) != ws:
        raise UnknownAgentError(f"agent {agent!r} belongs to workspace {row.workspace_external_id!r}, not {workspace!r}")
    return ws, ag


def set_threshold(engine: Engine, workspace: str, agent: str, rate: float | None = None,
                  multiplier: float | None = None, note: str | None = None) -> dict:
    """Set (or replace) an agent's override; exactly one of ``rate`` (0 < rate <= 1) and ``multiplier`` (>= 1).

    Raises:
        ValueError: Neither or both given, or out of range.
        UnknownAgentError: No such agent (in that workspace).
    """
    if (rate is None) == (multiplier is None):
        raise ValueError("give exactly one of --rate (an error rate, e.g. 0.08) and --multiplier (of the baseline)")
    if rate is not None and not 0 < rate <= 1:
        raise ValueError(f"--rate must be in (0, 1], got {rate}")
    if multiplier is not None and multiplier < 1:
        raise ValueError(f"--multiplier must be at least 1, got {multiplier}")
    ws, ag = _ids(engine, workspace, agent)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "insert into analytics.agent_error_thresholds (workspace_id, agent_id, threshold_rate, multiplier, note)"
            " values (:ws, :ag, :rate, :mult, :note)"
            " on conflict (workspace_id, agent_id) do update set threshold_rate = excluded.threshold_rate,"
            " multiplier = excluded.multiplier, note = excluded.note, updated_at = now()"),
            {"ws": ws, "ag": ag, "rate": rate, "mult": multiplier, "note": note})
    return {"workspace": workspace, "agent": agent, "threshold_rate": rate, "multiplier": multiplier, "note": note}


def clear_threshold(engine: Engine, workspace: str, agent: str) -> bool:
    """Remove an agent's override (back to the default); False when it had none."""
    ws, ag = str(entity_uuid("workspace", workspace)), str(entity_uuid("agent", agent))
    with engine.begin() as conn:
        return conn.execute(sa.text("delete from analytics.agent_error_thresholds where workspace_id = :ws"
                                    " and agent_id = :ag"), {"ws": ws, "ag": ag}).rowcount > 0


def list_thresholds(engine: Engine) -> pd.DataFrame:
    """Every override with the source ids: ``workspace_id``, ``agent_id`` (external), ``threshold_rate``,
    ``multiplier``, ``note``, ``updated_at``."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select w.external_id as workspace_id, a.external_id as agent_id, t.threshold_rate::float8 as threshold_rate,"
            " t.multiplier::float8 as multiplier, t.note, t.updated_at"
            " from analytics.agent_error_thresholds t"
            " left join analytics.entities w on w.entity_type = 'workspace' and w.entity_id = t.workspace_id"
            " left join analytics.entities a on a.entity_type = 'agent' and a.entity_id = t.agent_id"
            " order by 1, 2")).mappings().all()
    return pd.DataFrame([dict(r) for r in rows],
                        columns=["workspace_id", "agent_id", "threshold_rate", "multiplier", "note", "updated_at"])
