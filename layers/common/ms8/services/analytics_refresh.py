"""Computing analytics snapshots for a set of users from their learner days.

Used through ms8.services.learner_updates by ingest (a learner's own events, in the request's
transaction, after the insert statement updated their days) and by the refresh job (the learners
a platform's batches noted), and by the stale-analytics job (an owner connection in
maintenance). The organization of each user comes from the data (app.activity_owners), never
from the caller, so both contexts work: RLS decides which users and rows are visible, and a
snapshot is written for every visible user, with or without activity in the window (then the
numbers say "no activity").

Each user's snapshots are derived from their day rows (at most ~92 per user) and the raw events
of the few UTC days on which a window starts or ends mid-day (ms8.domain.metrics.from_days):
the cost of a batch grows with the learners it touches, not with their history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import lru_cache
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from ms8.domain import metrics
from ms8.repositories import days, events, skill_targets, users
from ms8.repositories.analytics import SnapshotWrite, upsert_batch_count

ROLE = "learner"  # learning activity is the learner's
_NO_DAYS = metrics.DaySums()


@lru_cache(maxsize=512)
def zone(name: str | None) -> ZoneInfo:
    """The user's time zone; UTC when unset or unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Computed:
    """One user's results: the snapshots' data and the active local days of the streak window."""

    user_id: UUID
    organization_id: UUID
    tz: ZoneInfo
    data: dict[str, dict[str, Any]]
    active_days: set[date]


def compute(conn: psycopg.Connection, user_ids: Sequence[UUID], now: datetime) -> dict[UUID, Computed]:
    """Read the users' days and boundary-day events (two queries) and compute every type."""
    owners = users.owners(conn, sorted(set(user_ids)))
    if not owners:
        return {}
    by_zone: dict[tzinfo, metrics.Edges] = {}
    learners: dict[UUID, tuple[str, metrics.Edges]] = {}
    for user_id, (_, tz_name) in owners.items():
        tz = zone(tz_name)
        found = by_zone.get(tz)
        if found is None:
            found = by_zone[tz] = metrics.edges(now, tz)
        learners[user_id] = (tz.key, found)
    day_sums = days.sums(conn, learners, now)
    boundary = events.on_days(conn, {u: e.days() for u, (_, e) in learners.items()})
    targets = skill_targets.for_organizations(conn, {org for org, _ in owners.values()})
    result = {}
    for user_id, (org, tz_name) in owners.items():
        tz = zone(tz_name)
        data, active = metrics.from_days(
            day_sums.get(user_id, _NO_DAYS), boundary.get(user_id, []), now, tz, targets.get(org, {})
        )
        result[user_id] = Computed(user_id, org, tz, data, active)
    return result


def write(conn: psycopg.Connection, computed: Mapping[UUID, Computed], now: datetime) -> int:
    """Upsert the snapshots (one statement): source computed, the definition version, each
    type's window and the instant the data runs through (the end of every window)."""
    rows = [
        SnapshotWrite(
            c.user_id, c.organization_id, ROLE, analytics_type, data, source="computed",
            definition_version=metrics.DEFINITION_VERSION, window_days=metrics.WINDOW_DAYS[analytics_type],
            data_through=now,
        )
        for c in computed.values()
        for analytics_type, data in c.data.items()
    ]
    return upsert_batch_count(conn, rows)


def recompute_users(conn: psycopg.Connection, user_ids: list[UUID], now: datetime) -> int:
    """Recompute and store the analytics of `user_ids` as of `now`; returns snapshots written."""
    return write(conn, compute(conn, user_ids, now), now)
