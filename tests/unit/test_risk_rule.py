"""The at-risk rule (ms8.domain.risk) and the rollup ratios (ms8.domain.rollups) on examples
small enough to check by hand: the same examples as docs/ANALYTICS.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ms8 import config
from ms8.domain import risk, vocabulary
from ms8.domain.rollups import RollupSums, figures

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DEFAULT = risk.RiskThresholds()


def codes(figures_: risk.LearnerFigures, thresholds: risk.RiskThresholds = DEFAULT) -> list[str]:
    return [r.code for r in risk.reasons(figures_, NOW, thresholds)]


TARGETS = {"sql": 0.8, "python": 0.75, "excel": 0.7}


def learner(days_idle: float | None = 1, velocity: float = 2, previous: float = 2,
            mastery: dict[str, float] | None = None) -> risk.LearnerFigures:
    last = None if days_idle is None else NOW - timedelta(days=days_idle)
    return risk.LearnerFigures(last, velocity, previous, mastery or {}, TARGETS)


def test_inactive_from_seven_days_and_for_someone_never_active() -> None:
    assert codes(learner(days_idle=6.99)) == []
    assert codes(learner(days_idle=7)) == ["inactive"]
    (reason,) = risk.reasons(learner(days_idle=9.5), NOW, DEFAULT)
    assert reason.message == "no activity for 9 days (since 2026-11-27)"
    assert risk.reasons(learner(days_idle=None), NOW, DEFAULT)[0].message == "no learning activity yet"


def test_velocity_drop_at_half_or_less_of_a_previous_velocity_above_zero() -> None:
    assert codes(learner(velocity=1.0, previous=2.0)) == ["velocity_drop"]  # exactly half
    assert codes(learner(velocity=1.25, previous=2.0)) == []
    assert codes(learner(velocity=0, previous=0)) == []  # nothing to drop from
    (reason,) = risk.reasons(learner(velocity=0.25, previous=2.0), NOW, DEFAULT)
    assert reason.message == "velocity fell from 2 to 0.25 completions per week against the previous 4 weeks"


def test_below_target_by_more_than_the_margin_naming_the_skills() -> None:
    assert codes(learner(mastery={"sql": 0.7})) == []  # exactly the margin below: not more
    assert codes(learner(mastery={"sql": 0.6999})) == ["below_target"]
    assert codes(learner(mastery={"r": 0.1})) == []  # a skill the organization does not target
    assert codes(learner(mastery={})) == []  # never assessed: the skill gap shows it, no risk
    (reason,) = risk.reasons(learner(mastery={"sql": 0.5, "python": 0.7, "excel": 0.55}), NOW, DEFAULT)
    assert reason.code == "below_target"
    assert reason.message.endswith("in excel (0.15 below), sql (0.3 below)")


def test_reasons_come_in_a_fixed_order_and_thresholds_change_them() -> None:
    everything = learner(days_idle=30, velocity=0, previous=1, mastery={"sql": 0.0})
    assert codes(everything) == ["inactive", "velocity_drop", "below_target"]
    lenient = risk.RiskThresholds(inactive_days=31, velocity_drop_ratio=0.0, target_margin=0.8)
    assert codes(everything, lenient) == ["velocity_drop"]  # 0 <= 0 * 1
    assert set(codes(everything)) <= set(vocabulary.RISK_CODES)


def test_thresholds_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_INACTIVE_DAYS", "14")
    monkeypatch.setenv("RISK_VELOCITY_DROP", "0.25")
    monkeypatch.setenv("RISK_TARGET_MARGIN", "0.2")
    config.risk_thresholds.cache_clear()
    try:
        assert config.risk_thresholds() == risk.RiskThresholds(14, 0.25, 0.2)
    finally:
        config.risk_thresholds.cache_clear()
    monkeypatch.undo()
    assert config.risk_thresholds() == DEFAULT
    config.risk_thresholds.cache_clear()


def test_rollup_ratios_of_the_worked_week() -> None:
    # The week of docs/ANALYTICS.md: 4 learners, 3 active, 3 completions, scores .8 and .4, 60 minutes.
    week = RollupSums(days=7, learners=4, active_learners=3, completions=3, assessments=3, scored=2,
                      score_micros=1_200_000, duration_seconds=3600)
    f = figures(week)
    assert (f.active_share, f.velocity, f.mean_score, f.minutes_per_active_learner) == (0.75, 0.75, 0.6, 20.0)
    # One day of the same: velocity is per week, so 1 completion by 1 of 4 learners in a day is 1.75.
    day = RollupSums(days=1, learners=4, active_learners=1, completions=1, assessments=0, scored=0,
                     score_micros=0, duration_seconds=600)
    f = figures(day)
    assert (f.active_share, f.velocity, f.mean_score, f.minutes_per_active_learner) == (0.25, 1.75, None, 10.0)
    idle = figures(RollupSums(30, 12, 0, 0, 0, 0, 0, 0))
    assert (idle.active_share, idle.velocity, idle.minutes_per_active_learner) == (0.0, 0.0, None)
