"""The directory: organizations and users provisioned by the platform, and what org admins manage
(roles, trainer assignments, skill targets).

Upserts carry `version`, a number the platform increases with every change of that organization
or user (an event sequence or epoch milliseconds): an upsert applies only when its version is
newer than the stored one, so replays and late events change nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, StrictFloat, StrictInt

from ms8.schemas.base import ApiModel, Role

ROLE_ORDER: tuple[Role, ...] = ("learner", "trainer", "org_admin")
MAX_VERSION = 2**63 - 1  # bigint

Version = Annotated[
    StrictInt,
    Field(ge=1, le=MAX_VERSION, description="The platform's version of this record: newer wins, equal is a replay"),
]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
# A skill is a slug (it travels in a URL path): letters, digits, `_ . : + -`.
SKILL_PATTERN = r"^[\w.:+-]{1,100}$"


def _roles(value: list[Role]) -> list[Role]:
    if len(set(value)) != len(value):
        raise ValueError("roles must not repeat")
    return sorted(value, key=ROLE_ORDER.index)


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone (e.g. Europe/Berlin)") from None
    return value


Roles = Annotated[list[Role], Field(min_length=1, max_length=3), AfterValidator(_roles)]
TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]


class OrganizationUpsert(ApiModel):
    """An organization as the platform knows it (the whole record: omitted lists are empty)."""

    name: Name
    kpis: list[Label] = Field(default_factory=list, max_length=100)
    value_propositions: list[Label] = Field(default_factory=list, max_length=100)
    version: Version


class UserUpsert(ApiModel):
    """A user as the platform knows it. A user never moves to another organization here: the
    platform deletes the user and creates a new one (409 ORGANIZATION_CHANGE otherwise)."""

    organization_id: UUID
    email: Email
    name: Name
    roles: Roles
    timezone: TimeZone = "UTC"
    version: Version


class OrganizationUpserted(OrganizationUpsert):
    """`detail` of an `organization.upserted` event."""

    id: UUID


class UserUpserted(UserUpsert):
    """`detail` of a `user.upserted` event."""

    id: UUID


class UserDeleted(ApiModel):
    """`detail` of a `user.deleted` event: the user is erased (rows and report files) and a
    tombstone at `version` keeps older upserts from bringing them back."""

    id: UUID
    organization_id: UUID
    version: Version


DirectoryEvent = OrganizationUpserted | UserUpserted | UserDeleted

Outcome = Literal["created", "updated", "deleted", "unchanged", "stale", "conflict", "rejected"]


class Applied(ApiModel):
    """What one directory change did.

    `created` / `updated` / `deleted`: applied. `unchanged`: the same version was applied before
    (a replay). `stale`: a newer version is stored (`reason` DELETED: the user was deleted at a
    version not older), so this one was ignored. `conflict` / `rejected`: not applied, `reason`
    says why: ORGANIZATION_CHANGE, EMAIL_TAKEN, NOT_APPLIED; UNKNOWN_ORGANIZATION.
    """

    kind: Literal["organization", "user"]
    id: UUID
    outcome: Outcome
    version: int = Field(description="The version of the change")
    reason: str | None = None
    report_files_deleted: int | None = None


class DirectoryUser(ApiModel):
    """A user of the caller's organization."""

    id: UUID
    organization_id: UUID
    email: str
    name: str
    roles: list[Role]
    timezone: str
    updated_at: datetime


class UserPage(ApiModel):
    """One page of users in a stable order; pass `nextCursor` back as `cursor` for the next."""

    items: list[DirectoryUser]
    next_cursor: str | None = None


class RolesUpdate(ApiModel):
    """The user's roles from now on (the whole set)."""

    roles: Roles


class RolesChanged(DirectoryUser):
    """The user after the change; `assignmentsRemoved` counts trainer assignments that ended
    because the user lost the trainer or learner role."""

    assignments_removed: int


class Assignment(ApiModel):
    """A learner assigned to a trainer; `created` is false when it existed already."""

    trainer_id: UUID
    learner_id: UUID
    created: bool
    created_at: datetime


class Unassignment(ApiModel):
    """`removed` is false when the learner was not assigned to the trainer."""

    trainer_id: UUID
    learner_id: UUID
    removed: bool


class SkillTargetUpdate(ApiModel):
    target_level: Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False,
                                               description="The level skill_gap measures against, 0..1")]


class SkillTarget(ApiModel):
    skill: str
    target_level: float
    created: bool
    updated_at: datetime
