"""Hostile input through the local gateway: every route that takes a body, with a number of 5,000
digits, JSON nested 5,000 deep, NaN / Infinity; every route with control characters in a header or
a query parameter. Each answer is a clear 4xx in the API's error shape, never a 500."""

from __future__ import annotations

import http.client
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from local import stack, template, tokens
from tests.support.factories import Factory, Org
from tests.support.gateway import RunningGateway, gateway_process

BODY_ROUTES = [r for r in template.routes() if r.method in ("POST", "PUT", "PATCH")]
ALL_ROUTES = template.routes()


@pytest.fixture(scope="module")
def org(owner_url: str) -> Org:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        return Factory(conn).org("Hostile Org", learner=["learner"], admin=["org_admin", "learner"])


@pytest.fixture(scope="module")
def gateway(database: str, org: Org) -> Iterator[RunningGateway]:
    # No report is ever written: the S3 endpoint is never reached.
    with gateway_process(stack.function_env("http://127.0.0.1:9", db=database)) as running:
        yield running


def _send(gw: RunningGateway, method: str, path: str, token: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, Any]:
    parts = urlsplit(gw.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        hdrs = {"Authorization": f"Bearer {token}", **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in hdrs.items():
            # putheader, not request(): http.client would refuse some of these values itself.
            conn.putheader(name.encode("latin-1"), value.encode("latin-1"))
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def _path(route: template.Route) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)


def _assert_clean_4xx(status: int, body: Any, statuses: tuple[int, ...], what: str) -> None:
    assert status in statuses, (what, status, body)
    if isinstance(body, dict) and "error" in body:  # the function's answer (the gateway's own is {"message"})
        assert set(body["error"]) >= {"code", "message", "requestId"}, body
        assert "Traceback" not in body["error"]["message"]


HOSTILE_BODIES: dict[str, bytes] = {
    "5000-digit number": b'{"items": [{"analyticsType": "mastery", "data": {"mastery": ' + b"9" * 5000 + b"}}]}",
    "5000-digit number at the top": b'{"n": ' + b"1" * 5000 + b"}",
    "nested 5000 deep": b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "objects nested 5000 deep": b'{"a": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}",
    "NaN": b'{"items": [{"analyticsType": "mastery", "data": {"mastery": NaN}}]}',
    "Infinity": b'{"items": [{"analyticsType": "mastery", "data": {"mastery": -Infinity}}]}',
    "1e400": b'{"items": [{"analyticsType": "mastery", "data": {"mastery": 1e400}}]}',
}


@pytest.mark.parametrize("kind", list(HOSTILE_BODIES))
def test_every_body_route_refuses_hostile_json_with_a_4xx(gateway: RunningGateway, org: Org, kind: str) -> None:
    token = tokens.user_token(org.users["learner"])
    assert BODY_ROUTES, "template.yaml has routes that take a body"
    for route in BODY_ROUTES:
        status, body = _send(gateway, route.method, _path(route), token, HOSTILE_BODIES[kind])
        _assert_clean_4xx(status, body, (400, 403, 404, 413, 415, 422), f"{route.method} {route.path} {kind}")


def test_the_analytics_write_names_what_was_wrong(gateway: RunningGateway, org: Org) -> None:
    token = tokens.user_token(org.users["learner"])
    status, body = _send(gateway, "PUT", "/v1/analytics", token, HOSTILE_BODIES["5000-digit number"])
    assert (status, body["error"]["code"]) == (422, "NUMBER_OUT_OF_RANGE")
    status, body = _send(gateway, "PUT", "/v1/analytics", token, HOSTILE_BODIES["nested 5000 deep"])
    assert (status, body["error"]["code"]) == (422, "BODY_TOO_DEEP")
    status, body = _send(gateway, "PUT", "/v1/analytics", token, HOSTILE_BODIES["NaN"])
    assert (status, body["error"]["code"]) == (422, "NUMBER_OUT_OF_RANGE")
    status, body = _send(gateway, "PUT", "/v1/analytics", token, HOSTILE_BODIES["1e400"])
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR", body
    one_bad = json.dumps({"items": [{"analyticsType": "engagement", "data": {"engagement": 0.5}},
                                    {"analyticsType": "mastery", "data": {"mastery": 1e200}}]}).encode()
    status, body = _send(gateway, "PUT", "/v1/analytics", token, one_bad)
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR"), body
    assert "items[1]: data.mastery must be a number in 0..1" in json.dumps(body["error"]["details"])
    # and nothing was written, not even the valid item
    status, body = _send(gateway, "GET", "/v1/analytics", token)
    assert (status, body["items"]) == (200, [])


@pytest.mark.parametrize("value", ["learner\x00", "\x00", "lear\x01ner", "learner\x7f", "x\x1b[31m"])
def test_control_characters_in_headers_are_400_on_every_route(gateway: RunningGateway, org: Org, value: str) -> None:
    token = tokens.user_token(org.users["admin"])
    for route in ALL_ROUTES:
        for header in ("X-Active-Role", "X-Organization-Id", "X-Anything"):
            status, body = _send(gateway, route.method, _path(route), token, headers={header: value})
            _assert_clean_4xx(status, body, (400,), f"{route.method} {route.path} {header}")
            # The function's own answer, or (a control character is not a valid header value) the
            # gateway's before any function runs, as API Gateway refuses a malformed request.
            assert body.get("error", {}).get("code") == "CONTROL_CHARACTER" or body == {"message": "Bad Request"}, body


def test_control_characters_in_query_parameters_are_400(gateway: RunningGateway, org: Org) -> None:
    token = tokens.user_token(org.users["learner"])
    for query in ("type=mastery%00", "limit=1%0d%0a", "granularity=%1b"):
        status, body = _send(gateway, "GET", f"/v1/aggregates?{query}", token)
        assert (status, body["error"]["code"]) == (400, "CONTROL_CHARACTER"), (query, body)


def test_a_tab_in_a_header_is_still_accepted(gateway: RunningGateway, org: Org) -> None:
    token = tokens.user_token(org.users["learner"])
    status, body = _send(gateway, "GET", "/v1/me", token, headers={"X-Note": "a\tb"})
    assert status == 200, body


def test_a_platform_batch_of_500_through_the_gateway(gateway: RunningGateway, owner_url: str) -> None:
    """The bench's case over HTTP: 500 items of 125 learners from an ingest token answer the counts;
    the same batch with one item out of range anywhere answers 422 naming it and writes nothing."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        factory = Factory(conn)
        batch_org = factory.org("Batch Org", **{f"u{i}": ["learner"] for i in range(125)})
        client = factory.service_client(f"svc-{uuid.uuid4().hex[:8]}", ["ingest"], batch_org.id)
    token = tokens.service_token(client, ["ingest"])
    items = [{"userId": str(batch_org.users[f"u{i}"]), "analyticsType": t, "data": {"sessions": i, "note": "n"}}
             for i in range(125) for t in ("learning_velocity", "engagement", "mastery", "skill_gap")]
    bad = [dict(i) for i in items]
    bad[411] = dict(bad[411], data={"sessions": -1} if bad[411]["analyticsType"] == "engagement" else {"x": 1e13})
    status, body = _send(gateway, "PUT", "/v1/analytics", token, json.dumps({"items": bad}).encode())
    assert (status, body["error"]["code"]) == (422, "VALIDATION_ERROR"), body
    assert "items[411]: data." in body["error"]["message"]
    status, body = _send(gateway, "PUT", "/v1/analytics", token, json.dumps({"items": items}).encode())
    assert (status, body) == (200, {"written": 500, "inserted": 500, "updated": 0})
    status, body = _send(gateway, "PUT", "/v1/analytics", token, json.dumps({"items": items}).encode())
    assert (status, body) == (200, {"written": 500, "inserted": 0, "updated": 500})
    with psycopg.connect(owner_url, autocommit=True) as conn:
        rows = Factory(conn).sql("SELECT version, data FROM analytics WHERE organization_id = %s", (batch_org.id,))
    assert len(rows) == 500 and {(v, d["note"]) for v, d in rows} == {(2, "n")}
