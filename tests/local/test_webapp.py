"""The local stack's side of the web app (local.webapp) through the gateway's dispatcher
(local.gateway.Gateway.handle), as a browser reaches it: the local config.json and the demo
sign-in (users, tokens). The gateway's serving of the built files is tested in
test_gateway_app.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local import demo_ids, gateway, tokens, webapp
from local.paths import ROOT


def handle(method: str, path: str, body: bytes = b"", dist: Path | None = None) -> gateway.Reply:
    gw = gateway.Gateway(quiet=True) if dist is None else gateway.Gateway(quiet=True, web_dist=dist)
    return gw.handle(method, path, {"content-type": "application/json"}, body, "127.0.0.1")


def test_local_config_names_this_origin_and_the_demo_sign_in(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    reply = handle("GET", "/app/config.json", dist=tmp_path)
    assert reply.status == 200 and json.loads(reply.body) == {"apiUrl": "", "auth": None}
    # A build that carries its own config.json (as deployed) is served as it is.
    (tmp_path / "config.json").write_text('{"apiUrl": "https://api.example", "auth": null}')
    assert json.loads(handle("GET", "/app/config.json", dist=tmp_path).body)["apiUrl"] == "https://api.example"


def test_demo_users_list_every_demo_user_with_roles() -> None:
    reply = handle("GET", "/local/demo-users")
    assert reply.status == 200
    users = {u["login"]: u for u in json.loads(reply.body)["items"]}
    assert len(users) == 46  # ACME: 36 learners, 3 trainers, admin; GLOBEX: 5 learners, admin
    assert users["acme:admin"]["roles"] == ["org_admin"]
    assert users["acme:learner-01"]["userId"] == str(demo_ids.LEARNER)
    assert users["globex:learner-01"]["userId"] == str(demo_ids.OTHER_ORG_LEARNER)


def test_a_demo_token_is_one_the_authorizer_accepts() -> None:
    reply = handle("POST", "/local/token", json.dumps({"userId": str(demo_ids.TRAINER)}).encode())
    assert reply.status == 200
    body = json.loads(reply.body)
    claims = tokens.Verifier().verify(f"Bearer {body['token']}")
    assert claims["sub"] == str(demo_ids.TRAINER) and body["expiresIn"] == webapp.TOKEN_TTL
    by_handle = json.loads(handle("POST", "/local/token", b'{"userId": "globex:admin"}').body)
    assert tokens.Verifier().verify(by_handle["token"])["sub"] == str(demo_ids.user_id(demo_ids.GLOBEX, "admin"))


@pytest.mark.parametrize(("method", "body", "status", "code"), [
    ("POST", b"{not json", 400, "VALIDATION_ERROR"),
    ("POST", b'{"user": "x"}', 400, "VALIDATION_ERROR"),
    ("POST", b'{"userId": "6a1e8a3e-0000-4000-8000-000000000000"}', 404, "NOT_FOUND"),  # no demo user
    ("GET", b"", 405, "METHOD_NOT_ALLOWED"),
])
def test_bad_token_requests_get_a_clear_error(method: str, body: bytes, status: int, code: str) -> None:
    reply = handle(method, "/local/token", body)
    assert reply.status == status
    error = json.loads(reply.body)["error"]
    assert error["code"] == code and error["message"] and error["requestId"]


def test_the_local_endpoints_are_not_in_the_template() -> None:
    text = (ROOT / "template.yaml").read_text()
    assert "/local/" not in text and "demo-users" not in text
