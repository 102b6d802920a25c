"""What the dashboard reads and writes beside the predictions: the workspaces a key may read, and the churn
contacts that customer success marks from it (``analytics.churn_contacts``, ``sql/012_churn_contacts.sql``).

The contacts table is the only one the API's role may write (insert only): marking a user again for the
same scoring date changes nothing, and only users scored on the workspace's latest date can be marked.
"""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.ids import entity_uuid
from services.predictive_analytics import NoPredictionsError, resolve_workspace

MAX_CONTACTS_LISTED = 20_000

_WORKSPACES = sa.text("""
    select entity_id as id, external_id
    from analytics.entities
    where entity_type = 'workspace' and entity_id = any(cast(:ids as uuid[]))
    order by external_id, entity_id
""")

_LATEST_SCORES = sa.text("""
    select max(prediction_date) from analytics.churn_predictions where workspace_id = :ws
""")

_SCORED = sa.text("""
    select user_id from analytics.churn_predictions
    where workspace_id = :ws and prediction_date = :d and user_id = any(cast(:users as uuid[]))
""")

_INSERT = sa.text("""
    insert into analytics.churn_contacts (workspace_id, user_id, prediction_date, api_key_id, note)
    select cast(:ws as uuid), u, :d, cast(:key as uuid), :note
    from unnest(cast(:users as uuid[])) as u
    on conflict (workspace_id, user_id, prediction_date) do nothing
""")

# The latest contact of each user of the workspace, with who marked it (the key's name).
_CONTACTS = sa.text("""
    select distinct on (c.user_id)
           c.user_id, e.external_id as user_external_id, c.contacted_at, c.prediction_date, c.note,
           k.name as contacted_by
    from analytics.churn_contacts c
    left join analytics.entities e on e.entity_type = 'user' and e.entity_id = c.user_id
    left join analytics.api_keys k on k.id = c.api_key_id
    where c.workspace_id = :ws
    order by c.user_id, c.contacted_at desc
    limit :limit
""")


class UnscoredUsersError(ValueError):
    """Some users to mark were not scored on the workspace's latest churn date."""

    def __init__(self, unknown: list[str]):
        self.unknown = unknown
        shown = ", ".join(repr(u) for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        super().__init__(f"{len(unknown)} user(s) not scored on the workspace's latest churn date: {shown}")


def list_workspaces(engine: Engine, workspace_ids: frozenset[str] | list[str]) -> list[dict[str, Any]]:
    """The workspaces among ``workspace_ids`` (UUID strings) that exist, by external id."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(_WORKSPACES, {"ids": sorted(workspace_ids)}).mappings()]


def churn_contacts(engine: Engine, workspace_id: str) -> dict[str, Any]:
    """A workspace's contacted users: the latest contact of each, newest first.

    Raises:
        UnknownWorkspaceError: No such workspace.
    """
    with engine.connect() as conn:
        ws = resolve_workspace(conn, workspace_id)
        rows = conn.execute(_CONTACTS, {"ws": str(ws.id), "limit": MAX_CONTACTS_LISTED}).mappings().all()
    contacts = sorted((dict(r) for r in rows), key=lambda r: r["contacted_at"], reverse=True)
    return {"workspace": ws.as_dict(), "contacts": contacts}


def mark_contacted(engine: Engine, workspace_id: str, users: list[str], note: str | None,
                   api_key_id: uuid.UUID | None) -> dict[str, Any]:
    """Record that users of a workspace were contacted about their latest churn scores.

    Args:
        engine: The API's engine (its role may insert into ``analytics.churn_contacts`` only).
        workspace_id: The workspace's UUID or external id.
        users: User UUIDs or external ids; each must be scored on the workspace's latest churn date.
        note: Free text kept with each row (at most 500 characters).
        api_key_id: The key that asked, kept as who marked them.

    Returns:
        ``workspace``, ``prediction_date``, ``marked`` (new rows) and ``already_marked`` (users already
        marked for that date).

    Raises:
        UnknownWorkspaceError: No such workspace.
        NoPredictionsError: The workspace has no churn scores.
        UnscoredUsersError: Some users were not scored on the latest date (nothing is written).
    """
    ids = {str(entity_uuid("user", u)): u for u in users}
    with engine.connect() as conn:
        ws = resolve_workspace(conn, workspace_id)
        latest = conn.execute(_LATEST_SCORES, {"ws": str(ws.id)}).scalar()
        if latest is None:
            raise NoPredictionsError(f"no churn predictions yet for workspace {ws.external_id!r}; nobody to mark")
        scored = {str(u) for u in conn.execute(_SCORED, {"ws": str(ws.id), "d": latest, "users": sorted(ids)}).scalars()}
        unknown = [given for uid, given in ids.items() if uid not in scored]
        if unknown:
            raise UnscoredUsersError(unknown)
        inserted = conn.execute(_INSERT, {"ws": str(ws.id), "d": latest, "users": sorted(ids), "note": note,
                                          "key": str(api_key_id) if api_key_id else None}).rowcount
    return {"workspace": ws.as_dict(), "prediction_date": latest, "marked": inserted,
            "already_marked": len(ids) - inserted}

