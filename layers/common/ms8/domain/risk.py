"""The at-risk rule (docs/ANALYTICS.md): which reasons apply to a learner, from their figures.

Pure: the thresholds come in as RiskThresholds (from the environment, see
ms8.config.risk_thresholds), the learner's figures as LearnerFigures.

- inactive: no event for `inactive_days` days or more (or none ever);
- velocity_drop: the velocity of the last 4 weeks is at most `velocity_drop_ratio` times the
  velocity of the 4 weeks before, which was above 0;
- below_target: for at least one skill the organization targets and the learner has been assessed
  in, the learner's mastery is below the target by more than `target_margin`. A skill never
  assessed is not a reason (it counts as 0 in the skill gap, but a learner who has not reached a
  course yet is not falling behind in it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ms8.domain.vocabulary import RiskCode


@dataclass(frozen=True, slots=True)
class RiskThresholds:
    inactive_days: int = 7
    velocity_drop_ratio: float = 0.5
    target_margin: float = 0.1


@dataclass(frozen=True, slots=True)
class LearnerFigures:
    """What the rule looks at, for one learner as of `now`."""

    last_activity_at: datetime | None
    velocity: float
    previous_velocity: float
    skill_mastery: Mapping[str, float]  # skill -> mastery, for the skills assessed
    targets: Mapping[str, float]  # the organization's target level per skill


@dataclass(frozen=True, slots=True)
class Reason:
    code: RiskCode
    message: str


def _fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def reasons(figures: LearnerFigures, now: datetime, thresholds: RiskThresholds) -> list[Reason]:
    """The reasons that apply, in the order inactive, velocity_drop, below_target."""
    out: list[Reason] = []
    last = figures.last_activity_at
    if last is None:
        out.append(Reason("inactive", "no learning activity yet"))
    elif now - last >= timedelta(days=thresholds.inactive_days):
        idle = (now - last).days
        out.append(Reason("inactive", f"no activity for {idle} days (since {last.date().isoformat()})"))
    previous = figures.previous_velocity
    if previous > 0 and figures.velocity <= thresholds.velocity_drop_ratio * previous:
        out.append(Reason(
            "velocity_drop",
            f"velocity fell from {_fmt(previous)} to {_fmt(figures.velocity)} completions per week "
            "against the previous 4 weeks",
        ))
    # Compared in 4 decimals (mastery is stored so): a gap of exactly the margin is not more.
    gaps = {s: round(t - figures.skill_mastery[s], 4) for s, t in figures.targets.items() if s in figures.skill_mastery}
    behind = sorted((s, g) for s, g in gaps.items() if g > thresholds.target_margin)
    if behind:
        listed = ", ".join(f"{s} ({_fmt(g)} below)" for s, g in behind)
        out.append(Reason(
            "below_target",
            f"mastery below the organization's target by more than {_fmt(thresholds.target_margin)} in {listed}",
        ))
    return out
