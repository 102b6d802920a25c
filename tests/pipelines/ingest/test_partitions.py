"""analytics.usage_events partitioned by month (sql/019): converting a populated table, loading a new month."""
from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db import MIGRATIONS_DIR, get_engine, migrate, migration_files
from pipelines.ingest.load import load_events
from tests.conftest import make_events

NOW = datetime(2026, 4, 2, tzinfo=timezone.utc)
PARTITIONS_MIGRATION = "019_usage_events_partitions.sql"

_PARTITIONS = """
select c.relname, pg_get_expr(c.relpartbound, c.oid) as bound
from pg_inherits i join pg_class c on c.oid = i.inhrelid
where i.inhparent = 'analytics.usage_events'::regclass order by 1
"""
_ROWS = """
select event_key, event_time, workspace_id, user_id, agent_id, feature, credits, status, count, extra::text,
       source_file, loaded_at
from analytics.usage_events order by event_key
"""


def _partition_rows(conn) -> dict[str, int]:
    return dict(conn.execute(sa.text(
        "select tableoid::regclass::text, count(*) from analytics.usage_events group by 1")).all())


@pytest.fixture
def fresh_db(server_url: str):
    """A database of its own (this test migrates it in two steps)."""
    name = f"pae_test_part_{uuid.uuid4().hex[:8]}"
    admin = get_engine(url=server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    engine = get_engine(url=sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


def test_migration_converts_a_populated_table_in_place(fresh_db, tmp_path: Path):
    before = tmp_path / "sql_before"
    before.mkdir()
    for f in migration_files():
        if f.name < PARTITIONS_MIGRATION:
            shutil.copy(f, before / f.name)
    migrate(fresh_db, before)
    events = make_events(2, 70, end=datetime(2026, 3, 10).date())  # January to March
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    with fresh_db.begin() as conn:
        assert conn.execute(sa.text("select relkind from pg_class where oid = 'analytics.usage_events'::regclass"
                                    )).scalar_one() == "r"
    with fresh_db.begin() as conn:
        conn.execute(sa.text(
            "insert into analytics.usage_events (event_key, event_time, workspace_id, user_id, agent_id, feature,"
            " credits, status, count, extra, source_file)"
            " select md5(g::text)::uuid, timestamptz '2026-01-01 00:00+00' + g * interval '37 minutes',"
            " 'ws' || (g % 3), case when g % 2 = 0 then 'u' || g end, null, 'chat', g * 0.5, 'ok', 1 + g % 4,"
            " case when g % 5 = 0 then jsonb_build_object('region', 'eu') end, 'old.csv'"
            " from generate_series(1, 4000) g"))  # 2026-01-01 .. 2026-04-13: four months
        old_rows = conn.execute(sa.text(_ROWS)).all()

    assert migrate(fresh_db) == [f.name for f in migration_files() if f.name >= PARTITIONS_MIGRATION]
    with fresh_db.begin() as conn:
        assert conn.execute(sa.text("select relkind from pg_class where oid = 'analytics.usage_events'::regclass"
                                    )).scalar_one() == "p"
        assert conn.execute(sa.text(_ROWS)).all() == old_rows  # every row, every column (loaded_at too)
        parts = dict(conn.execute(sa.text(_PARTITIONS)).all())
        assert set(parts) == {"usage_events_2026_01", "usage_events_2026_02", "usage_events_2026_03",
                              "usage_events_2026_04", "usage_events_default"}
        assert parts["usage_events_2026_02"] == ("FOR VALUES FROM ('2026-02-01 00:00:00+00') TO "
                                                 "('2026-03-01 00:00:00+00')")
        by_part = _partition_rows(conn)
        assert "analytics.usage_events_default" not in by_part and sum(by_part.values()) == 4000
        pk = conn.execute(sa.text(
            "select array_agg(a.attname order by a.attnum) from pg_constraint c"
            " join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)"
            " where c.conrelid = 'analytics.usage_events'::regclass and c.contype = 'p'")).scalar_one()
        assert pk == ["event_key", "event_time"]
        indexes = set(conn.execute(sa.text(
            "select indexname from pg_indexes where schemaname = 'analytics' and tablename = 'usage_events'"
        )).scalars())
        assert {"idx_usage_events_time", "idx_usage_events_agent_ws_time"} <= indexes
        assert conn.execute(sa.text("select to_regclass('analytics.usage_events_unpartitioned')")).scalar() is None
        assert conn.execute(sa.text("select has_table_privilege('pae_writer', 'analytics.usage_events', 'insert')"
                                    )).scalar_one()
        assert not conn.execute(sa.text("select has_table_privilege('pae_reader', 'analytics.usage_events',"
                                        " 'insert')")).scalar_one()
        # the migration's body again (idempotent by itself, not only through schema_migrations)
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.execute((MIGRATIONS_DIR / PARTITIONS_MIGRATION).read_text())
        assert conn.execute(sa.text(_ROWS)).all() == old_rows
        assert dict(conn.execute(sa.text(_PARTITIONS)).all()) == parts
    assert migrate(fresh_db) == []

    # the loader on the converted table: new rows, then nothing on a second load
    first = load_events(fresh_db, path, tmp_path / "rejects", now=NOW)
    assert first.rows_inserted == len(events)
    assert load_events(fresh_db, path, tmp_path / "rejects", now=NOW).rows_inserted == 0
    with fresh_db.begin() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.usage_events")).scalar_one() == 4000 + len(events)


def test_loading_a_new_month_creates_its_partition(clean_db, tmp_path: Path):
    with clean_db.begin() as conn:
        assert conn.execute(sa.text("select to_regclass('analytics.usage_events_2031_07')")).scalar() is None
    events = make_events(2, 5, end=datetime(2031, 7, 3).date())  # 2031-06-29 .. 2031-07-03
    path = tmp_path / "july.parquet"
    events.to_parquet(path)
    now = datetime(2031, 7, 4, tzinfo=timezone.utc)
    assert load_events(clean_db, path, tmp_path, now=now).rows_inserted == len(events)
    assert load_events(clean_db, path, tmp_path, now=now).rows_inserted == 0
    with clean_db.begin() as conn:
        by_part = _partition_rows(conn)
        july = conn.execute(sa.text("select count(*) from analytics.usage_events"
                                    " where event_time >= '2031-07-01 00:00+00'")).scalar_one()
    assert by_part == {"analytics.usage_events_2031_06": len(events) - july, "analytics.usage_events_2031_07": july}
    assert july > 0


def test_rows_in_the_default_partition_move_to_their_month(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text(
            "insert into analytics.usage_events (event_key, event_time, workspace_id, feature, credits, status)"
            " values (md5('a')::uuid, '2032-02-10 05:00+00', 'ws', 'chat', 1, 'ok'),"
            "        (md5('b')::uuid, '2032-03-01 00:00+00', 'ws', 'chat', 2, 'ok')"))
        assert _partition_rows(conn) == {"analytics.usage_events_default": 2}
        name = conn.execute(sa.text(
            "select analytics.ensure_usage_events_partition('2032-02-29 23:59:59+00')")).scalar_one()
        assert name == "usage_events_2032_02"
        assert _partition_rows(conn) == {"analytics.usage_events_default": 1, "analytics.usage_events_2032_02": 1}
        # a second call finds it
        assert conn.execute(sa.text(
            "select analytics.ensure_usage_events_partition('2032-02-01 00:00+00')")).scalar_one() == name
