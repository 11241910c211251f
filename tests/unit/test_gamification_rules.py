"""The gamification rules (ms8.domain.gamification) on small hand-computed examples: no database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ms8.domain import gamification as g
from ms8.domain.gamification import Award, AwardSource, Streak

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
UTC_TZ = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def src(verb: str, at: datetime, object_id: str = "obj") -> AwardSource:
    return AwardSource(uuid.uuid4(), verb, object_id, at)


def d(month: int, day: int) -> date:
    return date(2026, month, day)


# --- levels ---

@pytest.mark.parametrize(("points", "level", "next_at"), [
    (0, 1, 100), (99, 1, 100), (100, 2, 250), (249, 2, 250), (250, 3, 500), (10_999, 9, 11_000),
    (11_000, 10, None), (1_000_000, 10, None),
])
def test_levels_from_thresholds(points: int, level: int, next_at: int | None) -> None:
    assert g.level_for(points) == level
    assert g.next_level_points(points) == next_at


# --- awards ---

def test_no_events_no_awards() -> None:
    assert g.candidate_awards([], UTC_TZ) == []


def test_one_completion_earns_completion_and_active_day() -> None:
    e = src("completed", NOW, "course-1")
    awards = g.candidate_awards([e], UTC_TZ)
    assert [(a.key, a.points) for a in awards] == [("active:2026-03-02", 5), ("completed:course-1", 10)]
    assert all(a.event_id == e.event_id for a in awards)


def test_repeated_events_earn_once_each_key() -> None:
    events = [
        src("completed", NOW - timedelta(hours=3), "course-1"),
        src("completed", NOW - timedelta(hours=1), "course-1"),   # same course again, new event id
        src("passed", NOW - timedelta(hours=2), "quiz-1"),
        src("failed", NOW - timedelta(hours=2), "quiz-2"),        # activity only
        src("progressed", NOW - timedelta(minutes=5), "course-2"),
    ]
    awards = g.candidate_awards(events, UTC_TZ)
    assert sorted((a.key, a.points) for a in awards) == [
        ("active:2026-03-02", 5), ("completed:course-1", 10), ("passed:quiz-1", 20),
    ]
    first = next(a for a in awards if a.key == "completed:course-1")
    assert first.occurred_at == NOW - timedelta(hours=3)  # the earliest event wins


def test_active_day_is_the_users_local_day() -> None:
    late = src("session", datetime(2026, 2, 28, 23, 30, tzinfo=UTC))
    assert [a.key for a in g.candidate_awards([late], UTC_TZ)] == ["active:2026-02-28"]
    assert [a.key for a in g.candidate_awards([late], BERLIN)] == ["active:2026-03-01"]   # next month there
    assert [a.key for a in g.candidate_awards([late], NEW_YORK)] == ["active:2026-02-28"]


def test_active_day_with_a_quarter_hour_offset() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # UTC+05:45: local midnight is at 18:15 UTC
    before = src("session", datetime(2026, 3, 1, 18, 14, 59, tzinfo=UTC))
    after = src("session", datetime(2026, 3, 1, 18, 15, tzinfo=UTC))
    assert [a.key for a in g.candidate_awards([before, after], kathmandu)] == ["active:2026-03-01", "active:2026-03-02"]


def _award(key: str, points: int, minutes: int) -> Award:
    return Award(key, points, NOW - timedelta(minutes=minutes), uuid.uuid4())


HOUR = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # the clock hour before NOW (12:00)


def test_hourly_cap_skips_taken_keys_and_what_does_not_fit() -> None:
    candidates = [
        _award("completed:a", 10, 50), _award("passed:q", 20, 40), _award("completed:b", 10, 30),
        _award("active:2026-03-02", 5, 20),
    ]
    # All occurred 11:10..11:40. 170 points already in that hour: 30 left. completed:a is taken;
    # passed:q (20) fits, 10 left; completed:b (10) fits, 0 left; the active day (5) does not.
    granted = g.apply_hourly_cap(candidates, {"completed:a"}, {HOUR: 170}, "occurred", NOW)
    assert [(x.award.key, x.hour) for x in granted] == [("passed:q", HOUR), ("completed:b", HOUR)]


def test_hourly_cap_lets_a_smaller_award_through_after_a_larger_one_is_refused() -> None:
    candidates = [_award("passed:q", 20, 30), _award("active:2026-03-02", 5, 20)]
    granted = g.apply_hourly_cap(candidates, set(), {HOUR: 190}, "occurred", NOW)
    assert [x.award.key for x in granted] == ["active:2026-03-02"]


def test_farming_distinct_objects_is_capped_at_200_per_hour() -> None:
    events = [src("completed", NOW - timedelta(minutes=i), f"fake-{i}") for i in range(100)]
    granted = g.apply_hourly_cap(g.candidate_awards(events, UTC_TZ), set(), {}, "arrived", NOW)
    # Oldest first: 19 completions (190), then the active day (5) = 195; no further 10 fits in 200.
    assert (sum(x.award.points for x in granted), len(granted), g.HOURLY_CAP) == (195, 20, 200)
    assert {x.hour for x in granted} == {NOW}  # all counted in the hour they arrived in


def test_cap_hour_is_the_utc_clock_hour() -> None:
    award = Award("completed:a", 10, datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=BERLIN), uuid.uuid4())
    arrived = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    assert g.cap_hour(award, "occurred", arrived) == datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # 23:59 Berlin
    assert g.cap_hour(award, "arrived", arrived) == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert (g.cap_basis(sent_by_service=True), g.cap_basis(sent_by_service=False)) == ("occurred", "arrived")


def test_back_filled_history_is_capped_per_hour_it_occurred_in() -> None:
    # A platform sends 30 days at once: each day 12 completions between 09:00 and 09:55 and a
    # passed quiz at 14:00. Per day: 09:xx holds 5 (active day) + 12 x 10 = 125 <= 200; 14:00
    # holds 20. Nothing is clamped: 30 x 145 = 4,350 points, where one arrival hour allows 200.
    events = []
    for day in range(30):
        base = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(days=day)
        events += [src("completed", base + timedelta(minutes=5 * i), f"d{day}-c{i}") for i in range(12)]
        events.append(src("passed", base + timedelta(hours=5), f"d{day}-quiz"))
    candidates = g.candidate_awards(events, UTC_TZ)
    granted = g.apply_hourly_cap(candidates, set(), {}, "occurred", NOW)
    assert (len(granted), sum(x.award.points for x in granted)) == (30 * 14, 4_350)
    # The same history as the learner's own submission arrives in one hour: 200 at most.
    own = g.apply_hourly_cap(candidates, set(), {}, "arrived", NOW)
    assert sum(x.award.points for x in own) == 200


def test_the_cap_holds_in_each_occurrence_hour() -> None:
    # 30 completions in one hour of history (300 points of candidates), 5 in the next hour.
    h1 = datetime(2026, 2, 1, 8, tzinfo=UTC)
    events = [src("completed", h1 + timedelta(minutes=i), f"a{i}") for i in range(30)]
    events += [src("completed", h1 + timedelta(hours=1, minutes=i), f"b{i}") for i in range(5)]
    granted = g.apply_hourly_cap(g.candidate_awards(events, UTC_TZ), set(), {h1: 50}, "occurred", NOW)
    per_hour: dict[datetime, int] = {}
    for x in granted:
        per_hour[x.hour] = per_hour.get(x.hour, 0) + x.award.points
    # 08:00 had 50 already: the active day (5, first event) and 14 completions (140) = 145 -> 195.
    assert per_hour == {h1: 145, h1 + timedelta(hours=1): 50}


def test_a_learner_cannot_back_date_into_empty_hours() -> None:
    # Own events dated one per past hour (02:00..11:00): all count in the arrival hour (12:00),
    # which has 185 already: the active day (5, from the oldest event) and the oldest completion
    # (10) make 200; the nine other completions find no room.
    events = [src("completed", NOW - timedelta(hours=i + 1), f"x{i}") for i in range(10)]
    granted = g.apply_hourly_cap(g.candidate_awards(events, UTC_TZ), set(), {NOW: 185}, "arrived", NOW)
    assert [(x.award.key, x.hour) for x in granted] == [("active:2026-03-02", NOW), ("completed:x9", NOW)]


# --- streaks ---

def test_streak_of_nothing() -> None:
    assert g.compute_streak([], d(3, 2), d(1, 1), None) == Streak(0, 0, None, None)


def test_streak_of_one_day() -> None:
    assert g.compute_streak([d(3, 2)], d(3, 2), d(1, 1), None) == Streak(1, 1, d(3, 2), d(3, 2))


def test_streak_across_a_month_boundary() -> None:
    days = [d(2, 27), d(2, 28), d(3, 1), d(3, 2)]  # 2026 is not a leap year: 28 Feb -> 1 Mar
    assert g.compute_streak(days, d(3, 2), d(1, 1), None) == Streak(4, 4, d(2, 27), d(3, 2))


def test_a_gap_breaks_the_streak_and_longest_is_kept() -> None:
    days = [d(2, 20), d(2, 21), d(2, 22), d(3, 1), d(3, 2)]
    assert g.compute_streak(days, d(3, 2), d(1, 1), Streak(0, 5, None, None)) == Streak(2, 5, d(3, 1), d(3, 2))


def test_streak_alive_until_the_end_of_the_next_day() -> None:
    streak = g.compute_streak([d(2, 28), d(3, 1)], d(3, 2), d(1, 1), None)
    assert streak == Streak(2, 2, d(2, 28), d(3, 1))  # not active today yet: still alive
    assert g.streak_as_of(streak, d(3, 2)) == 2
    assert g.streak_as_of(streak, d(3, 3)) == 0
    assert g.compute_streak([d(2, 28)], d(3, 2), d(1, 1), None).current == 0


def test_streak_longer_than_the_window_keeps_its_start() -> None:
    window_start = d(2, 1)
    days = [window_start + timedelta(days=i) for i in range(30)]  # 1 Feb .. 2 Mar, all active
    previous = Streak(22, 22, d(1, 10), d(1, 31))  # ended the day before the window
    streak = g.compute_streak(days, d(3, 2), window_start, previous)
    assert streak == Streak(52, 52, d(1, 10), d(3, 2))  # 10 Jan .. 2 Mar
    # A previous run that ended two days before the window is not joined.
    apart = g.compute_streak(days, d(3, 2), window_start, Streak(0, 20, d(1, 10), d(1, 30)))
    assert apart == Streak(30, 30, window_start, d(3, 2))


def test_days_after_today_are_ignored() -> None:
    assert g.compute_streak([d(3, 2), d(3, 3)], d(3, 2), d(1, 1), None) == Streak(1, 1, d(3, 2), d(3, 2))


@pytest.mark.parametrize(("tz", "expected_days"), [
    (UTC_TZ, {d(3, 1), d(3, 2)}),   # 23:30 and 00:30 UTC: two days
    (NEW_YORK, {d(3, 1)}),          # 18:30 and 19:30 on 1 March
    (TOKYO, {d(3, 2)}),             # 08:30 and 09:30 on 2 March
])
def test_streak_days_in_the_users_time_zone(tz: ZoneInfo, expected_days: set[date]) -> None:
    instants = [datetime(2026, 3, 1, 23, 30, tzinfo=UTC), datetime(2026, 3, 2, 0, 30, tzinfo=UTC)]
    days = g.active_days(instants, tz, d(1, 1), d(3, 3))
    assert days == expected_days
    assert g.compute_streak(days, max(expected_days), d(1, 1), None).current == len(expected_days)


def test_streak_over_the_daylight_saving_switch() -> None:
    # 00:30 local on 29 March (CET, UTC+1) and 30 March (CEST, UTC+2): consecutive Berlin days.
    instants = [datetime(2026, 3, 28, 23, 30, tzinfo=UTC), datetime(2026, 3, 29, 22, 30, tzinfo=UTC)]
    days = g.active_days(instants, BERLIN, d(3, 1), d(3, 31))
    assert days == {d(3, 29), d(3, 30)}
    assert g.compute_streak(days, d(3, 30), d(3, 1), None).current == 2


def test_streak_state_round_trips_and_tolerates_junk() -> None:
    streak = Streak(3, 9, d(2, 28), d(3, 2))
    assert Streak.from_json(streak.as_json()) == streak
    assert Streak.from_json({}) == Streak()
    assert Streak.from_json({"current": "x", "current_start": "not a date"}) == Streak()


# --- badges ---

def test_badges_from_milestones_are_kept_once_earned() -> None:
    assert g.earn_badges([], completed=False, longest_streak=0, skill_mastery={}, now=NOW) == []
    first = g.earn_badges([], completed=True, longest_streak=7, skill_mastery={"sql": 0.9, "python": 0.89}, now=NOW)
    assert [b["id"] for b in first] == ["first_completion", "mastery:sql", "streak_7"]
    later = NOW + timedelta(days=30)
    again = g.earn_badges(first, completed=False, longest_streak=30, skill_mastery={"sql": 0.5}, now=later)
    assert {b["id"]: b["earned_at"] for b in again} == {
        "first_completion": NOW.isoformat(), "mastery:sql": NOW.isoformat(), "streak_7": NOW.isoformat(),
        "streak_30": later.isoformat(),
    }
    assert g.badge_name("mastery:sql") == "Mastery of sql"
    assert g.badge_name("streak_30") == "30-day streak"


def test_next_state_puts_it_together() -> None:
    previous = g.State(90, 1, [], Streak(1, 1, d(3, 1), d(3, 1)))
    state = g.next_state(previous, points=105, days={d(3, 1), d(3, 2)}, completed=True, skill_mastery={},
                         today=d(3, 2), window_start=d(1, 1), now=NOW)
    assert (state.points, state.level) == (105, 2)
    assert state.streak == Streak(2, 2, d(3, 1), d(3, 2))
    assert [b["id"] for b in state.badges] == ["first_completion"]
