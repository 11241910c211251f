"""Lag-tolerant reads on a real streaming replica of the local PostgreSQL, and the writer while
the replica is down (ms8.db.reader)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from local import localdb
from ms8 import config, db
from ms8.errors import Unprocessable
from ms8.repositories import comparison, gamification
from tests.support.api import call
from tests.support.factories import Factory


@pytest.fixture(scope="module")
def replica_port(database: str) -> Iterator[int]:
    port = localdb.start_replica()
    try:
        yield port
    finally:
        localdb.stop_replica()


@pytest.fixture
def reader_env(replica_port: int, database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """DATABASE_READER_URL at the replica, retried at once after a failure."""
    monkeypatch.setenv("DATABASE_READER_URL", localdb.runtime_url(database, port=replica_port))
    monkeypatch.setenv("DB_READER_RETRY", "0")
    config.settings.cache_clear()
    db.reset_reader()
    yield replica_port
    monkeypatch.delenv("DATABASE_READER_URL")
    monkeypatch.delenv("DB_READER_RETRY")
    config.settings.cache_clear()
    db.reset_reader()


def _on_replica() -> bool:
    reader = db.reader()
    assert isinstance(reader, db.ReaderDatabase)
    row = reader.connection().execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def _peers(factory: Factory) -> tuple[UUID, list[UUID]]:
    org = factory.org()
    learners = [factory.user(org.id, ["learner"], name=f"peer {i}") for i in range(12)]
    for i, user in enumerate(learners):
        factory.analytics(org.id, user, "learner", "mastery", {"mastery": i / 20})
        factory.sql("INSERT INTO gamification (user_id, organization_id, role, points) VALUES (%s, %s, 'learner', %s)",
                    (user, org.id, 10 * (i + 1)))
    factory.refresh_comparison()
    return org.id, learners


def test_lag_tolerant_routes_read_the_replica_with_rls(factory: Factory, reader_env: int) -> None:
    _, learners = _peers(factory)
    localdb.replica_caught_up(reader_env)
    r = call("GET", "/v1/comparison", sub=learners[3], query={"type": "mastery"})
    assert r.status == 200, r.body
    assert _on_replica()
    item = r.body["items"][0]
    assert item["available"] and item["peers"]["userCount"] == 12 and item["yourValue"] == 0.15
    r = call("GET", "/v1/leaderboard", sub=learners[3], query={"limit": "3"})
    assert r.status == 200, r.body
    assert [e["points"] for e in r.body["items"]] == [120, 110, 100]
    assert r.body["you"]["points"] == 40 and r.body["you"]["isYou"]
    # The context works on the standby and confines as on the writer: one user's own rows only.
    caller, rows = db.read_as_user(db.reader(), learners[5], None, gamification.READ_OWN)
    assert caller.user_id == learners[5] and [row[0] for row in rows] == [60]
    _, rows = db.read_as_user(db.reader(), learners[5], None, comparison.READ, ("mastery",))
    assert comparison.split(rows)[0] == {"mastery": {"mastery": 0.25}}


def test_writes_never_reach_the_reader(factory: Factory, reader_env: int, s3: Any) -> None:
    org = factory.org(ann=["learner"])
    localdb.replica_caught_up(reader_env)
    with pytest.raises((psycopg.errors.ReadOnlySqlTransaction, Unprocessable)), \
            db.reader().transaction(db.as_user(org.users["ann"], None)) as (conn, _):
        conn.execute("INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
                     "VALUES (%s, %s, 'learner', 'mastery', '{}')", (org.users["ann"], org.id))
    # Writes through the API still land on the writer while the reader is configured.
    r = call("PUT", "/v1/analytics", sub=org.users["ann"],
             body={"items": [{"analyticsType": "mastery", "data": {"mastery": 0.7}}]})
    assert r.status == 200 and r.body["written"] == 1
    assert factory.sql("SELECT count(*) FROM analytics WHERE user_id = %s", (org.users["ann"],)) == [(1,)]
    # A report: its data gathered on the replica, its row written on the writer.
    localdb.replica_caught_up(reader_env)
    r = call("POST", "/v1/reports", sub=org.users["ann"],
             body={"format": "json", "from": "2026-11-01", "to": "2026-11-30"})
    assert r.status == 201, r.body
    assert factory.sql("SELECT status FROM reports WHERE id = %s", (r.body["id"],)) == [("ready",)]


def test_replica_down_falls_back_to_the_writer(factory: Factory, reader_env: int) -> None:
    org, learners = _peers(factory)
    localdb.replica_caught_up(reader_env)
    assert call("GET", "/v1/comparison", sub=learners[0]).status == 200
    assert _on_replica()
    admin = factory.user(org, ["org_admin"], name="admin")
    localdb.replica_caught_up(reader_env)
    assert call("GET", "/v1/aggregates", sub=admin).status == 200  # a transaction on the replica
    localdb.stop_replica()
    try:
        # The reader's open connection is dead now: the transaction falls back to the writer.
        r = call("GET", "/v1/aggregates", sub=admin)
        assert r.status == 200, r.body
        for path in ("/v1/comparison", "/v1/leaderboard"):
            r = call("GET", path, sub=learners[0])
            assert r.status == 200, r.body  # answered by the writer
        # Written after the replica went down: only the writer has it, and the answer shows it.
        factory.sql("UPDATE gamification SET points = 4321 WHERE user_id = %s", (learners[0],))
        r = call("GET", "/v1/leaderboard", sub=learners[0], query={"limit": "1"})
        assert r.body["items"][0]["points"] == 4321
    finally:
        localdb.resume_replica(reader_env)
    localdb.replica_caught_up(reader_env)
    assert call("GET", "/v1/comparison", sub=learners[0]).status == 200
    assert _on_replica()  # back on the replica once it is up (DB_READER_RETRY=0 here)
