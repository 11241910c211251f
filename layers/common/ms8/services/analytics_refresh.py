"""Computing analytics snapshots from learning events, for a set of users.

Used by ingest (the users a batch added events for, in the request's transaction) and by the
stale-analytics job (an owner connection in maintenance). The organization of each user comes
from the data (app.activity_owners), never from the caller, so both contexts work: RLS decides
which users and events are visible, and a snapshot is written for every visible user, with or
without events in the window (then the numbers say "no activity").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from ms8.domain import metrics
from ms8.gcpause import gc_paused
from ms8.repositories import computation, events
from ms8.repositories.analytics import SnapshotWrite, upsert_batch_count

ROLE = "learner"  # learning activity is the learner's


@lru_cache(maxsize=512)
def zone(name: str | None) -> ZoneInfo:
    """The user's time zone; UTC when unset or unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Computed:
    """One user's inputs and results."""

    user_id: UUID
    organization_id: UUID
    tz: ZoneInfo
    events: list[metrics.EventRow]
    data: dict[str, dict[str, Any]]


def compute(conn: psycopg.Connection, user_ids: Sequence[UUID], now: datetime) -> dict[UUID, Computed]:
    """Read the users' events of the widest window (one query) and compute every type."""
    owners = computation.owners(conn, sorted(set(user_ids)))
    if not owners:
        return {}
    window = events.window_rows(conn, list(owners), now - metrics.READ_WINDOW, now)
    targets = computation.skill_targets(conn, {org for org, _ in owners.values()})
    result = {}
    for user_id, (org, tz_name) in owners.items():
        tz = zone(tz_name)
        user_events = window.get(user_id, [])
        data = metrics.compute_rows(user_events, now, tz, targets.get(org, {}))
        result[user_id] = Computed(user_id, org, tz, user_events, data)
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
    with gc_paused():  # the users' event windows: many objects, no cycles
        return write(conn, compute(conn, user_ids, now), now)
