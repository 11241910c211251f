"""The caller and the users of an organization."""

from __future__ import annotations

from uuid import UUID

from ms8.schemas.base import ApiModel, Role


class Me(ApiModel):
    """Who the caller is, as this service knows them."""

    user_id: UUID
    organization_id: UUID
    email: str
    name: str
    roles: list[Role]
    active_role: Role
    timezone: str


class Erased(ApiModel):
    """The outcome of erasing a user: rows removed by cascade, report files deleted."""

    user_id: UUID
    report_files_deleted: int
