"""Peer comparison through app.read_comparison (migration 0011): the caller's own snapshots beside
the peer groups of app.peer_comparison (the caller's organization and role, k >= 10 only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg

READ: LiteralString = "app.read_comparison(c.user_id, c.active_role, %s::text)"  # ms8.db.read_as_user
_GROUP_KEYS = ("user_count", "average", "p25", "p50", "p75", "refreshed_at")


def split(rows: Sequence[Sequence[Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Own snapshot data and peer group per analytics type, from READ's rows."""
    own = {r[0]: r[1] for r in rows if r[1] is not None}
    groups = {r[0]: dict(zip(_GROUP_KEYS, r[2:], strict=True)) for r in rows if r[2] is not None}
    return own, groups


def rows_in(conn: psycopg.Connection, analytics_type: str | None) -> list[tuple[Any, ...]]:
    """READ's rows inside an open request transaction (report data gathering)."""
    return conn.execute(
        "SELECT * FROM app.read_comparison(app.current_user_id(), app.current_role(), %s::text)",
        (analytics_type,),
    ).fetchall()
