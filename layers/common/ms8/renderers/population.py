"""The tables of cohort and organization reports, from what the API answers (pure: the same
LearnerRow, Rollup and CohortSummary models that GET /v1/learners, /v1/aggregates and
/v1/cohorts return, so a report's figures are the API's figures).

- learners: each learner's headline metrics as of the report's generation, the velocity trend,
  last activity and at-risk reasons (only in reports for someone who may see those learners);
- at_risk: the learners at risk and why;
- trends: the population's rollups per period (daily, ISO weekly or monthly by the period's
  length), periods starting within the report's period;
- cohorts: each trainer's cohort (size, at risk, share active in the last 7 days).
"""

from __future__ import annotations

from collections.abc import Sequence

from ms8.domain.vocabulary import Granularity
from ms8.renderers.document import Column, Table, table_granularity
from ms8.schemas.aggregates import Rollup
from ms8.schemas.learners import CohortSummary, LearnerRow

ROLLUP_GRANULARITY: dict[str, Granularity] = {"day": "daily", "week": "weekly", "month": "monthly"}
PERIOD_WORD: dict[str, str] = {"daily": "day", "weekly": "week", "monthly": "month"}


def rollup_granularity(day_count: int) -> Granularity:
    """Rollups of a report's trend table: daily up to a month, ISO weekly up to a quarter, else monthly."""
    return ROLLUP_GRANULARITY[table_granularity(day_count)]


def _reasons(row: LearnerRow) -> str:
    return "; ".join(r.message for r in row.risk_reasons)


def _codes(row: LearnerRow) -> str | None:
    """The reasons in short (the at-risk table has them in full)."""
    return ", ".join(r.code.replace("_", " ") for r in row.risk_reasons) or None


LEARNER_COLUMNS = (
    Column("learner", "Learner", "text"),
    Column("velocity", "Velocity", "number"),
    Column("velocity_change", "Change", "number"),
    Column("engagement", "Engagement", "ratio"),
    Column("mastery", "Mastery", "ratio"),
    Column("skill_gap", "Skill gap", "ratio"),
    Column("last_activity_at", "Last activity", "datetime"),
    Column("at_risk", "At risk", "text"),
)


def learners_table(rows: Sequence[LearnerRow]) -> Table:
    return Table(
        "learners", "Learners",
        "Each learner's headline metrics as of the report's generation (as GET /v1/learners answers): "
        "velocity = distinct objects completed per week over the last 4 weeks; change = velocity minus that "
        "of the 4 weeks before; engagement = share of the last 30 UTC days with activity; mastery and skill "
        "gap from the latest analytics; at risk: the reasons that apply (in full below).",
        LEARNER_COLUMNS,
        tuple((r.display_name, r.metrics.velocity, r.trend.velocity, r.metrics.engagement, r.metrics.mastery,
               r.metrics.skill_gap, r.last_activity_at, _codes(r)) for r in rows),
    )


def at_risk_table(rows: Sequence[LearnerRow]) -> Table:
    at_risk = [r for r in rows if r.at_risk]
    return Table(
        "at_risk", f"At risk ({len(at_risk)} of {len(rows)})" if rows else "At risk",
        "Learners who need attention, with every reason that applies: no activity for a week or more, "
        "velocity fallen to half of the 4 weeks before or less, mastery well below the organization's target.",
        (Column("learner", "Learner", "text"), Column("email", "E-mail", "text"),
         Column("last_activity_at", "Last activity", "datetime"), Column("reasons", "Reasons", "text")),
        tuple((r.display_name, r.email, r.last_activity_at, _reasons(r)) for r in at_risk),
    )


TREND_COLUMNS = (
    Column("period_start", "Period", "date"),
    Column("learners", "Learners", "count"),
    Column("active_learners", "Active", "count"),
    Column("active_share", "Active share", "ratio"),
    Column("completions", "Completions", "count"),
    Column("velocity", "Velocity", "number"),
    Column("assessments", "Assessments", "count"),
    Column("mean_score", "Mean score", "ratio"),
    Column("minutes_per_active_learner", "Minutes per active", "number"),
)


def trends_table(rollups: Sequence[Rollup], granularity: Granularity, population: str) -> Table:
    word = PERIOD_WORD[granularity]
    suppressed = any(r.suppressed for r in rollups)
    description = (
        f"The {population} per {word} (UTC days; a week starts on Monday), as GET /v1/aggregates answers: "
        "learners holding the learner role, those active in the period, completions (distinct objects "
        "per learner), velocity = completions / learners / (days / 7), assessments and their mean score, "
        "reported minutes per active learner."
    )
    if suppressed:
        description += " A dash in every column: too few learners to show without singling anyone out."
    if not rollups:
        description += f" No {word} of this period has been rolled up yet."
    return Table(
        "trends", f"Trends per {word}", description, TREND_COLUMNS,
        tuple((r.period_start, r.learners, r.active_learners, r.active_share, r.completions, r.velocity,
               r.assessments, r.mean_score, r.minutes_per_active_learner) for r in rollups),
        charts=("active_share", "velocity"),
    )


def cohorts_table(cohorts: Sequence[CohortSummary], unassigned: int) -> Table:
    return Table(
        "cohorts", "Trainer cohorts",
        "Each trainer's cohort as GET /v1/cohorts answers: its learners, how many are at risk and the share "
        f"active in the last 7 UTC days. Learners in no cohort: {unassigned}.",
        (Column("trainer", "Trainer", "text"), Column("learners", "Learners", "count"),
         Column("at_risk", "At risk", "count"), Column("active_share", "Active (7 days)", "ratio")),
        tuple((c.display_name, c.learners, c.at_risk, c.active_share) for c in cohorts),
    )
