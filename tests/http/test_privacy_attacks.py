"""The attacks that used to expose one person, run as an attacker would, through the local gateway:

- differencing on peer comparison: read the group (36 peers, average a), have one learner erased,
  refresh, read again (35 peers, average b): 36a - 35b was the erased learner's exact mastery;
- small cells on a trainer's organization rollups: a day on which one learner (not the
  trainer's) was active showed that learner's own figures; the organization minus the trainer's
  own cohort (which the trainer sees individually) was a group of fewer than k;
- differencing on rollups across an erasure (the old period is recomputed without the learner).

Each test fails if the attack recovers the person's value within 0.05. The noise is random in
production; here it is reproducible: a seeded source for the comparison refresh, a fixed secret
for the rollups' state-tied seeds, so a run always sees the same noise.
"""

from __future__ import annotations

import http.client
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import psycopg
import pytest

from local import stack, tokens
from ms8.jobs.rollups import roll_up
from ms8.jobs.runner import JobInput
from tests.support.factories import Factory, Org
from tests.support.gateway import RunningGateway, gateway_process

TOLERANCE = 0.05


@dataclass
class Api:
    gateway: RunningGateway

    def call(self, method: str, path: str, user: UUID, role: str | None = None, body: Any = None,
             query: dict[str, str] | None = None) -> tuple[int, Any]:
        parts = urlsplit(self.gateway.url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {tokens.user_token(user)}"}
            if role:
                headers["X-Active-Role"] = role
            data = None
            if body is not None:
                data = json.dumps(body)
                headers["Content-Type"] = "application/json"
            conn.request(method, path + (f"?{urlencode(query)}" if query else ""), body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        finally:
            conn.close()


@pytest.fixture(scope="module")
def api(database: str) -> Iterator[Api]:
    # Nobody here has report files: erasure never reaches S3.
    with gateway_process(stack.function_env("http://127.0.0.1:9", db=database)) as running:
        yield Api(running)


@pytest.fixture
def factory(owner_url: str) -> Iterator[Factory]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        yield Factory(conn)


# --- differencing on peer comparison ---------------------------------------------------------------


def _peers(api: Api, user: UUID) -> dict[str, Any]:
    status, body = api.call("GET", "/v1/comparison", user, query={"type": "mastery"})
    assert status == 200, body
    [item] = body["items"]
    assert item["available"], item
    return item["peers"]  # type: ignore[no-any-return]


def test_differencing_peer_comparison_around_an_erasure_does_not_recover_the_learner(
        api: Api, factory: Factory) -> None:
    rnd = random.Random(1436)
    org = factory.org("Differencing", admin=["org_admin"])
    values: dict[UUID, float] = {}
    for i in range(36):
        uid = factory.user(org.id, ["learner"], name=f"peer-{i:02d}")
        values[uid] = round(rnd.uniform(0.3, 0.95), 4)
    for uid, v in values.items():  # each learner writes their own snapshot, as the app does
        status, body = api.call("PUT", "/v1/analytics", uid, body={"items": [
            {"analyticsType": "mastery", "data": {"mastery": v}}]})
        assert status == 200, body
    noise = random.Random(14).randrange
    factory.refresh_comparison(noise)
    reader, *_, victim = list(values)
    before = _peers(api, reader)
    assert before["userCount"] == 36

    # The attacker refreshes again and again without any change: the same release every time,
    # nothing to average away.
    for _ in range(3):
        run = factory.refresh_comparison(noise, a_day_later=False)
        assert run.released == 0 and run.unchanged >= 1
        assert _peers(api, reader) == before

    status, _ = api.call("DELETE", f"/v1/users/{victim}", org.users["admin"], role="org_admin")
    assert status in (200, 204)
    factory.refresh_comparison(noise, a_day_later=False)  # the same hour: someone left, so released
    after = _peers(api, reader)
    assert after["userCount"] == 35  # the group was recomputed without the erased learner

    recovered = 36 * before["average"] - 35 * after["average"]
    assert abs(recovered - values[victim]) > TOLERANCE, (recovered, values[victim])
    # The median of 35 is one learner's exact value; the released one is not anyone's.
    remaining = [v for u, v in values.items() if u != victim]
    assert all(abs(after[p] - v) > 1e-9 for p in ("p25", "p50", "p75") for v in remaining)


# --- small cells and differencing on a trainer's organization rollups --------------------------------

THIS_MONDAY = (datetime.now(UTC) - timedelta(days=datetime.now(UTC).weekday())).date()
WEEK = THIS_MONDAY - timedelta(weeks=3)  # a week the daily run no longer covers
TUESDAY, WEDNESDAY, THURSDAY = (WEEK + timedelta(days=d) for d in (1, 2, 3))


def _event(day: date, score: float, hour: int = 10) -> dict[str, Any]:
    at = datetime.combine(day, time(hour), UTC)
    return {"eventId": str(uuid.uuid4()), "verb": "passed", "objectId": f"quiz-{day}", "objectType": "assessment",
            "occurredAt": at.isoformat(), "result": {"score": score, "success": True, "durationSeconds": 600}}


@dataclass
class Population:
    org: Org
    trainer: UUID
    admin: UUID
    cohort: list[UUID]
    others: list[UUID]
    victim: UUID
    victim_score: float


def _run_rollups(factory: Factory, days: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    with factory.conn.transaction():
        factory.conn.execute("SELECT app.begin_maintenance()")
        return roll_up(factory.conn, JobInput(now.date(), now, days)).details


@pytest.fixture
def population(api: Api, factory: Factory) -> Population:
    # A fixed secret: the rollups' noise is tied to it and to each row's state, so the run is
    # reproducible (production draws the secret at random in migration 0009).
    factory.sql("UPDATE app.release_secret SET secret = 'attack-test-secret'")
    org = factory.org("Small cells")
    trainer = factory.user(org.id, ["trainer"], name="trainer")
    admin = factory.user(org.id, ["org_admin"], name="admin")
    cohort = [factory.user(org.id, ["learner"], name=f"cohort-{i}") for i in range(3)]
    others = [factory.user(org.id, ["learner"], name=f"other-{i}") for i in range(12)]
    for learner in cohort:
        factory.assign(org.id, trainer, learner)
    rnd = random.Random(7)
    victim, victim_score = others[0], 0.93
    for i, learner in enumerate(cohort + others):
        events = [_event(TUESDAY, victim_score if learner == victim else round(rnd.uniform(0.4, 0.8), 2))]
        if learner == victim:
            events.append(_event(WEDNESDAY, victim_score))   # the only learner active that day
        if learner in cohort or i >= len(cohort) + 4:        # 3 of the cohort and 8 others
            events.append(_event(THURSDAY, 0.5))
        status, body = api.call("POST", "/v1/events", learner, body={"events": events})
        assert status == 200, body
    _run_rollups(factory, (datetime.now(UTC).date() - WEEK).days + 1)
    return Population(org, trainer, admin, cohort, others, victim, victim_score)


def _rows(api: Api, p: Population, granularity: str, scope: str) -> dict[str, dict[str, Any]]:
    status, body = api.call("GET", "/v1/aggregates", p.trainer, role="trainer", query={
        "granularity": granularity, "scope": scope, "from": (WEEK - timedelta(days=7)).isoformat(),
        "to": (WEEK + timedelta(days=6)).isoformat()})
    assert status == 200, body
    return {r["periodStart"]: r for r in body["items"]}


def _exact(factory: Factory, org: UUID, granularity: str, start: date) -> tuple[int, int, dict[str, Any]]:
    """The stored row: learners, active learners and the capped sums (what the noise hides)."""
    [(learners, active, capped)] = factory.sql(
        "SELECT learners, active_learners, capped FROM population_rollups "
        "WHERE organization_id = %s AND trainer_id IS NULL AND granularity = %s AND period_start = %s",
        (org, granularity, start))
    return learners, active, capped


FIGURES = ("learners", "activeLearners", "activeShare", "completions", "velocity", "assessments", "meanScore",
           "minutesPerActiveLearner", "distribution")


def test_a_trainer_never_sees_a_small_cell_of_the_organization(api: Api, factory: Factory,
                                                                population: Population) -> None:
    p = population
    daily = _rows(api, p, "daily", "organization")
    # The day only the victim was active: 15 learners in the organization, one of them active.
    wednesday = daily[WEDNESDAY.isoformat()]
    assert _exact(factory, p.org.id, "daily", WEDNESDAY)[1] == 1
    assert wednesday["suppressed"] is True and all(wednesday[f] is None for f in FIGURES), wednesday
    # Thursday: 11 active, but 3 of them are the trainer's own cohort: outside it only 8.
    assert _exact(factory, p.org.id, "daily", THURSDAY)[1] == 11
    assert daily[THURSDAY.isoformat()]["suppressed"] is True
    # Tuesday: everyone (15, 12 outside the cohort): shown, with noisy figures only.
    tuesday = daily[TUESDAY.isoformat()]
    assert tuesday["suppressed"] is False and tuesday["distribution"] is None and tuesday["assessments"] is None
    # No granularity shows a row of fewer than k active learners, in all or outside the cohort.
    for granularity in ("daily", "weekly", "monthly"):
        for start, row in _rows(api, p, granularity, "organization").items():
            if not row["suppressed"]:
                _, active, _ = _exact(factory, p.org.id, granularity, date.fromisoformat(start))
                assert active - len(p.cohort) >= 10, (granularity, start, row)
    # The org admin sees each learner individually anyway: exact rows, nothing suppressed.
    status, body = api.call("GET", "/v1/aggregates", p.admin, role="org_admin", query={
        "granularity": "daily", "from": WEDNESDAY.isoformat(), "to": WEDNESDAY.isoformat()})
    assert status == 200 and body["items"][0]["activeLearners"] == 1 and body["items"][0]["suppressed"] is False


def test_differencing_a_weekly_rollup_around_an_erasure_does_not_recover_the_learner(
        api: Api, factory: Factory, population: Population) -> None:
    p = population
    week = WEEK.isoformat()
    before = _rows(api, p, "weekly", "organization")[week]
    assert before["suppressed"] is False and before["meanScore"] is not None
    assert _rows(api, p, "weekly", "organization")[week] == before  # re-reading: the same noise
    exact_before = _exact(factory, p.org.id, "weekly", WEEK)

    status, _ = api.call("DELETE", f"/v1/users/{p.victim}", p.admin, role="org_admin")
    assert status in (200, 204)
    details = _run_rollups(factory, 1)  # the daily schedule: its own window no longer reaches WEEK
    assert details["erasedDays"]["from"] == TUESDAY.isoformat()
    exact_after = _exact(factory, p.org.id, "weekly", WEEK)
    assert exact_after[0] == exact_before[0] - 1  # recomputed without the erased learner
    after = _rows(api, p, "weekly", "organization")[week]
    assert after["suppressed"] is False

    # The attacker's best guess from the two releases: the change in the score total.
    recovered = before["learners"] * before["meanScore"] - after["learners"] * after["meanScore"]
    assert abs(recovered - p.victim_score) > TOLERANCE, (recovered, before, after)
    # The exact sums would have given it away (the sum of the learners' mean scores): the test can fail.
    exact_guess = (exact_before[2]["scoreMicros"] - exact_after[2]["scoreMicros"]) / 1e6
    assert abs(exact_guess - p.victim_score) < 1e-6
