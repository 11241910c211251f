"""Stale analytics: which users the job selects, in chunks, and what it hands on; then the
whole job with `ms8.services.analytics_refresh.recompute_users`.

Most tests put a recording stand-in in place of the recomputation, so that the job's own part
(selection, chunks, cap) is what is under test; the last one runs the real thing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ms8 import db
from ms8.repositories import maintenance
from tests.support.jobs import PerThreadDatabase, lambda_context, load_handler, run_concurrently, scratch_database, sql

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Population:
    url: str
    users: dict[str, UUID]


def _snapshot(url: str, user: UUID, org: UUID, kind: str, source: str, updated_at: datetime) -> None:
    sql(url, "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data, source) "
             "VALUES (%s, %s, 'learner', %s, %s, %s)", (user, org, kind, Jsonb({"x": 1}), source))
    # updated_at is kept by a trigger; set the past explicitly without it.
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        conn.execute("ALTER TABLE analytics DISABLE TRIGGER analytics_updated_at")
        conn.execute("UPDATE analytics SET updated_at = %s WHERE user_id = %s AND analytics_type = %s",
                     (updated_at, user, kind))
        conn.execute("ALTER TABLE analytics ENABLE TRIGGER analytics_updated_at")


def _event(url: str, user: UUID, org: UUID, received_at: datetime) -> None:
    sql(url, "INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, "
             "occurred_at, received_at) VALUES (gen_random_uuid(), %s, %s, 'session', 'o', 'course', %s, %s)",
        (user, org, received_at - timedelta(minutes=5), received_at))


@pytest.fixture(scope="module")
def population() -> Iterator[Population]:
    """One user per case, in a database of its own (the selection looks at every user)."""
    with scratch_database(f"stale_{uuid.uuid4().hex[:8]}") as url:
        org = uuid.uuid4()
        sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'S')", (org,))
        users: dict[str, UUID] = {}
        for key in ("never", "idle", "old_new", "old_quiet", "fresh", "client_only", "mixed"):
            users[key] = uuid.uuid4()
            sql(url, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, '{learner}')",
                (users[key], org, f"{key}-{users[key].hex}@example.test", key))
        h = timedelta(hours=1)
        _event(url, users["never"], org, NOW - 30 * 24 * h)                 # never computed, has events
        _snapshot(url, users["old_new"], org, "engagement", "computed", NOW - 7 * h)
        _event(url, users["old_new"], org, NOW - h)                          # activity since: stale
        _snapshot(url, users["old_quiet"], org, "engagement", "computed", NOW - 7 * h)
        _event(url, users["old_quiet"], org, NOW - 8 * h)                    # nothing since: fine
        _snapshot(url, users["fresh"], org, "engagement", "computed", NOW - h)
        _event(url, users["fresh"], org, NOW - h / 6)                       # new, but not 6 h old yet
        _snapshot(url, users["client_only"], org, "engagement", "client", NOW - h)
        _event(url, users["client_only"], org, NOW - 2 * h)                  # no computed snapshot
        _snapshot(url, users["mixed"], org, "engagement", "computed", NOW - 7 * h)
        _snapshot(url, users["mixed"], org, "mastery", "computed", NOW - 2 * h)
        _event(url, users["mixed"], org, NOW - 3 * h)                        # newest computation is recent
        yield Population(url, users)


def _names(population: Population, ids: list[UUID]) -> list[str]:
    by_id = {v: k for k, v in population.users.items()}
    return [by_id[i] for i in ids]


def test_selects_users_with_old_or_no_computed_snapshot_and_activity_since(population: Population) -> None:
    with psycopg.connect(population.url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        ids = maintenance.stale_users(conn, NOW - timedelta(hours=6))
    assert ids == sorted(ids)
    assert sorted(_names(population, ids)) == ["client_only", "never", "old_new"]


def test_selection_pages_by_user_id(population: Population) -> None:
    with psycopg.connect(population.url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        everyone = maintenance.stale_users(conn, NOW - timedelta(hours=6))
        first = maintenance.stale_users(conn, NOW - timedelta(hours=6), limit=2)
        rest = maintenance.stale_users(conn, NOW - timedelta(hours=6), after=first[-1], limit=2)
    assert first + rest == everyone
    assert len(first) == 2 and len(rest) == 1


def test_without_maintenance_the_owner_sees_no_one(population: Population) -> None:
    # RLS is forced on the owner: outside a maintenance transaction the selection is empty.
    with psycopg.connect(population.url) as conn:
        assert maintenance.stale_users(conn, NOW - timedelta(hours=6)) == []


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[UUID], datetime]]:
    """Stands in for recompute_users and records each call."""
    from ms8.jobs import stale

    calls: list[tuple[list[UUID], datetime]] = []

    def recompute_users(conn: psycopg.Connection, user_ids: list[UUID], now: datetime) -> int:
        calls.append((list(user_ids), now))
        return 4 * len(user_ids)

    monkeypatch.setattr(stale, "recompute_users", recompute_users)
    return calls


def test_the_job_hands_stale_users_on_in_chunks_up_to_its_cap(
    population: Population, recorder: list[tuple[list[UUID], datetime]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ms8.jobs import runner, stale

    monkeypatch.setattr(stale, "CHUNK", 2)
    result = runner.handler(stale.JOB)({"scheduledTime": NOW.isoformat()}, lambda_context())

    assert [len(ids) for ids, _ in recorder] == [2, 1]
    assert sorted(_names(population, [i for ids, _ in recorder for i in ids])) == ["client_only", "never", "old_new"]
    assert {now for _, now in recorder} == {NOW}
    assert result["rowsWritten"] == 12
    details = result["details"]
    assert (details["users"], details["chunks"], details["more"]) == (3, 2, False)
    assert details["staleBefore"] == (NOW - timedelta(hours=6)).isoformat()

    recorder.clear()
    monkeypatch.setenv("STALE_MAX_USERS", "2")
    capped: dict[str, Any] = runner.handler(stale.JOB)({"scheduledTime": NOW.isoformat()}, lambda_context())
    assert [len(ids) for ids, _ in recorder] == [2]
    assert (capped["details"]["users"], capped["details"]["more"]) == (2, True)


def test_the_job_recomputes_stale_users_and_a_second_run_finds_none() -> None:
    with scratch_database(f"stale_real_{uuid.uuid4().hex[:8]}") as url:
        org = uuid.uuid4()
        sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'R')", (org,))
        never, fresh = uuid.uuid4(), uuid.uuid4()
        for key, user in (("never", never), ("fresh", fresh)):
            sql(url, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, '{learner}')",
                (user, org, f"{key}-{user.hex}@example.test", key))
        _event(url, never, org, NOW - timedelta(days=2))
        _snapshot(url, fresh, org, "engagement", "computed", NOW - timedelta(hours=1))
        _event(url, fresh, org, NOW - timedelta(minutes=10))
        handler = load_handler("recompute_stale")

        first = handler({"scheduledTime": NOW.isoformat()}, lambda_context())

        assert (first["status"], first["details"]["users"]) == ("ok", 1)
        rows = sql(url, "SELECT user_id, source, data_through FROM analytics WHERE source = 'computed' "
                        "AND user_id = %s", (never,))
        assert first["rowsWritten"] == len(rows) > 0
        assert {r[2] for r in rows} == {NOW}  # computed as of the run's instant
        before = sql(url, "SELECT id, version, updated_at FROM analytics ORDER BY id")

        second = handler({"scheduledTime": NOW.isoformat()}, lambda_context())

        assert (second["details"]["users"], second["rowsWritten"]) == (0, 0)
        assert sql(url, "SELECT id, version, updated_at FROM analytics ORDER BY id") == before


def test_two_overlapping_runs_end_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with scratch_database(f"stale_two_{uuid.uuid4().hex[:8]}") as url:
        org = uuid.uuid4()
        sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'T')", (org,))
        users = [uuid.uuid4() for _ in range(5)]
        for user in users:
            sql(url, "INSERT INTO users (id, organization_id, email, name, roles) "
                     "VALUES (%s, %s, %s, 'u', '{learner}')", (user, org, f"{user.hex}@example.test"))
            _event(url, user, org, NOW - timedelta(days=1))
        handler = load_handler("recompute_stale")
        per_thread = PerThreadDatabase()
        monkeypatch.setattr(db, "owner", per_thread)
        try:
            results = run_concurrently([lambda: handler({"scheduledTime": NOW.isoformat()}, lambda_context())] * 2)
        finally:
            per_thread.reset()

        assert sorted(r["status"] for r in results) in (["ok", "ok"], ["ok", "skipped"])
        assert sum(r["details"].get("users", 0) for r in results) == 5  # each user recomputed once
        computed = sql(url, "SELECT user_id, version FROM analytics WHERE source = 'computed'")
        assert {r[0] for r in computed} == set(users)
        assert {r[1] for r in computed} == {1}  # written once, never rewritten
