"""What the analytics computation reads besides events: the users' organizations and time zones,
and their organizations' skill targets. Both work in a request (RLS) and in maintenance."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from uuid import UUID

import psycopg


def owners(conn: psycopg.Connection, user_ids: Sequence[UUID]) -> dict[UUID, tuple[UUID, str]]:
    """user id -> (organization id, time zone name), through app.activity_owners (migration 0005):
    the ingest scope may not read `users`, yet it needs their time zones. Users the caller may
    not see are left out."""
    if not user_ids:
        return {}
    rows = conn.execute(
        "SELECT user_id, organization_id, timezone FROM app.activity_owners(%s)", (list(user_ids),)
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def skill_targets(conn: psycopg.Connection, organization_ids: Collection[UUID]) -> dict[UUID, dict[str, float]]:
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
