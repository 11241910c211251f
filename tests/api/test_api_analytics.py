"""The analytics and identity routes, called through their handlers against the real database."""

from __future__ import annotations

import uuid

import pytest

from local import apigw
from tests.support.api import call
from tests.support.factories import Factory, Org


@pytest.fixture
def org(factory: Factory) -> Org:
    o = factory.org(
        "Acme", alice=["learner"], bob=["learner"], tina=["trainer", "learner"], ada=["org_admin"],
    )
    factory.assign(o.id, o.users["tina"], o.users["alice"])
    factory.analytics(o.id, o.users["alice"], "learner", "mastery", {"mastery": 0.8})
    factory.analytics(o.id, o.users["alice"], "learner", "engagement", {"engagement": 0.5})
    factory.analytics(o.id, o.users["bob"], "learner", "mastery", {"mastery": 0.3})
    return o


@pytest.fixture
def other(factory: Factory) -> Org:
    o = factory.org("Globex", xavier=["learner", "org_admin"], yan=["org_admin"])
    factory.analytics(o.id, o.users["xavier"], "learner", "mastery", {"mastery": 0.9})
    return o


def test_me_for_each_role(org: Org) -> None:
    for name, role, expected in [("alice", None, "learner"), ("tina", "trainer", "trainer"),
                                 ("ada", None, "org_admin")]:
        r = call("GET", "/v1/me", sub=org.users[name], role=role)
        assert r.status == 200, r.body
        assert r.body["userId"] == str(org.users[name])
        assert r.body["organizationId"] == str(org.id)
        assert r.body["activeRole"] == expected


def test_me_refuses_forged_role_unknown_sub_and_missing_claims(org: Org) -> None:
    r = call("GET", "/v1/me", sub=org.users["alice"], role="org_admin")
    assert (r.status, r.error_code) == (403, "ROLE_NOT_HELD")
    assert r.body["error"]["requestId"]
    r = call("GET", "/v1/me", sub=org.users["tina"])
    assert (r.status, r.error_code) == (400, "ROLE_REQUIRED")
    r = call("GET", "/v1/me", sub=uuid.uuid4())
    assert (r.status, r.error_code) == (403, "UNKNOWN_USER")
    r = call("GET", "/v1/me", sub="not-a-uuid")
    assert (r.status, r.error_code) == (401, "UNAUTHORIZED")
    r = call("GET", "/v1/me", claims={})
    assert r.status == 401
    r = call("GET", "/v1/me", sub=org.users["alice"], role="superuser")
    assert r.status == 403


def test_list_analytics_own_only_newest_first_with_filters(org: Org) -> None:
    r = call("GET", "/v1/analytics", sub=org.users["alice"])
    assert r.status == 200
    assert [i["analyticsType"] for i in r.body["items"]] == ["engagement", "mastery"]
    assert all(i["userId"] == str(org.users["alice"]) for i in r.body["items"])
    r = call("GET", "/v1/analytics", sub=org.users["alice"], query={"type": "mastery", "limit": "1"})
    assert [i["data"] for i in r.body["items"]] == [{"mastery": 0.8}]
    for bad in [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"type": "iq"}]:
        r = call("GET", "/v1/analytics", sub=org.users["alice"], query=bad)
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), bad


def test_summary(org: Org) -> None:
    r = call("GET", "/v1/analytics/summary", sub=org.users["alice"])
    assert r.status == 200
    assert r.body["count"] == 2
    assert r.body["latest"]["analyticsType"] == "engagement"
    r = call("GET", "/v1/analytics/summary", sub=org.users["ada"])
    assert r.body == {"count": 0, "latest": None}


def test_put_analytics_own_batch(org: Org) -> None:
    items = [{"analyticsType": "mastery", "data": {"mastery": 0.95}},
             {"analyticsType": "learning_velocity", "data": {"velocity": 3}}]
    r = call("PUT", "/v1/analytics", sub=org.users["alice"], body={"items": items}, query={"return": "rows"})
    assert r.status == 200, r.body
    assert (r.body["written"], r.body["inserted"], r.body["updated"]) == (2, 1, 1)
    versions = {i["analyticsType"]: i["version"] for i in r.body["items"]}
    assert versions == {"mastery": 2, "learning_velocity": 1}
    r = call("GET", "/v1/analytics", sub=org.users["alice"], query={"type": "mastery"})
    assert r.body["items"][0]["data"] == {"mastery": 0.95}


def test_put_analytics_answers_counts_unless_rows_are_asked_for(org: Org) -> None:
    items = [{"analyticsType": "mastery", "data": {"mastery": 0.5}},
             {"analyticsType": "skill_gap", "data": {"gap": 0.2}}]
    r = call("PUT", "/v1/analytics", sub=org.users["alice"], body={"items": items})
    assert r.status == 200, r.body
    assert r.body == {"written": 2, "inserted": 1, "updated": 1}  # mastery existed, skill_gap is new
    r = call("PUT", "/v1/analytics", sub=org.users["alice"], body={"items": items},
             headers={"Prefer": "return=representation"})
    assert (r.body["written"], r.body["inserted"], r.body["updated"]) == (2, 0, 2)
    assert sorted((i["analyticsType"], i["version"]) for i in r.body["items"]) == [
        ("mastery", 3), ("skill_gap", 2)]
    r = call("PUT", "/v1/analytics", sub=org.users["alice"], body={"items": items}, query={"return": "all"})
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")


def test_put_analytics_attacks(org: Org, other: Org) -> None:
    alice = org.users["alice"]
    for target in (org.users["bob"], other.users["xavier"]):
        r = call("PUT", "/v1/analytics", sub=alice,
                 body={"items": [{"analyticsType": "mastery", "data": {"m": 1}, "userId": str(target)}]})
        assert (r.status, r.error_code) == (403, "FORBIDDEN")
    r = call("PUT", "/v1/analytics", sub=alice,
             body={"items": [{"analyticsType": "mastery", "data": {}, "role": "org_admin"}]})
    assert r.status == 403
    bad_bodies = [
        {"items": []},
        {"items": [{"analyticsType": "mastery"}]},
        {"items": [{"analyticsType": "mastery", "data": "x"}]},
        {"items": [{"analyticsType": "mastery", "data": {}, "userId": "not-a-uuid"}]},
        {"items": [{"analyticsType": "mastery", "data": {}}] * 2},
        {"items": [{"analyticsType": "mastery", "data": {}, "extra": 1}]},
        {"items": [{"analyticsType": "engagement", "data": {}}] + [{"analyticsType": "mastery", "data": {}}] * 500},
        [1, 2],
    ]
    for body in bad_bodies:
        r = call("PUT", "/v1/analytics", sub=alice, body=body)
        assert (r.status, r.error_code) == (422, "VALIDATION_ERROR"), body
    r = call("PUT", "/v1/analytics", sub=alice, raw_body="{not json")
    assert r.status in (400, 422)
    assert r.error_code
    r = call("PUT", "/v1/analytics", sub=alice, raw_body="x" * (1024 * 1024 + 1))
    assert (r.status, r.error_code) == (413, "PAYLOAD_TOO_LARGE")
    # Nothing of the refused batches was written.
    r = call("GET", "/v1/analytics/summary", sub=alice)
    assert r.body["count"] == 2


def test_put_analytics_by_ingest_service(factory: Factory, org: Org, other: Org) -> None:
    client = factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], org.id)
    claims = apigw.service_claims(client, ["ingest"])
    items = [{"analyticsType": "mastery", "data": {"mastery": 0.1}, "userId": str(org.users["bob"])}]
    r = call("PUT", "/v1/analytics", claims=claims, body={"items": items})
    assert r.status == 200, r.body
    items = [{"analyticsType": "mastery", "data": {"mastery": 0.1}, "userId": str(other.users["xavier"])}]
    r = call("PUT", "/v1/analytics", claims=claims, body={"items": items})
    assert (r.status, r.error_code) == (404, "NOT_FOUND")  # xavier has a row elsewhere: still just 404
    items[0]["analyticsType"] = "engagement"  # ...and where he has none
    r = call("PUT", "/v1/analytics", claims=claims, body={"items": items})
    assert (r.status, r.error_code) == (404, "NOT_FOUND")
    r = call("PUT", "/v1/analytics", claims=claims, body={"items": items},
             headers={"X-Organization-Id": str(other.id)})
    assert (r.status, r.error_code) == (403, "SCOPE_NOT_GRANTED")
    r = call("PUT", "/v1/analytics", claims=apigw.service_claims("unregistered", ["ingest"]), body={"items": items})
    assert (r.status, r.error_code) == (403, "UNKNOWN_CLIENT")
    r = call("GET", "/v1/me", claims=claims)
    assert (r.status, r.error_code) == (403, "USERS_ONLY")


def test_user_analytics_for_trainer_and_admin(org: Org, other: Org) -> None:
    alice, bob = org.users["alice"], org.users["bob"]
    r = call("GET", f"/v1/users/{alice}/analytics", sub=org.users["tina"], role="trainer")
    assert r.status == 200 and len(r.body["items"]) == 2
    r = call("GET", f"/v1/users/{bob}/analytics", sub=org.users["tina"], role="trainer")
    assert (r.status, r.error_code) == (404, "NOT_FOUND")
    r = call("GET", f"/v1/users/{bob}/analytics", sub=org.users["ada"])
    assert r.status == 200 and len(r.body["items"]) == 1
    r = call("GET", f"/v1/users/{other.users['xavier']}/analytics", sub=org.users["ada"])
    assert r.status == 404
    r = call("GET", f"/v1/users/{uuid.uuid4()}/analytics", sub=org.users["ada"])
    assert r.status == 404
    r = call("GET", f"/v1/users/{alice}/analytics", sub=alice)
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call("GET", f"/v1/users/{alice}/analytics", sub=org.users["tina"], role="learner")
    assert r.status == 403
    r = call("GET", "/v1/users/not-a-uuid/analytics", sub=org.users["ada"])
    assert r.status == 422


def test_comparison_hides_small_groups_and_shows_k10(factory: Factory) -> None:
    small = factory.org("Small", **{f"l{i}": ["learner"] for i in range(9)})
    big = factory.org("Big", **{f"l{i}": ["learner"] for i in range(12)})
    for o in (small, big):
        for i, uid in enumerate(o.users.values()):
            factory.analytics(o.id, uid, "learner", "mastery", {"mastery": i / 12})
    factory.refresh_comparison()
    r = call("GET", "/v1/comparison", sub=small.users["l0"], query={"type": "mastery"})
    assert r.status == 200
    item = r.body["items"][0]
    assert item["available"] is False and item.get("peers") is None and "10" in item["message"]
    assert item["yourValue"] == 0.0
    r = call("GET", "/v1/comparison", sub=big.users["l3"])
    items = {i["analyticsType"]: i for i in r.body["items"]}
    assert items["mastery"]["available"] is True
    assert items["mastery"]["peers"]["userCount"] == 12
    peers = items["mastery"]["peers"]  # noisy (docs/SECURITY.md; the noise: tests/unit/test_privacy.py)
    assert 0 <= peers["p25"] <= peers["p50"] <= peers["p75"] <= 1 and 0 <= peers["average"] <= 1
    assert items["mastery"]["yourValue"] == pytest.approx(3 / 12)
    assert items["engagement"]["available"] is False


def test_aggregates_roles_and_validation(org: Org, factory: Factory) -> None:
    factory.sql(
        "INSERT INTO population_rollups (organization_id, granularity, period_start, period_end, learners, "
        "active_learners, completions, assessments, scored, score_micros, duration_seconds, distribution, version) "
        "VALUES (%s, 'daily', current_date - 1, current_date, 12, 3, 6, 2, 2, 1500000, 3600, '{}', 2)", (org.id,))
    r = call("GET", "/v1/aggregates", sub=org.users["ada"], query={"granularity": "daily"})
    assert r.status == 200 and len(r.body["items"]) == 1
    item = r.body["items"][0]
    assert (item["learners"], item["activeShare"], item["velocity"], item["meanScore"],
            item["minutesPerActiveLearner"]) == (12, 0.25, 3.5, 0.75, 20.0)
    r = call("GET", "/v1/aggregates", sub=org.users["tina"], role="trainer", query={"scope": "organization"})
    assert r.status == 200 and len(r.body["items"]) == 1
    r = call("GET", "/v1/aggregates", sub=org.users["alice"])
    assert (r.status, r.error_code) == (403, "ROLE_NOT_ALLOWED")
    r = call("GET", "/v1/aggregates", sub=org.users["ada"], query={"from": "2026-12-01", "to": "2026-01-01"})
    assert r.status == 422
    r = call("GET", "/v1/aggregates", sub=org.users["ada"], query={"granularity": "hourly"})
    assert r.status == 422


def test_openapi_document_served(org: Org) -> None:
    r = call("GET", "/v1/openapi.json", sub=org.users["alice"])
    assert r.status == 200
    assert r.body["openapi"].startswith("3.1")
    assert "/v1/analytics" in r.body["paths"]
