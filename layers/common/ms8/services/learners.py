"""The trainer's and org admin's view of learners: each learner's headline metrics, trend, last
activity and at-risk reasons; one learner's drill-down; the organization's cohorts.

Public functions (the reports build on them): learner_rows, learner_detail, cohort_summaries.
RLS confines every read: a trainer reaches their assigned learners, an org admin the
organization's; a learner the caller may not see is simply absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg

from ms8 import config
from ms8.domain import metrics, risk
from ms8.domain.metrics import VELOCITY_WEEKS
from ms8.repositories import learners as repo
from ms8.repositories import skill_targets
from ms8.schemas.learners import (
    CohortList,
    CohortSummary,
    LearnerDetail,
    LearnerMetrics,
    LearnerRow,
    LearnerTrend,
    LearnerWeek,
    RiskReason,
    SkillStanding,
)

DETAIL_WEEKS = 12


def _r(value: float) -> float:
    return round(value, 4)


def targets_of(conn: psycopg.Connection, organization_id: UUID) -> dict[str, float]:
    """The organization's skill targets."""
    return skill_targets.for_organizations(conn, {organization_id}).get(organization_id, {})


def row_of(facts: repo.LearnerFacts, targets: Mapping[str, float], now: datetime,
           thresholds: risk.RiskThresholds) -> LearnerRow:
    """A learner's row from their facts (pure): velocity over 4 weeks of UTC days, engagement over
    30, mastery from the snapshot, skill gap against the current targets, the at-risk reasons."""
    velocity = facts.recent_objects / VELOCITY_WEEKS
    previous = facts.previous_objects / VELOCITY_WEEKS
    gap = metrics.skill_gap_from_mastery(facts.skill_mastery, targets)
    reasons = risk.reasons(
        risk.LearnerFigures(facts.last_at, velocity, previous, facts.skill_mastery, targets), now, thresholds
    )
    return LearnerRow(
        user_id=facts.user_id, display_name=facts.name, email=facts.email, last_activity_at=facts.last_at,
        metrics=LearnerMetrics(
            velocity=_r(velocity), engagement=_r(facts.active_days / metrics.ENGAGEMENT_DAYS),
            mastery=facts.mastery, skill_gap=gap["gap"],
        ),
        trend=LearnerTrend(velocity=_r(velocity - previous), previous_velocity=_r(previous)),
        at_risk=bool(reasons),
        risk_reasons=[RiskReason(code=r.code, message=r.message) for r in reasons],
    )


def learner_rows(
    conn: psycopg.Connection, organization_id: UUID, now: datetime, *,
    trainer_id: UUID | None = None, at_risk_only: bool = False,
) -> list[LearnerRow]:
    """The learners the caller may see (of one trainer's cohort when `trainer_id` is given), by
    name, as of `now` (UTC days)."""
    today = now.astimezone(UTC).date()
    targets = targets_of(conn, organization_id)
    thresholds = config.risk_thresholds()
    rows = [row_of(f, targets, now, thresholds)
            for f in repo.facts(conn, organization_id, today, trainer_id=trainer_id)]
    return [r for r in rows if r.at_risk] if at_risk_only else rows


def learner_detail(conn: psycopg.Connection, organization_id: UUID, user_id: UUID, now: datetime,
                   *, trainer_id: UUID | None = None) -> LearnerDetail | None:
    """One learner's row, their last 12 ISO weeks and their standing per skill; None when the
    caller may not see them (or they are not a learner of that cohort)."""
    today = now.astimezone(UTC).date()
    found = repo.facts(conn, organization_id, today, trainer_id=trainer_id, user_id=user_id)
    if not found:
        return None
    facts = found[0]
    targets = targets_of(conn, organization_id)
    row = row_of(facts, targets, now, config.risk_thresholds())
    this_monday = today - timedelta(days=today.weekday())
    first = this_monday - timedelta(weeks=DETAIL_WEEKS - 1)
    sums = {w.week_start: w for w in repo.weeks(conn, user_id, first, this_monday + timedelta(days=7))}
    weeks = []
    for i in range(DETAIL_WEEKS):
        start = first + timedelta(weeks=i)
        w = sums.get(start)
        weeks.append(LearnerWeek(
            week_start=start, completions=w.completions if w else 0, active_days=w.active_days if w else 0,
            minutes=round(w.duration_seconds / 60, 1) if w else 0.0, assessments=w.assessments if w else 0,
            mean_score=_r(w.score_micros / 1e6 / w.scored) if w and w.scored else None,
        ))
    gaps = metrics.skill_gap_from_mastery(facts.skill_mastery, targets)["skills"]
    skills = [
        SkillStanding(skill=s, mastery=facts.skill_mastery.get(s), target=targets.get(s), gap=gaps.get(s))
        for s in sorted(set(facts.skill_mastery) | set(targets))
    ]
    return LearnerDetail(learner=row, weeks=weeks, skills=skills)


def cohort_summaries(conn: psycopg.Connection, organization_id: UUID, now: datetime) -> CohortList:
    """Each trainer of the organization with their cohort's size, how many are at risk and the
    share active in the last 7 UTC days (org admin)."""
    today = now.astimezone(UTC).date()
    targets = targets_of(conn, organization_id)
    thresholds = config.risk_thresholds()
    facts = {f.user_id: f for f in repo.facts(conn, organization_id, today)}
    rows = {uid: row_of(f, targets, now, thresholds) for uid, f in facts.items()}
    items = []
    for t in repo.trainers(conn, organization_id):
        members = [uid for uid in t.learner_ids if uid in facts]
        items.append(CohortSummary(
            trainer_id=t.trainer_id, display_name=t.name, learners=len(members),
            at_risk=sum(1 for uid in members if rows[uid].at_risk),
            active_share=_r(sum(1 for uid in members if facts[uid].active_days_7 > 0) / len(members))
            if members else None,
        ))
    unassigned = len(set(facts) - repo.assigned(conn, list(facts)))
    return CohortList(items=items, unassigned_learners=unassigned, as_of=now)
