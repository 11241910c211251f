"""Job: refresh the peer-comparison materialized view (migration 0003).

Readers (app.peer_comparison) keep reading the previous contents during a CONCURRENTLY refresh.
The view is created WITH NO DATA, and CONCURRENTLY refuses an unpopulated view, so the first run
populates it plainly. The view's query is relative to now() (snapshots of the last 7 days), so
an event's `date` is recorded but cannot make it show another day: a replay is a refresh.
"""

from __future__ import annotations

import psycopg

from ms8.jobs.runner import Job, JobInput, Outcome
from ms8.repositories import maintenance


def refresh(conn: psycopg.Connection, params: JobInput) -> Outcome:
    populated = maintenance.comparison_populated(conn)
    rows = maintenance.refresh_comparison(conn, concurrently=populated)
    return Outcome(rows_written=rows, details={"concurrently": populated, "viewRows": rows})


JOB = Job("refresh_comparison", refresh)
