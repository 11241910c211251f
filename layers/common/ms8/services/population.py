"""Population rollups as the API and reports read them: an organization's or a trainer cohort's
periods with every figure (docs/ANALYTICS.md).

Public: default_window, organization_rollups, cohort_rollups, to_rollup.
"""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

import psycopg

from ms8.domain import rollups as rules
from ms8.domain.vocabulary import Granularity
from ms8.jobs.partitions import add_months
from ms8.models.aggregates import Distribution, Quartiles, Rollup
from ms8.repositories import aggregates as repo
from ms8.repositories.rollups import period_start

DEFAULT_PERIODS = 12


def default_window(granularity: Granularity, end: date) -> date:
    """The first period start of the last DEFAULT_PERIODS periods up to `end` (its own included)."""
    last = period_start(granularity, end)
    if granularity == "daily":
        return last - timedelta(days=DEFAULT_PERIODS - 1)
    if granularity == "weekly":
        return last - timedelta(weeks=DEFAULT_PERIODS - 1)
    return add_months(last, -(DEFAULT_PERIODS - 1))


def _quartiles(value: object) -> Quartiles:
    q = value if isinstance(value, dict) else {}
    return Quartiles(p25=q.get("p25"), median=q.get("median"), p75=q.get("p75"))


def to_rollup(stored: repo.StoredRollup) -> Rollup:
    """The API's rollup from a stored row: the ratios derived from the sums."""
    s = stored.sums
    f = rules.figures(s)
    d = stored.distribution
    return Rollup(
        scope="organization" if stored.trainer_id is None else "cohort", trainer_id=stored.trainer_id,
        granularity=stored.granularity,  # type: ignore[arg-type]
        period_start=stored.period_start, period_end=stored.period_end, days=s.days,
        learners=s.learners, active_learners=s.active_learners, active_share=f.active_share,
        completions=s.completions, velocity=f.velocity, assessments=s.assessments, mean_score=f.mean_score,
        minutes_per_active_learner=f.minutes_per_active_learner,
        distribution=Distribution(
            completions=_quartiles(d.get("completions")), active_days=_quartiles(d.get("activeDays")),
            mean_score=_quartiles(d.get("meanScore")), minutes=_quartiles(d.get("minutes")),
        ),
        suppressed=False,
    )


def organization_rollups(conn: psycopg.Connection, organization_id: UUID, granularity: Granularity,
                         start: date, end: date) -> list[Rollup]:
    """The organization's learners, periods starting in [start, end], oldest first."""
    return [to_rollup(r) for r in repo.rollups(conn, organization_id, None, granularity, start, end)]


def cohort_rollups(conn: psycopg.Connection, organization_id: UUID, trainer_id: UUID, granularity: Granularity,
                   start: date, end: date) -> list[Rollup]:
    """One trainer's cohort, periods starting in [start, end], oldest first (RLS: a trainer reads
    only their own)."""
    return [to_rollup(r) for r in repo.rollups(conn, organization_id, trainer_id, granularity, start, end)]
