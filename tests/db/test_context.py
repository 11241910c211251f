"""The request context: refused when wrong, gone with its transaction, read once per statement,
and set in one network round trip."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import pq

from ms8 import db
from ms8.errors import AppError, BadRequest, Forbidden, Unprocessable
from tests.support.factories import Factory, Org


@pytest.fixture
def org(factory: Factory) -> Org:
    """An organization with analytics rows for every user, so visibility is never vacuous."""
    org = factory.org(
        learner=["learner"], trainer=["trainer"], admin=["org_admin"], both=["learner", "trainer"]
    )
    factory.assign(org.id, org.users["trainer"], org.users["learner"])
    for key, role in (("learner", "learner"), ("trainer", "trainer"), ("admin", "org_admin"), ("both", "learner")):
        factory.analytics(org.id, org.users[key], role, "mastery", {"mastery": 0.5})
    return org


@pytest.fixture
def clients(factory: Factory, org: Org) -> dict[str, str]:
    suffix = uuid.uuid4().hex
    return {
        "ingest": factory.service_client(f"ctx-ingest-{suffix}", ["ingest"], org.id),
        "platform": factory.service_client(f"ctx-platform-{suffix}", ["ingest", "directory"], None),
    }


def _user_cases(org: Org) -> list[tuple[Callable[[psycopg.Connection], db.Caller], type[AppError], str]]:
    return [
        (db.as_user(uuid.uuid4(), None), Forbidden, "UNKNOWN_USER"),
        (db.as_user(uuid.uuid4(), "learner"), Forbidden, "UNKNOWN_USER"),
        (db.as_user(org.users["learner"], "org_admin"), Forbidden, "ROLE_NOT_HELD"),
        (db.as_user(org.users["trainer"], "learner"), Forbidden, "ROLE_NOT_HELD"),
        (db.as_user(org.users["learner"], "superuser"), Forbidden, "ROLE_NOT_HELD"),
        (db.as_user(org.users["both"], None), BadRequest, "ROLE_REQUIRED"),
        (db.as_user(org.users["both"], ""), BadRequest, "ROLE_REQUIRED"),
    ]


def _service_cases(
    org: Org, clients: dict[str, str]
) -> list[tuple[Callable[[psycopg.Connection], db.Caller], type[AppError], str]]:
    return [
        (db.as_service("no-such-client", "ingest", org.id), Forbidden, "UNKNOWN_CLIENT"),
        (db.as_service(clients["ingest"], "directory", None), Forbidden, "SCOPE_NOT_GRANTED"),
        (db.as_service(clients["ingest"], "ingest", uuid.uuid4()), Forbidden, "SCOPE_NOT_GRANTED"),
        (db.as_service(clients["platform"], "ingest", None), BadRequest, "ORGANIZATION_REQUIRED"),
    ]


def _leftover(conn: psycopg.Connection) -> tuple[Any, ...]:
    """The three settings and the rows visible on `conn` outside any request."""
    row = conn.execute(
        "SELECT current_setting('app.current_user_id', true), current_setting('app.current_org_id', true), "
        "current_setting('app.current_role', true), (SELECT count(*) FROM analytics), "
        "(SELECT count(*) FROM users)"
    ).fetchone()
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.rollback()
    assert row is not None
    return tuple(row)


def _assert_clean(conn: psycopg.Connection) -> None:
    user_id, org_id, role, analytics, users = _leftover(conn)
    assert user_id in ("", None)
    assert org_id in ("", None)
    assert role in ("", None)
    assert (analytics, users) == (0, 0)


def test_refused_contexts_have_distinct_codes(org: Org, clients: dict[str, str]) -> None:
    cases = _user_cases(org) + _service_cases(org, clients)
    for begin, error, code in cases:
        with pytest.raises(error) as err:
            with db.runtime.transaction(begin):
                pytest.fail("the body must not run")
        assert err.value.code == code
        assert err.value.status == (400 if error is BadRequest else 403)
        _assert_clean(db.runtime.connection())
    assert len({code for *_, code in cases}) == 6


def test_accepted_contexts_name_what_the_database_found(org: Org, clients: dict[str, str]) -> None:
    with db.runtime.transaction(db.as_user(org.users["both"], "trainer")) as (_, caller):
        assert (caller.user_id, caller.organization_id) == (org.users["both"], org.id)
        assert (caller.active_role, set(caller.roles)) == ("trainer", {"learner", "trainer"})
    with db.runtime.transaction(db.as_service(clients["platform"], "ingest", org.id)) as (conn, caller):
        assert caller == db.ServiceCaller(clients["platform"], "ingest", org.id)
        assert conn.execute("SELECT count(*) FROM analytics").fetchone() == (4,)


def _visible_as(conn: psycopg.Connection) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT current_setting('app.current_user_id', true), (SELECT count(*) FROM analytics)"
    ).fetchone()
    assert row is not None
    return tuple(row)


def _raise(conn: psycopg.Connection) -> None:
    raise RuntimeError("boom")


def _failing_request(user_id: UUID, visible: int, fail: Callable[[psycopg.Connection], object]) -> None:
    with db.runtime.transaction(db.as_user(user_id, None)) as (conn, _):
        assert _visible_as(conn) == (str(user_id), visible)
        fail(conn)


def test_context_never_survives_its_transaction_on_a_reused_connection(org: Org) -> None:
    learner, trainer = org.users["learner"], org.users["trainer"]
    with db.runtime.transaction(db.as_user(trainer, None)) as (conn, _):
        assert _visible_as(conn) == (str(trainer), 2)  # own row and the assigned learner's
    reused = db.runtime.connection()
    assert reused is conn
    _assert_clean(reused)

    with pytest.raises(RuntimeError):  # rolled back by an exception in the body
        _failing_request(learner, 1, _raise)
    assert db.runtime.connection() is reused
    _assert_clean(reused)

    with pytest.raises(Unprocessable):  # rolled back by a database error
        _failing_request(org.users["admin"], 4, lambda conn: conn.execute("SELECT 1 / 0"))
    assert db.runtime.connection() is reused
    _assert_clean(reused)

    # The next request on the same connection sees its own rows only.
    with db.runtime.transaction(db.as_user(learner, None)) as (conn, _):
        assert conn is reused
        assert _visible_as(conn) == (str(learner), 1)
    _assert_clean(reused)


def test_context_never_survives_on_a_plain_connection(runtime_conn: psycopg.Connection, org: Org) -> None:
    admin = org.users["admin"]
    db.as_user(admin, None)(runtime_conn)
    assert _visible_as(runtime_conn) == (str(admin), 4)
    runtime_conn.commit()
    _assert_clean(runtime_conn)

    db.as_user(admin, None)(runtime_conn)
    runtime_conn.rollback()
    _assert_clean(runtime_conn)

    db.as_user(admin, None)(runtime_conn)
    with pytest.raises(psycopg.errors.DivisionByZero):
        runtime_conn.execute("SELECT 1 / 0")
    runtime_conn.rollback()
    _assert_clean(runtime_conn)

    with pytest.raises(psycopg.Error) as err:  # refused: nothing was set at all
        db.as_user(admin, "learner")(runtime_conn)
    assert err.value.sqlstate == "MS403"
    runtime_conn.rollback()
    _assert_clean(runtime_conn)


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


CONDITIONS = ("Filter", "Index Cond", "Recheck Cond", "Join Filter", "Hash Cond", "One-Time Filter")
GRANTED = (
    "organizations", "users", "user_tombstones", "analytics", "gamification", "points_ledger",
    "learning_events", "reports", "report_links", "aggregated_analytics", "trainer_assignments", "skill_targets",
)


@pytest.mark.parametrize("role", ["trainer", "admin"])
def test_policies_read_the_settings_once_per_statement(runtime_conn: psycopg.Connection, org: Org, role: str) -> None:
    db.as_user(org.users[role], None)(runtime_conn)
    statements = [f"SELECT * FROM {t}" for t in GRANTED] + [
        "UPDATE analytics SET data = data",
        "DELETE FROM analytics",
        "UPDATE users SET name = name",
    ]
    try:
        for statement in statements:
            row = runtime_conn.execute(f"EXPLAIN (FORMAT JSON) {statement}").fetchone()  # type: ignore[arg-type]
            assert row is not None
            doc = row[0] if isinstance(row[0], list) else json.loads(row[0])
            nodes = list(_plan_nodes(doc[0]["Plan"]))
            init_plans = [n for n in nodes if n.get("Parent Relationship") == "InitPlan"]
            conditions = " ".join(str(n[c]) for n in nodes for c in CONDITIONS if c in n)
            # Per-row expressions compare with the InitPlans' results, never call the settings.
            assert init_plans, statement
            assert "(InitPlan " in conditions, statement
            assert "current_setting" not in conditions, statement
            assert "app.current_" not in conditions, statement
    finally:
        runtime_conn.rollback()


def round_trips(conn: psycopg.Connection, action: Callable[[], object]) -> tuple[int, list[str], Exception | None]:
    """Run `action` under a libpq protocol trace. Returns how many times the client waited for
    the server (a run of messages sent followed by messages received), the statements sent, and
    the database error the action raised, if any."""
    error: Exception | None = None
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            action()
        except psycopg.Error as exc:
            error = exc
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        lines = [line.split("\t") for line in trace.read().splitlines() if line.strip()]
    # A round trip ends where the client waits for the server: at each Sync it sends (extended
    # protocol) and each simple Query. Counting those, not the interleaving of the trace lines,
    # keeps the count exact when a busy machine delivers a reply in pieces.
    waits = sum(1 for fields in lines if fields[0] == "F" and fields[2] in ("Sync", "Query"))
    sent = [fields[3].split('"')[3] for fields in lines if fields[0] == "F" and fields[2] == "Parse"]
    sent += [fields[3].strip().strip('"') for fields in lines if fields[0] == "F" and fields[2] == "Query"]
    return waits, sent, error


def _seed_context(conn: psycopg.Connection, user_id: UUID, org_id: UUID, role: str) -> None:
    """The seed's way: three set_config statements, each its own round trip."""
    for name, value in (("app.current_user_id", str(user_id)), ("app.current_org_id", str(org_id)),
                        ("app.current_role", role)):
        conn.execute("SELECT set_config(%s, %s, true)", (name, value))


def test_setting_the_context_is_one_round_trip(
    runtime_conn: psycopg.Connection, org: Org, clients: dict[str, str]
) -> None:
    learner = org.users["learner"]
    # The counter tells round trips apart: the seed's pattern takes four (BEGIN and three calls).
    waits, _, error = round_trips(runtime_conn, lambda: _seed_context(runtime_conn, learner, org.id, "learner"))
    assert (waits, error) == (4, None)
    runtime_conn.rollback()

    waits, sent, error = round_trips(runtime_conn, lambda: db.as_user(learner, None)(runtime_conn))
    assert (waits, sent, error) == (1, [db._BEGIN, "SELECT * FROM app.begin_request($1, $2)"], None)
    assert _visible_as(runtime_conn) == (str(learner), 1)
    runtime_conn.rollback()

    waits, sent, error = round_trips(
        runtime_conn, lambda: db.as_service(clients["ingest"], "ingest", org.id)(runtime_conn)
    )
    assert (waits, sent, error) == (1, [db._BEGIN, "SELECT app.begin_service_request($1, $2, $3)"], None)
    runtime_conn.rollback()

    # A refusal is answered in that same round trip and leaves nothing behind.
    waits, _, error = round_trips(runtime_conn, lambda: db.as_user(learner, "trainer")(runtime_conn))
    assert waits == 1
    assert error is not None and error.sqlstate == "MS403"
    runtime_conn.rollback()
    _assert_clean(runtime_conn)

    # Inside a transaction the caller already opened, only the call is sent.
    runtime_conn.execute("BEGIN")
    waits, sent, error = round_trips(runtime_conn, lambda: db.as_user(learner, None)(runtime_conn))
    assert (waits, sent, error) == (1, ["SELECT * FROM app.begin_request($1, $2)"], None)
    runtime_conn.rollback()
