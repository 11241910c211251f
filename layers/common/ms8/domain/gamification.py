"""Gamification rules (docs/ANALYTICS.md, gamification) as pure functions: points, levels, streaks, badges and
the guard against farming points. docs/ANALYTICS.md documents the same tables in prose.

Points are awarded per award key, and the ledger's primary key (user_id, award_key) makes every
award happen at most once: `completed:<object>` and `passed:<object>` once per object ever,
`active:<local date>` once per day the user was active (in their time zone). Re-sending an event,
or sending the same completion again under a new event id, finds the key taken and earns nothing.
On top of that no user earns more than HOURLY_CAP points in any one clock hour (UTC), the award's
"cap hour": the hour the event occurred in when a platform service sent it (history sent late,
a back-fill, is spread over the hours it happened in), the hour it arrived in when the learner
sent it (a learner cannot date events back into empty hours to escape the cap).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal, NamedTuple, Protocol
from uuid import UUID

from ms8.domain.metrics import local_days

POINTS_COMPLETED = 10
POINTS_PASSED = 20
POINTS_ACTIVE_DAY = 5
POINTS: dict[str, int] = {"completed": POINTS_COMPLETED, "passed": POINTS_PASSED, "active_day": POINTS_ACTIVE_DAY}

HOURLY_CAP = 200
# Whose clock counts for the cap: "occurred" for a platform service's events, "arrived" for a
# learner's own submissions.
CapBasis = Literal["occurred", "arrived"]

# Level n starts at LEVEL_THRESHOLDS[n - 1] points: level 1 at 0, level 2 at 100, ... level 10 at 11000.
LEVEL_THRESHOLDS: tuple[int, ...] = (0, 100, 250, 500, 1000, 2000, 3500, 5500, 8000, 11000)

STREAK_BADGES: dict[int, str] = {7: "streak_7", 30: "streak_30"}
MASTERY_BADGE_LEVEL = 0.9
BADGE_NAMES: dict[str, str] = {
    "first_completion": "First completion",
    "streak_7": "7-day streak",
    "streak_30": "30-day streak",
}
MASTERY_BADGE_PREFIX = "mastery:"


class AwardSource(NamedTuple):
    """What awarding needs to know about a newly stored event."""

    event_id: UUID
    verb: str
    object_id: str
    occurred_at: datetime


class Source(Protocol):
    """Anything with the fields of an AwardSource (the stored events of a batch have them)."""

    @property
    def event_id(self) -> UUID: ...
    @property
    def verb(self) -> str: ...
    @property
    def object_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Award:
    key: str
    points: int
    occurred_at: datetime
    event_id: UUID


def level_for(points: int) -> int:
    """The level reached with `points` (1 at 0 points)."""
    return max(1, bisect_right(LEVEL_THRESHOLDS, points))


def next_level_points(points: int) -> int | None:
    """Points at which the next level starts; None at the top level."""
    level = level_for(points)
    return LEVEL_THRESHOLDS[level] if level < len(LEVEL_THRESHOLDS) else None


def candidate_awards(events: Iterable[Source], tz: tzinfo) -> list[Award]:
    """Every award the events could earn, one per key (the earliest event wins), oldest first."""
    best: dict[str, tuple[datetime, UUID, int]] = {}  # key -> (occurred_at, event_id, points)
    day_keys: dict[int, str] = {}  # UTC quarter-hour -> active-day key: offsets are whole quarters
    for e in events:
        at = e.occurred_at
        quarter = int(at.timestamp() // 900)
        day_key = day_keys.get(quarter)
        if day_key is None:
            day_key = day_keys[quarter] = f"active:{at.astimezone(tz).date().isoformat()}"
        _earliest(best, day_key, at, e.event_id, POINTS_ACTIVE_DAY)
        if e.verb == "completed":
            _earliest(best, f"completed:{e.object_id}", at, e.event_id, POINTS_COMPLETED)
        elif e.verb == "passed":
            _earliest(best, f"passed:{e.object_id}", at, e.event_id, POINTS_PASSED)
    awards = [Award(key, points, at, event_id) for key, (at, event_id, points) in best.items()]
    awards.sort(key=lambda a: (a.occurred_at, a.key))
    return awards


def _earliest(best: dict[str, tuple[datetime, UUID, int]], key: str, at: datetime, event_id: UUID, points: int) -> None:
    """Keep the award of `key` from the earliest event (ties: the smallest event id)."""
    current = best.get(key)
    if current is None or at < current[0] or (at == current[0] and event_id < current[1]):
        best[key] = (at, event_id, points)


def hour_of(at: datetime) -> datetime:
    """The UTC clock hour `at` falls in (its first instant)."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def cap_basis(sent_by_service: bool) -> CapBasis:
    """A platform service's events count by when they occurred, a learner's own by arrival."""
    return "occurred" if sent_by_service else "arrived"


def cap_hour(award: Award, basis: CapBasis, arrived_at: datetime) -> datetime:
    """The hour whose cap an award counts against."""
    return hour_of(award.occurred_at if basis == "occurred" else arrived_at)


class Grant(NamedTuple):
    """An award to write and the hour it counts against."""

    award: Award
    hour: datetime


def apply_hourly_cap(
    candidates: Sequence[Award],
    awarded_keys: Collection[str],
    points_by_hour: Mapping[datetime, int],
    basis: CapBasis,
    arrived_at: datetime,
    cap: int = HOURLY_CAP,
) -> list[Grant]:
    """The candidates to grant: keys not awarded before, oldest first, while each cap hour's
    points (those already in the ledger, `points_by_hour`, plus the ones granted here) stay
    within `cap`. An award that does not fit is skipped (a smaller one after it may still fit);
    it can be earned later by another event with the same key."""
    used = dict(points_by_hour)
    granted = []
    for award in candidates:
        if award.key in awarded_keys:
            continue
        hour = cap_hour(award, basis, arrived_at)
        total = used.get(hour, 0) + award.points
        if total > cap:
            continue
        used[hour] = total
        granted.append(Grant(award, hour))
    return granted


@dataclass(frozen=True, slots=True)
class Streak:
    """The latest run of consecutive active days and the longest run ever seen.

    `current` is as of the day it was computed; streak_as_of() gives it for a later day.
    """

    current: int = 0
    longest: int = 0
    current_start: date | None = None
    last_active: date | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "longest": self.longest,
            "current_start": self.current_start.isoformat() if self.current_start else None,
            "last_active": self.last_active.isoformat() if self.last_active else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Streak:
        """Read a stored `streaks` object; anything unreadable counts as no streak yet."""
        if not data:
            return cls()
        try:
            start, last = data.get("current_start"), data.get("last_active")
            return cls(
                int(data.get("current", 0)), int(data.get("longest", 0)),
                date.fromisoformat(start) if start else None, date.fromisoformat(last) if last else None,
            )
        except (TypeError, ValueError):
            return cls()


def active_days(occurred: Iterable[datetime], tz: tzinfo, first_day: date, last_day: date) -> set[date]:
    """The user's calendar days (in `tz`) from first_day to last_day with activity."""
    return active_days_at((t.timestamp() for t in occurred), tz, first_day, last_day)


def active_days_at(instants: Iterable[float], tz: tzinfo, first_day: date, last_day: date) -> set[date]:
    """active_days of instants in POSIX seconds (see ms8.domain.metrics.EventRow)."""
    days = local_days(tz, first_day, (last_day - first_day).days + 1)
    starts, dates = days.starts, days.dates
    found = {bisect_right(starts, t) for t in instants}  # a day's position + 1 (LocalDays.index)
    return {dates[i - 1] for i in found if 0 < i <= len(dates)}


def streak_as_of(streak: Streak, today: date) -> int:
    """Length of the current streak on `today`: alive while the last active day is today or
    yesterday (today is not over yet), else 0."""
    if streak.current_start is None or streak.last_active is None:
        return 0
    if streak.last_active < today - timedelta(days=1):
        return 0
    return (streak.last_active - streak.current_start).days + 1


def compute_streak(days: Iterable[date], today: date, window_start: date, previous: Streak | None) -> Streak:
    """The streak from the active days seen in [window_start, today] and the previous state.

    Only a window of activity is read; a run that reaches back to the window's first day is
    joined to the previous state's run when that one ended there or the day before, so a streak
    longer than the window keeps its true start. Days after `today` are ignored.
    """
    one = timedelta(days=1)
    previous = previous or Streak()
    # The runs of consecutive days, as day numbers (date ordinals): the longest and the last.
    first, last = window_start.toordinal(), today.toordinal()
    longest = previous.longest
    run_start = run_end = -1
    for n in sorted({n for n in map(date.toordinal, days) if first <= n <= last}):
        if n != run_end + 1:
            if run_end >= 0:
                longest = max(longest, run_end - run_start + 1)
            run_start = n
        run_end = n
    if run_end < 0:
        return Streak(0, longest, previous.current_start, previous.last_active)
    longest = max(longest, run_end - run_start + 1)
    start, end = date.fromordinal(run_start), date.fromordinal(run_end)
    if (
        start == window_start and previous.current_start is not None and previous.last_active is not None
        and previous.current_start < start and previous.last_active >= start - one
    ):
        start = previous.current_start
    length = (end - start).days + 1
    streak = Streak(0, max(longest, length), start, end)
    return Streak(streak_as_of(streak, today), streak.longest, start, end)


def badge_name(badge_id: str) -> str:
    if badge_id.startswith(MASTERY_BADGE_PREFIX):
        return f"Mastery of {badge_id[len(MASTERY_BADGE_PREFIX):]}"
    return BADGE_NAMES.get(badge_id, badge_id)


def earn_badges(
    previous: Sequence[Mapping[str, Any]],
    *,
    completed: bool,
    longest_streak: int,
    skill_mastery: Mapping[str, float],
    now: datetime,
) -> list[dict[str, Any]]:
    """Badges are kept once earned. New ones: first completion, 7- and 30-day streaks, and
    mastery >= 0.9 in a skill (`mastery:<skill>`). Each carries when it was earned."""
    have: dict[str, dict[str, Any]] = {
        str(b["id"]): {"id": str(b["id"]), "earned_at": b.get("earned_at")}
        for b in previous if isinstance(b, Mapping) and b.get("id")
    }
    earned = []
    if completed:
        earned.append("first_completion")
    earned += [badge for days, badge in STREAK_BADGES.items() if longest_streak >= days]
    earned += [f"{MASTERY_BADGE_PREFIX}{s}" for s, v in skill_mastery.items() if v >= MASTERY_BADGE_LEVEL]
    for badge in earned:
        have.setdefault(badge, {"id": badge, "earned_at": now.isoformat()})
    return sorted(have.values(), key=lambda b: (str(b["earned_at"]), b["id"]))


@dataclass(frozen=True, slots=True)
class State:
    """A user's gamification row (role learner)."""

    points: int
    level: int
    badges: list[dict[str, Any]]
    streak: Streak


def next_state(
    previous: State | None,
    *,
    points: int,
    days: Iterable[date],
    completed: bool,
    skill_mastery: Mapping[str, float],
    today: date,
    window_start: date,
    now: datetime,
) -> State:
    """The new row: points from the ledger, their level, the streak and the badges."""
    streak = compute_streak(days, today, window_start, previous.streak if previous else None)
    badges = earn_badges(
        previous.badges if previous else [], completed=completed, longest_streak=streak.longest,
        skill_mastery=skill_mastery, now=now,
    )
    return State(points, level_for(points), badges, streak)
