"""A platform's analytics batch in one statement (migration 0019,
ms8.repositories.analytics.upsert_batch_as_service), as the runtime role: one round trip, all or
nothing, the client's organization only, and no context left behind."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from ms8 import db
from ms8.errors import DatabaseUnavailable
from ms8.repositories import analytics as repo
from tests.support.clients import refused_client, refused_clients
from tests.support.factories import Factory, Org


@pytest.fixture
def org(factory: Factory) -> Org:
    return factory.org("Mine", ann=["learner"], bea=["learner", "trainer"])


@pytest.fixture
def client(factory: Factory, org: Org) -> str:
    return factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], org.id)


@pytest.fixture
def runtime_db() -> Any:
    runtime = db.Database("runtime")
    yield runtime
    runtime.reset()


def _rows(factory: Factory, *orgs: Org) -> dict[tuple[UUID, str, str], tuple[int, dict[str, Any], str]]:
    found = factory.sql(
        "SELECT user_id, role, analytics_type, version, data, source FROM analytics WHERE organization_id = ANY(%s)",
        ([o.id for o in orgs],))
    return {(u, r, t): (v, d, s) for u, r, t, v, d, s in found}


def test_one_round_trip_writes_the_batch_and_leaves_no_context(
    factory: Factory, org: Org, client: str, runtime_db: db.Database, tmp_path: Path
) -> None:
    ann, bea = org.users["ann"], org.users["bea"]
    factory.analytics(org.id, ann, "learner", "mastery", {"mastery": 0.1})
    conn = runtime_db.connection()
    trace = tmp_path / "trace"
    with trace.open("w") as f:
        conn.pgconn.trace(f.fileno())
        counts = repo.upsert_batch_as_service(conn, client, "ingest", None, [
            (ann, "learner", "mastery", {"mastery": 0.7}),
            (bea, "trainer", "engagement", {"engagement": 0.2, "note": "é"}),
        ])
        conn.pgconn.untrace()
    assert counts == (1, 1)
    sent = [line.split("\t")[3] for line in trace.read_text().splitlines() if "\tF\t" in line]
    assert sent.count("Sync") == 1 and "Query" not in sent, sent  # one round trip, no BEGIN or COMMIT of its own
    assert _rows(factory, org) == {
        (ann, "learner", "mastery"): (2, {"mastery": 0.7}, "client"),
        (bea, "trainer", "engagement"): (1, {"engagement": 0.2, "note": "é"}, "client"),
    }
    # The statement was its own transaction: committed, and the context ended with it.
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.execute("SELECT app.current_org_id(), app.current_role()").fetchone() == (None, None)
    assert conn.execute("SELECT count(*) FROM analytics").fetchone() == (0,)


def test_users_of_another_organization_are_refused_and_nothing_is_written(
    factory: Factory, org: Org, client: str, runtime_db: db.Database
) -> None:
    other = factory.org("Theirs", xavier=["learner"], yves=["learner"])
    factory.analytics(other.id, other.users["yves"], "learner", "mastery", {"mastery": 0.3})
    before = _rows(factory, org, other)
    conn = runtime_db.connection()
    # xavier has no row: the foreign key (organization, user) refuses him; yves has one: RLS
    # refuses to update a row of another organization.
    for stranger, error in ((other.users["xavier"], psycopg.errors.ForeignKeyViolation),
                            (other.users["yves"], psycopg.errors.InsufficientPrivilege)):
        with pytest.raises(error):
            repo.upsert_batch_as_service(conn, client, "ingest", None, [
                (org.users["ann"], "learner", "mastery", {"mastery": 0.5}),
                (stranger, "learner", "mastery", {"mastery": 0.9}),
            ])
    assert _rows(factory, org, other) == before


@refused_clients
def test_the_client_is_checked_as_for_any_request(
    factory: Factory, org: Org, runtime_db: db.Database, scopes: list[str] | None, bound: bool, named: bool,
    sqlstate: str,
) -> None:
    client, organization = refused_client(factory, org.id, scopes, bound, named)
    with pytest.raises(psycopg.Error) as caught:
        repo.upsert_batch_as_service(runtime_db.connection(), client, "ingest", organization,
                                     [(org.users["ann"], "learner", "mastery", {"mastery": 0.5})])
    assert caught.value.sqlstate == sqlstate
    assert _rows(factory, org) == {}


def test_a_platform_wide_client_writes_where_it_names(factory: Factory, org: Org, runtime_db: db.Database) -> None:
    client = factory.service_client(f"wide-{uuid.uuid4().hex[:8]}", ["ingest"], None)
    assert repo.upsert_batch_as_service(runtime_db.connection(), client, "ingest", org.id,
                                        [(org.users["bea"], "learner", "skill_gap", {"gap": 0.4})]) == (1, 0)
    assert _rows(factory, org) == {(org.users["bea"], "learner", "skill_gap"): (1, {"gap": 0.4}, "client")}


def test_a_connection_closed_while_idle_is_replaced_before_the_write(
    factory: Factory, org: Org, client: str, runtime_db: db.Database, runtime_url: str
) -> None:
    """The server (or a proxy) closed the idle connection: seen before sending, so the write goes
    out once, on a new connection."""
    ann = org.users["ann"]
    first = runtime_db.connection()
    pid = first.info.backend_pid
    with psycopg.connect(runtime_url, autocommit=True) as other:  # a role may end its own sessions
        assert other.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    for _ in range(50):  # the termination notice reaches the socket
        if db._closed_while_idle(first):
            break
        time.sleep(0.02)
    assert db._closed_while_idle(first)
    calls: list[int] = []

    def work(conn: psycopg.Connection) -> tuple[int, int]:
        calls.append(conn.info.backend_pid)
        return repo.upsert_batch_as_service(conn, client, "ingest", None,
                                            [(ann, "learner", "mastery", {"mastery": 0.4})])

    assert runtime_db.run(work, replay=False) == (1, 0)
    assert len(calls) == 1 and calls[0] != pid
    assert _rows(factory, org) == {(ann, "learner", "mastery"): (1, {"mastery": 0.4}, "client")}
    assert not db._closed_while_idle(runtime_db.connection())  # a healthy idle connection


def test_a_write_whose_connection_is_lost_is_not_sent_again(
    factory: Factory, org: Org, client: str, runtime_db: db.Database
) -> None:
    """Lost while it ran, the write may have committed: it answers 503 and is never replayed (a
    read would be: test_db's stale-connection tests)."""
    ann = org.users["ann"]
    calls: list[int] = []

    def work(conn: psycopg.Connection) -> tuple[int, int]:
        calls.append(1)
        counts = repo.upsert_batch_as_service(conn, client, "ingest", None,
                                              [(ann, "learner", "mastery", {"mastery": 0.5})])
        assert counts == (1, 0) or counts == (0, 1)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    with pytest.raises(DatabaseUnavailable):
        runtime_db.run(work, replay=False)
    assert calls == [1]
    assert _rows(factory, org) == {(ann, "learner", "mastery"): (1, {"mastery": 0.5}, "client")}  # written once
    calls.clear()
    with pytest.raises(DatabaseUnavailable):
        runtime_db.run(work)  # the same with replay (reads): sent a second time
    assert calls == [1, 1]


def test_the_function_bounds_its_own_lock_waits(factory: Factory) -> None:
    """The request's statement_timeout, set inside the statement, cannot cover the statement itself:
    the function carries a lock_timeout of its own."""
    [(config,)] = factory.sql("SELECT proconfig FROM pg_proc WHERE oid = to_regprocedure("
                              "'app.request_service_upsert_analytics(text, text, uuid, jsonb)')")
    assert "lock_timeout=15s" in config
