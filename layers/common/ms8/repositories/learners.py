"""Learners as a trainer or org admin sees them: figures from their days and latest snapshots,
cohorts, one learner's weeks. RLS decides which learners a caller reaches; these statements
only narrow (a cohort, one learner)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import psycopg

from ms8.domain.metrics import ENGAGEMENT_DAYS, VELOCITY_WEEKS
from ms8.domain.vocabulary import LEARNER, TRAINER

VELOCITY_DAYS = 7 * VELOCITY_WEEKS
ACTIVE_SHARE_DAYS = 7


@dataclass(frozen=True, slots=True)
class LearnerFacts:
    """One learner's raw figures as of a UTC day `today` (see ms8.services.learners)."""

    user_id: UUID
    name: str
    email: str
    last_at: datetime | None
    recent_objects: int  # distinct objects completed in the last 28 UTC days, today included
    previous_objects: int  # ... in the 28 days before those
    active_days: int  # UTC days with activity among the last 30
    active_days_7: int  # ... among the last 7
    mastery: float | None  # the mastery snapshot's headline
    skill_mastery: dict[str, float]  # the mastery snapshot's per-skill values


# Windows in UTC days ending with `today`: recent velocity [today-27, today], previous
# [today-55, today-28], engagement [today-29, today], active share [today-6, today].
# Per learner, LATERAL reads of their own days and snapshot: index scans by user, whatever the
# size of the organization.
_FACTS = f"""
WITH l AS (
    SELECT u.id, u.name, u.email FROM users u
    WHERE u.organization_id = %(org)s AND %(learner)s = ANY (u.roles)
      AND (%(trainer)s::uuid IS NULL
           OR u.id IN (SELECT ta.learner_id FROM trainer_assignments ta WHERE ta.trainer_id = %(trainer)s))
      AND (%(user)s::uuid IS NULL OR u.id = %(user)s)
)
SELECT l.id, l.name, l.email, a.last_at, o.recent, o.previous, a.active, a.active_7, s.mastery, s.skills
FROM l
CROSS JOIN LATERAL (
    SELECT max(d.last_at) AS last_at,
           count(*) FILTER (WHERE d.day > %(today)s::date - {ENGAGEMENT_DAYS} AND d.day <= %(today)s) AS active,
           count(*) FILTER (WHERE d.day > %(today)s::date - {ACTIVE_SHARE_DAYS} AND d.day <= %(today)s) AS active_7
    FROM learner_daily_activity d WHERE d.user_id = l.id
) a
CROSS JOIN LATERAL (
    SELECT count(DISTINCT o) FILTER (WHERE d.day > %(today)s::date - {VELOCITY_DAYS}) AS recent,
           count(DISTINCT o) FILTER (WHERE d.day <= %(today)s::date - {VELOCITY_DAYS}) AS previous
    FROM learner_daily_activity d CROSS JOIN LATERAL unnest(d.completed_objects) AS o
    WHERE d.user_id = l.id AND d.completions > 0
      AND d.day > %(today)s::date - {2 * VELOCITY_DAYS} AND d.day <= %(today)s
) o
LEFT JOIN LATERAL (
    SELECT a.headline_value AS mastery, a.data -> 'skills' AS skills
    FROM analytics a WHERE a.user_id = l.id AND a.role = %(learner)s AND a.analytics_type = 'mastery'
) s ON true
ORDER BY l.name, l.id
"""


def _skills(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def facts(
    conn: psycopg.Connection, organization_id: UUID, today: date, *,
    trainer_id: UUID | None = None, user_id: UUID | None = None,
) -> list[LearnerFacts]:
    """The organization's learners the caller may see (a cohort's, or one, when named), by name."""
    rows = conn.execute(_FACTS, {
        "org": organization_id, "learner": LEARNER, "trainer": trainer_id, "user": user_id, "today": today,
    }).fetchall()
    return [
        LearnerFacts(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), int(r[7]),
                     None if r[8] is None else float(r[8]), _skills(r[9]))
        for r in rows
    ]


_WEEKS = """
WITH d AS (
    SELECT date_trunc('week', d.day::timestamp)::date AS week_start, d.*
    FROM learner_daily_activity d
    WHERE d.user_id = %(user)s AND d.day >= %(start)s AND d.day < %(end)s
),
objects AS (
    SELECT week_start, count(DISTINCT o) AS completions
    FROM d CROSS JOIN LATERAL unnest(d.completed_objects) AS o
    GROUP BY 1
)
SELECT d.week_start, coalesce(max(o.completions), 0), count(*), sum(d.duration_seconds), sum(d.assessments),
       sum(d.scored), sum(d.score_micros)
FROM d LEFT JOIN objects o ON o.week_start = d.week_start
GROUP BY d.week_start
ORDER BY d.week_start
"""


@dataclass(frozen=True, slots=True)
class WeekSums:
    week_start: date
    completions: int
    active_days: int
    duration_seconds: int
    assessments: int
    scored: int
    score_micros: int


def weeks(conn: psycopg.Connection, user_id: UUID, start: date, end: date) -> list[WeekSums]:
    """A learner's ISO weeks (Mondays in [start, end)) with activity, oldest first."""
    rows = conn.execute(_WEEKS, {"user": user_id, "start": start, "end": end}).fetchall()
    return [WeekSums(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows]


def is_trainer(conn: psycopg.Connection, organization_id: UUID, trainer_id: UUID) -> bool:
    """Whether `trainer_id` is a trainer of the organization the caller may see."""
    row = conn.execute(
        "SELECT 1 FROM users WHERE id = %s AND organization_id = %s AND %s = ANY (roles)",
        (trainer_id, organization_id, TRAINER),
    ).fetchone()
    return row is not None


@dataclass(frozen=True, slots=True)
class Trainer:
    trainer_id: UUID
    name: str
    learner_ids: tuple[UUID, ...]


def trainers(conn: psycopg.Connection, organization_id: UUID) -> list[Trainer]:
    """The organization's trainers, by name, each with their assigned learners (learner role)."""
    rows = conn.execute(
        """
        SELECT t.id, t.name,
               coalesce(array_agg(u.id ORDER BY u.id) FILTER (WHERE u.id IS NOT NULL), '{}')
        FROM users t
        LEFT JOIN trainer_assignments ta ON ta.trainer_id = t.id
        LEFT JOIN users u ON u.id = ta.learner_id AND %(learner)s = ANY (u.roles)
        WHERE t.organization_id = %(org)s AND %(trainer)s = ANY (t.roles)
        GROUP BY t.id, t.name
        ORDER BY t.name, t.id
        """,
        {"org": organization_id, "learner": LEARNER, "trainer": TRAINER},
    ).fetchall()
    return [Trainer(r[0], r[1], tuple(r[2])) for r in rows]


def assigned(conn: psycopg.Connection, learner_ids: Sequence[UUID]) -> set[UUID]:
    """Which of these learners are in at least one cohort."""
    rows = conn.execute(
        "SELECT DISTINCT learner_id FROM trainer_assignments WHERE learner_id = ANY (%s)", (list(learner_ids),)
    ).fetchall()
    return {r[0] for r in rows}
