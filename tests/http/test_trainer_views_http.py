"""Through the local gateway over HTTP, as a trainer and an org admin would: list my learners,
see who is at risk and why, drill down to one, read the cohort's and the organization's rollups
(after the rollup job ran), and the organization's cohorts."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import pytest

from local import stack, tokens
from tests.support.factories import Factory, Org
from tests.support.gateway import gateway_process
from tests.support.jobs import invoke, load_handler

NOW = datetime.now(UTC)
TODAY = NOW.date()
LAST_MONDAY = TODAY - timedelta(days=TODAY.weekday() + 7)


class Http:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)

    def get(self, path: str, user: UUID, role: str | None = None, **query: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {tokens.user_token(user)}"} | ({"X-Active-Role": role} if role else {})
        self.conn.request("GET", path + (f"?{urlencode(query)}" if query else ""), headers=headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def post(self, path: str, user: UUID, body: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {tokens.user_token(user)}", "Content-Type": "application/json"}
        self.conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"null")


def ev(verb: str, at: datetime, obj: str, **result: Any) -> dict[str, Any]:
    return {"eventId": str(uuid.uuid4()), "verb": verb, "objectId": obj, "objectType": "course",
            "skills": ["sql"], "occurredAt": at.isoformat(), **({"result": result} if result else {})}


@pytest.fixture(scope="module")
def site(owner_url: str, database: str) -> Iterator[tuple[Http, Org]]:
    import psycopg

    with psycopg.connect(owner_url, autocommit=True) as conn:
        factory = Factory(conn)
        org = factory.org("Initech", lena=["learner"], omar=["learner"], pia=["learner"], rudi=["learner"],
                          trish=["trainer"], ted=["trainer"], ann=["org_admin"])
        for name in ("lena", "omar", "pia"):
            factory.assign(org.id, org.users["trish"], org.users[name])
        factory.assign(org.id, org.users["ted"], org.users["rudi"])
        factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.8)",
                    (org.id,))
        with gateway_process(stack.function_env(None, db=database)) as running:
            client = Http(running.url)
            monday = datetime.combine(LAST_MONDAY, datetime.min.time(), UTC) + timedelta(hours=9)
            batches = {
                # lena: active every week, scores well; last week 2 completions on 2 days, 30 minutes.
                "lena": [ev("completed", NOW - timedelta(days=7 * w + 1), f"c-{w}") for w in range(8)]
                + [ev("completed", monday, "extra-1", durationSeconds=1800), ev("passed", monday + timedelta(days=1),
                                                                              "quiz", score=0.9)],
                # omar: nothing for 12 days.
                "omar": [ev("completed", NOW - timedelta(days=12), "c-1")],
                # pia: 6 completions 5-7 weeks ago, one 3 days ago, a weak sql score.
                "pia": [ev("completed", NOW - timedelta(days=33 + i), f"c-{i}") for i in range(6)]
                + [ev("completed", NOW - timedelta(days=3), "c-new"), ev("failed", NOW - timedelta(days=3), "quiz",
                                                                           score=0.5)],
                "rudi": [ev("completed", NOW - timedelta(days=2), "c-1")],
            }
            for name, events in batches.items():
                status, body = client.post("/v1/events", org.users[name], {"events": events})
                assert status == 200, body
            job = invoke(load_handler("rollup_analytics"), {"date": TODAY.isoformat(), "days": 14})
            assert job["status"] == "ok", job
            yield client, org


def test_a_trainer_sees_their_learners_who_is_at_risk_and_why(site: tuple[Http, Org]) -> None:
    client, org = site
    trish = org.users["trish"]
    status, body = client.get("/v1/learners", trish, "trainer")
    assert status == 200, body
    assert [i["displayName"] for i in body["items"]] == ["lena", "omar", "pia"]  # not ted's rudi

    status, risky = client.get("/v1/learners", trish, "trainer", atRisk="true")
    reasons = {i["displayName"]: [r["code"] for r in i["riskReasons"]] for i in risky["items"]}
    assert reasons == {"omar": ["inactive"], "pia": ["velocity_drop", "below_target"]}
    assert risky["atRisk"] == 2
    pia = next(i for i in risky["items"] if i["displayName"] == "pia")
    assert pia["metrics"]["velocity"] == 0.25 and pia["trend"]["previousVelocity"] == 1.5
    assert "sql (0.3 below)" in pia["riskReasons"][1]["message"]

    status, detail = client.get(f"/v1/learners/{org.users['lena']}", trish, "trainer")
    assert status == 200 and detail["learner"]["atRisk"] is False
    week = next(w for w in detail["weeks"] if w["weekStart"] == LAST_MONDAY.isoformat())
    assert week["minutes"] == 30.0 and week["meanScore"] == 0.9
    assert client.get(f"/v1/learners/{org.users['rudi']}", trish, "trainer")[0] == 404


def test_a_trainer_reads_the_cohort_rollup_and_the_organizations(site: tuple[Http, Org]) -> None:
    client, org = site
    trish = org.users["trish"]
    window = {"granularity": "weekly", "from": LAST_MONDAY.isoformat(), "to": LAST_MONDAY.isoformat()}
    status, cohort = client.get("/v1/aggregates", trish, "trainer", **window)
    assert status == 200, cohort
    (week,) = cohort["items"]
    assert (cohort["scope"], week["learners"], week["days"]) == ("cohort", 3, 7)
    # Last week lena completed extra-1 and one of her weekly courses (omar's day may fall in it too).
    assert week["activeLearners"] >= 1 and week["completions"] >= 2
    assert week["velocity"] == round(week["completions"] / 3, 4)
    assert week["meanScore"] == 0.9 and week["suppressed"] is False
    status, organization = client.get("/v1/aggregates", trish, "trainer", scope="organization", **window)
    # 4 learners, 3 of them the trainer's own: fewer than k, suppressed (docs/SECURITY.md)
    (org_week,) = organization["items"]
    assert (org_week["suppressed"], org_week["learners"], org_week["trainerId"]) == (True, None, None)


def test_an_org_admin_reads_cohorts_learners_and_rollups(site: tuple[Http, Org]) -> None:
    client, org = site
    ann = org.users["ann"]
    status, cohorts = client.get("/v1/cohorts", ann)
    assert status == 200, cohorts
    summary = {c["displayName"]: (c["learners"], c["atRisk"]) for c in cohorts["items"]}
    assert summary == {"ted": (1, 0), "trish": (3, 2)} and cohorts["unassignedLearners"] == 0
    status, everyone = client.get("/v1/learners", ann)
    assert [i["displayName"] for i in everyone["items"]] == ["lena", "omar", "pia", "rudi"]
    status, teds = client.get("/v1/learners", ann, trainerId=str(org.users["ted"]))
    assert [i["displayName"] for i in teds["items"]] == ["rudi"]
    status, daily = client.get("/v1/aggregates", ann)
    assert status == 200 and daily["scope"] == "organization" and daily["granularity"] == "daily"
    assert len(daily["items"]) == 11  # the job's 14 days, of which the default window shows the last 12 (not today)
    assert all(i["learners"] == 4 for i in daily["items"])
    status, trish_cohort = client.get("/v1/aggregates", ann, trainerId=str(org.users["trish"]), granularity="weekly")
    assert trish_cohort["scope"] == "cohort" and trish_cohort["items"][-1]["learners"] == 3
