"""Bringing learners up to date after new events: their analytics snapshots, the points the new
events earn, and their gamification rows. One function for the two who do it: ingest, for a
learner's own events in the request's transaction, and the refresh job, for the learners a
platform's batches noted (ms8.jobs.pending)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import psycopg

from ms8.domain.gamification import CapBasis
from ms8.repositories import events
from ms8.services import analytics_refresh, gamification


class Updated(NamedTuple):
    """What an update did: users updated, snapshots written, points awarded."""

    users: int
    snapshots: int
    points: int


def update(
    conn: psycopg.Connection, user_ids: Sequence[UUID], new_events: Sequence[gamification.StoredEvent],
    now: datetime, *, basis: CapBasis,
) -> Updated:
    """Recompute the users' snapshots from their learner days, award the points `new_events`
    earn (counted by `basis`) and rewrite their gamification rows, after waiting for any other
    transaction updating one of them (the later one then reads what the earlier committed)."""
    users = sorted(set(user_ids))
    if not users:
        return Updated(0, 0, 0)
    events.lock_users(conn, users)
    computed = analytics_refresh.compute(conn, users, now)
    written = analytics_refresh.write(conn, computed, now)
    points = gamification.award_and_refresh(conn, computed, new_events, now, basis=basis)
    return Updated(len(computed), written, points)
