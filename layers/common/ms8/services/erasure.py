"""Erasing a user: every row (by cascade) and every report file, or nothing."""

from __future__ import annotations

from uuid import UUID

import psycopg

from ms8 import storage
from ms8.errors import Conflict, NotFound, Unavailable
from ms8.repositories import users


def erase_user(conn: psycopg.Connection, user_id: UUID, *, keep_last_admin: bool = True) -> int:
    """Erase `user_id` inside the caller's transaction; returns the number of files deleted.

    The report files are deleted before the transaction commits: if S3 refuses, the caller's
    transaction rolls back and the user is still whole, so a retry can finish the job.
    `keep_last_admin=False` is for the platform's own deletions (the directory), which the
    organization's lock-out rule does not bind.
    """
    target = users.get(conn, user_id)
    if target is None:
        raise NotFound("no such user")
    if (keep_last_admin and "org_admin" in target["roles"]
            and users.org_admin_count(conn, target["organization_id"]) <= 1):
        raise Conflict("the organization's last org admin cannot be erased", code="LAST_ORG_ADMIN")
    keys = users.report_keys(conn, user_id)
    if users.delete(conn, user_id) is None:
        raise NotFound("no such user")
    if not keys:
        return 0
    try:
        return storage.delete_objects(keys)
    except Exception as exc:
        raise Unavailable("report storage is unavailable; nothing was erased, try again",
                          code="STORAGE_UNAVAILABLE") from exc
