"""Saved what-if scenarios (``analytics.scenarios``, ``sql/014_scenarios.sql``): save a named what-if request of
a workspace with who saved it and the as-of date it was computed on, and list them.

Reads go through the API's read-only engine; writes through a separate engine connected as
``pae_scenario_writer``, a role that may read, insert and update that table and ``analytics.prediction_jobs``
(on-demand jobs, ``sql/015_prediction_jobs.sql``) and nothing else.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

SCENARIO_WRITER_ROLE = "pae_scenario_writer"
MAX_LISTED = 500

_UPSERT = sa.text("""
    insert into analytics.scenarios (workspace_id, name, description, request, as_of_date, summary, saved_by,
                                     api_key_id)
    values (:ws, :name, :description, cast(:request as jsonb), :as_of, cast(:summary as jsonb), :saved_by, :key)
    on conflict (workspace_id, name) do update
       set description = excluded.description, request = excluded.request, as_of_date = excluded.as_of_date,
           summary = excluded.summary, saved_by = excluded.saved_by, api_key_id = excluded.api_key_id,
           updated_at = now()
    returning id, name, description, request, as_of_date, summary, saved_by, created_at, updated_at
""")

_LIST = sa.text("""
    select id, name, description, request, as_of_date, summary, saved_by, created_at, updated_at
    from analytics.scenarios
    where workspace_id = :ws
    order by updated_at desc, name
    limit :limit
""")


def writer_url(reader_url: str) -> str:
    """The scenario writer's URL: the API's reader URL with the user swapped for ``pae_scenario_writer``."""
    url = sa.engine.make_url(reader_url)
    return sa.engine.URL.create(url.drivername, username=SCENARIO_WRITER_ROLE, host=url.host, port=url.port,
                                database=url.database, query=url.query).render_as_string(hide_password=False)


def create_writer_engine(reader_url: str, timeout_ms: int = 5000) -> Engine:
    url = sa.engine.make_url(writer_url(reader_url)).set(drivername="postgresql+psycopg2")
    return sa.create_engine(url, pool_size=2, max_overflow=0, pool_timeout=5, pool_recycle=3600,
                            connect_args={"connect_timeout": 3, "options": f"-c statement_timeout={timeout_ms} "
                                                                       "-c application_name=pae-api-scenarios"})


def summary_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The differences a what-if answer found, per metric and dimension (kept with the saved scenario)."""
    return [{"metric": m["metric"], "dimension": m["dimension"], "difference": m["difference"]["value"],
             "basis": m["difference"]["basis"]} for m in answer["metrics"]]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def save_scenario(writer: Engine, workspace: dict[str, Any], name: str, description: str | None,
                  request: dict[str, Any], answer: dict[str, Any], saved_by: str | None,
                  api_key_id: uuid.UUID | None) -> dict[str, Any]:
    """Insert, or update by (workspace, name), a scenario computed as ``answer``; returns the stored row."""
    stored_request = {k: request[k] for k in ("base_scenario", "adjustments", "metrics", "horizon_days")}
    with writer.begin() as conn:
        row = conn.execute(_UPSERT, {
            "ws": str(workspace["id"]), "name": name, "description": description,
            "request": json.dumps(_jsonable(stored_request)), "as_of": answer["as_of_date"],
            "summary": json.dumps(_jsonable(summary_of(answer))), "saved_by": saved_by,
            "key": str(api_key_id) if api_key_id else None}).mappings().one()
    return {"workspace": workspace, **dict(row)}


def list_scenarios(reader: Engine, workspace: dict[str, Any]) -> dict[str, Any]:
    """A workspace's saved scenarios, most recently saved first."""
    with reader.connect() as conn:
        rows = conn.execute(_LIST, {"ws": str(workspace["id"]), "limit": MAX_LISTED}).mappings().all()
    return {"workspace": workspace, "scenarios": [dict(r) for r in rows]}
