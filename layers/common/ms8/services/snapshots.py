"""Writing analytics snapshots on behalf of a caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any
from uuid import UUID

import psycopg

from ms8 import db
from ms8.db import Caller, ServiceCaller, UserCaller, organization_of, users_of_the_organization
from ms8.errors import Forbidden, Unprocessable
from ms8.repositories.analytics import SnapshotWrite, upsert_batch, upsert_batch_as_service, upsert_batch_summary
from ms8.schemas.analytics import AnalyticsBatch, AnalyticsWriteResult


def _owned(user: UserCaller | None, batch: AnalyticsBatch) -> Iterator[tuple[UUID, str, str, dict[str, Any]]]:
    """(user_id, role, analytics_type, data) of every item: the user's own row, or (user None: a
    platform service) the named user's, in the learner role unless the item names another."""
    # The batch checks its items as sent; once omitted ids and roles are filled in, two may
    # still name one row, and one statement cannot upsert a row twice. (Keys by the UUID's
    # integer: UUID's own hash is Python code, called twice per item.)
    seen: set[tuple[int, str, str]] = set()
    for i, item in enumerate(batch.items):
        if user is None:
            if item.user_id is None:
                raise Unprocessable(f"items[{i}].userId is required for a platform service")
            user_id, role = item.user_id, item.role or "learner"
        else:
            if item.user_id not in (None, user.user_id):
                raise Forbidden("users write only their own analytics")
            if item.role not in (None, user.active_role):
                raise Forbidden("analytics are written for the active role only")
            user_id, role = user.user_id, user.active_role
        key = (user_id.int, role, item.analytics_type)
        if key in seen:
            raise Unprocessable(f"items[{i}] repeats an earlier item's user, role and type")
        seen.add(key)
        yield user_id, role, item.analytics_type, item.data


def resolve(caller: Caller, batch: AnalyticsBatch) -> list[SnapshotWrite]:
    """Give every item its owner: the caller's own row, or (services) the named user's."""
    organization_id = organization_of(caller)
    user = None if isinstance(caller, ServiceCaller) else caller
    return [SnapshotWrite(u, organization_id, r, t, d) for u, r, t, d in _owned(user, batch)]


def write_batch(
    conn: psycopg.Connection, caller: Caller, batch: AnalyticsBatch, rows: bool = False
) -> AnalyticsWriteResult:
    """Upsert the whole batch in one statement (RLS checks every row; all or nothing); the
    written rows come back only when `rows` is asked for, otherwise only the counts.

    A user of another organization is refused by the foreign key (no such user here) or by RLS
    (their existing row is not ours to update); both answer the same 404, so the answer does
    not reveal whether that user has analytics elsewhere.
    """
    writes = resolve(caller, batch)
    # A user writes only their own rows, so these errors are a platform's (a user's are left as they are).
    with users_of_the_organization() if isinstance(caller, ServiceCaller) else nullcontext():
        if rows:
            written = upsert_batch(conn, writes)
            inserted = sum(1 for w in written if w.version == 1)
            return AnalyticsWriteResult(written=len(written), inserted=inserted,
                                        updated=len(written) - inserted, items=written)
        inserted, updated = upsert_batch_summary(conn, writes)
        return AnalyticsWriteResult(written=inserted + updated, inserted=inserted, updated=updated)


def write_batch_as_service(client_id: str, scope: str, organization_id: UUID | None,
                           batch: AnalyticsBatch) -> AnalyticsWriteResult:
    """write_batch for a platform service answering the counts, in one statement and one round
    trip (ms8.repositories.analytics.upsert_batch_as_service): the client's context, the upsert
    and the commit. The same checks, the same errors (an unknown client, a scope not granted, a
    missing organization as from any request's context; users of another organization 404)."""
    writes = list(_owned(None, batch))
    inserted, updated = db.write_as_service(
        lambda conn: upsert_batch_as_service(conn, client_id, scope, organization_id, writes))
    return AnalyticsWriteResult(written=inserted + updated, inserted=inserted, updated=updated)
