"""A platform's batch of learning events in one statement (migration 0022,
ms8.repositories.events.insert_batch_as_service), as the runtime role: one round trip, all or
nothing, the client's organization only, the same rows as the statement in a service's
transaction, and no context left behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from ms8 import db
from ms8.repositories import events as repo
from tests.support.clients import refused_client, refused_clients
from tests.support.factories import Factory, Org

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def org(factory: Factory) -> Org:
    return factory.org("Mine", ann=["learner"], bea=["learner"])


@pytest.fixture
def client(factory: Factory, org: Org) -> str:
    return factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], org.id)


@pytest.fixture
def runtime_db() -> Any:
    runtime = db.Database("runtime")
    yield runtime
    runtime.reset()


def _event(user: UUID, verb: str = "passed", *, skills: tuple[str, ...] = ("sql", "python"), score: float | None = 0.75,
           hours_ago: int = 1) -> repo.NewEvent:
    return repo.NewEvent(uuid.uuid4(), user, verb, "course-1", "course", skills, score, verb == "passed",
                         600 if verb == "session" else None, NOW - timedelta(hours=hours_ago))


def _state(factory: Factory, *orgs: Org) -> dict[str, Any]:
    """Everything a batch writes: events, learner days, learners noted."""
    ids = [o.id for o in orgs]
    return {
        "events": sorted(factory.sql(
            "SELECT event_id, user_id, verb, object_id, object_type, skills, score, success, duration_seconds, "
            "occurred_at, sent_by_learner FROM learning_events WHERE organization_id = ANY(%s)", (ids,))),
        "days": sorted(factory.sql(
            "SELECT user_id, day, events, completions, completed_objects, assessments, scored, score_micros, passed, "
            "duration_seconds, sessions, skills, last_at, quarters, weighted_scores, weights, weighted_skills "
            "FROM learner_daily_activity WHERE organization_id = ANY(%s)", (ids,))),
        "noted": sorted(factory.sql(
            "SELECT user_id, occurred_from FROM analytics_pending WHERE organization_id = ANY(%s)", (ids,))),
    }


def test_the_code_s_statement_is_the_function_s(factory: Factory) -> None:
    """The function runs exactly the statement the code builds (ms8.repositories.events): a change
    to the insert, the learner days or the noting needs a migration installing it again."""
    [(source,)] = factory.sql("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)",
                              ("app.request_service_ingest(text, text, uuid, "
                               + ", ".join(t for _, t in repo.PLATFORM_ARGS) + ")",))
    assert repo.PLATFORM_STATEMENT.strip() in source
    [(config,)] = factory.sql("SELECT proconfig FROM pg_proc WHERE proname = 'request_service_ingest'")
    assert "lock_timeout=15s" in config  # the request's statement_timeout cannot cover the call itself


def test_one_round_trip_writes_what_the_statement_in_a_transaction_writes(
    factory: Factory, org: Org, client: str, runtime_db: db.Database, tmp_path: Path
) -> None:
    ann, bea = org.users["ann"], org.users["bea"]
    # Two organizations alike: one written by the function, the other by insert_batch in a
    # service's transaction; the same batch (each one's users) gives the same rows.
    twin = factory.org("Twin", ann=["learner"], bea=["learner"])
    twin_client = factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], twin.id)
    shapes = [("passed", ("sql", "python"), 0.75, 1), ("failed", ("sql",), 0.25, 2), ("completed", (), None, 3),
              ("session", (), None, 30), ("attempted", ("python",), 0.5, 30)]
    for first in (True, False):  # the second batch adds to the days the first wrote
        mine = [_event(u, v, skills=s, score=sc, hours_ago=h + (0 if first else 5))
                for u in (ann, bea) for v, s, sc, h in shapes]
        theirs = [r._replace(user_id=twin.users["ann"] if r.user_id == ann else twin.users["bea"]) for r in mine]
        conn = runtime_db.connection()
        trace = tmp_path / "trace"
        with trace.open("w") as f:
            conn.pgconn.trace(f.fileno())
            stored = repo.insert_batch_as_service(conn, client, "ingest", None, mine)
            conn.pgconn.untrace()
        sent = [line.split("\t")[3] for line in trace.read_text().splitlines() if "\tF\t" in line]
        assert sent.count("Sync") == 1 and "Query" not in sent, sent  # one round trip, no BEGIN or COMMIT of its own
        assert stored == mine
        with runtime_db.transaction(db.as_service(twin_client, "ingest", None)) as (tconn, _):
            assert repo.insert_batch(tconn, twin.id, theirs, note=True) == theirs
    # The statement was its own transaction: committed, and the context ended with it.
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.execute("SELECT app.current_org_id(), app.current_role()").fetchone() == (None, None)
    got, want = _state(factory, org), _state(factory, twin)
    rename = {twin.users["ann"]: ann, twin.users["bea"]: bea}
    want["days"] = sorted((rename[r[0]], *r[1:]) for r in want["days"])
    want["noted"] = sorted((rename[r[0]], *r[1:]) for r in want["noted"])
    want["events"] = sorted((r[0], rename[r[1]], *r[2:]) for r in want["events"])
    assert got["events"] == want["events"]
    assert got["days"] == want["days"] and len(got["days"]) >= 4
    assert got["noted"] == want["noted"] and len(got["noted"]) == 2
    assert len(got["events"]) == 20 and not any(r[-1] for r in got["events"])  # a platform's, not the learner's own


def test_a_replay_stores_nothing_and_answers_the_new_ones(
    factory: Factory, org: Org, client: str, runtime_db: db.Database
) -> None:
    ann = org.users["ann"]
    first = [_event(ann), _event(ann, "completed", score=None)]
    conn = runtime_db.connection()
    assert repo.insert_batch_as_service(conn, client, "ingest", None, first) == first
    days_before = _state(factory, org)["days"]
    again = [*first, _event(ann, "failed", score=0.5), first[0]]  # stored ones, a new one, one sent twice
    assert repo.insert_batch_as_service(conn, client, "ingest", None, again) == [again[2]]
    state = _state(factory, org)
    assert len(state["events"]) == 3
    [(events, scored)] = [(r[2], r[6]) for r in state["days"]]
    assert (events, scored) == (days_before[0][2] + 1, days_before[0][6] + 1)  # only the new event added


def test_users_of_another_organization_are_refused_and_nothing_is_written(
    factory: Factory, org: Org, client: str, runtime_db: db.Database
) -> None:
    other = factory.org("Theirs", xavier=["learner"])
    conn = runtime_db.connection()
    before = _state(factory, org, other)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        repo.insert_batch_as_service(conn, client, "ingest", None, [_event(org.users["ann"]),
                                                                     _event(other.users["xavier"])])
    assert _state(factory, org, other) == before


@refused_clients
def test_the_client_is_checked_as_for_any_request(
    factory: Factory, org: Org, runtime_db: db.Database, scopes: list[str] | None, bound: bool, named: bool,
    sqlstate: str,
) -> None:
    client, organization = refused_client(factory, org.id, scopes, bound, named)
    with pytest.raises(psycopg.Error) as caught:
        repo.insert_batch_as_service(runtime_db.connection(), client, "ingest", organization,
                                     [_event(org.users["ann"])])
    assert caught.value.sqlstate == sqlstate
    assert _state(factory, org) == {"events": [], "days": [], "noted": []}


def test_a_platform_wide_client_writes_where_it_names(factory: Factory, org: Org, runtime_db: db.Database) -> None:
    client = factory.service_client(f"wide-{uuid.uuid4().hex[:8]}", ["ingest"], None)
    rows = [_event(org.users["bea"])]
    assert repo.insert_batch_as_service(runtime_db.connection(), client, "ingest", org.id, rows) == rows
    assert [r[1] for r in _state(factory, org)["events"]] == [org.users["bea"]]
