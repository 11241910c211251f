"""Directory SQL: set-based upserts of organizations and users, tombstones, roles, trainer
assignments and skill targets. RLS decides what the caller reaches; nothing here checks it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from ms8.schemas.directory import DirectoryUser, OrganizationUpserted, SkillTarget, UserUpserted


@dataclass(frozen=True, slots=True)
class Written:
    """One upsert as the database saw it: the row before the statement and whether it was written.

    `current_*` describe the stored row before the statement (None: none visible);
    `tombstone_version` the user's deletion mark; `org_known` whether the organization exists
    (for this client); `email_taken` is set by the service for a row refused on its email.
    """

    id: UUID
    version: int
    written: bool
    inserted: bool
    current_version: int | None
    current_org: UUID | None = None
    tombstone_version: int | None = None
    org_known: bool = True
    email_taken: bool = False


def _json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"), default=str)


_UPSERT_ORGANIZATIONS = """
WITH incoming AS (
    SELECT x.* FROM jsonb_to_recordset(%s::jsonb)
        AS x(id uuid, name text, kpis text[], value_propositions text[], version bigint)
), written AS (
    INSERT INTO organizations AS o (id, name, kpis, value_propositions, source_version)
    SELECT id, name, kpis, value_propositions, version FROM incoming ORDER BY id
    ON CONFLICT (id) DO UPDATE
    SET name = EXCLUDED.name, kpis = EXCLUDED.kpis, value_propositions = EXCLUDED.value_propositions,
        source_version = EXCLUDED.source_version
    WHERE o.source_version < EXCLUDED.source_version
    RETURNING o.id, (o.xmax = 0) AS inserted
)
SELECT i.id, i.version, w.id IS NOT NULL, coalesce(w.inserted, false), e.source_version
FROM incoming i
LEFT JOIN written w ON w.id = i.id
LEFT JOIN organizations e ON e.id = i.id
"""


def upsert_organizations(conn: psycopg.Connection, rows: Sequence[OrganizationUpserted]) -> list[Written]:
    """Insert or update organizations in one statement; a row applies only over an older version.

    `rows` must not repeat an id (ON CONFLICT cannot touch a row twice in one statement).
    """
    if not rows:
        return []
    payload = _json([
        {"id": r.id, "name": r.name, "kpis": r.kpis, "value_propositions": r.value_propositions,
         "version": r.version}
        for r in rows
    ])
    return [Written(*r) for r in conn.execute(_UPSERT_ORGANIZATIONS, (payload,)).fetchall()]


# One statement for a whole batch of users. `checked` reads the state before the write (one
# index lookup per row: the LATERAL ... OFFSET 0 keeps the planner from trading them for a scan
# of the whole table, which it would do on RLS's low row estimate); rows that cannot apply (not
# newer than the stored row or its tombstone, moving to another organization, an unknown
# organization) stay out of the INSERT, and the WHERE of ON CONFLICT repeats the version and
# organization rules. The last two columns tell which written users lost the trainer or learner
# role (their assignments end: a second statement, only then). An email another user holds fails
# the statement (UniqueViolation): the service then isolates the offending rows.
_UPSERT_USERS = """
WITH incoming AS (
    SELECT x.* FROM jsonb_to_recordset(%s::jsonb)
        AS x(id uuid, organization_id uuid, email text, name text, roles text[], timezone text, version bigint)
), checked AS (
    SELECT i.*, e.source_version AS current_version, e.organization_id AS current_org,
           e.roles AS current_roles, t.source_version AS tombstone_version,
           EXISTS (SELECT 1 FROM organizations o WHERE o.id = i.organization_id) AS org_known
    FROM incoming i
    LEFT JOIN LATERAL (SELECT e.source_version, e.organization_id, e.roles FROM users e
                       WHERE e.id = i.id OFFSET 0) e ON true
    LEFT JOIN LATERAL (SELECT t.source_version FROM user_tombstones t
                       WHERE t.user_id = i.id AND t.organization_id = i.organization_id OFFSET 0) t ON true
), written AS (
    INSERT INTO users AS u (id, organization_id, email, name, roles, timezone, source_version)
    SELECT id, organization_id, email, name, roles, timezone, version FROM checked
    WHERE org_known AND coalesce(tombstone_version, -1) < version
      AND (current_version IS NULL OR (current_version < version AND current_org = organization_id))
    ORDER BY id
    ON CONFLICT (id) DO UPDATE
    SET email = EXCLUDED.email, name = EXCLUDED.name, roles = EXCLUDED.roles,
        timezone = EXCLUDED.timezone, source_version = EXCLUDED.source_version
    WHERE u.source_version < EXCLUDED.source_version AND u.organization_id = EXCLUDED.organization_id
    RETURNING u.id, (u.xmax = 0) AS inserted
)
SELECT c.id, c.version, w.id IS NOT NULL, coalesce(w.inserted, false), c.current_version, c.current_org,
       c.tombstone_version, c.org_known,
       w.id IS NOT NULL AND 'trainer' = ANY (c.current_roles) AND NOT ('trainer' = ANY (c.roles)),
       w.id IS NOT NULL AND 'learner' = ANY (c.current_roles) AND NOT ('learner' = ANY (c.roles))
FROM checked c LEFT JOIN written w ON w.id = c.id
"""


def lock_directory_users(conn: psycopg.Connection, user_ids: Sequence[UUID]) -> None:
    """Serialize directory changes per user until the transaction ends (advisory locks, taken in
    key order so two batches cannot deadlock): the statements that follow see whatever a
    concurrent change of the same user committed, so version checks and erasure never race."""
    if user_ids:
        conn.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT DISTINCT "
            "hashtextextended('ms8.directory.user:' || id::text, 0) AS k FROM unnest(%s::uuid[]) AS id "
            "ORDER BY k OFFSET 0) s",
            (list(user_ids),),
        )


def upsert_users(conn: psycopg.Connection, rows: Sequence[UserUpserted]) -> list[Written]:
    """Insert or update users in one statement (see _UPSERT_USERS); ids must not repeat. Users who
    lost the trainer (learner) role lose their assignments as trainer (learner)."""
    if not rows:
        return []
    payload = _json([
        {"id": r.id, "organization_id": r.organization_id, "email": r.email, "name": r.name,
         "roles": r.roles, "timezone": r.timezone, "version": r.version}
        for r in rows
    ])
    rows_out = conn.execute(_UPSERT_USERS, (payload,)).fetchall()
    lost_trainer = [r[0] for r in rows_out if r[8]]
    lost_learner = [r[0] for r in rows_out if r[9]]
    if lost_trainer or lost_learner:
        conn.execute("DELETE FROM trainer_assignments WHERE trainer_id = ANY (%s) OR learner_id = ANY (%s)",
                     (lost_trainer, lost_learner))
    return [Written(*r[:8]) for r in rows_out]


def user_version(conn: psycopg.Connection, user_id: UUID) -> tuple[int, UUID] | None:
    """The stored version and organization of a user the caller can see."""
    row = conn.execute(
        "SELECT source_version, organization_id FROM users WHERE id = %s", (user_id,)
    ).fetchone()
    return (row[0], row[1]) if row else None


def raise_tombstone(conn: psycopg.Connection, user_id: UUID, organization_id: UUID, version: int) -> int | None:
    """Mark the user deleted at `version` (never lowering a mark); returns the mark before, if any."""
    row = conn.execute(
        """
        WITH before AS (SELECT source_version FROM user_tombstones WHERE user_id = %(id)s)
        INSERT INTO user_tombstones AS t (user_id, organization_id, source_version)
        VALUES (%(id)s, %(org)s, %(version)s)
        ON CONFLICT (user_id) DO UPDATE
        SET source_version = EXCLUDED.source_version, deleted_at = now()
        WHERE t.source_version < EXCLUDED.source_version
        RETURNING (SELECT source_version FROM before)
        """,
        {"id": user_id, "org": organization_id, "version": version},
    ).fetchone()
    if row is not None:
        return row[0]  # type: ignore[no-any-return]
    current = conn.execute(
        "SELECT source_version FROM user_tombstones WHERE user_id = %s", (user_id,)
    ).fetchone()
    return current[0] if current else None


_USER_COLUMNS = "id, organization_id, email, name, roles, timezone, updated_at"
_USER_FIELDS = tuple(c.strip() for c in _USER_COLUMNS.split(","))


def _user(row: Sequence[Any]) -> DirectoryUser:
    return DirectoryUser.model_construct(**dict(zip(_USER_FIELDS, row, strict=True)))


def list_users(
    conn: psycopg.Connection, organization_id: UUID, after: UUID | None, limit: int
) -> list[DirectoryUser]:
    """Up to `limit` users of the organization with ids after `after`, in id order (keyset)."""
    rows = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE organization_id = %s "
        "AND (%s::uuid IS NULL OR id > %s) ORDER BY id LIMIT %s",
        (organization_id, after, after, limit),
    ).fetchall()
    return [_user(r) for r in rows]


def lock_for_roles(
    conn: psycopg.Connection, organization_id: UUID, user_id: UUID
) -> tuple[list[str] | None, set[UUID]]:
    """Lock the user and the organization's org admins (in id order, so concurrent role changes
    cannot deadlock, and a demotion that commits first is seen); returns the user's roles (None
    when not visible) and the org admins' ids."""
    rows = conn.execute(
        "SELECT id, roles FROM users WHERE organization_id = %s "
        "AND (id = %s OR 'org_admin' = ANY (roles)) ORDER BY id FOR UPDATE",
        (organization_id, user_id),
    ).fetchall()
    roles = next((list(r[1]) for r in rows if r[0] == user_id), None)
    return roles, {r[0] for r in rows if "org_admin" in r[1]}


def set_roles(conn: psycopg.Connection, user_id: UUID, roles: Sequence[str]) -> DirectoryUser | None:
    row = conn.execute(
        f"UPDATE users SET roles = %s WHERE id = %s RETURNING {_USER_COLUMNS}", (list(roles), user_id)
    ).fetchone()
    return _user(row) if row else None


def remove_assignments(conn: psycopg.Connection, user_id: UUID, as_trainer: bool, as_learner: bool) -> int:
    """End the user's assignments as trainer and/or as learner; returns how many ended."""
    if not (as_trainer or as_learner):
        return 0
    return conn.execute(
        "DELETE FROM trainer_assignments WHERE (%s AND trainer_id = %s) OR (%s AND learner_id = %s)",
        (as_trainer, user_id, as_learner, user_id),
    ).rowcount


def lock_users(conn: psycopg.Connection, user_ids: Sequence[UUID]) -> dict[UUID, list[str]]:
    """Roles of the visible users among `user_ids`, share-locked until the transaction ends (a
    concurrent role change waits, or has committed and is seen)."""
    rows = conn.execute(
        "SELECT id, roles FROM users WHERE id = ANY (%s) ORDER BY id FOR SHARE", (list(user_ids),)
    ).fetchall()
    return {r[0]: list(r[1]) for r in rows}


def assign(
    conn: psycopg.Connection, organization_id: UUID, trainer_id: UUID, learner_id: UUID
) -> tuple[bool, datetime]:
    """Assign the learner to the trainer (idempotent); returns (created, since when)."""
    row = conn.execute(
        "INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) VALUES (%s, %s, %s) "
        "ON CONFLICT (trainer_id, learner_id) DO NOTHING RETURNING created_at",
        (organization_id, trainer_id, learner_id),
    ).fetchone()
    if row is not None:
        return True, row[0]
    existing = conn.execute(
        "SELECT created_at FROM trainer_assignments WHERE trainer_id = %s AND learner_id = %s",
        (trainer_id, learner_id),
    ).fetchone()
    assert existing is not None  # the conflict was on this very row, visible to an org admin
    return False, existing[0]


def unassign(conn: psycopg.Connection, trainer_id: UUID, learner_id: UUID) -> bool:
    return conn.execute(
        "DELETE FROM trainer_assignments WHERE trainer_id = %s AND learner_id = %s", (trainer_id, learner_id)
    ).rowcount > 0


def upsert_skill_target(conn: psycopg.Connection, organization_id: UUID, skill: str, level: float) -> SkillTarget:
    row = conn.execute(
        "INSERT INTO skill_targets AS s (organization_id, skill, target_level) VALUES (%s, %s, %s) "
        "ON CONFLICT (organization_id, skill) DO UPDATE SET target_level = EXCLUDED.target_level "
        "RETURNING s.skill, s.target_level, (s.xmax = 0), s.updated_at",
        (organization_id, skill, level),
    ).fetchone()
    assert row is not None
    # target_level is a real: round off the float noise of single precision.
    return SkillTarget(skill=row[0], target_level=round(row[1], 6), created=row[2], updated_at=row[3])


def refresh_skill_gaps(conn: psycopg.Connection) -> int:
    """Recompute the skill_gap snapshot of every learner of the caller's organization (org admin)
    from their mastery snapshot and the current targets (app.refresh_skill_gaps, migration 0008);
    returns the snapshots that changed."""
    row = conn.execute("SELECT app.refresh_skill_gaps()").fetchone()
    assert row is not None
    return int(row[0])
