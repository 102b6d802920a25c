"""Source text ids → the UUIDs the seed's tables key on (DESIGN.md, "Ids")."""
from __future__ import annotations

import uuid

ENTITY_KINDS = ("workspace", "user", "agent")


def entity_uuid(kind: str, external_id: str) -> uuid.UUID:
    """The id itself when it is a UUID, else ``uuid5(NAMESPACE_OID, '<kind>:<id>')``."""
    if kind not in ENTITY_KINDS:
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {ENTITY_KINDS}")
    try:
        return uuid.UUID(str(external_id))
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_OID, f"{kind}:{external_id}")
