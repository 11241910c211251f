"""The population rollup job on a real PostgreSQL: every figure of an organization and of a
trainer cohort on a data set worked out by hand, idempotence (an unchanged re-run writes
nothing), replays that see new events, erasures, unassignments and a new definition version,
overlapping runs; and the learners' days that ingest keeps, held equal to the raw events."""

from __future__ import annotations

import calendar
import importlib.util
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from local.paths import ROOT
from ms8 import config, db
from ms8.jobs import rollups as job
from ms8.jobs.partitions import add_months
from ms8.jobs.rollups import windows
from ms8.repositories import rollups as repo
from ms8.schemas.events import EventBatch
from ms8.services import ingest
from tests.support.jobs import (
    PerThreadDatabase,
    invoke,
    load_handler,
    run_concurrently,
    sql,
)

handler = load_handler("rollup_analytics")
TODAY = datetime.now(UTC).date()
# An ISO week inside one month, two months back (inside the events' 13-month retention).
_FIRST = add_months(TODAY.replace(day=1), -2)
MONDAY = _FIRST + timedelta(days=(7 - _FIRST.weekday()) % 7)
MONTH = MONDAY.replace(day=1)
NEXT_MONTH = add_months(MONTH, 1)
MONTH_DAYS = calendar.monthrange(MONDAY.year, MONDAY.month)[1]
WEEK_END = MONDAY + timedelta(days=7)


def at(day_offset: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(MONDAY + timedelta(days=day_offset), time(hour, minute, second), UTC)


@dataclass
class Data:
    org_a: UUID
    org_b: UUID
    users: dict[str, UUID]


def ev(user: UUID, verb: str, when: datetime, obj: str = "course-1", *, score: float | None = None,
       seconds: int | None = None, skills: tuple[str, ...] = ()) -> dict[str, Any]:
    result = {k: v for k, v in (("score", score), ("durationSeconds", seconds)) if v is not None}
    return {"eventId": str(uuid.uuid4()), "userId": str(user), "verb": verb, "objectId": obj,
            "objectType": "course", "skills": list(skills), "occurredAt": when.isoformat(),
            **({"result": result} if result else {})}


def send(org: UUID, events: list[dict[str, Any]]) -> int:
    """Ingest as the platform bus client (ingest scope, every organization), as in production."""
    with db.runtime.transaction(db.as_service("platform-bus", "ingest", org)) as (conn, caller):
        return ingest.ingest(conn, caller, EventBatch.model_validate({"events": events}), datetime.now(UTC)).inserted


def seed(url: str) -> Data:
    """Org A: learners a, b, c (active) and d (idle); trainer t with the cohort {a, b}; trainer u
    with no learners; trainer-only x whose completions must not count. Org B: learner e."""
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'A'), (%s, 'B')", (org_a, org_b))
    users: dict[str, UUID] = {}
    for key, org, roles in [("a", org_a, ["learner"]), ("b", org_a, ["learner"]), ("c", org_a, ["learner"]),
                            ("d", org_a, ["learner"]), ("t", org_a, ["trainer"]), ("u", org_a, ["trainer"]),
                            ("x", org_a, ["trainer"]), ("e", org_b, ["learner"])]:
        users[key] = uuid.uuid4()
        sql(url, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, %s)",
            (users[key], org, f"{key}-{users[key].hex}@example.test", key, roles))
    for learner in ("a", "b"):
        sql(url, "INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) VALUES (%s, %s, %s)",
            (org_a, users["t"], users[learner]))
    a, b, c, x = users["a"], users["b"], users["c"], users["x"]
    send(org_a, [
        ev(a, "completed", at(0, 9), "course-1", seconds=600), ev(a, "completed", at(0, 10), "course-1"),
        ev(a, "completed", at(2, 12), "course-2", seconds=1200),
        ev(a, "passed", at(2, 13), "quiz-1", score=0.8, skills=("sql",)),
        ev(b, "session", at(1, 9), "session-1", seconds=1800),
        ev(b, "failed", at(1, 10), "quiz-1", score=0.4, skills=("sql",)),
        ev(b, "attempted", at(3), "quiz-2"),  # no score: an assessment, not a scored one
        ev(c, "completed", at(6, 23, 59, 59), "course-3"),  # still day 6 in UTC
        *[ev(x, "completed", at(0, h), f"course-x{h}") for h in range(5)],
    ])
    send(org_b, [ev(users["e"], "completed", at(0), "course-1")])
    return Data(org_a, org_b, users)


def q(p25: float | None, median: float | None, p75: float | None) -> dict[str, float | None]:
    return {"p25": p25, "median": median, "p75": p75}


# (scope, granularity, period start) -> the stored row's columns, worked out by hand.
def expected(data: Data) -> dict[tuple[UUID, UUID | None, str, date], dict[str, Any]]:
    a, b, t = data.org_a, data.org_b, data.users["t"]
    out: dict[tuple[UUID, UUID | None, str, date], dict[str, Any]] = {}
    # The week of org A: completions per learner a 2 (course-1 twice counts once), b 0, c 1, d 0;
    # active days a 2, b 2, c 1, d 0; minutes a 30, b 30; scores a .8, b .4.
    week_a = dict(learners=4, active_learners=3, completions=3, assessments=3, scored=2, score_micros=1_200_000,
                  duration_seconds=3600, distribution={
                      "completions": q(0, 0.5, 1.25), "activeDays": q(0.75, 1.5, 2),
                      "meanScore": q(0.5, 0.6, 0.7), "minutes": q(0, 15, 30)})
    week_t = dict(learners=2, active_learners=2, completions=2, assessments=3, scored=2, score_micros=1_200_000,
                  duration_seconds=3600, distribution={
                      "completions": q(0.5, 1, 1.5), "activeDays": q(2, 2, 2),
                      "meanScore": q(0.5, 0.6, 0.7), "minutes": q(30, 30, 30)})
    week_b = dict(learners=1, active_learners=1, completions=1, assessments=0, scored=0, score_micros=0,
                  duration_seconds=0, distribution={
                      "completions": q(1, 1, 1), "activeDays": q(1, 1, 1),
                      "meanScore": q(None, None, None), "minutes": q(0, 0, 0)})
    for gran, start, end in (("weekly", MONDAY, WEEK_END), ("monthly", MONTH, NEXT_MONTH)):
        out[(a, None, gran, start)] = {**week_a, "period_end": end}
        out[(a, t, gran, start)] = {**week_t, "period_end": end}
        out[(b, None, gran, start)] = {**week_b, "period_end": end}
    none = {"completions": q(0, 0, 0), "activeDays": q(0, 0, 0), "meanScore": q(None, None, None),
            "minutes": q(0, 0, 0)}
    for i in range(7):
        day = MONDAY + timedelta(days=i)
        for key, n in (((a, None), 4), ((a, t), 2), ((b, None), 1)):
            out[(*key, "daily", day)] = dict(learners=n, active_learners=0, completions=0, assessments=0, scored=0,
                                            score_micros=0, duration_seconds=0, distribution=none,
                                            period_end=day + timedelta(days=1))
    d = MONDAY
    out[(a, None, "daily", d)] |= dict(active_learners=1, completions=1, duration_seconds=600, distribution={
        **none, "completions": q(0, 0, 0.25), "activeDays": q(0, 0, 0.25), "minutes": q(0, 0, 2.5)})
    out[(a, t, "daily", d)] |= dict(active_learners=1, completions=1, duration_seconds=600, distribution={
        **none, "completions": q(0.25, 0.5, 0.75), "activeDays": q(0.25, 0.5, 0.75), "minutes": q(2.5, 5, 7.5)})
    out[(b, None, "daily", d)] |= dict(active_learners=1, completions=1, distribution={
        **none, "completions": q(1, 1, 1), "activeDays": q(1, 1, 1)})
    d1 = MONDAY + timedelta(days=1)  # b: a session of 30 minutes and a failed quiz at .4
    for key, half in (((a, None), False), ((a, t), True)):
        out[(*key, "daily", d1)] |= dict(active_learners=1, assessments=1, scored=1, score_micros=400_000,
                                         duration_seconds=1800, distribution={
            **none, "activeDays": q(0.25, 0.5, 0.75) if half else q(0, 0, 0.25), "meanScore": q(0.4, 0.4, 0.4),
            "minutes": q(7.5, 15, 22.5) if half else q(0, 0, 7.5)})
    d2 = MONDAY + timedelta(days=2)  # a: course-2 (20 minutes) and quiz-1 passed at .8
    for key, half in (((a, None), False), ((a, t), True)):
        out[(*key, "daily", d2)] |= dict(active_learners=1, completions=1, assessments=1, scored=1,
                                         score_micros=800_000, duration_seconds=1200, distribution={
            "completions": q(0.25, 0.5, 0.75) if half else q(0, 0, 0.25),
            "activeDays": q(0.25, 0.5, 0.75) if half else q(0, 0, 0.25), "meanScore": q(0.8, 0.8, 0.8),
            "minutes": q(5, 10, 15) if half else q(0, 0, 5)})
    d3 = MONDAY + timedelta(days=3)  # b: an attempt without a score
    for key, half in (((a, None), False), ((a, t), True)):
        out[(*key, "daily", d3)] |= dict(active_learners=1, assessments=1, distribution={
            **none, "activeDays": q(0.25, 0.5, 0.75) if half else q(0, 0, 0.25)})
    d6 = MONDAY + timedelta(days=6)  # c, outside the cohort
    out[(a, None, "daily", d6)] |= dict(active_learners=1, completions=1, distribution={
        **none, "completions": q(0, 0, 0.25), "activeDays": q(0, 0, 0.25)})
    return out


COLUMNS = ("period_end", "learners", "active_learners", "completions", "assessments", "scored", "score_micros",
           "duration_seconds", "distribution")


def stored(url: str, orgs: list[UUID], gran: str | None = None) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = sql(url, f"SELECT organization_id, trainer_id, granularity, period_start, {', '.join(COLUMNS)} "
                    "FROM population_rollups WHERE organization_id = ANY (%s) "
                    "AND (%s::text IS NULL OR granularity = %s)",
               (orgs, gran, gran))
    return {tuple(r[:4]): dict(zip(COLUMNS, r[4:], strict=True)) for r in rows}


def run(url: str, gran: str, start: date, end: date) -> repo.RollupCounts:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        return repo.rollup(conn, gran, start, end)  # type: ignore[arg-type]


def run_all(url: str) -> int:
    return sum(run(url, g, s, e).written for g, s, e in
               (("daily", MONDAY, WEEK_END), ("weekly", MONDAY, WEEK_END), ("monthly", MONTH, NEXT_MONTH)))


def test_windows_cover_yesterday_last_iso_week_and_last_month() -> None:
    thursday = date(2026, 11, 26)
    assert windows(thursday) == {
        "daily": (date(2026, 11, 25), thursday),
        "weekly": (date(2026, 11, 16), date(2026, 11, 23)),
        "monthly": (date(2026, 10, 1), date(2026, 11, 1)),
    }
    spans = windows(date(2026, 3, 2), 90)  # a Monday; 90 days back is 2025-12-02
    assert spans["daily"] == (date(2025, 12, 2), date(2026, 3, 2))
    assert spans["weekly"] == (date(2025, 12, 1), date(2026, 3, 2))
    assert spans["monthly"] == (date(2025, 12, 1), date(2026, 3, 1))
    assert windows(date(2027, 1, 4))["weekly"] == (date(2026, 12, 28), date(2027, 1, 4))


def test_every_figure_of_organizations_and_cohorts_equals_the_hand_computed_one(scratch: str) -> None:
    data = seed(scratch)

    written = run_all(scratch)

    wanted = expected(data)
    assert written == len(wanted) == 21 + 3 + 3
    got = stored(scratch, [data.org_a, data.org_b])
    assert set(got) == set(wanted)  # trainer u (no learners) has no rows; trainer x's events count nowhere
    for key, figures in wanted.items():
        assert got[key] == figures, key


def test_an_unchanged_rerun_writes_nothing_and_touches_no_row(scratch: str) -> None:
    seed(scratch)
    run_all(scratch)
    before = sql(scratch, "SELECT organization_id, trainer_id, granularity, period_start, xmin::text, computed_at "
                          "FROM population_rollups ORDER BY 1, 2, 3, 4")

    assert run_all(scratch) == 0
    assert sql(scratch, "SELECT organization_id, trainer_id, granularity, period_start, xmin::text, computed_at "
                        "FROM population_rollups ORDER BY 1, 2, 3, 4") == before


def test_the_job_rolls_up_its_windows_and_a_rerun_writes_nothing(scratch: str) -> None:
    data = seed(scratch)
    event = {"date": WEEK_END.isoformat(), "days": 7}

    first = invoke(handler, event)
    again = invoke(handler, event)

    assert first["status"] == "ok" and first["rowsWritten"] > 0
    # Both organizations' 7 days, 1 week and the complete months the run covers.
    first_month, end_month = windows(WEEK_END, 7)["monthly"]
    months = (end_month.year - first_month.year) * 12 + end_month.month - first_month.month
    assert [first["details"][g]["periodsChanged"] for g in ("daily", "weekly", "monthly")] == [14, 2, 2 * months]
    assert again["rowsWritten"] == 0  # and nothing recomputed: the fingerprints are unchanged
    assert [again["details"][g]["periodsChanged"] for g in ("daily", "weekly", "monthly")] == [0, 0, 0]
    weekly = stored(scratch, [data.org_a], "weekly")
    assert weekly[(data.org_a, None, "weekly", MONDAY)] == expected(data)[(data.org_a, None, "weekly", MONDAY)]

    # A new event of org A: that day, week and month of org A only are recomputed.
    send(data.org_a, [ev(data.users["c"], "completed", at(5), "course-4")])
    grown = invoke(handler, event)
    in_months = int(first_month <= MONDAY < end_month)
    assert [grown["details"][g]["periodsChanged"] for g in ("daily", "weekly", "monthly")] == [1, 1, in_months]
    assert grown["rowsWritten"] == 2 + in_months  # org A's day 5, week (and month): c is in no cohort
    # A new assignment changes every period of org A (the cohort's population).
    sql(scratch, "INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) VALUES (%s, %s, %s)",
        (data.org_a, data.users["u"], data.users["c"]))
    assigned = invoke(handler, event)
    assert [assigned["details"][g]["periodsChanged"] for g in ("daily", "weekly", "monthly")] == [7, 1, months]
    assert stored(scratch, [data.org_a], "weekly")[(data.org_a, data.users["u"], "weekly", MONDAY)]["learners"] == 1


def test_replays_see_new_events_erasures_unassignments_and_a_new_version(
    scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = seed(scratch)
    run_all(scratch)
    a = data.org_a

    send(a, [ev(data.users["c"], "completed", at(5), "course-4")])
    assert run(scratch, "daily", MONDAY, WEEK_END) == repo.RollupCounts(0, 1, 0)  # day 5 of org A (c: no cohort)
    assert run(scratch, "weekly", MONDAY, WEEK_END) == repo.RollupCounts(0, 1, 0)
    assert stored(scratch, [a], "weekly")[(a, None, "weekly", MONDAY)]["completions"] == 4

    sql(scratch, "DELETE FROM users WHERE id = %s", (data.users["b"],))  # erasure: b's days go by cascade
    assert sql(scratch, "SELECT count(*) FROM learner_daily_activity WHERE user_id = %s", (data.users["b"],)) == [(0,)]
    assert run(scratch, "weekly", MONDAY, WEEK_END) == repo.RollupCounts(0, 2, 0)  # org A and cohort t
    week = stored(scratch, [a], "weekly")
    assert (week[(a, None, "weekly", MONDAY)]["learners"], week[(a, data.users["t"], "weekly", MONDAY)]["learners"]) \
        == (3, 1)

    sql(scratch, "DELETE FROM trainer_assignments WHERE trainer_id = %s", (data.users["t"],))
    assert run(scratch, "weekly", MONDAY, WEEK_END) == repo.RollupCounts(0, 0, 1)  # the cohort is gone

    monkeypatch.setattr(repo, "ROLLUP_VERSION", repo.ROLLUP_VERSION + 1)
    assert run(scratch, "weekly", MONDAY, WEEK_END) == repo.RollupCounts(0, 2, 0)  # org A and org B rewritten


def test_two_overlapping_runs_end_as_one(scratch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = seed(scratch)
    per_thread = PerThreadDatabase()
    monkeypatch.setattr(db, "owner", per_thread)
    event = {"date": WEEK_END.isoformat(), "days": 7}
    try:
        results = run_concurrently([lambda: invoke(handler, event)] * 2)
    finally:
        per_thread.reset()
    assert sorted(r["status"] for r in results) in (["ok", "ok"], ["ok", "skipped"])
    first = min(results, key=lambda r: -r["rowsWritten"])
    assert sum(r["rowsWritten"] for r in results) == first["rowsWritten"]
    weekly = stored(scratch, [data.org_a, data.org_b], "weekly")
    assert weekly[(data.org_b, None, "weekly", MONDAY)] == expected(data)[(data.org_b, None, "weekly", MONDAY)]


# --- the learners' days: kept by ingest, equal to the raw events --------------------------------


def days_from_events(url: str) -> dict[tuple[UUID, date], dict[str, Any]]:
    """learner_daily_activity recomputed in Python from the stored learning events."""
    rows = sql(url, "SELECT user_id, verb, object_id, skills, score, duration_seconds, occurred_at "
                    "FROM learning_events")
    out: dict[tuple[UUID, date], dict[str, Any]] = {}
    for user, verb, obj, skills, score, seconds, occurred in rows:
        key = (user, occurred.astimezone(UTC).date())
        d = out.setdefault(key, dict(events=0, completions=0, completed_objects=set(), assessments=0, scored=0,
                                     score_micros=0, passed=0, duration_seconds=0, sessions=0,
                                     skills=defaultdict(lambda: [0, 0]), last_at=occurred))
        d["events"] += 1
        d["last_at"] = max(d["last_at"], occurred)
        d["duration_seconds"] += seconds or 0
        d["sessions"] += verb == "session"
        d["passed"] += verb == "passed"
        if verb == "completed":
            d["completions"] += 1
            d["completed_objects"].add(obj)
        if verb in ("passed", "failed", "attempted"):
            d["assessments"] += 1
            if score is not None:
                d["scored"] += 1
                d["score_micros"] += round(score * 1e6)
                for s in skills:
                    d["skills"][s][0] += 1
                    d["skills"][s][1] += round(score * 1e6)
    for d in out.values():
        d["completed_objects"] = sorted(d["completed_objects"])
        d["skills"] = {k: list(v) for k, v in d["skills"].items()}
    return out


def days_stored(url: str) -> dict[tuple[UUID, date], dict[str, Any]]:
    cols = ("events", "completions", "completed_objects", "assessments", "scored", "score_micros", "passed",
            "duration_seconds", "sessions", "skills", "last_at")
    rows = sql(url, f"SELECT user_id, day, {', '.join(cols)} FROM learner_daily_activity")
    return {(r[0], r[1]): dict(zip(cols, r[2:], strict=True)) for r in rows}


def test_ingest_keeps_the_days_equal_to_the_raw_events_and_a_replay_adds_nothing(scratch: str) -> None:
    data = seed(scratch)
    a, b = data.users["a"], data.users["b"]
    more = [ev(a, "passed", at(2, 15), "quiz-3", score=0.55, skills=("sql", "python")),
            ev(a, "completed", at(2, 16), "course-1"),  # an object already completed that day: once
            ev(b, "attempted", at(1, 11), "quiz-2", score=0.25, skills=("python",))]
    assert send(data.org_a, more) == 3
    before = days_stored(scratch)

    assert send(data.org_a, more) == 0  # the same batch again: nothing stored, nothing added

    assert days_stored(scratch) == before
    assert before == days_from_events(scratch)
    day2 = before[(a, MONDAY + timedelta(days=2))]
    assert day2["skills"] == {"sql": [2, 1_350_000], "python": [1, 550_000]}
    assert day2["completed_objects"] == ["course-1", "course-2"] and day2["completions"] == 2


def test_the_migration_back_fills_the_days_from_the_events(scratch: str) -> None:
    seed(scratch)
    wanted = days_from_events(scratch)
    sql(scratch, "DELETE FROM learner_daily_activity")
    spec = importlib.util.spec_from_file_location("m0008", ROOT / "migrations/versions/0008_learner_daily_activity.py")
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)

    sql(scratch, migration.BACKFILL)
    assert days_stored(scratch) == wanted


def quartiles(values: list[float]) -> dict[str, float | None]:
    """percentile_cont by hand: linear interpolation at p x (n - 1) in the sorted values."""
    if not values:
        return q(None, None, None)
    v = sorted(values)

    def at(p: float) -> float:
        pos = p * (len(v) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(v) - 1)
        return round(v[lo] + (pos - lo) * (v[hi] - v[lo]), 6)

    return q(at(0.25), at(0.5), at(0.75))


def test_distributions_over_random_activity_equal_percentiles_over_every_learner(scratch: str) -> None:
    """Many learners, most idle: the statement pads the idle ones as zeros without rows for them."""
    import random

    rng = random.Random(13)
    org = uuid.uuid4()
    sql(scratch, "INSERT INTO organizations (id, name) VALUES (%s, 'R')", (org,))
    learners = [uuid.uuid4() for _ in range(23)]
    for n, user in enumerate(learners):
        sql(scratch, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, '{learner}')",
            (user, org, f"r{n}@example.test", f"r{n}"))
    events = []
    for user in learners[:9]:
        for _ in range(rng.randint(1, 12)):
            verb = rng.choice(["completed", "passed", "failed", "session"])
            events.append(ev(user, verb, at(rng.randint(0, 6), rng.randint(0, 23)), f"o-{rng.randint(1, 6)}",
                             score=round(rng.random(), 3) if verb in ("passed", "failed") else None,
                             seconds=rng.choice([None, 60 * rng.randint(1, 90)])))
    send(org, events)
    run(scratch, "weekly", MONDAY, WEEK_END)

    per_user: dict[UUID, dict[str, Any]] = {u: dict(objects=set(), days=set(), seconds=0, scores=[]) for u in learners}
    for e in events:
        mine = per_user[UUID(e["userId"])]
        when = datetime.fromisoformat(e["occurredAt"])
        mine["days"].add(when.date())
        mine["seconds"] += (e.get("result") or {}).get("durationSeconds") or 0
        if e["verb"] == "completed":
            mine["objects"].add(e["objectId"])
        if (e.get("result") or {}).get("score") is not None:
            mine["scores"].append(e["result"]["score"])
    got = stored(scratch, [org], "weekly")[(org, None, "weekly", MONDAY)]
    assert got["learners"] == 23 and got["active_learners"] == 9
    assert got["distribution"] == {
        "completions": quartiles([len(m["objects"]) for m in per_user.values()]),
        "activeDays": quartiles([len(m["days"]) for m in per_user.values()]),
        "minutes": quartiles([m["seconds"] / 60 for m in per_user.values()]),
        "meanScore": quartiles([sum(m["scores"]) / len(m["scores"]) for m in per_user.values() if m["scores"]]),
    }


# --- the job against the same rollups computed from the raw events ------------------------------


def _raw_rollups() -> Any:
    """bench/rollups_raw.py: the rollups straight from learning_events (the benchmark's baseline)."""
    spec = importlib.util.spec_from_file_location("rollups_raw", ROOT / "bench" / "rollups_raw.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _random_history(url: str, rng: Any, first: date, last: date) -> tuple[UUID, list[UUID], list[UUID]]:
    """An organization of 30 learners (6 never active), 3 trainers whose cohorts overlap (some
    learners in two, some in none), a fourth without learners, and a trainer with events of its own; a random
    history over [first, last): repeated objects across days, several scored assessments a day,
    sessions with and without durations, events at the edges of UTC days."""
    org = uuid.uuid4()
    sql(url, "INSERT INTO organizations (id, name) VALUES (%s, 'P')", (org,))
    learners = [uuid.uuid4() for _ in range(30)]
    trainers = [uuid.uuid4() for _ in range(4)]
    for n, (user, roles) in enumerate([(u, ["learner"]) for u in learners] + [(t, ["trainer"]) for t in trainers]):
        sql(url, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, %s)",
            (user, org, f"p{n}-{user.hex[:6]}@example.test", f"p{n}", roles))
    for n, user in enumerate(learners):
        # Learner n: in trainer n % 3's cohort unless n % 5 == 0, and in the next one's too when n % 4 == 0.
        for t in {n % 3} - ({n % 3} if n % 5 == 0 else set()) | ({(n + 1) % 3} if n % 4 == 0 else set()):
            sql(url, "INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) VALUES (%s, %s, %s)",
                (org, trainers[t], user))
    span = (last - first).days
    events = []
    for user in [*learners[:24], trainers[0]]:
        for _ in range(rng.randint(3, 40)):
            day = first + timedelta(days=rng.randrange(span))
            when = datetime.combine(day, time(rng.choice([0, 9, 13, 23]), rng.choice([0, 30, 59]),
                                              rng.choice([0, 59])), UTC)
            verb = rng.choice(["completed", "completed", "passed", "failed", "attempted", "session"])
            scored = verb in ("passed", "failed") or (verb == "attempted" and rng.random() < .5)
            score = round(rng.random(), 4) if scored else None
            events.append(ev(user, verb, when, f"o-{rng.randint(1, 8)}", score=score,
                             seconds=rng.choice([None, 60 * rng.randint(1, 120)])))
    for i in range(0, len(events), 500):
        send(org, events[i:i + 500])
    return org, learners, trainers


def test_the_job_equals_the_rollups_from_raw_events_over_random_histories(scratch: str) -> None:
    """Every stored column (capped sums included) of every population and period equals the same
    rollups computed from the raw events, for a 100-day backfill (weeks across month ends,
    overlapping cohorts), then after new events and a new assignment (only the changed periods
    recomputed)."""
    import random

    raw = _raw_rollups()
    rng = random.Random(29)
    as_of = TODAY
    spans = windows(as_of, 100)
    first = min(s for s, _ in spans.values())
    assert any(s.month != (s + timedelta(days=6)).month
               for s in (spans["weekly"][0] + timedelta(weeks=n) for n in range(13)))  # a week across a month end
    org, learners, trainers = _random_history(scratch, rng, first, as_of)

    def both() -> tuple[int, int, int, int]:
        invoke(handler, {"date": as_of.isoformat(), "days": 100})
        with psycopg.connect(scratch) as conn:
            conn.execute("SELECT app.begin_maintenance()")
            raw.run(conn, spans, repo.ROLLUP_VERSION)
            return raw.differences(conn)  # type: ignore[no-any-return]

    periods = 0
    for granularity, (start, end) in spans.items():
        while start < end:
            periods, start = periods + 1, repo.next_period(granularity, start)  # type: ignore[arg-type]
    # The organization and the cohorts of trainers 0, 1 and 2 (trainer 3 has no learners yet).
    assert both() == (4 * periods, 4 * periods, 0, 0)

    send(org, [ev(learners[2], "completed", datetime.combine(as_of - timedelta(days=3), time(8), UTC), "o-1"),
               ev(learners[27], "passed", datetime.combine(as_of - timedelta(days=40), time(8), UTC), "q", score=.3)])
    sql(scratch, "INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) VALUES (%s, %s, %s)",
        (org, trainers[3], learners[25]))
    assert both() == (5 * periods, 5 * periods, 0, 0)


def test_values_are_collected_only_where_a_quartile_can_reach_them_and_equal_the_raw_rollups(scratch: str) -> None:
    """An organization of 60 learners, 8 of them active: its quartiles are all the idle learners'
    zeros (its values are not collected). Trainer A's cohort is 5 of the active learners (its
    quartiles reach their values: collected), trainer B's 3 active and 25 idle ones, and one
    active learner is in both cohorts (its signature is shared by a collected and an uncollected
    population). Every row equals the rollups from the raw events, and the distributions are
    the hand-computed ones."""
    import random

    raw = _raw_rollups()
    rng = random.Random(61)
    as_of = TODAY
    spans = windows(as_of, 14)
    org = uuid.uuid4()
    sql(scratch, "INSERT INTO organizations (id, name) VALUES (%s, 'V')", (org,))
    learners = [uuid.uuid4() for _ in range(60)]
    trainer_a, trainer_b = uuid.uuid4(), uuid.uuid4()
    for n, (user, roles) in enumerate([(u, ["learner"]) for u in learners]
                                      + [(trainer_a, ["trainer"]), (trainer_b, ["trainer"])]):
        sql(scratch, "INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, %s, %s)",
            (user, org, f"v{n}@example.test", f"v{n}", roles))
    cohorts = {trainer_a: learners[:5], trainer_b: learners[4:8] + learners[30:54]}
    for trainer, members in cohorts.items():
        for user in members:
            sql(scratch, "INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) "
                         "VALUES (%s, %s, %s)", (org, trainer, user))
    first = min(s for s, _ in spans.values())
    events = []
    for user in learners[:8]:
        for _ in range(rng.randint(8, 30)):
            day = first + timedelta(days=rng.randrange((as_of - first).days))
            verb = rng.choice(["completed", "completed", "passed", "failed", "session"])
            events.append(ev(user, verb, datetime.combine(day, time(rng.randint(0, 23)), UTC), f"o-{rng.randint(1, 5)}",
                             score=round(rng.random(), 4) if verb in ("passed", "failed") else None,
                             seconds=rng.choice([None, 60 * rng.randint(1, 90)])))
    send(org, events)
    invoke(handler, {"date": as_of.isoformat(), "days": 14})
    with psycopg.connect(scratch) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        raw.run(conn, spans, repo.ROLLUP_VERSION)
        ours, theirs, missing, extra = raw.differences(conn)
    assert ours == theirs > 0 and missing == extra == 0

    # The weekly rows of the last complete week, by hand: every learner of the population, the
    # idle ones as zeros.
    week = spans["weekly"][1] - timedelta(days=7)
    per_user: dict[UUID, dict[str, Any]] = {u: dict(objects=set(), days=set(), seconds=0) for u in learners}
    for e in events:
        when = datetime.fromisoformat(e["occurredAt"])
        if week <= when.date() < week + timedelta(days=7):
            mine = per_user[UUID(e["userId"])]
            mine["days"].add(when.date())
            mine["seconds"] += (e.get("result") or {}).get("durationSeconds") or 0
            if e["verb"] == "completed":
                mine["objects"].add(e["objectId"])
    rows = stored(scratch, [org], "weekly")
    for trainer, members in ((None, learners), *cohorts.items()):
        got = rows[(org, trainer, "weekly", week)]["distribution"]
        mine = [per_user[u] for u in members]
        assert {k: got[k] for k in ("completions", "activeDays", "minutes")} == {
            "completions": quartiles([len(m["objects"]) for m in mine]),
            "activeDays": quartiles([len(m["days"]) for m in mine]),
            "minutes": quartiles([m["seconds"] / 60 for m in mine]),
        }
    assert rows[(org, None, "weekly", week)]["distribution"]["activeDays"] == q(0, 0, 0)  # all zeros
    assert rows[(org, trainer_a, "weekly", week)]["distribution"]["activeDays"]["p75"] > 0  # reaches the values


# --- organizations shared over several connections (ROLLUP_CONNECTIONS) -------------------------


@pytest.fixture
def two_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ROLLUP_CONNECTIONS", "2")
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()  # read again once monkeypatch has put the environment back


def _raw_differences(url: str, spans: dict[Any, tuple[date, date]]) -> tuple[int, int, int, int]:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT app.begin_maintenance()")
        _raw_rollups().run(conn, spans, repo.ROLLUP_VERSION)
        return _raw_rollups().differences(conn)  # type: ignore[no-any-return]


def test_organizations_shared_over_two_connections_roll_up_as_one_and_equal_the_raw_rollups(
    scratch: str, two_connections: None
) -> None:
    """Three organizations dealt over two connections (their learners balanced: two and one):
    every row equals the rollups from the raw events; an unchanged re-run recomputes nothing; a
    new event recomputes only its organization's periods."""
    import random

    rng = random.Random(7)
    as_of = TODAY
    spans = windows(as_of, 35)
    first = min(s for s, _ in spans.values())
    orgs = [_random_history(scratch, rng, first, as_of) for _ in range(3)]
    event = {"date": as_of.isoformat(), "days": 35}

    done = invoke(handler, event)

    assert done["status"] == "ok" and done["details"]["connections"] == 2
    ours, theirs, missing, extra = _raw_differences(scratch, spans)
    assert ours == theirs == done["rowsWritten"] > 0 and missing == extra == 0
    # Every organization's periods were changed (never rolled up), each counted once.
    periods = {g: sum(1 for _ in _periods(g, *span)) for g, span in spans.items()}  # type: ignore[arg-type]
    assert {g: done["details"][g]["periodsChanged"] for g in spans} == {g: 3 * n for g, n in periods.items()}

    again = invoke(handler, event)
    assert again["rowsWritten"] == 0
    assert [again["details"][g]["periodsChanged"] for g in spans] == [0, 0, 0]
    assert again["details"]["connections"] == 1  # nothing changed: no other connection opened

    org, learners, _ = orgs[1]
    day = spans["weekly"][1] - timedelta(days=5)  # in the last complete week (and a daily period)
    send(org, [ev(learners[3], "completed", datetime.combine(day, time(8), UTC), "o-new")])
    grown = invoke(handler, event)
    assert [grown["details"][g]["periodsChanged"] for g in ("daily", "weekly")] == [1, 1]
    assert _raw_differences(scratch, spans)[2:] == (0, 0)


def _periods(granularity: Any, start: date, end: date) -> Iterator[date]:
    while start < end:
        yield start
        start = repo.next_period(granularity, start)


@pytest.mark.parametrize("failing_shard", [0, 1], ids=["own-connection", "other-connection"])
def test_a_shard_that_fails_fails_the_run_and_the_next_run_completes_it(
    scratch: str, two_connections: None, monkeypatch: pytest.MonkeyPatch, failing_shard: int
) -> None:
    """Each shard runs in a transaction of its own, the first on the job's connection: when one
    fails the run fails, what another connection committed stays (rows with their
    fingerprints), the job's own shard is rolled back, and the next run rolls up what is
    missing, equal to the raw rollups."""
    import random
    import threading

    rng = random.Random(11)
    as_of = TODAY
    spans = windows(as_of, 14)
    first = min(s for s, _ in spans.values())
    orgs = {_random_history(scratch, rng, first, as_of)[0] for _ in range(2)}
    works = job._roll_up_changed
    committed: set[UUID] = set()

    def one_fails(conn: psycopg.Connection, spans_: Any, prints: Any) -> Any:
        mine = {p.organization_id for ps in prints.values() for p in ps}
        own = not threading.current_thread().name.startswith("rollups")
        if own == (failing_shard == 0):
            raise RuntimeError("this shard fails")
        counts = works(conn, spans_, prints)
        if not own:
            committed.update(mine)
        return counts

    monkeypatch.setattr(job, "_roll_up_changed", one_fails)
    with pytest.raises(RuntimeError, match="this shard fails"):
        invoke(handler, {"date": as_of.isoformat(), "days": 14})
    # The other connection's shard committed (one organization); the job's own rolled back.
    assert len(committed) == (1 if failing_shard == 0 else 0)
    kept = {org for (org,) in sql(scratch, "SELECT DISTINCT organization_id FROM app.population_rollup_inputs")}
    rows = {org for (org,) in sql(scratch, "SELECT DISTINCT organization_id FROM population_rollups")}
    assert kept == rows == committed

    monkeypatch.setattr(job, "_roll_up_changed", works)
    done = invoke(handler, {"date": as_of.isoformat(), "days": 14})
    assert done["status"] == "ok"
    ours, theirs, missing, extra = _raw_differences(scratch, spans)
    assert ours == theirs > 0 and missing == extra == 0
    # Only what was missing was rolled up: the committed organization's periods were unchanged.
    assert done["rowsWritten"] == ours // (2 if committed else 1)
    assert done["details"]["connections"] == (1 if committed else 2)
    assert {org for (org,) in sql(scratch, "SELECT DISTINCT organization_id FROM population_rollups")} == orgs


def test_every_shard_waits_for_a_lock_at_most_the_rollups_lock_timeout(
    scratch: str, two_connections: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's own transaction holds its locks while it waits for the other shards: each
    shard's transaction bounds its lock waits, so a lock request queued between them (a
    partition's DDL) fails the run instead of stalling it. Each has the rollups' memory too."""
    import random

    rng = random.Random(5)
    spans = windows(TODAY, 7)
    for _ in range(2):
        _random_history(scratch, rng, min(s for s, _ in spans.values()), TODAY)
    works = job._roll_up_changed
    seen: list[str] = []

    def noting(conn: psycopg.Connection, spans_: Any, prints: Any) -> Any:
        counts = works(conn, spans_, prints)
        seen.append(conn.execute(_SETTINGS).fetchone())  # type: ignore[arg-type]
        return counts

    monkeypatch.setattr(job, "_roll_up_changed", noting)
    done = invoke(handler, {"date": TODAY.isoformat(), "days": 7})
    assert done["status"] == "ok" and done["details"]["connections"] == 2
    assert seen == [(repo.LOCK_TIMEOUT, repo.WORK_MEM, repo.HASH_MEM_MULTIPLIER)] * 2


_SETTINGS = ("SELECT current_setting('lock_timeout'), current_setting('work_mem'), "
             "current_setting('hash_mem_multiplier')")


def test_the_fingerprints_pass_runs_with_the_rollups_memory_and_the_settings_end_with_the_run(
    scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass that finds the changed periods reads every learner day of the window, as the
    rollup does: it hashes with the same memory. The settings are the transaction's own: the
    connection has the server's defaults again afterwards."""
    finds = repo.changed_periods
    seen: list[tuple[str, ...]] = []

    def noting(conn: psycopg.Connection, spans: Any) -> Any:
        seen.append(conn.execute(_SETTINGS).fetchone())  # type: ignore[arg-type]
        return finds(conn, spans)

    monkeypatch.setattr(repo, "changed_periods", noting)
    done = invoke(handler, {"date": TODAY.isoformat(), "days": 7})
    assert done["status"] == "ok"
    assert seen == [(repo.LOCK_TIMEOUT, repo.WORK_MEM, repo.HASH_MEM_MULTIPLIER)]
    with psycopg.connect(scratch) as conn:
        repo.use_rollup_settings(conn)
        assert conn.execute(_SETTINGS).fetchone() == (repo.LOCK_TIMEOUT, repo.WORK_MEM, repo.HASH_MEM_MULTIPLIER)
        conn.commit()
        assert conn.execute("SELECT current_setting('hash_mem_multiplier')").fetchone() != (repo.HASH_MEM_MULTIPLIER,)


def test_shards_deal_organizations_by_the_inputs_of_their_changed_periods() -> None:
    """An organization's periods stay together; the heaviest (most learner days and memberships
    behind its changed periods) go first, each to the lightest shard."""
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    day = date(2026, 11, 2)

    def fp(org: UUID, inputs: int | None, offset: int = 0) -> repo.Fingerprint:
        return repo.Fingerprint(org, day + timedelta(days=offset), inputs, None if inputs is None else 1)

    changed: dict[Any, list[repo.Fingerprint]] = {
        "daily": [fp(a, 50), fp(a, 40, 1), fp(b, 70), fp(c, None)], "weekly": [fp(a, 90), fp(c, 20)]}

    parts = job.shards(changed, 2)

    # a weighs 180, b 70, c 21 (a gone period counts 1): a alone; b and c together.
    assert parts == [{"daily": [fp(a, 50), fp(a, 40, 1)], "weekly": [fp(a, 90)]},
                     {"daily": [fp(b, 70), fp(c, None)], "weekly": [fp(c, 20)]}]
    (one,) = job.shards(changed, 1)  # every period once, organization by organization, heaviest first
    assert one == {"daily": [fp(a, 50), fp(a, 40, 1), fp(b, 70), fp(c, None)], "weekly": [fp(a, 90), fp(c, 20)]}
    assert job.shards({"daily": []}, 2) == []
