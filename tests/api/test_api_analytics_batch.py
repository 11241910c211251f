"""PUT /v1/analytics with large batches, through its handler: a platform's 500-item batch (one
statement, migration 0019) answers the counts and writes exactly what was sent; the body is
validated once; every refusal answers as before and writes nothing."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any
from uuid import UUID

import pytest

from local import apigw
from ms8.schemas import analytics as analytics_schema
from tests.support.api import Reply, call
from tests.support.factories import Factory, Org

TYPES = ("learning_velocity", "engagement", "mastery", "skill_gap")
HEADLINE = {"learning_velocity": "velocity", "engagement": "engagement", "mastery": "mastery", "skill_gap": "gap"}


@pytest.fixture
def org(factory: Factory) -> Org:
    return factory.org("Batch", **{f"u{i}": ["learner"] for i in range(125)}, ada=["org_admin"])


@pytest.fixture
def client(factory: Factory, org: Org) -> dict[str, Any]:
    return apigw.service_claims(factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], org.id), ["ingest"])


def _items(org: Org, rnd: random.Random) -> list[dict[str, Any]]:
    """500 items: each of the 125 learners x the 4 types, shuffled, with a random headline."""
    items = [{"userId": str(org.users[f"u{i}"]), "analyticsType": t,
              "data": {HEADLINE[t]: rnd.random(), "sessions": rnd.randint(0, 40), "note": "x" * rnd.randint(0, 3)}}
             for i in range(125) for t in TYPES]
    rnd.shuffle(items)
    return items


def _stored(factory: Factory, org: Org) -> dict[tuple[str, str], tuple[int, dict[str, Any], str]]:
    """(user, type) -> (version, data, source) of every row of the organization."""
    rows = factory.sql(
        "SELECT user_id, analytics_type, version, data, source FROM analytics WHERE organization_id = %s", (org.id,))
    return {(str(u), t): (v, d, s) for u, t, v, d, s in rows}


def _put(claims: dict[str, Any], items: Any, **kwargs: Any) -> Reply:
    return call("PUT", "/v1/analytics", claims=claims, body={"items": items}, **kwargs)


def test_a_platform_batch_of_500_answers_the_counts_and_stores_what_was_sent(
    factory: Factory, org: Org, client: dict[str, Any]
) -> None:
    rnd = random.Random(16)
    first = _items(org, rnd)
    r = _put(client, first)
    assert (r.status, r.body) == (200, {"written": 500, "inserted": 500, "updated": 0})
    assert _stored(factory, org) == {(i["userId"], i["analyticsType"]): (1, i["data"], "client") for i in first}
    # Again with new values for half of them and the other half unchanged: all 500 replaced.
    second = [dict(i, data={HEADLINE[i["analyticsType"]]: 0.25}) if n % 2 else i for n, i in enumerate(first)]
    r = _put(client, second)
    assert (r.status, r.body) == (200, {"written": 500, "inserted": 0, "updated": 500})
    assert _stored(factory, org) == {(i["userId"], i["analyticsType"]): (2, i["data"], "client") for i in second}


def test_the_batch_is_validated_once_per_request(
    monkeypatch: pytest.MonkeyPatch, org: Org, client: dict[str, Any]
) -> None:
    checked: list[str] = []
    real = analytics_schema.data_errors

    def counting(analytics_type: str, data: Any) -> list[str]:
        checked.append(analytics_type)
        return real(analytics_type, data)

    monkeypatch.setattr(analytics_schema, "data_errors", counting)
    items = _items(org, random.Random(3))[:7]
    assert _put(client, items).status == 200
    assert len(checked) == 7  # the body parser's pass only: Powertools takes the model as it is
    r = call("PUT", "/v1/analytics", sub=org.users["u1"], body={"items": [{"analyticsType": "mastery", "data": {}}]})
    assert r.status == 200 and len(checked) == 8


def test_one_bad_item_refuses_the_whole_batch_naming_it(factory: Factory, org: Org, client: dict[str, Any]) -> None:
    rnd = random.Random(5)
    for field, value, problem in [
        ("data", {"mastery": 1.5}, "data.mastery must be a number in 0..1"),
        ("data", {"mastery": float("nan")}, "unacceptable number"),
        ("data", {"note": {"deep": {"deeper": 1}}}, "data.note must be"),
        ("data", {"sessions": 10**30}, "data.sessions must be"),
        ("analyticsType", "bogus", "analyticsType"),
        ("userId", "not-a-uuid", "userId"),
        ("role", "admin", "role"),
    ]:
        items = _items(org, rnd)
        k = next(n for n, i in enumerate(items) if i["analyticsType"] == "mastery" and n >= rnd.randrange(400))
        items[k] = dict(items[k], **{field: value})
        body = json.dumps({"items": items})  # NaN written as the literal NaN, as a client could
        r = call("PUT", "/v1/analytics", claims=client, raw_body=body, headers={"content-type": "application/json"})
        assert r.status == 422, (field, value, r.body)
        assert problem in json.dumps(r.body), (field, value, r.body)
        if field == "data" and "nan" not in str(value):
            assert f"items[{k}]: data." in r.body["error"]["message"], r.body
    assert _stored(factory, org) == {}


def test_keys_repeated_once_defaults_are_filled_in_are_refused(
    factory: Factory, org: Org, client: dict[str, Any]
) -> None:
    user = str(org.users["u7"])
    items = [{"userId": user, "analyticsType": "mastery", "data": {}},
             {"userId": user, "analyticsType": "mastery", "role": "learner", "data": {}}]
    r = _put(client, items)
    assert (r.status, r.error_code) == (422, "VALIDATION_ERROR")
    assert "items[1] repeats" in r.body["error"]["message"]
    r = _put(client, [{"analyticsType": "mastery", "data": {}}])
    assert (r.status, r.body["error"]["message"]) == (422, "items[0].userId is required for a platform service")
    assert _stored(factory, org) == {}


def test_a_user_of_another_organization_anywhere_in_the_batch_writes_nothing(
    factory: Factory, org: Org, client: dict[str, Any]
) -> None:
    other = factory.org("Other", xavier=["learner"])
    items = _items(org, random.Random(9))
    items[317] = dict(items[317], userId=str(other.users["xavier"]))
    r = _put(client, items)
    assert (r.status, r.error_code) == (404, "NOT_FOUND")
    assert _stored(factory, org) == {} and _stored(factory, other) == {}


def test_a_platform_wide_client_names_the_organization(factory: Factory, org: Org) -> None:
    client = factory.service_client(f"wide-{uuid.uuid4().hex[:8]}", ["ingest"], None)
    claims = apigw.service_claims(client, ["ingest"])
    items = _items(org, random.Random(2))[:3]
    r = _put(claims, items)
    assert (r.status, r.error_code) == (400, "ORGANIZATION_REQUIRED")
    r = _put(claims, items, headers={"X-Organization-Id": "not-a-uuid"})
    assert (r.status, r.error_code) == (400, "BAD_REQUEST")
    r = _put(claims, items, headers={"X-Organization-Id": str(org.id)})
    assert (r.status, r.body) == (200, {"written": 3, "inserted": 3, "updated": 0})


def test_text_postgresql_cannot_store_is_a_4xx_and_writes_nothing(
    factory: Factory, org: Org, client: dict[str, Any]
) -> None:
    user = str(org.users["u3"])
    for text in ('"\\ud800"', '"nul\\u0000byte"'):
        good = f'{{"userId": "{user}", "analyticsType": "engagement", "data": {{"engagement": 0.5}}}}'
        odd = f'{{"userId": "{user}", "analyticsType": "mastery", "data": {{"note": {text}}}}}'
        body = f'{{"items": [{good}, {odd}]}}'
        r = call("PUT", "/v1/analytics", claims=client, raw_body=body, headers={"content-type": "application/json"})
        assert 400 <= r.status < 500, (text, r.body)
        assert set(r.body["error"]) >= {"code", "message", "requestId"}
    assert _stored(factory, org) == {}


def test_the_rows_answer_still_comes_from_the_transaction(factory: Factory, org: Org, client: dict[str, Any]) -> None:
    items = _items(org, random.Random(4))[:20]
    r = _put(client, items, query={"return": "rows"})
    assert r.status == 200 and (r.body["written"], r.body["inserted"]) == (20, 20)
    written = {(i["userId"], i["analyticsType"]): i["version"] for i in r.body["items"]}
    assert written == {(i["userId"], i["analyticsType"]): 1 for i in items}
    assert all(UUID(i["id"]) for i in r.body["items"])
