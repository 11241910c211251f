"""The comparison refresh job: first population, new analytics after a refresh, readers never
blocked by the CONCURRENTLY refresh, overlapping runs. In a scratch database, so that the
view starts unpopulated whatever other tests did to the session's view."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from local import localdb
from ms8 import db
from ms8.repositories import maintenance
from ms8.services.comparison import release_groups
from tests.support.jobs import (
    PerThreadDatabase,
    invoke,
    load_handler,
    run_concurrently,
    sample_event,
    sql,
)

handler = load_handler("refresh_comparison")


@dataclass
class Scratch:
    owner: str
    runtime: str


@pytest.fixture
def scratch(scratch: str) -> Scratch:
    """The scratch database of tests/jobs/conftest.py, as the owner and as the runtime role."""
    name = psycopg.conninfo.conninfo_to_dict(scratch)["dbname"]
    return Scratch(scratch, localdb.runtime_url(str(name)))


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


def a_day_later(url: str) -> None:
    """Forget every group's spent budget, as if the next day's refresh ran (one release a day)."""
    sql(url, "DELETE FROM app.comparison_spend")


def view_rows(url: str) -> list[tuple[Any, ...]]:
    """The view's exact statistics (mastery: sum_units / 10000 is the sum of the values)."""
    return sql(url, "SELECT organization_id, role, analytics_type, user_count, sum_units, bins, counts, digest "
                    "FROM comparison_aggregates WHERE user_count > 0 ORDER BY 1, 2, 3")


def counts(rows: list[tuple[Any, ...]]) -> list[int]:
    """The user counts of what a reader got; each average a noisy one, within the range."""
    assert all(0.0 <= avg <= 1.0 for _, avg in rows), rows
    return [n for n, _ in rows]


def test_first_run_populates_then_refreshes_concurrently_and_shows_new_analytics(scratch: Scratch) -> None:
    org = new_org(scratch.owner)
    ten = learners(scratch.owner, org, [i / 10 for i in range(1, 11)])
    assert peers(scratch.runtime, ten[0]) == []  # never populated: nothing to show yet

    first = invoke(handler, sample_event("refresh_comparison"))

    assert first["status"] == "ok"
    assert {k: first["details"][k] for k in ("concurrently", "viewRows", "released")} == {
        "concurrently": False, "viewRows": 1, "released": 1}
    released = peers(scratch.runtime, ten[0])
    assert counts(released) == [10]
    assert [(r[3], r[4]) for r in view_rows(scratch.owner)] == [(10, 55000)]

    learners(scratch.owner, org, [0.0, 0.0])
    assert peers(scratch.runtime, ten[0]) == released  # not until the refresh

    # Within the day the group has spent its budget: the grown group keeps its release.
    same_day = invoke(handler, sample_event("refresh_comparison"))
    assert {k: same_day["details"][k] for k in ("concurrently", "released", "budgetExhausted")} == {
        "concurrently": True, "released": 0, "budgetExhausted": 1}
    assert peers(scratch.runtime, ten[0]) == released

    a_day_later(scratch.owner)
    second = invoke(handler, sample_event("refresh_comparison"))

    assert {k: second["details"][k] for k in ("concurrently", "viewRows", "released")} == {
        "concurrently": True, "viewRows": 1, "released": 1}
    assert counts(peers(scratch.runtime, ten[0])) == [12]
    assert [(r[3], r[4]) for r in view_rows(scratch.owner)] == [(12, 55000)]


def test_readers_are_not_blocked_while_a_concurrent_refresh_is_in_flight(scratch: Scratch) -> None:
    org = new_org(scratch.owner)
    ten = learners(scratch.owner, org, [0.5] * 10)
    invoke(handler, {})
    learners(scratch.owner, org, [1.0] * 5)
    a_day_later(scratch.owner)

    before = peers(scratch.runtime, ten[0])
    with psycopg.connect(scratch.owner) as refresher:
        refresher.execute("SELECT app.begin_maintenance()")
        # Even a plain refresh (ACCESS EXCLUSIVE on the view) and the new releases, done but not
        # committed, leave readers alone: they read the releases, never the view.
        maintenance.refresh_comparison(refresher, concurrently=False)
        release_groups(refresher, maintenance.transaction_now(refresher))
        started = time.perf_counter()
        during = peers(scratch.runtime, ten[0], lock_timeout="1s")
        elapsed = time.perf_counter() - started
        assert during == before and counts(during) == [10]  # the previous release, at once
        assert elapsed < 0.5
    assert counts(peers(scratch.runtime, ten[0])) == [15]


def test_two_overlapping_runs_end_as_one(scratch: Scratch, monkeypatch: pytest.MonkeyPatch) -> None:
    org = new_org(scratch.owner)
    ten = learners(scratch.owner, org, [i / 20 for i in range(10)])
    other = new_org(scratch.owner)
    learners(scratch.owner, other, [0.9] * 9)  # 9 peers: below k, never released
    per_thread = PerThreadDatabase()
    monkeypatch.setattr(db, "owner", per_thread)
    try:
        results = run_concurrently([lambda: invoke(handler, {})] * 2)
    finally:
        per_thread.reset()
    assert sorted(r["status"] for r in results) in (["ok", "ok"], ["ok", "skipped"])
    after_two = view_rows(scratch.owner)
    assert sorted((r[0], r[3]) for r in after_two) == sorted([(org, 10), (other, 9)])
    assert sql(scratch.owner, "SELECT organization_id FROM app.comparison_releases") == [(org,)]
    assert invoke(handler, {})["status"] == "ok"
    assert view_rows(scratch.owner) == after_two
    assert counts(peers(scratch.runtime, ten[0])) == [10]
    assert [(r[3], r[4]) for r in view_rows(scratch.owner) if r[0] == org] == [(10, 22500)]
