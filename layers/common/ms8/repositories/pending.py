"""analytics_pending (migration 0015): learners a platform's batch left to the refresh job."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import NamedTuple
from uuid import UUID

import psycopg


class Pending(NamedTuple):
    """One learner to bring up to date, as the job read them."""

    user_id: UUID
    since: datetime
    occurred_from: datetime | None
    version: int
    organization_id: UUID
    rebuild_days: list[date]


# In user order (two batches noting the same learners lock their rows in the same order). A
# learner noted again keeps the earliest `since` and `occurred_from`.
_ON_CONFLICT = """
ON CONFLICT (user_id) DO UPDATE SET
    since = least(p.since, EXCLUDED.since),
    occurred_from = least(p.occurred_from, EXCLUDED.occurred_from),
    version = p.version + 1,
    rebuild_days = ARRAY(SELECT DISTINCT d FROM unnest(p.rebuild_days || EXCLUDED.rebuild_days) AS d)
"""
_NOTE = """
INSERT INTO analytics_pending AS p (user_id, organization_id, since, occurred_from, rebuild_days)
SELECT x.user_id, %(org)s, now(), x.occurred_from, coalesce(string_to_array(x.rebuild, ',')::date[], '{}')
FROM unnest(%(users)s::uuid[], %(from)s::timestamptz[], %(rebuild)s::text[]) AS x(user_id, occurred_from, rebuild)
ORDER BY x.user_id
""" + _ON_CONFLICT

# The same as a CTE of ingest's insert statement (ms8.repositories.events), over the events it
# stored: a platform's batch notes its learners without another round trip.
NOTE_STORED = """
noted AS (
    INSERT INTO analytics_pending AS p (user_id, organization_id, since, occurred_from)
    SELECT s.user_id, %(org)s, now(), min(s.occurred_at) FROM stored s GROUP BY s.user_id ORDER BY s.user_id
""" + _ON_CONFLICT + """
),
"""


def note(
    conn: psycopg.Connection, organization_id: UUID, occurred_from: Mapping[UUID, datetime | None],
    rebuild_days: Mapping[UUID, Collection[date]] | None = None,
) -> int:
    """Note learners of the caller's organization with the earliest instant of their new events
    (None: none new); `rebuild_days` gives, per learner, UTC days that lost events (a voided
    statement): the job builds those days again from the events. Returns how many were noted."""
    rebuild = rebuild_days or {}
    users = sorted(set(occurred_from) | set(rebuild))
    if not users:
        return 0
    conn.execute(_NOTE, {
        "org": organization_id, "users": users, "from": [occurred_from.get(u) for u in users],
        "rebuild": [",".join(sorted(d.isoformat() for d in rebuild[u])) if rebuild.get(u) else None for u in users],
    })
    return len(users)


def take(conn: psycopg.Connection, limit: int, after: UUID | None = None) -> list[Pending]:
    """Up to `limit` pending learners in user id order, after `after` (owner, maintenance)."""
    rows = conn.execute(
        "SELECT user_id, since, occurred_from, version, organization_id, rebuild_days FROM analytics_pending "
        "WHERE %(after)s::uuid IS NULL OR user_id > %(after)s ORDER BY user_id LIMIT %(limit)s",
        {"after": after, "limit": limit},
    ).fetchall()
    return [Pending(*r) for r in rows]


def done(conn: psycopg.Connection, pending: Sequence[Pending]) -> int:
    """Delete the rows still at the version read (a learner noted again meanwhile stays)."""
    if not pending:
        return 0
    return conn.execute(
        "DELETE FROM analytics_pending p USING unnest(%s::uuid[], %s::bigint[]) AS x(user_id, version) "
        "WHERE p.user_id = x.user_id AND p.version = x.version",
        ([p.user_id for p in pending], [p.version for p in pending]),
    ).rowcount
