"""The documented range of every analytics field (docs/ANALYTICS.md, "Input ranges").

One table, used three ways: `PUT /v1/analytics` refuses a snapshot with a field out of range (422
naming the field), the comparison refresh keeps out-of-range stored values out of every group and
reports them, and the privacy mechanism clamps to the headline's range (its sensitivity).

Pure: no database, no pydantic. A check runs on every item of a write batch, so it is a plain
loop over the few keys of one snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

# Above this many completions a week, a velocity is not a person learning but a client bug.
MAX_VELOCITY = 1000.0
MAX_COUNT = 1_000_000
MAX_MINUTES_30D = 30 * 24 * 60.0
MAX_SKILLS = 200
MAX_SKILL_NAME = 100
# Fields a type does not document: a scalar (or a flat object of scalars) of these bounds.
MAX_EXTRA_NUMBER = 1e12
MAX_EXTRA_STRING = 1000
MAX_EXTRA_ENTRIES = 100


class Range(NamedTuple):
    """A closed interval; `integer` fields take whole numbers only; `nullable` admits null."""

    low: float
    high: float
    integer: bool = False
    nullable: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        return f"{kind} in {_fmt(self.low)}..{_fmt(self.high)}" + (" or null" if self.nullable else "")

    def holds(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not (isinstance(value, int) or float(value).is_integer()):
            return False
        return self.low <= value <= self.high  # False for NaN; inf is beyond every bound


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


SHARE = Range(0.0, 1.0)
COUNT = Range(0, MAX_COUNT, integer=True)

# Per analytics type: its fields and their ranges. `skills` (a map of skill -> share) is checked
# separately (SKILL_MAPS). The headline field (HEADLINE_METRIC) of each type is listed first.
FIELDS: dict[str, dict[str, Range]] = {
    "learning_velocity": {
        "velocity": Range(0.0, MAX_VELOCITY),
        "previous_velocity": Range(0.0, MAX_VELOCITY),
        "trend": Range(-MAX_VELOCITY, MAX_VELOCITY),
        "completions": COUNT,
        "previous_completions": COUNT,
    },
    "engagement": {
        "engagement": SHARE,
        "engagement_7d": SHARE,
        "active_days": Range(0, 30, integer=True),
        "active_days_7d": Range(0, 7, integer=True),
        "sessions": COUNT,
        "minutes": Range(0.0, MAX_MINUTES_30D),
    },
    "mastery": {
        "mastery": Range(0.0, 1.0, nullable=True),
        "assessments": COUNT,
    },
    "skill_gap": {
        "gap": Range(0.0, 1.0, nullable=True),
        "targeted_skills": Range(0, MAX_SKILLS, integer=True),
    },
}
SKILL_MAPS = frozenset({"mastery", "skill_gap"})  # types whose `skills` maps skill -> 0..1

# The range the headline of each type is clamped to when it is released in a peer group.
HEADLINE_RANGE: dict[str, tuple[float, float]] = {
    "learning_velocity": (0.0, 10.0),  # a peer group's velocities above 10 a week count as 10
    "engagement": (0.0, 1.0),
    "mastery": (0.0, 1.0),
    "skill_gap": (0.0, 1.0),
}


def data_errors(analytics_type: str, data: Mapping[str, Any]) -> list[str]:
    """What is out of range in one snapshot's `data` (empty: all in range), each naming its field."""
    fields = FIELDS[analytics_type]
    errors: list[str] = []
    for key, value in data.items():
        kind = type(value)
        bound = fields.get(key)
        if bound is not None:
            # The common cases first, without a call: a float in a non-integer range, an int in
            # any range (bool is not int here). NaN fails every comparison and goes to holds().
            if ((kind is float and not bound.integer) or kind is int) and bound.low <= value <= bound.high:
                continue
            if not bound.holds(value):
                errors.append(f"data.{key} must be {bound.describe()}")
        elif key == "skills" and analytics_type in SKILL_MAPS:
            errors.extend(_skill_errors(value))
        elif (kind is float or kind is int) and -MAX_EXTRA_NUMBER <= value <= MAX_EXTRA_NUMBER:
            continue  # the common extra field, a plain number, without a call
        elif not _extra_ok(value, nested=True):
            errors.append(
                f"data.{key} must be a finite number within +-{MAX_EXTRA_NUMBER:g}, a string of at most "
                f"{MAX_EXTRA_STRING} characters, a boolean, null, or a flat object of those "
                f"(at most {MAX_EXTRA_ENTRIES} entries)"
            )
    return errors


def _skill_errors(value: Any) -> list[str]:
    if not isinstance(value, Mapping) or len(value) > MAX_SKILLS:
        return [f"data.skills must be an object of at most {MAX_SKILLS} skills"]
    return [
        f"data.skills.{str(name)[:MAX_SKILL_NAME]} must be a number in 0..1 (skill names 1..{MAX_SKILL_NAME} chars)"
        for name, share in value.items()
        if not (1 <= len(name) <= MAX_SKILL_NAME
                and ((type(share) is float and 0.0 <= share <= 1.0) or SHARE.holds(share)))
    ]


def _extra_ok(value: Any, *, nested: bool) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):  # before float(): an int of 400 digits does not convert
        return abs(value) <= MAX_EXTRA_NUMBER
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) <= MAX_EXTRA_NUMBER
    if isinstance(value, str):
        return len(value) <= MAX_EXTRA_STRING
    if nested and isinstance(value, Mapping):
        return len(value) <= MAX_EXTRA_ENTRIES and all(
            isinstance(k, str) and len(k) <= MAX_EXTRA_STRING and _extra_ok(v, nested=False) for k, v in value.items()
        )
    return False


def headline_in_range(analytics_type: str, value: float) -> bool:
    """The documented range of the type's headline metric holds `value`."""
    bound = next(iter(FIELDS[analytics_type].values()))
    return bound.holds(value)
