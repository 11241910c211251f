"""Directory provisioning from the platform: the EventBridge function and the directory-scope HTTP
routes, on the real database. Replays and late events change nothing, a deleted user stays
deleted against older events, and a deletion from the bus erases every row and report file."""

from __future__ import annotations

import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from local import apigw, runtime, template
from ms8 import db, storage
from ms8.errors import Conflict, Unprocessable
from ms8.schemas.directory import OrganizationUpserted, UserDeleted, UserUpserted
from ms8.services import directory
from tests.support.api import call
from tests.support.factories import Factory
from tests.support.s3 import BUCKET

BUS_CLIENT = "platform-bus"  # registered by migration 0006; the function's default client id


@pytest.fixture
def directory_client(factory: Factory) -> str:
    return factory.service_client(f"test-directory-{uuid.uuid4().hex}", ["directory"], None)


def bus(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """Deliver one event as EventBridge does (an asynchronous invocation of the function)."""
    event = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "platform.identity",
        "account": "123456789012", "time": "2026-11-26T12:00:00Z", "region": "eu-west-1", "resources": [],
        "detail": detail,
    }
    result: dict[str, Any] = runtime.invoke(template.function_by_dir("directory_events"), event)
    return result


def org_detail(org_id: uuid.UUID, version: int, name: str = "Acme") -> dict[str, Any]:
    return {"id": str(org_id), "name": name, "kpis": ["completion"], "version": version}


def user_detail(
    user_id: uuid.UUID, org_id: uuid.UUID, version: int, *, name: str = "Alice", roles: list[str] | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    return {"id": str(user_id), "organizationId": str(org_id), "email": email or f"{user_id.hex}@example.test",
            "name": name, "roles": roles or ["learner"], "version": version}


def user_row(factory: Factory, user_id: uuid.UUID) -> tuple[Any, ...] | None:
    rows = factory.sql("SELECT organization_id, name, roles, source_version, updated_at FROM users WHERE id = %s",
                       (user_id,))
    return rows[0] if rows else None


def tombstone(factory: Factory, user_id: uuid.UUID) -> int | None:
    rows = factory.sql("SELECT source_version FROM user_tombstones WHERE user_id = %s", (user_id,))
    return rows[0][0] if rows else None


def test_the_bus_client_is_registered_by_the_migrations(factory: Factory) -> None:
    rows = factory.sql("SELECT organization_id, 'directory' = ANY (scopes) FROM service_clients "
                       "WHERE client_id = %s", (BUS_CLIENT,))
    assert rows == [(None, True)]


def test_bus_creates_updates_and_replays_change_nothing(factory: Factory) -> None:
    org_id, user_id = uuid.uuid4(), uuid.uuid4()
    assert bus("organization.upserted", org_detail(org_id, 10))["outcome"] == "created"
    assert bus("user.upserted", user_detail(user_id, org_id, 10))["outcome"] == "created"
    before = user_row(factory, user_id)
    assert before is not None and before[:4] == (org_id, "Alice", ["learner"], 10)

    assert bus("organization.upserted", org_detail(org_id, 10, name="Replayed"))["outcome"] == "unchanged"
    assert bus("user.upserted", user_detail(user_id, org_id, 10, name="Replayed"))["outcome"] == "unchanged"
    assert user_row(factory, user_id) == before  # not even updated_at moved
    assert factory.sql("SELECT name, source_version FROM organizations WHERE id = %s", (org_id,)) == [("Acme", 10)]

    result = bus("user.upserted", user_detail(user_id, org_id, 11, name="Alice B.", roles=["trainer", "learner"]))
    assert result == {"kind": "user", "id": str(user_id), "outcome": "updated", "version": 11,
                      "reason": None, "reportFilesDeleted": None}
    assert user_row(factory, user_id)[:4] == (org_id, "Alice B.", ["learner", "trainer"], 11)  # type: ignore[index]


def test_older_events_never_overwrite_newer_ones(factory: Factory) -> None:
    org_id, user_id = uuid.uuid4(), uuid.uuid4()
    bus("organization.upserted", org_detail(org_id, 5, name="New name"))
    assert bus("organization.upserted", org_detail(org_id, 4, name="Old name"))["outcome"] == "stale"
    assert factory.sql("SELECT name FROM organizations WHERE id = %s", (org_id,)) == [("New name",)]
    bus("user.upserted", user_detail(user_id, org_id, 300, name="Newest"))
    assert bus("user.upserted", user_detail(user_id, org_id, 299, name="Older"))["outcome"] == "stale"
    assert user_row(factory, user_id)[1:4] == ("Newest", ["learner"], 300)  # type: ignore[index]


# Every order of these events, delivered twice over, ends where the newest event says.
RECREATED = [("upsert", 1, "v1"), ("upsert", 2, "v2"), ("delete", 3, None), ("upsert", 4, "v4")]
DELETED = [("upsert", 1, "v1"), ("upsert", 2, "v2"), ("delete", 3, None)]


@pytest.mark.parametrize(("events", "final"), [(RECREATED, ("v4", 4)), (DELETED, None)],
                         ids=["deleted-then-recreated", "deleted"])
def test_every_order_and_replay_ends_in_the_newest_state(
    factory: Factory, directory_client: str, events: list[tuple[str, int, str | None]],
    final: tuple[str, int] | None,
) -> None:
    org_id = uuid.uuid4()
    factory.sql("INSERT INTO organizations (id, name) VALUES (%s, 'Perm')", (org_id,))
    for order in itertools.permutations(events):
        user_id = uuid.uuid4()
        changes = [
            UserUpserted(id=user_id, organization_id=org_id, email=f"{user_id.hex}@example.test", name=str(label),
                         roles=["learner"], version=version)
            if kind == "upsert" else UserDeleted(id=user_id, organization_id=org_id, version=version)
            for kind, version, label in order
        ]
        for change in [*changes, *changes]:  # one at a time, as the bus delivers them
            with db.runtime.transaction(db.as_service(directory_client, "directory")) as (conn, _):
                directory.apply_one(conn, change)
        row = user_row(factory, user_id)
        assert ((row[1], row[3]) if row else None) == final, order
        if final is None:
            assert tombstone(factory, user_id) == 3, order


def test_a_batch_applies_like_its_events_in_order(factory: Factory, directory_client: str) -> None:
    org_id, kept, erased, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def upsert(uid: uuid.UUID, version: int, name: str) -> UserUpserted:
        return UserUpserted(id=uid, organization_id=org_id, email=f"{uid.hex}@example.test", name=name,
                            roles=["learner"], version=version)

    batch = [
        upsert(kept, 2, "two"), OrganizationUpserted(id=org_id, name="Batch", version=1), upsert(kept, 3, "three"),
        upsert(kept, 3, "three again"), upsert(erased, 1, "one"), UserDeleted(id=erased, organization_id=org_id,
                                                                              version=2),
        upsert(late, 5, "five"), UserDeleted(id=late, organization_id=org_id, version=4),
    ]
    with db.runtime.transaction(db.as_service(directory_client, "directory")) as (conn, _):
        outcomes = [(a.id, a.outcome) for a in directory.apply_events(conn, batch)]
    assert outcomes == [
        (kept, "stale"), (org_id, "created"), (kept, "created"), (kept, "unchanged"), (erased, "stale"),
        (erased, "deleted"), (late, "created"), (late, "deleted"),
    ]
    assert user_row(factory, kept)[1] == "three"  # type: ignore[index]
    assert user_row(factory, erased) is None and tombstone(factory, erased) == 2
    assert user_row(factory, late)[1:4] == ("five", ["learner"], 5)  # type: ignore[index]


def test_deletion_before_creation_keeps_older_upserts_out(factory: Factory) -> None:
    org_id, user_id = uuid.uuid4(), uuid.uuid4()
    bus("organization.upserted", org_detail(org_id, 1))
    deleted = bus("user.deleted", {"id": str(user_id), "organizationId": str(org_id), "version": 50})
    assert (deleted["outcome"], deleted["reportFilesDeleted"]) == ("deleted", 0)
    assert bus("user.deleted", {"id": str(user_id), "organizationId": str(org_id), "version": 50})["outcome"] \
        == "unchanged"
    assert bus("user.upserted", user_detail(user_id, org_id, 49))["outcome"] == "stale"
    assert bus("user.upserted", user_detail(user_id, org_id, 50))["outcome"] == "stale"
    assert user_row(factory, user_id) is None
    assert bus("user.upserted", user_detail(user_id, org_id, 51))["outcome"] == "created"
    assert bus("user.deleted", {"id": str(user_id), "organizationId": str(org_id), "version": 50})["outcome"] \
        == "stale"
    assert user_row(factory, user_id) is not None


def _every_row_of(factory: Factory, user_id: uuid.UUID) -> dict[str, int]:
    """Rows naming the user in every table that has a user column (partitions through parents)."""
    tables = factory.sql(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN pg_class r ON r.relname = c.table_name AND NOT r.relispartition "
        "JOIN pg_namespace n ON n.oid = r.relnamespace AND n.nspname = c.table_schema "
        "WHERE c.table_schema = 'public' AND c.column_name IN ('user_id', 'trainer_id', 'learner_id') "
        "AND c.table_name <> 'user_tombstones'"
    )
    counts = {"users": factory.sql("SELECT count(*) FROM users WHERE id = %s", (user_id,))[0][0]}
    for table, column in tables:
        counts[f"{table}.{column}"] = factory.sql(f"SELECT count(*) FROM {table} WHERE {column} = %s",
                                                  (user_id,))[0][0]
    return counts


def test_deleted_through_the_bus_loses_every_row_and_report_file(factory: Factory, s3: Any) -> None:
    org = factory.org("Erase", alice=["learner", "trainer"], bob=["learner"], ada=["org_admin"])
    alice, bob = org.users["alice"], org.users["bob"]
    factory.assign(org.id, alice, bob)
    factory.assign(org.id, factory.user(org.id, ["trainer"]), alice)
    factory.analytics(org.id, alice, "learner", "mastery", {"mastery": 0.7})
    factory.analytics(org.id, bob, "learner", "mastery", {"mastery": 0.4})
    factory.sql("INSERT INTO gamification (user_id, organization_id, role, points) VALUES (%s, %s, 'learner', 5)",
                (alice, org.id))
    factory.sql("INSERT INTO points_ledger (user_id, organization_id, award_key, points, occurred_at) "
                "VALUES (%s, %s, 'first-completion', 5, now())", (alice, org.id))
    factory.sql("INSERT INTO learning_events (event_id, user_id, organization_id, verb, object_id, object_type, "
                "occurred_at) VALUES (%s, %s, %s, 'completed', 'course-1', 'course', now())",
                (uuid.uuid4(), alice, org.id))
    factory.sql("INSERT INTO learner_daily_activity (organization_id, user_id, day, events, completions, "
                "assessments, scored, score_micros, passed, duration_seconds, sessions, last_at) "
                "VALUES (%s, %s, current_date, 1, 1, 0, 0, 0, 0, 0, 0, now())", (org.id, alice))
    factory.sql("INSERT INTO analytics_pending (user_id, organization_id, since) VALUES (%s, %s, now())",
                (alice, org.id))
    factory.sql("INSERT INTO population_rollups (organization_id, trainer_id, granularity, period_start, period_end, "
                "learners, active_learners, completions, assessments, scored, score_micros, duration_seconds, "
                "distribution, version) VALUES (%s, %s, 'daily', current_date - 1, current_date, 1, 0, 0, 0, 0, 0, "
                "0, '{}', 2)", (org.id, alice))
    factory.sql("INSERT INTO xapi_statements (organization_id, statement_id, statement, stored, credential_key, "
                "user_id) VALUES (%s, %s, '{\"actor\": {}}', now(), 'xkerasure', %s)", (org.id, uuid.uuid4(), alice))
    keys = {}
    for uid in (alice, bob):
        rid = uuid.uuid4()
        keys[uid] = f"reports/{org.id}/{uid}/{rid}.csv"
        s3.put_object(Bucket=BUCKET, Key=keys[uid], Body=b"a,b\n")
        factory.sql("INSERT INTO reports (id, user_id, organization_id, role, format, status, s3_key, size_bytes) "
                    "VALUES (%s, %s, %s, 'learner', 'csv', 'ready', %s, 4)", (rid, uid, org.id, keys[uid]))
        factory.sql("INSERT INTO report_links (report_id, organization_id, user_id, expires_at) "
                    "VALUES (%s, %s, %s, now() + interval '15 minutes')", (rid, org.id, uid))
    assert all(_every_row_of(factory, alice).values())  # a row in every table

    result = bus("user.deleted", {"id": str(alice), "organizationId": str(org.id), "version": 7})
    assert (result["outcome"], result["reportFilesDeleted"]) == ("deleted", 1)
    assert {k: v for k, v in _every_row_of(factory, alice).items() if v} == {}
    assert tombstone(factory, alice) == 7
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert keys[alice] not in listed and keys[bob] in listed
    assert _every_row_of(factory, bob)["analytics.user_id"] == 1  # the others keep theirs

    assert bus("user.upserted", user_detail(alice, org.id, 6))["outcome"] == "stale"
    assert bus("user.upserted", user_detail(alice, org.id, 8))["outcome"] == "created"
    counts = _every_row_of(factory, alice)
    assert counts["users"] == 1 and sum(counts.values()) == 1  # back, with nothing of before


def test_the_platform_may_delete_an_organizations_last_admin(factory: Factory, s3: Any) -> None:
    org = factory.org("Solo", ada=["org_admin"])
    result = bus("user.deleted", {"id": str(org.users["ada"]), "organizationId": str(org.id), "version": 1})
    assert result["outcome"] == "deleted"
    assert user_row(factory, org.users["ada"]) is None


def test_a_storage_failure_erases_nothing_and_fails_the_event(
    factory: Factory, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = factory.org("Down", alice=["learner"])
    key = f"reports/{org.id}/{org.users['alice']}/{uuid.uuid4()}.pdf"
    factory.sql("INSERT INTO reports (user_id, organization_id, role, format, status, s3_key, size_bytes) "
                "VALUES (%s, %s, 'learner', 'pdf', 'ready', %s, 1)", (org.users["alice"], org.id, key))

    def refuse(*_: Any, **__: Any) -> Any:
        raise ConnectionError("S3 is down")

    monkeypatch.setattr(storage.s3_client(), "delete_objects", refuse)
    with pytest.raises(Exception, match="report storage is unavailable"):
        bus("user.deleted", {"id": str(org.users["alice"]), "organizationId": str(org.id), "version": 3})
    assert user_row(factory, org.users["alice"]) is not None
    assert tombstone(factory, org.users["alice"]) is None


def test_refused_changes_raise_so_the_event_is_retried_then_parked(factory: Factory) -> None:
    home, away, user_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    bus("organization.upserted", org_detail(home, 1))
    bus("organization.upserted", org_detail(away, 1))
    bus("user.upserted", user_detail(user_id, home, 1))
    with pytest.raises(Conflict) as moved:
        bus("user.upserted", user_detail(user_id, away, 2))
    assert moved.value.code == "ORGANIZATION_CHANGE"
    with pytest.raises(Unprocessable) as unknown:
        bus("user.upserted", user_detail(uuid.uuid4(), uuid.uuid4(), 1))
    assert unknown.value.code == "UNKNOWN_ORGANIZATION"
    with pytest.raises(ValueError, match=r"invalid user\.upserted detail"):
        bus("user.upserted", {**user_detail(uuid.uuid4(), home, 1), "roles": ["superuser"]})
    with pytest.raises(ValueError, match="not a directory event"):
        bus("user.renamed", user_detail(uuid.uuid4(), home, 1))
    assert user_row(factory, user_id)[0] == home  # type: ignore[index]


# --- the directory-scope HTTP routes ---


def put_org(client: str, org_id: Any, body: Any, **kw: Any) -> Any:
    return call("PUT", f"/v1/organizations/{org_id}", claims=apigw.service_claims(client, ["directory"]),
                body=body, **kw)


def put_user(client: str, user_id: Any, body: Any, **kw: Any) -> Any:
    return call("PUT", f"/v1/users/{user_id}", claims=apigw.service_claims(client, ["directory"]), body=body, **kw)


def test_http_routes_apply_the_same_rules(factory: Factory, directory_client: str) -> None:
    org_id, user_id = uuid.uuid4(), uuid.uuid4()
    r = put_org(directory_client, org_id, {"name": "Initech", "valuePropositions": ["faster"], "version": 3})
    assert (r.status, r.body["outcome"]) == (200, "created"), r.body
    assert put_org(directory_client, org_id, {"name": "Initech", "version": 3}).body["outcome"] == "unchanged"
    assert put_org(directory_client, org_id, {"name": "Old", "version": 2}).body["outcome"] == "stale"
    body = {"organizationId": str(org_id), "email": "Peter@Initech.example", "name": "Peter",
            "roles": ["org_admin", "learner"], "timezone": "America/Chicago", "version": 1}
    r = put_user(directory_client, user_id, body)
    assert (r.status, r.body["outcome"]) == (200, "created"), r.body
    assert put_user(directory_client, user_id, body).body["outcome"] == "unchanged"
    assert put_user(directory_client, user_id, {**body, "name": "Pete", "version": 2}).body["outcome"] == "updated"
    assert user_row(factory, user_id)[1:4] == ("Pete", ["learner", "org_admin"], 2)  # type: ignore[index]

    other_org = uuid.uuid4()
    assert put_org(directory_client, other_org, {"name": "Other", "version": 1}).status == 200
    r = put_user(directory_client, user_id, {**body, "organizationId": str(other_org), "version": 3})
    assert (r.status, r.error_code) == (409, "ORGANIZATION_CHANGE")
    r = put_user(directory_client, uuid.uuid4(), {**body, "email": "peter@initech.example", "version": 1})
    assert (r.status, r.error_code) == (409, "EMAIL_TAKEN")
    r = put_user(directory_client, uuid.uuid4(), {**body, "email": "x@y.example", "organizationId": str(uuid.uuid4())})
    assert (r.status, r.error_code) == (422, "UNKNOWN_ORGANIZATION")


def test_http_directory_routes_refuse_bad_input(directory_client: str) -> None:
    org_id = uuid.uuid4()
    assert put_org(directory_client, org_id, {"name": "Valid", "version": 1}).status == 200
    good = {"organizationId": str(org_id), "email": "a@b.example", "name": "A", "roles": ["learner"], "version": 1}
    for bad in [
        {**good, "version": "2"}, {**good, "version": True}, {**good, "version": 1.5}, {**good, "version": 0},
        {**good, "version": 2**63}, {**good, "roles": "learner"}, {**good, "roles": []},
        {**good, "roles": ["learner", "learner"]}, {**good, "roles": ["superuser"]}, {**good, "email": "nobody"},
        {**good, "name": " "}, {**good, "name": 7}, {**good, "timezone": "Mars/Olympus"},
        {**good, "timezone": "../../etc/passwd"}, {**good, "organizationId": "acme"}, {**good, "admin": True},
        {k: v for k, v in good.items() if k != "version"}, "x", 5,
    ]:
        r = put_user(directory_client, uuid.uuid4(), bad)
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), (bad, r.body)
    r = put_user(directory_client, "not-a-uuid", good)
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")
    r = put_user(directory_client, uuid.uuid4(), None, raw_body="{not json")
    assert 400 <= r.status < 500, r.body
    r = put_org(directory_client, "1234", {"name": "X", "version": 1})
    assert r.status == 422
    for bad_org in [{"name": "", "version": 1}, {"name": "X"}, {"name": "X", "version": -1},
                    {"name": "X", "kpis": "all", "version": 1}, {"name": "X" * 201, "version": 1}]:
        r = put_org(directory_client, uuid.uuid4(), bad_org)
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), bad_org


def test_http_directory_routes_need_a_registered_directory_client(factory: Factory) -> None:
    org = factory.org("Users", alice=["learner"], ada=["org_admin"])
    body = {"name": "X", "version": 1}
    user_body = {"organizationId": str(org.id), "email": "z@z.example", "name": "Z", "roles": ["learner"],
                 "version": 1}
    for sub in (org.users["alice"], org.users["ada"]):
        r = call("PUT", f"/v1/organizations/{org.id}", sub=sub, body=body)
        assert (r.status, r.error_code) == (403, "SCOPE_REQUIRED")
        r = call("PUT", f"/v1/users/{uuid.uuid4()}", sub=sub, body=user_body)
        assert (r.status, r.error_code) == (403, "SCOPE_REQUIRED")
    ingest = factory.service_client(f"test-ingest-{uuid.uuid4().hex}", ["ingest"], org.id)
    r = call("PUT", f"/v1/users/{uuid.uuid4()}", claims=apigw.service_claims(ingest, ["ingest"]), body=user_body)
    assert (r.status, r.error_code) == (403, "SCOPE_REQUIRED")
    r = call("PUT", f"/v1/users/{uuid.uuid4()}", claims=apigw.service_claims(ingest, ["directory"]), body=user_body)
    assert (r.status, r.error_code) == (403, "SCOPE_NOT_GRANTED")
    r = put_user(f"unregistered-{uuid.uuid4().hex}", uuid.uuid4(), user_body)
    assert (r.status, r.error_code) == (403, "UNKNOWN_CLIENT")
    r = call("PUT", f"/v1/users/{uuid.uuid4()}", claims={}, body=user_body)
    assert r.status == 401
    assert factory.sql("SELECT count(*) FROM users WHERE email = 'z@z.example'") == [(0,)]


def test_a_directory_client_bound_to_one_organization_stays_in_it(factory: Factory) -> None:
    home = factory.org("Home", alice=["learner"])
    away = factory.org("Away", xavier=["learner"])
    bound = factory.service_client(f"test-dir-bound-{uuid.uuid4().hex}", ["directory"], home.id)
    body = {"organizationId": str(away.id), "email": f"{uuid.uuid4().hex}@x.example", "name": "X",
            "roles": ["learner"], "version": 1}
    r = put_user(bound, uuid.uuid4(), body)
    assert (r.status, r.error_code) == (422, "UNKNOWN_ORGANIZATION")  # as if it did not exist
    r = put_user(bound, away.users["xavier"], {**body, "organizationId": str(home.id)})
    assert (r.status, r.error_code) == (409, "NOT_APPLIED")
    r = put_org(bound, away.id, {"name": "Taken over", "version": 99})
    assert r.status == 403
    assert factory.sql("SELECT name FROM organizations WHERE id = %s", (away.id,)) == [("Away",)]
    r = put_user(bound, uuid.uuid4(), {**body, "organizationId": str(home.id)})
    assert (r.status, r.body["outcome"]) == (200, "created")


def test_a_batch_refuses_only_the_rows_whose_email_is_taken(factory: Factory, directory_client: str) -> None:
    org = factory.org("Emails", holder=["learner"])
    held = factory.sql("SELECT email FROM users WHERE id = %s", (org.users["holder"],))[0][0]
    first, twin, clash, fine = (uuid.uuid4() for _ in range(4))

    def upsert(uid: uuid.UUID, email: str) -> UserUpserted:
        return UserUpserted(id=uid, organization_id=org.id, email=email, name="E", roles=["learner"], version=1)

    batch = [upsert(first, "same@emails.example"), upsert(twin, "SAME@emails.example"),
             upsert(clash, held.upper()), upsert(fine, "fine@emails.example")]
    with db.runtime.transaction(db.as_service(directory_client, "directory")) as (conn, _):
        applied = directory.apply_events(conn, batch)
    assert [(a.outcome, a.reason) for a in applied] == [
        ("created", None), ("conflict", "EMAIL_TAKEN"), ("conflict", "EMAIL_TAKEN"), ("created", None)]
    assert user_row(factory, twin) is None and user_row(factory, clash) is None
    assert user_row(factory, first) is not None and user_row(factory, fine) is not None


def test_a_deletion_and_an_older_upsert_racing_end_deleted(
    factory: Factory, directory_client: str, runtime_url: str
) -> None:
    org_id, user_id = uuid.uuid4(), uuid.uuid4()
    bus("organization.upserted", org_detail(org_id, 1))
    bus("user.upserted", user_detail(user_id, org_id, 1))
    older = UserUpserted.model_validate(user_detail(user_id, org_id, 4, name="Older than the deletion"))
    with psycopg.connect(runtime_url, prepare_threshold=None) as deleting, \
            psycopg.connect(runtime_url, prepare_threshold=None) as upserting:
        db.as_service(directory_client, "directory")(deleting)
        db.as_service(directory_client, "directory")(upserting)
        assert directory.apply_one(deleting, UserDeleted(id=user_id, organization_id=org_id, version=5)).outcome \
            == "deleted"
        with ThreadPoolExecutor(1) as pool:
            racing = pool.submit(directory.apply_one, upserting, older)
            time.sleep(0.3)
            assert not racing.done()  # waits for the deletion's transaction
            deleting.commit()
            assert racing.result(timeout=10).outcome == "stale"
        upserting.commit()
    assert user_row(factory, user_id) is None and tombstone(factory, user_id) == 5


def test_an_upsert_that_drops_a_role_ends_those_assignments(factory: Factory) -> None:
    org = factory.org("Roles", tom=["trainer", "learner"], tina=["trainer"], alice=["learner"])
    tom, tina, alice = org.users["tom"], org.users["tina"], org.users["alice"]
    factory.assign(org.id, tom, alice)
    factory.assign(org.id, tina, tom)

    def pairs() -> set[tuple[uuid.UUID, uuid.UUID]]:
        return set(factory.sql("SELECT trainer_id, learner_id FROM trainer_assignments WHERE organization_id = %s",
                               (org.id,)))  # type: ignore[arg-type]

    assert bus("user.upserted", user_detail(tom, org.id, 1, roles=["learner"]))["outcome"] == "updated"
    assert pairs() == {(tina, tom)}
    assert bus("user.upserted", user_detail(tom, org.id, 2, roles=["trainer"]))["outcome"] == "updated"
    assert pairs() == set()
    assert bus("user.upserted", user_detail(alice, org.id, 1, name="Alice renamed"))["outcome"] == "updated"
