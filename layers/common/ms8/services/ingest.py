"""Ingesting learning events: store a batch (atomic, idempotent by event id) with the learners'
days, then bring the analytics and gamification of the users who got new events up to date (a
learner's own events, in the same transaction) or note them for the refresh job (a platform's).

Who may send what:
- a user (active role learner) sends their own events: `userId` omitted or their own;
- a platform service with the ingest scope sends events of any user of its organization
  (`userId` required); a user of another organization, or none at all, is refused with the same
  404, so the answer never tells whether that user exists elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from pydantic import ValidationError

from ms8 import db
from ms8.db import Caller, ServiceCaller, organization_of, users_of_the_organization
from ms8.domain.gamification import cap_basis
from ms8.errors import Forbidden, Unprocessable
from ms8.repositories import events as repo
from ms8.repositories import pending
from ms8.schemas.events import BusDetail, EventBatch, IngestResult
from ms8.services import learner_updates
from ms8.services.learner_updates import Updated

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
    """Store the batch and update (or note) the touched users, all inside the caller's transaction."""
    stored = store_rows(conn, organization_of(caller), resolve(caller, batch, now), now,
                        sent_by_service=isinstance(caller, ServiceCaller))
    return _result(batch, stored, now)


def ingest_as_service(client_id: str, scope: str, organization_id: UUID | None, batch: EventBatch,
                      now: datetime) -> IngestResult:
    """ingest for a platform service in one statement and one round trip, its own transaction
    (ms8.repositories.events.insert_batch_as_service): the client's context, the events with their
    learners' days, the learners noted for the refresh job, and the commit. The same checks and
    the same answers as ingest() in a service's transaction (an unknown client, a scope not granted,
    no organization named as from any request's context; users of another organization 404)."""
    rows = resolve(ServiceCaller(client_id, scope, organization_id), batch, now)
    inserted = db.write_as_service(
        lambda conn: repo.insert_batch_as_service(conn, client_id, scope, organization_id, rows))
    return _result(batch, Stored(len(inserted), NOTHING, len({e.user_id for e in inserted})), now)


def _result(batch: EventBatch, stored: Stored, now: datetime) -> IngestResult:
    return IngestResult(
        received=len(batch.events), inserted=stored.inserted, duplicates=len(batch.events) - stored.inserted,
        users_updated=stored.updated.users, analytics_written=stored.updated.snapshots,
        points_awarded=stored.updated.points, users_queued=stored.queued, computed_at=now,
    )


NOTHING = Updated(0, 0, 0)


class Stored(NamedTuple):
    """What storing a batch did: events inserted, the update of its users, users noted for the job."""

    inserted: int
    updated: Updated
    queued: int


def store_rows(
    conn: psycopg.Connection, organization_id: UUID, rows: Sequence[repo.NewEvent], now: datetime, *,
    sent_by_service: bool,
) -> Stored:
    """Store resolved events (and, in the same statement, add them to the learners' days); then
    bring their users up to date.

    A learner's own events update their snapshots and points at once, in this transaction: they
    are looking at their dashboard. A platform's batch (`sent_by_service`: a service token, the
    bus, xAPI) notes its learners for the refresh job instead (ms8.jobs.pending, every minute),
    so its cost does not grow with how many learners it spreads over: a platform sends whatever
    happened in the last minute across its users, and the days, which the trainer's views and
    the rollups read, are up to date when it commits.
    """
    # A user of another organization: the foreign key refuses their event, or, first, RLS refuses
    # to update their day (or pending) row where they have one.
    with users_of_the_organization():
        inserted = repo.insert_batch(conn, organization_id, rows, note=sent_by_service)
    if sent_by_service:
        return Stored(len(inserted), NOTHING, len({e.user_id for e in inserted}))
    updated = learner_updates.update(conn, sorted({e.user_id for e in inserted}), inserted, now,
                                     basis=cap_basis(sent_by_service=False))
    return Stored(len(inserted), updated, 0)


def note_removed(conn: psycopg.Connection, organization_id: UUID, removed: Sequence[tuple[UUID, datetime]]) -> int:
    """Note for the refresh job the users of events deleted (user, instant; a voided xAPI
    statement's): it builds the UTC days of those events again. Returns how many were noted."""
    lost: dict[UUID, set[date]] = {}
    for user_id, at in removed:
        lost.setdefault(user_id, set()).add(at.astimezone(UTC).date())
    return pending.note(conn, organization_id, {}, lost)


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
