"""Org admins manage their organization: users (paged), roles, trainer assignments, skill targets.
Nothing reaches another organization, and RLS enforces it below the handlers' own checks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import errors

from local import apigw
from ms8 import db
from ms8.errors import Conflict
from ms8.repositories import directory as repo
from ms8.services import directory
from tests.support.api import call
from tests.support.factories import Factory, Org


@pytest.fixture
def acme(factory: Factory) -> Org:
    return factory.org("Acme", ada=["org_admin"], tina=["trainer"], tom=["trainer", "learner"],
                       alice=["learner"], bob=["learner"], carl=["learner"])


@pytest.fixture
def globex(factory: Factory) -> Org:
    return factory.org("Globex", gary=["org_admin"], gil=["trainer"], xavier=["learner"])


def admin(org: Org, method: str, path: str, **kw: Any) -> Any:
    return call(method, path, sub=org.users["ada" if "ada" in org.users else "gary"], **kw)


def roles_of(factory: Factory, user_id: uuid.UUID) -> list[str]:
    return factory.sql("SELECT roles FROM users WHERE id = %s", (user_id,))[0][0]  # type: ignore[no-any-return]


def assignments(factory: Factory, org: Org) -> set[tuple[uuid.UUID, uuid.UUID]]:
    return {(t, learner) for t, learner in factory.sql(
        "SELECT trainer_id, learner_id FROM trainer_assignments WHERE organization_id = %s", (org.id,))}


# --- GET /v1/users ---


def test_list_users_pages_through_exactly_the_organization(acme: Org, globex: Org) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        r = admin(acme, "GET", "/v1/users", query=query)
        assert r.status == 200, r.body
        assert len(r.body["items"]) <= 4
        assert all(u["organizationId"] == str(acme.id) for u in r.body["items"])
        seen += [u["id"] for u in r.body["items"]]
        pages += 1
        cursor = r.body["nextCursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == sorted(str(u) for u in acme.users.values())  # each once, in a stable order
    first = admin(acme, "GET", "/v1/users", query={"limit": "200"}).body
    assert first["nextCursor"] is None and len(first["items"]) == len(acme.users)
    assert {"id", "email", "name", "roles", "timezone", "updatedAt"} <= set(first["items"][0])
    assert not {u["id"] for u in first["items"]} & {str(u) for u in globex.users.values()}


def test_list_users_refuses_bad_cursors_and_limits(acme: Org) -> None:
    for cursor in ["garbage!", "dTE", "AAAAAAAAAAAAAAAAAAAAAAAA", "x" * 64]:
        r = admin(acme, "GET", "/v1/users", query={"cursor": cursor})
        assert (r.status, r.error_code) == (400, "INVALID_CURSOR"), cursor
    for limit in ["0", "201", "-1", "ten", "1.5"]:
        r = admin(acme, "GET", "/v1/users", query={"limit": limit})
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), limit
    r = admin(acme, "GET", "/v1/users", query={"cursor": "y" * 65})
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")


def test_a_cursor_from_another_organization_shows_nothing_of_it(acme: Org, globex: Org) -> None:
    r = admin(globex, "GET", "/v1/users", query={"limit": "1"})
    cursor = r.body["nextCursor"]
    r = admin(acme, "GET", "/v1/users", query={"cursor": cursor, "limit": "200"})
    assert r.status == 200
    assert {u["organizationId"] for u in r.body["items"]} <= {str(acme.id)}


# --- PUT /v1/users/{userId}/roles ---


def test_change_roles_and_the_last_org_admin(factory: Factory, acme: Org) -> None:
    alice, ada = acme.users["alice"], acme.users["ada"]
    r = admin(acme, "PUT", f"/v1/users/{alice}/roles", body={"roles": ["org_admin", "learner"]})
    assert r.status == 200, r.body
    assert (r.body["roles"], r.body["assignmentsRemoved"]) == (["learner", "org_admin"], 0)
    # Two admins: ada may step down, then alice is the last and may not.
    r = admin(acme, "PUT", f"/v1/users/{ada}/roles", body={"roles": ["learner"]})
    assert r.status == 200, r.body
    r = call("PUT", f"/v1/users/{alice}/roles", sub=alice, role="org_admin", body={"roles": ["learner"]})
    assert (r.status, r.error_code) == (409, "LAST_ORG_ADMIN")
    assert roles_of(factory, alice) == ["learner", "org_admin"]
    r = call("PUT", f"/v1/users/{alice}/roles", sub=alice, role="org_admin", body={"roles": ["org_admin"]})
    assert r.status == 200  # keeping the role is fine
    r = call("PUT", f"/v1/users/{ada}/roles", sub=ada, body={"roles": ["org_admin"]})
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")  # ada is no admin any more


def test_a_sole_admin_cannot_demote_themselves(factory: Factory, acme: Org) -> None:
    ada = acme.users["ada"]
    for roles in (["learner"], ["trainer", "learner"]):
        r = admin(acme, "PUT", f"/v1/users/{ada}/roles", body={"roles": roles})
        assert (r.status, r.error_code) == (409, "LAST_ORG_ADMIN")
    assert roles_of(factory, ada) == ["org_admin"]


def test_losing_the_trainer_or_learner_role_ends_those_assignments(factory: Factory, acme: Org) -> None:
    tom, tina, alice, bob = (acme.users[k] for k in ("tom", "tina", "alice", "bob"))
    factory.assign(acme.id, tom, alice)
    factory.assign(acme.id, tom, bob)
    factory.assign(acme.id, tina, tom)
    r = admin(acme, "PUT", f"/v1/users/{tom}/roles", body={"roles": ["learner"]})
    assert (r.status, r.body["assignmentsRemoved"]) == (200, 2)
    assert assignments(factory, acme) == {(tina, tom)}
    r = admin(acme, "PUT", f"/v1/users/{tom}/roles", body={"roles": ["trainer"]})
    assert (r.status, r.body["assignmentsRemoved"]) == (200, 1)
    assert assignments(factory, acme) == set()


def test_roles_of_other_organizations_and_unknown_users_are_404(factory: Factory, acme: Org, globex: Org) -> None:
    for target in (globex.users["xavier"], globex.users["gary"], uuid.uuid4()):
        r = admin(acme, "PUT", f"/v1/users/{target}/roles", body={"roles": ["org_admin"]})
        assert (r.status, r.error_code) == (404, "NOT_FOUND")
    assert roles_of(factory, globex.users["xavier"]) == ["learner"]


def test_roles_body_and_path_validation(acme: Org) -> None:
    alice = acme.users["alice"]
    for body in [{"roles": []}, {"roles": ["superuser"]}, {"roles": "learner"}, {"roles": ["learner", "learner"]},
                 {"roles": ["learner"] * 4}, {}, {"roles": ["learner"], "organizationId": str(uuid.uuid4())},
                 {"roles": [1]}, "learner"]:
        r = admin(acme, "PUT", f"/v1/users/{alice}/roles", body=body)
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), body
    r = admin(acme, "PUT", "/v1/users/not-a-uuid/roles", body={"roles": ["learner"]})
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")
    r = admin(acme, "PUT", f"/v1/users/{alice}/roles", raw_body="{", headers={"content-type": "application/json"})
    assert 400 <= r.status < 500


# --- trainer assignments ---


def trainer_sees(runtime_url: str, trainer: uuid.UUID) -> set[uuid.UUID]:
    """The users a trainer can read, straight through RLS."""
    with psycopg.connect(runtime_url, prepare_threshold=None) as conn:
        db.as_user(trainer, "trainer")(conn)
        return {r[0] for r in conn.execute("SELECT id FROM users")}


def test_a_trainer_sees_exactly_the_assigned_learners(factory: Factory, acme: Org, runtime_url: str) -> None:
    tina, alice, bob = acme.users["tina"], acme.users["alice"], acme.users["bob"]
    factory.analytics(acme.id, alice, "learner", "mastery", {"mastery": 0.6})
    assert trainer_sees(runtime_url, tina) == {tina}
    assert call("GET", f"/v1/users/{alice}/analytics", sub=tina).status == 404

    r = admin(acme, "PUT", f"/v1/trainers/{tina}/learners/{alice}")
    assert (r.status, r.body["created"]) == (200, True), r.body
    r = admin(acme, "PUT", f"/v1/trainers/{tina}/learners/{bob}")
    assert r.status == 200
    assert trainer_sees(runtime_url, tina) == {tina, alice, bob}
    r = call("GET", f"/v1/users/{alice}/analytics", sub=tina)
    assert (r.status, len(r.body["items"])) == (200, 1)
    again = admin(acme, "PUT", f"/v1/trainers/{tina}/learners/{alice}")
    assert (again.status, again.body["created"]) == (200, False)  # idempotent

    r = admin(acme, "DELETE", f"/v1/trainers/{tina}/learners/{alice}")
    assert (r.status, r.body["removed"]) == (200, True)
    assert trainer_sees(runtime_url, tina) == {tina, bob}
    assert call("GET", f"/v1/users/{alice}/analytics", sub=tina).status == 404
    r = admin(acme, "DELETE", f"/v1/trainers/{tina}/learners/{alice}")
    assert (r.status, r.body["removed"]) == (200, False)  # idempotent


def test_assignment_rules(factory: Factory, acme: Org) -> None:
    tina, tom, alice, ada = (acme.users[k] for k in ("tina", "tom", "alice", "ada"))
    cases = [
        (alice, tom, "NOT_A_TRAINER"),  # alice holds no trainer role
        (tina, ada, "NOT_A_LEARNER"),  # ada holds no learner role
        (tom, tom, "SELF_ASSIGNMENT"),  # tom holds both, but not for himself
    ]
    for trainer, learner, code in cases:
        r = admin(acme, "PUT", f"/v1/trainers/{trainer}/learners/{learner}")
        assert (r.status, r.error_code) == (422, code)
    assert assignments(factory, acme) == set()
    assert admin(acme, "PUT", f"/v1/trainers/{tom}/learners/{alice}").status == 200


def test_assignments_never_cross_organizations(factory: Factory, acme: Org, globex: Org) -> None:
    tina, alice = acme.users["tina"], acme.users["alice"]
    gil, xavier = globex.users["gil"], globex.users["xavier"]
    factory.assign(globex.id, gil, xavier)
    for trainer, learner in [(tina, xavier), (gil, alice), (gil, xavier), (tina, uuid.uuid4()), (uuid.uuid4(), alice)]:
        for method in ("PUT", "DELETE"):
            r = admin(acme, method, f"/v1/trainers/{trainer}/learners/{learner}")
            assert (r.status, r.error_code) == (404, "NOT_FOUND"), (method, trainer, learner)
    assert assignments(factory, globex) == {(gil, xavier)}
    assert assignments(factory, acme) == set()


# --- skill targets ---


def test_skill_targets_are_per_organization(factory: Factory, acme: Org, globex: Org) -> None:
    r = admin(acme, "PUT", "/v1/skill-targets/sql", body={"targetLevel": 0.8})
    assert r.status == 200, r.body
    assert (r.body["skill"], r.body["targetLevel"], r.body["created"]) == ("sql", 0.8, True)
    r = admin(acme, "PUT", "/v1/skill-targets/sql", body={"targetLevel": 1})
    assert (r.status, r.body["targetLevel"], r.body["created"]) == (200, 1.0, False)
    r = admin(globex, "PUT", "/v1/skill-targets/sql", body={"targetLevel": 0.25})
    assert (r.status, r.body["created"]) == (200, True)
    rows = factory.sql("SELECT organization_id, target_level FROM skill_targets WHERE skill = 'sql' "
                       "AND organization_id = ANY (%s)", ([acme.id, globex.id],))
    assert sorted((o, round(v, 6)) for o, v in rows) == sorted([(acme.id, 1.0), (globex.id, 0.25)])


def test_skill_target_validation(acme: Org) -> None:
    for body in [{"targetLevel": 1.5}, {"targetLevel": -0.1}, {"targetLevel": "0.5"}, {"targetLevel": True},
                 {"targetLevel": None}, {}, {"targetLevel": 0.5, "organizationId": str(uuid.uuid4())}]:
        r = admin(acme, "PUT", "/v1/skill-targets/sql", body=body)
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), body
    for skill in ["bad%20skill", "x" * 101, "semi;colon", "a'b"]:
        r = admin(acme, "PUT", f"/v1/skill-targets/{skill}", body={"targetLevel": 0.5})
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), skill
    r = admin(acme, "PUT", "/v1/skill-targets/data-modeling_2.0", body={"targetLevel": 0.5})
    assert r.status == 200


# --- who may call ---

ADMIN_ROUTES = [
    ("GET", "/v1/users", None),
    ("PUT", "/v1/users/{alice}/roles", {"roles": ["learner"]}),
    ("PUT", "/v1/trainers/{tina}/learners/{alice}", None),
    ("DELETE", "/v1/trainers/{tina}/learners/{alice}", None),
    ("PUT", "/v1/skill-targets/sql", {"targetLevel": 0.5}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES])
def test_admin_routes_refuse_everyone_else(
    factory: Factory, acme: Org, method: str, path: str, body: Any
) -> None:
    path = path.format(alice=acme.users["alice"], tina=acme.users["tina"])
    r = call(method, path, sub=acme.users["alice"], body=body)
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call(method, path, sub=acme.users["tina"], body=body)
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call(method, path, sub=acme.users["tom"], role="trainer", body=body)
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call(method, path, sub=acme.users["alice"], role="org_admin", body=body)
    assert (r.status, r.error_code) == (403, "ROLE_NOT_HELD")
    client = factory.service_client(f"test-directory-{uuid.uuid4().hex}", ["directory"], None)
    r = call(method, path, claims=apigw.service_claims(client, ["directory"]), body=body)
    assert (r.status, r.error_code) == (403, "USERS_ONLY")
    r = call(method, path, sub=uuid.uuid4(), body=body)
    assert (r.status, r.error_code) == (403, "UNKNOWN_USER")
    r = call(method, path, claims={}, body=body)
    assert r.status == 401
    assert assignments(factory, acme) == set()
    assert roles_of(factory, acme.users["alice"]) == ["learner"]


# --- RLS below the handlers: the repository called as Acme's admin against Globex ---


@pytest.fixture
def as_acme_admin(runtime_url: str, acme: Org) -> Iterator[psycopg.Connection]:
    with psycopg.connect(runtime_url, prepare_threshold=None) as conn:
        db.as_user(acme.users["ada"], "org_admin")(conn)
        yield conn
        conn.rollback()


def test_rls_confines_the_repository_without_the_services_checks(
    factory: Factory, as_acme_admin: psycopg.Connection, globex: Org
) -> None:
    conn = as_acme_admin
    gil, xavier, gary = globex.users["gil"], globex.users["xavier"], globex.users["gary"]
    factory.assign(globex.id, gil, xavier)
    factory.sql("INSERT INTO skill_targets (organization_id, skill, target_level) VALUES (%s, 'sql', 0.5)",
                (globex.id,))

    assert repo.list_users(conn, globex.id, None, 100) == []
    assert repo.lock_for_roles(conn, globex.id, gary) == (None, set())
    assert repo.lock_users(conn, [gil, xavier]) == {}
    assert repo.set_roles(conn, gary, ["learner"]) is None
    assert repo.remove_assignments(conn, gil, True, True) == 0
    assert repo.unassign(conn, gil, xavier) is False
    assert conn.execute("SELECT count(*) FROM skill_targets WHERE organization_id = %s",
                        (globex.id,)).fetchone() == (0,)
    assert conn.execute("UPDATE skill_targets SET target_level = 0 WHERE organization_id = %s",
                        (globex.id,)).rowcount == 0
    with pytest.raises(errors.InsufficientPrivilege), conn.transaction():  # a savepoint
        repo.assign(conn, globex.id, gil, xavier)
    with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
        repo.upsert_skill_target(conn, globex.id, "sql", 0.0)
    assert roles_of(factory, gary) == ["org_admin"]
    assert assignments(factory, globex) == {(gil, xavier)}
    assert factory.sql("SELECT target_level FROM skill_targets WHERE organization_id = %s",
                       (globex.id,)) == [(0.5,)]


def test_two_admins_demoting_each_other_at_once_leave_one(factory: Factory, runtime_url: str) -> None:
    org = factory.org("Race", ann=["org_admin"], ben=["org_admin"])
    ann, ben = org.users["ann"], org.users["ben"]
    with psycopg.connect(runtime_url, prepare_threshold=None) as first, \
            psycopg.connect(runtime_url, prepare_threshold=None) as second:
        first_caller = db.as_user(ann, "org_admin")(first)
        second_caller = db.as_user(ben, "org_admin")(second)
        directory.change_roles(first, first_caller, ben, ["learner"])  # not committed yet
        with ThreadPoolExecutor(1) as pool:
            racing = pool.submit(directory.change_roles, second, second_caller, ann, ["learner"])
            time.sleep(0.3)
            assert not racing.done()  # waits on the first one's locks
            first.commit()
            with pytest.raises(Conflict) as refused:
                racing.result(timeout=10)
        second.rollback()
    assert refused.value.code == "LAST_ORG_ADMIN"
    assert (roles_of(factory, ann), roles_of(factory, ben)) == (["org_admin"], ["learner"])
