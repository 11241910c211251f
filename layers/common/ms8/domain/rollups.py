"""The figures of a population rollup from its stored sums (docs/ANALYTICS.md), pure.

The rollup job stores counts and sums per population and period (exact integers); the ratios
are derived here, once, for the API and the reports.
"""

from __future__ import annotations

from dataclasses import dataclass

DAYS_PER_WEEK = 7


@dataclass(frozen=True, slots=True)
class RollupSums:
    """What population_rollups stores for one population and period."""

    days: int
    learners: int
    active_learners: int
    completions: int
    assessments: int
    scored: int
    score_micros: int
    duration_seconds: int


@dataclass(frozen=True, slots=True)
class RollupFigures:
    active_share: float
    velocity: float
    mean_score: float | None
    minutes_per_active_learner: float | None


def _r(value: float) -> float:
    return round(value, 4)


def figures(s: RollupSums) -> RollupFigures:
    """activeShare = active / learners; velocity = completions / learners / (days / 7);
    meanScore = score sum / scored assessments (null without any);
    minutesPerActiveLearner = minutes / active learners (null without any)."""
    return RollupFigures(
        active_share=_r(s.active_learners / s.learners),
        velocity=_r(s.completions * DAYS_PER_WEEK / (s.learners * s.days)),
        mean_score=_r(s.score_micros / 1e6 / s.scored) if s.scored else None,
        minutes_per_active_learner=_r(s.duration_seconds / 60 / s.active_learners) if s.active_learners else None,
    )
