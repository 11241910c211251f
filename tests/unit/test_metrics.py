"""The analytics definitions (ms8.domain.metrics) on small hand-computed examples: no database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ms8.domain import metrics
from ms8.domain.metrics import EventRecord, compute_all, engagement, learning_velocity, mastery, skill_gap
from ms8.schemas.base import ANALYTICS_TYPES, HEADLINE_METRIC

# Monday 2 March 2026, noon UTC: 1 and 2 days after the end of February (28 days in 2026).
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
UTC_TZ = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


def ev(
    verb: str, at: datetime, object_id: str = "obj", *, score: float | None = None,
    skills: Sequence[str] = (), duration: int | None = None,
) -> EventRecord:
    return EventRecord(verb, object_id, list(skills), score, None, duration, at)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


# --- learning_velocity: distinct objects completed per week, trailing 4 weeks vs the 4 before ---

def test_velocity_no_events() -> None:
    assert learning_velocity([], NOW) == {
        "velocity": 0.0, "previous_velocity": 0.0, "trend": 0.0, "completions": 0, "previous_completions": 0,
    }


def test_velocity_one_completion() -> None:
    data = learning_velocity([ev("completed", ago(days=1))], NOW)
    assert (data["velocity"], data["previous_velocity"], data["trend"], data["completions"]) == (0.25, 0.0, 0.25, 1)


def test_velocity_across_a_month_boundary_with_trend() -> None:
    events = [
        ev("completed", datetime(2026, 3, 1, 8, tzinfo=UTC), "c1"),   # March
        ev("completed", datetime(2026, 2, 27, 20, tzinfo=UTC), "c2"),  # February: same window
        ev("completed", datetime(2026, 2, 20, 9, tzinfo=UTC), "c1"),   # c1 again: counts once
        ev("passed", ago(days=2), "q1"),                              # not a completion
        ev("completed", datetime(2026, 1, 20, 9, tzinfo=UTC), "c3"),   # 41 days ago: previous window
    ]
    data = learning_velocity(events, NOW)
    # recent {c1, c2} = 2 / 4 weeks; previous {c3} = 1 / 4 weeks
    assert data == {"velocity": 0.5, "previous_velocity": 0.25, "trend": 0.25,
                    "completions": 2, "previous_completions": 1}


def test_velocity_window_edges() -> None:
    events = [
        ev("completed", ago(days=28), "edge-previous"),                 # (now-56d, now-28d]
        ev("completed", ago(days=28) + timedelta(seconds=1), "edge-recent"),
        ev("completed", ago(days=56), "too-old"),
        ev("completed", NOW + timedelta(seconds=1), "future"),
    ]
    data = learning_velocity(events, NOW)
    assert (data["completions"], data["previous_completions"]) == (1, 1)


# --- engagement: active local days in the trailing 30 and 7 days, sessions, minutes ---

def test_engagement_no_events() -> None:
    assert engagement([], NOW, UTC_TZ) == {
        "engagement": 0.0, "engagement_7d": 0.0, "active_days": 0, "active_days_7d": 0, "sessions": 0, "minutes": 0.0,
    }


def test_engagement_one_event() -> None:
    data = engagement([ev("progressed", ago(hours=1))], NOW, UTC_TZ)
    assert (data["engagement"], data["engagement_7d"], data["active_days"]) == (round(1 / 30, 4), round(1 / 7, 4), 1)


def test_engagement_sessions_minutes_and_days() -> None:
    events = [
        ev("session", ago(days=1), duration=1800),
        ev("session", ago(days=1, hours=2), duration=600),   # same day
        ev("completed", ago(days=10), duration=300),         # outside the 7 days
        ev("failed", ago(days=40), duration=9999),           # outside the 30 days
    ]
    data = engagement(events, NOW, UTC_TZ)
    # active days: 1 March, 20 February -> 2 of 30; of the last 7: 1. Minutes (1800+600+300)/60.
    assert data == {"engagement": round(2 / 30, 4), "engagement_7d": round(1 / 7, 4), "active_days": 2,
                    "active_days_7d": 1, "sessions": 2, "minutes": 45.0}


def test_engagement_counts_local_days_across_a_month_boundary() -> None:
    events = [
        ev("progressed", datetime(2026, 2, 28, 23, 30, tzinfo=UTC)),  # Berlin: 1 March 00:30
        ev("progressed", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),    # Berlin: 1 March 11:00
    ]
    assert engagement(events, NOW, UTC_TZ)["active_days"] == 2    # 28 Feb and 1 Mar in UTC
    assert engagement(events, NOW, BERLIN)["active_days"] == 1    # one Berlin day


def test_engagement_window_is_30_local_days_including_today() -> None:
    # Tokyo: now is 2 March 21:00, so the 30 days run from 1 February 00:00 (31 Jan 15:00 UTC).
    first = datetime(2026, 1, 31, 15, 0, tzinfo=UTC)
    inside = engagement([ev("session", first)], NOW, TOKYO)
    outside = engagement([ev("session", first - timedelta(seconds=1))], NOW, TOKYO)
    assert (inside["active_days"], outside["active_days"]) == (1, 0)


# --- mastery: recency-weighted mean of assessment scores (half-life 30 days, 90-day window) ---

def test_mastery_no_events() -> None:
    assert mastery([], NOW) == {"mastery": None, "skills": {}, "assessments": 0}


def test_mastery_one_event() -> None:
    data = mastery([ev("passed", ago(days=1), score=0.8, skills=["sql"])], NOW)
    assert data == {"mastery": 0.8, "skills": {"sql": 0.8}, "assessments": 1}


def test_mastery_weights_halve_every_30_days() -> None:
    events = [
        ev("passed", NOW, score=1.0, skills=["sql", "python"]),      # weight 1
        ev("failed", ago(days=30), score=0.0, skills=["sql"]),       # weight 1/2
        ev("attempted", ago(days=60), score=0.5, skills=["excel"]),  # weight 1/4
    ]
    data = mastery(events, NOW)
    assert data["mastery"] == round((1 * 1.0 + 0.5 * 0.0 + 0.25 * 0.5) / 1.75, 4)  # 0.6429
    assert data["skills"] == {"excel": 0.5, "python": 1.0, "sql": round(1 / 1.5, 4)}
    assert data["assessments"] == 3


def test_mastery_ignores_non_assessments_future_and_old_scores() -> None:
    events = [
        ev("completed", ago(days=1), score=0.1),          # not an assessment verb
        ev("passed", NOW + timedelta(minutes=1), score=0.1),
        ev("passed", ago(days=90), score=0.1),            # the window is (now - 90 days, now]
        ev("passed", ago(days=89), score=0.9),
        ev("attempted", ago(days=2)),                      # no score
    ]
    assert mastery(events, NOW) == {"mastery": 0.9, "skills": {}, "assessments": 1}


# --- skill_gap: target - mastery per targeted skill, clamped at 0; mean as the headline ---

def test_skill_gap_without_targets() -> None:
    assert skill_gap([ev("passed", ago(days=1), score=0.5, skills=["sql"])], NOW, {}) == {
        "gap": None, "skills": {}, "targeted_skills": 0,
    }


def test_skill_gap_clamps_and_counts_unassessed_skills_as_zero() -> None:
    events = [
        ev("passed", ago(days=1), score=0.6, skills=["sql"]),
        ev("passed", ago(days=1), score=0.7, skills=["python"]),
    ]
    targets = {"sql": 0.8, "python": 0.5, "excel": 0.4}
    data = skill_gap(events, NOW, targets)
    # sql 0.8 - 0.6 = 0.2; python 0.5 - 0.7 < 0 -> 0; excel never assessed: 0.4
    assert data == {"gap": round((0.2 + 0.0 + 0.4) / 3, 4),
                    "skills": {"excel": 0.4, "python": 0.0, "sql": 0.2}, "targeted_skills": 3}


def test_skill_gap_no_events_is_the_full_target() -> None:
    assert skill_gap([], NOW, {"sql": 0.75}) == {"gap": 0.75, "skills": {"sql": 0.75}, "targeted_skills": 1}


# --- all types together ---

@pytest.mark.parametrize("events", [[], [ev("passed", ago(days=3), score=0.9, skills=["sql"])]])
def test_compute_all_carries_every_headline_metric(events: list[EventRecord]) -> None:
    data = compute_all(events, NOW, BERLIN, {"sql": 0.8})
    assert set(data) == set(ANALYTICS_TYPES)
    for analytics_type, values in data.items():
        assert HEADLINE_METRIC[analytics_type] in values
    assert set(metrics.WINDOW_DAYS) == set(ANALYTICS_TYPES)
    assert timedelta(days=max(metrics.WINDOW_DAYS.values())) < metrics.READ_WINDOW


def test_same_events_in_any_order_give_the_same_numbers() -> None:
    events = [ev("passed", ago(days=d, hours=h), f"o{d}", score=((d * 7 + h) % 10) / 10, skills=["a", "b"][: 1 + d % 2],
                 duration=60 * h) for d in range(0, 80, 3) for h in (1, 5)]
    events += [ev("completed", ago(days=d), f"c{d}") for d in range(0, 60, 4)]
    forward = compute_all(events, NOW, TOKYO, {"a": 0.9})
    assert compute_all(list(reversed(events)), NOW, TOKYO, {"a": 0.9}) == forward


def test_local_days_follow_daylight_saving_time() -> None:
    # Berlin switches to summer time on 29 March 2026: that day has 23 hours.
    days = metrics.LocalDays(BERLIN, datetime(2026, 3, 28).date(), 3)
    assert days.index(datetime(2026, 3, 28, 22, 59, tzinfo=UTC)) == 0   # 23:59 CET, 28 March
    assert days.index(datetime(2026, 3, 28, 23, 0, tzinfo=UTC)) == 1    # 00:00 CET, 29 March
    assert days.index(datetime(2026, 3, 29, 21, 59, tzinfo=UTC)) == 1   # 23:59 CEST, 29 March
    assert days.index(datetime(2026, 3, 29, 22, 0, tzinfo=UTC)) == 2    # 00:00 CEST, 30 March
    assert days.index(datetime(2026, 3, 31, 22, 0, tzinfo=UTC)) == -1   # after the last day
    assert days.index(datetime(2026, 3, 27, 22, 0, tzinfo=UTC)) == -1   # before the first
