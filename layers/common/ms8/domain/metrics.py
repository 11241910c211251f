"""Analytics definitions (docs/ANALYTICS.md) as pure functions over a user's learning events.

Every function takes the user's events (any order, any span: each keeps only its own window),
`now` (the end of every window; events after it are ignored) and, where needed, the user's time
zone or the organization's skill targets, and returns the snapshot's `data`: the headline metric
(ms8.schemas.base.HEADLINE_METRIC) first, then the detail. Numbers are rounded to 4 decimals so a
recomputation over the same events writes the same JSON. docs/ANALYTICS.md states the same
definitions in prose; change both, and bump DEFINITION_VERSION, when a definition changes.

The definitions are written once, over EventRow: an event with its instant as POSIX seconds, the
form the bulk read of ingest and recomputation delivers (no datetime object per event, no
time-zone conversion per event). The functions over EventRecord convert and call the same code.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from ms8.domain import vocabulary

# Bumped whenever a definition below changes, so stored snapshots say which one they used.
DEFINITION_VERSION = 1

VELOCITY_WEEKS = 4
ENGAGEMENT_DAYS = 30
ENGAGEMENT_SHORT_DAYS = 7
MASTERY_DAYS = 90
MASTERY_HALF_LIFE_DAYS = 30.0
COMPLETION_VERBS = frozenset(vocabulary.COMPLETION_VERBS)
ASSESSMENT_VERBS = frozenset(vocabulary.ASSESSMENT_VERBS)
SESSION_VERB = vocabulary.SESSION_VERB

# How far back each type looks (analytics.window_days), and how far back its inputs are read.
WINDOW_DAYS: dict[str, int] = {
    "learning_velocity": 2 * 7 * VELOCITY_WEEKS,
    "engagement": ENGAGEMENT_DAYS,
    "mastery": MASTERY_DAYS,
    "skill_gap": MASTERY_DAYS,
}
# One extra day covers local calendar days that start before the UTC window (time zones).
READ_WINDOW = timedelta(days=max(WINDOW_DAYS.values()) + 1)

_HALF_LIFE_S = MASTERY_HALF_LIFE_DAYS * 86400.0


class EventRecord(NamedTuple):
    """One stored learning event, as the computations read it."""

    verb: str
    object_id: str
    skills: Sequence[str]
    score: float | None
    success: bool | None
    duration_seconds: int | None
    occurred_at: datetime


class EventRow(NamedTuple):
    """One event as the computations run on it: `at` is the instant in POSIX seconds.

    A float tells microseconds apart, in order, for any instant before the year 2242, and both
    datetime.timestamp() and PostgreSQL's date_part('epoch', ...) give the nearest one to the exact
    value: comparing `at`s decides exactly as comparing the datetimes would.
    """

    verb: str
    object_id: str
    skills: Sequence[str]
    score: float | None
    duration_seconds: int | None
    at: float


def rows_of(events: Iterable[EventRecord]) -> list[EventRow]:
    """The events as EventRows."""
    return [EventRow(e.verb, e.object_id, e.skills, e.score, e.duration_seconds, e.occurred_at.timestamp())
            for e in events]


def _r(value: float) -> float:
    return round(value, 4)


def learning_velocity(events: Iterable[EventRecord], now: datetime) -> dict[str, Any]:
    """Completions per week over the trailing 4 weeks, and the trend against the 4 weeks before.

    A completion is a `completed` event; an object completed several times in one window counts
    once there. `trend` = velocity - previous_velocity (completions per week; > 0 is faster).
    """
    return _velocity(rows_of(events), now)


def _velocity(rows: Iterable[EventRow], now: datetime) -> dict[str, Any]:
    return _velocity_data(*_velocity_sets(rows, now))


def _velocity_sets(rows: Iterable[EventRow], now: datetime) -> tuple[set[str], set[str]]:
    """The objects completed in the trailing 4 weeks and in the 4 weeks before."""
    now_s = now.timestamp()
    recent_from = (now - timedelta(weeks=VELOCITY_WEEKS)).timestamp()
    previous_from = (now - timedelta(weeks=2 * VELOCITY_WEEKS)).timestamp()
    recent: set[str] = set()
    previous: set[str] = set()
    for verb, object_id, _, _, _, at in rows:
        if verb not in COMPLETION_VERBS or at > now_s or at <= previous_from:
            continue
        (recent if at > recent_from else previous).add(object_id)
    return recent, previous


def _velocity_data(recent: set[str], previous: set[str]) -> dict[str, Any]:
    velocity = len(recent) / VELOCITY_WEEKS
    previous_velocity = len(previous) / VELOCITY_WEEKS
    return {
        "velocity": _r(velocity),
        "previous_velocity": _r(previous_velocity),
        "trend": _r(velocity - previous_velocity),
        "completions": len(recent),
        "previous_completions": len(previous),
    }


def local_day_start(day: date, tz: tzinfo) -> datetime:
    """The instant a calendar day starts in `tz` (DST-aware)."""
    return datetime.combine(day, time(), tz)


class LocalDays:
    """The calendar days first_day .. first_day + days - 1 of a time zone, and which of them an
    instant falls on (by bisecting the days' start instants: DST-aware, no per-event
    time-zone conversion)."""

    __slots__ = ("dates", "starts")

    def __init__(self, tz: tzinfo, first_day: date, days: int) -> None:
        self.dates = [first_day + timedelta(days=i) for i in range(days)]
        self.starts = [local_day_start(first_day + timedelta(days=i), tz).timestamp() for i in range(days + 1)]

    def index(self, t: datetime) -> int:
        """The day's position, or -1 when the instant is outside these days."""
        i = bisect_right(self.starts, t.timestamp()) - 1
        return i if i < len(self.dates) else -1


@lru_cache(maxsize=256)
def local_days(tz: tzinfo, first_day: date, days: int) -> LocalDays:
    """LocalDays, shared by every user of a time zone in a computation (immutable in use)."""
    return LocalDays(tz, first_day, days)


def engagement(events: Iterable[EventRecord], now: datetime, tz: tzinfo) -> dict[str, Any]:
    """Share of active days in the trailing 30 (headline) and 7 local calendar days, with sessions
    and minutes over the 30 days.

    The windows are the user's calendar days ending with today (in `tz`), today included. A day is
    active when it has at least one event of any verb. `sessions` counts `session` events;
    `minutes` sums every event's reported duration.
    """
    return _engagement(rows_of(events), now, tz)


def _engagement(rows: Iterable[EventRow], now: datetime, tz: tzinfo) -> dict[str, Any]:
    return _engagement_data(*_engagement_parts(rows, now, tz))


def _engagement_starts(now: datetime, tz: tzinfo) -> list[float]:
    """The start instants of the 30 local days of the window, and of the day after."""
    today = now.astimezone(tz).date()
    return local_days(tz, today - timedelta(days=ENGAGEMENT_DAYS - 1), ENGAGEMENT_DAYS).starts


def _engagement_parts(rows: Iterable[EventRow], now: datetime, tz: tzinfo) -> tuple[set[int], int, int]:
    """Active day positions (bisect_right over the day starts), sessions and seconds."""
    starts = _engagement_starts(now, tz)
    first, end = starts[0], starts[-1]
    now_s = now.timestamp()
    active: set[int] = set()  # day positions + 1: bisect_right(starts, at) (see LocalDays.index)
    sessions = 0
    seconds = 0
    for verb, _, _, _, duration, at in rows:
        if at > now_s or at < first or at >= end:
            continue
        active.add(bisect_right(starts, at))
        if verb == SESSION_VERB:
            sessions += 1
        if duration:
            seconds += duration
    return active, sessions, seconds


def _engagement_data(active: set[int], sessions: int, seconds: int) -> dict[str, Any]:
    active_short = sum(1 for i in active if i > ENGAGEMENT_DAYS - ENGAGEMENT_SHORT_DAYS)
    return {
        "engagement": _r(len(active) / ENGAGEMENT_DAYS),
        "engagement_7d": _r(active_short / ENGAGEMENT_SHORT_DAYS),
        "active_days": len(active),
        "active_days_7d": active_short,
        "sessions": sessions,
        "minutes": round(seconds / 60, 1),
    }


def _mastery_sums(rows: Iterable[EventRow], now: datetime) -> tuple[float, float, dict[str, list[float]], int]:
    lower = (now - timedelta(days=MASTERY_DAYS)).timestamp()
    now_s = now.timestamp()
    num = den = 0.0
    skills: dict[str, list[float]] = {}
    count = 0
    for verb, _, event_skills, score, _, at in rows:
        if score is None or verb not in ASSESSMENT_VERBS or at > now_s or at <= lower:
            continue
        weight = 0.5 ** ((now_s - at) / _HALF_LIFE_S)
        weighted = weight * score
        count += 1
        num += weighted
        den += weight
        for skill in event_skills:
            _add_skill(skills, skill, weighted, weight)
    return num, den, skills, count


def _add_skill(skills: dict[str, list[float]], skill: str, weighted: float, weight: float) -> None:
    """Add one weighted score (and its weight) to a skill's running sums."""
    sums = skills.get(skill)
    if sums is None:
        skills[skill] = [weighted, weight]
    else:
        sums[0] += weighted
        sums[1] += weight


def mastery(events: Iterable[EventRecord], now: datetime) -> dict[str, Any]:
    """Recency-weighted mean of assessment scores (0..1), overall and per skill.

    Assessment events are `passed`, `failed` and `attempted` events with a score, in the trailing
    90 days. A score's weight halves every 30 days of age. An event counts once overall and once
    for each of its skills. No assessments: `mastery` is null and `skills` empty.
    """
    return _mastery(rows_of(events), now)


def _mastery(rows: Iterable[EventRow], now: datetime) -> dict[str, Any]:
    return _mastery_data(*_mastery_sums(rows, now))


def _mastery_data(num: float, den: float, skills: Mapping[str, list[float]], count: int) -> dict[str, Any]:
    return {
        "mastery": _r(num / den) if den > 0 else None,
        "skills": {s: _r(v[0] / v[1]) for s, v in sorted(skills.items()) if v[1] > 0},
        "assessments": count,
    }


def skill_gap_from_mastery(skill_mastery: Mapping[str, float], targets: Mapping[str, float]) -> dict[str, Any]:
    """Per targeted skill: target level - mastery (0 when never assessed), clamped at 0.

    `gap` is the mean over the organization's targeted skills; null when it has none.
    """
    gaps = {s: _r(max(0.0, target - skill_mastery.get(s, 0.0))) for s, target in sorted(targets.items())}
    return {
        "gap": _r(sum(gaps.values()) / len(gaps)) if gaps else None,
        "skills": gaps,
        "targeted_skills": len(gaps),
    }


def skill_gap(events: Iterable[EventRecord], now: datetime, targets: Mapping[str, float]) -> dict[str, Any]:
    """The organization's target level minus the learner's mastery, per skill (see mastery)."""
    return skill_gap_from_mastery(mastery(events, now)["skills"], targets)


def compute_all(
    events: Sequence[EventRecord], now: datetime, tz: tzinfo, targets: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """Every analytics type of one user: analytics_type -> data."""
    return compute_rows(rows_of(events), now, tz, targets)


def compute_rows(
    rows: Sequence[EventRow], now: datetime, tz: tzinfo, targets: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """compute_all over EventRows."""
    mastery_data = _mastery(rows, now)
    return {
        "learning_velocity": _velocity(rows, now),
        "engagement": _engagement(rows, now, tz),
        "mastery": mastery_data,
        "skill_gap": skill_gap_from_mastery(mastery_data["skills"], targets),
    }


def streak_window(now: datetime, tz: tzinfo) -> tuple[date, date]:
    """The local calendar days a streak is computed over: (first, today), within READ_WINDOW."""
    return (now - READ_WINDOW).astimezone(tz).date() + timedelta(days=1), now.astimezone(tz).date()


class DaySums(NamedTuple):
    """What a learner's UTC days wholly inside the windows add up to (ms8.repositories.days.sums,
    one SQL statement over learner_daily_activity): the days after the edges (boundary_days) and
    before `now`'s UTC day, each sum over the days inside its own window."""

    recent_objects: Sequence[str] = ()  # completed in the days inside the trailing 4 weeks
    previous_objects: Sequence[str] = ()  # ... inside the 4 weeks before
    weighted_scores: float = 0.0  # sum over days of 0.5^((now - day start) / half-life) * day's sum
    weights: float = 0.0
    scored: int = 0
    skills: Mapping[str, Sequence[float]] = {}  # {skill: (weighted scores, weights)}, as above
    sessions: int = 0  # in the days inside the engagement window
    duration_seconds: int = 0
    engaged_days: Sequence[date] = ()  # local dates with activity, days inside the engagement window
    streak_days: Sequence[date] = ()  # ... inside the streak window


_EPOCH = date(1970, 1, 1)


def _utc_date(instant_s: float) -> date:
    return _EPOCH + timedelta(days=int(instant_s // 86400))


@lru_cache(maxsize=4096)
def local_segments(tz_name: str, day: date) -> tuple[tuple[int, int, date], ...]:
    """The quarter-hours [from, to) of a UTC day that fall on one local date of a time zone, with
    that date: every zone's days start on a quarter-hour, so a quarter lies on one local date."""
    tz = ZoneInfo(tz_name)
    start = _day_start(day)
    out: list[tuple[int, int, date]] = []
    for q in range(96):
        local = datetime.fromtimestamp(start + q * _QUARTER_S, tz).date()
        if out and out[-1][2] == local:
            out[-1] = (out[-1][0], q + 1, local)
        else:
            out.append((q, q + 1, local))
    return tuple(out)


_QUARTER_S = 900.0


def _day_start(day: date) -> float:
    return (day - _EPOCH).days * 86400.0


class Edges(NamedTuple):
    """The UTC days on which a window starts or ends mid-day, for `now` and one time zone: their
    events are read one by one (a day's sums cannot say which side of the edge an event is on)."""

    today: date  # now's UTC day: later days hold only events after now
    recent_from: date  # velocity: now - 4 weeks
    previous_from: date  # velocity: now - 8 weeks
    mastery_from: date  # now - 90 days
    engaged_from: date  # the engagement window's first local day starts on this UTC day
    streak_from: date  # the streak window's first local day starts on this UTC day

    def days(self) -> frozenset[date]:
        return frozenset(self)


def edges(now: datetime, tz: tzinfo) -> Edges:
    return Edges(
        _utc_date(now.timestamp()),
        _utc_date((now - timedelta(weeks=VELOCITY_WEEKS)).timestamp()),
        _utc_date((now - timedelta(weeks=2 * VELOCITY_WEEKS)).timestamp()),
        _utc_date((now - timedelta(days=MASTERY_DAYS)).timestamp()),
        _utc_date(_engagement_starts(now, tz)[0]),
        _utc_date(local_day_start(streak_window(now, tz)[0], tz).timestamp()),
    )


def first_day(now: datetime) -> date:
    """The earliest UTC day any window reaches back to."""
    return _utc_date((now - READ_WINDOW).timestamp())


def from_days(
    sums: DaySums, boundary: Sequence[EventRow], now: datetime, tz: tzinfo, targets: Mapping[str, float]
) -> tuple[dict[str, dict[str, Any]], set[date]]:
    """compute_rows from a learner's day sums and the raw events of their edge days (Edges), plus
    the active local days of the streak window (streak_window).

    The edge days' events go through the same per-event rules as compute_rows; the sums of the
    days wholly inside the windows are added to theirs. Equal to compute_rows over all the events
    up to the float rounding of the weighted sums (the results are rounded to 4 decimals; see
    docs/ANALYTICS.md).
    """
    recent, previous = _velocity_sets(boundary, now)
    recent.update(sums.recent_objects)
    previous.update(sums.previous_objects)
    active, sessions, seconds = _engagement_parts(boundary, now, tz)
    engagement_first = _engagement_starts(now, tz)
    first_local = now.astimezone(tz).date() - timedelta(days=ENGAGEMENT_DAYS - 1)
    active.update((d - first_local).days + 1 for d in sums.engaged_days)  # positions as bisect gives them
    num, den, skills, count = _mastery_sums(boundary, now)
    num += sums.weighted_scores
    den += sums.weights
    count += sums.scored
    for skill, (weighted, weight) in sums.skills.items():
        _add_skill(skills, skill, weighted, weight)
    mastery_data = _mastery_data(num, den, skills, count)
    data = {
        "learning_velocity": _velocity_data(recent, previous),
        "engagement": _engagement_data(
            {i for i in active if 0 < i < len(engagement_first)}, sessions + sums.sessions,
            seconds + sums.duration_seconds),
        "mastery": mastery_data,
        "skill_gap": skill_gap_from_mastery(mastery_data["skills"], targets),
    }
    window_start, today = streak_window(now, tz)
    now_s = now.timestamp()
    days = local_days(tz, window_start, (today - window_start).days + 1)
    streak = {days.dates[i - 1] for i in (bisect_right(days.starts, at) for *_, at in boundary if at <= now_s)
              if 0 < i <= len(days.dates)}
    streak.update(d for d in sums.streak_days if window_start <= d <= today)
    return data, streak
