"""The hot reads (migrations 0011 and 0016): one call of one function that sets the context and reads,
RLS still the confinement."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from ms8 import db
from ms8.errors import Forbidden
from ms8.repositories import analytics, users
from tests.support.factories import Factory


def test_read_functions_are_security_invoker(owner_conn: psycopg.Connection) -> None:
    rows = owner_conn.execute(
        "SELECT p.proname, p.prosecdef FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'app' AND (p.proname LIKE 'read\\_%' OR p.proname LIKE 'request\\_%')"
    ).fetchall()
    assert len(rows) >= 14
    assert [name for name, definer in rows if definer] == []


def test_one_statement_reads_own_rows_and_leaves_no_context(factory: Factory, tmp_path: Path) -> None:
    org = factory.org(alice=["learner"], bob=["learner"])
    alice, bob = org.users["alice"], org.users["bob"]
    factory.analytics(org.id, alice, "learner", "mastery", {"mastery": 0.5})
    factory.analytics(org.id, bob, "learner", "mastery", {"mastery": 0.9})
    database = db.Database("runtime")
    try:
        conn = database.connection()
        trace = tmp_path / "trace"
        with trace.open("w") as f:
            conn.pgconn.trace(f.fileno())  # libpq's protocol trace: every message the client sent
            caller, rows = db.read_as_user(database, alice, None, analytics.READ_RECENT, (None, 10))
            conn.pgconn.untrace()
        sent = [line.split("\t")[3] for line in trace.read_text().splitlines() if "\tF\t" in line]
        assert sent == ["Query"], sent  # one simple-protocol message: nothing to parse apart, nothing prepared
        assert caller.user_id == alice and caller.active_role == "learner"
        assert [(a.user_id, a.data) for a in analytics.items(rows)] == [(alice, {"mastery": 0.5})]
        # The context lived only as long as that statement: the next one has none.
        assert conn.execute("SELECT app.current_user_id(), app.current_role()").fetchone() == (None, None)
        # Without a context the read function sees nothing (RLS applies inside it).
        assert conn.execute(
            "SELECT count(*) FROM app.read_analytics(%s, 'learner', NULL, 10)", (bob,)).fetchone() == (0,)
        # Asking for another user's rows through the function's arguments finds nothing either.
        assert conn.execute(
            "SELECT count(*) FROM app.begin_request(%s, NULL) c "
            "LEFT JOIN LATERAL app.read_analytics(%s, 'learner', NULL, 10) r ON true WHERE r.id IS NOT NULL",
            (alice, bob)).fetchone() == (0,)
        _, me = db.read_as_user(database, bob, None, users.READ_ME)
        assert [dict(zip(users.ME_KEYS, r, strict=True))["id"] for r in me] == [bob]
    finally:
        database.reset()


def test_context_errors_map_to_client_errors(factory: Factory) -> None:
    org = factory.org(tom=["trainer", "learner"])
    database = db.Database("runtime")
    try:
        with pytest.raises(Forbidden):
            db.read_as_user(database, org.users["tom"], "org_admin", users.READ_ME)
        _, rows = db.read_as_user(database, org.users["tom"], "trainer", users.READ_ME)
        assert len(rows) == 1
    finally:
        database.reset()


def test_a_read_finding_nothing_still_names_the_caller(factory: Factory) -> None:
    org = factory.org(alice=["learner"])
    database = db.Database("runtime")
    try:
        caller, rows = db.read_as_user(database, org.users["alice"], None, analytics.READ_RECENT, ("mastery", 10))
        assert (caller.user_id, caller.organization_id, rows) == (org.users["alice"], org.id, [])
    finally:
        database.reset()


def test_values_bound_on_the_client_stay_values(factory: Factory) -> None:
    """The role and the type are quoted as literals: SQL in them is a role nobody holds."""
    org = factory.org(alice=["learner"])
    alice = org.users["alice"]
    factory.analytics(org.id, alice, "learner", "mastery", {"mastery": 0.5})
    database = db.Database("runtime")
    try:
        with pytest.raises(Forbidden) as refused:
            db.read_as_user(database, alice, "learner'); SELECT 1; --", users.READ_ME)
        assert refused.value.code == "ROLE_NOT_HELD"
        _, rows = db.read_as_user(database, alice, None, analytics.READ_RECENT, ("mastery' OR 'x'='x", 10))
        assert rows == []
        _, rows = db.read_as_user(database, alice, None, analytics.READ_RECENT, ("mastery", 10))
        assert len(rows) == 1
    finally:
        database.reset()
