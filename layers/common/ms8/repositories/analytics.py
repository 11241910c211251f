"""Analytics snapshots: recent, summary, and the batch upsert as one statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString, NamedTuple
from uuid import UUID

import orjson
import psycopg
from pydantic import TypeAdapter

from ms8.db import autocommit
from ms8.schemas.analytics import Analytics, WrittenAnalytics

_COLUMNS = (
    "id, user_id, role, analytics_type, data, source, definition_version, window_days, "
    "data_through, version, updated_at"
)
_FIELDS = tuple(c.strip() for c in _COLUMNS.split(","))


def _row(row: Sequence[Any]) -> Analytics:
    # Rows come from our own table under its CHECK constraints: no need to validate them again.
    return Analytics.model_construct(**dict(zip(_FIELDS, row, strict=True)))


# Calls of the request functions of migration 0016 for ms8.db.read_as_user: the user and the
# role asked for, then this read's own parameters.
READ_RECENT: LiteralString = "app.request_analytics(%s, %s, %s, %s)"
READ_SUMMARY: LiteralString = "app.request_analytics_summary(%s, %s)"
READ_USER: LiteralString = "app.request_user_analytics(%s, %s, %s, %s, %s)"


def items(rows: Sequence[Sequence[Any]]) -> list[Analytics]:
    """Snapshots from rows of READ_RECENT (or any rows of the analytics columns)."""
    return [_row(r) for r in rows]


def summary_of(rows: Sequence[Sequence[Any]]) -> tuple[int, Analytics | None]:
    """Count and newest snapshot from the rows of READ_SUMMARY."""
    if not rows:
        return 0, None
    return int(rows[0][0]), _row(rows[0][1:])


def user_items(rows: Sequence[Sequence[Any]]) -> list[Analytics] | None:
    """READ_USER's rows: the user's snapshots, None when the caller may not see that user."""
    if rows and rows[0][0] is False:
        return None
    return [_row(r[1:]) for r in rows]


def recent(
    conn: psycopg.Connection, user_id: UUID, role: str, analytics_type: str | None, limit: int
) -> list[Analytics]:
    """A user's snapshots for one role, newest first (RLS decides whether the caller may see)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM analytics WHERE user_id = %s AND role = %s "
        "AND (%s::text IS NULL OR analytics_type = %s) ORDER BY updated_at DESC LIMIT %s",
        (user_id, role, analytics_type, analytics_type, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def recent_any_role(conn: psycopg.Connection, user_id: UUID, limit: int) -> list[Analytics]:
    """Every snapshot of a user that RLS lets the caller see, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM analytics WHERE user_id = %s ORDER BY updated_at DESC LIMIT %s",
        (user_id, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def summary(conn: psycopg.Connection, user_id: UUID, role: str) -> tuple[int, Analytics | None]:
    """Count and newest snapshot in one statement (the seed needed two queries)."""
    row = conn.execute(
        f"SELECT count(*) OVER (), {_COLUMNS} FROM analytics WHERE user_id = %s AND role = %s "
        "ORDER BY updated_at DESC LIMIT 1",
        (user_id, role),
    ).fetchone()
    if row is None:
        return 0, None
    return row[0], _row(row[1:])


class SnapshotWrite(NamedTuple):
    """One row to upsert, with its owner resolved (the caller's own, or a service's target). A
    tuple: a batch makes hundreds, and a frozen dataclass costs several times more to build."""

    user_id: UUID
    organization_id: UUID
    role: str
    analytics_type: str
    data: dict[str, Any]
    source: str = "client"
    definition_version: int | None = None
    window_days: int | None = None
    data_through: datetime | None = None


_WRITE = """
INSERT INTO analytics AS a (user_id, organization_id, role, analytics_type, data, source,
                            definition_version, window_days, data_through)
SELECT x.user_id, x.organization_id, x.role, x.analytics_type, x.data, x.source,
       x.definition_version, x.window_days, x.data_through
FROM jsonb_to_recordset(%s::jsonb) AS x(user_id uuid, organization_id uuid, role text,
     analytics_type text, data jsonb, source text, definition_version integer,
     window_days integer, data_through timestamptz)
ORDER BY x.user_id, x.role, x.analytics_type
ON CONFLICT (user_id, role, analytics_type) DO UPDATE
SET data = EXCLUDED.data, source = EXCLUDED.source,
    definition_version = EXCLUDED.definition_version, window_days = EXCLUDED.window_days,
    data_through = EXCLUDED.data_through, version = a.version + 1
"""
_UPSERT = _WRITE + "RETURNING id, user_id, role, analytics_type, version, updated_at\n"


def _json_text(records: list[dict[str, Any]]) -> str:
    """Rows as the JSON array a statement reads. orjson writes UUIDs and datetimes itself, ~6x
    faster than json for a 500-item batch; what it refuses (a string with a lone surrogate, an
    integer beyond 64 bits) goes through json as before, for PostgreSQL to refuse or store. A
    non-finite float would be written as null (json wrote NaN, which PostgreSQL refused): the API
    refuses them in its bounds check before, and a computed snapshot holding one is a defect of
    the metrics, not an input to keep."""
    try:
        return orjson.dumps(records).decode()
    except orjson.JSONEncodeError:
        return json.dumps(records, separators=(",", ":"), default=_json_default)


def _payload(rows: Sequence[SnapshotWrite]) -> str:
    return _json_text([
        {
            "user_id": r.user_id, "organization_id": r.organization_id, "role": r.role,
            "analytics_type": r.analytics_type, "data": r.data, "source": r.source,
            "definition_version": r.definition_version, "window_days": r.window_days,
            "data_through": r.data_through,
        }
        for r in rows
    ])


def _json_default(value: Any) -> str:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def upsert_batch(conn: psycopg.Connection, rows: Sequence[SnapshotWrite]) -> list[WrittenAnalytics]:
    """Insert or replace snapshots in one statement: all rows or none.

    Rows are written in key order, so two batches over the same keys lock them in the same
    order and cannot deadlock; each update bumps `version`, so no update goes unseen.
    """
    if not rows:
        return []
    # Hundreds of rows: pydantic-core builds them from dicts ~3x faster than model_construct
    # (a Python call per row) would.
    return _WRITTEN.validate_python([
        dict(zip(_WRITTEN_FIELDS, r, strict=True)) for r in conn.execute(_UPSERT, (_payload(rows),)).fetchall()
    ])


_WRITTEN = TypeAdapter(list[WrittenAnalytics])
_WRITTEN_FIELDS = ("id", "user_id", "role", "analytics_type", "version", "updated_at")


# The summary answer: how many rows were new and how many replaced, one row back instead of 500
# (a row an upsert inserted has no xmax; an updated one carries the updating transaction's).
_UPSERT_SUMMARY = (
    "WITH w AS (" + _WRITE + "RETURNING (a.xmax = 0) AS inserted)\n"
    "SELECT count(*) FILTER (WHERE w.inserted), count(*) FILTER (WHERE NOT w.inserted) FROM w"
)


def upsert_batch_summary(conn: psycopg.Connection, rows: Sequence[SnapshotWrite]) -> tuple[int, int]:
    """upsert_batch answering only (inserted, updated): the default answer of PUT /v1/analytics."""
    if not rows:
        return 0, 0
    row = conn.execute(_UPSERT_SUMMARY, (_payload(rows),)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def upsert_batch_count(conn: psycopg.Connection, rows: Sequence[SnapshotWrite]) -> int:
    """upsert_batch without reading the rows back (thousands, for a recomputation): how many
    were written."""
    if not rows:
        return 0
    return conn.execute(_WRITE, (_payload(rows),)).rowcount


# A platform's batch in one statement (migration 0019): the service context call, the upsert
# into the organization it resolves, and (autocommit) the commit; the rows carry only their keys
# and data. Answers (inserted, updated).
_SERVICE_UPSERT: LiteralString = "SELECT * FROM app.request_service_upsert_analytics(%s, %s, %s, %s::jsonb)"


def upsert_batch_as_service(
    conn: psycopg.Connection, client_id: str, scope: str, organization_id: UUID | None,
    rows: Sequence[tuple[UUID, str, str, dict[str, Any]]],
) -> tuple[int, int]:
    """Write (user_id, role, analytics_type, data) rows as the client's snapshots in one statement
    and one round trip, its own transaction (all or nothing): (inserted, updated). The client's
    context is set inside the statement (app.begin_service_request: its errors as for any request)."""
    payload = _json_text([{"user_id": u, "role": r, "analytics_type": t, "data": d} for u, r, t, d in rows])
    row = autocommit(conn).execute(_SERVICE_UPSERT, (client_id, scope, organization_id, payload)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
