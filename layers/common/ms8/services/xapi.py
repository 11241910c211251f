"""The xAPI statements resource: store a batch (all or none), void, read back, map into analytics.

A batch is validated whole before anything is written. Then, in the request's transaction:
ids are assigned (a statement sent without an id that has the content hash of one stored before
gets that one's id and is not stored again: Moodle re-sends batches without ids), ids already
stored are compared (same content: nothing changes; other content: 409), voiding statements void
their targets and delete the targets' learning events, and the statements are stored: in the same
INSERT statement, those that map to a learning event of a known user become learning events, are
added to the learners' days and their learners noted for the refresh job, as an ingest batch is
(snapshots and points follow with that job). A statement whose actor is not a user yet keeps its
mapped event and the actor's keys, and is counted when the user appears (map_pending).
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg

from ms8.db import users_of_the_organization
from ms8.errors import BadRequest, Conflict, NotFound
from ms8.repositories import xapi as repo
from ms8.services import ingest
from ms8.xapi import mapping, multipart, statements, validate
from ms8.xapi.validate import Invalid


@dataclass(frozen=True, slots=True)
class XapiCaller:
    """An xAPI request's verified credential."""

    key: str
    organization_id: UUID
    home_page: str | None

    @property
    def authority(self) -> dict[str, Any]:
        """The Agent every statement it sends is stored with as `authority`."""
        return {"objectType": "Agent", "name": "ms8 xAPI credential",
                "account": {"homePage": "urn:ms8:xapi", "name": self.key}}


def validate_batch(body: Any, parts: dict[str, multipart.Part] | None = None) -> list[dict[str, Any]]:
    """The statements of a POST body (one statement or an array), each checked, and the attachment
    parts that came with them (none in an application/json request); 400 otherwise."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise BadRequest("no statements in the request", code="NO_STATEMENTS")
    try:
        for i, st in enumerate(items):
            validate.statement(st, f"statements[{i}]" if isinstance(body, list) else "")
        multipart.check(items, parts or {})
    except Invalid as exc:
        raise BadRequest(str(exc), code="INVALID_STATEMENT") from None
    return items


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def store(
    conn: psycopg.Connection, caller: XapiCaller, items: list[dict[str, Any]], now: datetime,
    parts: dict[str, multipart.Part] | None = None,
) -> list[str]:
    """Store validated statements (and their attachment parts); returns their ids in order."""
    stored_at = statements.to_millis(now)
    stored_text = statements.format_instant(stored_at)
    # 1. ids: as sent; for a statement sent without id but with a timestamp, the id of the same
    # content stored before (or earlier in the batch); else a new one. Two statements without id
    # nor timestamp may well be two events: never merged.
    has_id = ["id" in st for st in items]
    hashes = [statements.content_hash(st) if not has_id[i] and "timestamp" in st else None
              for i, st in enumerate(items)]
    # Ids are handled as their canonical text (lower case; a valid id is always hyphenated): a
    # batch's thousand ids are never turned into UUID objects and back.
    known = repo.by_content_hash(conn, [h for h in hashes if h is not None])
    by_hash: dict[bytes, str] = {}
    ids = [st["id"].lower() if has_id[i] else
           (known.get(h) or by_hash.setdefault(h, str(uuidlib.uuid4()))) if (h := hashes[i]) is not None else
           str(uuidlib.uuid4())
           for i, st in enumerate(items)]
    # 2. an id repeated in the batch is refused (unless merged above).
    seen: set[str] = set()
    fresh: list[int] = []
    for i, sid in enumerate(ids):
        if sid in seen:
            if has_id[i]:
                raise BadRequest(f"statement id {sid} appears twice in the batch", code="DUPLICATE_ID")
            continue
        seen.add(sid)
        if hashes[i] is None or hashes[i] not in known:
            fresh.append(i)
    # 3. store (one statement, with the learning events and the learners' days of those that count
    # now; an id stored before is skipped, and so is its event), then look at those skipped: the
    # same statement sent again changes nothing, other content under its id is a conflict (409,
    # and the transaction rolls back). Checking after the insert spares a look-up per batch.
    # A statement voided in its own batch never counts.
    voiders = [i for i in fresh if statements.is_voiding(items[i])]
    voided_now = {items[i]["object"]["id"].lower() for i in voiders}
    rows = _rows(conn, caller, [(ids[i], items[i], hashes[i]) for i in fresh], stored_text, now, voided_now)
    with users_of_the_organization():
        inserted = repo.insert(conn, caller.organization_id, caller.key, stored_at, rows)
    skipped = [i for i in fresh if ids[i] not in inserted]
    if skipped:
        before = repo.existing(conn, [UUID(ids[i]) for i in skipped], with_statement=True)
        for i in skipped:
            old = before.get(UUID(ids[i]))
            if old is not None and (old.statement is None or not statements.same(items[i], old.statement)):
                raise Conflict(f"statement {ids[i]} is stored with other content", code="STATEMENT_CONFLICT")
    # 4. voiding: the targets of the voiding statements stored now, and of those stored before and
    # sent again (a platform retrying a batch) whose target is stored now: its event was left out
    # above. A voiding statement sent again alone changes nothing. Never a voiding statement.
    voiding = [i for i in voiders if ids[i] in inserted or items[i]["object"]["id"].lower() in inserted]
    targets = [UUID(items[i]["object"]["id"]) for i in voiding]
    if targets:
        target_rows = repo.existing(conn, targets)
        batch_voiding = {UUID(ids[i]) for i in voiding}
        for t in targets:
            if (t in target_rows and target_rows[t].is_voiding) or t in batch_voiding:
                raise BadRequest(f"statement {t} is a voiding statement and cannot be voided", code="VOIDING_VOIDED")
    removed = repo.void(conn, targets)
    repo.store_attachments(conn, [(sha2, p.content_type, p.content) for sha2, p in (parts or {}).items()])
    # 5. the learning events voided now leave their learners' days: the refresh job builds them again.
    ingest.note_removed(conn, caller.organization_id, [(e.user_id, e.occurred_at) for e in removed])
    return ids


def _rows(
    conn: psycopg.Connection, caller: XapiCaller, todo: Sequence[tuple[str, dict[str, Any], bytes | None]],
    stored_text: str, now: datetime, voided_now: set[str],
) -> list[repo.NewStatement]:
    """The rows to store, with the learning event of those whose actor is a user (unless a
    statement of the batch voids them). A statement that maps to an event of an actor who is not a
    user yet keeps the event (JSON) and the actor's keys."""
    oldest, newest = now - ingest.MAX_AGE, now + ingest.MAX_AHEAD
    prepared = []
    wanted: set[str] = set()
    authority = caller.authority
    authority_keys = statements.agent_keys(authority)  # every statement's: worked out once
    for sid, st, content in todo:
        done = statements.complete(st, sid, stored_text, authority)
        mapped = mapping.map_statement(done)
        at = statements.parse_instant(done["timestamp"])
        if mapped is not None and not oldest <= at <= newest:
            mapped = None  # outside what analytics keeps: stored, never counted
        keys = mapping.actor_keys(done["actor"], caller.home_page) if mapped else ()
        wanted.update(keys)
        prepared.append((sid, done, content, mapped, at, keys))
    # The actors' users are looked up while the stored text of each statement is written: the
    # query leaves first (pipeline mode); leaving the pipeline waits for its answer once.
    if wanted:
        with conn.pipeline():
            lookup = _send_lookup(conn, wanted)
            texts = [(orjson.dumps(done), statements.tokens(done, authority_keys)) for _, done, *_ in prepared]
        users = _users(lookup, wanted)
    else:
        texts = [(orjson.dumps(done), statements.tokens(done, authority_keys)) for _, done, *_ in prepared]
        users = {}
    rows = []
    for (sid, done, content, mapped, at, keys), (text, tokens) in zip(prepared, texts, strict=True):
        user = None
        for k in keys:
            if k in users:
                user = users[k]
                break
        obj = done["object"]
        ref = obj["id"].lower() if obj.get("objectType") == "StatementRef" else None
        voids = ref if ref is not None and statements.is_voiding(done) else None
        pending = None
        event = mapped if user is not None and sid not in voided_now else None
        if mapped is not None and user is None:
            pending = _dumps(mapping.event_json(mapped, at))
        rows.append(repo.NewStatement(sid, text, tokens, content, voids, ref, keys, pending, user,
                                      at if mapped else None, event))
    return rows


def map_pending(conn: psycopg.Connection, users: Sequence[tuple[UUID, str]]) -> int:
    """(user id, e-mail) of users the directory just wrote: statements stored while their actor
    was not a user yet become these users' learning events, and the users are noted for the
    refresh job (ms8.jobs.pending), which builds their days again and brings them up to date."""
    return repo.claim_pending(conn, [(u, mapping.user_keys(str(u), email)) for u, email in users])


def _send_lookup(conn: psycopg.Connection, keys: set[str]) -> psycopg.Cursor[Any] | None:
    """Send the query for the users these actor keys may be (None: no key)."""
    if not keys:
        return None
    ids, emails = [], []
    for key in keys:
        kind, _, value = key.partition(":")
        if kind == "id":
            try:
                ids.append(UUID(value))
            except ValueError:
                continue
        elif kind == "email":
            emails.append(value)
    return repo.send_users_by_keys(conn, ids, emails, everyone=any(k.startswith("sha1:") for k in keys))


def _users(lookup: psycopg.Cursor[Any] | None, keys: set[str]) -> dict[str, str]:
    """The answer of _send_lookup: actor key -> user of the organization (see mapping.actor_keys),
    the user's id as text."""
    found: dict[str, str] = {}
    if lookup is None:
        return found
    for user_id, email in lookup.fetchall():
        text = str(user_id)
        for key in mapping.user_keys(text, email):
            if key in keys:
                found[key] = text
    return found


# --- reading ---------------------------------------------------------------------------------

SINGLE_PARAMS = frozenset({"statementId", "voidedStatementId"})
QUERY_PARAMS = frozenset({"agent", "verb", "activity", "registration", "related_activities", "related_agents",
                          "since", "until", "limit", "format", "attachments", "ascending", "more"})
FORMATS = ("exact", "ids", "canonical")
MAX_LIMIT = 500


def _flag(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false", code="INVALID_PARAMETER")
    return value == "true"


def _format(params: dict[str, str]) -> str:
    fmt = params.get("format", "exact")
    if fmt not in FORMATS:
        raise BadRequest("format must be exact, ids or canonical", code="INVALID_PARAMETER")
    return fmt


def get_one(conn: psycopg.Connection, params: dict[str, str], languages: list[str]) -> tuple[dict[str, Any], datetime]:
    """GET by statementId or voidedStatementId."""
    extra = set(params) - {"statementId", "voidedStatementId", "format", "attachments"}
    if extra or len(set(params) & SINGLE_PARAMS) != 1:
        raise BadRequest("statementId or voidedStatementId is used alone (with format, attachments)",
                         code="INVALID_PARAMETER")
    fmt = _format(params)
    _flag(params, "attachments")
    voided = "voidedStatementId" in params
    raw = params["voidedStatementId" if voided else "statementId"]
    try:
        sid = UUID(validate.uuid(raw, "statementId"))
    except Invalid as exc:
        raise BadRequest(str(exc), code="INVALID_PARAMETER") from None
    found = repo.one(conn, sid, voided)
    if found is None:
        raise NotFound(f"no {'voided ' if voided else ''}statement {sid}", code="STATEMENT_NOT_FOUND")
    return statements.render(found[0], fmt, languages), found[1]


def parse_query(params: dict[str, str]) -> tuple[repo.Query, str]:
    """The filters of a statement query (400 on anything invalid) and the format."""
    unknown = set(params) - QUERY_PARAMS
    if unknown:
        raise BadRequest(f"unknown parameter(s): {', '.join(sorted(unknown))}", code="INVALID_PARAMETER")
    try:
        tokens: list[str] = []
        if "agent" in params:
            try:
                agent = json.loads(params["agent"])
            except ValueError:
                raise Invalid("agent", "must be JSON") from None
            validate.actor(agent, "agent")
            key = statements.agent_key(agent)
            if key is None:
                raise Invalid("agent", "needs an identifier")
            tokens.append(("A:" if _flag(params, "related_agents") else "a:") + key)
        else:
            _flag(params, "related_agents")
        if "verb" in params:
            tokens.append("v:" + validate.iri(params["verb"], "verb"))
        if "activity" in params:
            tokens.append(("O:" if _flag(params, "related_activities") else "o:")
                          + validate.iri(params["activity"], "activity"))
        else:
            _flag(params, "related_activities")
        if "registration" in params:
            tokens.append("r:" + validate.uuid(params["registration"], "registration").lower())
        since = statements.parse_instant(validate.timestamp(params["since"], "since")) if "since" in params else None
        until = statements.parse_instant(validate.timestamp(params["until"], "until")) if "until" in params else None
    except Invalid as exc:
        raise BadRequest(str(exc), code="INVALID_PARAMETER") from None
    raw_limit = params.get("limit", "0")
    if not raw_limit.isdigit():
        raise BadRequest("limit must be a non-negative integer", code="INVALID_PARAMETER")
    limit = int(raw_limit) or MAX_LIMIT
    _flag(params, "attachments")
    query = repo.Query(tuple(tokens), since, until, _flag(params, "ascending"), None, min(limit, MAX_LIMIT))
    return query, _format(params)


def query(
    conn: psycopg.Connection, q: repo.Query, fmt: str, languages: list[str]
) -> tuple[list[dict[str, Any]], int | None]:
    """The page of statements and, when there are more, the position the next page starts after."""
    rows = repo.search(conn, q)
    more = rows[q.limit - 1][0] if len(rows) > q.limit else None
    return [statements.render(st, fmt, languages) for _, st in rows[:q.limit]], more


def attachment_parts(conn: psycopg.Connection, found: Sequence[dict[str, Any]]) -> list[tuple[str, multipart.Part]]:
    """The stored contents of the attachments of these statements (GET with attachments=true)."""
    _, every = multipart.declared(found)
    return [(sha2, multipart.Part(ctype, content)) for sha2, ctype, content in repo.attachments(conn, sorted(every))]
