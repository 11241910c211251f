"""Organizations' skill targets (the levels the skill gap is measured against). Reads work in a
request (RLS) and in maintenance."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

import psycopg


def for_organizations(conn: psycopg.Connection, organization_ids: Collection[UUID]) -> dict[UUID, dict[str, float]]:
    """organization id -> {skill: target level}."""
    targets: dict[UUID, dict[str, float]] = {}
    if not organization_ids:
        return targets
    rows = conn.execute(
        "SELECT organization_id, skill, target_level FROM skill_targets WHERE organization_id = ANY (%s)",
        (list(organization_ids),),
    ).fetchall()
    for org, skill, level in rows:
        targets.setdefault(org, {})[skill] = round(float(level), 6)  # real: drop float4 noise
    return targets
