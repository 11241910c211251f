"""The local gateway over real HTTP: a `scripts.gateway serve` process (2 workers) on a free port
against the test database, with tokens from the local issuer. Also the event it builds, tokens,
invoke, the functions' environment and the demo data."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ms8.services import learners
from scripts import apigw, demo, demo_ids, gateway, invoke, local, localdb, tokens
from tests.factories import Factory, Org

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Served:
    host: str
    port: int
    proc: subprocess.Popen[str]
    org: Org

    def request(self, method: str, path: str, token: str | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            hdrs = dict(headers or {})
            if token is not None:
                hdrs["Authorization"] = f"Bearer {token}"
            data = json.dumps(body) if body is not None else None
            if data is not None:
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if raw else None
        finally:
            conn.close()


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


@pytest.fixture(scope="module")
def served(owner_url: str, gateway_database_url: str) -> Iterator[Served]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        factory = Factory(conn)
        org = factory.org("Gateway Org", learner=["learner"], trainer=["trainer"], admin=["org_admin"],
                          other=["learner"])
        factory.assign(org.id, org.users["trainer"], org.users["learner"])
        factory.analytics(org.id, org.users["learner"], "learner", "mastery", {"mastery": 0.8})
        factory.analytics(org.id, org.users["learner"], "learner", "engagement", {"engagement": 0.5})
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.gateway", "serve", "--port", "0", "--workers", "2", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "common")]),
             "DATABASE_URL": gateway_database_url},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on http://"), line
    host, port = line.split("//")[1].strip().split(":")
    yield Served(host, int(port), proc, org)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)


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
    headers = {} if bad is None else {"Authorization": f"Bearer {bad}"}
    status, got, body = served.request("GET", "/v1/me", headers=headers)
    assert status == 401, case
    assert body == {"message": "Unauthorized"}
    assert "invalid_token" in got["www-authenticate"]
    assert gateway.LOCAL_FUNCTION_HEADER not in got  # no function ran


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


@pytest.mark.parametrize("route", apigw.routes(), ids=lambda r: r.route_key)
def test_every_route_of_the_template_is_served_by_its_function(served: Served, route: apigw.Route) -> None:
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


def test_keep_alive_chunked_body_and_expect_continue(served: Served) -> None:
    learner = token(served.org.users["learner"])
    conn = http.client.HTTPConnection(served.host, served.port, timeout=10)
    try:
        sockets = set()
        for _ in range(5):
            conn.request("GET", "/v1/analytics/summary", headers={"Authorization": f"Bearer {learner}"})
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
            assert conn.sock is not None
            sockets.add(conn.sock.getsockname())
        assert len(sockets) == 1  # one connection for all five
        payload = json.dumps({"items": [{"analyticsType": "engagement", "data": {"engagement": 0.6}}]}).encode()
        conn.request("PUT", "/v1/analytics", body=iter([payload[:10], payload[10:]]), encode_chunked=True,
                     headers={"Authorization": f"Bearer {learner}", "Content-Type": "application/json",
                              "Transfer-Encoding": "chunked", "Expect": "100-continue"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        assert json.loads(resp.read())["written"] == 1
    finally:
        conn.close()


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
    conn = http.client.HTTPConnection(served.host, served.port, timeout=10)
    try:
        conn.request("GET", "/docs")
        resp = conn.getresponse()
        page = resp.read().decode()
        assert resp.status == 200
        assert "SwaggerUIBundle" in page and "/docs/swagger-ui.js" in page
        for asset in ("/docs/swagger-ui.js", "/docs/swagger-ui.css"):
            conn.request("GET", asset)
            resp = conn.getresponse()
            assert resp.status == 200
            assert len(resp.read()) > 100_000
    finally:
        conn.close()
    status, _, doc = served.request("GET", "/docs?format=json")
    assert status == 200
    assert doc == json.loads(gateway.OPENAPI_FILE.read_text())  # the document GET /v1/openapi.json serves
    status, _, keys = served.request("GET", "/.well-known/jwks.json")
    assert keys["keys"][0]["kid"] == tokens.key_id()


def test_a_crashed_worker_is_replaced_and_sigint_stops_every_worker(served: Served) -> None:
    workers = _children(served.proc.pid)
    assert len(workers) == 2
    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _children(served.proc.pid) - {victim}
        if len(now) == 2:
            break
        time.sleep(0.2)
    assert len(now) == 2, "the crashed worker was not replaced"
    for _ in range(4):  # served throughout
        assert served.request("GET", "/v1/me", token(served.org.users["learner"]))[0] == 200
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(15) == 0
    time.sleep(0.2)
    assert not [pid for pid in now if _alive(pid)], "a worker outlived the gateway"


# --- in-process: the event the gateway builds ------------------------------------------------


def test_event_is_the_http_api_v2_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def fake_invoke(function: apigw.Function, event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 201, "headers": {"X-Thing": "1"}, "body": base64.b64encode(b"\x00\x01").decode(),
                "isBase64Encoded": True, "cookies": ["a=b"]}

    monkeypatch.setattr(apigw, "invoke", fake_invoke)
    gw = gateway.Gateway()
    route = next(r for r in apigw.routes() if r.path.count("{") == 1)  # any route with one path parameter
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
    def boom(function: apigw.Function, event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(apigw, "invoke", boom)
    reply = gateway.Gateway().handle("GET", "/v1/me", {"authorization": tokens.user_token(uuid.uuid4())}, b"", "::1")
    assert (reply.status, json.loads(reply.body)) == (500, {"message": "Internal Server Error"})


# --- tokens, invoke, the functions' environment ------------------------------------------------


def test_tokens_cli_mints_user_and_service_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    verifier = tokens.Verifier()
    assert tokens.main(["--user", "learner-01"]) == 0
    assert verifier.verify(capsys.readouterr().out.strip())["sub"] == str(demo_ids.LEARNER)
    assert tokens.main(["--user", "globex:admin"]) == 0
    assert verifier.verify(capsys.readouterr().out.strip())["sub"] == str(demo_ids.user_id("globex", "admin"))
    assert tokens.main(["--client", demo_ids.INGEST_CLIENT, "--scope", "ingest"]) == 0
    claims = verifier.verify(capsys.readouterr().out.strip())
    assert (claims["client_id"], claims["scope"]) == (demo_ids.INGEST_CLIENT, "ms8/ingest")
    assert tokens.main(["--user", "trainer-01", "--role", "trainer", "--curl", "/v1/me"]) == 0
    assert capsys.readouterr().out.startswith("curl -s -H 'X-Active-Role: trainer' -H 'Authorization: Bearer ey")


def test_invoke_runs_a_template_function_with_an_events_file(owner_url: str) -> None:
    org = demo_ids.org_id(f"invoke-{uuid.uuid4()}")
    with psycopg.connect(owner_url, autocommit=True) as conn:
        factory = Factory(conn)
        factory.sql("INSERT INTO organizations (id, name) VALUES (%s, 'Invoke')", (org,))
        factory.sql("INSERT INTO users (id, organization_id, email, name, roles) VALUES (%s, %s, %s, 'L', '{learner}') "
                    "ON CONFLICT (id) DO NOTHING", (demo_ids.LEARNER, org, f"{uuid.uuid4()}@invoke.test"))
    assert invoke.find_function("get_me") == invoke.find_function("GetMeFunction")
    assert invoke.find_function("functions/get_me/").logical_id == "GetMeFunction"
    with pytest.raises(SystemExit):
        invoke.find_function("NoSuchFunction")
    try:
        response = invoke.invoke(invoke.find_function("GetMeFunction"), invoke.load_event("events/get_me.json"))
        assert response["statusCode"] == 200
        assert apigw.json_body(response)["userId"] == str(demo_ids.LEARNER)
    finally:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            Factory(conn).sql("DELETE FROM organizations WHERE id = %s", (org,))


def test_api_functions_get_the_runtime_role_only_and_jobs_the_owner_too() -> None:
    api = local.function_env("http://127.0.0.1:4566")
    assert api["DATABASE_URL"] == localdb.runtime_url(local.DB)
    assert "OWNER_DATABASE_URL" not in api
    assert api["S3_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert api["REPORTS_BUCKET"] and api["POWERTOOLS_SERVICE_NAME"] == "ms8-learning-analytics"
    owned = [f.logical_id for f in apigw.functions() if local.template_env([f.logical_id], "b")[1]]
    routed = {r.function.logical_id for r in apigw.routes()}
    assert not set(owned) & routed  # no API function gets the owner secret
    for logical_id in owned:
        assert local.function_env(None, [logical_id])["OWNER_DATABASE_URL"] == localdb.owner_url(local.DB)


# --- demo data ------------------------------------------------------------------------------


def test_demo_is_reproducible_and_shaped_as_promised() -> None:
    day = date(2026, 11, 26)
    first, again = demo.generate(day), demo.generate(day)
    assert [(e.event_id, e.verb, e.score, e.occurred_at) for e in first.events] == [
        (e.event_id, e.verb, e.score, e.occurred_at) for e in again.events]
    assert [e.score for e in demo.generate(day, seed=1).events] != [e.score for e in first.events]
    acme = [u for u in first.users if u.org == demo_ids.ACME]
    assert sum("learner" in u.roles for u in acme) == 36
    assert {u.handle for u in acme if "trainer" in u.roles} == {"trainer-01", "trainer-02", "trainer-03"}
    per_trainer: dict[str, int] = {}
    for trainer, _ in first.assignments:
        per_trainer[trainer.handle] = per_trainer.get(trainer.handle, 0) + 1
    assert per_trainer == {"trainer-01": 15, "trainer-02": 12, "trainer-03": 9}
    personas = [first.personas[u.id] for u in first.learners() if u.org == demo_ids.ACME]
    assert {p: personas.count(p) for p in demo.PERSONAS} == {
        "improving": 9, "steady": 12, "declining": 5, "dropped_out": 5, "struggling": 5}
    assert sum("learner" in u.roles for u in first.users if u.org == demo_ids.GLOBEX) == 5
    days = {e.occurred_at.date() for e in first.events}
    assert min(days) >= date(2026, 8, 28) and max(days) < day
    assert len(days) > 80
    assert {e.verb for e in first.events} == {"session", "progressed", "completed", "attempted", "passed", "failed"}
    assert {e.user.id for e in first.events} == {u.id for u in first.learners()}


def test_demo_loads_into_a_fresh_database() -> None:
    name = f"ms8_test_{os.getpid()}_demo"
    localdb.drop_database(name)
    localdb.create_database(name)
    try:
        with psycopg.connect(localdb.owner_url(name), autocommit=True) as conn:
            assert not demo.is_loaded(conn)
            counts = demo.load(conn, now=datetime.now(UTC))
            assert demo.is_loaded(conn)
            assert counts["users"] == 46 and counts["learning_events"] > 4000
            assert counts["comparison_groups"] == 4  # ACME learners: all four types; GLOBEX too few
            assert counts["population_rollups"] > 0
            with conn.transaction():
                conn.execute("SELECT app.begin_maintenance()")
                per_type: dict[str, int] = dict(conn.execute(
                    "SELECT analytics_type, count(*) FROM analytics WHERE organization_id = %s GROUP BY 1",
                    (demo_ids.org_id(demo_ids.ACME),)).fetchall())
                headline = conn.execute(
                    "SELECT min((data->>'mastery')::float), max((data->>'mastery')::float) FROM analytics "
                    "WHERE analytics_type = 'mastery'").fetchone()
                gamified = conn.execute("SELECT count(*) FROM gamification").fetchone()
                points = [p for (p,) in conn.execute(
                    "SELECT points FROM gamification WHERE organization_id = %s",
                    (demo_ids.org_id(demo_ids.ACME),)).fetchall()]
                rows = learners.learner_rows(conn, demo_ids.org_id(demo_ids.ACME), datetime.now(UTC))
                cohorts = dict(conn.execute(
                    "SELECT trainer_id, learners FROM population_rollups WHERE granularity = 'weekly' "
                    "AND trainer_id IS NOT NULL").fetchall())
            assert per_type == dict.fromkeys(("learning_velocity", "engagement", "mastery", "skill_gap"), 36)
            assert headline is not None and 0.3 < headline[0] < headline[1] <= 1.0
            assert gamified == (41,)
            # The 90 days are platform history, capped per hour they occurred in: a spread board,
            # not 35 learners clamped at one hour's 200 points.
            assert len(points) == 36 and len(set(points)) >= 25 and max(points) > 2 * 200, sorted(points)
            # Several learners at risk for each reason; trends both ways; cohorts of 15, 12 and 9.
            reasons = [r.code for row in rows for r in row.risk_reasons]
            assert {c: reasons.count(c) >= 3 for c in ("inactive", "velocity_drop", "below_target")} == dict.fromkeys(
                ("inactive", "velocity_drop", "below_target"), True), reasons
            assert 8 <= sum(row.at_risk for row in rows) <= 24
            assert min(r.trend.velocity for r in rows) < 0 < max(r.trend.velocity for r in rows)
            assert sorted(set(cohorts.values())) == [9, 12, 15]
    finally:
        localdb.drop_database(name)
