"""Job: delete report rows past retention (their link audit rows go with them by cascade).

The files are not this job's: the bucket's lifecycle rule expires them REPORT_RETENTION_DAYS
after they were written (S3 acts asynchronously, usually within a day after that), and the API
shows a report as `expired`, without a link, from then on. The rows are kept GRACE_DAYS longer,
so that while a file may still exist its row does too, and erasing the user still finds and
deletes it. Each run deletes at most MAX_ROWS rows, oldest first; a backlog drains over runs.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg

from ms8.jobs.runner import Job, JobInput, Outcome
from ms8.repositories import reports as repo
from ms8.services.reports import retention_days

GRACE_DAYS = 2
MAX_ROWS = 50_000


def expire(conn: psycopg.Connection, params: JobInput) -> Outcome:
    days = retention_days()
    cutoff = params.now - timedelta(days=days + GRACE_DAYS)
    deleted = repo.delete_older_than(conn, cutoff, MAX_ROWS)
    return Outcome(rows_written=deleted, details={
        "retentionDays": days, "graceDays": GRACE_DAYS, "cutoff": cutoff.isoformat(), "deleted": deleted,
        "more": deleted == MAX_ROWS,
    })


JOB = Job("expire_reports", expire)
