"""Population rollups as the API and reports read them: an organization's or a trainer cohort's
periods with every figure (docs/ANALYTICS.md).

A reader who may not see each learner of the population (a trainer reading the organization's)
gets protected_organization_rollups: small rows suppressed, the others as noisy figures
(ms8.domain.privacy, docs/SECURITY.md).

Public: default_window, organization_rollups, protected_organization_rollups, cohort_rollups,
to_rollup.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import psycopg

from ms8.domain import rollups as rules
from ms8.domain.vocabulary import Granularity
from ms8.jobs.partitions import add_months
from ms8.repositories import aggregates as repo
from ms8.repositories.rollups import period_start
from ms8.schemas.aggregates import Distribution, Quartiles, Rollup

if TYPE_CHECKING:  # imported where a trainer reads the organization's rows, not by every reader
    from ms8.domain import privacy

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


def _capped(stored: dict[str, object]) -> privacy.CappedSums | None:
    from ms8.domain import privacy

    try:
        return privacy.CappedSums(*(int(stored[k]) for k in (  # type: ignore[call-overload]
            "learners", "activeLearners", "completions", "seconds", "scoredLearners", "scoreMicros")))
    except (KeyError, TypeError, ValueError):
        return None  # a row written before its capped sums existed: cannot be protected


def _minus(cell: privacy.CappedSums, part: privacy.CappedSums) -> privacy.CappedSums:
    from ms8.domain import privacy

    return privacy.CappedSums(*(a - b for a, b in zip(
        (cell.learners, cell.active_learners, cell.completions, cell.seconds, cell.scored_learners,
         cell.score_micros),
        (part.learners, part.active_learners, part.completions, part.seconds, part.scored_learners,
         part.score_micros), strict=True)))


def _suppressed(stored: repo.StoredRollup) -> Rollup:
    return Rollup(
        scope="organization", trainer_id=None, granularity=stored.granularity,  # type: ignore[arg-type]
        period_start=stored.period_start, period_end=stored.period_end, days=stored.sums.days,
        learners=None, active_learners=None, active_share=None, completions=None, velocity=None,
        assessments=None, mean_score=None, minutes_per_active_learner=None, distribution=None, suppressed=True,
    )


def _seed_key(stored: repo.StoredRollup, organization_id: UUID) -> str:
    # The row and its whole state: a changed row draws new noise, an unchanged one the same.
    state = json.dumps(stored.capped, sort_keys=True, separators=(",", ":"))
    return f"rollup|{organization_id}|{stored.granularity}|{stored.period_start}|{stored.period_end}|{state}"


def protected_organization_rollups(conn: psycopg.Connection, organization_id: UUID, reader_id: UUID,
                                   granularity: Granularity, start: date, end: date) -> list[Rollup]:
    """The organization's rows for a reader who sees only part of its learners individually (a
    trainer: their own cohort). A row with fewer than k learners or k active learners, in all or
    outside the reader's cohort, is suppressed (every figure null); the others carry noisy
    figures from the capped sums; assessments and the distribution are not released."""
    from ms8.domain import privacy

    rows = repo.rollups(conn, organization_id, None, granularity, start, end)
    own = {r.period_start: _capped(r.capped)
           for r in repo.rollups(conn, organization_id, reader_id, granularity, start, end)}
    shown: list[tuple[repo.StoredRollup, privacy.CappedSums]] = []
    out: dict[date, Rollup] = {}
    for stored in rows:
        cell = _capped(stored.capped)
        mine = own.get(stored.period_start)
        if stored.period_start in own and mine is None:
            cell = None  # the reader's own part cannot be accounted for: suppress
        outside = _minus(cell, mine) if cell is not None and mine is not None else None
        if cell is None or not privacy.rollup_shown(cell, outside):
            out[stored.period_start] = _suppressed(stored)
        else:
            shown.append((stored, cell))
    seeds = repo.release_seeds(conn, [_seed_key(s, organization_id) for s, _ in shown]) if shown else []
    for (stored, cell), seed in zip(shown, seeds, strict=True):
        f = privacy.protect_rollup(cell, stored.sums.days, privacy.seeded_randbelow(seed))
        out[stored.period_start] = Rollup(
            scope="organization", trainer_id=None, granularity=stored.granularity,  # type: ignore[arg-type]
            period_start=stored.period_start, period_end=stored.period_end, days=stored.sums.days,
            learners=f.learners, active_learners=f.active_learners, active_share=f.active_share,
            completions=f.completions, velocity=f.velocity, assessments=None, mean_score=f.mean_score,
            minutes_per_active_learner=f.minutes_per_active_learner, distribution=None, suppressed=False,
        )
    return [out[r.period_start] for r in rows]
