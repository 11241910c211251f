"""Job: bring the learners a platform's batches noted (analytics_pending, migration 0015) up to
date: their snapshots from their learner days, the points of the platform events they received
since they were noted (counted by the hour the events occurred in, as for every platform's
events; a learner's own events were awarded on arrival and are left out), and their
gamification rows. Scheduled every minute; a run takes the learners in id order, 1000
at a time, at most PENDING_MAX_USERS (default 5000: a few seconds, so the platform batches that
note one of them meanwhile wait only that long); the rest stay noted for the next run.

A learner whose events changed outside ingest's statement (a voided xAPI statement's event
deleted, statements claimed when their actor became a user) gets those UTC days built again
from the events first (rebuild_days; only those days: older days have no events left).

A learner noted again while the run works keeps their row (ms8.repositories.pending.done), so
the events of that batch are taken by the next run; awarding is idempotent per award key, so
taking an event twice awards it once.
"""

from __future__ import annotations

import os
from datetime import date
from uuid import UUID

import psycopg

from ms8.domain.gamification import cap_basis
from ms8.jobs.runner import Job, JobInput, Outcome
from ms8.repositories import days, events, pending
from ms8.services import learner_updates

CHUNK = 1000
DEFAULT_MAX_USERS = 5000


def refresh_pending(conn: psycopg.Connection, params: JobInput) -> Outcome:
    max_users = int(os.environ.get("PENDING_MAX_USERS", DEFAULT_MAX_USERS))
    after: UUID | None = None
    users = snapshots = points = cleared = 0
    more = False
    while users < max_users:
        limit = min(CHUNK, max_users - users)
        todo = pending.take(conn, limit, after)
        if not todo:
            break
        for org, days_of_org in _rebuilds(todo).items():
            days.rebuild_user_days(conn, org, days_of_org)
        updated = learner_updates.update(
            conn, [p.user_id for p in todo],
            events.received_since(conn, [(p.user_id, p.since, p.occurred_from) for p in todo if p.occurred_from]),
            params.now,
            basis=cap_basis(sent_by_service=True),
        )
        cleared += pending.done(conn, todo)
        users += len(todo)
        snapshots += updated.snapshots
        points += updated.points
        after = todo[-1].user_id
        more = len(todo) == limit
        if not more:
            break
    return Outcome(
        rows_written=snapshots,
        details={"users": users, "pointsAwarded": points, "cleared": cleared, "more": more},
    )


def _rebuilds(todo: list[pending.Pending]) -> dict[UUID, dict[UUID, list[date]]]:
    """The learners' days to build again first, by organization."""
    found: dict[UUID, dict[UUID, list[date]]] = {}
    for p in todo:
        if p.rebuild_days:
            found.setdefault(p.organization_id, {})[p.user_id] = p.rebuild_days
    return found


JOB = Job("refresh_pending", refresh_pending)
