"""Demo data for `make run`: two organizations, 90 days of learning activity and what the service
derives from it, so every endpoint has something worth looking at.

- ACME: 36 learners (learner-01..36), 3 trainers with cohorts of different sizes (trainer-01: 15
  learners, trainer-02: 12, trainer-03: 9), an org admin (admin), skill targets. 36 learners is
  enough for peer comparison (k >= 10) to show.
- GLOBEX: 5 learners and an admin: too few peers, so comparison says so plainly.
- Service clients: demo-ingest-acme (ingest, ACME), demo-directory (directory, platform-wide),
  platform-bus (ingest and directory, platform-wide).
- 90 days of learning events per learner (sessions, module progress and completions, practice
  quizzes, graded assessments with scores per skill), each learner with a persona (PERSONAS):
  improving, steady, declining (much less active in the last 4 weeks: a velocity drop),
  dropped out (nothing for the last 9 to 30 days: inactive) or struggling (scores well under the
  skill targets: below target), and an activity level of their own, so trends, the at-risk list
  and the leaderboard differ as they would in a real organization.
- Derived from those events by the service's own code: the learners' days, analytics snapshots
  and gamification (`ms8.repositories.days`, `ms8.services.analytics_refresh`,
  `ms8.services.gamification`, as ingesting the events would), the population rollups (the
  rollup job `ms8.jobs.rollups`, as a 90-day backfill) and the peer-comparison view.

Deterministic: one `random.Random(SEED)` and ids from local.demo_ids, with dates relative to the
day it is loaded. Everything is written as the owner in one maintenance transaction (all or
nothing); the ACME organization row marks the data as loaded. `make run` loads it
(local.stack.prepare_database); this module only generates and writes it.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg

from local import demo_ids
from ms8.jobs.rollups import roll_up
from ms8.jobs.runner import JobInput
from ms8.repositories import days
from ms8.repositories.events import InsertedEvent
from ms8.services import analytics_refresh, gamification

SEED = 20261126
DAYS = 90

COHORT_SIZES = (15, 12, 9)  # ACME's trainers, in order
ACME_LEARNERS = sum(COHORT_SIZES)
ACME_TRAINERS = len(COHORT_SIZES)
GLOBEX_LEARNERS = 5
# Who the learners are: ACME's 36 shuffled, GLOBEX's 5 one of each.
PERSONAS = ("improving", "steady", "declining", "dropped_out", "struggling")
ACME_PERSONAS = ["steady"] * 12 + ["improving"] * 9 + ["declining"] * 5 + ["dropped_out"] * 5 + ["struggling"] * 5
SKILL_TARGETS = {
    demo_ids.ACME: {"sql": 0.8, "python": 0.75, "statistics": 0.7, "communication": 0.7},
    demo_ids.GLOBEX: {"sql": 0.7, "communication": 0.65},
}
ORGANIZATIONS = {
    demo_ids.ACME: ("Acme Corporation", ["course completions", "assessment pass rate"],
                    ["analysts fluent in SQL and Python"]),
    demo_ids.GLOBEX: ("Globex", ["weekly active learners"], ["data literacy for every team"]),
}
SERVICE_CLIENTS = [
    (demo_ids.INGEST_CLIENT, demo_ids.ACME, ["ingest"], "demo: ACME's learning platform sending activity"),
    (demo_ids.DIRECTORY_CLIENT, None, ["directory"], "demo: the platform's directory"),
    ("platform-bus", None, ["ingest", "directory"], "demo: the platform's event bus"),
]
# Courses: (object id, skills, modules). Learners take them in an order of their own.
CATALOG = [
    ("sql-fundamentals", ("sql",), 6),
    ("python-for-analysts", ("python",), 8),
    ("applied-statistics", ("statistics",), 7),
    ("storytelling-with-data", ("communication", "statistics"), 5),
    ("data-pipelines", ("sql", "python"), 6),
    ("presenting-insights", ("communication",), 4),
]
SKILLS = ("sql", "python", "statistics", "communication")
PASS_MARK = 0.7
FIRST_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
               "Liam", "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor",
               "Wen", "Ximena", "Yusuf", "Zoe"]
LAST_NAMES = ["Abara", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova",
              "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi",
              "Silva", "Tanaka", "Vargas", "Weber", "Yilmaz"]
TIMEZONES = ["UTC", "Europe/Berlin", "Europe/London", "America/New_York", "Asia/Singapore"]


@dataclass(frozen=True, slots=True)
class User:
    org: str
    handle: str
    name: str
    roles: tuple[str, ...]
    timezone: str

    @property
    def id(self) -> uuid.UUID:
        return demo_ids.user_id(self.org, self.handle)

    @property
    def org_id(self) -> uuid.UUID:
        return demo_ids.org_id(self.org)

    @property
    def email(self) -> str:
        return f"{self.handle}@{self.org}.example"


@dataclass(frozen=True, slots=True)
class Event:
    event_id: uuid.UUID
    user: User
    verb: str
    object_id: str
    object_type: str
    skills: tuple[str, ...]
    occurred_at: datetime
    score: float | None = None
    success: bool | None = None
    duration_seconds: int | None = None


@dataclass
class Demo:
    """Everything the loader writes, generated in memory first."""

    today: date
    users: list[User] = field(default_factory=list)
    assignments: list[tuple[User, User]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    personas: dict[uuid.UUID, str] = field(default_factory=dict)

    def learners(self) -> list[User]:
        return [u for u in self.users if "learner" in u.roles]


def _users(rng: random.Random) -> tuple[list[User], list[tuple[User, User]]]:
    names = [f"{f} {ln}" for f in FIRST_NAMES for ln in LAST_NAMES]
    rng.shuffle(names)
    pick = iter(names)

    def user(org: str, handle: str, roles: tuple[str, ...]) -> User:
        tz = TIMEZONES[0] if rng.random() < 0.6 else rng.choice(TIMEZONES)
        return User(org, handle, next(pick), roles, tz)

    acme_learners = [user(demo_ids.ACME, f"learner-{n:02d}", ("learner",)) for n in range(1, ACME_LEARNERS + 1)]
    trainers = [user(demo_ids.ACME, f"trainer-{n:02d}", ("trainer",)) for n in range(1, ACME_TRAINERS + 1)]
    users = [*acme_learners, *trainers, user(demo_ids.ACME, "admin", ("org_admin",))]
    users += [user(demo_ids.GLOBEX, f"learner-{n:02d}", ("learner",)) for n in range(1, GLOBEX_LEARNERS + 1)]
    users.append(user(demo_ids.GLOBEX, "admin", ("org_admin",)))
    starts = [sum(COHORT_SIZES[:i]) for i in range(len(COHORT_SIZES))]
    assignments = [(t, acme_learners[starts[i] + j]) for i, t in enumerate(trainers) for j in range(COHORT_SIZES[i])]
    return users, assignments


def users(seed: int = SEED) -> list[User]:
    """The demo's users (the same on every machine), without generating their activity."""
    return _users(random.Random(seed))[0]


def _personas(rng: random.Random, learners: list[User]) -> dict[uuid.UUID, str]:
    acme = [u for u in learners if u.org == demo_ids.ACME]
    drawn = rng.sample(ACME_PERSONAS, len(ACME_PERSONAS))
    out = {u.id: drawn[i] for i, u in enumerate(acme)}
    others = [u for u in learners if u.org != demo_ids.ACME]
    out |= {u.id: PERSONAS[i % len(PERSONAS)] for i, u in enumerate(others)}
    return out


def _pace(persona: str, progress: float, days_left: int, stop: int) -> float:
    """How much of their usual activity a persona keeps on a day (`days_left` days before today)."""
    if persona == "improving":
        return 0.35 + 1.1 * progress
    if persona == "declining":
        return 1.0 if days_left > 28 else 0.12
    if persona == "dropped_out":
        return 1.0 if days_left > stop else 0.0
    return 1.0


def _activity(rng: random.Random, learner: User, today: date, persona: str) -> list[Event]:
    """90 days of one learner's activity, from their persona and a level of activity of their own."""
    active = rng.uniform(0.3, 0.95)  # chance of learning on a working day
    stop = rng.randint(9, 30)  # a dropped-out learner's last active day, in days before today
    low, high = (0.35, 0.55) if persona == "struggling" else (0.8, 0.97)
    ability = {s: rng.uniform(low, high) for s in SKILLS}
    growth = rng.uniform(0.0, 0.15)  # how much scores improve over the 90 days
    courses = rng.sample(CATALOG, len(CATALOG))
    course, module, attempts_left = 0, 0, 0
    seq = 0
    events: list[Event] = []

    def add(verb: str, object_id: str, object_type: str, skills: tuple[str, ...], at: datetime,
            **extra: Any) -> None:
        nonlocal seq
        seq += 1
        event_id = uuid.uuid5(demo_ids.NAMESPACE, f"event/{learner.org}/{learner.handle}/{seq}")
        events.append(Event(event_id, learner, verb, object_id, object_type, skills, at, **extra))

    start = today - timedelta(days=DAYS)
    for d in range(DAYS):
        day = start + timedelta(days=d)
        progress = d / (DAYS - 1)
        chance = active * _pace(persona, progress, DAYS - d, stop) * (0.3 if day.weekday() >= 5 else 1.0)
        if rng.random() >= min(0.97, max(0.03, chance)):
            continue
        at = datetime.combine(day, time(hour=rng.randint(7, 19), minute=rng.randint(0, 59)), UTC)
        for _ in range(1 if rng.random() < 0.75 else 2):
            minutes = rng.randint(10, 75)
            add("session", f"session/{day.isoformat()}", "session", (), at, duration_seconds=minutes * 60)
            if course >= len(courses):
                course = 0  # the catalog done: revisit it
            name, skills, modules = courses[course]
            if attempts_left == 0 and module < modules:
                add("progressed", f"{name}/module-{module + 1}", "module", skills,
                    at + timedelta(minutes=minutes // 2), duration_seconds=minutes * 30)
                if rng.random() < 0.55:
                    module += 1
                    add("completed", f"{name}/module-{module}", "module", skills, at + timedelta(minutes=minutes))
                if rng.random() < 0.25:
                    score = _score(rng, ability, skills, growth * progress, spread=0.12)
                    add("attempted", f"{name}/quiz-{module + 1}", "quiz", skills,
                        at + timedelta(minutes=minutes), score=score, success=score >= PASS_MARK)
                if module == modules:
                    attempts_left = 3
            elif attempts_left > 0:
                score = _score(rng, ability, skills, growth * progress + 0.04 * (3 - attempts_left), spread=0.08)
                passed = score >= PASS_MARK
                add("passed" if passed else "failed", f"{name}/assessment", "assessment", skills,
                    at + timedelta(minutes=minutes), score=score, success=passed,
                    duration_seconds=rng.randint(15, 40) * 60)
                attempts_left -= 1
                if passed or attempts_left == 0:
                    if passed:
                        add("completed", name, "course", skills, at + timedelta(minutes=minutes + 1))
                    course, module, attempts_left = course + 1, 0, 0
            at += timedelta(minutes=minutes + rng.randint(30, 240))
            if at.date() != day or at.hour >= 21:  # a day's events stay inside that day
                break
    return events


def _score(rng: random.Random, ability: dict[str, float], skills: tuple[str, ...], gain: float,
           spread: float) -> float:
    base = sum(ability[s] for s in skills) / len(skills) + gain
    return round(min(1.0, max(0.0, rng.gauss(base, spread))), 3)


def generate(today: date, seed: int = SEED) -> Demo:
    """The demo, in memory: the same `seed` and `today` give the same data on every machine."""
    rng = random.Random(seed)
    users, assignments = _users(rng)
    demo = Demo(today, users, assignments)
    demo.personas = _personas(rng, demo.learners())
    for learner in demo.learners():
        demo.events.extend(_activity(rng, learner, today, demo.personas[learner.id]))
    return demo


# --- loading -----------------------------------------------------------------------------------


def is_loaded(conn: psycopg.Connection) -> bool:
    """Whether the demo is in this database (its ACME organization exists)."""
    with conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        row = conn.execute("SELECT 1 FROM organizations WHERE id = %s", (demo_ids.org_id(demo_ids.ACME),)).fetchone()
    return row is not None


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _event_rows(events: list[Event]) -> list[dict[str, Any]]:
    return [{"event_id": str(e.event_id), "user_id": str(e.user.id), "organization_id": str(e.user.org_id),
             "verb": e.verb, "object_id": e.object_id, "object_type": e.object_type, "skills": list(e.skills),
             "score": e.score, "success": e.success, "duration_seconds": e.duration_seconds,
             "occurred_at": e.occurred_at.isoformat()} for e in events]


def load(conn: psycopg.Connection, now: datetime | None = None, seed: int = SEED) -> dict[str, int]:
    """Write the demo in one maintenance transaction (`conn`: the owner, autocommit); counts."""
    now = now or datetime.now(UTC)
    demo = generate(now.date(), seed)
    with conn.transaction():
        conn.execute("SELECT app.begin_maintenance()")
        _write_directory(conn, demo)
        first_month = (demo.today - timedelta(days=DAYS)).replace(day=1)
        conn.execute("SELECT app.ensure_monthly_partition(m::date) FROM generate_series(%s::date, %s::date, "
                     "interval '1 month') AS m", (first_month, demo.today))
        for chunk in _chunks(_event_rows(demo.events), 5000):
            conn.execute(
                "INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, "
                "skills, score, success, duration_seconds, occurred_at) "
                "SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(event_id uuid, user_id uuid, "
                "organization_id uuid, verb text, object_id text, object_type text, skills text[], score real, "
                "success boolean, duration_seconds integer, occurred_at timestamptz)",
                (json.dumps(chunk),),
            )
        _derive(conn, demo, now)
        rollup_rows = _roll_up(conn, demo.today)
        conn.execute("REFRESH MATERIALIZED VIEW comparison_aggregates")
        groups = conn.execute("SELECT count(*) FROM comparison_aggregates WHERE user_count >= 10").fetchone()
        from ms8.repositories.maintenance import transaction_now
        from ms8.services.comparison import release_groups

        release_groups(conn, transaction_now(conn))  # what the refresh job publishes: the noisy peer groups
    return {"users": len(demo.users), "learning_events": len(demo.events),
            "analytics": 4 * len(demo.learners()), "population_rollups": rollup_rows,
            "comparison_groups": int(groups[0]) if groups else 0}


def _write_directory(conn: psycopg.Connection, demo: Demo) -> None:
    for slug, (name, kpis, values) in ORGANIZATIONS.items():
        conn.execute("INSERT INTO organizations (id, name, kpis, value_propositions) VALUES (%s, %s, %s, %s)",
                     (demo_ids.org_id(slug), name, kpis, values))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO users (id, organization_id, email, name, roles, timezone) VALUES (%s, %s, %s, %s, %s, %s)",
            [(u.id, u.org_id, u.email, u.name, list(u.roles), u.timezone) for u in demo.users],
        )
        cur.executemany(
            "INSERT INTO trainer_assignments (organization_id, trainer_id, learner_id) VALUES (%s, %s, %s)",
            [(t.org_id, t.id, learner.id) for t, learner in demo.assignments],
        )
        cur.executemany(
            "INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, %s, %s)",
            [(demo_ids.org_id(org), skill, level)
             for org, targets in SKILL_TARGETS.items() for skill, level in targets.items()],
        )
        cur.executemany(
            "INSERT INTO service_clients AS c (client_id, organization_id, scopes, description) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (client_id) DO UPDATE "  # migrations may register one
            "SET scopes = ARRAY(SELECT DISTINCT s FROM unnest(c.scopes || EXCLUDED.scopes) s ORDER BY s)",
            [(c, demo_ids.org_id(org) if org else None, scopes, d) for c, org, scopes, d in SERVICE_CLIENTS],
        )


def _derive(conn: psycopg.Connection, demo: Demo, now: datetime) -> None:
    """The learners' days, analytics snapshots and gamification from their events, by the
    service's own code (what ingesting these events through POST /v1/events does)."""
    for slug in ORGANIZATIONS:
        days.rebuild(conn, demo_ids.org_id(slug))
    computed = analytics_refresh.compute(conn, [u.id for u in demo.learners()], now)
    analytics_refresh.write(conn, computed, now)
    inserted = [InsertedEvent(e.event_id, e.user.id, e.verb, e.object_id, e.occurred_at) for e in demo.events]
    gamification.award_and_refresh(conn, computed, inserted, now, basis="occurred")  # platform history


def _roll_up(conn: psycopg.Connection, today: date) -> int:
    """The population rollups of the 90 days, by the rollup job itself (as a backfill run)."""
    midnight = datetime.combine(today, time(), UTC)
    outcome = roll_up(conn, JobInput(today, midnight, days=DAYS, replay=True))
    return outcome.rows_written

