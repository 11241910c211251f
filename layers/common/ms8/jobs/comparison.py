"""Job: refresh the peer-comparison view, then release its groups (migration 0009).

Readers (app.peer_comparison) keep reading the previous releases during the run. The view is
created WITH NO DATA, and CONCURRENTLY refuses an unpopulated view, so the first run populates it
plainly. The view's query is relative to now() (snapshots of the last 7 days), so an event's
`date` is recorded but cannot make it show another day: a replay is a refresh.

The releases (ms8.services.comparison.release_groups) add noise only where a group's state
changed; values out of range and groups that fail are logged as a warning, counted in the result
and emitted as the OutOfRangeValues and FailedGroups metrics, and never stop the other groups.
"""

from __future__ import annotations

import psycopg

from ms8.jobs.runner import Job, JobInput, Outcome, logger
from ms8.repositories import maintenance
from ms8.services.comparison import release_groups


def refresh(conn: psycopg.Connection, params: JobInput) -> Outcome:
    populated = maintenance.comparison_populated(conn)
    rows = maintenance.refresh_comparison(conn, concurrently=populated)
    run = release_groups(conn, maintenance.transaction_now(conn))
    if run.problems:
        logger.warning("refresh_comparison: groups with problems", extra={"problems": run.problems[:100]})
    return Outcome(
        rows_written=rows + run.released + run.dropped,
        details={"concurrently": populated, "viewRows": rows, "groups": run.groups, "released": run.released,
                 "unchanged": run.unchanged, "budgetExhausted": run.budget_exhausted, "belowK": run.below_k,
                 "dropped": run.dropped, "failedGroups": run.failed, "outOfRange": run.out_of_range},
        reported={"OutOfRangeValues": run.out_of_range, "FailedGroups": run.failed,
                  "BudgetExhausted": run.budget_exhausted},
    )


JOB = Job("refresh_comparison", refresh)
