"""Peer groups through app.peer_comparison: the caller's organization and role, k >= 10 only."""

from __future__ import annotations

from typing import Any

import psycopg


def peer_groups(conn: psycopg.Connection, analytics_type: str | None) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT analytics_type, user_count, avg_value, p25, p50, p75, refreshed_at "
        "FROM app.peer_comparison(%s)",
        (analytics_type,),
    ).fetchall()
    keys = ("user_count", "average", "p25", "p50", "p75", "refreshed_at")
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}
