"""Learning events: the batch insert (one statement, idempotent by event id) and the window of
events the analytics computation reads (one statement for all users)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import psycopg

from ms8.domain.metrics import EventRecord, EventRow
from ms8.repositories.days import DAYS_FROM_STORED, VERB_PARAMS


class NewEvent(NamedTuple):
    """One event to store, its owner resolved."""

    event_id: UUID
    user_id: UUID
    verb: str
    object_id: str
    object_type: str
    skills: Sequence[str]
    score: float | None
    success: bool | None
    duration_seconds: int | None
    occurred_at: datetime


class InsertedEvent(NamedTuple):
    """An event stored for the first time, as awarding points reads it (a NewEvent has the same fields)."""

    event_id: UUID
    user_id: UUID
    verb: str
    object_id: str
    occurred_at: datetime


# One statement from typed arrays, sent in binary (%b: no quoting of every element). A row's skills travel as one
# string joined by SKILL_SEPARATOR (skills cannot contain control characters: see the model).
# Rows are inserted in key order, so two batches that share event ids lock them in the same
# order and cannot deadlock. A key already stored (a replay) is skipped, not updated.
# The same statement adds the events it stored, and only those, to the learners' UTC days
# (learner_daily_activity, migration 0008): a replayed batch stores nothing and so adds nothing.
# The answer is one row: how many rows were stored and, only when that is fewer than were sent
# (replays, or an event repeated in the batch), the ids of those stored. A batch of new events,
# the usual case, sends nothing back per row.
SKILL_SEPARATOR = "\x1f"
_INSERT = """
WITH stored AS (
    INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type,
                                 skills, score, success, duration_seconds, occurred_at)
    SELECT x.event_id, x.user_id, %(org)s, x.verb, x.object_id, x.object_type,
           string_to_array(x.skills, E'\\x1f'), x.score, x.success, x.duration_seconds, x.occurred_at
    FROM unnest(%(ids)b::uuid[], %(users)b::uuid[], %(verbs)b::text[], %(objects)b::text[], %(types)b::text[],
                %(skills)b::text[], %(scores)b::real[], %(successes)b::boolean[], %(durations)b::integer[],
                %(occurred)b::timestamptz[])
         AS x(event_id, user_id, verb, object_id, object_type, skills, score, success,
              duration_seconds, occurred_at)
    ORDER BY x.user_id, x.event_id, x.occurred_at
    ON CONFLICT (user_id, event_id, occurred_at) DO NOTHING
    RETURNING event_id, user_id, verb, object_id, skills, score, duration_seconds, occurred_at
),
""" + DAYS_FROM_STORED + """
SELECT count(*)::integer, CASE WHEN count(*) < %(sent)s THEN array_agg(event_id) END FROM stored
"""


def insert_batch(conn: psycopg.Connection, organization_id: UUID, rows: Sequence[NewEvent]) -> list[NewEvent]:
    """Store the events of one organization; returns those that were not stored before (an event
    repeated in `rows` once).

    RLS checks every row (the caller's organization; a user's own events), and the foreign key
    (organization_id, user_id) -> users refuses a user of another organization.
    """
    if not rows:
        return []
    event_ids, user_ids, verbs, object_ids, object_types, skills, scores, successes, durations, occurred = zip(
        *rows, strict=True
    )
    join = SKILL_SEPARATOR.join
    row = conn.execute(_INSERT, {
        "org": organization_id, "ids": list(event_ids), "users": list(user_ids), "verbs": list(verbs),
        "objects": list(object_ids), "types": list(object_types), "skills": [join(s) for s in skills],
        "scores": list(scores), "successes": list(successes), "durations": list(durations),
        "occurred": list(occurred), "sent": len(rows), **VERB_PARAMS,
    }).fetchone()
    assert row is not None
    count, stored_ids = row
    if count == len(rows):
        return list(rows)
    # Some were stored before, or sent twice: the rows of the ids stored, each once. An id
    # stands for one row here (the model refuses an id repeated with different content).
    pending = set(stored_ids or ())
    inserted = []
    for r in rows:
        if r.event_id in pending:
            pending.discard(r.event_id)
            inserted.append(r)
    return inserted


# Transaction-scoped advisory locks in a key space of their own (two int4 keys), taken in id
# order so two requests can never wait on each other in a cycle.
_LOCK_SPACE = 7007
_LOCK = """
SELECT count(pg_advisory_xact_lock(%s, hashtext(t.u::text))) FROM unnest(%s::uuid[]) AS t(u)
"""


def lock_users(conn: psycopg.Connection, user_ids: Sequence[UUID]) -> None:
    """Serialize the computations of these users with any other transaction computing them:
    the later one waits, then reads the events the earlier one committed."""
    if user_ids:
        conn.execute(_LOCK, (_LOCK_SPACE, sorted(user_ids)))


# user_id as text: grouping by a str is much cheaper in Python than hashing uuid.UUID objects.
# skills as one joined string: splitting it costs a fraction of decoding a text[] per row.
_WINDOW = """
SELECT verb, object_id, array_to_string(skills, E'\\x1f'), score, success, duration_seconds,
       occurred_at, user_id::text
FROM learning_events
WHERE user_id = ANY (%s) AND occurred_at > %s AND occurred_at <= %s
"""
_NO_SKILLS: tuple[str, ...] = ()


def window(
    conn: psycopg.Connection, user_ids: Sequence[UUID], since: datetime, until: datetime
) -> dict[UUID, list[EventRecord]]:
    """The users' events with since < occurred_at <= until, per user (RLS decides visibility)."""
    by_text: dict[str, list[EventRecord]] = {}
    if not user_ids:
        return {}
    new = tuple.__new__
    sep, none = SKILL_SEPARATOR, _NO_SKILLS
    with conn.cursor(binary=True) as cur:
        for verb, object_id, skills, score, success, duration, occurred_at, user in cur.execute(
            _WINDOW, (list(user_ids), since, until)
        ).fetchall():
            events = by_text.get(user)
            if events is None:
                events = by_text[user] = []
            events.append(new(EventRecord, (
                verb, object_id, skills.split(sep) if skills else none, score, success, duration, occurred_at,
            )))
    return {UUID(key): events for key, events in by_text.items()}


# The computation's bulk read (ingest, recomputation): as _WINDOW, with the instant as POSIX
# seconds instead of a datetime (date_part gives the double nearest the exact value, as
# datetime.timestamp() does; see EventRow) and without `success`, which no computation reads.
_WINDOW_ROWS = """
SELECT user_id::text, verb, object_id, array_to_string(skills, E'\\x1f'), score, duration_seconds,
       date_part('epoch', occurred_at)
FROM learning_events
WHERE user_id = ANY (%s) AND occurred_at > %s AND occurred_at <= %s
"""
_FETCH = 10_000  # rows converted at a time: fewer live objects, less work for the cyclic GC


def window_rows(
    conn: psycopg.Connection, user_ids: Sequence[UUID], since: datetime, until: datetime
) -> dict[UUID, list[EventRow]]:
    """window() as EventRows: one tuple per event, the rows with the same skills sharing one."""
    if not user_ids:
        return {}
    by_text: dict[str, list[EventRow]] = {}
    split: dict[str | None, tuple[str, ...]] = {}
    new = tuple.__new__
    sep = SKILL_SEPARATOR
    with conn.cursor(binary=True) as cur:
        cur.execute(_WINDOW_ROWS, (list(user_ids), since, until))
        while chunk := cur.fetchmany(_FETCH):
            for user, verb, object_id, skills, score, duration, at in chunk:
                events = by_text.get(user)
                if events is None:
                    events = by_text[user] = []
                parts = split.get(skills)
                if parts is None:
                    parts = split[skills] = tuple(skills.split(sep)) if skills else ()
                events.append(new(EventRow, (verb, object_id, parts, score, duration, at)))
    return {UUID(key): events for key, events in by_text.items()}
