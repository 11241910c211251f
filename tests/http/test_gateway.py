"""The local gateway over real HTTP: gunicorn (`python -m local.server`, 2 workers) on a free port
against the test database, with tokens from the local issuer: the authorizer, routing, CORS and
the local pages as a client meets them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local import gateway, stack, template, tokens
from tests.support.factories import Factory, Org
from tests.support.gateway import RunningGateway, gateway_process


@dataclass
class Served:
    running: RunningGateway
    org: Org

    @property
    def url(self) -> str:
        return self.running.url

    def request(self, method: str, path: str, token: str | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        with httpx.Client(base_url=self.url, timeout=10) as client:
            resp = client.request(method, path, json=body, headers=hdrs)
        return resp.status_code, dict(resp.headers), resp.json() if resp.content else None


@pytest.fixture(scope="module")
def served(owner_url: str, database: str, gateway_database_url: str) -> Iterator[Served]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        factory = Factory(conn)
        org = factory.org("Gateway Org", learner=["learner"], trainer=["trainer"], admin=["org_admin"],
                          other=["learner"])
        factory.assign(org.id, org.users["trainer"], org.users["learner"])
        factory.analytics(org.id, org.users["learner"], "learner", "mastery", {"mastery": 0.8})
        factory.analytics(org.id, org.users["learner"], "learner", "engagement", {"engagement": 0.5})
    env = {**stack.function_env(None, db=database), "DATABASE_URL": gateway_database_url}
    with gateway_process(env, workers=2) as running:
        yield Served(running, org)


def token(sub: uuid.UUID | str, **extra: Any) -> str:
    return tokens.user_token(sub, **extra)


def test_good_token_answers_200_from_the_function(served: Served) -> None:
    status, headers, body = served.request("GET", "/v1/analytics?limit=5", token(served.org.users["learner"]))
    assert status == 200
    assert {item["analyticsType"] for item in body["items"]} == {"mastery", "engagement"}
    assert headers[gateway.LOCAL_FUNCTION_HEADER] == "ListAnalyticsFunction"
    uuid.UUID(headers["apigw-requestid"])


def _resign_payload(good: str, **changes: Any) -> str:
    """The token with its payload changed and the original signature kept (a tampered token)."""
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


def _bad_tokens(user: uuid.UUID, other: uuid.UUID) -> dict[str, str | None]:
    good = token(user)
    now = int(time.time())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    base = {"iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "sub": str(user), "iat": now, "exp": now + 600}
    return {
        "missing": None,
        "empty": "",
        "malformed": "not-a-jwt",
        "tampered payload": _resign_payload(good, sub=str(other)),
        "tampered signature": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "expired": tokens.sign({**base, "iat": now - 7200, "exp": now - 3600}),
        "not yet valid": tokens.sign({**base, "nbf": now + 3600}),
        "another key": jwt.encode(base, stranger, algorithm="RS256", headers={"kid": tokens.key_id()}),
        "another issuer": tokens.sign({**base, "iss": "https://elsewhere.example"}),
        "another audience": tokens.sign({**base, "aud": "someone-else"}),
        "unsigned": jwt.encode(base, None, algorithm="none"),  # type: ignore[arg-type]
        "HS256": jwt.encode(base, "a-shared-secret-instead-of-the-rsa-key-0123456789", algorithm="HS256"),
    }


BAD_TOKENS = ["missing", "empty", "malformed", "tampered payload", "tampered signature", "expired", "not yet valid",
              "another key", "another issuer", "another audience", "unsigned", "HS256"]


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_missing_malformed_expired_or_forged_token_gets_401_before_any_function(served: Served, case: str) -> None:
    bad = _bad_tokens(served.org.users["learner"], served.org.users["other"])[case]
    headers = {} if bad is None else {"Authorization": f"Bearer {bad}".strip()}
    status, got, body = served.request("GET", "/v1/me", headers=headers)
    assert status == 401, case
    assert body == {"message": "Unauthorized"}
    assert "invalid_token" in got["www-authenticate"]
    assert gateway.LOCAL_FUNCTION_HEADER not in got  # no function ran
    deadline = time.monotonic() + 5
    while "GET /v1/me 401" not in served.running.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "(authorizer: " in served.running.log_tail()  # the reason, in the local log


def test_token_without_bearer_prefix_is_accepted_as_api_gateway_does(served: Served) -> None:
    status, _, body = served.request("GET", "/v1/me", headers={"Authorization": token(served.org.users["learner"])})
    assert status == 200
    assert body["userId"] == str(served.org.users["learner"])


def test_role_the_user_does_not_hold_gets_403(served: Served) -> None:
    learner = token(served.org.users["learner"])
    status, _, body = served.request("GET", "/v1/me", learner, headers={"X-Active-Role": "org_admin"})
    assert status == 403
    assert body["error"]["code"] == "ROLE_NOT_HELD"
    status, _, body = served.request("GET", "/v1/aggregates", learner)  # trainer and org_admin only
    assert status == 403
    assert body["error"]["code"] == "ROLE_NOT_ALLOWED"


def _concrete(path: str) -> str:
    for name in ("userId", "orgId", "reportId", "trainerId", "learnerId", "skill"):
        path = path.replace("{" + name + "}", str(uuid.uuid4()) if name != "skill" else "sql")
    assert "{" not in path, f"a path parameter this test does not know: {path}"
    return path


@pytest.mark.parametrize("route", template.routes(), ids=lambda r: r.route_key)
def test_every_route_of_the_template_is_served_by_its_function(served: Served, route: template.Route) -> None:
    status, headers, body = served.request(route.method, _concrete(route.path), token(served.org.users["learner"]))
    assert body != {"message": "Not Found"}, f"the gateway does not serve {route.route_key}"
    assert headers.get(gateway.LOCAL_FUNCTION_HEADER) == route.function.logical_id
    assert status < 500, (route.route_key, status, body)


def test_unknown_route_or_method_is_api_gateways_404(served: Served) -> None:
    learner = token(served.org.users["learner"])
    for method, path in [("GET", "/v1/nothing-here"), ("PATCH", "/v1/analytics"), ("GET", "/v1/analytics/x/y")]:
        status, headers, body = served.request(method, path, learner)
        assert (status, body) == (404, {"message": "Not Found"})
        assert gateway.LOCAL_FUNCTION_HEADER not in headers


def test_path_query_body_and_headers_reach_the_function(served: Served) -> None:
    users = served.org.users
    trainer = token(users["trainer"])
    status, _, body = served.request("GET", f"/v1/users/{users['learner']}/analytics?type=mastery&limit=1", trainer)
    assert status == 200
    assert [i["analyticsType"] for i in body["items"]] == ["mastery"]
    status, _, _ = served.request("GET", f"/v1/users/{users['other']}/analytics", trainer)
    assert status == 404  # not assigned: RLS hides the learner
    learner = token(users["learner"])
    status, _, body = served.request("PUT", "/v1/analytics", learner,
                                     body={"items": [{"analyticsType": "skill_gap", "data": {"gap": 0.25}}]})
    assert status == 200, body
    assert body["written"] == 1
    status, _, body = served.request("GET", "/v1/analytics?type=skill_gap", learner)
    assert body["items"][0]["data"] == {"gap": 0.25}


def test_a_chunked_body_reaches_the_function(served: Served) -> None:
    learner = token(served.org.users["learner"])
    payload = json.dumps({"items": [{"analyticsType": "engagement", "data": {"engagement": 0.6}}]}).encode()
    with httpx.Client(base_url=served.url, timeout=10) as client:
        response = client.put("/v1/analytics", content=iter([payload[:10], payload[10:]]),
                              headers={"Authorization": f"Bearer {learner}", "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["written"] == 1


def test_cors_preflight_and_headers_follow_the_template(served: Served) -> None:
    allowed = "https://app.example.com"  # CorsAllowedOrigins' default
    status, headers, _ = served.request("OPTIONS", "/v1/analytics", headers={
        "Origin": allowed, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"})
    assert status == 204
    assert headers["access-control-allow-origin"] == allowed
    assert "x-active-role" in headers["access-control-allow-headers"]
    assert headers["access-control-max-age"] == "600"
    status, headers, _ = served.request("OPTIONS", "/v1/analytics", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"})
    assert status == 204
    assert "access-control-allow-origin" not in headers
    _, headers, _ = served.request("GET", "/v1/me", token(served.org.users["learner"]), headers={"Origin": allowed})
    assert headers["access-control-allow-origin"] == allowed


def test_swagger_ui_and_keys_are_served_locally_without_a_token(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "SwaggerUIBundle" in page.text and "/docs/swagger-ui.js" in page.text
        for asset in ("/docs/swagger-ui.js", "/docs/swagger-ui.css"):
            resp = client.get(asset)
            assert resp.status_code == 200
            assert len(resp.content) > 100_000
    status, _, doc = served.request("GET", "/docs?format=json")
    assert status == 200
    assert doc == json.loads(gateway.OPENAPI_FILE.read_text())  # the document GET /v1/openapi.json serves
    status, _, keys = served.request("GET", "/.well-known/jwks.json")
    assert keys["keys"][0]["kid"] == tokens.key_id()


