"""API keys: create, verify, list and revoke.

A key is ``pae_`` + ``secrets.token_urlsafe(32)`` (256 random bits), scoped to one or more workspaces. Only
``HMAC-SHA256(pepper, key)`` is stored, with the last 4 characters as a hint. A slow password hash (scrypt)
protects guessable secrets; a 256-bit random key cannot be guessed, so a fast keyed hash is as safe and keeps
verification to one indexed lookup per request. The pepper (``PAE_API_KEY_PEPPER``) lives only in the server's
settings, so the hashes in ``analytics.api_keys`` (readable by the reader role, hence by BI tools) are useless
without it. Changing the pepper invalidates every key.

Creating and revoking keys needs a role that may write ``analytics.api_keys`` (the schema owner, i.e. the
``DATABASE_URL`` user); the API's reader role only verifies.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.settings import get_settings
from services.predictive_analytics import resolve_workspace

KEY_PREFIX = "pae_"
_KEY_FORMAT = re.compile(r"^pae_[A-Za-z0-9_-]{43}$")

_INSERT = sa.text("""
    insert into analytics.api_keys (name, key_hash, key_hint, workspace_ids)
    values (:name, :hash, :hint, cast(:workspaces as uuid[]))
""")
_LOOKUP = sa.text("""
    select id, name, workspace_ids::text[] as workspace_ids, revoked_at
    from analytics.api_keys
    where key_hash = :hash
""")
_LIST = sa.text("""
    select id, name, key_hint, workspace_ids::text[] as workspace_ids, created_at, revoked_at
    from analytics.api_keys
    order by created_at, id
""")
_REVOKE = sa.text("""
    update analytics.api_keys set revoked_at = now()
    where id = :id and revoked_at is null
""")


@dataclass(frozen=True)
class ApiKey:
    """A verified key: its id, name, the workspaces (canonical UUID strings) it may read, and revocation."""

    id: uuid.UUID
    name: str
    workspace_ids: frozenset[str]
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _pepper(pepper: str | None) -> str:
    return get_settings().api_key_pepper.get_secret_value() if pepper is None else pepper


def hash_api_key(key: str, pepper: str) -> str:
    """The stored form of a key: hex HMAC-SHA256 keyed with the pepper."""
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def create_api_key(engine: Engine, workspace_ids: list[str], name: str, *, pepper: str | None = None) -> str:
    """Create a key for some workspaces and return it; this is the only time the key is seen.

    Args:
        engine: An engine whose role may insert into ``analytics.api_keys``.
        workspace_ids: The workspaces (UUIDs or external ids) the key may read; each must exist.
        name: Who or what the key is for.
        pepper: The hashing pepper; ``None`` takes it from the settings (the API must use the same).

    Returns:
        The key.

    Raises:
        ValueError: No workspace or an empty name was given.
        UnknownWorkspaceError: A workspace does not exist.
    """
    if not workspace_ids:
        raise ValueError("an API key needs at least one workspace")
    if not name.strip():
        raise ValueError("an API key needs a name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        scopes = sorted({str(resolve_workspace(conn, w).id) for w in workspace_ids})
        conn.execute(_INSERT, {"name": name, "hash": hash_api_key(key, _pepper(pepper)), "hint": key[-4:],
                               "workspaces": scopes})
    return key


def verify_api_key(engine: Engine, key: str, *, pepper: str | None = None) -> ApiKey | None:
    """Look a presented key up; ``None`` when it is malformed or unknown (a revoked key is returned).

    Args:
        engine: Any engine that may read ``analytics.api_keys``.
        key: The key as presented.
        pepper: The hashing pepper; ``None`` takes it from the settings.
    """
    if not _KEY_FORMAT.match(key):
        return None
    with engine.connect() as conn:
        row = conn.execute(_LOOKUP, {"hash": hash_api_key(key, _pepper(pepper))}).first()
    if row is None:
        return None
    return ApiKey(id=row.id, name=row.name, workspace_ids=frozenset(row.workspace_ids),
                  revoked_at=row.revoked_at)


def list_api_keys(engine: Engine) -> list[dict[str, Any]]:
    """Every key's id, name, hint, workspaces, creation and revocation time (never a hash)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(_LIST).mappings()]


def revoke_api_key(engine: Engine, key_id: str) -> bool:
    """Revoke a key by id; ``False`` when no active key has that id."""
    with engine.begin() as conn:
        return conn.execute(_REVOKE, {"id": str(uuid.UUID(key_id))}).rowcount == 1
