"""Population rollups: an organization's or a trainer cohort's learners per period."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import Field

from ms8.domain.vocabulary import Granularity, RollupScope
from ms8.schemas.base import ApiModel

__all__ = ["Distribution", "Granularity", "Quartiles", "Rollup", "RollupList", "RollupScope"]

class Quartiles(ApiModel):
    """A learner-level metric across the learners: interpolated 25th, 50th and 75th percentiles."""

    p25: float | None
    median: float | None
    p75: float | None

class Distribution(ApiModel):
    """Per learner-level metric of the period, its spread across the learners."""

    completions: Quartiles = Field(description="Distinct objects completed in the period, per learner")
    active_days: Quartiles = Field(description="UTC days with at least one event, per learner")
    mean_score: Quartiles = Field(description="Mean assessment score, per learner with a scored assessment")
    minutes: Quartiles = Field(description="Minutes of reported duration, per learner")

class Rollup(ApiModel):
    """One period of one population (docs/ANALYTICS.md states every field with an example).

    When `suppressed` is true the population is too small to show and every figure is null.
    """

    scope: RollupScope
    trainer_id: UUID | None = Field(description="The cohort's trainer; null for the organization")
    granularity: Granularity
    period_start: date
    period_end: date = Field(description="Exclusive")
    days: int
    learners: int | None = Field(description="Holders of the learner role in the population")
    active_learners: int | None = Field(description="Learners with at least one event in the period")
    active_share: float | None = Field(description="activeLearners / learners")
    completions: int | None = Field(description="Sum over learners of distinct objects completed in the period")
    velocity: float | None = Field(description="Completions per learner per week: completions / learners / (days / 7)")
    assessments: int | None = Field(description="Assessment events (passed, failed, attempted)")
    mean_score: float | None = Field(description="Mean score of the scored assessment events; null without any")
    minutes_per_active_learner: float | None = Field(description="Reported minutes / activeLearners")
    distribution: Distribution | None
    suppressed: bool = False

class RollupList(ApiModel):
    """Rollups oldest first; `message` says why `items` is empty (e.g. the window used)."""

    items: list[Rollup]
    granularity: Granularity
    scope: RollupScope
    trainer_id: UUID | None = None
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    message: str | None = None
