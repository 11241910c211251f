"""The base of every API model: camelCase on the wire, unknown fields refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

Role = Literal["learner", "trainer", "org_admin"]
AnalyticsType = Literal["learning_velocity", "engagement", "mastery", "skill_gap"]
ANALYTICS_TYPES: tuple[AnalyticsType, ...] = ("learning_velocity", "engagement", "mastery", "skill_gap")


class ApiModel(BaseModel):
    """camelCase aliases on the wire, snake_case in Python; extra fields are an error."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", serialize_by_alias=True
    )

# The headline metric of each analytics type: the number peer comparison and reports lead with.
HEADLINE_METRIC: dict[str, str] = {
    "learning_velocity": "velocity",
    "engagement": "engagement",
    "mastery": "mastery",
    "skill_gap": "gap",
}
