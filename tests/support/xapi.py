"""xAPI helpers for tests: credentials written as the owner, calls with Basic auth and the version
header, and statements in the shapes producers send."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from ms8.xapi import credentials
from tests.support.api import Reply, call
from tests.support.factories import Factory

VERSION = {"X-Experience-API-Version": "1.0.3"}
ADL = "http://adlnet.gov/expapi/verbs/"


def credential(factory: Factory, org_id: UUID, home_page: str | None = None) -> tuple[str, str]:
    """A new xAPI credential of the organization: (key, secret)."""
    key, secret = credentials.new_key(), credentials.new_secret()
    factory.sql(
        "INSERT INTO xapi_credentials (key, organization_id, secret_hash, home_page) VALUES (%s, %s, %s, %s)",
        (key, org_id, credentials.hash_secret(secret), home_page),
    )
    return key, secret


def basic(cred: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{cred[0]}:{cred[1]}".encode()).decode()}


def xcall(method: str, path: str, cred: tuple[str, str] | None, *, body: Any = None,
          query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
          raw_body: str | None = None) -> Reply:
    """An xAPI request through its function, as API Gateway routes it."""
    hdrs = {**VERSION, **(basic(cred) if cred else {}), **(headers or {})}
    return call(method, f"/xapi/{path}", query=query, body=body, raw_body=raw_body, headers=hdrs)


def email_of(factory: Factory, user_id: UUID) -> str:
    return str(factory.sql("SELECT email FROM users WHERE id = %s", (user_id,))[0][0])


def statement(email: str, verb: str = "completed", *, object_id: str = "https://lms.example.org/course/1",
              result: dict[str, Any] | None = None, hours_ago: float = 1, with_id: bool = True,
              **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {
        "actor": {"objectType": "Agent", "mbox": f"mailto:{email}"},
        "verb": {"id": verb if ":" in verb else ADL + verb, "display": {"en-US": verb}},
        "object": {"objectType": "Activity", "id": object_id,
                   "definition": {"type": "http://adlnet.gov/expapi/activities/course"}},
        "timestamp": (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(),
        **extra,
    }
    if with_id:
        st["id"] = str(uuid.uuid4())
    if result is not None:
        st["result"] = result
    return st


def events_of(factory: Factory, user_id: UUID) -> list[tuple[Any, ...]]:
    """(event id, verb, object id, score, success, duration, skills) of the user's learning events."""
    return factory.sql(
        "SELECT event_id, verb, object_id, score, success, duration_seconds, skills FROM learning_events "
        "WHERE user_id = %s ORDER BY occurred_at, event_id", (user_id,),
    )


def stored_count(factory: Factory, org_id: UUID) -> int:
    return int(factory.sql("SELECT count(*) FROM xapi_statements WHERE organization_id = %s", (org_id,))[0][0])


def directory_writes_user(factory: Factory, org_id: UUID, email: str) -> UUID:
    """The platform's directory creates a learner with this e-mail (as its `user.upserted`):
    statements waiting for that actor become theirs. Returns the new user's id."""
    from ms8 import db
    from ms8.schemas.directory import UserUpserted
    from ms8.services import directory

    new_id = uuid.uuid4()
    client = factory.service_client(f"dir-{uuid.uuid4().hex[:8]}", ["directory"], org_id)
    with db.runtime.transaction(db.as_service(client, "directory", org_id)) as (conn, _):
        directory.apply_events(conn, [UserUpserted.model_validate({
            "id": str(new_id), "organizationId": str(org_id), "email": email, "name": "Newcomer",
            "roles": ["learner"], "version": 1,
        })])
    return new_id
