"""Report rows, their link audit, and the data a report is made of, as RLS lets the caller see it.

Everything here runs in the caller's request transaction (runtime role), except
`delete_older_than`, which the expiry job runs as the owner in a maintenance transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from ms8.renderers.series import LOOKBACK_DAYS, SCORED_VERBS, DaySums, SkillDay

_COLUMNS = (
    "id, user_id, organization_id, role, format, status, params, s3_key, size_bytes, checksum_sha256, "
    "error, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class ReportRow:
    id: UUID
    user_id: UUID
    organization_id: UUID
    role: str
    format: str
    status: str
    params: dict[str, Any]
    s3_key: str | None
    size_bytes: int | None
    checksum_sha256: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


def _row(row: Sequence[Any] | None) -> ReportRow | None:
    return ReportRow(*row) if row is not None else None


def _written(conn: psycopg.Connection, statement: str, params: Sequence[Any]) -> ReportRow:
    """The one row an INSERT or UPDATE ... RETURNING wrote (the caller's own report)."""
    row = _row(conn.execute(statement, params).fetchone())
    assert row is not None
    return row


def insert_pending(
    conn: psycopg.Connection, report_id: UUID, user_id: UUID, organization_id: UUID, role: str, fmt: str,
    params: dict[str, Any], s3_key: str,
) -> ReportRow:
    """A new report row, `pending`, holding the key its file will have (RLS: own rows only)."""
    return _written(
        conn,
        "INSERT INTO reports (id, user_id, organization_id, role, format, status, params, s3_key) "
        f"VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s) RETURNING {_COLUMNS}",
        (report_id, user_id, organization_id, role, fmt, Jsonb(params), s3_key),
    )


def mark_ready(conn: psycopg.Connection, report_id: UUID, size_bytes: int, checksum_sha256: str) -> ReportRow:
    return _written(
        conn,
        "UPDATE reports SET status = 'ready', size_bytes = %s, checksum_sha256 = %s, error = NULL "
        f"WHERE id = %s RETURNING {_COLUMNS}",
        (size_bytes, checksum_sha256, report_id),
    )


def mark_failed(conn: psycopg.Connection, report_id: UUID, error: str, s3_key: str | None) -> ReportRow:
    """`s3_key` stays only when a file may still exist (so erasure still deletes it)."""
    return _written(
        conn,
        "UPDATE reports SET status = 'failed', error = %s, s3_key = %s, size_bytes = NULL, "
        f"checksum_sha256 = NULL WHERE id = %s RETURNING {_COLUMNS}",
        (error, s3_key, report_id),
    )


def get(conn: psycopg.Connection, report_id: UUID) -> ReportRow | None:
    """The row if RLS lets the caller read it (own; an org admin: any of the organization)."""
    return _row(conn.execute(f"SELECT {_COLUMNS} FROM reports WHERE id = %s", (report_id,)).fetchone())


def page(
    conn: psycopg.Connection, *, user_id: UUID | None, organization_id: UUID, after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[ReportRow]:
    """Newest first, after the keyset cursor `after` (created_at, id); `user_id` None: the whole
    organization (what RLS shows an org admin)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM reports "
        "WHERE organization_id = %(org)s AND (%(user)s::uuid IS NULL OR user_id = %(user)s) "
        "AND (%(at)s::timestamptz IS NULL OR (created_at, id) < (%(at)s, %(id)s)) "
        "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
        {"org": organization_id, "user": user_id, "at": after[0] if after else None,
         "id": after[1] if after else None, "limit": limit},
    ).fetchall()
    return [ReportRow(*r) for r in rows]


def record_link(
    conn: psycopg.Connection, report_id: UUID, organization_id: UUID, user_id: UUID, issued_at: datetime,
    expires_at: datetime,
) -> None:
    """Audit: who was handed a download link for which report, when, and until when."""
    conn.execute(
        "INSERT INTO report_links (report_id, organization_id, user_id, issued_at, expires_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        (report_id, organization_id, user_id, issued_at, expires_at),
    )


def names(conn: psycopg.Connection, user_id: UUID) -> tuple[str, str] | None:
    """(organization name, person name) of a user the caller may see."""
    row = conn.execute(
        "SELECT o.name, u.name FROM users u JOIN organizations o ON o.id = u.organization_id WHERE u.id = %s",
        (user_id,),
    ).fetchone()
    return (row[0], row[1]) if row else None


# Days of [start - LOOKBACK_DAYS, end] in the person's time zone; the partition key is bounded by
# instants so that only the partitions of the period are scanned.
_BOUNDS = f"""
  AND e.occurred_at >= ((%(start)s::date - {LOOKBACK_DAYS})::timestamp AT TIME ZONE %(tz)s)
  AND e.occurred_at < ((%(end)s::date + 1)::timestamp AT TIME ZONE %(tz)s)
"""
_SCORED = "e.score IS NOT NULL AND e.verb IN ('" + "', '".join(SCORED_VERBS) + "')"

_PERSON_DAYS = f"""
SELECT (e.occurred_at AT TIME ZONE %(tz)s)::date AS day,
       count(*) AS events,
       coalesce(array_agg(DISTINCT e.object_id) FILTER (WHERE e.verb = 'completed'), '{{}}') AS completed,
       count(*) FILTER (WHERE e.verb = 'session') AS sessions,
       coalesce(sum(e.duration_seconds), 0) / 60.0 AS minutes,
       coalesce(sum(e.score::float8) FILTER (WHERE {_SCORED}), 0) AS score_sum,
       count(*) FILTER (WHERE {_SCORED}) AS scored
FROM learning_events e
WHERE e.user_id = %(user)s {_BOUNDS}
GROUP BY 1
"""

_PERSON_SKILL_DAYS = f"""
SELECT (e.occurred_at AT TIME ZONE %(tz)s)::date AS day, s.skill, sum(e.score::float8), count(*)
FROM learning_events e
CROSS JOIN LATERAL unnest(e.skills) AS s(skill)
WHERE e.user_id = %(user)s AND {_SCORED} {_BOUNDS}
GROUP BY 1, 2
"""


def person_days(conn: psycopg.Connection, user_id: UUID, tz: str, start: date, end: date) -> list[DaySums]:
    """A person's events per day (their time zone), from LOOKBACK_DAYS before `start` to `end`."""
    params = {"user": user_id, "tz": tz, "start": start, "end": end}
    return [
        DaySums(r[0], int(r[1]), frozenset(r[2]), int(r[3]), float(r[4]), float(r[5]), int(r[6]))
        for r in conn.execute(_PERSON_DAYS, params).fetchall()
    ]


def person_skill_days(conn: psycopg.Connection, user_id: UUID, tz: str, start: date, end: date) -> list[SkillDay]:
    """A person's scored assessment events per day and skill, over the same days."""
    params = {"user": user_id, "tz": tz, "start": start, "end": end}
    return [
        SkillDay(r[0], r[1], float(r[2]), int(r[3])) for r in conn.execute(_PERSON_SKILL_DAYS, params).fetchall()
    ]


def skill_targets(conn: psycopg.Connection, organization_id: UUID) -> dict[str, float]:
    """The organization's target level per skill."""
    rows = conn.execute(
        "SELECT skill, target_level FROM skill_targets WHERE organization_id = %s", (organization_id,)
    ).fetchall()
    return {r[0]: float(r[1]) for r in rows}


def delete_older_than(conn: psycopg.Connection, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` report rows created before `cutoff`, oldest first (their link audit
    rows go by cascade). Maintenance transaction only."""
    cur = conn.execute(
        "DELETE FROM reports WHERE id IN "
        "(SELECT id FROM reports WHERE created_at < %s ORDER BY created_at LIMIT %s)",
        (cutoff, limit),
    )
    return cur.rowcount
