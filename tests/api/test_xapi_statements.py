"""The xAPI statements resource through its functions, on the real database: statements into
learning events and analytics, re-sent statements, voiding, conflicts, credentials and
organizations, the specification's invalid cases, and statements waiting for their user."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import pytest

from tests.support.api import call
from tests.support.factories import Factory, Org
from tests.support.jobs import refresh_pending
from tests.support.xapi import (
    credential,
    directory_writes_user,
    email_of,
    events_of,
    statement,
    stored_count,
    xcall,
)


@pytest.fixture
def org(factory: Factory) -> Org:
    return factory.org("Acme", alice=["learner"], bob=["learner"])


@pytest.fixture
def cred(factory: Factory, org: Org) -> tuple[str, str]:
    return credential(factory, org.id, "https://moodle.acme.example")


def velocity(user: UUID) -> dict[str, Any]:
    """The learner's velocity snapshot once the refresh job has taken the platform's statements."""
    refresh_pending()
    r = call("GET", "/v1/analytics", sub=user)
    assert r.status == 200, r.body
    return {i["analyticsType"]: i["data"] for i in r.body["items"]}["learning_velocity"]


def test_statements_become_learning_events_and_analytics(factory: Factory, org: Org, cred: tuple[str, str]) -> None:
    alice = org.users["alice"]
    email = email_of(factory, alice)
    batch = [
        statement(email, "completed", result={"duration": "PT30M"}),
        statement(email, "passed", object_id="https://lms.example.org/quiz/1", hours_ago=2,
                  result={"score": {"raw": 8, "min": 0, "max": 10}, "success": True},
                  context={"contextActivities": {"category": [{"id": "https://skills.example/sql",
                                                               "definition": {"name": {"en": "sql"}}}]}}),
        statement(email, "http://id.tincanapi.com/verb/viewed", object_id="https://lms.example.org/page/1",
                  hours_ago=3),
    ]
    r = xcall("POST", "statements", cred, body=batch)
    assert r.status == 200, r.body
    assert r.body == [st["id"] for st in batch]
    assert r.headers["X-Experience-API-Version"] == "1.0.3"
    assert "X-Experience-API-Consistent-Through" in r.headers
    events = {str(e[0]): e[1:] for e in events_of(factory, alice)}
    assert events[batch[0]["id"]] == ("completed", "https://lms.example.org/course/1", None, None, 1800, [])
    assert events[batch[1]["id"]][:5] == ("passed", "https://lms.example.org/quiz/1", pytest.approx(0.8), True, None)
    assert events[batch[1]["id"]][5] == ["sql"]
    assert events[batch[2]["id"]][0] == "activity"
    assert velocity(alice)["completions"] == 1
    r = call("GET", "/v1/gamification", sub=alice)
    assert r.body["points"] == 10 + 20 + 5  # completed, passed, one active day


def test_a_statement_re_sent_without_id_counts_once(factory: Factory, org: Org, cred: tuple[str, str]) -> None:
    alice = org.users["alice"]
    st = statement(email_of(factory, alice), "completed", with_id=False)
    first = xcall("POST", "statements", cred, body=[st])
    again = xcall("POST", "statements", cred, body=[st, statement(email_of(factory, alice), "experienced",
                                                                  with_id=False)])
    assert first.status == again.status == 200
    assert again.body[0] == first.body[0] and again.body[1] != first.body[0]
    assert stored_count(factory, org.id) == 2
    assert [e[1] for e in events_of(factory, alice)].count("completed") == 1
    assert velocity(alice)["completions"] == 1


def test_the_same_id_same_content_changes_nothing_other_content_conflicts(
    factory: Factory, org: Org, cred: tuple[str, str]
) -> None:
    st = statement(email_of(factory, org.users["alice"]))
    assert xcall("PUT", "statements", cred, body=st, query={"statementId": st["id"]}).status == 204
    assert xcall("PUT", "statements", cred, body=st, query={"statementId": st["id"]}).status == 204
    assert xcall("POST", "statements", cred, body=[st]).status == 200
    other = {**st, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}
    r = xcall("POST", "statements", cred, body=[other])
    assert r.status == 409 and r.error_code == "STATEMENT_CONFLICT"
    assert stored_count(factory, org.id) == 1
    assert len(events_of(factory, org.users["alice"])) == 1


def test_voiding_removes_the_statement_from_analytics(factory: Factory, org: Org, cred: tuple[str, str]) -> None:
    alice = org.users["alice"]
    st = statement(email_of(factory, alice), "completed")
    assert xcall("POST", "statements", cred, body=[st]).status == 200
    assert velocity(alice)["completions"] == 1
    voiding = {"actor": st["actor"], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
               "object": {"objectType": "StatementRef", "id": st["id"]}}
    r = xcall("POST", "statements", cred, body=[voiding])
    assert r.status == 200
    assert events_of(factory, alice) == []
    assert velocity(alice)["completions"] == 0
    # The voided statement is read only by voidedStatementId; the voiding one cannot be voided.
    assert xcall("GET", "statements", cred, query={"statementId": st["id"]}).status == 404
    r = xcall("GET", "statements", cred, query={"voidedStatementId": st["id"]})
    assert r.status == 200 and r.body["id"] == st["id"]
    again = {**voiding, "object": {"objectType": "StatementRef", "id": r.body["id"]}}
    void_the_voiding = {**voiding, "object": {"objectType": "StatementRef", "id": xcall(
        "POST", "statements", cred, body=[again]).body[0]}}
    assert xcall("POST", "statements", cred, body=[void_the_voiding]).status == 400


def test_a_credential_sees_and_changes_only_its_organization(factory: Factory, org: Org, cred: tuple[str, str]) -> None:
    other = factory.org("Globex", carol=["learner"])
    other_cred = credential(factory, other.id)
    alice = org.users["alice"]
    st = statement(email_of(factory, alice))
    assert xcall("POST", "statements", cred, body=[st]).status == 200
    # Reading: by id, by query.
    assert xcall("GET", "statements", other_cred, query={"statementId": st["id"]}).status == 404
    assert xcall("GET", "statements", other_cred).body["statements"] == []
    # Writing: voiding it from the other organization does not reach it; the same id is another statement there.
    voiding = {"actor": st["actor"], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
               "object": {"objectType": "StatementRef", "id": st["id"]}}
    assert xcall("POST", "statements", other_cred, body=[voiding]).status == 200
    assert xcall("GET", "statements", cred, query={"statementId": st["id"]}).status == 200
    assert len(events_of(factory, alice)) == 1
    changed = {**st, "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}
    assert xcall("PUT", "statements", other_cred, body=changed, query={"statementId": st["id"]}).status == 204
    r = xcall("GET", "statements", cred, query={"statementId": st["id"]})
    assert r.body["verb"]["id"].endswith("/completed")
    # An actor of the other organization is not one of its users: stored, counted for nobody.
    assert len(events_of(factory, alice)) == 1


def test_credentials_revoked_rotated_or_wrong_are_refused(factory: Factory, org: Org, cred: tuple[str, str]) -> None:
    assert xcall("GET", "statements", cred).status == 200
    r = xcall("GET", "statements", (cred[0], cred[1] + "x"))
    assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    assert xcall("GET", "statements", None).status == 401
    assert xcall("GET", "statements", ("xknosuchkey00", "s")).status == 401
    from ms8.xapi import credentials

    factory.sql("UPDATE xapi_credentials SET secret_hash = %s WHERE key = %s",
                (credentials.hash_secret("rotated"), cred[0]))
    assert xcall("GET", "statements", cred).status == 401
    assert xcall("GET", "statements", (cred[0], "rotated")).status == 200
    factory.sql("UPDATE xapi_credentials SET revoked_at = now() WHERE key = %s", (cred[0],))
    assert xcall("GET", "statements", (cred[0], "rotated")).status == 401


@pytest.mark.parametrize("bad", [
    {"actor": {"mbox": "ada@example.org"}},
    {"verb": {"id": "completed"}},
    {"object": {"id": "not an iri"}},
    {"result": {"score": {"scaled": 2}}},
    {"result": {"duration": "90 minutes"}},
    {"timestamp": "2026-02-30 25:00"},
    {"context": {"registration": "nope"}},
    {"id": "not-a-uuid"},
    {"surprise": True},
])
def test_an_invalid_statement_refuses_the_batch_and_stores_nothing(
    factory: Factory, org: Org, cred: tuple[str, str], bad: dict[str, Any]
) -> None:
    good = statement(email_of(factory, org.users["alice"]))
    r = xcall("POST", "statements", cred, body=[good, {**statement(email_of(factory, org.users["bob"])), **bad}])
    assert r.status == 400 and r.error_code == "INVALID_STATEMENT", r.body
    assert r.body["error"]["message"].startswith("statements[1]")
    assert stored_count(factory, org.id) == 0
    assert events_of(factory, org.users["alice"]) == []


@pytest.mark.parametrize(("headers", "status"), [
    ({"X-Experience-API-Version": ""}, 400), ({"X-Experience-API-Version": "0.95"}, 400),
    ({"X-Experience-API-Version": "1.0.4"}, 400), ({"X-Experience-API-Version": "1.0.0"}, 200),
    ({"X-Experience-API-Version": "1.0.2"}, 200),
])
def test_the_version_header(cred: tuple[str, str], headers: dict[str, str], status: int) -> None:
    r = xcall("GET", "statements", cred, headers=headers)
    assert r.status == status
    assert r.headers["X-Experience-API-Version"] == "1.0.3"


def test_queries_filter_and_page(factory: Factory, org: Org, cred: tuple[str, str]) -> None:
    alice, bob = (email_of(factory, org.users[n]) for n in ("alice", "bob"))
    sent = [statement(alice, "completed"), statement(bob, "completed"), statement(alice, "passed"),
            statement(alice, "completed", object_id="https://lms.example.org/course/2")]
    for st in sent:
        assert xcall("POST", "statements", cred, body=st).status == 200
    r = xcall("GET", "statements", cred, query={"agent": f'{{"mbox":"mailto:{alice}"}}',
                                                 "verb": "http://adlnet.gov/expapi/verbs/completed"})
    assert [s["id"] for s in r.body["statements"]] == [sent[3]["id"], sent[0]["id"]]
    r = xcall("GET", "statements", cred, query={"limit": "3", "ascending": "true"})
    assert [s["id"] for s in r.body["statements"]] == [s["id"] for s in sent[:3]]
    more = r.body["more"]
    assert more.startswith("/xapi/statements?more=")
    r = xcall("GET", "statements", cred, query={"more": more.split("more=", 1)[1]})
    assert [s["id"] for s in r.body["statements"]] == [sent[3]["id"]] and r.body["more"] == ""
    assert xcall("GET", "statements", cred, query={"verb": "not an iri"}).status == 400
    assert xcall("GET", "statements", cred, query={"statementId": sent[0]["id"], "verb": "x:y"}).status == 400
    assert xcall("GET", "statements", cred, query={"color": "blue"}).status == 400


def test_a_statement_waits_for_its_user(factory: Factory, org: Org, cred: tuple[str, str]) -> None:
    email = f"newcomer-{uuid.uuid4().hex[:8]}@acme.example"
    st = statement(email, "completed")
    assert xcall("POST", "statements", cred, body=[st]).status == 200
    pending = factory.sql("SELECT user_id, event IS NOT NULL FROM xapi_statements WHERE statement_id = %s",
                          (st["id"],))
    assert pending == [(None, True)]
    new_id = directory_writes_user(factory, org.id, email)
    assert [e[0] for e in events_of(factory, new_id)] == [UUID(st["id"])]
    assert factory.sql("SELECT user_id FROM xapi_statements WHERE statement_id = %s", (st["id"],)) == [(new_id,)]


def test_about_needs_no_credential() -> None:
    r = call("GET", "/xapi/about")
    assert r.status == 200 and "1.0.3" in r.body["version"]


def test_resources_not_offered_answer_501(cred: tuple[str, str]) -> None:
    for path in ("activities/state", "agents/profile", "agents"):
        r = xcall("GET", path, cred)
        assert r.status == 501 and r.error_code == "NOT_SUPPORTED"
    assert xcall("GET", "agents", cred, headers={"X-Experience-API-Version": ""}).status == 400


def test_a_statement_voided_in_its_own_batch_never_counts(factory: Factory, org: Org, cred: tuple[str, str]) -> None:
    alice = org.users["alice"]
    st = statement(email_of(factory, alice), "completed")
    voiding = {"actor": st["actor"], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
               "object": {"objectType": "StatementRef", "id": st["id"]}}
    assert xcall("POST", "statements", cred, body=[st, voiding]).status == 200
    assert events_of(factory, alice) == []
    assert xcall("GET", "statements", cred, query={"voidedStatementId": st["id"]}).status == 200


def test_a_voiding_statement_re_sent_with_its_target_voids_it(
    factory: Factory, org: Org, cred: tuple[str, str]
) -> None:
    """The voiding statement came first (its target unknown then); a retry sends it again with
    the target: the target is stored voided and never counts, as in one batch."""
    alice = org.users["alice"]
    st = statement(email_of(factory, alice), "completed")
    voiding = {"id": str(uuid.uuid4()), "actor": st["actor"], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
               "object": {"objectType": "StatementRef", "id": st["id"]}}
    assert xcall("POST", "statements", cred, body=[voiding]).status == 200
    assert xcall("POST", "statements", cred, body=[voiding, st]).status == 200
    assert events_of(factory, alice) == []
    assert xcall("GET", "statements", cred, query={"statementId": st["id"]}).status == 404
    assert xcall("GET", "statements", cred, query={"voidedStatementId": st["id"]}).status == 200


def test_a_target_arriving_alone_after_its_voiding_statement_counts_and_a_replay_changes_nothing(
    factory: Factory, org: Org, cred: tuple[str, str]
) -> None:
    """The specification leaves an unknown target to the LRS: a target sent alone after its voiding
    statement is stored and counts, and the voiding statement sent again alone does not void it."""
    alice = org.users["alice"]
    st = statement(email_of(factory, alice), "completed")
    voiding = {"id": str(uuid.uuid4()), "actor": st["actor"], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
               "object": {"objectType": "StatementRef", "id": st["id"]}}
    assert xcall("POST", "statements", cred, body=[voiding]).status == 200
    assert xcall("POST", "statements", cred, body=[st]).status == 200
    assert len(events_of(factory, alice)) == 1
    assert xcall("POST", "statements", cred, body=[voiding]).status == 200
    assert len(events_of(factory, alice)) == 1
    assert xcall("GET", "statements", cred, query={"statementId": st["id"]}).status == 200


def test_a_batch_re_sent_with_new_statements_adds_only_the_new_ones(
    factory: Factory, org: Org, cred: tuple[str, str]
) -> None:
    """A platform retries a batch with more statements in it (Open edX keeps its ids): the
    statements stored before are skipped with their events, the new ones are stored and counted,
    and the learner's day holds each event once. Ids come back in their canonical (lower-case) form."""
    alice, bob = org.users["alice"], org.users["bob"]
    first = [statement(email_of(factory, alice), "completed"), statement(email_of(factory, bob), "completed")]
    assert xcall("POST", "statements", cred, body=first).status == 200
    upper = {**statement(email_of(factory, alice), "experienced", object_id="https://lms.example.org/page/2")}
    upper["id"] = upper["id"].upper()
    again = [*first, upper, statement(email_of(factory, bob), "experienced")]
    r = xcall("POST", "statements", cred, body=again)
    assert r.status == 200, r.body
    assert r.body == [st["id"].lower() for st in again]
    assert stored_count(factory, org.id) == 4
    assert sorted(e[1] for e in events_of(factory, alice)) == ["completed", "experienced"]
    assert sorted(str(e[0]) for e in events_of(factory, alice)) == sorted([first[0]["id"], upper["id"].lower()])
    days = factory.sql("SELECT user_id, sum(events)::int, sum(completions)::int FROM learner_daily_activity "
                       "WHERE organization_id = %s GROUP BY user_id", (org.id,))
    assert {u: (n, c) for u, n, c in days} == {alice: (2, 1), bob: (2, 1)}
    canonical = upper["id"].lower()
    assert xcall("GET", "statements", cred, query={"statementId": canonical}).body["id"] == canonical
