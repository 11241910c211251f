"""Demo data for `make run`: two organizations, 90 days of learning activity and what the service
derives from it, so every endpoint has something worth looking at.

- ACME: 36 learners (learner-01..36), 3 trainers (trainer-01..03, 12 assigned learners each), an
  org admin (admin), skill targets. 36 learners is enough for peer comparison (k >= 10) to show.
- GLOBEX: 5 learners and an admin: too few peers, so comparison says so plainly.
- Service clients: demo-ingest-acme (ingest, ACME), demo-directory (directory, platform-wide),
  platform-bus (ingest and directory, platform-wide).
- 90 days of learning events per learner (sessions, module progress and completions, practice
  quizzes, graded assessments with scores per skill), with a persona per learner (how active, how
  able per skill, improving or slipping) so the figures differ believably.
- Derived from those events, by the service's own code where it exists: analytics snapshots and
  gamification (issue 7's `ms8.services.analytics_refresh` and `ms8.services.gamification`, as
  ingesting the events would; without them the snapshots are computed here by the same
  definitions, section 8), the organization history (the rollup job `ms8.jobs.rollups`, as a
  90-day backfill) and the peer-comparison view.

Deterministic: one `random.Random(SEED)` and ids from scripts.demo_ids, with dates relative to the
day it is loaded. Everything is written as the owner in one maintenance transaction (all or
nothing); the ACME organization row marks the data as loaded.

    python -m scripts.demo            # load into the `make run` database if not loaded yet
"""

from __future__ import annotations

import random
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scripts import demo_ids

SEED = 20261126
DAYS = 90
DEFINITION_VERSION = 1
MASTERY_HALF_LIFE_DAYS = 30.0

ACME_LEARNERS = 36
ACME_TRAINERS = 3
GLOBEX_LEARNERS = 5
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
    per_trainer = ACME_LEARNERS // ACME_TRAINERS
    assignments = [(t, acme_learners[i * per_trainer + j]) for i, t in enumerate(trainers) for j in range(per_trainer)]
    return users, assignments


def users(seed: int = SEED) -> list[User]:
    """The demo's users (the same on every machine), without generating their activity."""
    return _users(random.Random(seed))[0]


def _activity(rng: random.Random, learner: User, today: date) -> list[Event]:
    """90 days of one learner's activity, from a persona drawn for them."""
    active = rng.uniform(0.25, 0.9)  # chance of learning on a working day
    drift = rng.uniform(-0.5, 0.6)  # slipping (-) or picking up (+) over the period
    ability = {s: rng.uniform(0.45, 0.9) for s in SKILLS}
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
        chance = active * (1 + drift * (progress - 0.5)) * (0.3 if day.weekday() >= 5 else 1.0)
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
    for learner in demo.learners():
        demo.events.extend(_activity(rng, learner, today))
    return demo


# --- analytics from the events (DESIGN section 8), where the service's own code is missing -----


def _r(x: float) -> float:
    return round(x, 4)


def snapshots(events: list[Event], targets: dict[str, float], now: datetime) -> dict[str, dict[str, Any]]:
    """One learner's four analytics snapshots (`data` per type), by the definitions of section 8."""
    def within(days: int, offset: int = 0) -> list[Event]:
        lo, hi = now - timedelta(days=days + offset), now - timedelta(days=offset)
        return [e for e in events if lo < e.occurred_at <= hi]

    completions = [e for e in within(28) if e.verb == "completed"]
    before = [e for e in within(28, 28) if e.verb == "completed"]
    velocity, previous = len(completions) / 4, len(before) / 4
    days30 = {e.occurred_at.date() for e in within(30)}
    days7 = {e.occurred_at.date() for e in within(7)}
    sessions30 = [e for e in within(30) if e.verb == "session"]
    weighted: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    scored = [e for e in events if e.score is not None and e.verb in ("passed", "failed", "attempted")]
    for e in scored:
        weight = 0.5 ** ((now - e.occurred_at).total_seconds() / 86400 / MASTERY_HALF_LIFE_DAYS)
        for key in ("*", *e.skills):
            weighted[key][0] += weight * (e.score or 0.0)
            weighted[key][1] += weight
    per_skill = {s: _r(v[0] / v[1]) for s, v in sorted(weighted.items()) if s != "*" and v[1] > 0}
    mastery = _r(weighted["*"][0] / weighted["*"][1]) if weighted["*"][1] > 0 else None
    gaps = {s: _r(max(0.0, target - per_skill.get(s, 0.0))) for s, target in sorted(targets.items())}
    return {
        "learning_velocity": {"velocity": _r(velocity), "previous_velocity": _r(previous),
                              "trend": _r(velocity - previous), "completions": len(completions),
                              "previous_completions": len(before)},
        "engagement": {"engagement": _r(len(days30) / 30), "engagement_7d": _r(len(days7) / 7),
                       "active_days": len(days30), "active_days_7d": len(days7), "sessions": len(sessions30),
                       "minutes": round(sum(e.duration_seconds or 0 for e in sessions30) / 60, 1)},
        "mastery": {"mastery": mastery, "skills": per_skill, "assessments": len(scored)},
        "skill_gap": {"gap": _r(sum(gaps.values()) / len(gaps)) if gaps else None, "skills": gaps,
                      "targeted_skills": len(gaps)},
    }


WINDOW_DAYS = {"learning_velocity": 56, "engagement": 30, "mastery": DAYS, "skill_gap": DAYS}


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
        _store_events(conn, demo.events)
        by_service = _derive(conn, demo, now)
        rollup_rows = _roll_up(conn, demo.today)
        conn.execute("REFRESH MATERIALIZED VIEW comparison_aggregates")
        groups = conn.execute("SELECT count(*) FROM comparison_aggregates").fetchone()
    return {"users": len(demo.users), "learning_events": len(demo.events),
            "analytics": 4 * len(demo.learners()), "aggregated_analytics": rollup_rows,
            "comparison_groups": int(groups[0]) if groups else 0, "derived_by_service": int(by_service)}


def _store_events(conn: psycopg.Connection, events: list[Event]) -> None:
    """The events through ingest's own statement (per organization), so the learners' days
    (learner_daily_activity) are kept exactly as ingesting them through the API would."""
    from ms8.repositories.events import NewEvent, insert_batch

    by_org: dict[uuid.UUID, list[NewEvent]] = defaultdict(list)
    for e in events:
        by_org[e.user.org_id].append(NewEvent(e.event_id, e.user.id, e.verb, e.object_id, e.object_type, e.skills,
                                              e.score, e.success, e.duration_seconds, e.occurred_at))
    for org_id, rows in by_org.items():
        for chunk in _chunks(rows, 5000):
            insert_batch(conn, org_id, chunk)


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


def _derive(conn: psycopg.Connection, demo: Demo, now: datetime) -> bool:
    """Analytics snapshots (and gamification) of every learner from their events.

    By the service's own code when it is there (issue 7: what ingesting these events through
    POST /v1/events would do), and True; otherwise the snapshots are computed here by the same
    definitions (section 8) and there is no gamification to show, and False.
    """
    try:
        from ms8.repositories.events import InsertedEvent
        from ms8.services import analytics_refresh, gamification
    except ImportError:
        _write_snapshots(conn, demo, now)
        return False
    computed = analytics_refresh.compute(conn, [u.id for u in demo.learners()], now)
    analytics_refresh.write(conn, computed, now)
    inserted = [InsertedEvent(e.event_id, e.user.id, e.verb, e.object_id, e.occurred_at) for e in demo.events]
    gamification.award_and_refresh(conn, computed, inserted, now)
    return True


def _write_snapshots(conn: psycopg.Connection, demo: Demo, now: datetime) -> None:
    by_user: dict[uuid.UUID, list[Event]] = defaultdict(list)
    for e in demo.events:
        by_user[e.user.id].append(e)
    rows = []
    for learner in demo.learners():
        data = snapshots(by_user[learner.id], SKILL_TARGETS[learner.org], now)
        rows += [(learner.id, learner.org_id, t, Jsonb(d), WINDOW_DAYS[t], now) for t, d in data.items()]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO analytics (user_id, organization_id, role, analytics_type, data, source, "
            "definition_version, window_days, data_through) "
            f"VALUES (%s, %s, 'learner', %s, %s, 'computed', {DEFINITION_VERSION}, %s, %s)",
            rows,
        )


def _roll_up(conn: psycopg.Connection, today: date) -> int:
    """The organization history of the 90 days, by the rollup job itself (as a backfill run)."""
    from ms8.jobs.rollups import roll_up
    from ms8.jobs.runner import JobInput

    midnight = datetime.combine(today, time(), UTC)
    outcome = roll_up(conn, JobInput(today, midnight, days=DAYS, replay=True))
    return outcome.rows_written


def main() -> int:
    from scripts import local

    started = local.prepare_database()
    local.stop_database(started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
