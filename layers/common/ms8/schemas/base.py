"""The base of every API model: camelCase on the wire, unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

# The vocabulary lives in ms8.domain.vocabulary; re-exported here for the models.
from ms8.domain.vocabulary import ANALYTICS_TYPES, HEADLINE_METRIC, AnalyticsType, Role

__all__ = ["ANALYTICS_TYPES", "HEADLINE_METRIC", "AnalyticsType", "ApiModel", "Role"]


class ApiModel(BaseModel):
    """camelCase aliases on the wire, snake_case in Python; extra fields are an error."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", serialize_by_alias=True
    )
