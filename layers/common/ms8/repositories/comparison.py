"""Peer comparison through app.read_comparison (migration 0011): the caller's own snapshots beside
the peer groups of app.peer_comparison (the caller's organization and role, k >= 10 only);
and the refresh job's releases from the comparison view (migration 0009)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID

import psycopg

READ: LiteralString = "app.request_comparison(%s, %s, %s)"  # ms8.db.read_as_user
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


# --- the refresh job's side (owner connection, maintenance transaction) ---

GroupKey = tuple[UUID, str, str]  # organization, role, analytics type


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One group of the comparison view: its exact statistics and its state digest."""

    key: GroupKey
    user_count: int
    out_of_range: int
    sum_units: int
    bins: list[int]
    counts: list[int]
    digest: int
    low: float
    high: float


def groups(conn: psycopg.Connection) -> list[GroupRow]:
    """Every group of the (just refreshed) comparison view, with its release range."""
    rows = conn.execute(
        "SELECT c.organization_id, c.role, c.analytics_type, c.user_count, c.out_of_range, c.sum_units, "
        "c.bins, c.counts, c.digest, r.release_low, r.release_high "
        "FROM public.comparison_aggregates c JOIN app.headline_ranges r USING (analytics_type) "
        "ORDER BY 1, 2, 3"
    ).fetchall()
    return [GroupRow((r[0], r[1], r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]) for r in rows]


def release_digests(conn: psycopg.Connection) -> dict[GroupKey, tuple[int, int]]:
    """The state each current release was drawn for: (digest, user count)."""
    rows = conn.execute(
        "SELECT organization_id, role, analytics_type, digest, user_count FROM app.comparison_releases"
    ).fetchall()
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


def spent_since(conn: psycopg.Connection, since: datetime) -> dict[GroupKey, float]:
    """Privacy budget each group spent on releases since `since`."""
    rows = conn.execute(
        "SELECT organization_id, role, analytics_type, sum(epsilon) FROM app.comparison_spend "
        "WHERE released_at > %s GROUP BY 1, 2, 3", (since,)
    ).fetchall()
    return {(r[0], r[1], r[2]): float(r[3]) for r in rows}


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    key: GroupKey
    digest: int
    user_count: int
    average: float
    p25: float
    p50: float
    p75: float
    epsilon: float


def save_releases(conn: psycopg.Connection, releases: Sequence[ReleaseRow], keep: Sequence[GroupKey],
                  now: datetime, forget_before: datetime) -> int:
    """Write fresh releases (and their budget spend), drop releases of groups not in `keep` (no
    longer k-anonymous, or gone), forget spend older than the window. Returns releases dropped."""
    cols: list[list[Any]] = [[r.key[0], r.key[1], r.key[2], r.digest, r.user_count, r.average, r.p25, r.p50,
                              r.p75, r.epsilon] for r in releases]
    columns = [list(c) for c in zip(*cols, strict=True)] if cols else [[] for _ in range(10)]
    conn.execute(
        "WITH fresh AS (SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::bigint[], %s::int[], "
        "%s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[]) "
        "AS f(organization_id, role, analytics_type, digest, user_count, avg_value, p25, p50, p75, epsilon)), "
        "spend AS (INSERT INTO app.comparison_spend (organization_id, role, analytics_type, released_at, epsilon) "
        "SELECT organization_id, role, analytics_type, %s, epsilon FROM fresh) "
        "INSERT INTO app.comparison_releases AS r (organization_id, role, analytics_type, digest, user_count, "
        "avg_value, p25, p50, p75, epsilon, released_at) "
        "SELECT organization_id, role, analytics_type, digest, user_count, avg_value, p25, p50, p75, epsilon, %s "
        "FROM fresh ORDER BY 1, 2, 3 "
        "ON CONFLICT (organization_id, role, analytics_type) DO UPDATE SET digest = EXCLUDED.digest, "
        "user_count = EXCLUDED.user_count, avg_value = EXCLUDED.avg_value, p25 = EXCLUDED.p25, "
        "p50 = EXCLUDED.p50, p75 = EXCLUDED.p75, epsilon = EXCLUDED.epsilon, released_at = EXCLUDED.released_at",
        (*columns, now, now),
    )
    dropped = conn.execute(
        "DELETE FROM app.comparison_releases r WHERE NOT EXISTS (SELECT 1 FROM unnest(%s::uuid[], %s::text[], "
        "%s::text[]) AS k(o, ro, t) WHERE k.o = r.organization_id AND k.ro = r.role AND k.t = r.analytics_type)",
        ([k[0] for k in keep], [k[1] for k in keep], [k[2] for k in keep]),
    ).rowcount
    conn.execute("DELETE FROM app.comparison_spend WHERE released_at <= %s", (forget_before,))
    return dropped
