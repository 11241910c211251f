"""SQL of the scheduled jobs (owner connection, inside a maintenance transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from uuid import UUID

import psycopg
from psycopg import sql

COMPARISON_VIEW = "comparison_aggregates"
YearlyTable = Literal["population_rollups", "aggregated_analytics"]
PartitionedTable = Literal["population_rollups", "aggregated_analytics", "learning_events"]
# The partition key's type per parent, to read partition bounds back as values.
_KEY_TYPES: dict[PartitionedTable, str] = {
    "population_rollups": "date", "aggregated_analytics": "date", "learning_events": "timestamptz",
}


def begin_job(conn: psycopg.Connection, job: str) -> bool:
    """Open the maintenance transaction and try the job's lock, in one statement.

    False when another run holds the lock. pg_try_advisory_xact_lock never waits, and the lock
    ends with the transaction (no session state: RDS Proxy does not pin the connection).
    """
    row = conn.execute(
        "SELECT app.begin_maintenance(), pg_try_advisory_xact_lock(hashtext(%s))", ("ms8.job:" + job,)
    ).fetchone()
    assert row is not None
    return bool(row[1])


def transaction_now(conn: psycopg.Connection) -> datetime:
    """The database's now(): the instant of the current transaction (what the views are relative to)."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


# --- comparison view ---

def comparison_populated(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT relispopulated FROM pg_class WHERE oid = 'public.comparison_aggregates'::regclass"
    ).fetchone()
    assert row is not None
    return bool(row[0])


def refresh_comparison(conn: psycopg.Connection, *, concurrently: bool) -> int:
    """Refresh the peer-comparison view; returns its row count afterwards.

    CONCURRENTLY (which needs the view's unique index and a populated view) builds the new
    contents beside the old and applies the difference under an EXCLUSIVE lock, which readers'
    ACCESS SHARE does not conflict with: reads go on, seeing the old rows until the commit.
    The plain form takes ACCESS EXCLUSIVE and is only for the very first population.
    """
    mode = sql.SQL("CONCURRENTLY ") if concurrently else sql.SQL("")
    conn.execute(
        sql.SQL("REFRESH MATERIALIZED VIEW {}{}").format(mode, sql.Identifier("public", COMPARISON_VIEW))
    )
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", COMPARISON_VIEW))).fetchone()
    assert row is not None
    return int(row[0])


# --- partitions ---

@dataclass(frozen=True, slots=True)
class Partition:
    """A partition and its range [lower, upper); None for MINVALUE / MAXVALUE or DEFAULT."""

    name: str
    lower: date | datetime | None
    upper: date | datetime | None


def ensure_yearly_partitions(conn: psycopg.Connection, parent: YearlyTable, years: Sequence[int]) -> list[str]:
    """Create the partitions of `parent` for `years` that are missing; their names."""
    rows = conn.execute(
        "SELECT format('%%s_y%%s', %s::text, y) FROM unnest(%s::int[]) AS y "
        "WHERE app.ensure_yearly_partition(%s::text, y)",
        (parent, list(years), parent),
    ).fetchall()
    return [r[0] for r in rows]


def ensure_monthly_partitions(conn: psycopg.Connection, months: Sequence[date]) -> list[str]:
    """Create the learning_events partitions of `months` (any day in each) that are missing."""
    rows = conn.execute(
        "SELECT format('learning_events_m%%s', to_char(m, 'YYYY_MM')) FROM unnest(%s::date[]) AS m "
        "WHERE app.ensure_monthly_partition(m)",
        (list(months),),
    ).fetchall()
    return [r[0] for r in rows]


def partitions(conn: psycopg.Connection, parent: PartitionedTable) -> list[Partition]:
    """The partitions of `parent` with their bounds read from the catalog, oldest first.

    Bounds come from pg_get_expr(relpartbound) rather than from the names, so a partition made
    by hand under another name is still judged by what it can actually hold.
    """
    key_type = sql.SQL(_KEY_TYPES[parent])
    query = sql.SQL("""
        SELECT c.relname,
               (regexp_match(b.bound, 'FROM \\(''([^'']+)''\\)'))[1]::{key_type},
               (regexp_match(b.bound, 'TO \\(''([^'']+)''\\)'))[1]::{key_type}
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
        WHERE i.inhparent = {parent}::regclass
        ORDER BY 3 NULLS LAST, 1
    """).format(key_type=key_type, parent=sql.Literal(f"public.{parent}"))
    return [Partition(r[0], r[1], r[2]) for r in conn.execute(query).fetchall()]


def drop_partition(conn: psycopg.Connection, parent: PartitionedTable, name: str) -> None:
    """Detach a partition from its parent, then drop it.

    Both need an ACCESS EXCLUSIVE lock; lock_timeout makes the job fail (and retry on its next
    run) rather than queue behind a long reader while every new reader queues behind it.
    """
    conn.execute("SELECT set_config('lock_timeout', '10s', true)")
    conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
        sql.Identifier("public", parent), sql.Identifier("public", name)))
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("public", name)))


# --- stale analytics ---

_STALE_USERS = """
SELECT u.id
FROM users u
LEFT JOIN LATERAL (
    SELECT max(a.updated_at) AS computed_at
    FROM analytics a
    WHERE a.user_id = u.id AND a.source = 'computed'
) last ON true
WHERE (%(after)s::uuid IS NULL OR u.id > %(after)s)
  AND (last.computed_at IS NULL OR last.computed_at < %(stale_before)s)
  AND EXISTS (
      SELECT 1 FROM learning_events e
      WHERE e.user_id = u.id AND e.received_at > coalesce(last.computed_at, '-infinity')
  )
ORDER BY u.id
LIMIT %(limit)s
"""


def stale_users(
    conn: psycopg.Connection, stale_before: datetime, *, after: UUID | None = None, limit: int = 1000
) -> list[UUID]:
    """Users whose computed analytics are older than `stale_before` (or missing) and who have
    learning events received after their last computation; in id order, after `after`.

    A user's last computation is the newest of their `computed` snapshots (all of a user's
    types are recomputed together). Keyset pagination on users.id keeps each chunk cheap.
    """
    rows = conn.execute(
        _STALE_USERS,
        {"after": after, "stale_before": stale_before, "limit": limit},
    ).fetchall()
    return [r[0] for r in rows]
