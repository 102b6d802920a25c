"""A/B arms: which model version (champion or challenger) serves a workspace.

The assignment is a deterministic hash of the workspace id and a salt, so it is stable from night to night
and the same in every process (never Python's ``hash``). A workspace is in the challenger arm when its hash
falls below ``share``; raising the share keeps every workspace already in the challenger arm there.
"""
from __future__ import annotations

import hashlib

CHAMPION_ARM, CHALLENGER_ARM = "champion", "challenger"
ARMS = (CHAMPION_ARM, CHALLENGER_ARM)


def arm_fraction(workspace_id: str, salt: str = "pae-ab") -> float:
    """A uniform number in [0, 1) fixed by the workspace id and the salt."""
    digest = hashlib.sha256(f"{salt}:{workspace_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_of(workspace_id: str, share: float, salt: str = "pae-ab") -> str:
    """``challenger`` for a ``share`` of workspaces (0 to 1), ``champion`` for the rest."""
    if not 0 <= share <= 1:
        raise ValueError(f"A/B challenger share must be between 0 and 1, got {share}")
    return CHALLENGER_ARM if arm_fraction(str(workspace_id), salt) < share else CHAMPION_ARM


def workspace_arm(workspace_id: str, share: float, salt: str = "pae-ab") -> str:
    """The arm of a workspace given by its source id or its UUID: hashed on the UUID (``core.ids``), the key the
    published tables and the snapshots use, so every kind and the publisher agree."""
    from core.ids import entity_uuid

    return arm_of(str(entity_uuid("workspace", str(workspace_id))), share, salt)
