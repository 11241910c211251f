"""The trainer's and org admin's view of learners: the cohort list, one learner's drill-down,
the organization's cohorts."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import Field

from ms8.domain.vocabulary import RiskCode
from ms8.schemas.base import ApiModel


class LearnerMetrics(ApiModel):
    """Headline metrics (docs/ANALYTICS.md): velocity and engagement as of today from the learner's
    days (UTC); mastery and skill gap from the latest snapshot."""

    velocity: float = Field(description="Distinct objects completed per week over the last 4 weeks")
    engagement: float = Field(description="Share of the last 30 UTC days with activity")
    mastery: float | None
    skill_gap: float | None


class LearnerTrend(ApiModel):
    velocity: float = Field(description="velocity minus the velocity of the 4 weeks before")
    previous_velocity: float


class RiskReason(ApiModel):
    code: RiskCode
    message: str


class LearnerRow(ApiModel):
    user_id: UUID
    display_name: str
    email: str
    last_activity_at: datetime | None
    metrics: LearnerMetrics
    trend: LearnerTrend
    at_risk: bool
    risk_reasons: list[RiskReason]


class LearnerList(ApiModel):
    """Learners by name; `atRisk` counts those at risk among them."""

    items: list[LearnerRow]
    trainer_id: UUID | None = Field(default=None, description="The cohort listed; null for the organization")
    at_risk: int
    as_of: datetime


class LearnerWeek(ApiModel):
    """One ISO week (Monday, UTC) of the learner's own activity."""

    week_start: date
    completions: int = Field(description="Distinct objects completed that week")
    active_days: int
    minutes: float
    assessments: int
    mean_score: float | None


class SkillStanding(ApiModel):
    skill: str
    mastery: float | None
    target: float | None
    gap: float | None


class LearnerDetail(ApiModel):
    learner: LearnerRow
    weeks: list[LearnerWeek] = Field(description="The last 12 ISO weeks, oldest first, the current one included")
    skills: list[SkillStanding]


class CohortSummary(ApiModel):
    trainer_id: UUID
    display_name: str
    learners: int
    at_risk: int
    active_share: float | None = Field(description="Share of the cohort's learners active in the last 7 UTC days")


class CohortList(ApiModel):
    items: list[CohortSummary]
    unassigned_learners: int = Field(description="Learners of the organization in no cohort")
    as_of: datetime
