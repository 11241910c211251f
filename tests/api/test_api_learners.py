"""The trainer's and org admin's routes through their handlers on the real database: learner
lists with every at-risk reason, the drill-down, cohorts, population rollups by scope, and skill
targets that move skill_gap at once. Where a figure is computed in SQL and in Python (velocity
from the learner days vs. from the events; skill_gap in app.refresh_skill_gaps vs.
ms8.domain.metrics), a test holds the two equal."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest

from ms8.domain import metrics
from ms8.domain.vocabulary import PEER_K
from ms8.repositories import rollups
from ms8.services import population
from tests.support.api import call
from tests.support.factories import Factory, Org

NOW = datetime.now(UTC)
TODAY = NOW.date()


def ago(days: int) -> datetime:
    """`days` days and an hour before now (no event of these tests falls near a window's edge)."""
    return NOW - timedelta(days=days, hours=1)


def ev(verb: str, days_ago: int, obj: str, *, score: float | None = None, skills: tuple[str, ...] = (),
       seconds: int | None = None) -> dict[str, Any]:
    result = {k: v for k, v in (("score", score), ("durationSeconds", seconds)) if v is not None}
    return {"eventId": str(uuid.uuid4()), "verb": verb, "objectId": obj, "objectType": "course",
            "skills": list(skills), "occurredAt": ago(days_ago).isoformat(), **({"result": result} if result else {})}


def post(user: UUID, events: list[dict[str, Any]]) -> None:
    r = call("POST", "/v1/events", sub=user, role="learner", body={"events": events})
    assert r.status == 200, r.body


@pytest.fixture
def org(factory: Factory) -> Org:
    """Acme: trainer tom with steady, idle and dropper; trainer una with none; below and never in
    no cohort; the target for sql is 0.8.

    - steady: 2 new objects in each of the last 8 weeks, sql 0.9: at risk for nothing;
    - idle: last event 10 days ago: inactive;
    - dropper: 8 objects 30-50 days ago, 1 two days ago: velocity 0.25 against 2: velocity_drop;
    - below: active yesterday, sql 0.5 (0.3 under the target): below_target;
    - never: no event at all: inactive only (a skill never assessed is in the gap, no risk reason).
    """
    o = factory.org("Acme", steady=["learner"], idle=["learner"], dropper=["learner"], below=["learner"],
                    never=["learner"], tom=["trainer"], una=["trainer"], ada=["org_admin"])
    for name in ("steady", "idle", "dropper"):
        factory.assign(o.id, o.users["tom"], o.users[name])
    factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.8)", (o.id,))
    post(o.users["steady"], [ev("completed", 1 + 7 * w + d, f"c-{w}-{d}", seconds=900)
                             for w in range(8) for d in (0, 3)]
         + [ev("passed", 1, "quiz-sql", score=0.9, skills=("sql",))])
    post(o.users["idle"], [ev("completed", 10, "c-1"), ev("passed", 10, "quiz-sql", score=0.85, skills=("sql",))])
    post(o.users["dropper"], [ev("completed", 30 + 2 * i, f"c-{i}") for i in range(8)]
         + [ev("completed", 2, "c-new"), ev("passed", 2, "quiz-sql", score=0.95, skills=("sql",))])
    post(o.users["below"], [ev("completed", 1, "c-1"), ev("failed", 1, "quiz-sql", score=0.5, skills=("sql",))])
    return o


@pytest.fixture
def other(factory: Factory) -> Org:
    o = factory.org("Globex", gina=["learner"], gus=["trainer"], gwen=["org_admin"])
    factory.assign(o.id, o.users["gus"], o.users["gina"])
    return o


def by_name(org: Org, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = {str(v): k for k, v in org.users.items()}
    return {names[i["userId"]]: i for i in body["items"]}


def codes(row: dict[str, Any]) -> list[str]:
    return [r["code"] for r in row["riskReasons"]]


def test_a_trainer_lists_their_learners_with_metrics_trend_and_reasons(org: Org) -> None:
    r = call("GET", "/v1/learners", sub=org.users["tom"], role="trainer")

    assert r.status == 200, r.body
    rows = by_name(org, r.body)
    assert list(rows) == ["dropper", "idle", "steady"]  # by name; only tom's cohort
    assert r.body["trainerId"] == str(org.users["tom"]) and r.body["atRisk"] == 2
    steady = rows["steady"]
    assert (steady["atRisk"], steady["riskReasons"]) == (False, [])
    # 8 objects in the last 28 days and 8 in the 28 before: 2 a week, no change.
    assert steady["metrics"]["velocity"] == 2.0 and steady["trend"] == {"velocity": 0.0, "previousVelocity": 2.0}
    assert steady["metrics"]["mastery"] == 0.9 and steady["metrics"]["skillGap"] == 0.0
    assert datetime.fromisoformat(steady["lastActivityAt"]) == ago(1).replace(microsecond=ago(1).microsecond)
    assert codes(rows["idle"]) == ["inactive"]
    assert rows["idle"]["riskReasons"][0]["message"].startswith("no activity for 10 days")
    assert codes(rows["dropper"]) == ["velocity_drop"]
    assert rows["dropper"]["metrics"]["velocity"] == 0.25 and rows["dropper"]["trend"]["previousVelocity"] == 2.0
    assert "from 2 to 0.25" in rows["dropper"]["riskReasons"][0]["message"]


def test_an_org_admin_lists_the_organization_a_cohort_and_those_at_risk(org: Org) -> None:
    everyone = by_name(org, call("GET", "/v1/learners", sub=org.users["ada"]).body)
    assert list(everyone) == ["below", "dropper", "idle", "never", "steady"]  # learners only, no trainers
    assert codes(everyone["below"]) == ["below_target"]
    assert "sql (0.3 below)" in everyone["below"]["riskReasons"][0]["message"]
    assert codes(everyone["never"]) == ["inactive"]
    assert everyone["never"]["lastActivityAt"] is None and everyone["never"]["metrics"]["skillGap"] == 0.8

    at_risk = call("GET", "/v1/learners", sub=org.users["ada"], query={"atRisk": "true"}).body
    assert sorted(by_name(org, at_risk)) == ["below", "dropper", "idle", "never"] and at_risk["atRisk"] == 4
    cohort = call("GET", "/v1/learners", sub=org.users["ada"], query={"trainerId": str(org.users["tom"])}).body
    assert list(by_name(org, cohort)) == ["dropper", "idle", "steady"]
    empty = call("GET", "/v1/learners", sub=org.users["ada"], query={"trainerId": str(org.users["una"])}).body
    assert empty["items"] == []


def test_thresholds_come_from_the_environment(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    from ms8 import config

    monkeypatch.setenv("RISK_INACTIVE_DAYS", "11")
    monkeypatch.setenv("RISK_TARGET_MARGIN", "0.35")
    config.risk_thresholds.cache_clear()
    try:
        rows = by_name(org, call("GET", "/v1/learners", sub=org.users["ada"]).body)
    finally:
        config.risk_thresholds.cache_clear()
    assert codes(rows["idle"]) == [] and codes(rows["below"]) == []  # 10 days < 11; 0.3 <= 0.35
    assert codes(rows["never"]) == ["inactive"]  # never active


def test_who_may_list_whom(org: Org, other: Org) -> None:
    r = call("GET", "/v1/learners", sub=org.users["steady"])
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call("GET", "/v1/learners", sub=org.users["tom"], role="trainer", query={"trainerId": str(org.users["una"])})
    assert (r.status, r.error_code) == (404, "NOT_FOUND")
    for trainer in (other.users["gus"], uuid.uuid4(), org.users["steady"]):  # another org's, nobody, a learner
        r = call("GET", "/v1/learners", sub=org.users["ada"], query={"trainerId": str(trainer)})
        assert (r.status, r.error_code) == (404, "NOT_FOUND"), trainer
    r = call("GET", "/v1/learners", sub=other.users["gwen"])
    assert [i["displayName"] for i in r.body["items"]] == ["gina"]
    r = call("GET", "/v1/cohorts", sub=org.users["tom"], role="trainer")
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")


def test_drill_down_to_one_learner(org: Org, other: Org) -> None:
    r = call("GET", f"/v1/learners/{org.users['steady']}", sub=org.users["tom"], role="trainer")

    assert r.status == 200, r.body
    assert r.body["learner"]["displayName"] == "steady"
    weeks = r.body["weeks"]
    assert len(weeks) == 12 and date.fromisoformat(weeks[-1]["weekStart"]) == TODAY - timedelta(days=TODAY.weekday())
    assert sum(w["completions"] for w in weeks) == 16  # every object of the last 8 weeks, once
    assert max(w["minutes"] for w in weeks) <= 30.0 and any(w["meanScore"] == 0.9 for w in weeks)
    assert r.body["skills"] == [{"skill": "sql", "mastery": 0.9, "target": 0.8, "gap": 0.0}]
    # Not tom's, another organization's, not a learner, nobody: all the same 404.
    for user in (org.users["below"], other.users["gina"], org.users["una"], uuid.uuid4()):
        r = call("GET", f"/v1/learners/{user}", sub=org.users["tom"], role="trainer")
        assert (r.status, r.error_code) == (404, "NOT_FOUND"), user
    assert call("GET", f"/v1/learners/{org.users['below']}", sub=org.users["ada"]).status == 200
    assert call("GET", f"/v1/learners/{other.users['gina']}", sub=org.users["ada"]).status == 404


def test_cohorts_for_the_org_admin(org: Org) -> None:
    r = call("GET", "/v1/cohorts", sub=org.users["ada"])

    assert r.status == 200, r.body
    items = {i["displayName"]: i for i in r.body["items"]}
    # tom: 3 learners, idle and dropper at risk, steady and dropper active in the last 7 days.
    assert items["tom"] | {"trainerId": None} == {"trainerId": None, "displayName": "tom", "learners": 3,
                                                   "atRisk": 2, "activeShare": 0.6667}
    assert items["una"]["learners"] == 0 and items["una"]["activeShare"] is None
    assert r.body["unassignedLearners"] == 2  # below, never


def test_velocity_from_the_learner_days_equals_the_definition_over_events(org: Org, factory: Factory) -> None:
    rows = by_name(org, call("GET", "/v1/learners", sub=org.users["ada"]).body)
    # The list counts whole UTC days ending today: the definition's window ending at midnight tonight.
    tonight = datetime.combine(TODAY + timedelta(days=1), time(), UTC)
    for name in ("steady", "idle", "dropper", "below"):
        events = factory.sql("SELECT verb, object_id, skills, score, success, duration_seconds, occurred_at "
                             "FROM learning_events WHERE user_id = %s", (org.users[name],))
        v = metrics.learning_velocity([metrics.EventRecord(*e) for e in events], tonight)
        assert rows[name]["metrics"]["velocity"] == v["velocity"], name
        assert rows[name]["trend"] == {"velocity": v["trend"], "previousVelocity": v["previous_velocity"]}, name


def gap_snapshot(factory: Factory, user: UUID) -> tuple[dict[str, Any], int]:
    rows = factory.sql("SELECT data, version FROM analytics WHERE user_id = %s AND analytics_type = 'skill_gap'",
                       (user,))
    return rows[0][0], rows[0][1]


def test_a_skill_target_change_moves_every_learners_skill_gap_in_the_same_request(
    org: Org, factory: Factory
) -> None:
    before, version = gap_snapshot(factory, org.users["steady"])
    assert before == {"gap": 0.0, "skills": {"sql": 0.0}, "targeted_skills": 1}

    r = call("PUT", "/v1/skill-targets/sql", sub=org.users["ada"], body={"targetLevel": 0.95})
    assert r.status == 200, r.body
    r = call("PUT", "/v1/skill-targets/python", sub=org.users["ada"], body={"targetLevel": 0.6})
    assert r.status == 200, r.body

    # steady: sql 0.95 - 0.9 = 0.05, python never assessed 0.6: gap (0.05 + 0.6) / 2 = 0.325.
    after, new_version = gap_snapshot(factory, org.users["steady"])
    assert after == {"gap": 0.325, "skills": {"python": 0.6, "sql": 0.05}, "targeted_skills": 2}
    assert new_version == version + 2
    r = call("GET", f"/v1/users/{org.users['steady']}/analytics", sub=org.users["ada"], query={"type": "skill_gap"})
    assert r.body["items"][0]["data"]["gap"] == 0.325
    listed = by_name(org, call("GET", "/v1/learners", sub=org.users["ada"]).body)
    assert listed["steady"]["metrics"]["skillGap"] == 0.325
    # The same numbers as the Python definition, for every learner with a mastery snapshot.
    targets = {"sql": 0.95, "python": 0.6}
    for name in ("steady", "idle", "dropper", "below"):
        mastery = factory.sql("SELECT data FROM analytics WHERE user_id = %s AND analytics_type = 'mastery'",
                              (org.users[name],))[0][0]
        assert gap_snapshot(factory, org.users[name])[0] == metrics.skill_gap_from_mastery(mastery["skills"], targets)
        assert listed[name]["metrics"]["skillGap"] == metrics.skill_gap_from_mastery(mastery["skills"], targets)["gap"]
    # The same target again changes nothing.
    call("PUT", "/v1/skill-targets/python", sub=org.users["ada"], body={"targetLevel": 0.6})
    assert gap_snapshot(factory, org.users["steady"])[1] == new_version


def roll_up(factory: Factory, granularity: str, start: date, end: date) -> None:
    with factory.conn.transaction():
        factory.conn.execute("SELECT app.begin_maintenance()")
        rollups.rollup(factory.conn, granularity, start, end)  # type: ignore[arg-type]


def test_aggregates_by_scope_with_default_windows(org: Org, other: Org, factory: Factory) -> None:
    monday = TODAY - timedelta(days=TODAY.weekday())
    roll_up(factory, "weekly", monday - timedelta(weeks=12), monday)
    month = TODAY.replace(day=1)
    roll_up(factory, "monthly", population.default_window("monthly", TODAY), month)

    # A trainer: their cohort by default (steady, idle, dropper).
    r = call("GET", "/v1/aggregates", sub=org.users["tom"], role="trainer", query={"granularity": "weekly"})
    assert r.status == 200, r.body
    assert (r.body["scope"], r.body["trainerId"], r.body["message"]) == ("cohort", str(org.users["tom"]), None)
    assert r.body["from"] == (monday - timedelta(weeks=11)).isoformat() and r.body["to"] == TODAY.isoformat()
    last = r.body["items"][-1]
    assert (last["periodStart"], last["learners"], last["scope"], last["suppressed"]) == (
        (monday - timedelta(weeks=1)).isoformat(), 3, "cohort", False)
    assert set(last["distribution"]) == {"completions", "activeDays", "meanScore", "minutes"}
    # ... the organization when asked, never another trainer's cohort.
    r = call("GET", "/v1/aggregates", sub=org.users["tom"], role="trainer",
             query={"granularity": "weekly", "scope": "organization"})
    # (5 learners: fewer than k, suppressed for a trainer, who may not see each of them)
    last = r.body["items"][-1]
    assert (last["suppressed"], last["learners"], last["velocity"], last["trainerId"]) == (True, None, None, None)
    r = call("GET", "/v1/aggregates", sub=org.users["tom"], role="trainer", query={"trainerId": str(org.users["una"])})
    assert r.status == 404

    # An org admin: the organization by default; a monthly query with the default window has periods.
    r = call("GET", "/v1/aggregates", sub=org.users["ada"], query={"granularity": "monthly"})
    assert r.body["scope"] == "organization" and len(r.body["items"]) >= 1
    assert r.body["items"][-1]["periodStart"] == population.default_window("monthly", TODAY).isoformat() or \
        r.body["items"][-1]["learners"] == 5
    r = call("GET", "/v1/aggregates", sub=org.users["ada"],
             query={"granularity": "weekly", "trainerId": str(org.users["tom"])})
    assert r.body["scope"] == "cohort" and r.body["items"][-1]["learners"] == 3
    r = call("GET", "/v1/aggregates", sub=org.users["ada"], query={"scope": "cohort"})
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR") and "trainerId" in r.body["error"]["message"]
    r = call("GET", "/v1/aggregates", sub=org.users["ada"], query={"trainerId": str(other.users["gus"])})
    assert r.status == 404
    # An empty answer says which window it looked at.
    r = call("GET", "/v1/aggregates", sub=org.users["ada"], query={"from": "2020-01-01", "to": "2020-02-01"})
    assert r.body["items"] == [] and "from 2020-01-01 to 2020-02-01" in r.body["message"]
    assert call("GET", "/v1/aggregates", sub=org.users["steady"]).status == 403


def test_the_weekly_organization_rollup_matches_the_learners_it_is_made_of(org: Org, factory: Factory) -> None:
    """Last week's organization row, computed again by hand from the learners' drill-downs."""
    monday = TODAY - timedelta(days=TODAY.weekday())
    last_week = monday - timedelta(weeks=1)
    roll_up(factory, "weekly", last_week, monday)
    row = call("GET", "/v1/aggregates", sub=org.users["ada"],
               query={"granularity": "weekly", "from": last_week.isoformat(), "to": last_week.isoformat()}).body
    (item,) = row["items"]
    weeks = []
    for name in ("steady", "idle", "dropper", "below", "never"):
        detail = call("GET", f"/v1/learners/{org.users[name]}", sub=org.users["ada"]).body
        weeks.append(next(w for w in detail["weeks"] if w["weekStart"] == last_week.isoformat()))
    active = [w for w in weeks if w["activeDays"] > 0]
    completions = sum(w["completions"] for w in weeks)
    assert item["learners"] == 5 and item["activeLearners"] == len(active)
    assert item["activeShare"] == round(len(active) / 5, 4)
    assert item["completions"] == completions and item["velocity"] == round(completions / 5, 4)
    assert item["assessments"] == sum(w["assessments"] for w in weeks)
    assert item["minutesPerActiveLearner"] == (round(sum(w["minutes"] for w in active) / len(active), 4)
                                               if active else None)
    assert PEER_K == 10  # the suppression threshold a later change applies to these rows


def test_after_a_target_change_the_reports_first_page_and_its_daily_table_agree(
    org: Org, factory: Factory, s3: Any
) -> None:
    """The learner's report: the skill gap of the snapshot (page 1) and of the last day of the
    daily table are the same number once the target has changed (page 1 said 0 before)."""
    from tests.support.s3 import BUCKET

    r = call("PUT", "/v1/skill-targets/sql", sub=org.users["ada"], body={"targetLevel": 0.95})
    assert r.status == 200, r.body
    r = call("POST", "/v1/reports", sub=org.users["steady"],
             body={"format": "json", "types": ["skill_gap"], "to": TODAY.isoformat()})
    assert r.status == 201, r.body
    key = factory.sql("SELECT s3_key FROM reports WHERE id = %s", (r.body["id"],))[0][0]
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    (snapshot,) = doc["snapshots"]
    (series,) = doc["series"]
    assert snapshot["value"] == series["rows"][-1]["values"]["gap"] == 0.05  # 0.95 - 0.9
