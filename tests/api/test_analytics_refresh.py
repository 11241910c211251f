"""recompute_users on the real database, in every context it runs in (the stale-analytics job's
maintenance transaction, an ingest service, a learner), the stale job end to end, and peer
comparison over computed snapshots: no filter shows a group smaller than 10."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest

from local import apigw
from ms8 import db
from ms8.domain import metrics
from ms8.repositories import days as days_repo
from ms8.repositories import events as events_repo
from ms8.schemas.base import ANALYTICS_TYPES
from ms8.services.analytics_refresh import recompute_users
from tests.support.api import call
from tests.support.factories import Factory, Org
from tests.support.jobs import refresh_pending, scratch_database, sql

NOW = datetime.now(UTC)


def add_events(factory: Factory, org: UUID, user: UUID, rows: list[tuple[str, float, float | None, list[str]]]) -> None:
    """(verb, days ago, score, skills) events, written as the owner."""
    for verb, days, score, skills in rows:
        factory.sql(
            "INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, "
            "skills, score, duration_seconds, occurred_at) "
            "VALUES (gen_random_uuid(), %s, %s, %s, %s, 'course', %s, %s, 60, %s)",
            (user, org, verb, f"obj-{verb}-{days}", skills, score, NOW - timedelta(days=days)),
        )
    factory.rebuild_days(org)


def stored(factory: Factory, *users: UUID) -> dict[tuple[UUID, str], tuple[Any, ...]]:
    rows = factory.sql(
        "SELECT user_id, analytics_type, organization_id, role, source, definition_version, window_days, "
        "data_through, data, version FROM analytics WHERE user_id = ANY (%s)", (list(users),),
    )
    return {(r[0], r[1]): r[2:] for r in rows}


@pytest.fixture
def two_orgs(factory: Factory) -> tuple[Org, Org]:
    a = factory.org("A", ann=["learner"], abe=["learner"])
    b = factory.org("B")
    b.users["bea"] = factory.user(b.id, ["learner"], name="bea", timezone="America/New_York")
    factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.9), "
                "(%s, 'sql', 0.5)", (a.id, b.id))
    add_events(factory, a.id, a.users["ann"], [("completed", 1, None, []), ("passed", 2, 0.8, ["sql"]),
                                               ("session", 40, None, [])])
    add_events(factory, b.id, b.users["bea"], [("failed", 5, 0.2, ["sql"]), ("completed", 35, None, [])])
    return a, b


def test_recompute_in_maintenance_takes_the_organization_from_the_data(
    factory: Factory, two_orgs: tuple[Org, Org]
) -> None:
    a, b = two_orgs
    users = [a.users["ann"], a.users["abe"], b.users["bea"], uuid.uuid4()]
    with db.owner.transaction(db.as_maintenance) as (conn, _):
        assert recompute_users(conn, users, NOW) == 12  # the unknown id is ignored
        window = events_repo.window(conn, users, NOW - metrics.READ_WINDOW, NOW)
    rows = stored(factory, *users)
    assert len(rows) == 12
    for (user, analytics_type), (org, role, source, version, window_days, through, data, _) in rows.items():
        assert org == (b.id if user == b.users["bea"] else a.id)
        assert (role, source, version) == ("learner", "computed", metrics.DEFINITION_VERSION)
        assert window_days == metrics.WINDOW_DAYS[analytics_type]
        assert through == NOW
        tz = ZoneInfo("America/New_York" if user == b.users["bea"] else "UTC")
        targets = {"sql": 0.9} if org == a.id else {"sql": 0.5}
        assert data == metrics.compute_all(window.get(user, []), NOW, tz, targets)[analytics_type]
    assert rows[(a.users["ann"], "skill_gap")][6]["skills"] == {"sql": 0.1}    # A's target 0.9 - 0.8
    assert rows[(b.users["bea"], "skill_gap")][6]["skills"] == {"sql": 0.3}    # B's target 0.5 - 0.2
    assert rows[(a.users["abe"], "engagement")][6]["engagement"] == 0.0          # no activity: still a snapshot


def test_recompute_again_gives_the_same_numbers_and_a_new_version(factory: Factory, two_orgs: tuple[Org, Org]) -> None:
    ann = two_orgs[0].users["ann"]
    with db.owner.transaction(db.as_maintenance) as (conn, _):
        recompute_users(conn, [ann], NOW)
    first = stored(factory, ann)
    with db.owner.transaction(db.as_maintenance) as (conn, _):
        recompute_users(conn, [ann], NOW)
    second = stored(factory, ann)
    assert {k: v[6] for k, v in first.items()} == {k: v[6] for k, v in second.items()}
    assert all(second[k][7] == first[k][7] + 1 for k in first)


def test_recompute_under_an_ingest_service_sees_only_its_organization(
    factory: Factory, two_orgs: tuple[Org, Org]
) -> None:
    a, b = two_orgs
    client = factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], a.id)
    with db.runtime.transaction(db.as_service(client, "ingest", a.id)) as (conn, _):
        assert recompute_users(conn, [a.users["ann"], b.users["bea"]], NOW) == 4
    assert {k[0] for k in stored(factory, a.users["ann"], b.users["bea"])} == {a.users["ann"]}


def test_recompute_as_a_learner_writes_only_their_own(factory: Factory, two_orgs: tuple[Org, Org]) -> None:
    a, _ = two_orgs
    with db.runtime.transaction(db.as_user(a.users["ann"], "learner")) as (conn, _):
        assert recompute_users(conn, [a.users["ann"], a.users["abe"]], NOW) == 4
    assert {k[0] for k in stored(factory, a.users["ann"], a.users["abe"])} == {a.users["ann"]}


def test_stale_job_recomputes_with_this_function() -> None:
    from ms8.jobs import runner, stale

    with scratch_database(f"i7stale_{uuid.uuid4().hex[:6]}") as url:
        org, user = uuid.uuid4(), uuid.uuid4()
        sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'S')", (org,))
        sql(url, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, 'u@s.test', 'u', "
                 "'{learner}')", (user, org))
        sql(url, "INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, "
                 "score, occurred_at) VALUES (gen_random_uuid(), %s, %s, 'passed', 'q', 'quiz', 0.75, %s)",
            (user, org, NOW - timedelta(days=1)))
        with psycopg.connect(url) as conn:  # written past ingest: its learner days built here
            conn.execute("SELECT app.begin_maintenance()")
            days_repo.rebuild(conn, org)
        result = runner.run(stale.JOB, {"scheduledTime": NOW.isoformat()})
        assert (result.status, result.rows_written, result.details["users"]) == ("ok", 4, 1)
        with psycopg.connect(url) as conn:
            conn.execute("SELECT app.begin_maintenance()")
            rows = dict(conn.execute(
                "SELECT analytics_type, data FROM analytics WHERE user_id = %s AND source = 'computed'", (user,)
            ).fetchall())
        assert set(rows) == set(ANALYTICS_TYPES)
        assert rows["mastery"]["mastery"] == 0.75


# --- peer comparison over computed snapshots (k >= 10) ---

def _ingest_for(factory: Factory, org: Org, learners: list[str], assessed: list[str]) -> None:
    client = factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], org.id)
    events = []
    for name in learners:
        user = str(org.users[name])
        events.append({"eventId": str(uuid.uuid4()), "userId": user, "verb": "completed", "objectId": "c",
                       "objectType": "course", "occurredAt": (NOW - timedelta(hours=2)).isoformat()})
        if name in assessed:
            events.append({"eventId": str(uuid.uuid4()), "userId": user, "verb": "passed", "objectId": "q",
                           "objectType": "quiz", "result": {"score": 0.5}, "occurredAt": NOW.isoformat()})
    r = call("POST", "/v1/events", claims=apigw.service_claims(client, ["ingest"]), body={"events": events})
    assert r.status == 200 and r.body["usersQueued"] == len(learners)
    refresh_pending()


def test_no_filter_combination_reveals_a_group_smaller_than_10(factory: Factory) -> None:
    ten = [f"l{i}" for i in range(10)]
    big = factory.org("Big", **{n: ["learner"] for n in ten}, tara=["trainer", "learner"])
    small = factory.org("Small", **{n: ["learner"] for n in ten[:9]})
    # Big: 11 learners with snapshots; only 9 of them have a mastery number (the others: null).
    _ingest_for(factory, big, [*ten, "tara"], assessed=[*ten[:8], "tara"])
    _ingest_for(factory, small, ten[:9], assessed=ten[:9])
    factory.refresh_comparison()

    seen: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    callers = [(big, "l0", None), (big, "tara", "learner"), (big, "tara", "trainer"), (small, "l0", None)]
    for org, name, role in callers:
        for analytics_type in (None, *ANALYTICS_TYPES):
            query = {"type": analytics_type} if analytics_type else None
            r = call("GET", "/v1/comparison", sub=org.users[name], role=role, query=query)
            assert r.status == 200, r.body
            for item in r.body["items"]:
                if item["available"]:
                    assert item["peers"]["userCount"] >= 10
                else:
                    assert item.get("peers") is None and "10" in item["message"]
                seen[(f"{org.id}:{name}", role, item["analyticsType"])] = item
    big_l0 = {t: seen[(f"{big.id}:l0", None, t)] for t in ANALYTICS_TYPES}
    assert big_l0["learning_velocity"]["peers"]["userCount"] == 11
    assert big_l0["engagement"]["available"] is True
    assert big_l0["mastery"]["available"] is False     # 9 numeric values: hidden
    assert big_l0["skill_gap"]["available"] is False   # no targets: no numbers at all
    assert big_l0["mastery"]["yourValue"] == 0.5
    assert not any(seen[(f"{small.id}:l0", None, t)]["available"] for t in ANALYTICS_TYPES)
    assert not any(seen[(f"{big.id}:tara", "trainer", t)]["available"] for t in ANALYTICS_TYPES)
    for bad in ({"type": "velocity"}, {"type": ""}, {"type": "mastery,engagement"}):
        r = call("GET", "/v1/comparison", sub=small.users["l0"], query=bad)
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")
