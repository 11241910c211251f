"""Learning events: the batch insert (one statement, idempotent by event id) and the window of
events the analytics computation reads (one statement for all users)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import psycopg

from ms8.db import autocommit
from ms8.domain.metrics import EventRecord, EventRow
from ms8.repositories import binary_arrays as arrays
from ms8.repositories.days import DAY_PARAMS, DAYS_FROM_STORED
from ms8.repositories.pending import NOTE_STORED


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


def stored_cte(select: str, source: str, order: str) -> str:
    """The `stored` CTE: learning events inserted from `source`, `select` listing the values in
    the insert's column order and `order` the key order (user, event id, time) they are inserted
    in; a key already stored is skipped; it returns what the learner days (DAYS_FROM_STORED) and
    the noting (ms8.repositories.pending) read. Ingest and xAPI batches both store through it."""
    return f"""stored AS (
    INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type,
                                 skills, score, success, duration_seconds, occurred_at, sent_by_learner)
    SELECT {select}
    FROM {source}
    ORDER BY {order}
    ON CONFLICT (user_id, event_id, occurred_at) DO NOTHING
    RETURNING event_id, user_id, verb, object_id, skills, score, duration_seconds, occurred_at
),
"""


_INSERT_STORED = "\nWITH " + stored_cte(
    """x.event_id, x.user_id, %(org)s, x.verb, x.object_id, x.object_type,
           string_to_array(x.skills, E'\\x1f'), x.score, x.success, x.duration_seconds, x.occurred_at,
           NOT %(note)s""",
    """unnest(%(ids)b::uuid[], %(users)b::uuid[], %(verbs)b::text[], %(objects)b::text[], %(types)b::text[],
                %(skills)b::text[], %(scores)b::real[], %(successes)b::boolean[], %(durations)b::integer[],
                %(occurred)b::timestamptz[])
         AS x(event_id, user_id, verb, object_id, object_type, skills, score, success,
              duration_seconds, occurred_at)""",
    "x.user_id, x.event_id, x.occurred_at",
)
_INSERT_ANSWER = """
SELECT count(*)::integer, CASE WHEN count(*) < %(sent)s THEN array_agg(event_id) END FROM stored
"""
_INSERT = _INSERT_STORED + DAYS_FROM_STORED + _INSERT_ANSWER
# A platform's batch also notes the learners of the events it stored (ms8.repositories.pending).
_INSERT_AND_NOTE = _INSERT_STORED + NOTE_STORED + DAYS_FROM_STORED + _INSERT_ANSWER


def insert_batch(
    conn: psycopg.Connection, organization_id: UUID, rows: Sequence[NewEvent], *, note: bool = False
) -> list[NewEvent]:
    """Store the events of one organization; returns those that were not stored before (an event
    repeated in `rows` once). With `note` (a platform's batch), the users of the stored events are
    noted for the refresh job (analytics_pending) in the same statement; without, the events are
    marked as the learner's own (`sent_by_learner`: the job never awards them again).

    RLS checks every row (the caller's organization; a user's own events), and the foreign key
    (organization_id, user_id) -> users refuses a user of another organization.
    """
    if not rows:
        return []
    ids, users, verbs, objects, types, skills, scores, successes, durations, occurred = _columns(rows)
    row = conn.execute(_INSERT_AND_NOTE if note else _INSERT, {
        "org": organization_id, "ids": ids, "users": users, "verbs": verbs, "objects": objects, "types": types,
        "skills": skills, "scores": scores, "successes": successes, "durations": durations, "occurred": occurred,
        "sent": len(rows), "note": note, **DAY_PARAMS,
    }).fetchone()
    assert row is not None
    return _stored(rows, row[0], row[1])


# A platform's batch in one call (migration 0022): app.request_service_ingest sets the client's
# context (app.begin_service_request) and runs _INSERT_AND_NOTE with its parameters as the
# function's, in the statement's own transaction (autocommit): one round trip, and PL/pgSQL keeps
# the statement's plan for the session instead of planning it for every batch. The statement text
# here is the one source: PLATFORM_STATEMENT is what the function runs, a migration only installs
# it, and a test compares the function in the database with it (a change to the insert, the days
# or the noting needs a migration that installs the function again).
PLATFORM_ARGS: tuple[tuple[str, str], ...] = (
    ("ids", "uuid[]"), ("users", "uuid[]"), ("verbs", "text[]"), ("objects", "text[]"), ("types", "text[]"),
    ("skills", "text[]"), ("scores", "real[]"), ("successes", "boolean[]"), ("durations", "integer[]"),
    ("occurred", "timestamptz[]"), ("completion_verbs", "text[]"), ("assessment_verbs", "text[]"),
    ("passed_verb", "text"), ("session_verb", "text"), ("half_life_s", "float8"),
)


def _as_function_body(statement: str) -> str:
    """The statement with its parameters as the function's: p_<name>; the organization the context
    call resolved (v_org); a platform's events are not the learner's own; the count sent."""
    body = statement.replace("%(org)s", "v_org").replace("NOT %(note)s", "false")
    body = body.replace("%(sent)s", "cardinality(p_ids)")
    body = re.sub(r"%\((\w+)\)[sb]", r"p_\1", body)
    return body.replace("%%", "%")


PLATFORM_STATEMENT = _as_function_body(_INSERT_AND_NOTE)
# The ten event arrays in binary (_columns), the vocabulary as plain parameters.
_PLATFORM_CALL = "SELECT * FROM app.request_service_ingest(%s::text, %s::text, %s::uuid, " + ", ".join(
    [f"%b::{t}" for _, t in PLATFORM_ARGS[:10]] + [f"%s::{t}" for _, t in PLATFORM_ARGS[10:]]) + ")"


def _columns(rows: Sequence[NewEvent]) -> list[Any]:
    """The rows as the statement's ten arrays, built in binary in bulk (ms8.repositories.binary_arrays;
    skills joined by SKILL_SEPARATOR)."""
    event_ids, user_ids, verbs, object_ids, object_types, skills, scores, successes, durations, occurred = zip(
        *rows, strict=True
    )
    join = SKILL_SEPARATOR.join
    return [arrays.uuids(event_ids), arrays.uuids(user_ids), arrays.texts(verbs), arrays.texts(object_ids),
            arrays.texts(object_types), arrays.texts([join(s) for s in skills]), arrays.float8s(scores),
            arrays.bools(successes), arrays.int4s(durations), arrays.timestamptzs(occurred)]


def _stored(rows: Sequence[NewEvent], count: int, stored_ids: Sequence[UUID] | None) -> list[NewEvent]:
    """The rows stored, from the statement's answer: all of them, or those of the ids stored, each
    once (some were stored before, or sent twice; an id stands for one row here: the model refuses
    an id repeated with different content)."""
    if count == len(rows):
        return list(rows)
    pending = set(stored_ids or ())
    inserted = []
    for r in rows:
        if r.event_id in pending:
            pending.discard(r.event_id)
            inserted.append(r)
    return inserted


def insert_batch_as_service(
    conn: psycopg.Connection, client_id: str, scope: str, organization_id: UUID | None, rows: Sequence[NewEvent]
) -> list[NewEvent]:
    """insert_batch(note=True) for a platform service in one statement and one round trip, its own
    transaction (all or nothing): the client's context is set inside it (app.begin_service_request:
    its checks and errors as for any request), then the events, their learners' days and the
    learners noted for the refresh job are written as the runtime role (RLS, foreign keys)."""
    row = autocommit(conn).execute(_PLATFORM_CALL, (
        client_id, scope, organization_id, *_columns(rows), *(DAY_PARAMS[name] for name, _ in PLATFORM_ARGS[10:]),
    )).fetchone()
    assert row is not None
    return _stored(rows, row[0], row[1])


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


# The events of the users on some UTC days: the days on which a window of the analytics starts or
# ends mid-day (ms8.domain.metrics.boundary_days). One index range scan per run of consecutive
# days (user_id = ANY and the instant range: the partitions outside the ranges are pruned when the
# statement is planned). The instant as POSIX seconds (date_part gives the double nearest the
# exact value, as datetime.timestamp() does; see EventRow).
_ON_DAYS = """
SELECT e.user_id, e.verb, e.object_id, e.skills, e.score, e.duration_seconds, date_part('epoch', e.occurred_at),
       (e.occurred_at AT TIME ZONE 'UTC')::date
FROM learning_events e
WHERE e.user_id = ANY (%s) AND ({ranges})
"""
_RANGE = "(e.occurred_at >= %s AND e.occurred_at < %s)"


def _runs(days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """Consecutive days merged into [start, end) instant ranges (UTC)."""
    runs: list[list[date]] = []
    for d in sorted(set(days)):
        if runs and d == runs[-1][1]:
            runs[-1][1] = d + timedelta(days=1)
        else:
            runs.append([d, d + timedelta(days=1)])
    return [(datetime.combine(a, time(), UTC), datetime.combine(b, time(), UTC)) for a, b in runs]


def on_days(conn: psycopg.Connection, wanted: Mapping[UUID, Collection[date]]) -> dict[UUID, list[EventRow]]:
    """The events of each user on their UTC days in `wanted`, per user (RLS decides visibility)."""
    out: dict[UUID, list[EventRow]] = {}
    ranges = _runs(d for days in wanted.values() for d in days)
    if not ranges:
        return out
    query = _ON_DAYS.format(ranges=" OR ".join([_RANGE] * len(ranges)))
    params: list[Any] = [list(wanted)]
    for start, end in ranges:
        params += [start, end]
    # Binary: a real score arrives as the exact float4 value, as the day sums in SQL see it.
    with conn.cursor(binary=True) as cur:
        for user, verb, object_id, skills, score, duration, at, day in cur.execute(query, params).fetchall():
            if day in wanted[user]:  # another user's boundary day is an ordinary day of this one
                out.setdefault(user, []).append(EventRow(verb, object_id, tuple(skills or ()), score, duration, at))
    return out


_WINDOW = """
SELECT user_id, verb, object_id, skills, score, success, duration_seconds, occurred_at
FROM learning_events
WHERE user_id = ANY (%s) AND occurred_at > %s AND occurred_at <= %s
"""


def window(
    conn: psycopg.Connection, user_ids: Sequence[UUID], since: datetime, until: datetime
) -> dict[UUID, list[EventRecord]]:
    """The users' raw events with since < occurred_at <= until, per user (RLS decides visibility):
    what a full recomputation reads (the analytics are derived from the learner days instead)."""
    out: dict[UUID, list[EventRecord]] = {}
    if not user_ids:
        return out
    with conn.cursor(binary=True) as cur:
        for user, verb, object_id, skills, score, success, duration, occurred_at in cur.execute(
            _WINDOW, (list(user_ids), since, until)
        ).fetchall():
            out.setdefault(user, []).append(
                EventRecord(verb, object_id, tuple(skills or ()), score, success, duration, occurred_at))
    return out


# The platform events each user received since an instant, from an earliest occurred_at on:
# through the (user_id, occurred_at) index, the partitions before that skipped at run time. A
# learner's own events were awarded when they arrived, capped by their arrival hour: the refresh
# job, which counts by the hour events occurred in, leaves them out.
_RECEIVED = """
SELECT e.event_id, e.user_id, e.verb, e.object_id, e.occurred_at
FROM unnest(%(users)s::uuid[], %(since)s::timestamptz[], %(from)s::timestamptz[]) AS p(user_id, since, occurred_from)
JOIN LATERAL (
    SELECT * FROM learning_events e
    WHERE e.user_id = p.user_id AND e.occurred_at >= p.occurred_from AND e.received_at >= p.since
      AND NOT e.sent_by_learner
) e ON true
ORDER BY e.user_id, e.occurred_at, e.event_id
"""


def received_since(conn: psycopg.Connection, wanted: Sequence[tuple[UUID, datetime, datetime]]) -> list[InsertedEvent]:
    """The platform events of each (user, received since, occurred from), oldest first per user."""
    if not wanted:
        return []
    users, since, occurred_from = (list(c) for c in zip(*wanted, strict=True))
    rows = conn.execute(_RECEIVED, {"users": users, "since": since, "from": occurred_from}).fetchall()
    return [InsertedEvent(*r) for r in rows]
