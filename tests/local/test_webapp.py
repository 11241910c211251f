"""The local stack's side of the web app (scripts.webapp): the built files at /app with the
index.html fallback, the local config.json, and the demo sign-in (users, tokens) the app uses.
Through the gateway's dispatcher (scripts.gateway.Gateway.handle), as a browser reaches them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import demo_ids, gateway, tokens, webapp


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    return tmp_path


def test_files_are_served_with_their_type_and_caching(dist: Path) -> None:
    page = webapp.reply("GET", "/app/", b"", dist)
    assert page is not None and page.status == 200 and page.body.startswith(b"<!doctype html>")
    assert ("cache-control", "no-cache") in page.headers
    js = webapp.reply("GET", "/app/assets/index-abc123.js", b"", dist)
    assert js is not None and js.status == 200 and js.body == b"console.log(1)"
    assert dict(js.headers)["content-type"].startswith(("text/javascript", "application/javascript"))
    assert dict(js.headers)["cache-control"] == "public, max-age=31536000, immutable"


def test_app_routes_fall_back_to_index_but_missing_files_do_not(dist: Path) -> None:
    route = webapp.reply("GET", "/app/trainer/learners/123", b"", dist)
    assert route is not None and route.status == 200 and b"<title>app</title>" in route.body
    missing = webapp.reply("GET", "/app/assets/gone-999.js", b"", dist)
    assert missing is not None and missing.status == 404
    assert json.loads(missing.body)["error"]["code"] == "NOT_FOUND"
    bare = webapp.reply("GET", "/app", b"", dist)
    assert bare is not None and (bare.status, dict(bare.headers)["location"]) == (308, "/app/")


def test_nothing_outside_the_build_is_served(dist: Path) -> None:
    (dist.parent / "secret.txt").write_text("no")
    for path in ("/app/../secret.txt", "/app/assets/../../secret.txt"):
        reply = webapp.reply("GET", path, b"", dist)
        assert reply is not None and reply.status == 404 and reply.body != b"no"


def test_local_config_names_this_origin_and_the_demo_sign_in(dist: Path) -> None:
    reply = webapp.reply("GET", "/app/config.json", b"", dist)
    assert reply is not None and reply.status == 200
    assert json.loads(reply.body) == {"apiUrl": "", "auth": None}


def test_a_missing_build_says_how_to_build_it(tmp_path: Path) -> None:
    reply = webapp.reply("GET", "/app/", b"", tmp_path / "nothing")
    assert reply is not None and reply.status == 503 and b"make web" in reply.body


def test_demo_users_list_every_demo_user_with_roles() -> None:
    reply = gateway.Gateway().handle("GET", "/local/demo-users", {}, b"", "127.0.0.1")
    assert reply.status == 200
    users = {u["login"]: u for u in json.loads(reply.body)["items"]}
    assert len(users) == 46  # ACME: 36 learners, 3 trainers, admin; GLOBEX: 5 learners, admin
    assert users["acme:admin"]["roles"] == ["org_admin"]
    assert users["acme:learner-01"]["userId"] == str(demo_ids.LEARNER)
    assert users["globex:learner-01"]["userId"] == str(demo_ids.OTHER_ORG_LEARNER)


def test_a_demo_token_is_one_the_authorizer_accepts() -> None:
    reply = gateway.Gateway().handle("POST", "/local/token", {"content-type": "application/json"},
                                     json.dumps({"userId": str(demo_ids.TRAINER)}).encode(), "127.0.0.1")
    assert reply.status == 200
    body = json.loads(reply.body)
    claims = tokens.Verifier().verify(f"Bearer {body['token']}")
    assert claims["sub"] == str(demo_ids.TRAINER) and body["expiresIn"] == webapp.TOKEN_TTL


@pytest.mark.parametrize(("method", "body", "status", "code"), [
    ("POST", b"{not json", 400, "VALIDATION_ERROR"),
    ("POST", b'{"user": "x"}', 400, "VALIDATION_ERROR"),
    ("POST", b'{"userId": "6a1e8a3e-0000-4000-8000-000000000000"}', 404, "NOT_FOUND"),  # no demo user
    ("GET", b"", 405, "METHOD_NOT_ALLOWED"),
])
def test_bad_token_requests_get_a_clear_error(method: str, body: bytes, status: int, code: str) -> None:
    reply = gateway.Gateway().handle(method, "/local/token", {}, body, "127.0.0.1")
    assert reply.status == status
    error = json.loads(reply.body)["error"]
    assert error["code"] == code and error["message"] and error["requestId"]


def test_the_local_endpoints_are_not_in_the_template() -> None:
    text = (webapp.ROOT / "template.yaml").read_text()
    assert "/local/" not in text and "demo-users" not in text
