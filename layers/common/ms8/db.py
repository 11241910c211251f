"""Database access: one connection per container, the request transaction and its RLS context.

A Lambda container serves one request at a time, so each `Database` keeps a single connection at
module scope and reuses it across invocations. The caller's identity is set inside the request's
transaction by a SECURITY DEFINER function (one round trip, no `SET`, so RDS Proxy does not pin
the connection), and it vanishes with the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, LiteralString, TypeVar
from uuid import UUID

import psycopg
from psycopg import pq

from ms8.config import connection_params, settings
from ms8.errors import (
    AppError,
    BadRequest,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    Unauthorized,
    Unavailable,
    Unprocessable,
)

T = TypeVar("T")
Kind = Literal["runtime", "owner"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request acts for, as the database established it (never as the client claimed)."""

    user_id: UUID | None
    organization_id: UUID | None
    roles: tuple[str, ...]
    active_role: str
    timezone: str = "UTC"
    client_id: str | None = None

    @property
    def is_service(self) -> bool:
        return self.client_id is not None


# SQLSTATEs raised by app.begin_request / app.begin_service_request (migration 0002) and
# app.begin_xapi_request (0010).
_CONTEXT_ERRORS: dict[str, tuple[type[AppError], str]] = {
    "MS400": (BadRequest, "ROLE_REQUIRED"),
    "MS401": (Forbidden, "UNKNOWN_USER"),
    "MS402": (Forbidden, "UNKNOWN_CLIENT"),
    "MS403": (Forbidden, "ROLE_NOT_HELD"),
    "MS404": (Forbidden, "SCOPE_NOT_GRANTED"),
    "MS405": (BadRequest, "ORGANIZATION_REQUIRED"),
    "MS406": (Unauthorized, "UNKNOWN_CREDENTIAL"),
}


def _connection_lost(exc: psycopg.Error) -> bool:
    """The connection is gone or unusable, as opposed to one statement failing on it.

    Deadlocks, serialization failures, lock and statement timeouts are OperationalErrors too,
    but the connection survives them.
    """
    state = exc.sqlstate or ""
    return isinstance(exc, psycopg.OperationalError) and (
        not state or state.startswith("08") or state in ("57P01", "57P02", "57P03", "57P05")
    )


def map_db_error(exc: psycopg.Error) -> Exception:
    """Turn a database error into the client-facing error it means (or return it unchanged)."""
    state = exc.sqlstate or ""
    message = (exc.diag.message_primary or "").strip()
    if state in _CONTEXT_ERRORS:
        cls, code = _CONTEXT_ERRORS[state]
        return cls(message, code=code)
    if _connection_lost(exc):
        return DatabaseUnavailable("the database cannot be reached; try again shortly")
    if state == "42501":  # a row-level security check refused the row
        return Forbidden("not allowed for this caller")
    if state == "23505":
        return Conflict("a row with the same key exists")
    if state == "23503":
        return Unprocessable("a referenced row does not exist", code="REFERENCE_NOT_FOUND")
    if state.startswith("22") or state.startswith("23"):
        return Unprocessable(message or "invalid value")
    if state == "57014":
        return Unavailable("the request took too long; try again", code="TIMEOUT")
    if state in ("40001", "40P01", "55P03"):
        return Unavailable("the request conflicted with another; try again", code="RETRY")
    return exc


def _open(kind: Kind) -> psycopg.Connection:
    cfg = settings()
    try:
        return psycopg.connect(
            **connection_params(kind),
            prepare_threshold=None,  # poolers (RDS Proxy) and prepared statements do not mix
            connect_timeout=cfg.connect_timeout_s,
            application_name=cfg.service_name,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable("the database cannot be reached; try again shortly") from exc


def _rollback(conn: psycopg.Connection) -> None:
    try:
        conn.rollback()
    except psycopg.Error:
        conn.close()


class Database:
    """A lazily opened connection, re-opened when found broken, and request transactions on it."""

    def __init__(self, kind: Kind = "runtime") -> None:
        self.kind: Kind = kind
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            conn = self._conn = _open(self.kind)
        return conn

    def reset(self) -> None:
        """Drop the connection; the next transaction opens a new one."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    @contextmanager
    def transaction(self, begin: Callable[[psycopg.Connection], T]) -> Iterator[tuple[psycopg.Connection, T]]:
        """Run one transaction: `begin` sets its context, the body runs, then commit.

        A connection that turns out stale on the first statement (server restart, idle timeout)
        is replaced once: nothing has been written yet, so starting again is safe. A failure after
        that is never replayed. Database errors leave as client-facing errors (see map_db_error).
        """
        conn = self.connection()
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            _rollback(conn)
        try:
            try:
                context = begin(conn)
            except psycopg.OperationalError as exc:
                if not _connection_lost(exc):
                    raise
                self.reset()
                conn = self.connection()
                context = begin(conn)
            yield conn, context
            conn.commit()
        except psycopg.Error as exc:
            if _connection_lost(exc):
                self.reset()
            else:
                _rollback(conn)
            mapped = map_db_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        except BaseException:
            _rollback(conn)
            raise


_BEGIN: LiteralString = "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE"


def _begin_with(conn: psycopg.Connection, query: LiteralString, params: tuple[object, ...]) -> tuple[Any, ...]:
    """Open a transaction whose first statement is the context call: one network round trip.

    Outside autocommit, psycopg sends its implicit BEGIN and waits for it on its own (a round
    trip of its own, even in a pipeline). So the connection is put in autocommit and BEGIN is
    sent explicitly, pipelined with the call and a single Sync; commit() and rollback() end the
    transaction as before. Inside an already open transaction only the call is sent.
    """
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        row = conn.execute(query, params).fetchone()
    else:
        conn.autocommit = True
        with conn.pipeline():
            conn.execute(_BEGIN)
            cur = conn.execute(query, params)
        row = cur.fetchone()
    assert row is not None
    return row


def as_user(user_id: UUID, role: str | None) -> Callable[[psycopg.Connection], Caller]:
    """Begin a request as a verified user acting in `role` (None: their only role)."""

    def begin(conn: psycopg.Connection) -> Caller:
        row = _begin_with(conn, "SELECT * FROM app.begin_request(%s, %s)", (user_id, role))
        return Caller(row[0], row[1], tuple(row[2]), row[3], row[4])

    return begin


def as_service(
    client_id: str, scope: str, organization_id: UUID | None = None
) -> Callable[[psycopg.Connection], Caller]:
    """Begin a request as a registered platform service using one of its scopes."""

    def begin(conn: psycopg.Connection) -> Caller:
        row = _begin_with(
            conn, "SELECT app.begin_service_request(%s, %s, %s)", (client_id, scope, organization_id)
        )
        return Caller(None, row[0], (scope,), scope, client_id=client_id)

    return begin


def as_xapi(key: str) -> Callable[[psycopg.Connection], tuple[UUID, str, str | None]]:
    """Begin an xAPI request with a credential's key: (organization id, secret hash, homePage).
    The caller still verifies the secret against the hash before doing anything."""

    def begin(conn: psycopg.Connection) -> tuple[UUID, str, str | None]:
        row = _begin_with(conn, "SELECT * FROM app.begin_xapi_request(%s)", (key,))
        return row[0], row[1], row[2]

    return begin


def as_maintenance(conn: psycopg.Connection) -> None:
    """Begin a maintenance transaction (owner connection only): every row is visible to it."""
    conn.execute("SELECT app.begin_maintenance()")


runtime = Database("runtime")
owner = Database("owner")
