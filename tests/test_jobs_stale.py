"""Stale analytics: which users the job selects, in chunks, and what it hands on.

The recomputation itself is issue 7's `ms8.services.analytics_refresh.recompute_users`; here a
recording stand-in takes its place so the job's own part (selection, chunks, cap, lock) is
what is under test.
"""

from __future__ import annotations

import importlib
import sys
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ms8.repositories import maintenance
from tests.jobs_support import FakeContext, scratch_database, sql

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
    """Stands in for issue 7's recompute_users and records each call."""
    calls: list[tuple[list[UUID], datetime]] = []

    def recompute_users(conn: psycopg.Connection, user_ids: list[UUID], now: datetime) -> int:
        calls.append((list(user_ids), now))
        return 4 * len(user_ids)

    try:
        importlib.import_module("ms8.services.analytics_refresh")
    except ModuleNotFoundError:
        fake = types.ModuleType("ms8.services.analytics_refresh")
        fake.recompute_users = recompute_users  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "ms8.services.analytics_refresh", fake)
    monkeypatch.delitem(sys.modules, "ms8.jobs.stale", raising=False)
    stale = importlib.import_module("ms8.jobs.stale")
    monkeypatch.setattr(stale, "recompute_users", recompute_users)
    return calls


def test_the_job_hands_stale_users_on_in_chunks_up_to_its_cap(
    population: Population, recorder: list[tuple[list[UUID], datetime]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ms8.jobs import runner, stale

    monkeypatch.setattr(stale, "CHUNK", 2)
    result = runner.handler(stale.JOB)({"scheduledTime": NOW.isoformat()}, FakeContext())

    assert [len(ids) for ids, _ in recorder] == [2, 1]
    assert sorted(_names(population, [i for ids, _ in recorder for i in ids])) == ["client_only", "never", "old_new"]
    assert {now for _, now in recorder} == {NOW}
    assert result["rowsWritten"] == 12
    details = result["details"]
    assert (details["users"], details["chunks"], details["more"]) == (3, 2, False)
    assert details["staleBefore"] == (NOW - timedelta(hours=6)).isoformat()

    recorder.clear()
    monkeypatch.setenv("STALE_MAX_USERS", "2")
    capped: dict[str, Any] = runner.handler(stale.JOB)({"scheduledTime": NOW.isoformat()}, FakeContext())
    assert [len(ids) for ids, _ in recorder] == [2]
    assert (capped["details"]["users"], capped["details"]["more"]) == (2, True)
