"""Learning events: the essentials of an xAPI statement, in batches of 1..1000."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints, field_validator, model_validator

from ms8.domain.vocabulary import Verb
from ms8.schemas.base import ApiModel

MAX_EVENTS = 1000
MAX_SKILLS = 20
MAX_DURATION_S = 24 * 3600

# No control characters: the insert joins a row's skills with one (ms8.repositories.events).
Skill = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                         pattern=r"^[^\x00-\x1f\x7f]+$")]


class EventResult(ApiModel):
    """The outcome (xAPI `result`): a scaled score, success, time spent."""

    score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False,
                                description="Scaled score 0..1")
    success: bool | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=MAX_DURATION_S,
                                         description="Time spent, in seconds (at most a day)")


class LearningEvent(ApiModel):
    """One learning event. `eventId` makes it idempotent: sending it again changes nothing."""

    event_id: UUID = Field(description="The statement id, chosen by the sender")
    user_id: UUID | None = Field(
        default=None, description="Omit for your own; other users only with a platform ingest token"
    )
    verb: Verb
    object_id: str = Field(min_length=1, max_length=200, description="The activity, e.g. a course id")
    object_type: str = Field(min_length=1, max_length=50, description="e.g. course, module, assessment")
    skills: list[Skill] = Field(default_factory=list, max_length=MAX_SKILLS)
    result: EventResult | None = None
    occurred_at: AwareDatetime = Field(description="When it happened, with a time zone (ISO 8601)")

    @field_validator("skills")
    @classmethod
    def _unique_skills(cls, skills: list[str]) -> list[str]:
        return list(dict.fromkeys(skills))


def _same_event(a: LearningEvent, b: LearningEvent) -> bool:
    return a.model_dump() == b.model_dump()


class EventBatch(ApiModel):
    """1..1000 events, stored atomically: all of them or none. An event id may repeat only with
    identical content (it is stored once)."""

    events: list[LearningEvent] = Field(min_length=1, max_length=MAX_EVENTS)

    def __repr__(self) -> str:
        # Short: the HTTP layer formats its arguments for debug logs even when they are off.
        return f"EventBatch(<{len(self.events)} events>)"

    @field_validator("events")
    @classmethod
    def _ids_consistent(cls, events: list[LearningEvent]) -> list[LearningEvent]:
        # A field validator, not a model validator: a batch parsed straight from the request body
        # (ms8.http.make_app) then passes Powertools' validation without a second check.
        seen: dict[UUID, LearningEvent] = {}
        for i, event in enumerate(events):
            first = seen.setdefault(event.event_id, event)
            if first is not event and not _same_event(first, event):
                raise ValueError(f"events[{i}] repeats an earlier eventId with different content")
        return events


class BusDetail(ApiModel):
    """The `detail` of a platform bus event carrying learning events for one organization."""

    organization_id: UUID
    events: list[LearningEvent] = Field(min_length=1, max_length=MAX_EVENTS)

    @model_validator(mode="after")
    def _ids_consistent(self) -> BusDetail:
        EventBatch(events=self.events)
        return self


class IngestResult(ApiModel):
    """What a batch did: new events stored, replays ignored, users updated now or queued."""

    received: int
    inserted: int
    duplicates: int = Field(description="Events already stored (same eventId): ignored")
    users_updated: int = Field(
        description="Users whose analytics and points this request updated (a learner's own events)")
    analytics_written: int
    points_awarded: int
    users_queued: int = Field(0, description=(
        "Users a platform's batch noted for the refresh job, which updates their analytics snapshots and "
        "points within about a minute (their learner days, which cohort views and rollups read, are "
        "updated by this request)"))
    computed_at: datetime
