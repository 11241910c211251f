"""Daily series of a report, from what the repositories read (pure: no database here).

Personal reports (a learner's or trainer's own) are built from the person's learning events
folded per calendar day in their time zone (`DaySums`, `SkillDay`). The analytics table keeps
only the latest snapshot per type, so the history over a period has to come from the events.
Each day's value is the snapshot's definition (docs/ANALYTICS.md, as ms8.domain computes it) with
the day's end as "now", evaluated by whole days:

- learning_velocity: `velocity`, distinct objects completed in the trailing 28 days / 4
  (completions per week); `completions`, distinct objects completed that day.
- engagement: `engagement`, share of active days (any event) in the trailing 30 days;
  `engagement_7d` the same over 7 days; `sessions` and `minutes` (event durations) that day.
- mastery: `mastery`, mean score of the scored assessment events (vocabulary.ASSESSMENT_VERBS) of
  the trailing 90 days, each weighted 0.5 ** (age in days / 30); `assessments` that day.
- skill_gap: `gap`, the mean over the organization's target skills of max(0, target - the
  skill's mastery as above), a skill not assessed in the 90 days counting as mastery 0; no value
  when the organization has no targets.

Organization reports use the population rollups (population_rollups: the organization's learners
and each trainer cohort, per period), not this module's daily series.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ms8.domain.metrics import (
    ENGAGEMENT_DAYS,
    ENGAGEMENT_SHORT_DAYS,
    MASTERY_DAYS,
    MASTERY_HALF_LIFE_DAYS,
    VELOCITY_WEEKS,
)
from ms8.domain.vocabulary import ASSESSMENT_VERBS
from ms8.renderers.document import Metric, MetricKind, Series, Value

# The windows and verbs of the analytics definitions, from their one home.
VELOCITY_DAYS = 7 * VELOCITY_WEEKS
LOOKBACK_DAYS = MASTERY_DAYS - 1  # the longest window: the day itself and 89 before
SCORED_VERBS = ASSESSMENT_VERBS


@dataclass(frozen=True, slots=True)
class DaySums:
    """One day of a person's events (in their time zone)."""

    day: date
    events: int = 0
    completed: frozenset[str] = field(default_factory=frozenset)  # object ids completed that day
    sessions: int = 0
    minutes: float = 0.0
    score_sum: float = 0.0
    scored: int = 0


@dataclass(frozen=True, slots=True)
class SkillDay:
    """One day of a person's scored assessment events on one skill."""

    day: date
    skill: str
    score_sum: float
    scored: int


PERSONAL_METRICS: dict[str, tuple[str, tuple[Metric, ...]]] = {
    "learning_velocity": (
        "Distinct objects completed per week over the trailing four weeks, and completions per day.",
        (
            Metric("velocity", "Velocity (completions per week, trailing 4 weeks)", "number", "mean"),
            Metric("completions", "Completions", "count", "sum"),
        ),
    ),
    "engagement": (
        "Share of active days over the trailing 30 and 7 days; sessions and minutes per day.",
        (
            Metric("engagement", "Engagement (active days, trailing 30 days)", "ratio", "mean"),
            Metric("engagement_7d", "Engagement (active days, trailing 7 days)", "ratio", "mean"),
            Metric("sessions", "Sessions", "count", "sum"),
            Metric("minutes", "Minutes", "count", "sum"),
        ),
    ),
    "mastery": (
        "Assessment scores of the trailing 90 days, recent ones weighing more (a score's weight "
        "halves every 30 days); assessments per day.",
        (
            Metric("mastery", "Mastery (weighted mean score, 90 days)", "ratio", "mean"),
            Metric("assessments", "Assessments", "count", "sum"),
        ),
    ),
    "skill_gap": (
        "Mean shortfall against the organization's target levels over its target skills (a skill "
        "not assessed in 90 days counts in full; 0 means every target is met).",
        (Metric("gap", "Skill gap (mean shortfall against targets)", "ratio", "mean"),),
    ),
}

_ORG_TYPE_KIND: dict[str, MetricKind] = {
    "learning_velocity": "number", "engagement": "ratio", "mastery": "ratio", "skill_gap": "ratio",
}
_ORG_DESCRIPTIONS = {
    "learning_velocity": "Completions per week of each active learner, per day: the mean, with the "
                         "middle half of learners shaded.",
    "engagement": "Active learners' engagement per day: the mean, with the middle half shaded.",
    "mastery": "Mean assessment score of the learners assessed that day, with the middle half shaded.",
    "skill_gap": "The gap against skill targets is not rolled up per day, so it has no history here.",
}
ORG_STATS = ("avg", "p25", "p50", "p75", "p90", "min", "max")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _window_sums(values: Sequence[float], width: int) -> list[float]:
    """sum(values[i - width + 1 .. i]) for every i (fewer at the start)."""
    out: list[float] = []
    running = 0.0
    for i, v in enumerate(values):
        running += v
        if i >= width:
            running -= values[i - width]
        out.append(running)
    return out


def _decayed_sums(values: Sequence[float], width: int = MASTERY_DAYS) -> list[float]:
    """sum over j in the trailing `width` days of values[j] * 0.5 ** ((i - j) / half-life)."""
    r = 0.5 ** (1 / MASTERY_HALF_LIFE_DAYS)
    leaving = r**width
    out: list[float] = []
    running = 0.0
    for i, v in enumerate(values):
        running = running * r + v
        if i >= width:
            running -= values[i - width] * leaving
        out.append(running)
    return out


def _weighted_means(total: Sequence[float], count: Sequence[float]) -> list[float | None]:
    num, den = _decayed_sums(total), _decayed_sums(count)
    return [n / d if d > 1e-9 else None for n, d in zip(num, den, strict=True)]


def _distinct_in_window(completed: Sequence[frozenset[str]], width: int) -> list[int]:
    """How many distinct objects were completed in the trailing `width` days, for every day."""
    seen: Counter[str] = Counter()
    out: list[int] = []
    for i, objects in enumerate(completed):
        seen.update(objects)
        if i >= width:
            seen.subtract(completed[i - width])
            for gone in [o for o in completed[i - width] if seen[o] <= 0]:
                del seen[gone]
        out.append(len(seen))
    return out


def personal_series(
    types: Sequence[str], start: date, end: date, sums: Iterable[DaySums], skills: Iterable[SkillDay] = (),
    targets: Mapping[str, float] | None = None,
) -> tuple[Series, ...]:
    """The requested types over [start, end], from days since `start - LOOKBACK_DAYS`;
    `targets` are the organization's skill targets (skill -> level)."""
    first = start - timedelta(days=LOOKBACK_DAYS)
    n = (end - first).days + 1
    skip = LOOKBACK_DAYS
    by_day = {d.day: d for d in sums if first <= d.day <= end}

    def dense(attr: str) -> list[float]:
        out = [0.0] * n
        for d in by_day.values():
            out[(d.day - first).days] = float(getattr(d, attr))
        return out

    completed = [frozenset[str]()] * n
    for d in by_day.values():
        completed[(d.day - first).days] = d.completed
    active = [1.0 if d > 0 else 0.0 for d in dense("events")]

    result = []
    for t in types:
        description, metrics = PERSONAL_METRICS[t]
        values: dict[str, list[Value]]
        if t == "learning_velocity":
            window = _distinct_in_window(completed, VELOCITY_DAYS)
            values = {
                "velocity": [_round(w / (VELOCITY_DAYS / 7)) for w in window[skip:]],
                "completions": [len(c) for c in completed[skip:]],
            }
        elif t == "engagement":
            long, short = _window_sums(active, ENGAGEMENT_DAYS), _window_sums(active, ENGAGEMENT_SHORT_DAYS)
            values = {
                "engagement": [_round(w / ENGAGEMENT_DAYS) for w in long[skip:]],
                "engagement_7d": [_round(w / ENGAGEMENT_SHORT_DAYS) for w in short[skip:]],
                "sessions": [int(v) for v in dense("sessions")[skip:]],
                "minutes": [round(v) for v in dense("minutes")[skip:]],
            }
        elif t == "mastery":
            values = {
                "mastery": [_round(m) for m in _weighted_means(dense("score_sum"), dense("scored"))[skip:]],
                "assessments": [int(v) for v in dense("scored")[skip:]],
            }
        elif t == "skill_gap":
            values = {"gap": _skill_gap(skills, targets or {}, first, n, skip)}
        else:
            raise ValueError(f"unknown analytics type {t!r}")
        result.append(Series(t, description, metrics, values))
    return tuple(result)


def _skill_gap(
    skills: Iterable[SkillDay], targets: Mapping[str, float], first: date, n: int, skip: int
) -> list[Value]:
    if not targets:
        return [None] * (n - skip)
    per_skill: dict[str, tuple[list[float], list[float]]] = {s: ([0.0] * n, [0.0] * n) for s in targets}
    for s in skills:
        i = (s.day - first).days
        if s.skill in per_skill and 0 <= i < n:
            total, count = per_skill[s.skill]
            total[i] += s.score_sum
            count[i] += s.scored
    mastery = {skill: _weighted_means(total, count) for skill, (total, count) in per_skill.items()}
    out: list[Value] = []
    for i in range(skip, n):
        gaps = [max(0.0, level - (mastery[skill][i] or 0.0)) for skill, level in targets.items()]
        out.append(_round(sum(gaps) / len(gaps)))
    return out


def organization_series(
    types: Sequence[str], start: date, end: date, rows: Iterable[tuple[str, date, int, Mapping[str, Any]]]
) -> tuple[Series, ...]:
    """The requested types over [start, end] from daily rollups: (type, day, user_count, data)."""
    n = (end - start).days + 1
    columns: dict[str, dict[str, list[Value]]] = defaultdict(
        lambda: {name: [None] * n for name in (*ORG_STATS, "user_count")}
    )
    for analytics_type, day, user_count, data in rows:
        i = (day - start).days
        if not 0 <= i < n or analytics_type not in types:
            continue
        col = columns[analytics_type]
        col["user_count"][i] = int(user_count)
        for name in ORG_STATS:
            raw = data.get(name)
            col[name][i] = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    result = []
    for t in types:
        kind: MetricKind = _ORG_TYPE_KIND.get(t, "number")
        metrics = (
            Metric("avg", "Mean", kind, "mean", band=("p25", "p75")),
            Metric("p25", "25th percentile", kind, "mean", chart=False),
            Metric("p50", "Median", kind, "mean", chart=False),
            Metric("p75", "75th percentile", kind, "mean", chart=False),
            Metric("p90", "90th percentile", kind, "mean", chart=False),
            Metric("min", "Lowest", kind, "mean", chart=False),
            Metric("max", "Highest", kind, "mean", chart=False),
            Metric("user_count", "Learners", "count", "mean"),
        )
        result.append(Series(t, _ORG_DESCRIPTIONS.get(t, ""), metrics, dict(columns[t])))
    return tuple(result)
