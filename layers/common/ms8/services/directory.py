"""Directory rules: applying the platform's changes (HTTP or bus, same rules) and what an org admin
may do to their organization.

Platform changes are versioned: the newest version of an organization or user wins, a replay
(the same version) changes nothing, an older one is ignored, and a deleted user's tombstone keeps
older upserts from bringing them back. `apply_events` applies a batch with one statement per
kind (deletions, which erase report files too, one by one); the bus function and the HTTP routes
apply one change at a time through `apply_one`, which turns a refusal into the client error.

Org admin actions run as the admin's request: RLS confines every statement to the admin's
organization, and users it hides answer 404 exactly like unknown ids.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Literal, TypeVar
from uuid import UUID

import psycopg
from pydantic import ValidationError

from ms8.db import UserCaller
from ms8.errors import AppError, BadRequest, Conflict, NotFound, Unprocessable
from ms8.repositories import directory as repo
from ms8.schemas.directory import (
    Applied,
    Assignment,
    DirectoryEvent,
    OrganizationUpserted,
    Outcome,
    RolesChanged,
    SkillTarget,
    Unassignment,
    UserDeleted,
    UserPage,
    UserUpserted,
)
from ms8.services import xapi
from ms8.services.erasure import erase_user

Kind = Literal["organization", "user"]
EVENT_MODELS: dict[str, type[OrganizationUpserted] | type[UserUpserted] | type[UserDeleted]] = {
    "organization.upserted": OrganizationUpserted,
    "user.upserted": UserUpserted,
    "user.deleted": UserDeleted,
}

# Why a change was not applied: the error `apply_one` raises for it.
REFUSALS: dict[str, tuple[type[AppError], str]] = {
    "ORGANIZATION_CHANGE": (Conflict, "the user belongs to another organization; a user who moves is "
                                      "deleted and created again by the platform"),
    "EMAIL_TAKEN": (Conflict, "another user holds this email"),
    "UNKNOWN_ORGANIZATION": (Unprocessable, "the organization is not provisioned here; upsert it first"),
    "NOT_APPLIED": (Conflict, "the user was changed concurrently or is not this client's; try again"),
}


def parse_event(detail_type: str, detail: Any) -> DirectoryEvent:
    """The directory change an EventBridge event carries; ValueError when it is not one."""
    model = EVENT_MODELS.get(detail_type)
    if model is None:
        raise ValueError(f"not a directory event: detail-type {detail_type!r}")
    try:
        return model.model_validate(detail)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid {detail_type} detail: {problems}") from None


E = TypeVar("E", OrganizationUpserted, UserUpserted, UserDeleted)


def _newest(indexed: list[tuple[int, E]]) -> dict[UUID, tuple[int, E]]:
    """Per id, the event with the highest version and its index (the first of equals)."""
    best: dict[UUID, tuple[int, E]] = {}
    for i, event in indexed:
        seen = best.get(event.id)
        if seen is None or event.version > seen[1].version:
            best[event.id] = (i, event)
    return best


def _written(kind: Kind, w: repo.Written) -> Applied | None:
    """The outcome of a row the statement wrote, or found at the same or a newer version."""
    outcome: Outcome
    if w.written:
        outcome = "created" if w.inserted else "updated"
    elif w.current_version is not None and w.current_version >= w.version:
        outcome = "unchanged" if w.current_version == w.version else "stale"
    else:
        return None
    return Applied(kind=kind, id=w.id, outcome=outcome, version=w.version)


def _user_outcome(event: UserUpserted, w: repo.Written) -> Applied:
    done = _written("user", w)
    if done is not None:
        return done
    if w.tombstone_version is not None and w.tombstone_version >= w.version:
        return Applied(kind="user", id=w.id, outcome="stale", version=w.version, reason="DELETED")
    if w.current_org is not None and w.current_org != event.organization_id:
        reason = "ORGANIZATION_CHANGE"
    elif not w.org_known:
        reason = "UNKNOWN_ORGANIZATION"
    elif w.email_taken:
        reason = "EMAIL_TAKEN"
    else:
        reason = "NOT_APPLIED"
    outcome: Outcome = "rejected" if reason == "UNKNOWN_ORGANIZATION" else "conflict"
    return Applied(kind="user", id=w.id, outcome=outcome, version=w.version, reason=reason)


def _upsert_users(conn: psycopg.Connection, rows: list[UserUpserted], isolate: bool) -> list[repo.Written]:
    """The set-based upsert. An email another user holds fails the statement: with `isolate` it
    runs in a savepoint and then each row goes alone, so only the offending ones are refused
    (EMAIL_TAKEN); without, the refusal ends the transaction (409 EMAIL_TAKEN)."""
    if not rows:
        return []
    if not isolate:
        try:
            return repo.upsert_users(conn, rows)
        except psycopg.errors.UniqueViolation:
            raise Conflict(REFUSALS["EMAIL_TAKEN"][1], code="EMAIL_TAKEN") from None
    try:
        with conn.transaction():
            return repo.upsert_users(conn, rows)
    except psycopg.errors.UniqueViolation:
        if len(rows) == 1:
            row = rows[0]
            return [repo.Written(row.id, row.version, written=False, inserted=False, current_version=None,
                                 email_taken=True)]
    return [w for row in rows for w in _upsert_users(conn, [row], isolate)]


def _delete(conn: psycopg.Connection, event: UserDeleted) -> Applied:
    """Erase the user (rows and report files) unless a newer version is stored; raise the tombstone."""
    state = repo.user_version(conn, event.id)
    if state is not None:
        version, organization_id = state
        if version >= event.version:
            return Applied(kind="user", id=event.id, outcome="stale", version=event.version)
        files = erase_user(conn, event.id, keep_last_admin=False)
        repo.raise_tombstone(conn, event.id, organization_id, event.version)
        return Applied(kind="user", id=event.id, outcome="deleted", version=event.version,
                       report_files_deleted=files)
    before = repo.raise_tombstone(conn, event.id, event.organization_id, event.version)
    outcome: Outcome
    if before is None or before < event.version:
        outcome = "deleted"  # not here (yet): the tombstone keeps an older upsert from creating it
    else:
        outcome = "unchanged" if before == event.version else "stale"
    return Applied(kind="user", id=event.id, outcome=outcome, version=event.version,
                   report_files_deleted=0 if outcome == "deleted" else None)


def apply_events(
    conn: psycopg.Connection, events: Sequence[DirectoryEvent], *, isolate: bool = True
) -> list[Applied]:
    """Apply a batch of directory changes in the caller's transaction; one result per event.

    Organizations first (users need them), then deletions, then user upserts. Per id only the
    newest event of each kind is applied; the others answer `unchanged` (same version) or
    `stale`. A deletion and a newer upsert of the same user in one batch end as they would one
    after the other: the user erased, then created afresh. Every user of the batch is locked
    first (see repo.lock_directory_users). `isolate=False` saves the savepoint of the user upsert
    when an email conflict may as well end the transaction (`apply_one`).
    """
    results: dict[int, Applied] = {}
    orgs = _newest([(i, e) for i, e in enumerate(events) if isinstance(e, OrganizationUpserted)])
    deletions = _newest([(i, e) for i, e in enumerate(events) if isinstance(e, UserDeleted)])
    upserts = _newest([(i, e) for i, e in enumerate(events) if isinstance(e, UserUpserted)])

    for w in repo.upsert_organizations(conn, [e for _, e in orgs.values()]):
        applied = _written("organization", w)
        assert applied is not None  # nothing else keeps an organization from applying
        results[orgs[w.id][0]] = applied
    repo.lock_directory_users(conn, sorted({*deletions, *upserts}))
    for i, deletion in deletions.values():
        results[i] = _delete(conn, deletion)
    written = []
    for w in _upsert_users(conn, [e for _, e in upserts.values()], isolate):
        i, upsert = upserts[w.id]
        results[i] = _user_outcome(upsert, w)
        if w.written:
            written.append((upsert.id, str(upsert.email)))
    xapi.map_pending(conn, written)  # xAPI statements that were waiting for these users

    answered: list[Applied] = []
    for i, event in enumerate(events):
        if i not in results:  # an older or repeated event of an id the batch applied
            newest = (orgs if isinstance(event, OrganizationUpserted)
                      else deletions if isinstance(event, UserDeleted) else upserts)[event.id][1]
            results[i] = Applied(
                kind="organization" if isinstance(event, OrganizationUpserted) else "user", id=event.id,
                outcome="unchanged" if event.version == newest.version else "stale", version=event.version,
            )
        answered.append(results[i])
    return answered


def apply_one(conn: psycopg.Connection, event: DirectoryEvent) -> Applied:
    """Apply one change; a conflict or rejection raises its client error (409 / 422)."""
    applied = apply_events(conn, [event], isolate=False)[0]
    if applied.outcome in ("conflict", "rejected"):
        cls, message = REFUSALS[applied.reason or "NOT_APPLIED"]
        raise cls(message, code=applied.reason)
    return applied


# --- Org admins ---

_CURSOR_TAG = b"u1"


def encode_cursor(user_id: UUID) -> str:
    return base64.urlsafe_b64encode(_CURSOR_TAG + user_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> UUID | None:
    """The position an opaque cursor stands for; 400 INVALID_CURSOR when it is not ours."""
    if not cursor:
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != len(_CURSOR_TAG) + 16 or not raw.startswith(_CURSOR_TAG):
        raise BadRequest("the cursor is not one this API handed out", code="INVALID_CURSOR")
    return UUID(bytes=raw[len(_CURSOR_TAG):])


def _org(caller: UserCaller) -> UUID:
    return caller.organization_id


def list_users(conn: psycopg.Connection, caller: UserCaller, cursor: str | None, limit: int) -> UserPage:
    """One page of the organization's users in id order (keyset: stable under inserts)."""
    rows = repo.list_users(conn, _org(caller), decode_cursor(cursor), limit + 1)
    more = len(rows) > limit
    items = rows[:limit]
    return UserPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


def change_roles(conn: psycopg.Connection, caller: UserCaller, user_id: UUID, roles: Sequence[str]) -> RolesChanged:
    """Set a user's roles. The organization's last org admin keeps that role (409 LAST_ORG_ADMIN);
    a user who no longer holds `trainer` (`learner`) loses their assignments as one."""
    current, admins = repo.lock_for_roles(conn, _org(caller), user_id)
    if current is None:
        raise NotFound("no such user")
    if "org_admin" in current and "org_admin" not in roles and admins <= {user_id}:
        raise Conflict("the organization's last org admin keeps that role", code="LAST_ORG_ADMIN")
    updated = repo.set_roles(conn, user_id, roles)
    if updated is None:
        raise NotFound("no such user")
    removed = repo.remove_assignments(conn, user_id, "trainer" not in roles, "learner" not in roles)
    return RolesChanged(**dict(updated), assignments_removed=removed)


def _pair(conn: psycopg.Connection, trainer_id: UUID, learner_id: UUID) -> dict[UUID, list[str]]:
    found = repo.lock_users(conn, [trainer_id, learner_id])
    if trainer_id not in found or learner_id not in found:
        raise NotFound("no such user")
    return found


def assign_learner(conn: psycopg.Connection, caller: UserCaller, trainer_id: UUID, learner_id: UUID) -> Assignment:
    """Assign a learner to a trainer of the organization (idempotent)."""
    found = _pair(conn, trainer_id, learner_id)
    if trainer_id == learner_id:
        raise Unprocessable("a user cannot be assigned to themselves", code="SELF_ASSIGNMENT")
    if "trainer" not in found[trainer_id]:
        raise Unprocessable("the trainer does not hold the trainer role", code="NOT_A_TRAINER")
    if "learner" not in found[learner_id]:
        raise Unprocessable("the learner does not hold the learner role", code="NOT_A_LEARNER")
    created, since = repo.assign(conn, _org(caller), trainer_id, learner_id)
    return Assignment(trainer_id=trainer_id, learner_id=learner_id, created=created, created_at=since)


def unassign_learner(conn: psycopg.Connection, caller: UserCaller, trainer_id: UUID, learner_id: UUID) -> Unassignment:
    """End an assignment (idempotent: `removed` is false when there was none)."""
    _pair(conn, trainer_id, learner_id)
    return Unassignment(trainer_id=trainer_id, learner_id=learner_id,
                        removed=repo.unassign(conn, trainer_id, learner_id))


def set_skill_target(conn: psycopg.Connection, caller: UserCaller, skill: str, level: float) -> SkillTarget:
    """The organization's target level for a skill (what skill_gap measures against). Every
    learner's skill_gap snapshot is recomputed in the same transaction, so what is read next
    measures against the new target."""
    target = repo.upsert_skill_target(conn, _org(caller), skill, level)
    repo.refresh_skill_gaps(conn)
    return target
