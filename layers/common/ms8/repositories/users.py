"""Users as the caller may see them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString
from uuid import UUID

import psycopg

READ_ME: LiteralString = "app.request_me(%s, %s)"  # ms8.db.read_as_user, migration 0016
ME_KEYS = ("id", "organization_id", "email", "name", "roles", "timezone")


def get(conn: psycopg.Connection, user_id: UUID) -> dict[str, Any] | None:
    """The user row if RLS lets the caller see it."""
    row = conn.execute(
        "SELECT id, organization_id, email, name, roles, timezone, source_version FROM users WHERE id = %s",
        (user_id,),
    ).fetchone()
    if row is None:
        return None
    keys = ("id", "organization_id", "email", "name", "roles", "timezone", "source_version")
    return dict(zip(keys, row, strict=True))


def is_visible(conn: psycopg.Connection, user_id: UUID) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE id = %s", (user_id,)).fetchone() is not None


def org_admin_count(conn: psycopg.Connection, organization_id: UUID) -> int:
    row = conn.execute(
        "SELECT count(*) FROM users WHERE organization_id = %s AND 'org_admin' = ANY (roles)",
        (organization_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def report_keys(conn: psycopg.Connection, user_id: UUID) -> list[str]:
    """S3 keys of the user's report files (to delete with the user)."""
    rows = conn.execute(
        "SELECT s3_key FROM reports WHERE user_id = %s AND s3_key IS NOT NULL", (user_id,)
    ).fetchall()
    return [r[0] for r in rows]


def delete(conn: psycopg.Connection, user_id: UUID) -> dict[str, Any] | None:
    """Delete the user (every per-user row goes with it by cascade) and leave a tombstone.

    Returns the deleted row, or None when RLS hid it or it does not exist.
    """
    row = conn.execute(
        "DELETE FROM users WHERE id = %s RETURNING id, organization_id, source_version", (user_id,)
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        "INSERT INTO user_tombstones (user_id, organization_id, source_version) VALUES (%s, %s, %s) "
        "ON CONFLICT (user_id) DO UPDATE SET source_version = greatest(user_tombstones.source_version, "
        "EXCLUDED.source_version), organization_id = EXCLUDED.organization_id, deleted_at = now()",
        row,
    )
    return {"id": row[0], "organization_id": row[1], "source_version": row[2]}


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
