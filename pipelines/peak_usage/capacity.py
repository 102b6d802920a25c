"""``pae capacity``: the capacity limits that capacity alerts compare with, and declared time zones.

``set`` upserts ``analytics.capacity_limits`` (per workspace and metric) and ``analytics.workspace_time_zones``;
``list`` shows them; ``clear`` removes them (alerts fall back to the highest hour of the last 28 days, the zone to
the inferred one at the next features step).
"""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from core.contracts import PEAK_METRICS
from core.ids import entity_uuid


class CapacityError(ValueError):
    """A bad workspace, metric, limit or time zone."""


def _workspace(conn: sa.Connection, workspace: str) -> str:
    ws = str(entity_uuid("workspace", workspace))
    if conn.execute(sa.text("select 1 from analytics.entities where entity_type = 'workspace' and entity_id = :w"),
                    {"w": ws}).first() is None:
        raise CapacityError(f"unknown workspace {workspace!r}: load its events first (pae load-events)")
    return ws


def set_capacity(engine, workspace: str, limits: dict[str, float], time_zone: str | None = None,
                 note: str | None = None) -> dict:
    """Upsert ``limits`` (metric -> limit per hour) and the declared ``time_zone`` of a workspace."""
    bad = sorted(set(limits) - set(PEAK_METRICS))
    if bad:
        raise CapacityError(f"unknown metric(s) {bad}; choose from {list(PEAK_METRICS)}")
    if any(not v > 0 for v in limits.values()):
        raise CapacityError("a capacity limit must be a positive number of calls or credits per hour")
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CapacityError(f"unknown time zone {time_zone!r}: give an IANA name such as Europe/Paris") from exc
    if not limits and time_zone is None:
        raise CapacityError("nothing to set: give --calls, --credits and/or --time-zone")
    with engine.begin() as conn:
        ws = _workspace(conn, workspace)
        for metric, value in limits.items():
            conn.execute(sa.text(
                "insert into analytics.capacity_limits (workspace_id, target_metric, limit_value, note)"
                " values (:w, :m, :v, :n) on conflict (workspace_id, target_metric) do update set"
                " limit_value = excluded.limit_value, note = excluded.note, updated_at = now()"),
                {"w": ws, "m": metric, "v": value, "n": note})
        if time_zone is not None:
            conn.execute(sa.text(
                "insert into analytics.workspace_time_zones (workspace_id, time_zone) values (:w, :z)"
                " on conflict (workspace_id) do update set time_zone = excluded.time_zone, updated_at = now()"),
                {"w": ws, "z": time_zone})
    return {"workspace_id": ws, "limits": limits, "time_zone": time_zone}


def list_capacity(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("""
            select e.external_id as workspace, c.target_metric as metric, c.limit_value::float8 as limit_value,
                   z.time_zone, c.note
            from analytics.entities e
            left join analytics.capacity_limits c on c.workspace_id = e.entity_id
            left join analytics.workspace_time_zones z on z.workspace_id = e.entity_id
            where e.entity_type = 'workspace' and (c.workspace_id is not null or z.workspace_id is not null)
            order by 1, 2""")).mappings().all()
    return [dict(r) for r in rows]


def clear_capacity(engine, workspace: str, metric: str | None = None, time_zone: bool = False) -> int:
    """Remove a workspace's limits (one metric, or all) and, with ``time_zone``, its declared zone."""
    if metric is not None and metric not in PEAK_METRICS:
        raise CapacityError(f"unknown metric {metric!r}; choose from {list(PEAK_METRICS)}")
    with engine.begin() as conn:
        ws = _workspace(conn, workspace)
        n = conn.execute(sa.text("delete from analytics.capacity_limits where workspace_id = :w"
                                 " and (cast(:m as text) is null or target_metric = cast(:m as text))"),
                         {"w": ws, "m": metric}).rowcount
        if time_zone:
            n += conn.execute(sa.text("delete from analytics.workspace_time_zones where workspace_id = :w"),
                              {"w": ws}).rowcount
    return n
