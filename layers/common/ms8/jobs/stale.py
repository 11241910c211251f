"""Job: recompute analytics snapshots that are stale.

A user is stale when their newest computed snapshot (source 'computed') is older than 6 hours,
or they have none, and learning events were received for them after it. Users are taken in id
order, 1000 at a time, and handed to the analytics computation
(`ms8.services.analytics_refresh.recompute_users`); this job owns only the selection and the
schedule. A run handles at most STALE_MAX_USERS users (default 20000) so it stays well inside
the function's timeout; the rest are still stale on the next run and are taken then.
"""

from __future__ import annotations

import os
from datetime import timedelta
from uuid import UUID

import psycopg

from ms8.jobs.runner import Job, JobInput, Outcome
from ms8.repositories import maintenance
from ms8.services.analytics_refresh import recompute_users

STALE_AFTER = timedelta(hours=6)
CHUNK = 1000
DEFAULT_MAX_USERS = 20_000


def recompute_stale(conn: psycopg.Connection, params: JobInput) -> Outcome:
    max_users = int(os.environ.get("STALE_MAX_USERS", DEFAULT_MAX_USERS))
    stale_before = params.now - STALE_AFTER
    after: UUID | None = None
    users = rows = chunks = 0
    more = False
    while users < max_users:
        limit = min(CHUNK, max_users - users)
        ids = maintenance.stale_users(conn, stale_before, after=after, limit=limit)
        if not ids:
            break
        rows += recompute_users(conn, ids, params.now)
        users += len(ids)
        chunks += 1
        after = ids[-1]
        more = len(ids) == limit
        if not more:
            break
    return Outcome(
        rows_written=rows,
        details={"users": users, "chunks": chunks, "staleBefore": stale_before.isoformat(), "more": more},
    )


JOB = Job("recompute_stale", recompute_stale)
