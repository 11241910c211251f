"""The comparison refresh job: first population, new analytics after a refresh, readers never
blocked by the CONCURRENTLY refresh, overlapping runs. In a scratch database, so that the
view starts unpopulated whatever other tests did to the session's view."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from local import localdb
from ms8 import db
from ms8.repositories import maintenance
from tests.support.jobs import (
    PerThreadDatabase,
    invoke,
    load_handler,
    run_concurrently,
    sample_event,
    scratch_database,
    sql,
    template_database,
)

handler = load_handler("refresh_comparison")


@dataclass
class Scratch:
    owner: str
    runtime: str


@pytest.fixture(scope="module")
def template() -> Iterator[str]:
    with template_database("cmp_tpl") as name:
        yield name


@pytest.fixture
def scratch(template: str) -> Iterator[Scratch]:
    with scratch_database(f"cmp_{uuid.uuid4().hex[:8]}", template) as owner:
        name = psycopg.conninfo.conninfo_to_dict(owner)["dbname"]
        yield Scratch(owner, localdb.runtime_url(str(name)))


def learners(url: str, org: UUID, scores: list[float]) -> list[UUID]:
    """Learners of `org`, each with a mastery snapshot of the given score."""
    ids = [uuid.uuid4() for _ in scores]
    sql(url, "INSERT INTO users (id, organization_id, email, name, roles) "
             "SELECT u, %s, u::text || '@example.test', 'l', '{learner}' FROM unnest(%s::uuid[]) AS u", (org, ids))
    sql(url, "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data) "
             "SELECT u, %s, 'learner', 'mastery', d FROM unnest(%s::uuid[], %s::jsonb[]) AS x(u, d)",
        (org, ids, [Jsonb({"mastery": s}) for s in scores]))
    return ids


def new_org(url: str) -> UUID:
    org = uuid.uuid4()
    sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'Peers')", (org,))
    return org


def peers(runtime_url: str, user: UUID, lock_timeout: str = "2s") -> list[tuple[Any, ...]]:
    """What a learner reads through app.peer_comparison (user_count, avg_value)."""
    with psycopg.connect(runtime_url) as conn:
        conn.execute(f"SET lock_timeout = '{lock_timeout}'")
        conn.execute("SELECT * FROM app.begin_request(%s, 'learner')", (user,))
        return conn.execute("SELECT user_count, avg_value FROM app.peer_comparison('mastery')"
                            ).fetchall()


def view_rows(url: str) -> list[tuple[Any, ...]]:
    return sql(url, "SELECT organization_id, role, analytics_type, user_count, avg_value, p25, p50, p75 "
                    "FROM comparison_aggregates ORDER BY 1, 2, 3")


def test_first_run_populates_then_refreshes_concurrently_and_shows_new_analytics(scratch: Scratch) -> None:
    org = new_org(scratch.owner)
    ten = learners(scratch.owner, org, [i / 10 for i in range(1, 11)])
    assert peers(scratch.runtime, ten[0]) == []  # never populated: nothing to show yet

    first = invoke(handler, sample_event("refresh_comparison"))

    assert first["status"] == "ok"
    assert first["details"] == {"concurrently": False, "viewRows": 1}
    assert peers(scratch.runtime, ten[0]) == [(10, pytest.approx(0.55))]

    learners(scratch.owner, org, [0.0, 0.0])
    assert peers(scratch.runtime, ten[0]) == [(10, pytest.approx(0.55))]  # not until the refresh

    second = invoke(handler, sample_event("refresh_comparison"))

    assert second["details"] == {"concurrently": True, "viewRows": 1}
    assert peers(scratch.runtime, ten[0]) == [(12, pytest.approx(5.5 / 12, abs=1e-4))]


def test_readers_are_not_blocked_while_a_concurrent_refresh_is_in_flight(scratch: Scratch) -> None:
    org = new_org(scratch.owner)
    ten = learners(scratch.owner, org, [0.5] * 10)
    invoke(handler, {})
    learners(scratch.owner, org, [1.0] * 5)

    with psycopg.connect(scratch.owner) as refresher:
        refresher.execute("SELECT app.begin_maintenance()")
        maintenance.refresh_comparison(refresher, concurrently=True)
        # The refresh is done but not committed: it still holds every lock it took.
        started = time.perf_counter()
        during = peers(scratch.runtime, ten[0], lock_timeout="1s")
        elapsed = time.perf_counter() - started
        assert during == [(10, pytest.approx(0.5))]  # the previous contents, at once
        assert elapsed < 0.5
    assert peers(scratch.runtime, ten[0]) == [(15, pytest.approx(2 / 3, abs=1e-4))]

    # The contrast that shows the test can fail: a plain refresh does block readers.
    with psycopg.connect(scratch.owner) as refresher:
        refresher.execute("SELECT app.begin_maintenance()")
        maintenance.refresh_comparison(refresher, concurrently=False)
        with pytest.raises(psycopg.errors.LockNotAvailable):
            peers(scratch.runtime, ten[0], lock_timeout="200ms")
        refresher.rollback()


def test_two_overlapping_runs_end_as_one(scratch: Scratch, monkeypatch: pytest.MonkeyPatch) -> None:
    org = new_org(scratch.owner)
    ten = learners(scratch.owner, org, [i / 20 for i in range(10)])
    other = new_org(scratch.owner)
    learners(scratch.owner, other, [0.9] * 9)  # 9 peers: below k, never materialized
    per_thread = PerThreadDatabase()
    monkeypatch.setattr(db, "owner", per_thread)
    try:
        results = run_concurrently([lambda: invoke(handler, {})] * 2)
    finally:
        per_thread.reset()
    assert sorted(r["status"] for r in results) in (["ok", "ok"], ["ok", "skipped"])
    after_two = view_rows(scratch.owner)
    assert [(r[0], r[3]) for r in after_two] == [(org, 10)]
    assert invoke(handler, {})["status"] == "ok"
    assert view_rows(scratch.owner) == after_two
    assert peers(scratch.runtime, ten[0]) == [(10, pytest.approx(0.225))]
