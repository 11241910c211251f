"""ms8.repositories.analytics: the batch upsert is atomic and loses no concurrent update; recent()
and summary() read what they should, as the runtime role."""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pydantic
import pytest

from ms8 import db
from ms8.errors import Forbidden, Unavailable, Unprocessable
from ms8.repositories import analytics as repo
from ms8.repositories.analytics import SnapshotWrite
from ms8.schemas.analytics import AnalyticsBatch
from tests.support.factories import Factory, Org

TYPES = ("learning_velocity", "engagement", "mastery", "skill_gap")


def _writes(caller: db.UserCaller, batch: AnalyticsBatch) -> list[SnapshotWrite]:
    """The caller's own rows for a validated batch (what the PUT handler writes for a user)."""
    return [
        SnapshotWrite(caller.user_id, caller.organization_id, caller.active_role, i.analytics_type, i.data)
        for i in batch.items
    ]


def _snapshot(user_id: UUID, role: str = "learner") -> dict[str, tuple[int, dict[str, Any]]]:
    """type -> (version, data) of a user's rows for a role, read as that user."""
    with db.runtime.transaction(db.as_user(user_id, role)) as (conn, _):
        return {a.analytics_type: (a.version, a.data) for a in repo.recent(conn, user_id, role, None, 100)}


@pytest.fixture
def org(factory: Factory) -> Org:
    org = factory.org(ann=["learner"], bea=["learner"], both=["learner", "trainer"])
    factory.analytics(org.id, org.users["ann"], "learner", "mastery", {"mastery": 0.4})
    return org


def test_batch_the_model_rejects_writes_nothing(org: Org) -> None:
    ann = org.users["ann"]
    payloads: list[list[dict[str, Any]]] = [
        [{"analyticsType": "mastery", "data": {"mastery": 0.9}}, {"analyticsType": "bogus", "data": {}}],
        [{"analyticsType": "mastery", "data": {"mastery": 0.9}}, {"analyticsType": "engagement", "data": [1]}],
        [{"analyticsType": "mastery", "data": {"mastery": 0.9}}, {"analyticsType": "mastery", "data": {}}],
        [{"analyticsType": "mastery", "data": {"mastery": 0.9}}, {"analyticsType": "engagement", "data": {},
                                                                  "extra": 1}],
    ]
    before = _snapshot(ann)
    for items in payloads:
        with pytest.raises(pydantic.ValidationError) as err:
            with db.runtime.transaction(db.as_user(ann, None)) as (conn, caller):
                repo.upsert_batch(conn, _writes(caller, AnalyticsBatch.model_validate({"items": items})))
        assert "items" in str(err.value)
        assert _snapshot(ann) == before == {"mastery": (1, {"mastery": 0.4})}
    with pytest.raises(pydantic.ValidationError):
        AnalyticsBatch.model_validate({"items": [{"analyticsType": "mastery", "data": {}}] * 501})


def _bad_row(org: Org, case: str) -> tuple[SnapshotWrite, type[Exception]]:
    """A row the database refuses, and the error the request then raises."""
    ann, org_id = org.users["ann"], org.id
    return {
        "check: data not an object": (SnapshotWrite(ann, org_id, "learner", "skill_gap", [0.1]), Unprocessable),
        "check: unknown type": (SnapshotWrite(ann, org_id, "learner", "zeal", {"zeal": 1}), Unprocessable),
        "rls: another user's row": (SnapshotWrite(org.users["bea"], org_id, "learner", "skill_gap", {}), Forbidden),
        "rls: a role not active": (SnapshotWrite(ann, org_id, "trainer", "skill_gap", {}), Forbidden),
        "rls: another organization": (SnapshotWrite(ann, uuid.uuid4(), "learner", "skill_gap", {}), Forbidden),
        # The model refuses repeated keys; the statement refuses them too (ON CONFLICT twice).
        "repeated key": (SnapshotWrite(ann, org_id, "learner", "mastery", {"mastery": 0.1}),
                         psycopg.errors.CardinalityViolation),
    }[case]


@pytest.mark.parametrize("case", [
    "check: data not an object", "check: unknown type", "rls: another user's row", "rls: a role not active",
    "rls: another organization", "repeated key",
])
def test_batch_the_database_refuses_writes_nothing(org: Org, case: str) -> None:
    ann = org.users["ann"]
    bad, expected = _bad_row(org, case)
    # Rows are written in key order: for ann's own rows the update and the insert come first.
    good = [
        SnapshotWrite(ann, org.id, "learner", "mastery", {"mastery": 0.9}),
        SnapshotWrite(ann, org.id, "learner", "engagement", {"engagement": 0.5}),
    ]
    with pytest.raises(expected):
        with db.runtime.transaction(db.as_user(ann, None)) as (conn, _):
            repo.upsert_batch(conn, [*good, bad])
    assert _snapshot(ann) == {"mastery": (1, {"mastery": 0.4})}
    assert _snapshot(org.users["bea"]) == {}


def test_upsert_inserts_then_bumps_the_version(org: Org) -> None:
    ann = org.users["ann"]
    with db.runtime.transaction(db.as_user(ann, None)) as (conn, caller):
        batch = AnalyticsBatch.model_validate({"items": [
            {"analyticsType": t, "data": {"n": i}} for i, t in enumerate(TYPES)
        ]})
        written = repo.upsert_batch(conn, _writes(caller, batch))
    assert sorted((w.analytics_type, w.version) for w in written) == [
        ("engagement", 1), ("learning_velocity", 1), ("mastery", 2), ("skill_gap", 1)]
    assert all(w.user_id == ann and w.role == "learner" for w in written)
    assert _snapshot(ann)["mastery"] == (2, {"n": 2})
    with db.runtime.transaction(db.as_user(ann, None)) as (conn, _):
        assert repo.upsert_batch(conn, []) == []


THREADS = 8
ROUNDS = 6


def test_concurrent_upserts_lose_no_update_and_never_deadlock(factory: Factory) -> None:
    users = [f"u{i}" for i in range(25)]
    org = factory.org("Concurrent", **{u: ["learner"] for u in users})
    client = factory.service_client(f"upsert-ingest-{uuid.uuid4().hex}", ["ingest"], org.id)
    keys = [(org.users[u], t) for u in users for t in TYPES]
    barrier = threading.Barrier(THREADS)
    seen: dict[tuple[UUID, str], list[int]] = defaultdict(list)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        database = db.Database("runtime")  # its own connection, as a separate Lambda container
        rnd = random.Random(n)
        try:
            barrier.wait(timeout=30)
            for r in range(ROUNDS):
                order = keys[:]
                rnd.shuffle(order)
                rows = [SnapshotWrite(u, org.id, "learner", t, {"thread": n, "round": r}) for u, t in order]
                with database.transaction(db.as_service(client, "ingest", org.id)) as (conn, _):
                    written = repo.upsert_batch(conn, rows)
                with lock:
                    for w in written:
                        seen[(w.user_id, w.analytics_type)].append(w.version)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            database.reset()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    total = THREADS * ROUNDS
    # Every upsert of a key saw a distinct version, 1..total: none was lost or applied twice.
    assert {k: sorted(v) for k, v in seen.items()} == {k: list(range(1, total + 1)) for k in keys}
    rows = factory.sql(
        "SELECT analytics_type, version, data FROM analytics WHERE organization_id = %s", (org.id,)
    )
    assert len(rows) == len(keys)
    assert {version for _, version, _ in rows} == {total}
    assert all(set(data) == {"thread", "round"} for *_, data in rows)


def _impatient_write(user_id: UUID, rows: list[SnapshotWrite]) -> None:
    with db.runtime.transaction(db.as_user(user_id, None)) as (conn, _):
        conn.execute("SELECT set_config('lock_timeout', '50ms', true)")
        repo.upsert_batch(conn, rows)


def test_a_write_blocked_by_another_is_a_retry_and_keeps_the_connection(factory: Factory, runtime_url: str) -> None:
    org = factory.org("Blocked", ann=["learner"])
    ann = org.users["ann"]
    factory.analytics(org.id, ann, "learner", "mastery", {"mastery": 0.1})
    row = [SnapshotWrite(ann, org.id, "learner", "mastery", {"mastery": 0.2})]
    with psycopg.connect(runtime_url, prepare_threshold=None) as holder:
        db.as_user(ann, None)(holder)
        repo.upsert_batch(holder, row)  # holds the row lock until rollback
        conn = db.runtime.connection()
        with pytest.raises(Unavailable) as err:
            _impatient_write(ann, row)
        assert err.value.code == "RETRY"
        assert db.runtime.connection() is conn  # a lock conflict is no lost connection
        holder.rollback()
    with db.runtime.transaction(db.as_user(ann, None)) as (again, _):
        assert again is conn
        assert [w.version for w in repo.upsert_batch(again, row)] == [2]


@pytest.fixture
def history(factory: Factory) -> Org:
    """ann has four learner rows (mastery newest) and two as a trainer; bea has one."""
    org = factory.org(ann=["learner", "trainer"], bea=["learner"])
    base = datetime.now(UTC) - timedelta(hours=1)

    def at(minutes: int) -> str:
        return (base + timedelta(minutes=minutes)).isoformat()

    ann = org.users["ann"]
    for minutes, t in enumerate(("skill_gap", "engagement", "learning_velocity", "mastery")):
        factory.analytics(org.id, ann, "learner", t, {"order": minutes}, updated_at=at(minutes))
    factory.analytics(org.id, ann, "trainer", "mastery", {"order": 10}, updated_at=at(10))
    factory.analytics(org.id, ann, "trainer", "engagement", {"order": 11})
    factory.analytics(org.id, org.users["bea"], "learner", "mastery", {"order": 20})
    return org


def test_recent_limit_order_type_and_role(history: Org) -> None:
    ann, bea = history.users["ann"], history.users["bea"]
    with db.runtime.transaction(db.as_user(ann, "learner")) as (conn, _):
        rows = repo.recent(conn, ann, "learner", None, 10)
        assert [r.analytics_type for r in rows] == ["mastery", "learning_velocity", "engagement", "skill_gap"]
        assert [r.data for r in rows] == [{"order": 3}, {"order": 2}, {"order": 1}, {"order": 0}]
        assert all(r.user_id == ann and r.role == "learner" and r.version == 1 for r in rows)
        assert [r.analytics_type for r in repo.recent(conn, ann, "learner", None, 2)] == [
            "mastery", "learning_velocity"]
        assert [r.analytics_type for r in repo.recent(conn, ann, "learner", "engagement", 10)] == ["engagement"]
        assert [r.data for r in repo.recent(conn, ann, "trainer", None, 10)] == [{"order": 11}, {"order": 10}]
        assert repo.recent(conn, bea, "learner", None, 10) == []  # RLS: not ann's to see
        assert [r.analytics_type for r in repo.recent_any_role(conn, ann, 3)] == [
            "engagement", "mastery", "mastery"]


class _Counting:
    """Counts the statements a repository function sends through `execute`."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def execute(self, query: str, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        self.statements.append(query)
        return self.conn.execute(query, params)


def test_summary_is_count_and_latest_in_one_statement(history: Org) -> None:
    ann, bea = history.users["ann"], history.users["bea"]
    with db.runtime.transaction(db.as_user(ann, "learner")) as (conn, _):
        counting = _Counting(conn)
        count, latest = repo.summary(counting, ann, "learner")
        assert len(counting.statements) == 1
        assert count == 4
        assert latest is not None and (latest.analytics_type, latest.data) == ("mastery", {"order": 3})
        count, latest = repo.summary(conn, ann, "trainer")
        assert (count, latest is not None and latest.data) == (2, {"order": 11})
        assert repo.summary(conn, bea, "learner") == (0, None)  # RLS
        assert repo.summary(conn, ann, "org_admin") == (0, None)  # no rows for that role
