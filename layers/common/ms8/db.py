"""Database access: one connection per container, the request transaction and its RLS context.

A Lambda container serves one request at a time, so each `Database` keeps a single connection at
module scope and reuses it across invocations. The caller's identity is set inside the request's
transaction by a SECURITY DEFINER function (one round trip, no `SET`, so RDS Proxy does not pin
the connection), and it vanishes with the transaction.
"""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, LiteralString, TypeVar
from uuid import UUID

import psycopg
from psycopg import pq

from ms8.config import connection_params, has_reader, settings
from ms8.domain.vocabulary import Role
from ms8.errors import (
    AppError,
    BadRequest,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    NotFound,
    Unauthorized,
    Unavailable,
    Unprocessable,
)

T = TypeVar("T")
Kind = Literal["runtime", "owner", "reader"]


@dataclass(frozen=True, slots=True)
class UserCaller:
    """A verified user acting in one of their roles, as the database established it (never as the
    client claimed): always a user of one organization."""

    user_id: UUID
    organization_id: UUID
    roles: tuple[Role, ...]
    active_role: Role
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class ServiceCaller:
    """A registered platform service using one of its scopes, in one organization or (a
    platform-wide client without X-Organization-Id) in none."""

    client_id: str
    scope: str
    organization_id: UUID | None


Caller = UserCaller | ServiceCaller


def organization_of(caller: Caller) -> UUID:
    """The organization a request acts in; a platform-wide service must name one (400)."""
    if caller.organization_id is None:
        raise BadRequest("name the organization in X-Organization-Id", code="ORGANIZATION_REQUIRED")
    return caller.organization_id


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


def _closed_while_idle(conn: psycopg.Connection) -> bool:
    """Whether the server (or a proxy) closed this idle connection: its socket then has something
    to read (the end of the stream, or the server's notice that it terminated the session), where
    an idle connection in use has nothing waiting. Costs a zero-timeout poll, no round trip."""
    if conn.closed or conn.broken:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


@contextmanager
def users_of_the_organization() -> Iterator[None]:
    """Writes naming users that must be the caller's organization's: a user of another one is
    refused by the foreign key to users (no such user here) or, first, by RLS (their existing row
    is not ours to update). Both answer the same 404, so the answer never tells whether that user
    exists, or was active, elsewhere."""
    try:
        yield
    except (psycopg.errors.ForeignKeyViolation, psycopg.errors.InsufficientPrivilege) as exc:
        raise NotFound("one or more users are not users of this organization") from exc


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
    # The reader refuses writes even when its URL names a writable server.
    options: dict[str, Any] = {"options": "-c default_transaction_read_only=on"} if kind == "reader" else {}
    try:
        conn = psycopg.connect(
            **connection_params(kind),
            prepare_threshold=None,  # poolers (RDS Proxy) and prepared statements do not mix
            connect_timeout=cfg.connect_timeout_s,
            application_name=cfg.service_name,
            **options,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable("the database cannot be reached; try again shortly") from exc
    conn.read_only = kind == "reader"  # _begin_with's BEGIN says so too (a standby refuses READ WRITE)
    return conn


def _rollback(conn: psycopg.Connection) -> None:
    try:
        conn.rollback()
    except psycopg.Error:
        conn.close()


def autocommit(conn: psycopg.Connection) -> psycopg.Connection:
    """The connection in autocommit, for a request sent as one statement (its own transaction):
    a transaction left open on it is rolled back first."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        _rollback(conn)
    conn.autocommit = True
    return conn


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

    def run(self, work: Callable[[psycopg.Connection], T], *, replay: bool = True) -> T:
        """Run `work` (statements in autocommit, each its own transaction) with the same error
        handling as transaction(): a connection found stale is replaced once, database errors
        leave as client-facing errors.

        `replay=False` for work that writes: a connection lost while it ran may have committed it,
        so it is never sent twice (the loss answers 503). A connection the server closed while
        idle is told apart before sending (_closed_while_idle) and replaced then.
        """
        try:
            if not replay and self._conn is not None and _closed_while_idle(self._conn):
                self.reset()
            try:
                return work(self.connection())
            except psycopg.OperationalError as exc:
                if not replay or not _connection_lost(exc):
                    raise
                self.reset()
                return work(self.connection())
        except psycopg.Error as exc:
            if _connection_lost(exc):
                self.reset()
            mapped = map_db_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc


# The mode is said, not left to defaults the runtime role could change on itself (ALTER ROLE ...
# SET default_transaction_read_only); the reader's transactions are read-only.
_BEGIN: LiteralString = "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE"
_BEGIN_READ_ONLY: LiteralString = "BEGIN ISOLATION LEVEL READ COMMITTED, READ ONLY"


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
            conn.execute(_BEGIN_READ_ONLY if conn.read_only else _BEGIN)
            cur = conn.execute(query, params)
        row = cur.fetchone()
    assert row is not None
    return row


def as_user(user_id: UUID, role: str | None) -> Callable[[psycopg.Connection], UserCaller]:
    """Begin a request as a verified user acting in `role` (None: their only role)."""

    def begin(conn: psycopg.Connection) -> UserCaller:
        row = _begin_with(conn, "SELECT * FROM app.begin_request(%s, %s)", (user_id, role))
        return UserCaller(row[0], row[1], tuple(row[2]), row[3], row[4])

    return begin


def read_as_user(
    database: Database, user_id: UUID, role: str | None, call: LiteralString, args: tuple[object, ...] = ()
) -> tuple[UserCaller, list[tuple[Any, ...]]]:
    """One read as a verified user in ONE statement, one round trip: the context call and the read.

    `call` invokes one of the request functions of migration 0016, its first two parameters the
    user and the role asked for, e.g. "app.request_analytics(%s, %s, %s, %s)":
    the function sets the context (app.begin_request) and reads, in a plan the server caches.
    The statement is its own transaction (autocommit) and the context vanishes with it: a
    transaction pooler may hand the server connection to anyone afterwards.

    The values are bound on the client and the statement goes in the simple query protocol:
    the server parses a one-line call instead of parsing, describing and binding a parameterised
    statement (no prepared statement either way, which a pooler would pin). Returns the caller
    and the function's rows (none when it returned none).
    """
    query: LiteralString = "SELECT * FROM " + call
    # A UUID would be bound as '...'::uuid; a plain literal takes the parameter's type from the
    # function instead, without a type name to look up.
    params = tuple(str(v) if isinstance(v, UUID) else v for v in (user_id, role, *args))

    def run(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
        with psycopg.ClientCursor(autocommit(conn)) as cur:
            return cur.execute(query, params).fetchall()

    rows = database.run(run)
    first = rows[0]
    caller = UserCaller(first[0], first[1], tuple(first[2]), first[3], first[4])
    found = [r[5:] for r in rows if any(v is not None for v in r[5:])]
    return caller, found


def as_service(
    client_id: str, scope: str, organization_id: UUID | None = None
) -> Callable[[psycopg.Connection], ServiceCaller]:
    """Begin a request as a registered platform service using one of its scopes."""

    def begin(conn: psycopg.Connection) -> ServiceCaller:
        row = _begin_with(
            conn, "SELECT app.begin_service_request(%s, %s, %s)", (client_id, scope, organization_id)
        )
        return ServiceCaller(client_id, scope, row[0])

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


class ReaderDatabase(Database):
    """The read replica for reads that tolerate lag, falling back to the writer while it is down.

    A read that cannot reach the replica (connection refused or lost, recovery conflict) is run
    on the writer instead, and the writer serves these reads for `DB_READER_RETRY` seconds
    before the replica is tried again, so a replica outage costs one failed connection attempt
    per container and period, not one per request. Reads are safe to repeat; nothing is written
    here (the session is read-only).
    """

    def __init__(self, writer: Database) -> None:
        super().__init__("reader")
        self.writer = writer
        self._down_until = 0.0

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self) -> None:
        self.reset()
        self._down_until = time.monotonic() + settings().reader_retry_s

    def run(self, work: Callable[[psycopg.Connection], T], *, replay: bool = True) -> T:
        if self._usable():
            try:
                return super().run(work, replay=replay)
            except DatabaseUnavailable:
                self._failed()
        return self.writer.run(work, replay=replay)

    @contextmanager
    def transaction(self, begin: Callable[[psycopg.Connection], T]) -> Iterator[tuple[psycopg.Connection, T]]:
        if self._usable():
            on_replica = Database.transaction(self, begin)
            try:
                pair = on_replica.__enter__()  # connects and sets the context: fails fast when down
            except DatabaseUnavailable:
                self._failed()
            else:
                try:
                    yield pair
                except BaseException:
                    if not on_replica.__exit__(*sys.exc_info()):
                        raise
                else:
                    on_replica.__exit__(None, None, None)
                return
        with self.writer.transaction(begin) as pair:
            yield pair


runtime = Database("runtime")
owner = Database("owner")


def write_as_service(work: Callable[[psycopg.Connection], T]) -> T:
    """A platform's write as one statement that sets the client's context itself and is its own
    transaction (migrations 0019, 0022): run on the runtime connection, never sent twice (a lost
    connection may have committed it), users of another organization answered 404."""

    def guarded(conn: psycopg.Connection) -> T:
        with users_of_the_organization():
            return work(conn)

    return runtime.run(guarded, replay=False)


_reader: ReaderDatabase | None = None


def reader() -> Database:
    """Where lag-tolerant reads go: the replica when one is configured, else the writer."""
    global _reader
    if not has_reader():
        return runtime
    if _reader is None:
        _reader = ReaderDatabase(runtime)
    return _reader


def reset_reader() -> None:
    """Forget the replica connection and its state (tests, after changing the settings)."""
    global _reader
    if _reader is not None:
        _reader.reset()
    _reader = None
