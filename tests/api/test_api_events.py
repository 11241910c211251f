"""POST /v1/events on the real database: atomic and idempotent batches, who may ingest for whom,
the analytics and gamification of the touched users, and the platform bus consumer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from local import apigw, paths, runtime, template
from ms8.domain.metrics import DEFINITION_VERSION, WINDOW_DAYS
from ms8.errors import NotFound
from ms8.schemas import events as events_schema
from ms8.schemas.base import HEADLINE_METRIC
from tests.support.api import call
from tests.support.factories import Factory, Org
from tests.support.jobs import lambda_context, refresh_pending

NOW = datetime.now(UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


def event(verb: str = "completed", *, hours_ago: float = 1, object_id: str = "course-1", user: UUID | None = None,
          **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventId": str(uuid.uuid4()), "verb": verb, "objectId": object_id,
        "objectType": "assessment" if verb in ("passed", "failed", "attempted") else "course",
        "occurredAt": (NOW - timedelta(hours=hours_ago)).isoformat(), **extra,
    }
    if user is not None:
        body["userId"] = str(user)
    return body


def counts(factory: Factory, *users: UUID) -> tuple[int, ...]:
    """Events, points rows, analytics rows and gamification rows of these users (as the owner)."""
    row = factory.sql(
        "SELECT (SELECT count(*) FROM learning_events WHERE user_id = ANY (%(u)s)), "
        "(SELECT count(*) FROM points_ledger WHERE user_id = ANY (%(u)s)), "
        "(SELECT count(*) FROM analytics WHERE user_id = ANY (%(u)s)), "
        "(SELECT count(*) FROM gamification WHERE user_id = ANY (%(u)s))",
        {"u": list(users)},
    )
    return tuple(row[0])


def snapshot_state(factory: Factory, *users: UUID) -> list[tuple[Any, ...]]:
    return factory.sql(
        "SELECT user_id, analytics_type, version, updated_at, data FROM analytics WHERE user_id = ANY (%s) "
        "ORDER BY 1, 2", (list(users),),
    )


@pytest.fixture
def org(factory: Factory) -> Org:
    return factory.org("Acme", alice=["learner"], bob=["learner"], tina=["trainer", "learner"], ada=["org_admin"])


@pytest.fixture
def other(factory: Factory) -> Org:
    return factory.org("Globex", xavier=["learner"])


@pytest.fixture
def ingest_claims(factory: Factory, org: Org) -> dict[str, Any]:
    client = factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], org.id)
    return apigw.service_claims(client, ["ingest"])


def test_learner_batch_updates_analytics_and_gamification(factory: Factory, org: Org) -> None:
    alice = org.users["alice"]
    factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.8)", (org.id,))
    events = [
        event("completed", object_id="course-1", skills=["sql"], result={"durationSeconds": 1800}),
        event("passed", hours_ago=2, object_id="quiz-1", skills=["sql", " python "],
              result={"score": 0.5, "success": True}),
        event("session", hours_ago=3, object_id="app", result={"durationSeconds": 600}),
    ]
    r = call("POST", "/v1/events", sub=alice, body={"events": events})
    assert r.status == 200, r.body
    assert {k: r.body[k] for k in ("received", "inserted", "duplicates", "usersUpdated", "analyticsWritten")} == {
        "received": 3, "inserted": 3, "duplicates": 0, "usersUpdated": 1, "analyticsWritten": 4}
    assert r.body["pointsAwarded"] == 10 + 20 + 5

    r = call("GET", "/v1/analytics", sub=alice)
    snapshots = {i["analyticsType"]: i for i in r.body["items"]}
    assert set(snapshots) == set(HEADLINE_METRIC)
    for analytics_type, snap in snapshots.items():
        assert snap["source"] == "computed" and snap["role"] == "learner"
        assert snap["definitionVersion"] == DEFINITION_VERSION
        assert snap["windowDays"] == WINDOW_DAYS[analytics_type]
        assert snap["dataThrough"] is not None
        assert HEADLINE_METRIC[analytics_type] in snap["data"]
    assert snapshots["learning_velocity"]["data"]["velocity"] == 0.25
    assert snapshots["mastery"]["data"]["skills"] == {"python": 0.5, "sql": 0.5}  # skills trimmed
    assert snapshots["skill_gap"]["data"] == {"gap": 0.3, "skills": {"sql": 0.3}, "targeted_skills": 1}
    engagement = snapshots["engagement"]["data"]
    assert (engagement["sessions"], engagement["minutes"]) == (1, 40.0)

    r = call("GET", "/v1/gamification", sub=alice)
    assert r.status == 200
    assert (r.body["points"], r.body["level"], r.body["nextLevelAt"]) == (35, 1, 100)
    assert [b["id"] for b in r.body["badges"]] == ["first_completion"]
    assert r.body["streak"]["current"] == 1 and r.body["streak"]["timezone"] == "UTC"


def test_replayed_batch_changes_nothing(factory: Factory, org: Org, ingest_claims: dict[str, Any]) -> None:
    alice, bob = org.users["alice"], org.users["bob"]
    batch = {"events": [event(user=alice), event("passed", object_id="q", user=bob, result={"score": 0.7})]}
    first = call("POST", "/v1/events", claims=ingest_claims, body=batch)
    assert (first.status, first.body["inserted"], first.body["usersQueued"]) == (200, 2, 2)
    refresh_pending()
    before = (counts(factory, alice, bob), snapshot_state(factory, alice, bob),
              factory.sql("SELECT user_id, points, badges, streaks, updated_at FROM gamification ORDER BY 1"))
    again = call("POST", "/v1/events", claims=ingest_claims, body=batch)
    assert again.status == 200
    assert {k: again.body[k] for k in ("inserted", "duplicates", "usersUpdated", "analyticsWritten",
                                       "pointsAwarded", "usersQueued")} == {
        "inserted": 0, "duplicates": 2, "usersUpdated": 0, "analyticsWritten": 0, "pointsAwarded": 0,
        "usersQueued": 0}
    refresh_pending()
    after = (counts(factory, alice, bob), snapshot_state(factory, alice, bob),
             factory.sql("SELECT user_id, points, badges, streaks, updated_at FROM gamification ORDER BY 1"))
    assert after == before


def test_an_event_repeated_inside_a_batch_is_stored_once(factory: Factory, org: Org) -> None:
    e = event()
    r = call("POST", "/v1/events", sub=org.users["alice"], body={"events": [e, e]})
    assert (r.status, r.body["inserted"], r.body["duplicates"]) == (200, 1, 1)
    changed = dict(e, objectId="course-2")
    r = call("POST", "/v1/events", sub=org.users["alice"], body={"events": [event(), e, changed]})
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")
    assert "events[2] repeats an earlier eventId with different content" in r.body["error"]["message"]
    assert counts(factory, org.users["alice"])[0] == 1  # the first batch's event alone


def test_the_batch_is_validated_once_per_request(
    monkeypatch: pytest.MonkeyPatch, factory: Factory, org: Org
) -> None:
    """The body is validated straight from its text (ms8.http.make_app(body=...)); Powertools'
    validation then takes the batch as it is: its checks run once."""
    seen: list[int] = []
    real = events_schema._same_event

    def counting(a: Any, b: Any) -> bool:
        seen.append(1)
        return bool(real(a, b))

    monkeypatch.setattr(events_schema, "_same_event", counting)
    e = event()
    r = call("POST", "/v1/events", sub=org.users["alice"], body={"events": [e, e, event()]})
    assert (r.status, r.body["inserted"]) == (200, 2)
    assert len(seen) == 1  # the one repeated id compared once, not once per validation


@pytest.mark.parametrize("bad", [
    {"result": {"score": 1.5}},
    {"result": {"score": -0.1}},
    {"result": {"durationSeconds": -1}},
    {"verb": "liked"},
    {"objectId": ""},
    {"objectId": "x" * 201},
    {"skills": ["ok", "bad\x1fskill"]},
    {"skills": [f"s{i}" for i in range(21)]},
    {"occurredAt": "2026-03-01T10:00:00"},  # no time zone
    {"eventId": "not-a-uuid"},
    {"extra": 1},
    {"objectId": "nul\u0000byte"},      # refused by PostgreSQL: still 422, still nothing written
    {"result": {"score": 1e-300}},      # below the smallest real: likewise
])
def test_a_batch_with_one_bad_event_writes_nothing(factory: Factory, org: Org, bad: dict[str, Any]) -> None:
    alice = org.users["alice"]
    events = [event(object_id=f"c{i}") for i in range(5)]
    events[3] = {**events[3], **bad}
    r = call("POST", "/v1/events", sub=alice, body={"events": events})
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), r.body
    assert counts(factory, alice) == (0, 0, 0, 0)


def test_events_outside_retention_or_too_far_ahead_are_refused(factory: Factory, org: Org) -> None:
    alice = org.users["alice"]
    for hours in (24 * 400, -26):
        events = [event(), event(hours_ago=hours)]
        r = call("POST", "/v1/events", sub=alice, body={"events": events})
        assert (r.status, r.error_code) == (422, "OUT_OF_RANGE"), r.body
        assert "events[1]" in r.body["error"]["message"]
    assert counts(factory, alice) == (0, 0, 0, 0)
    r = call("POST", "/v1/events", sub=alice, body={"events": [event(hours_ago=24 * 390), event(hours_ago=-20)]})
    assert r.status == 200 and r.body["inserted"] == 2


@pytest.mark.parametrize("body", [
    {"events": []},
    {"events": [event() for _ in range(1001)]},
    {"items": [event()]},
    [event()],
])
def test_batch_shape(org: Org, body: Any) -> None:
    r = call("POST", "/v1/events", sub=org.users["alice"], body=body)
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")


def test_malformed_and_oversized_bodies(org: Org) -> None:
    r = call("POST", "/v1/events", sub=org.users["alice"], raw_body="{not json")
    assert 400 <= r.status < 500 and r.error_code
    r = call("POST", "/v1/events", sub=org.users["alice"], raw_body="x" * (2 * 1024 * 1024 + 1))
    assert (r.status, r.error_code) == (413, "PAYLOAD_TOO_LARGE")


def test_a_full_batch_of_1000(factory: Factory, org: Org) -> None:
    events = [event("session", hours_ago=i / 10, object_id=f"o{i}") for i in range(1000)]
    r = call("POST", "/v1/events", sub=org.users["bob"], body={"events": events})
    assert (r.status, r.body["inserted"]) == (200, 1000)


def test_learner_cannot_ingest_for_another_user(factory: Factory, org: Org, other: Org) -> None:
    alice = org.users["alice"]
    for target in (org.users["bob"], other.users["xavier"], uuid.uuid4()):
        r = call("POST", "/v1/events", sub=alice, body={"events": [event(), event(user=target)]})
        assert (r.status, r.error_code) == (403, "OWN_EVENTS_ONLY")
    r = call("POST", "/v1/events", sub=alice, body={"events": [event(user=alice)]})
    assert r.status == 200  # naming oneself is fine
    assert counts(factory, org.users["bob"], other.users["xavier"]) == (0, 0, 0, 0)


def test_only_the_learner_role_sends_own_events(factory: Factory, org: Org) -> None:
    r = call("POST", "/v1/events", sub=org.users["tina"], role="trainer", body={"events": [event()]})
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call("POST", "/v1/events", sub=org.users["ada"], body={"events": [event()]})
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call("POST", "/v1/events", sub=org.users["tina"], role="learner", body={"events": [event()]})
    assert r.status == 200
    assert counts(factory, org.users["ada"]) == (0, 0, 0, 0)


def test_platform_ingest_for_its_organization_only(
    factory: Factory, org: Org, other: Org, ingest_claims: dict[str, Any]
) -> None:
    alice, xavier = org.users["alice"], other.users["xavier"]
    # Another organization's user and a user who does not exist: the same 404, nothing written.
    for stranger in (xavier, uuid.uuid4()):
        r = call("POST", "/v1/events", claims=ingest_claims, body={"events": [event(user=alice), event(user=stranger)]})
        assert (r.status, r.error_code) == (404, "NOT_FOUND"), r.body
    assert counts(factory, alice, xavier) == (0, 0, 0, 0)
    # Naming the other organization: refused by the registration.
    r = call("POST", "/v1/events", claims=ingest_claims, body={"events": [event(user=xavier)]},
             headers={"X-Organization-Id": str(other.id)})
    assert (r.status, r.error_code) == (403, "SCOPE_NOT_GRANTED")
    r = call("POST", "/v1/events", claims=ingest_claims, body={"events": [event()]})
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")  # a service names the user
    r = call("POST", "/v1/events", claims=apigw.service_claims("unregistered", ["ingest"]),
             body={"events": [event(user=alice)]})
    assert (r.status, r.error_code) == (403, "UNKNOWN_CLIENT")
    r = call("POST", "/v1/events", claims=ingest_claims, body={"events": [event(user=alice)]})
    assert r.status == 200 and r.body["inserted"] == 1


def test_platform_wide_client_names_the_organization(factory: Factory, org: Org, other: Org) -> None:
    client = factory.service_client(f"wide-{uuid.uuid4().hex[:8]}", ["ingest"], None)
    claims = apigw.service_claims(client, ["ingest"])
    body = {"events": [event(user=org.users["alice"])]}
    r = call("POST", "/v1/events", claims=claims, body=body)
    assert (r.status, r.error_code) == (400, "ORGANIZATION_REQUIRED")
    r = call("POST", "/v1/events", claims=claims, body=body, headers={"X-Organization-Id": str(other.id)})
    assert (r.status, r.error_code) == (404, "NOT_FOUND")  # alice is not of Globex
    r = call("POST", "/v1/events", claims=claims, body=body, headers={"X-Organization-Id": str(org.id)})
    assert r.status == 200 and r.body["inserted"] == 1


def test_points_guard_against_farming(factory: Factory, org: Org) -> None:
    alice = org.users["alice"]
    fake = [event("completed", hours_ago=i / 100, object_id=f"fake-{i}") for i in range(40)]
    r = call("POST", "/v1/events", sub=alice, body={"events": fake})
    assert r.body["pointsAwarded"] == 195  # 5 (active day) + 19 x 10, then the hourly cap
    r = call("POST", "/v1/events", sub=alice, body={"events": [event("completed", object_id="real")]})
    assert r.body["pointsAwarded"] == 0  # still inside the same hour
    # The oldest fake completion (granted) again under a new event id, an hour later: the key is taken.
    factory.sql("UPDATE points_ledger SET awarded_at = awarded_at - interval '2 hours', "
                "cap_hour = cap_hour - interval '2 hours' WHERE user_id = %s", (alice,))
    r = call("POST", "/v1/events", sub=alice, body={"events": [event("completed", object_id="fake-39")]})
    assert r.body["pointsAwarded"] == 0
    r = call("POST", "/v1/events", sub=alice, body={"events": [event("completed", object_id="real")]})
    assert r.body["pointsAwarded"] == 10
    total = factory.sql("SELECT sum(points) FROM points_ledger WHERE user_id = %s", (alice,))[0][0]
    r = call("GET", "/v1/gamification", sub=alice)
    assert r.body["points"] == total == 205 and r.body["level"] == 2


def ledger_hours(factory: Factory, user: UUID) -> dict[datetime, int]:
    rows = factory.sql("SELECT cap_hour, sum(points) FROM points_ledger WHERE user_id = %s GROUP BY 1", (user,))
    return {hour: int(points) for hour, points in rows}


def platform_points(factory: Factory, claims: dict[str, Any], events: list[dict[str, Any]], user: UUID) -> int:
    """POST a platform's batch, run the refresh job it leaves the points to; the user's new points."""
    before = sum(ledger_hours(factory, user).values())
    r = call("POST", "/v1/events", claims=claims, body={"events": events})
    assert r.status == 200 and r.body["pointsAwarded"] == 0, r.body
    refresh_pending()
    return sum(ledger_hours(factory, user).values()) - before


def test_platform_history_is_capped_by_the_hour_it_occurred_in(
    factory: Factory, org: Org, ingest_claims: dict[str, Any]
) -> None:
    bob = org.users["bob"]
    # Ten days of history sent at once by the platform, ten days ago to yesterday: each day 8
    # completions within one hour and a passed quiz: 5 + 80 + 20 = 105 points per day.
    start = (NOW - timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)
    history = []
    for day in range(10):
        at = start + timedelta(days=day)
        history += [dict(event("completed", object_id=f"d{day}-c{i}", user=bob), occurredAt=(at + timedelta(
            minutes=5 * i)).isoformat()) for i in range(8)]
        history.append(dict(event("passed", object_id=f"d{day}-q", user=bob), occurredAt=(at + timedelta(
            minutes=50)).isoformat()))
    assert platform_points(factory, ingest_claims, history, bob) == 1_050  # not clamped to 200
    assert ledger_hours(factory, bob) == {start + timedelta(days=d): 105 for d in range(10)}
    # The learner's own completion right after earns its points: the arrival hour is empty.
    r = call("POST", "/v1/events", sub=bob, body={"events": [event("completed", object_id="today")]})
    assert r.body["pointsAwarded"] == 15  # 10 and today's active day
    # Re-sending the whole history, and the same objects under new event ids, earns nothing.
    assert platform_points(factory, ingest_claims, history, bob) == 0
    again = [dict(e, eventId=str(uuid.uuid4())) for e in history]
    assert platform_points(factory, ingest_claims, again, bob) == 0
    assert call("GET", "/v1/gamification", sub=bob).body["points"] == 1_065


def test_the_platform_cap_holds_within_one_occurrence_hour(
    factory: Factory, org: Org, ingest_claims: dict[str, Any]
) -> None:
    bob = org.users["bob"]
    hour = (NOW - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    burst = [dict(event("completed", object_id=f"b{i}", user=bob), occurredAt=(hour + timedelta(
        minutes=i)).isoformat()) for i in range(30)]
    # 5 (active day) + 19 x 10 = 195 of 305; the rest of the hour is refused, later ones too.
    assert platform_points(factory, ingest_claims, burst, bob) == 195
    late = [dict(event("completed", object_id="b-late", user=bob), occurredAt=(hour + timedelta(
        minutes=59)).isoformat())]
    assert platform_points(factory, ingest_claims, late, bob) == 0
    assert ledger_hours(factory, bob) == {hour: 195}


def test_own_submissions_dated_back_are_capped_by_arrival(factory: Factory, org: Org) -> None:
    alice = org.users["alice"]
    # 30 completions dated one per past hour: spread over 30 occurrence hours, yet one arrival hour.
    back = [event("completed", hours_ago=i + 1, object_id=f"x{i}") for i in range(30)]
    before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    r = call("POST", "/v1/events", sub=alice, body={"events": back})
    after = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # Oldest first: the active day(s) (5, or 5 + 5 when the 30 hours cross midnight) and 19
    # completions: 195 or 200, never the 300 + 5 the occurrence hours would allow.
    assert r.body["pointsAwarded"] in (195, 200)
    hours = ledger_hours(factory, alice)
    assert len(hours) == 1 and set(hours) <= {before, after}
    assert list(hours.values()) == [r.body["pointsAwarded"]]


def test_streak_in_the_users_time_zone(factory: Factory) -> None:
    org = factory.org("Tz")
    tokyo = factory.user(org.id, ["learner"], name="kei", timezone="Asia/Tokyo")
    utc = factory.user(org.id, ["learner"], name="una", timezone="UTC")
    # Three evenings in UTC that are three mornings (01:00) in Tokyo, the last on the Tokyo day of
    # two hours ago: its 01:00 has passed whatever the hour (today in Tokyo, or yesterday when
    # Tokyo's day is less than two hours old; either way the streak is still alive).
    today_tokyo = (NOW - timedelta(hours=2)).astimezone(TOKYO).date()
    instants = [datetime.combine(today_tokyo - timedelta(days=k), datetime.min.time(), TOKYO)
                + timedelta(hours=1) for k in (0, 1, 2)]
    for user in (tokyo, utc):
        events = [dict(event("session"), occurredAt=t.isoformat()) for t in instants]
        assert call("POST", "/v1/events", sub=user, body={"events": events}).status == 200
    streak_tokyo = call("GET", "/v1/gamification", sub=tokyo).body["streak"]
    assert streak_tokyo["timezone"] == "Asia/Tokyo"
    assert streak_tokyo["lastActiveDate"] == today_tokyo.isoformat()
    assert streak_tokyo["current"] == 3 and streak_tokyo["longest"] == 3
    # 01:00 in Tokyo is 16:00 UTC the day before: the same three consecutive days, a day earlier.
    streak_utc = call("GET", "/v1/gamification", sub=utc).body["streak"]
    assert streak_utc["lastActiveDate"] == (today_tokyo - timedelta(days=1)).isoformat()
    assert streak_utc["longest"] == 3


def test_gamification_before_any_activity(org: Org) -> None:
    r = call("GET", "/v1/gamification", sub=org.users["ada"])
    assert r.status == 200
    assert r.body == {"points": 0, "level": 1, "nextLevelAt": 100, "badges": [],
                      "streak": {"current": 0, "longest": 0, "lastActiveDate": None, "timezone": "UTC"},
                      "updatedAt": None}


# --- the platform bus consumer ---

def bus_event(detail: Any, detail_type: str = "learning.events") -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "platform.learning",
            "account": "123456789012", "time": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "eu-west-1",
            "resources": [], "detail": detail}


def bus_handler() -> Any:
    return runtime.load_handler(template.function_by_dir("ingest_events_bus"))


def test_bus_event_is_ingested_as_the_registered_platform_client(factory: Factory, org: Org) -> None:
    alice = org.users["alice"]
    events = [event(user=alice), event("passed", user=alice, result={"score": 1})]
    detail = {"organizationId": str(org.id), "events": events}
    result = bus_handler()(bus_event(detail), lambda_context())
    assert (result["inserted"], result["usersQueued"]) == (2, 1)
    refresh_pending()
    assert len(snapshot_state(factory, alice)) == 4
    again = bus_handler()(bus_event(detail), lambda_context())  # EventBridge delivers at least once
    assert (again["inserted"], again["duplicates"]) == (0, 2)
    assert counts(factory, alice)[0] == 2


@pytest.mark.parametrize("detail", [
    None,
    "not an object",
    {"events": []},
    {"organizationId": "not-a-uuid", "events": [{}]},
    {"organizationId": str(uuid.uuid4()), "events": [{"eventId": str(uuid.uuid4())}]},
])
def test_bus_event_with_an_invalid_detail_fails_and_writes_nothing(detail: Any) -> None:
    with pytest.raises(ValueError, match="invalid learning-events detail"):
        bus_handler()(bus_event(detail), lambda_context())


def test_bus_event_without_a_detail_fails() -> None:
    event = bus_event({})
    del event["detail"]
    with pytest.raises(ValueError, match="invalid learning-events detail"):
        bus_handler()(event, lambda_context())


def test_bus_event_with_a_foreign_user_fails_whole(factory: Factory, org: Org, other: Org) -> None:
    detail = {"organizationId": str(org.id),
              "events": [event(user=org.users["alice"]), event(user=other.users["xavier"])]}
    with pytest.raises(NotFound):
        bus_handler()(bus_event(detail), lambda_context())
    assert counts(factory, org.users["alice"], other.users["xavier"]) == (0, 0, 0, 0)


def test_sample_bus_event_parses() -> None:
    sample = json.loads((paths.ROOT / "events" / "ingest_events_bus.json").read_text())
    from ms8.services.ingest import parse_bus_detail

    assert len(parse_bus_detail(sample["detail"]).events) == 3



def test_concurrent_batches_of_one_user_both_count(factory: Factory, org: Org) -> None:
    """The second batch waits for the first to commit, then computes with both."""
    import threading
    import time

    from ms8.db import Database, as_user
    from ms8.schemas.events import EventBatch
    from ms8.services.ingest import ingest

    alice = org.users["alice"]
    first = EventBatch.model_validate({"events": [event("completed", object_id="one")]})
    second = EventBatch.model_validate({"events": [event("completed", object_id="two")]})
    results: list[Any] = []

    def other_request() -> None:
        mine = Database("runtime")
        try:
            with mine.transaction(as_user(alice, "learner")) as (conn, caller):
                results.append(ingest(conn, caller, second, datetime.now(UTC)))
        finally:
            mine.reset()

    database = Database("runtime")
    try:
        with database.transaction(as_user(alice, "learner")) as (conn, caller):
            ingest(conn, caller, first, datetime.now(UTC))
            thread = threading.Thread(target=other_request)
            thread.start()
            time.sleep(0.3)
            assert thread.is_alive()  # waiting for this transaction's lock on alice
        thread.join(10)
    finally:
        database.reset()
    assert results and results[0].inserted == 1
    velocity = call("GET", "/v1/analytics", sub=alice, query={"type": "learning_velocity"}).body["items"][0]
    assert velocity["data"]["completions"] == 2
    assert call("GET", "/v1/gamification", sub=alice).body["points"] == 5 + 10 + 10
