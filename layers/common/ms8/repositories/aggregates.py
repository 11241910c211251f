"""Organization history (aggregated_analytics), as RLS lets the caller see it."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import psycopg

from ms8.models.aggregates import Aggregate

_FIELDS = ("granularity", "role", "analytics_type", "period_start", "period_end", "user_count", "data")


def history(
    conn: psycopg.Connection, organization_id: UUID, granularity: str, analytics_type: str | None, role: str | None,
    start: date, end: date, limit: int,
) -> list[Aggregate]:
    """Rollup rows whose period starts in [start, end], oldest first."""
    rows = conn.execute(
        f"SELECT {', '.join(_FIELDS)} FROM aggregated_analytics "
        "WHERE organization_id = %s AND granularity = %s AND period_start BETWEEN %s AND %s "
        "AND (%s::text IS NULL OR analytics_type = %s) AND (%s::text IS NULL OR role = %s) "
        "ORDER BY period_start, analytics_type, role LIMIT %s",
        (organization_id, granularity, start, end, analytics_type, analytics_type, role, role, limit),
    ).fetchall()
    return [Aggregate.model_construct(**dict(zip(_FIELDS, r, strict=True))) for r in rows]
