"""Analytics snapshots: one per user, role and type."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field, field_validator

from ms8.domain.bounds import data_errors
from ms8.schemas.base import AnalyticsType, ApiModel, Role

MAX_BATCH = 500


class AnalyticsItem(ApiModel):
    """One analytics snapshot to write. `userId` and `role` default to the caller's own."""

    analytics_type: AnalyticsType
    data: dict[str, Any] = Field(
        description="Metrics of this type, e.g. {\"velocity\": 2.5}; each field within its documented "
                    "range (shares and mastery 0..1, velocity 0..1000, counts 0..1,000,000; see the "
                    "analytics documentation), else 422 naming the field"
    )
    user_id: UUID | None = Field(
        default=None, description="Omit for your own; other users only with a platform ingest token"
    )
    role: Role | None = Field(default=None, description="Omit for your active role")


class AnalyticsBatch(ApiModel):
    """A batch of 1..500 snapshots, written atomically (all or nothing)."""

    items: list[AnalyticsItem] = Field(min_length=1, max_length=MAX_BATCH)

    def __repr__(self) -> str:
        # Short: the HTTP layer formats its arguments for debug logs even when they are off
        # (500 items cost ~10 ms to print).
        return f"AnalyticsBatch(<{len(self.items)} items>)"

    @field_validator("items")
    @classmethod
    def _valid_items(cls, items: list[AnalyticsItem]) -> list[AnalyticsItem]:
        # One validator for the batch rather than one per item: a call out of pydantic-core per
        # item costs more than the checks themselves (bench/bench_upsert.py). A field validator,
        # not a model validator: a batch already validated (parsed straight from the request
        # body, ms8.http.make_app) then passes Powertools' validation without a second check.
        seen: set[tuple[int | None, str | None, str]] = set()
        for i, item in enumerate(items):
            errors = data_errors(item.analytics_type, item.data)
            if errors:
                raise ValueError(f"items[{i}]: " + "; ".join(errors))
            user = item.user_id
            key = (None if user is None else user.int, item.role, item.analytics_type)
            if key in seen:
                raise ValueError(f"items[{i}] repeats an earlier item's user, role and type")
            seen.add(key)
        return items


class Analytics(ApiModel):
    """A stored analytics snapshot."""

    id: UUID
    user_id: UUID
    role: Role
    analytics_type: AnalyticsType
    data: dict[str, Any]
    source: Literal["client", "computed"]
    definition_version: int | None = None
    window_days: int | None = None
    data_through: datetime | None = None
    version: int
    updated_at: datetime


class AnalyticsList(ApiModel):
    items: list[Analytics]


class AnalyticsSummary(ApiModel):
    """How many snapshots the caller has for the active role, and the newest one."""

    count: int
    latest: Analytics | None


class WrittenAnalytics(ApiModel):
    id: UUID
    user_id: UUID
    role: Role
    analytics_type: AnalyticsType
    version: int
    updated_at: datetime


class AnalyticsWriteResult(ApiModel):
    """What a batch wrote: counts, and the rows themselves only when asked for
    (`?return=rows` or `Prefer: return=representation`)."""

    written: int = Field(description="Rows inserted or replaced")
    inserted: int = Field(description="Rows that did not exist before")
    updated: int = Field(description="Existing rows replaced (their version went up by one)")
    items: list[WrittenAnalytics] | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="The written rows; only with ?return=rows or Prefer: return=representation",
    )

