"""The learners a platform's batch notes, and the every-minute job that brings them up to date.

A platform's batch stores its events and the learner days at once and notes its learners
(analytics_pending); their snapshots, points and gamification rows wait for the refresh job. A
learner's own events still update everything in their request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from local import apigw
from ms8.repositories import pending
from tests.support.api import call
from tests.support.factories import Factory, Org
from tests.support.jobs import load_handler, refresh_pending, sample_event

NOW = datetime.now(UTC)


def event(user: UUID | None, verb: str = "completed", *, hours_ago: float = 1, object_id: str = "c1") -> dict[str, Any]:
    body: dict[str, Any] = {"eventId": str(uuid.uuid4()), "verb": verb, "objectId": object_id, "objectType": "course",
                            "occurredAt": (NOW - timedelta(hours=hours_ago)).isoformat()}
    if user is not None:
        body["userId"] = str(user)
    return body


@pytest.fixture
def org(factory: Factory) -> Org:
    return factory.org("Pend", ann=["learner"], ben=["learner"], cat=["learner"])


@pytest.fixture
def platform(factory: Factory, org: Org) -> dict[str, Any]:
    client = factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], org.id)
    return apigw.service_claims(client, ["ingest"])


def state(factory: Factory, *users: UUID) -> dict[str, tuple[int, int, int, int, int]]:
    """Per user: learner days, snapshots, ledger points, gamification rows, pending rows."""
    rows = factory.sql(
        "SELECT u.id, (SELECT count(*) FROM learner_daily_activity d WHERE d.user_id = u.id), "
        "(SELECT count(*) FROM analytics a WHERE a.user_id = u.id), "
        "(SELECT coalesce(sum(points), 0) FROM points_ledger l WHERE l.user_id = u.id), "
        "(SELECT count(*) FROM gamification g WHERE g.user_id = u.id), "
        "(SELECT count(*) FROM analytics_pending p WHERE p.user_id = u.id) "
        "FROM users u WHERE u.id = ANY (%s)", (list(users),))
    return {r[0]: tuple(int(x) for x in r[1:]) for r in rows}  # type: ignore[misc]


def test_a_platform_batch_notes_its_learners_and_the_job_updates_them(factory: Factory, org: Org,
                                                                       platform: dict[str, Any]) -> None:
    ann, ben = org.users["ann"], org.users["ben"]
    body = {"events": [event(ann), event(ann, object_id="c2", hours_ago=2), event(ben, "session")]}
    r = call("POST", "/v1/events", claims=platform, body=body)
    assert r.status == 200, r.body
    assert (r.body["inserted"], r.body["usersUpdated"], r.body["usersQueued"], r.body["pointsAwarded"]) == (3, 0, 2, 0)
    before = state(factory, ann, ben)
    assert before[ann] == (1, 0, 0, 0, 1) and before[ben] == (1, 0, 0, 0, 1)  # days now; the rest waits

    refresh_pending()
    after = state(factory, ann, ben)
    assert after[ann][1:] == (4, 5 + 2 * 10, 1, 0)  # 4 snapshots; an active day and two completions
    assert after[ben][1:] == (4, 5, 1, 0)
    velocity = factory.sql("SELECT data FROM analytics WHERE user_id = %s AND analytics_type = 'learning_velocity'",
                           (ann,))[0][0]
    assert velocity["completions"] == 2

    # Nothing noted any more: a second run changes nothing of theirs.
    refresh_pending()
    assert state(factory, ann, ben) == after


def test_a_replayed_platform_batch_notes_nobody(org: Org, platform: dict[str, Any]) -> None:
    body = {"events": [event(org.users["cat"])]}
    assert call("POST", "/v1/events", claims=platform, body=body).body["usersQueued"] == 1
    refresh_pending()
    again = call("POST", "/v1/events", claims=platform, body=body)
    assert (again.body["inserted"], again.body["usersQueued"]) == (0, 0)


def test_a_learners_own_events_update_them_at_once(factory: Factory, org: Org) -> None:
    ann = org.users["ann"]
    r = call("POST", "/v1/events", claims=apigw.user_claims(str(ann)), body={"events": [event(None)]})
    assert (r.body["usersUpdated"], r.body["usersQueued"], r.body["pointsAwarded"]) == (1, 0, 15)
    assert state(factory, ann)[ann] == (1, 4, 15, 1, 0)


def test_a_learner_noted_again_while_the_job_works_stays_for_the_next_run(
    factory: Factory, org: Org, platform: dict[str, Any], owner_url: str
) -> None:
    ann = org.users["ann"]
    assert call("POST", "/v1/events", claims=platform, body={"events": [event(ann)]}).status == 200
    owner = psycopg.connect(owner_url)
    try:
        owner.execute("SELECT app.begin_maintenance()")
        seen = [p for p in pending.take(owner, 1000) if p.user_id == ann]
        assert len(seen) == 1 and seen[0].version == 1
        # Another batch for her commits while the job is working on what it read ...
        r = call("POST", "/v1/events", claims=platform, body={"events": [event(ann, object_id="c9", hours_ago=3)]})
        assert r.body["usersQueued"] == 1
        # ... so the job's clean-up leaves her row (version 2) in place.
        assert pending.done(owner, seen) == 0
        owner.commit()
    finally:
        owner.close()
    row = factory.sql("SELECT version, occurred_from FROM analytics_pending WHERE user_id = %s", (ann,))
    assert row[0][0] == 2 and row[0][1] <= NOW - timedelta(hours=3)  # the earliest of both batches
    refresh_pending()
    assert state(factory, ann)[ann][2:] == (5 + 2 * 10, 1, 0)  # both batches' completions counted once


def test_the_runtime_role_sees_and_writes_pending_rows_only_as_its_organizations_platform(
    factory: Factory, org: Org, platform: dict[str, Any], runtime_url: str
) -> None:
    other = factory.org("Other", oz=["learner"])
    ann = org.users["ann"]
    assert call("POST", "/v1/events", claims=platform, body={"events": [event(ann)]}).status == 200
    with psycopg.connect(runtime_url) as conn:
        # A learner of the organization (not a platform) sees no pending rows and cannot note any.
        conn.execute("SELECT app.begin_request(%s, 'learner')", (ann,))
        assert conn.execute("SELECT count(*) FROM analytics_pending").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pending.note(conn, org.id, {ann: NOW})
        conn.rollback()
        # A learner of another organization neither.
        conn.execute("SELECT app.begin_request(%s, 'learner')", (other.users["oz"],))
        assert conn.execute("SELECT count(*) FROM analytics_pending").fetchone() == (0,)
        conn.rollback()


def test_an_event_for_another_organizations_user_with_a_pending_row_is_404_and_changes_nothing(
    factory: Factory, org: Org, platform: dict[str, Any]
) -> None:
    other = factory.org("Elsewhere", zed=["learner"])
    zed = other.users["zed"]
    theirs = apigw.service_claims(factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], other.id),
                                  ["ingest"])
    assert call("POST", "/v1/events", claims=theirs, body={"events": [event(zed)]}).body["usersQueued"] == 1
    before = factory.sql("SELECT since, occurred_from, version FROM analytics_pending WHERE user_id = %s", (zed,))
    r = call("POST", "/v1/events", claims=platform, body={"events": [event(zed, hours_ago=2)]})
    assert (r.status, r.error_code) == (404, "NOT_FOUND")
    assert factory.sql("SELECT since, occurred_from, version FROM analytics_pending WHERE user_id = %s",
                       (zed,)) == before


def test_the_scheduled_function_runs_the_job(org: Org, platform: dict[str, Any]) -> None:
    ben = org.users["ben"]
    assert call("POST", "/v1/events", claims=platform, body={"events": [event(ben)]}).status == 200
    from tests.support.jobs import invoke

    result = invoke(load_handler("refresh_pending"), sample_event("refresh_pending"))
    assert result["status"] == "ok" and result["job"] == "refresh_pending"
    assert result["details"]["users"] >= 1 and result["rowsWritten"] >= 4


def _days(factory: Factory, user: UUID) -> list[tuple[Any, ...]]:
    return factory.sql("SELECT day, events, completions FROM learner_daily_activity WHERE user_id = %s ORDER BY day",
                       (user,))


def test_a_voided_statement_of_an_earlier_day_leaves_the_days_and_the_snapshots(factory: Factory, org: Org) -> None:
    from tests.support.xapi import credential, email_of, statement, xcall

    cred = credential(factory, org.id)
    ann = org.users["ann"]
    kept = statement(email_of(factory, ann), "completed", object_id="https://lms.example.org/c/kept", hours_ago=72)
    voided = statement(email_of(factory, ann), "completed", object_id="https://lms.example.org/c/gone", hours_ago=72)
    assert xcall("POST", "statements", cred, body=[kept, voided]).status == 200
    refresh_pending()
    assert [d[1:] for d in _days(factory, ann)] == [(2, 2)]
    voiding = {"actor": voided["actor"], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
               "object": {"objectType": "StatementRef", "id": voided["id"]}}
    # History older than the events' retention (days are kept 7 years, events 13 months).
    old_day = (NOW - timedelta(days=500)).date()
    factory.sql("INSERT INTO learner_daily_activity (organization_id, user_id, day, events, completions, "
                "assessments, scored, score_micros, passed, duration_seconds, sessions, last_at) "
                "VALUES (%s, %s, %s, 3, 2, 0, 0, 0, 0, 0, 0, %s)", (org.id, ann, old_day, NOW - timedelta(days=500)))
    assert xcall("POST", "statements", cred, body=[voiding]).status == 200
    voided_day = (NOW - timedelta(hours=72)).astimezone(UTC).date()
    assert factory.sql("SELECT rebuild_days FROM analytics_pending WHERE user_id = %s", (ann,)) == [([voided_day],)]
    refresh_pending()
    assert [d[1:] for d in _days(factory, ann)] == [(3, 2), (1, 1)]  # only the voided event's day rebuilt
    velocity = factory.sql("SELECT data FROM analytics WHERE user_id = %s AND analytics_type = 'learning_velocity'",
                           (ann,))[0][0]
    assert velocity["completions"] == 1


def test_statements_claimed_by_a_new_user_reach_their_days_and_snapshots(factory: Factory, org: Org) -> None:
    from tests.support.xapi import credential, directory_writes_user, statement, xcall

    cred = credential(factory, org.id)
    email = f"late-{uuid.uuid4().hex[:8]}@pend.example"
    sent = [statement(email, "completed", object_id=f"https://lms.example.org/c/{i}", hours_ago=30 + i)
            for i in range(3)]
    assert xcall("POST", "statements", cred, body=sent).status == 200
    new_id = directory_writes_user(factory, org.id, email)
    assert _days(factory, new_id) == []  # the events are there; the days wait for the job
    claimed_days = sorted({(NOW - timedelta(hours=30 + i)).astimezone(UTC).date() for i in range(3)})
    [(noted,)] = factory.sql("SELECT rebuild_days FROM analytics_pending WHERE user_id = %s", (new_id,))
    assert sorted(noted) == claimed_days
    refresh_pending()
    assert sum(d[2] for d in _days(factory, new_id)) == 3
    assert state(factory, new_id)[new_id][1:] == (4, 5 * len(_days(factory, new_id)) + 3 * 10, 1, 0)


def test_the_job_never_awards_a_learners_own_events_again(factory: Factory, org: Org,
                                                          platform: dict[str, Any]) -> None:
    ann = org.users["ann"]
    # A platform's batch notes her; before the job runs, she sends back-dated completions of her
    # own: 5 per active day and 10 per completion fit the hour they arrive in, the rest are
    # refused by the hourly cap, by arrival (back-dating gains nothing).
    lms = event(ann, object_id="lms", hours_ago=60)  # the job reads her events from 60 hours ago on
    assert call("POST", "/v1/events", claims=platform, body={"events": [lms]}).status == 200
    own = [event(None, object_id=f"own-{i}", hours_ago=30 + i) for i in range(25)]
    r = call("POST", "/v1/events", claims=apigw.user_claims(str(ann)), body={"events": own})
    assert r.status == 200 and r.body["pointsAwarded"] <= 200
    awarded = state(factory, ann)[ann][2]
    # The job awards the platform's event and leaves her own events alone (by the hours they
    # occurred in, each alone in its hour, the refused ones would fit).
    refresh_pending()
    assert state(factory, ann)[ann][2] - awarded <= 5 + 10  # at most the platform event's points
    assert factory.sql("SELECT count(*) FROM learning_events WHERE user_id = %s AND sent_by_learner",
                       (ann,)) == [(25,)]
