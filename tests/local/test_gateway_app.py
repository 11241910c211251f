"""The gateway's API Gateway emulation in this process (the WSGI application of local/gateway.py,
no server): the v2 event it builds, its own answers, routes without the authorizer, CORS settings
and the web app it serves at /app."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from local import gateway, runtime, template, tokens

# --- in-process: the event the gateway builds ------------------------------------------------


def test_event_is_the_http_api_v2_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def fake_invoke(function: template.Function, event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 201, "headers": {"X-Thing": "1"}, "body": base64.b64encode(b"\x00\x01").decode(),
                "isBase64Encoded": True, "cookies": ["a=b"]}

    monkeypatch.setattr(runtime, "invoke", fake_invoke)
    gw = gateway.Gateway()
    route = next(r for r in template.routes() if r.path.count("{") == 1)  # any route with one path parameter
    param = route.path.split("{")[1].split("}")[0]
    path = route.path.replace("{" + param + "}", "abc%20d")
    user = uuid.uuid4()
    jwt_text = tokens.user_token(user, groups=["a", "b"])
    reply = gw.handle(route.method, f"{path}?x=1&x=2&y=", {
        "authorization": f"Bearer {jwt_text}", "content-type": "application/json", "host": "h:1",
        "x-active-role": "org_admin"}, b'{"roles": ["learner"]}', "10.0.0.9")
    assert reply.status == 201
    assert reply.body == b"\x00\x01"
    assert ("x-thing", "1") in reply.headers and ("set-cookie", "a=b") in reply.headers
    event = seen[0]
    assert event["routeKey"] == route.route_key
    assert event["rawPath"] == path
    assert event["pathParameters"] == {param: "abc d"}
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["body"] == '{"roles": ["learner"]}' and event["isBase64Encoded"] is False
    assert event["headers"]["x-active-role"] == "org_admin"
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.9"
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == str(user)
    assert claims["groups"] == "[a b]"  # API Gateway passes every claim as a string
    assert isinstance(claims["exp"], str)
    binary = gw.handle(route.method, path, {"authorization": jwt_text, "content-type": "image/png"},
                       b"\x89PNG", "127.0.0.1")
    assert binary.status == 201
    assert seen[1]["isBase64Encoded"] is True and base64.b64decode(seen[1]["body"]) == b"\x89PNG"


def test_a_function_that_raises_gets_api_gateways_500(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(function: template.Function, event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(runtime, "invoke", boom)
    reply = gateway.Gateway().handle("GET", "/v1/me", {"authorization": tokens.user_token(uuid.uuid4())}, b"", "::1")
    assert (reply.status, json.loads(reply.body)) == (500, {"message": "Internal Server Error"})


def test_a_route_with_authorizer_none_passes_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def answer(function: template.Function, event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "body": "{}"}

    monkeypatch.setattr(runtime, "invoke", answer)
    function = template.functions()[0]
    open_route = template.Route("POST", "/xapi/statements", function, authorized=False)
    closed_route = template.Route("GET", "/v1/closed", function, authorized=True)
    gw = gateway.Gateway(routes=(open_route, closed_route))
    reply = gw.handle("POST", "/xapi/statements", {"authorization": "Basic dTpw"}, b"[]", "127.0.0.1")
    assert reply.status == 200
    assert "authorizer" not in seen[0]["requestContext"]  # the function checks its own credentials
    assert seen[0]["headers"]["authorization"] == "Basic dTpw"
    refused = gw.handle("GET", "/v1/closed", {"authorization": "Basic dTpw"}, b"", "127.0.0.1")
    assert refused.status == 401 and len(seen) == 1


def test_template_routes_with_authorizer_none_are_read_as_open() -> None:
    declared_open = set()
    for function in template.functions():
        for event in (function.properties.get("Events") or {}).values():
            if event.get("Type") == "HttpApi" and (event["Properties"].get("Auth") or {}).get("Authorizer") == "NONE":
                declared_open.add(f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}")
    assert {r.route_key for r in template.routes() if not r.authorized} == declared_open


def test_the_reason_for_a_401_is_logged(capsys: pytest.CaptureFixture[str]) -> None:
    app = gateway.Gateway(quiet=True)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://gw") as client:
        expired = tokens.user_token(uuid.uuid4(), ttl=-10)
        response = client.get("/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    log = capsys.readouterr().err
    assert "GET /v1/me 401" in log and "authorizer: the token has expired" in log


def test_extra_cors_origins_come_from_ms8_cors_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    origin = "http://localhost:5173"
    assert not gateway.Gateway().cors.allows(origin)  # type: ignore[union-attr]
    monkeypatch.setenv("MS8_CORS_ORIGINS", f"{origin}, http://127.0.0.1:5173")
    app = gateway.Gateway(quiet=True)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://gw") as client:
        response = client.options("/v1/analytics", headers={"Origin": origin, "Access-Control-Request-Method": "PUT"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == origin
    assert "https://app.example.com" in app.cors.config.origins  # type: ignore[union-attr]


@pytest.fixture
def web_dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>MS8</title>")
    (tmp_path / "assets" / "app-1a2b3c.js").write_text("console.log('ms8')")
    (tmp_path / "assets" / "app-1a2b3c.css").write_text("body{}")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    (tmp_path.parent / "secret.txt").write_text("not served")
    return tmp_path


def test_the_web_app_is_served_at_app_with_an_index_fallback(web_dist: Path) -> None:
    app = gateway.Gateway(web_dist=web_dist, quiet=True)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://gw") as client:
        for path in ("/app", "/app/", "/app/learners/42/progress"):
            page = client.get(path)
            assert (page.status_code, page.text) == (200, "<!doctype html><title>MS8</title>"), path
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert page.headers["cache-control"] == "no-cache"
        script = client.get("/app/assets/app-1a2b3c.js")
        assert script.status_code == 200 and script.text == "console.log('ms8')"
        assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
        assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert client.get("/app/assets/app-1a2b3c.css").headers["content-type"] == "text/css; charset=utf-8"
        assert client.get("/app/favicon.svg").headers["content-type"].startswith("image/svg+xml")
        assert client.get("/app/assets/missing.js").status_code == 404
        assert client.get("/app/../secret.txt").status_code == 404
        assert client.get("/app/%2e%2e/secret.txt").status_code == 404
        assert client.get("/application").status_code == 404


def test_without_a_built_web_app_app_is_not_found(tmp_path: Path) -> None:
    app = gateway.Gateway(web_dist=tmp_path / "none", quiet=True)
    assert app.handle("GET", "/app/", {}, b"", "127.0.0.1").status == 404
