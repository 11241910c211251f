"""xAPI statements and credentials: SQL only. Statements are read and written by an xAPI request
(RLS: its credential's organization); credentials are managed in maintenance transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import psycopg

from ms8.repositories.days import DAY_PARAMS, DAYS_FROM_STORED
from ms8.repositories.events import stored_cte
from ms8.repositories.pending import NOTE_STORED
from ms8.xapi.mapping import Mapped

SEP = "\x1f"  # arrays travel as one joined string per row (tokens and keys never hold control characters)


class NewStatement(NamedTuple):
    """A statement to store; ids as their canonical text."""

    statement_id: str
    statement: bytes  # JSON as stored (UTF-8)
    tokens: Sequence[str]
    content_hash: bytes | None
    voids: str | None
    ref: str | None
    actor_keys: Sequence[str]
    event: str | None  # the mapped event (JSON) of a statement whose actor is not a user yet
    user_id: str | None
    event_occurred_at: datetime | None  # when it maps to a learning event
    learning_event: Mapped | None  # the learning event stored with it (of user_id, at event_occurred_at)


class Existing(NamedTuple):
    statement_id: UUID
    statement: dict[str, Any] | None  # only when asked for (comparing a statement sent again)
    is_voiding: bool


def existing(conn: psycopg.Connection, ids: Sequence[UUID], *, with_statement: bool = False) -> dict[UUID, Existing]:
    """The statements already stored under these ids."""
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT statement_id, CASE WHEN %s THEN statement END, voids IS NOT NULL FROM xapi_statements "
        "WHERE organization_id = app.current_org_id() AND statement_id = ANY (%s)",
        (with_statement, list(ids)),
    ).fetchall()
    return {r[0]: Existing(r[0], r[1], r[2]) for r in rows}


def by_content_hash(conn: psycopg.Connection, hashes: Sequence[bytes]) -> dict[bytes, str]:
    """Statements sent earlier without an id, by content hash."""
    if not hashes:
        return {}
    rows = conn.execute(
        "SELECT content_hash, statement_id FROM xapi_statements "
        "WHERE organization_id = app.current_org_id() AND content_hash = ANY (%s)",
        (list(hashes),),
    ).fetchall()
    return {bytes(r[0]): str(r[1]) for r in rows}


# The rows travel as one text per column, rows separated by U+001E (a row's tokens and keys by
# U+001F): joining strings is far cheaper in Python than dumping seventeen arrays element by
# element, and splitting them is cheap on the server. JSON text never holds a raw control
# character, and tokens, keys and skills are built without them (ms8.xapi.statements.agent_key,
# the model's skills). An empty field is NULL. The content hashes travel as hex.
#
# One statement stores the statements and, from those it stored (a statement stored before is
# skipped, and so is its event), their learning events, the learners' days and the learners noted
# for the refresh job: the same CTEs as an ingest batch (ms8.repositories.days, .pending) over the
# events stored. Rows go in key order, so two batches that share ids lock them in the same order.
# The answer is one row: how many statements were stored and, only when that is fewer than were
# sent, their ids.
ROW_SEP = "\x1e"
_COLUMNS = ("id", "st", "tokens", "content", "voids", "ref", "keys", "event", "user_id", "at",
            "verb", "object_id", "object_type", "skills", "score", "success", "duration")
_TYPES = {"id": "::uuid[]", "voids": "::uuid[]", "ref": "::uuid[]", "user_id": "::uuid[]", "at": "::timestamptz[]",
          "score": "::float8[]", "success": "::boolean[]", "duration": "::integer[]"}
_INSERT = """
WITH x AS (
    SELECT * FROM unnest(""" + ", ".join(f"string_to_array(%({c})s, E'\\x1e', ''){_TYPES.get(c, '')}"
                                       for c in _COLUMNS) + f""")
        AS x({", ".join(_COLUMNS)})
),
ins AS (
    INSERT INTO xapi_statements (organization_id, statement_id, statement, stored, credential_key, tokens,
                                 content_hash, voids, ref, actor_keys, event, user_id, event_occurred_at)
    SELECT %(org)s, x.id, x.st::json, %(stored)s, %(key)s, string_to_array(x.tokens, E'\\x1f'),
           decode(x.content, 'hex'), x.voids, x.ref, coalesce(string_to_array(x.keys, E'\\x1f'), '{{}}'),
           x.event::jsonb, x.user_id, x.at
    FROM x
    ORDER BY x.id
    ON CONFLICT DO NOTHING
    RETURNING statement_id
),
""" + stored_cte(
    """x.id, x.user_id, %(org)s, x.verb, x.object_id, x.object_type,
           coalesce(string_to_array(x.skills, E'\\x1f'), '{}'), x.score::real, x.success, x.duration, x.at, false""",
    "ins JOIN x ON x.id = ins.statement_id\n    WHERE x.verb IS NOT NULL",
    "x.user_id, x.id, x.at",
) + NOTE_STORED + DAYS_FROM_STORED + """
SELECT count(*)::integer, CASE WHEN count(*) < %(sent)s THEN array_agg(statement_id) END FROM ins
"""


def _column(values: Sequence[object]) -> str:
    return ROW_SEP.join(["" if v is None else v if type(v) is str else str(v) for v in values])


def insert(
    conn: psycopg.Connection, organization_id: UUID, key: str, stored: datetime, rows: Sequence[NewStatement]
) -> set[str]:
    """Store the statements, and the learning events of those that count now with their learners'
    days (one statement); returns the ids stored now (a statement stored before, perhaps by a
    concurrent request, is not stored again)."""
    if not rows:
        return set()
    ids, sts, tokens, content, voids, refs, keys, events, users, ats, counted = zip(*rows, strict=True)
    join = SEP.join
    params: dict[str, Any] = {
        **DAY_PARAMS, "org": organization_id, "stored": stored, "key": key, "sent": len(rows),
        "id": ROW_SEP.join(ids), "st": b"\x1e".join(sts).decode(), "tokens": ROW_SEP.join([join(t) for t in tokens]),
        "content": ROW_SEP.join(["" if c is None else c.hex() for c in content]),
        "voids": _column(voids), "ref": _column(refs), "keys": ROW_SEP.join([join(k) for k in keys]),
        "event": _column(events), "user_id": _column(users),
        "at": ROW_SEP.join(["" if a is None else a.isoformat() for a in ats]),
        # The event columns: empty (NULL) for a statement whose event is not stored now.
        "verb": ROW_SEP.join(["" if e is None else e.verb for e in counted]),
        "object_id": ROW_SEP.join(["" if e is None else e.object_id for e in counted]),
        "object_type": ROW_SEP.join(["" if e is None else e.object_type for e in counted]),
        "skills": ROW_SEP.join(["" if e is None else join(e.skills) for e in counted]),
        "score": _column([None if e is None else e.score for e in counted]),
        "success": _column([None if e is None else e.success for e in counted]),
        "duration": _column([None if e is None else e.duration_seconds for e in counted]),
    }
    row = conn.execute(_INSERT, params).fetchone()
    assert row is not None
    count, stored_ids = row
    return set(ids) if count == len(rows) else {str(i) for i in stored_ids or ()}


class VoidedEvent(NamedTuple):
    user_id: UUID
    event_id: UUID
    occurred_at: datetime


def void(conn: psycopg.Connection, targets: Sequence[UUID]) -> list[VoidedEvent]:
    """Mark the targets voided (never a voiding statement) and delete their learning events;
    returns the deleted events."""
    if not targets:
        return []
    rows = conn.execute(
        """
        WITH voided AS (
            UPDATE xapi_statements SET voided = true
            WHERE organization_id = app.current_org_id() AND statement_id = ANY (%s) AND voids IS NULL
              AND NOT voided
            RETURNING statement_id, user_id, event_occurred_at
        )
        DELETE FROM learning_events e USING voided v
        WHERE e.user_id = v.user_id AND e.event_id = v.statement_id AND e.occurred_at = v.event_occurred_at
        RETURNING e.user_id, e.event_id, e.occurred_at
        """,
        (list(targets),),
    ).fetchall()
    return [VoidedEvent(*r) for r in rows]


def send_users_by_keys(
    conn: psycopg.Connection, ids: Sequence[UUID], emails: Sequence[str], everyone: bool
) -> psycopg.Cursor[Any]:
    """The query for (user id, lower-case e-mail) of the organization's users with these ids or
    e-mails (all of them when `everyone`), through app.xapi_users; its rows are read from the
    cursor (in pipeline mode, once the caller needs them)."""
    return conn.execute("SELECT user_id, email FROM app.xapi_users(%s, %s, %s)", (list(ids), list(emails), everyone))


def claim_pending(conn: psycopg.Connection, users: Sequence[tuple[UUID, Sequence[str]]]) -> int:
    """Map the pending statements of these users' actor keys to them (app.xapi_claim_pending);
    returns the learning events inserted."""
    if not users:
        return 0
    row = conn.execute(
        "SELECT app.xapi_claim_pending(%s, %s)", ([u for u, _ in users], [SEP.join(k) for _, k in users])
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Query:
    """GET /statements filters (already validated)."""

    tokens: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    ascending: bool = False
    after_seq: int | None = None  # the `more` cursor: past this position
    limit: int = 100


def one(conn: psycopg.Connection, statement_id: UUID, voided: bool) -> tuple[dict[str, Any], datetime] | None:
    """A statement by id: a voided one only when `voided`, a not-voided one otherwise."""
    row = conn.execute(
        "SELECT statement, stored FROM xapi_statements "
        "WHERE organization_id = app.current_org_id() AND statement_id = %s AND voided = %s",
        (statement_id, voided),
    ).fetchone()
    return (row[0], row[1]) if row else None


def search(conn: psycopg.Connection, q: Query) -> list[tuple[int, dict[str, Any]]]:
    """(seq, statement) of the matching statements that are not voided, limit + 1 of them (the
    extra one says there are more)."""
    where = ["organization_id = app.current_org_id()", "NOT voided"]
    params: list[Any] = []
    if q.tokens:
        # A statement that targets (StatementRef) a matching statement matches too.
        where.append("(tokens @> %s OR ref IN (SELECT t.statement_id FROM xapi_statements t "
                     "WHERE t.organization_id = app.current_org_id() AND t.tokens @> %s))")
        params += [list(q.tokens), list(q.tokens)]
    if q.since is not None:
        where.append("stored > %s")
        params.append(q.since)
    if q.until is not None:
        where.append("stored <= %s")
        params.append(q.until)
    if q.after_seq is not None:
        where.append("seq > %s" if q.ascending else "seq < %s")
        params.append(q.after_seq)
    order = "ASC" if q.ascending else "DESC"
    params.append(q.limit + 1)
    sql = f"SELECT seq, statement FROM xapi_statements WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT %s"
    return [(r[0], r[1]) for r in conn.execute(sql.encode(), params).fetchall()]


def store_attachments(conn: psycopg.Connection, parts: Sequence[tuple[str, str, bytes]]) -> None:
    """(sha2, content type, content) of attachments, each kept once."""
    if parts:
        sha2, types, contents = zip(*parts, strict=True)
        conn.execute(
            "INSERT INTO xapi_attachments (organization_id, sha2, content_type, content) "
            "SELECT app.current_org_id(), x.sha2, x.ctype, x.content "
            "FROM unnest(%s::text[], %s::text[], %s::bytea[]) AS x(sha2, ctype, content) ON CONFLICT DO NOTHING",
            (list(sha2), list(types), list(contents)),
        )


def attachments(conn: psycopg.Connection, sha2: Sequence[str]) -> list[tuple[str, str, bytes]]:
    if not sha2:
        return []
    rows = conn.execute(
        "SELECT sha2, content_type, content FROM xapi_attachments "
        "WHERE organization_id = app.current_org_id() AND sha2 = ANY (%s) ORDER BY sha2",
        (list(sha2),),
    ).fetchall()
    return [(r[0], r[1], bytes(r[2])) for r in rows]


# --- credentials (maintenance) ---------------------------------------------------------------

def create_credential(
    conn: psycopg.Connection, key: str, organization_id: UUID, secret_hash: str, home_page: str | None,
    description: str,
) -> None:
    conn.execute(
        "INSERT INTO xapi_credentials (key, organization_id, secret_hash, home_page, description) "
        "VALUES (%s, %s, %s, %s, %s)",
        (key, organization_id, secret_hash, home_page, description),
    )


def rotate_credential(conn: psycopg.Connection, key: str, secret_hash: str) -> bool:
    cur = conn.execute(
        "UPDATE xapi_credentials SET secret_hash = %s, rotated_at = now() WHERE key = %s AND revoked_at IS NULL",
        (secret_hash, key),
    )
    return cur.rowcount == 1


def revoke_credential(conn: psycopg.Connection, key: str) -> bool:
    cur = conn.execute(
        "UPDATE xapi_credentials SET revoked_at = now() WHERE key = %s AND revoked_at IS NULL", (key,)
    )
    return cur.rowcount == 1


def credentials(conn: psycopg.Connection, organization_id: UUID) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT key, home_page, description, created_at, rotated_at, revoked_at FROM xapi_credentials "
        "WHERE organization_id = %s ORDER BY created_at",
        (organization_id,),
    ).fetchall()
    keys = ("key", "homePage", "description", "createdAt", "rotatedAt", "revokedAt")
    return [dict(zip(keys, r, strict=True)) for r in rows]

