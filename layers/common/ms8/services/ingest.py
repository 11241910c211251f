"""Ingesting learning events: store a batch (atomic, idempotent by event id), then bring the
analytics and gamification of the users who got new events up to date, in the same transaction.

Who may send what:
- a user (active role learner) sends their own events: `userId` omitted or their own;
- a platform service with the ingest scope sends events of any user of its organization
  (`userId` required); a user of another organization, or none at all, is refused with the same
  404, so the answer never tells whether that user exists elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from pydantic import ValidationError

from ms8.db import Caller, ServiceCaller, organization_of
from ms8.domain.gamification import cap_basis
from ms8.errors import Forbidden, NotFound, Unprocessable
from ms8.repositories import events as repo
from ms8.schemas.events import BusDetail, EventBatch, IngestResult
from ms8.services import analytics_refresh, gamification

# Events are accepted from 13 months back (retention; the partitions exist) to 1 day ahead
# (clock skew). The partition job keeps the monthly partitions of that range in place.
MAX_AGE = timedelta(days=396)
MAX_AHEAD = timedelta(days=1)


def resolve(caller: Caller, batch: EventBatch, now: datetime) -> list[repo.NewEvent]:
    """Check every event and give it its owner; raises before anything is written."""
    oldest, newest = now - MAX_AGE, now + MAX_AHEAD
    own = None if isinstance(caller, ServiceCaller) else caller.user_id
    rows = []
    for i, e in enumerate(batch.events):
        if own is None:
            if e.user_id is None:
                raise Unprocessable(f"events[{i}].userId is required for a platform service")
            user_id = e.user_id
        elif e.user_id is None or e.user_id == own:
            user_id = own
        else:
            raise Forbidden("users send only their own events", code="OWN_EVENTS_ONLY")
        # In UTC from here on: the parsed offsets (pydantic's TzInfo) are slow to read, and every
        # comparison, timestamp and dump of the instant reads one.
        occurred_at = e.occurred_at.astimezone(UTC)
        if not oldest <= occurred_at <= newest:
            raise Unprocessable(
                f"events[{i}].occurredAt must lie between 13 months ago and 1 day ahead", code="OUT_OF_RANGE"
            )
        result = e.result
        score = success = duration = None
        if result is not None:
            score, success, duration = result.score, result.success, result.duration_seconds
        rows.append(repo.NewEvent(
            e.event_id, user_id, e.verb, e.object_id, e.object_type, e.skills, score, success, duration, occurred_at,
        ))
    return rows


def ingest(conn: psycopg.Connection, caller: Caller, batch: EventBatch, now: datetime) -> IngestResult:
    """Store the batch and update the touched users, all inside the caller's transaction."""
    inserted, users_updated, written, points = _store_and_update(conn, caller, batch, now)
    return IngestResult(
        received=len(batch.events), inserted=inserted, duplicates=len(batch.events) - inserted,
        users_updated=users_updated, analytics_written=written, points_awarded=points, computed_at=now,
    )


def _store_and_update(
    conn: psycopg.Connection, caller: Caller, batch: EventBatch, now: datetime
) -> tuple[int, int, int, int]:
    """Events inserted, users updated, snapshots written, points awarded."""
    return store_rows(conn, organization_of(caller), resolve(caller, batch, now), now,
                      sent_by_service=isinstance(caller, ServiceCaller))


def store_rows(
    conn: psycopg.Connection, organization_id: UUID, rows: Sequence[repo.NewEvent], now: datetime,
    also_touched: Iterable[UUID] = (), *, sent_by_service: bool,
) -> tuple[int, int, int, int]:
    """Store resolved events and bring their users (and `also_touched`, e.g. users whose events
    were removed) up to date: events inserted, users updated, snapshots written, points awarded.
    `sent_by_service` picks the points cap's clock (ms8.domain.gamification.cap_basis)."""
    try:
        inserted = repo.insert_batch(conn, organization_id, rows)
    except psycopg.errors.ForeignKeyViolation as exc:
        raise NotFound("one or more users are not users of this organization") from exc
    touched = sorted({e.user_id for e in inserted} | set(also_touched))
    if not touched:
        return 0, 0, 0, 0
    repo.lock_users(conn, touched)  # concurrent batches of one user: one after the other
    computed = analytics_refresh.compute(conn, touched, now)
    written = analytics_refresh.write(conn, computed, now)
    points = gamification.award_and_refresh(
        conn, computed, inserted, now, basis=cap_basis(sent_by_service)
    )
    return len(inserted), len(computed), written, points


class InvalidBusEvent(ValueError):
    """A platform bus event whose detail is not a valid batch of learning events."""


def parse_bus_detail(detail: Mapping[str, Any] | None) -> BusDetail:
    """The detail of a platform bus event: {"organizationId": ..., "events": [...]}."""
    try:
        return BusDetail.model_validate(detail)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'detail'}: {err['msg']}" for err in exc.errors()[:10]
        )
        raise InvalidBusEvent(f"invalid learning-events detail: {problems}") from None
